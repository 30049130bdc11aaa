/**
 * Activation patching (denoising, as TransformerLens' `patching` module): run the corrupted input, copy one
 * activation of the clean run into it, and measure how much of the clean behaviour comes back:
 *
 *     normalised = (patched − corrupted) / (clean − corrupted)        1 = fully restored, 0 = no effect
 *
 * - residual stream: `blocks.{l}.hook_resid_pre` at one position (TransformerLens `get_act_patch_resid_pre`),
 *   a `[layer][position]` grid;
 * - each head's output: the head's slice of `blocks.{l}.attn.hook_z` at every position (TransformerLens
 *   `get_act_patch_attn_head_out_all_pos`), a `[layer][head]` grid.
 *
 * Batched: one forward per layer and chunk, batch row i patching the i-th position (or head) of that chunk.
 */
import * as tf from "@tensorflow/tfjs";
import { type Displayable, formatToken, type MimeBundle, patchingView, startProgress } from "../display";
import { fail, show } from "../errors";
import type { HookedAutoModel } from "../model/hooked-model";
import type { ModelInput } from "../model/input";
import { checkCount, checkOptions, fmt, oneSequence, textTable, tok, topIndices } from "./common";

export type PatchingMetric = "logitDiff" | "loss";

export interface PatchingOptions {
  /**
   * "logitDiff" (default when `answer` is given): logit of `answer` minus logit of `wrong` at `position`;
   * "loss": mean next-token loss on the clean tokens (lower is better; normalised the same way).
   */
  metric?: PatchingMetric;
  /** The correct token (id, or a string that is one token). */
  answer?: number | string;
  /** The competing token (id or one-token string). */
  wrong?: number | string;
  /** Position whose logits the logit difference reads (default: the last). */
  position?: number;
  /** Batch rows per forward (default 16). */
  batchSize?: number;
}

/** What one patching experiment measured, as a grid (rows = layers). */
export class PatchingResult implements Displayable {
  constructor(
    /** "resid_pre" (columns = positions) or "head" (columns = heads). */
    readonly target: "resid_pre" | "head",
    /** Normalised effect `[layer][column]`: (patched − corrupted) / (clean − corrupted). */
    readonly values: number[][],
    /** The metric of each patched run, `[layer][column]`. */
    readonly patched: number[][],
    readonly clean: number,
    readonly corrupted: number,
    readonly metricLabel: string,
    /** Column labels: position + clean token / corrupted token (resid), or "H{h}" (heads). */
    readonly columns: string[],
  ) {}

  /** The k cells that restore the most, largest first. */
  top(k = 5): { layer: number; column: number; label: string; value: number }[] {
    checkCount("k", k);
    const flat = this.values.flatMap((row, layer) => row.map((value, column) => ({ layer, column, label: this.columns[column], value })));
    return topIndices(flat.map((e) => e.value), k).map((i) => flat[i]);
  }

  get title(): string {
    const what = this.target === "head" ? "each head's output (all positions)" : "the residual stream (resid_pre) at each position";
    return `Activation patching of ${what}: ${this.metricLabel} restored`;
  }

  toMimeBundle(): MimeBundle {
    return patchingView({
      values: this.values,
      columns: this.columns,
      columnTitle: this.target === "head" ? "head" : "position (clean / corrupted token)",
      title: this.title,
      subtitle: `(patched − corrupted) / (clean − corrupted); clean ${fmt(this.clean)}, corrupted ${fmt(this.corrupted)}`,
      metricLabel: "restored fraction",
      raw: this.patched,
    });
  }

  toJSON(): object {
    const { target, values, patched, clean, corrupted, metricLabel, columns } = this;
    return { target, values, patched, clean, corrupted, metricLabel, columns };
  }

  toString(): string {
    const rows = [["layer", ...this.columns.map((c) => tok(c, 10))], ...this.values.map((row, l) => [`L${l}`, ...row.map((v) => fmt(v, 2))])];
    const best = this.top(Math.min(3, this.values.length * this.columns.length));
    return [
      `PatchingResult(${this.target}; ${this.metricLabel}: clean ${fmt(this.clean)}, corrupted ${fmt(this.corrupted)}; normalised)`,
      textTable(rows),
      `largest: ${best.map((e) => `L${e.layer} ${e.label} ${fmt(e.value, 3)}`).join(", ")}`,
    ].join("\n");
  }
}

/** One token id from an id or a one-token string. */
export function tokenId(model: HookedAutoModel, x: unknown, what: string): number {
  if (typeof x === "number") {
    if (!Number.isInteger(x) || x < 0 || x >= model.cfg.dVocab) fail(`${what} must be a token id in [0, ${model.cfg.dVocab - 1}], got ${show(x)}`);
    return x;
  }
  if (typeof x === "string") {
    if (!model.tokenizer) fail(`${what} ${show(x)} is a string but the model has no tokenizer: pass a token id`);
    const ids = model.tokenizer.encode(x);
    if (ids.length !== 1) fail(`${what} ${show(x)} is ${ids.length} tokens (${ids.join(", ")}); pass one token or its id`);
    return ids[0];
  }
  return fail(`${what} must be a token id or a one-token string, got ${show(x)}`);
}

