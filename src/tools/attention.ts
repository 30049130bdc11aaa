/**
 * `AttentionTools`: the seed document's four attention tools (Arrakis' `attention_patterns`,
 * `top_attended_ids`, `ablate_head`, `merge_heads`) with the semantics their names promise, plus the
 * comparisons that show what an ablation does.
 *
 *     const attention = new AttentionTools(model);
 *     attention.attentionPatterns("the cat sat on the mat", 1, 3);          // renders as a heatmap
 *     const h = attention.ablateHead(0, 1);                                  // every forward now lacks L0H1
 *     model.loss("the cat sat on the mat");
 *     h.restore();                                                           // bit-identical model again
 *     attention.headAblationSweep("the cat sat on the mat");                 // layer × head grid of Δ loss
 *
 * Unlike Arrakis (which computes patterns from weights and returns edited weight copies that never reach the
 * model), patterns here are the real post-softmax `hook_pattern` of a forward pass, and ablations / merges
 * change what every later forward pass of the model computes, until restored.
 *
 * Everything reflects the model as it is at the time of the call: active ablations and merges apply to
 * patterns, comparisons and sweeps too (a sweep's "clean" baseline is the model with them).
 */
import * as tf from "@tensorflow/tfjs";
import { ablationComparisonView, attentionHeatmap, type Displayable, headGridView, type MimeBundle, startProgress, topAttendedView } from "../display";
import { fail, show } from "../errors";
import { type HookedAutoModel, tokenLosses } from "../model/hooked-model";
import type { HookFn, HookHandle } from "../model/hooks";
import type { ModelInput } from "../model/input";
import type { AttnParams } from "../model/types";
import { checkCount, checkHead, checkLayer, checkOptions, checkUnit, fmt, gridText, oneSequence, textTable, tok, topIndices } from "./common";
import { type DetectorOptions, detectHeads, type HeadScores } from "./detectors";

// ---------------------------------------------------------------------------------------------- results

/**
 * The post-softmax attention pattern of one layer from a real forward pass (`blocks.{l}.attn.hook_pattern`).
 * `values` is `[q][k]` for one head or `[head][q][k]` for all heads; row q sums to 1 over keys 0..q.
 *
 * The numbers live in plain arrays (exactly the float32 values of the forward pass); `.tensor` makes a tensor
 * of them on first use, owned by this object until `dispose()`.
 */
export class AttentionPattern<V extends number[][] | number[][][] = number[][] | number[][][]> implements Displayable {
  private cached: tf.Tensor | null = null;

  constructor(
    readonly layer: number,
    /** The head asked for, or null when all heads were. */
    readonly head: number | null,
    /** The heads held, in order (one entry when `head` is set). */
    readonly heads: number[],
    readonly ids: number[],
    readonly tokens: string[],
    /** `[heads.length][q][k]`. */
    private readonly patterns: number[][][],
  ) {}

  /** `[q][k]` for one head, `[head][q][k]` for all heads. */
  get values(): V {
    return (this.head === null ? this.patterns : this.patterns[0]) as V;
  }

  /** The `[q][k]` pattern of one of the held heads. */
  forHead(head: number): number[][] {
    const i = this.heads.indexOf(head);
    if (i < 0) fail(`this AttentionPattern holds head${this.heads.length > 1 ? "s" : ""} ${this.heads.join(", ")}, not ${show(head)}`);
    return this.patterns[i];
  }

  /** `[q, k]` or `[head, q, k]` float32, owned by this object (freed by `dispose()`, recreated on next use). */
  get tensor(): tf.Tensor {
    if (!this.cached || this.cached.isDisposed) this.cached = tf.tensor(this.values as number[][]);
    return this.cached;
  }

  dispose(): void {
    this.cached?.dispose();
    this.cached = null;
  }

  toMimeBundle(): MimeBundle {
    return attentionHeatmap({ tokens: this.tokens, patterns: this.patterns, heads: this.heads, layer: this.layer });
  }

  toJSON(): object {
    return { layer: this.layer, head: this.head, heads: this.heads, ids: this.ids, tokens: this.tokens, values: this.values };
  }

  /** Per head: mean attention to the query itself, the previous token and position 0; then, for one head, each query's top keys. */
  toString(): string {
    const T = this.tokens.length;
    const what = this.head === null ? `heads ${this.heads[0]}–${this.heads[this.heads.length - 1]}, .values is [head][q][k]` : `head ${this.head}, .values is [q][k]`;
    const lines = [`AttentionPattern(layer ${this.layer}, ${what}; ${T} tokens)`];
    const rows = [["head", "self", "previous", "first"]];
    this.patterns.forEach((p, i) => {
      const self = p.reduce((a, row, q) => a + row[q], 0) / T;
      const prev = T > 1 ? p.slice(1).reduce((a, row, q) => a + row[q], 0) / (T - 1) : NaN; // row q+1 → key q
      const first = p.reduce((a, row) => a + row[0], 0) / T;
      rows.push([String(this.heads[i]), fmt(self), fmt(prev), fmt(first)]);
    });
    lines.push("mean attention to:", textTable(rows));
    if (this.head !== null) {
      const shown = Math.min(T, 24);
      const q = this.patterns[0].slice(0, shown).map((row, qi) => {
        const keys = topIndices(row.slice(0, qi + 1), 3).map((k) => `${k} ${tok(this.tokens[k])} ${fmt(row[k], 2)}`);
        return [`${qi} ${tok(this.tokens[qi])}`, keys.join(", ")];
      });
      lines.push("top keys per query:", textTable([["query", "keys (position token weight)"], ...q]));
      if (shown < T) lines.push(`… ${T - shown} more queries (see .values)`);
    }
    return lines.join("\n");
  }
}

