/**
 * Runs of the model under ablation: the head ablation sweep (sync and async drivers over one shared run),
 * the mean z a mean ablation substitutes, and the logit changes an ablation comparison reports.
 */
import * as tf from "@tensorflow/tfjs";
import { startProgress } from "../display";
import { fail, show } from "../errors";
import { type HookedAutoModel, tokenLosses } from "../model/hooked-model";
import type { ModelInput } from "../model/input";
import { installAblation, scoped } from "./attention-edits";
import { type AblationMode, HeadSweep, type LogitChange, mean } from "./attention-results";
import { checkOptions } from "./common";

/** A sweep metric: a number from the logits `[batch, pos, vocab]` (owned by the sweep) and the token rows. */
export type SweepMetric = (logits: tf.Tensor3D, rows: number[][]) => number;

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

const MODES: readonly AblationMode[] = ["zero", "mean"];

/** Validated ablation options. */
export function ablateOptions(where: string, options: AblateOptions): { mode: AblationMode; reference: ModelInput | undefined } {
  const { mode = "zero", reference } = checkOptions(where, options, ["mode", "reference"]);
  if (!MODES.includes(mode)) fail(`${where}: mode must be "zero" or "mean", got ${show(mode)}`);
  return { mode, reference };
}

/** Mean z of every head of `layers` over the reference's batch and positions: layer → `[head, d_head]`. */
export function meanZs(model: HookedAutoModel, reference: ModelInput, layers: number[]): Map<number, tf.Tensor2D> {
  const names = layers.map((l) => `blocks.${l}.attn.hook_z`);
  const { logits, cache } = model.runWithCache(reference, { names });
  try {
    return new Map(layers.map((l, i) => [l, tf.tidy(() => tf.mean(cache.get(names[i]), [0, 1]) as tf.Tensor2D)])); // [head, d_head]
  } finally {
    logits.dispose();
    cache.dispose();
  }
}

/** Row `head` of a `[head, d_head]` tensor, as a new `[d_head]` tensor. */
export function headRow(all: tf.Tensor2D, head: number): tf.Tensor1D {
  return tf.tidy(() => tf.squeeze(tf.slice(all, [head, 0], [1, -1]), [0]) as tf.Tensor1D);
}

/** Lets pending I/O and signal handlers (a kernel interrupt) run between heads of an async sweep. */
export const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

/** One sweep in progress: the sync and async drivers share it. */
export interface SweepRun {
  total: number;
  progress(done: number): void;
  checkAbort(): void;
  step(i: number): void;
  result(): HeadSweep;
  dispose(): void;
}

/** Validates a sweep's options, measures the clean metric and returns the run the drivers step through. */
export function prepareSweep(model: HookedAutoModel, input: ModelInput, options: SweepOptions): SweepRun {
  const opts = checkOptions("headAblationSweep", options, ["metric", "metricLabel", "mode", "reference", "onProgress", "signal"]);
  const { mode } = ablateOptions("headAblationSweep", { mode: opts.mode, reference: opts.reference });
  const metricOpt = opts.metric ?? "loss";
  if (metricOpt !== "loss" && typeof metricOpt !== "function") fail(`headAblationSweep: metric must be "loss" or a function (logits, rows) => number, got ${show(metricOpt)}`);
  if (opts.onProgress !== undefined && typeof opts.onProgress !== "function") fail(`headAblationSweep: onProgress must be a function (done, total) => void, got ${show(opts.onProgress)}`);
  const label = opts.metricLabel ?? (metricOpt === "loss" ? "loss" : metricOpt.name || "metric");
  if (typeof label !== "string") fail(`headAblationSweep: metricLabel must be a string, got ${show(label)}`);
  const rows = model.tokenRows(input);
  if (metricOpt === "loss" && rows[0].length < 2) fail(`headAblationSweep with the loss metric needs at least 2 tokens per sequence, got ${rows[0].length}`);
  const metricFn: SweepMetric = metricOpt === "loss" ? (logits, r) => mean(tokenLosses(logits, r).flat()) : metricOpt;
  const measure = (): number => {
    const logits = model.forward(rows);
    try {
      const v = tf.tidy(() => metricFn(logits, rows) as unknown as tf.TensorContainer) as unknown;
      if (typeof v !== "number" || Number.isNaN(v)) fail(`headAblationSweep: the metric must return a number, got ${show(v)}`);
      return v;
    } finally {
      logits.dispose();
    }
  };
  const { nLayers: L, nHeads: H } = model.cfg;
  const means = mode === "mean" ? meanZs(model, opts.reference ?? rows, Array.from({ length: L }, (_, l) => l)) : null;
  // The engine's batched path (several heads per forward, the clean prefix reused) when it has one.
  const batches = model.ablationBatches(rows);
  try {
    // The built-in loss on the batched path is computed inside the engine (the logits never leave it); the
    // clean value is measured the same way, so a head that changes nothing has a delta of exactly 0.
    const lossInEngine = batches !== null && metricOpt === "loss";
    const clean = lossInEngine ? mean(batches.cleanLoss().flat()) : measure();
    const ablated = Array.from({ length: L }, () => new Array<number>(H).fill(NaN));
    const batchedLayer = new Map<number, number[]>();
    const runLayerBatched = (layer: number): number[] => {
      const out = new Array<number>(H).fill(NaN);
      const meanRows = means ? ((means.get(layer) as tf.Tensor2D).dataSync() as Float32Array) : null; // [head, d_head]
      const dh = model.cfg.dHead;
      const heads = Array.from({ length: H }, (_, head) => ({ head, fill: meanRows?.slice(head * dh, (head + 1) * dh) }));
      if (lossInEngine) {
        batches.lossLayer(layer, heads).forEach((perToken, i) => (out[heads[i].head] = mean(perToken.flat())));
        return out;
      }
      batches!.runLayer(layer, heads, (i, logits) => {
        const v = tf.tidy(() => metricFn(logits, rows) as unknown as tf.TensorContainer) as unknown;
        if (typeof v !== "number" || Number.isNaN(v)) fail(`headAblationSweep: the metric must return a number, got ${show(v)}`);
        out[heads[i].head] = v;
      });
      return out;
    };
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
        if (batches) {
          // All heads of a layer in one batched run from the clean prefix; the other steps read the results.
          if (head === 0 || !batchedLayer.has(layer)) batchedLayer.set(layer, runLayerBatched(layer));
          ablated[layer][head] = batchedLayer.get(layer)![head];
          return;
        }
        const meanZ = means ? headRow(means.get(layer) as tf.Tensor2D, head) : null;
        ablated[layer][head] = scoped(installAblation(model, layer, head, mode, meanZ), measure);
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

/** Steps a sweep to the end in one go. */
export function runSweep(sweep: SweepRun): HeadSweep {
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

/** Steps a sweep, yielding to the event loop before each head (interrupts, abort signals, progress). */
export async function runSweepAsync(sweep: SweepRun): Promise<HeadSweep> {
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

/**
 * Logit changes between two runs of one sequence: the correct next token's logit change per prediction, and
 * per position the `k` vocabulary ids whose logits moved most (by |Δ|).
 */
export function logitChanges(clean: tf.Tensor3D, ablated: tf.Tensor3D, row: number[], k: number): { targetDelta: number[]; top: Omit<LogitChange, "token">[][] } {
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