/** A per-row metric of logits `[batch, pos, vocab]` → one number per batch row. */
type RowMetric = (logits: tf.Tensor3D) => number[];

interface Setup {
  clean: number[];
  corrupted: number[];
  metric: RowMetric;
  label: string;
  batch: number;
}

function setup(model: HookedAutoModel, cleanIn: ModelInput, corruptedIn: ModelInput, options: PatchingOptions, where: string): Setup {
  const opts = checkOptions(where, options, ["metric", "answer", "wrong", "position", "batchSize"]);
  const clean = oneSequence(model, cleanIn, where);
  const corrupted = oneSequence(model, corruptedIn, where);
  if (clean.length !== corrupted.length) fail(`${where}: clean and corrupted inputs must have the same number of tokens, got ${clean.length} and ${corrupted.length}`);
  const T = clean.length;
  const batch = checkCount("batchSize", opts.batchSize ?? 16);
  const kind = opts.metric ?? (opts.answer !== undefined ? "logitDiff" : undefined);
  if (kind === "logitDiff") {
    if (opts.answer === undefined || opts.wrong === undefined) fail(`${where}: the logit difference needs { answer, wrong } tokens`);
    const a = tokenId(model, opts.answer, "answer");
    const b = tokenId(model, opts.wrong, "wrong");
    const pos = opts.position ?? T - 1;
    if (!Number.isInteger(pos) || pos < 0 || pos >= T) fail(`${where}: position must be an integer in [0, ${T - 1}], got ${show(pos)}`);
    const metric: RowMetric = (logits) => {
      const d = tf.tidy(() => {
        const at = tf.squeeze(tf.slice(logits, [0, pos, 0], [-1, 1, -1]), [1]); // [batch, vocab]
        return tf.sub(tf.gather(at, a, 1), tf.gather(at, b, 1)); // [batch]
      });
      const out = Array.from(d.dataSync());
      d.dispose();
      return out;
    };
    return { clean, corrupted, metric, label: `logit(${tok(model.idToToken(a))}) − logit(${tok(model.idToToken(b))}) at ${pos}`, batch };
  }
  if (kind !== "loss") fail(`${where}: metric must be "logitDiff" (with answer and wrong) or "loss", got ${show(kind)}`);
  if (T < 2) fail(`${where}: the loss metric needs at least 2 tokens, got ${T}`);
  const metric: RowMetric = (logits) => {
    const d = tf.tidy(() => {
      const [B, , V] = logits.shape;
      const logp = tf.logSoftmax(tf.slice(logits, [0, 0, 0], [B, T - 1, V])); // [batch, pos-1, vocab]
      const target = tf.oneHot(tf.tensor1d(clean.slice(1), "int32"), V).expandDims(0); // [1, pos-1, vocab]
      return tf.neg(tf.mean(tf.sum(tf.mul(logp, target), -1), -1)); // [batch]
    });
    const out = Array.from(d.dataSync());
    d.dispose();
    return out;
  };
  return { clean, corrupted, metric, label: "loss on the clean tokens", batch };
}

/** The metric of one unpatched sequence. */
function measureOne(model: HookedAutoModel, row: number[], metric: RowMetric): number {
  const logits = model.forward([row]);
  try {
    return metric(logits)[0];
  } finally {
    logits.dispose();
  }
}

/**
 * Runs `count` patches of one layer in chunks: `hook(chunkStart, n)` makes the hook for a batch of n rows
 * (row i patches item chunkStart + i). Returns the metric per item.
 */
function patchLayer(model: HookedAutoModel, s: Setup, hookName: string, count: number, hook: (start: number, n: number) => (x: tf.Tensor) => tf.Tensor): number[] {
  const out: number[] = [];
  for (let start = 0; start < count; start += s.batch) {
    const n = Math.min(s.batch, count - start);
    const logits = model.runWithHooks(Array.from({ length: n }, () => s.corrupted), [[hookName, hook(start, n)]]);
    try {
      out.push(...s.metric(logits));
    } finally {
      logits.dispose();
    }
  }
  return out;
}

function finish(target: "resid_pre" | "head", patched: number[][], clean: number, corrupted: number, label: string, columns: string[]): PatchingResult {
  const span = clean - corrupted;
  if (span === 0) fail(`activation patching: the clean and corrupted inputs give the same ${label} (${fmt(clean)}), so nothing can be normalised; pick inputs that differ in the metric`);
  return new PatchingResult(target, patched.map((row) => row.map((p) => (p - corrupted) / span)), patched, clean, corrupted, label, columns);
}