/** One key position and the attention it receives. */
export interface AttendedKey {
  position: number;
  id: number;
  token: string;
  /** Attention weight (summed over queries for the overall ranking; one query's weight per query). */
  weight: number;
}

/** The top-k keys of one head for every query position (`topAttendedIds(…, { perQuery: true })`). */
export interface QueryTopKeys {
  query: number;
  token: string;
  keys: AttendedKey[];
}

/** The key positions that receive the most attention in one head (summed over queries), and optionally per query. */
export class TopAttended implements Displayable {
  constructor(
    readonly layer: number,
    readonly head: number,
    readonly k: number,
    readonly tokens: string[],
    /** The top keys summed over all queries, strongest first. */
    readonly entries: AttendedKey[],
    /** With `{ perQuery: true }`: the top keys of each query (among the keys it can see), else null. */
    readonly perQuery: QueryTopKeys[] | null,
  ) {}

  get positions(): number[] {
    return this.entries.map((e) => e.position);
  }

  get ids(): number[] {
    return this.entries.map((e) => e.id);
  }

  toMimeBundle(): MimeBundle {
    return topAttendedView({
      tokens: this.tokens,
      positions: this.positions,
      weights: this.entries.map((e) => e.weight),
      layer: this.layer,
      head: this.head,
      weightLabel: `attention received (summed over ${this.tokens.length} queries)`,
    });
  }

  toJSON(): object {
    return { layer: this.layer, head: this.head, k: this.k, tokens: this.tokens, entries: this.entries, perQuery: this.perQuery };
  }

  toString(): string {
    const lines = [`TopAttended(layer ${this.layer}, head ${this.head}, top ${this.entries.length} of ${this.tokens.length} keys, weight summed over queries)`];
    lines.push(textTable([["rank", "pos", "token", "id", "weight"], ...this.entries.map((e, i) => [String(i + 1), String(e.position), tok(e.token), String(e.id), fmt(e.weight)])]));
    if (this.perQuery) {
      lines.push("per query:");
      lines.push(textTable(this.perQuery.map((q) => [`${q.query} ${tok(q.token)}`, q.keys.map((key) => `${key.position} ${tok(key.token)} ${fmt(key.weight, 2)}`).join(", ")])));
    }
    return lines.join("\n");
  }
}

/** One vocabulary entry whose logit an ablation moved. */
export interface LogitChange {
  id: number;
  token: string;
  clean: number;
  ablated: number;
  /** ablated − clean */
  delta: number;
}

/**
 * What ablating one head does to one sequence: per-token loss clean vs ablated (position t predicts token t+1,
 * so arrays have `tokens.length − 1` entries), the change of the correct token's logit, and the logits that
 * moved most at each position.
 */
export class AblationComparison implements Displayable {
  constructor(
    readonly layer: number,
    readonly head: number,
    readonly mode: AblationMode,
    readonly ids: number[],
    readonly tokens: string[],
    readonly clean: number[],
    readonly ablated: number[],
    /** Logit of the correct next token, ablated − clean, per prediction. */
    readonly targetLogitDelta: number[],
    /** Per position (all `tokens.length`): the top-|Δ| logits, largest change first. */
    readonly topChanges: LogitChange[][],
  ) {}

  /** ablated − clean loss per prediction. */
  get delta(): number[] {
    return this.ablated.map((a, t) => a - this.clean[t]);
  }

  get meanClean(): number {
    return mean(this.clean);
  }

  get meanAblated(): number {
    return mean(this.ablated);
  }

  get label(): string {
    return `L${this.layer}H${this.head} ${this.mode}-ablated`;
  }

  toMimeBundle(): MimeBundle {
    return ablationComparisonView({ tokens: this.tokens, clean: this.clean, ablated: this.ablated, label: this.label });
  }

  toJSON(): object {
    const { layer, head, mode, ids, tokens, clean, ablated, targetLogitDelta, topChanges } = this;
    return { layer, head, mode, ids, tokens, clean, ablated, delta: this.delta, targetLogitDelta, topChanges };
  }

  toString(): string {
    const d = this.meanAblated - this.meanClean;
    const lines = [`AblationComparison(${this.label}; mean loss ${fmt(this.meanClean)} → ${fmt(this.meanAblated)}, Δ ${d >= 0 ? "+" : ""}${fmt(d)})`];
    const shown = Math.min(this.clean.length, 32);
    const rows = [["pos", "predicts", "clean", "ablated", "Δ loss", "Δ logit(target)", "largest logit change"]];
    for (let t = 0; t < shown; t++) {
      const top = this.topChanges[t][0];
      rows.push([String(t), tok(this.tokens[t + 1]), fmt(this.clean[t]), fmt(this.ablated[t]), fmt(this.ablated[t] - this.clean[t]), fmt(this.targetLogitDelta[t]), top ? `${tok(top.token)} ${top.delta >= 0 ? "+" : ""}${fmt(top.delta)}` : ""]);
    }
    lines.push(textTable(rows));
    if (shown < this.clean.length) lines.push(`… ${this.clean.length - shown} more predictions`);
    return lines.join("\n");
  }
}

