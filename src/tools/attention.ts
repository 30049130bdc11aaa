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
 * The pieces live beside this file: results (`attention-results.ts`), edits and their handles
 * (`attention-edits.ts`, recorded in the model's ledger), sweeps (`sweeps.ts`) and merge math (`merge-math.ts`).
 *
 * Unlike Arrakis (which computes patterns from weights and returns edited weight copies that never reach the
 * model), patterns here are the real post-softmax `hook_pattern` of a forward pass, and ablations / merges
 * change what every later forward pass of the model computes, until restored.
 *
 * Everything reflects the model as it is at the time of the call: active ablations and merges apply to
 * patterns, comparisons and sweeps too (a sweep's "clean" baseline is the model with them).
 */
import * as tf from "@tensorflow/tfjs";
import { fail, show } from "../errors";
import type { Edit } from "../model/edits";
import { type HookedAutoModel, tokenLosses } from "../model/hooked-model";
import type { ModelInput } from "../model/input";
import { type AblationHandle, installAblation, installPatternMerge, installWeightMerge, type MergeHandle, type MergeMode, scoped } from "./attention-edits";
import { AblationComparison, type AttendedKey, AttentionPattern, AttentionView, type HeadSweep, TopAttended } from "./attention-results";
import { type AttributionOptions, type LogitAttribution, logitAttribution } from "./attribution";
import { type LogitLens, logitLens, type LogitLensOptions } from "./logit-lens";
import { patchHeads, patchResidual, type PatchingOptions, type PatchingResult } from "./patching";
import { checkCount, checkHead, checkLayer, checkOptions, checkUnit, oneSequence, topIndices } from "./common";
import { type DetectorOptions, detectHeads, type HeadScores } from "./detectors";
import { MERGE_SECOND, type MergeSecond } from "./merge-math";
import { type AblateOptions, ablateOptions, type ComparisonOptions, headRow, logitChanges, meanZs, prepareSweep, runSweep, runSweepAsync, type SweepOptions } from "./sweeps";

export { AblationComparison, type AblationMode, type AttendedKey, AttentionPattern, AttentionView, HeadSweep, type LogitChange, type QueryTopKeys, TopAttended } from "./attention-results";
export { AblationHandle, MergeHandle, type MergeMode, type ToolHandle } from "./attention-edits";
export type { MergeSecond } from "./merge-math";
export { PatchingResult, type PatchingMetric, type PatchingOptions } from "./patching";
export { LogitAttribution, type LogitComponent, type ComponentKind, type AttributionOptions } from "./attribution";
export { LogitLens, type LensEntry, type LogitLensOptions } from "./logit-lens";
export type { AblateOptions, ComparisonOptions, SweepMetric, SweepOptions } from "./sweeps";

/** Most attention weights one linked view carries (about a megabyte of HTML). */
export const ATTENTION_VIEW_MAX_WEIGHTS = 250_000;

export interface MergeOptions {
  /** "patterns" (default): blend the attention patterns at hook_pattern; "weights": blend q/k/v/o weights. */
  mode?: MergeMode;
  /** Head h2 after the merge: "remove" (default), "keep", or "blend" (the same blend as h1). */
  h2?: MergeSecond;
}

export class AttentionTools {
  constructor(readonly model: HookedAutoModel) {
    if (!model || typeof (model as { runWithCache?: unknown }).runWithCache !== "function" || !(model as { edits?: unknown }).edits) fail(`AttentionTools expects a HookedAutoModel, got ${show(model)}`);
  }

  /**
   * Ablations and merges of this model that are still active, oldest first (the model's ledger records them,
   * so every AttentionTools of one model sees the same list).
   */
  get active(): Edit[] {
    return this.model.edits.active.filter((e) => e.kind !== "hook");
  }

  /** Restores every active ablation and merge of this model (newest first); user hooks stay (see `model.restoreAll()`). */
  restoreAll(): void {
    for (const e of this.active.reverse()) e.restore();
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
    const { mode, reference } = ablateOptions("ablateHead", options);
    if (mode === "mean" && reference === undefined) {
      fail(`ablateHead: mode "mean" needs a reference input to average over, e.g. ablateHead(${layer}, ${head}, { mode: "mean", reference: "some text" })`);
    }
    const meanZ = mode === "mean" ? this.meanZ(reference as ModelInput, layer, head) : null;
    return installAblation(this.model, layer, head, mode, meanZ);
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
   * Merges head h2 into head h1 of `layer` until `restore()`. By default (`mode: "patterns"`) h1 attends with
   * `alpha·A1 + (1−alpha)·A2`, the blend of the two heads' attention patterns at `hook_pattern`, and keeps its
   * own values and output projection; this is what "combines the attention patterns of two heads" means, and it
   * works for grouped-query attention too (patterns are per query head). `{ mode: "weights" }` instead blends
   * the heads' q/k/v/o weights (a new head whose pattern is in general not the blend, since softmax is not
   * linear; under grouped-query attention only heads of one kv group, or alpha = 1).
   * Head h2: `h2: "remove"` (default: it contributes nothing, as after a zero ablation; the output bias stays),
   * `"keep"` (unchanged) or `"blend"` (it attends with, or gets, the same blend). `restore()` makes the model
   * bit-identical again. One weight merge per layer may be active at a time; pattern merges stack.
   *
   *     const m = attention.mergeHeads(0, 1, 2, 0.5);                          // pattern blend, H2 removed
   *     attention.mergeHeads(0, 1, 2, 0.7, { h2: "keep" });
   *     attention.mergeHeads(0, 1, 2, 0.5, { mode: "weights" });               // weight blend
   *     m.restore();
   */
  mergeHeads(layer: number, h1: number, h2: number, alpha = 0.5, options: MergeOptions = {}): MergeHandle {
    checkLayer(this.model, layer);
    checkHead(this.model, h1);
    checkHead(this.model, h2);
    checkUnit("alpha", alpha);
    const { mode = "patterns", h2: second = "remove" } = checkOptions("mergeHeads", options, ["mode", "h2"]);
    if (mode !== "patterns" && mode !== "weights") fail(`mergeHeads: mode must be "patterns" or "weights", got ${show(mode)}`);
    if (!MERGE_SECOND.includes(second)) fail(`mergeHeads: h2 must be "keep", "remove" or "blend", got ${show(second)}`);
    if (h1 === h2) fail(`mergeHeads needs two different heads, got h1 = h2 = ${h1}`);
    return mode === "patterns" ? installPatternMerge(this.model, layer, h1, h2, alpha, second) : installWeightMerge(this.model, layer, h1, h2, alpha, second);
  }

  /**
   * Runs `fn` with two heads merged and always restores afterwards.
   *
   *     attention.withMergedHeads(0, 1, 2, 0.5, () => model.loss(ids));
   *     attention.withMergedHeads(0, 1, 2, 0.5, { mode: "weights" }, () => model.loss(ids));
   */
  withMergedHeads<R>(layer: number, h1: number, h2: number, fn: () => R): R;
  withMergedHeads<R>(layer: number, h1: number, h2: number, alpha: number, fn: () => R): R;
  withMergedHeads<R>(layer: number, h1: number, h2: number, alpha: number, options: MergeOptions, fn: () => R): R;
  withMergedHeads<R>(layer: number, h1: number, h2: number, ...rest: unknown[]): R {
    const fn = rest[rest.length - 1];
    if (typeof fn !== "function") fail(`withMergedHeads expects a callback as its last argument, got ${show(fn)}`);
    const alpha = rest.length > 1 ? (rest[0] as number) : 0.5;
    const options = rest.length > 2 ? (rest[1] as MergeOptions) : {};
    return scoped(this.mergeHeads(layer, h1, h2, alpha, options), fn as () => R);
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
    const { mode } = ablateOptions("ablationComparison", { mode: opts.mode, reference: opts.reference });
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
    return runSweep(prepareSweep(this.model, input, options));
  }

  /**
   * Like `headAblationSweep`, but yields to the event loop between heads (so a kernel interrupt or an
   * `AbortSignal` can land, and a progress display can update).
   *
   *     await attention.headAblationSweepAsync(ids, { onProgress: (done, total) => console.log(done, total) });
   */
  async headAblationSweepAsync(input: ModelInput, options: SweepOptions = {}): Promise<HeadSweep> {
    return runSweepAsync(prepareSweep(this.model, input, options));
  }

  // ------------------------------------------------------------------ circuits (patching.ts, attribution.ts, logit-lens.ts)

  /**
   * Activation patching of the residual stream: for each layer and position, the corrupted run with the clean
   * `hook_resid_pre` at that position; the grid is (patched − corrupted) / (clean − corrupted).
   *
   *     attention.patchResidual(clean, corrupted, { answer: " Mary", wrong: " John" })   // [layer][position]
   */
  patchResidual(clean: ModelInput, corrupted: ModelInput, options: PatchingOptions = {}): PatchingResult {
    return patchResidual(this.model, clean, corrupted, options);
  }

  /** Activation patching of each head's output (its z at every position): a `[layer][head]` grid, normalised. */
  patchHeads(clean: ModelInput, corrupted: ModelInput, options: PatchingOptions = {}): PatchingResult {
    return patchHeads(this.model, clean, corrupted, options);
  }

  /**
   * Direct logit attribution of logit(answer) − logit(wrong) at the last position (or `position`): embeddings,
   * each head, each MLP, through the final norm with its scale frozen; the parts sum to the model's value.
   */
  logitAttribution(input: ModelInput, answer: number | string, wrong: number | string, options: AttributionOptions = {}): LogitAttribution {
    return logitAttribution(this.model, input, answer, wrong, options);
  }

  /** The logit lens: the residual after the embeddings and after each layer, decoded; top tokens and the next token's rank. */
  logitLens(input: ModelInput, options: LogitLensOptions = {}): LogitLens {
    return logitLens(this.model, input, options);
  }

  /**
   * A linked view of every head's pattern (all layers, or `layers`): tokens as text, head thumbnails, hover a
   * token to see where it attends and what attends to it. Static heatmap of the selected head without scripts.
   *
   *     attention.attentionView("the cat sat on the mat", { layer: 1, head: 0 })
   */
  attentionView(input: ModelInput, options: { layers?: number[]; layer?: number; head?: number } = {}): AttentionView {
    const opts = checkOptions("attentionView", options, ["layers", "layer", "head"]);
    const layers = opts.layers ?? Array.from({ length: this.model.cfg.nLayers }, (_, l) => l);
    if (!Array.isArray(layers) || !layers.length) fail(`attentionView: layers must be a non-empty list of layer indices, got ${show(layers)}`);
    layers.forEach((l) => checkLayer(this.model, l));
    const layer = opts.layer ?? layers[0];
    if (!layers.includes(layer)) fail(`attentionView: layer ${show(layer)} is not among the layers shown (${layers.join(", ")})`);
    const head = opts.head ?? 0;
    checkHead(this.model, head);
    const row = oneSequence(this.model, input, "attentionView");
    // Every weight travels in the output's HTML: keep one view near a megabyte.
    const weights = layers.length * this.model.cfg.nHeads * row.length * row.length;
    if (weights > ATTENTION_VIEW_MAX_WEIGHTS) {
      fail(`attentionView: ${layers.length} layer(s) × ${this.model.cfg.nHeads} heads × ${row.length}² positions = ${weights.toLocaleString("en")} weights, more than one view holds (${ATTENTION_VIEW_MAX_WEIGHTS.toLocaleString("en")}); pass { layers: [${layer}] } or a shorter input`);
    }
    const names = layers.map((l) => `blocks.${l}.attn.hook_pattern`);
    const { logits, cache } = this.model.runWithCache([row], { names });
    try {
      const patterns = names.map((n) => (cache.get(n).arraySync() as number[][][][])[0]); // [head][q][k]
      return new AttentionView(layers, row, this.strTokens(row), patterns, { layer, head });
    } finally {
      logits.dispose();
      cache.dispose();
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

  /** Mean z `[d_head]` of one head over the reference's batch and positions. */
  private meanZ(reference: ModelInput, layer: number, head: number): tf.Tensor1D {
    const all = meanZs(this.model, reference, [layer]).get(layer) as tf.Tensor2D;
    try {
      return headRow(all, head);
    } finally {
      all.dispose();
    }
  }
}