/** Cached clean activations of `names` for one sequence, each as a tensor owned by the caller. */
function cleanActs(model: HookedAutoModel, row: number[], names: string[]): { metricLogits: tf.Tensor3D; acts: Map<string, tf.Tensor> } {
  const { logits, cache } = model.runWithCache([row], { names });
  try {
    return { metricLogits: logits, acts: new Map(names.map((n) => [n, tf.clone(cache.get(n))])) };
  } finally {
    cache.dispose();
  }
}

/**
 * The sweep both patching tools share: the clean run's activations at `hook` in every layer, the clean and
 * corrupted metrics, then per layer `count` patched runs in batches, where `patchFrom(cleanAct)(start, n)` makes
 * the hook for a batch whose row i patches item start + i. Progress is shown per layer; the clean activations
 * are freed even when a layer throws.
 */
function patchEveryLayer(
  model: HookedAutoModel, s: Setup, hook: string, count: number, progress: string,
  patchFrom: (cleanAct: tf.Tensor) => (start: number, n: number) => (x: tf.Tensor) => tf.Tensor,
): { clean: number; corrupted: number; patched: number[][] } {
  const L = model.cfg.nLayers;
  const names = Array.from({ length: L }, (_, l) => `blocks.${l}.${hook}`);
  const { metricLogits, acts } = cleanActs(model, s.clean, names);
  const bar = startProgress(progress, L);
  let done = 0;
  try {
    const clean = s.metric(metricLogits)[0];
    const corrupted = measureOne(model, s.corrupted, s.metric);
    const patched = names.map((name) => {
      const row = patchLayer(model, s, name, count, patchFrom(acts.get(name)!));
      bar.update(++done);
      return row;
    });
    return { clean, corrupted, patched };
  } finally {
    bar.finish(done < L ? `stopped after ${done} layers` : undefined);
    metricLogits.dispose();
    tf.dispose([...acts.values()]);
  }
}

/** Patch the clean residual stream into the corrupted run at each (layer, position). */
export function patchResidual(model: HookedAutoModel, cleanIn: ModelInput, corruptedIn: ModelInput, options: PatchingOptions = {}): PatchingResult {
  const s = setup(model, cleanIn, corruptedIn, options, "patchResidual");
  const { nLayers: L, dModel: D } = model.cfg;
  const T = s.clean.length;
  const { clean, corrupted, patched } = patchEveryLayer(model, s, "hook_resid_pre", T, `residual patching (${L} layers × ${T} positions)`,
    (cleanResid) => (start, n) => (x) => // cleanResid: [1, pos, d_model]
      tf.tidy(() => {
        // Row i takes the clean residual at position start + i and keeps the corrupted one elsewhere.
        const m = new Float32Array(n * T);
        for (let i = 0; i < n; i++) m[i * T + start + i] = 1;
        const mask = tf.tensor3d(m, [n, T, 1]); // [batch, pos, 1]
        return tf.add(tf.mul(x, tf.sub(1, mask)), tf.mul(tf.broadcastTo(cleanResid, [n, T, D]), mask));
      }),
  );
  const columns = s.clean.map((id, p) => {
    const c = model.idToToken(id);
    const k = model.idToToken(s.corrupted[p]);
    return c === k ? `${p} ${formatToken(c)}` : `${p} ${formatToken(c)} / ${formatToken(k)}`;
  });
  return finish("resid_pre", patched, clean, corrupted, s.label, columns);
}

/** Patch each head's clean output (its z at every position) into the corrupted run. */
export function patchHeads(model: HookedAutoModel, cleanIn: ModelInput, corruptedIn: ModelInput, options: PatchingOptions = {}): PatchingResult {
  const s = setup(model, cleanIn, corruptedIn, options, "patchHeads");
  const { nLayers: L, nHeads: H, dHead } = model.cfg;
  const T = s.clean.length;
  const { clean, corrupted, patched } = patchEveryLayer(model, s, "attn.hook_z", H, `head patching (${L} layers × ${H} heads)`,
    (cleanZ) => (start, n) => (z) => // cleanZ: [1, pos, head, d_head]
      tf.tidy(() => {
        // Row i takes head start + i's clean z at every position.
        const m = new Float32Array(n * H);
        for (let i = 0; i < n; i++) m[i * H + start + i] = 1;
        const mask = tf.tensor4d(m, [n, 1, H, 1]); // [batch, 1, head, 1]
        return tf.add(tf.mul(z, tf.sub(1, mask)), tf.mul(tf.broadcastTo(cleanZ, [n, T, H, dHead]), mask));
      }),
  );
  return finish("head", patched, clean, corrupted, s.label, Array.from({ length: H }, (_, h) => `H${h}`));
}