/** A layer × head grid of the change in a metric when each head is ablated alone. */
export class HeadSweep implements Displayable {
  constructor(
    /** ablated − clean metric, `[layer][head]`. */
    readonly values: number[][],
    /** The metric with each head ablated, `[layer][head]`. */
    readonly ablated: number[][],
    /** The metric of the model as it was (no extra ablation). */
    readonly clean: number,
    readonly metricLabel: string,
    readonly mode: AblationMode,
    readonly rows: number[][],
  ) {}

  /** The k heads whose ablation raises the metric most, largest first. */
  top(k = 5): { layer: number; head: number; value: number }[] {
    checkCount("k", k);
    const flat = this.values.flatMap((row, layer) => row.map((value, head) => ({ layer, head, value })));
    return topIndices(flat.map((e) => e.value), k).map((i) => flat[i]);
  }

  toMimeBundle(): MimeBundle {
    return headGridView({
      values: this.values,
      title: `Change in ${this.metricLabel} when each head is ${this.mode}-ablated (clean ${fmt(this.clean)})`,
      metricLabel: `Δ ${this.metricLabel}`,
      diverging: true,
    });
  }

  toJSON(): object {
    return { values: this.values, ablated: this.ablated, clean: this.clean, metricLabel: this.metricLabel, mode: this.mode, rows: this.rows };
  }

  toString(): string {
    const top = this.top(Math.min(3, this.values.length * (this.values[0]?.length ?? 0)));
    return [
      `HeadSweep(Δ ${this.metricLabel} when each head is ${this.mode}-ablated alone; clean ${fmt(this.clean)})`,
      gridText(this.values),
      `largest: ${top.map((e) => `L${e.layer}H${e.head} ${e.value >= 0 ? "+" : ""}${fmt(e.value)}`).join(", ")}`,
    ].join("\n");
  }
}

function mean(xs: number[]): number {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN;
}

// ---------------------------------------------------------------------------------------------- handles

export type AblationMode = "zero" | "mean";
const MODES: readonly AblationMode[] = ["zero", "mean"];

export interface AblateOptions {
  /** "zero" (default) sets the head's z to 0; "mean" sets it to its mean over the reference's positions. */
  mode?: AblationMode;
  /**
   * For `mode: "mean"`: the input whose z (of this head, mean over batch and positions, computed by one
   * forward of the model as it is now) replaces the head's z at every position. Required by `ablateHead`;
   * the comparisons default it to their own input.
   */
  reference?: ModelInput;
}

/** Something a tool changed in the model until `restore()`. */
export interface ToolHandle {
  /** False once restored. */
  readonly active: boolean;
  /** Undoes the change; calling it again does nothing. */
  restore(): void;
}

/** The shared life cycle of a change a tool made: live until `restore()`, which undoes it exactly once. */
abstract class RestorableHandle implements ToolHandle {
  private live = true;

  protected constructor(
    private readonly undo: () => void,
    private readonly onRestore: (h: ToolHandle) => void,
  ) {}

  get active(): boolean {
    return this.live;
  }

  restore(): void {
    if (!this.live) return;
    this.live = false;
    this.undo();
    this.onRestore(this);
  }

  protected get state(): string {
    return this.live ? "active: restore() to undo" : "restored";
  }
}

/** An active head ablation: a persistent hook on `blocks.{layer}.attn.hook_z`. */
export class AblationHandle extends RestorableHandle {
  /** @internal */
  constructor(
    readonly layer: number,
    readonly head: number,
    readonly mode: AblationMode,
    hook: HookHandle,
    meanZ: tf.Tensor | null,
    onRestore: (h: ToolHandle) => void,
  ) {
    super(() => {
      hook.remove();
      meanZ?.dispose();
    }, onRestore);
  }

  override toString(): string {
    return `AblationHandle(L${this.layer}H${this.head} ${this.mode}-ablated, ${this.state})`;
  }
}

/** An active head merge: layer `layer`'s attention weights are swapped for merged copies. */
export class MergeHandle extends RestorableHandle {
  /** @internal */
  constructor(
    readonly layer: number,
    readonly h1: number,
    readonly h2: number,
    readonly alpha: number,
    swapBack: () => void,
    onRestore: (h: ToolHandle) => void,
  ) {
    super(swapBack, onRestore);
  }

  override toString(): string {
    return `MergeHandle(L${this.layer}: H${this.h1} ← ${this.alpha}·H${this.h1} + ${1 - this.alpha}·H${this.h2}, H${this.h2} removed; ${this.state})`;
  }
}

/** Runs fn with a change applied and always undoes it: after a return, a throw, or an async fn's settling. */
function scoped<R>(handle: ToolHandle, fn: () => R): R {
  let result: R;
  try {
    result = fn();
  } catch (e) {
    handle.restore();
    throw e;
  }
  if (result instanceof Promise) return result.finally(() => handle.restore()) as R;
  handle.restore();
  return result;
}

// ---------------------------------------------------------------------------------------------- sweeps

