/**
 * What an engine needs from a model and what one forward pass asks of it. Kept apart from the model class so
 * engines and the model can import it without importing each other.
 */
import type * as tf from "@tensorflow/tfjs";
import type { ActivationCache } from "../model/cache";
import type { HookFn } from "../model/hooks";
import type { ModelDims, ModelParams } from "../model/types";

export type EngineName = "ort" | "tfjs";

/** The parts of a model an engine reads. */
export interface EngineModel {
  readonly cfg: Readonly<ModelDims>;
  /** The weights; an engine holding its own copy notices swapped entries (merges) and rebuilds that layer. */
  readonly params: ModelParams;
  /** The edit ledger, when the model has one: a per-layer counter bumped by every weight edit. */
  readonly edits?: { layerVersion(layer: number): number };
  /**
   * The weights live in TF.js's cpu storage (a model too big for the wasm heap): an engine should read them in
   * place rather than copy them (onnxruntime: weights as graph inputs instead of initializers).
   */
  readonly weightsAsInputs?: boolean;
}

/** One forward pass: token rows, the hooks attached, and what to cache. */
export interface RunRequest {
  rows: number[][];
  /** The hooks at a point (in order), or undefined. */
  hooksAt(name: string): readonly HookFn[] | undefined;
  /** Whether a hook point is recorded into `cache`. */
  caches(name: string): boolean;
  cache: ActivationCache | null;
  /** Records values computed outside TF.js at a cached point (the cache takes ownership of the array). */
  record(name: string, values: Float32Array, shape: number[]): void;
  /**
   * Applies the hooks at a point and records it when cached; returns the tensor the pass continues with (the
   * input itself, or a tensor owned by the current tidy scope).
   */
  point<X extends tf.Tensor>(name: string, layer: number | null, x: X): X;
}

/** One head to ablate: its z slot is set to 0, or to `fill` [d_head] (a mean ablation). */
export interface AblatedHead {
  head: number;
  fill?: Float32Array;
}

/**
 * Head ablations in batches over one clean pass (sweeps): the residual stream entering every block is kept, and
 * each call runs the blocks from `layer` on with one batch row group per ablated head (a few heads per run).
 */
export interface AblationBatches {
  /** Ablates each listed head of `layer` alone; `each(i, logits)` gets head i's logits `[batch, pos, vocab]`, owned by the batches and valid only during the call. */
  runLayer(layer: number, heads: AblatedHead[], each: (i: number, logits: tf.Tensor3D) => void): void;
  /**
   * The next-token loss at every position of each listed head's ablation, computed inside the engine so no
   * logits leave it: per head `[batch][pos − 1]`. Needs at least 2 tokens per row.
   */
  lossLayer(layer: number, heads: AblatedHead[]): number[][][];
  /** The clean run's next-token losses `[batch][pos − 1]`, computed the same way as `lossLayer`'s. */
  cleanLoss(): number[][];
}

/** Runs one model. Created per model by its engine; holds whatever the engine keeps per model. */
export interface Runner {
  /** Logits `[batch, pos, vocab]`, owned by the caller. */
  run(req: RunRequest): tf.Tensor3D;
  /**
   * Batched head ablations with the clean prefix reused (sweeps); absent when the engine has no faster way than
   * one hooked forward per head.
   */
  ablationBatches?(rows: number[][]): AblationBatches;
  /** Frees what the runner holds (sessions, copies of weights). */
  dispose(): void;
}

export interface Engine {
  readonly name: EngineName;
  /** Why this engine cannot run a model with these dims, or null when it can. */
  unsupported(cfg: Readonly<ModelDims>, params?: ModelParams): string | null;
  runner(model: EngineModel): Runner;
}