/** A sweep metric: a number from the logits `[batch, pos, vocab]` (owned by the sweep) and the token rows. */
export type SweepMetric = (logits: tf.Tensor3D, rows: number[][]) => number;

export interface SweepOptions {
  /** "loss" (default: mean next-token loss over the batch) or a function of the logits. */
  metric?: "loss" | SweepMetric;
  /** Name of the metric in titles (default "loss", or the function's name). */
  metricLabel?: string;
  /** Ablation mode (default "zero"). */
  mode?: AblationMode;
  /** Mean-mode reference input (default: the sweep's input). */
  reference?: ModelInput;
  /** Called with (0, total) first and then after each head. */
  onProgress?: (done: number, total: number) => void;
  /** Stops the sweep between heads (it throws, with the model restored). */
  signal?: AbortSignal;
}

export interface ComparisonOptions {
  mode?: AblationMode;
  /** Mean-mode reference input (default: the compared input). */
  reference?: ModelInput;
  /** How many moved logits to keep per position (default 5). */
  topK?: number;
}

/** Lets pending I/O and signal handlers (a kernel interrupt) run between heads of an async sweep. */
const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

// ---------------------------------------------------------------------------------------------- the tools

/**
 * The changes tools made to one model, shared by every AttentionTools of that model (the kernel's
 * `attention` and `exp.tools.attention` are two instances): `restoreAll()` on either undoes both, and the
 * one-merge-per-layer rule holds across them.
 */
interface ModelEdits {
  handles: Set<ToolHandle>;
  /** At most one merge per layer: a second would edit weights the first must restore exactly. */
  mergedLayers: Map<number, MergeHandle>;
}
const editsByModel = new WeakMap<HookedAutoModel, ModelEdits>();

function editsOf(model: HookedAutoModel): ModelEdits {
  let e = editsByModel.get(model);
  if (!e) editsByModel.set(model, (e = { handles: new Set(), mergedLayers: new Map() }));
  return e;
}

export class AttentionTools {
  private readonly handles: Set<ToolHandle>;
  private readonly mergedLayers: Map<number, MergeHandle>;

  constructor(readonly model: HookedAutoModel) {
    if (!model || typeof (model as { runWithCache?: unknown }).runWithCache !== "function") fail(`AttentionTools expects a HookedAutoModel, got ${show(model)}`);
    ({ handles: this.handles, mergedLayers: this.mergedLayers } = editsOf(model));
  }

  /** Ablations and merges of this model that are still active (made through any AttentionTools of it). */
  get active(): ToolHandle[] {
    return [...this.handles];
  }

  /** Restores every active ablation and merge of this model (newest first). */
  restoreAll(): void {
    for (const h of [...this.handles].reverse()) h.restore();
  }

  /** Printed as its summary (the model inside would otherwise be dumped field by field). */
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return this.toString();
  }

  toString(): string {
    const act = this.active;
    return `AttentionTools(${this.model.toString()}${act.length ? `; active: ${act.map(String).join("; ")}` : ""})`;
  }

  // ------------------------------------------------------------------ patterns

  /**
   * The post-softmax pattern of `layer` from a real forward pass of one sequence (a string or ids; a batch
   * of several sequences is an error: call it per sequence).
   *
   *     attention.attentionPatterns("the cat sat", 1, 0).values   // [q][k]
   *     attention.attentionPatterns([5, 9, 2], 1).values          // [head][q][k]
   */
  attentionPatterns(input: ModelInput, layer: number, head: number): AttentionPattern<number[][]>;
  attentionPatterns(input: ModelInput, layer: number): AttentionPattern<number[][][]>;
  attentionPatterns(input: ModelInput, layer: number, head?: number): AttentionPattern {
    checkLayer(this.model, layer);
    if (head !== undefined) checkHead(this.model, head);
    const row = oneSequence(this.model, input, "attentionPatterns");
    const all = this.patternsOf(row, layer); // [head][q][k]
    const heads = head === undefined ? all.map((_, h) => h) : [head];
    return new AttentionPattern(layer, head ?? null, heads, row, this.strTokens(row), heads.map((h) => all[h]));
  }

  /**
   * The k key positions receiving the most attention in one head, summed over all queries; with
   * `{ perQuery: true }` also each query's own top-k among the keys it can see (0..q). k larger than the
   * sequence is clamped to it.
   *
   *     attention.topAttendedIds("the cat sat on the mat", 1, 3, 3).entries  // [{position, id, token, weight}]
   */
  topAttendedIds(input: ModelInput, layer: number, head: number, k = 5, options: { perQuery?: boolean } = {}): TopAttended {
    checkLayer(this.model, layer);
    checkHead(this.model, head);
    checkCount("k", k);
    const { perQuery = false } = checkOptions("topAttendedIds", options, ["perQuery"]);
    if (typeof perQuery !== "boolean") fail(`topAttendedIds: perQuery must be true or false, got ${show(perQuery)}`);
    const row = oneSequence(this.model, input, "topAttendedIds");
    const tokens = this.strTokens(row);
    const p = this.patternsOf(row, layer)[head]; // [q][k]
    const key = (position: number, weight: number): AttendedKey => ({ position, id: row[position], token: tokens[position], weight });
    const received = row.map((_, kpos) => p.reduce((sum, qrow) => sum + qrow[kpos], 0));
    const entries = topIndices(received, k).map((kpos) => key(kpos, received[kpos]));
    const per = perQuery
      ? p.map((qrow, q) => ({ query: q, token: tokens[q], keys: topIndices(qrow.slice(0, q + 1), k).map((kpos) => key(kpos, qrow[kpos])) }))
      : null;
    return new TopAttended(layer, head, k, tokens, entries, per);
  }

  // ------------------------------------------------------------------ ablation

  /**
   * Removes one head's contribution from every later forward pass of the model: its z (attention-weighted
   * values, before the output projection; the output bias stays) is replaced by 0 (`mode: "zero"`, default)
   * or by its mean over the positions of `reference` (`mode: "mean"`, reference required: ablating with "the
   * last input" would make the result depend on call order). Several ablations may be active; each handle
   * restores only its own.
   *
   *     const h = attention.ablateHead(0, 1);                     // zero
   *     const m = attention.ablateHead(1, 2, { mode: "mean", reference: "some typical text" });
   *     h.restore(); m.restore();                                 // restore() twice is harmless
   */
  ablateHead(layer: number, head: number, options: AblateOptions = {}): AblationHandle {
    checkLayer(this.model, layer);
    checkHead(this.model, head);
    const { mode, reference } = this.ablateOptions("ablateHead", options);
    if (mode === "mean" && reference === undefined) {
      fail(`ablateHead: mode "mean" needs a reference input to average over, e.g. ablateHead(${layer}, ${head}, { mode: "mean", reference: "some text" })`);
    }
    const meanZ = mode === "mean" ? this.meanZ(reference as ModelInput, layer, head) : null;
    return this.installAblation(layer, head, mode, meanZ);
  }

  /**
   * Runs `fn` with one head ablated and always restores afterwards (also when fn throws; for an async fn,
   * when its promise settles). Returns fn's result.
   *
   *     const loss = attention.withAblatedHead(0, 1, () => model.loss(ids));
   */
  withAblatedHead<R>(layer: number, head: number, fn: () => R): R;
  withAblatedHead<R>(layer: number, head: number, options: AblateOptions, fn: () => R): R;
  withAblatedHead<R>(layer: number, head: number, a: AblateOptions | (() => R), b?: () => R): R {
    const [options, fn] = typeof a === "function" ? [{}, a] : [a, b];
    if (typeof fn !== "function") fail(`withAblatedHead expects a callback as its last argument, got ${show(fn)}`);
    return scoped(this.ablateHead(layer, head, options), fn);
  }

  // ------------------------------------------------------------------ merging

  /**
   * Merges head h2 into head h1 in `layer`'s weights: h1's query, key and value projections (columns) and its
   * output projection (rows) become `alpha·h1 + (1−alpha)·h2`, biases likewise; h2 is removed (its output
   * rows are zero, so it writes nothing to the residual stream). `restore()` swaps the original tensors back,
   * so the model is bit-identical again.
   *
   * Grouped-query attention: q and o are per query head and are mixed as above; k and v belong to kv heads.
   * If h1 and h2 share a kv head, k/v are already common and stay as they are. If they read different kv
   * heads, mixing k/v would also change every other query head of h1's group, so that merge is refused,
   * except alpha = 1 (h1 untouched, only h2 removed). One merge per layer may be active at a time.
   *
   *     const m = attention.mergeHeads(0, 1, 2, 0.5);
   *     model.loss(ids);
   *     m.restore();
   */
  mergeHeads(layer: number, h1: number, h2: number, alpha = 0.5): MergeHandle {
    checkLayer(this.model, layer);
    checkHead(this.model, h1);
    checkHead(this.model, h2);
    checkUnit("alpha", alpha);
    if (h1 === h2) fail(`mergeHeads needs two different heads, got h1 = h2 = ${h1}`);
    const current = this.mergedLayers.get(layer);
    if (current) fail(`layer ${layer} already has an active merge (${current}); restore it before merging again in that layer`);
    const c = this.model.cfg;
    const group = c.nHeads / c.nKvHeads;
    const kv1 = Math.floor(h1 / group);
    const kv2 = Math.floor(h2 / group);
    if (c.nKvHeads !== c.nHeads && kv1 !== kv2 && alpha !== 1) {
      fail(
        `mergeHeads(${layer}, ${h1}, ${h2}): under grouped-query attention (${c.nHeads} query heads, ${c.nKvHeads} kv heads) head ${h1} reads kv head ${kv1} and head ${h2} reads kv head ${kv2}; ` +
          `mixing their keys/values would change every query head of kv head ${kv1} too. Merge heads of the same kv group (heads ${kv1 * group}..${(kv1 + 1) * group - 1}), or use alpha = 1 to only remove head ${h2}.`,
      );
    }
    const layerParams = this.model.params.layers[layer];
    const original = layerParams.attn;
    const { merged, created } = mergedAttention(original, c.nHeads, c.nKvHeads, h1, h2, alpha);
    layerParams.attn = merged;
    const handle = new MergeHandle(
      layer,
      h1,
      h2,
      alpha,
      () => {
        layerParams.attn = original; // the very same tensor objects: bit-identical logits
        tf.dispose(created);
        this.mergedLayers.delete(layer);
      },
      (h) => this.handles.delete(h),
    );
    this.mergedLayers.set(layer, handle);
    this.handles.add(handle);
    return handle;
  }

  /**
   * Runs `fn` with two heads merged and always restores afterwards.
   *
   *     attention.withMergedHeads(0, 1, 2, 0.5, () => model.loss(ids));
   */
  withMergedHeads<R>(layer: number, h1: number, h2: number, fn: () => R): R;
  withMergedHeads<R>(layer: number, h1: number, h2: number, alpha: number, fn: () => R): R;
  withMergedHeads<R>(layer: number, h1: number, h2: number, a: number | (() => R), b?: () => R): R {
    const [alpha, fn] = typeof a === "function" ? [0.5, a] : [a, b];
    if (typeof fn !== "function") fail(`withMergedHeads expects a callback as its last argument, got ${show(fn)}`);
    return scoped(this.mergeHeads(layer, h1, h2, alpha), fn);
  }

  // ------------------------------------------------------------------ comparisons

  /**
   * Per-token loss of one sequence, clean vs with one head ablated, the correct token's logit change and the
   * most-moved logits at each position. The model is restored afterwards.
   *
   *     attention.ablationComparison("the cat sat on the mat", 1, 3)                    // renders as a chart
   *     attention.ablationComparison(ids, 1, 3, { mode: "mean", topK: 3 }).delta
   */
  ablationComparison(input: ModelInput, layer: number, head: number, options: ComparisonOptions = {}): AblationComparison {
    checkLayer(this.model, layer);
    checkHead(this.model, head);
    const opts = checkOptions("ablationComparison", options, ["mode", "reference", "topK"]);
    const { mode } = this.ablateOptions("ablationComparison", { mode: opts.mode, reference: opts.reference });
    const topK = checkCount("topK", opts.topK ?? 5);
    const row = oneSequence(this.model, input, "ablationComparison");
    if (row.length < 2) fail(`ablationComparison needs at least 2 tokens to compare next-token losses, got ${row.length}`);
    const clean = this.model.forward([row]); // [1, pos, vocab]
    let ablated: tf.Tensor3D | null = null;
    try {
      ablated = this.withAblatedHead(layer, head, { mode, reference: opts.reference ?? [row] }, () => this.model.forward([row]));
      const [lossClean] = tokenLosses(clean, [row]);
      const [lossAblated] = tokenLosses(ablated, [row]);
      const { targetDelta, top } = logitChanges(clean, ablated, row, Math.min(topK, this.model.cfg.dVocab));
      const topChanges = top.map((cands) => cands.map((e) => ({ ...e, token: this.model.idToToken(e.id) })));
      return new AblationComparison(layer, head, mode, row, this.strTokens(row), lossClean, lossAblated, targetDelta, topChanges);
    } finally {
      clean.dispose();
      ablated?.dispose();
    }
  }

  /**
   * The change in a metric (default: mean next-token loss) when each head is ablated alone, as a
   * `[layer][head]` grid. Accepts a batch. Every ablation is restored (also on error); see
   * `headAblationSweepAsync` for long sweeps that should stay interruptible.
   *
   *     const sweep = attention.headAblationSweep(ids);          // renders as a layer × head heatmap
   *     sweep.top(3);                                             // heads that matter most for the loss
   *     attention.headAblationSweep(ids, { metric: (logits) => logits.slice([0, 5, 42], [1, 1, 1]).dataSync()[0], metricLabel: "logit 42 at 5" });
   */
  headAblationSweep(input: ModelInput, options: SweepOptions = {}): HeadSweep {
    const sweep = this.prepareSweep(input, options);
    try {
      sweep.progress(0);
      for (let i = 0; i < sweep.total; i++) {
        sweep.checkAbort();
        sweep.step(i);
        sweep.progress(i + 1);
      }
      return sweep.result();
    } finally {
      sweep.dispose();
    }
  }

  /**
   * Like `headAblationSweep`, but yields to the event loop between heads (so a kernel interrupt or an
   * `AbortSignal` can land, and a progress display can update).
   *
   *     await attention.headAblationSweepAsync(ids, { onProgress: (done, total) => console.log(done, total) });
   */
  async headAblationSweepAsync(input: ModelInput, options: SweepOptions = {}): Promise<HeadSweep> {
    const sweep = this.prepareSweep(input, options);
    try {
      sweep.progress(0);
      for (let i = 0; i < sweep.total; i++) {
        await yieldToEventLoop();
        sweep.checkAbort();
        sweep.step(i);
        sweep.progress(i + 1);
      }
      return sweep.result();
    } finally {
      sweep.dispose();
    }
  }

  // ------------------------------------------------------------------ head detectors (see detectors.ts)

  /** Previous-token score of every head: mean attention from position t to t−1. */
  previousTokenHeads(input?: ModelInput, options?: DetectorOptions): HeadScores {
    return detectHeads(this.model, "previous-token", input, options);
  }

  /** Induction score of every head: mean attention from a repeated token to the token after its earlier occurrence. */
  inductionHeads(input?: ModelInput, options?: DetectorOptions): HeadScores {
    return detectHeads(this.model, "induction", input, options);
  }

  /** Duplicate-token score of every head: mean attention from a repeated token to its earlier occurrences. */
  duplicateTokenHeads(input?: ModelInput, options?: DetectorOptions): HeadScores {
    return detectHeads(this.model, "duplicate-token", input, options);
  }

  // ------------------------------------------------------------------ internals

  private strTokens(row: number[]): string[] {
    return row.map((id) => this.model.idToToken(id));
  }

  /** `[head][q][k]` of one sequence at `layer`, from one forward pass caching only that pattern. */
  private patternsOf(row: number[], layer: number): number[][][] {
    const name = `blocks.${layer}.attn.hook_pattern`;
    const { logits, cache } = this.model.runWithCache([row], { names: [name] });
    try {
      return (cache.get(name).arraySync() as number[][][][])[0]; // [batch=1, head, q, k] → [head][q][k]
    } finally {
      logits.dispose();
      cache.dispose();
    }
  }

  private ablateOptions(where: string, options: AblateOptions): { mode: AblationMode; reference: ModelInput | undefined } {
    const { mode = "zero", reference } = checkOptions(where, options, ["mode", "reference"]);
    if (!MODES.includes(mode)) fail(`${where}: mode must be "zero" or "mean", got ${show(mode)}`);
    return { mode, reference };
  }

  /** Mean z of every head of `layers` over the reference's batch and positions: layer → `[head, d_head]`. */
  private meanZs(reference: ModelInput, layers: number[]): Map<number, tf.Tensor2D> {
    const names = layers.map((l) => `blocks.${l}.attn.hook_z`);
    const { logits, cache } = this.model.runWithCache(reference, { names });
    try {
      return new Map(layers.map((l, i) => [l, tf.tidy(() => tf.mean(cache.get(names[i]), [0, 1]) as tf.Tensor2D)])); // [head, d_head]
    } finally {
      logits.dispose();
      cache.dispose();
    }
  }

  /** Mean z `[d_head]` of one head over the reference's batch and positions. */
  private meanZ(reference: ModelInput, layer: number, head: number): tf.Tensor1D {
    const all = this.meanZs(reference, [layer]).get(layer) as tf.Tensor2D;
    try {
      return tf.tidy(() => tf.squeeze(tf.slice(all, [head, 0], [1, -1]), [0]) as tf.Tensor1D);
    } finally {
      all.dispose();
    }
  }

  /** The ablation hook; the handle owns `meanZ` (if any) and frees it on restore. */
  private installAblation(layer: number, head: number, mode: AblationMode, meanZ: tf.Tensor1D | null): AblationHandle {
    const { nHeads: H, dHead } = this.model.cfg;
    const keep = Array.from({ length: H }, (_, h) => (h === head ? 0 : 1));
    const fn: HookFn = (z) =>
      tf.tidy(() => {
        const keepMask = tf.tensor4d(keep, [1, 1, H, 1]); // [1, 1, head, 1]
        const kept = tf.mul(z, keepMask); // [batch, pos, head, d_head], the head's slot exactly 0
        if (!meanZ) return kept;
        const onlyHead = tf.sub(1, keepMask);
        return tf.add(kept, tf.mul(onlyHead, tf.reshape(meanZ, [1, 1, 1, dHead]))); // slot = mean exactly
      });
    let hook: HookHandle;
    try {
      hook = this.model.addHook(`blocks.${layer}.attn.hook_z`, fn);
    } catch (e) {
      meanZ?.dispose();
      throw e;
    }
    const handle = new AblationHandle(layer, head, mode, hook, meanZ, (h) => this.handles.delete(h));
    this.handles.add(handle);
    return handle;
  }

  private prepareSweep(input: ModelInput, options: SweepOptions): SweepRun {
    const opts = checkOptions("headAblationSweep", options, ["metric", "metricLabel", "mode", "reference", "onProgress", "signal"]);
    const { mode } = this.ablateOptions("headAblationSweep", { mode: opts.mode, reference: opts.reference });
    const metricOpt = opts.metric ?? "loss";
    if (metricOpt !== "loss" && typeof metricOpt !== "function") fail(`headAblationSweep: metric must be "loss" or a function (logits, rows) => number, got ${show(metricOpt)}`);
    if (opts.onProgress !== undefined && typeof opts.onProgress !== "function") fail(`headAblationSweep: onProgress must be a function (done, total) => void, got ${show(opts.onProgress)}`);
    const label = opts.metricLabel ?? (metricOpt === "loss" ? "loss" : metricOpt.name || "metric");
    if (typeof label !== "string") fail(`headAblationSweep: metricLabel must be a string, got ${show(label)}`);
    const rows = this.model.tokenRows(input);
    if (metricOpt === "loss" && rows[0].length < 2) fail(`headAblationSweep with the loss metric needs at least 2 tokens per sequence, got ${rows[0].length}`);
    const metricFn: SweepMetric = metricOpt === "loss" ? (logits, r) => mean(tokenLosses(logits, r).flat()) : metricOpt;
    const measure = (): number => {
      const logits = this.model.forward(rows);
      try {
        const v = tf.tidy(() => metricFn(logits, rows) as unknown as tf.TensorContainer) as unknown;
        if (typeof v !== "number" || Number.isNaN(v)) fail(`headAblationSweep: the metric must return a number, got ${show(v)}`);
        return v;
      } finally {
        logits.dispose();
      }
    };
    const { nLayers: L, nHeads: H } = this.model.cfg;
    const means = mode === "mean" ? this.meanZs(opts.reference ?? rows, Array.from({ length: L }, (_, l) => l)) : null;
    try {
      const clean = measure();
      const ablated = Array.from({ length: L }, () => new Array<number>(H).fill(NaN));
      // One display updated in place where the host shows progress (the kernel does); nothing elsewhere.
      const bar = startProgress(`head ablation sweep (${mode}, ${L}×${H} heads)`, L * H);
      let done = 0;
      return {
        total: L * H,
        progress: (n) => {
          done = n;
          bar.update(n);
          opts.onProgress?.(n, L * H);
        },
        checkAbort: () => {
          if (opts.signal?.aborted) fail(`headAblationSweep was aborted after ${ablated.flat().filter((v) => !Number.isNaN(v)).length} of ${L * H} heads (the model is restored)`);
        },
        step: (i) => {
          const layer = Math.floor(i / H);
          const head = i % H;
          const meanZ = means ? tf.tidy(() => tf.squeeze(tf.slice(means.get(layer) as tf.Tensor2D, [head, 0], [1, -1]), [0]) as tf.Tensor1D) : null;
          ablated[layer][head] = scoped(this.installAblation(layer, head, mode, meanZ), measure);
        },
        result: () => new HeadSweep(ablated.map((row) => row.map((v) => v - clean)), ablated, clean, label, mode, rows),
        dispose: () => {
          means?.forEach((t) => t.dispose());
          bar.finish(done < L * H ? `stopped after ${done} heads` : undefined);
        },
      };
    } catch (e) {
      means?.forEach((t) => t.dispose());
      throw e;
    }
  }
}

/** One sweep in progress: the sync and async drivers share it. */
interface SweepRun {
  total: number;
  progress(done: number): void;
  checkAbort(): void;
  step(i: number): void;
  result(): HeadSweep;
  dispose(): void;
}

/**
 * Merged copies of one layer's attention weights (head h1 ← alpha·h1 + (1−alpha)·h2, head h2's output rows
 * zero). Unchanged entries are the original tensor objects; `created` lists the new ones (the merge owns them).
 */
function mergedAttention(p: AttnParams, H: number, KV: number, h1: number, h2: number, alpha: number): { merged: AttnParams; created: tf.Tensor[] } {
  const created: tf.Tensor[] = [];
  const make = <T extends tf.Tensor>(t: T): T => {
    created.push(t);
    return t;
  };
  // Weights are stored [in, out]: head h owns columns [h·dh, (h+1)·dh) of wQ/wK/wV and rows of wO.
  const mix = <T extends tf.Tensor>(w: T, axis: number, zeroSlot?: number): T =>
    make(
      tf.tidy(() => {
        const blocks = tf.split(w, H, axis); // one block per head
        blocks[h1] = tf.add(tf.mul(blocks[h1], alpha), tf.mul(blocks[h2], 1 - alpha));
        if (zeroSlot !== undefined) blocks[zeroSlot] = tf.zerosLike(blocks[zeroSlot]);
        return tf.concat(blocks, axis) as T;
      }),
    );
  const merged: AttnParams = { ...p, wQ: mix(p.wQ, 1), wO: mix(p.wO, 0, h2) };
  if (p.bQ) merged.bQ = mix(p.bQ, 0);
  // k/v per kv head: without GQA each head has its own and they are mixed like q; under GQA a shared kv
  // head is left as it is (mergeHeads refuses different kv heads unless alpha = 1, which needs no change).
  if (KV === H) {
    merged.wK = mix(p.wK, 1);
    merged.wV = mix(p.wV, 1);
    if (p.bK) merged.bK = mix(p.bK, 0);
    if (p.bV) merged.bV = mix(p.bV, 0);
  }
  return { merged, created };
}

/**
 * Logit changes between two runs of one sequence: the correct next token's logit change per prediction, and
 * per position the `k` vocabulary ids whose logits moved most (by |Δ|).
 */
function logitChanges(clean: tf.Tensor3D, ablated: tf.Tensor3D, row: number[], k: number): { targetDelta: number[]; top: Omit<LogitChange, "token">[][] } {
  const [, T, V] = clean.shape;
  const [idx, cv, av, target] = tf.tidy(() => {
    const c = tf.reshape(clean, [T * V]);
    const a = tf.reshape(ablated, [T * V]);
    const diff = tf.reshape(tf.sub(a, c), [T, V]); // [pos, vocab]
    const { indices } = tf.topk(tf.abs(diff), k); // [pos, k]
    const flat = tf.add(indices, tf.mul(tf.range(0, T, 1, "int32").reshape([T, 1]), tf.scalar(V, "int32"))); // [pos, k] into [pos·vocab]
    const targets = tf.tensor1d(row.slice(1).map((id, t) => t * V + id), "int32"); // [pos − 1]
    return [indices, tf.gather(c, flat), tf.gather(a, flat), tf.sub(tf.gather(a, targets), tf.gather(c, targets))];
  });
  try {
    const ids = idx.arraySync() as number[][];
    const cs = cv.arraySync() as number[][];
    const as = av.arraySync() as number[][];
    const top = ids.map((r, t) => r.map((id, j) => ({ id, clean: cs[t][j], ablated: as[t][j], delta: as[t][j] - cs[t][j] })));
    return { targetDelta: Array.from(target.dataSync()), top };
  } finally {
    tf.dispose([idx, cv, av, target]);
  }
}
