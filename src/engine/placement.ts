/**
 * Where a model's weights live. On the wasm backend the heap holds at most 4 GiB; a model that runs on the
 * onnxruntime engine and is too big for it, or big enough that copies cost more than they save, keeps its weights
 * in TF.js's cpu storage instead (plain JS memory, bounded by the machine), which the engine feeds to
 * onnxruntime in place. tf ops on such weights (a merge) move only the tensors they touch into the active backend.
 */
import * as tf from "@tensorflow/tfjs";
import { fail } from "../errors";
import type { ModelDims } from "../model/types";
import { checkModelFits, modelSize } from "../model/size";
import { type EngineChoice, engineFor } from "./engine";

/**
 * Weights at least this big are fed to onnxruntime in place even when they would fit the wasm heap. Weights
 * in the heap are copied into every compiled variant of a stage as initializers (plain, with cache outputs,
 * per set of cuts): a Qwen2.5-0.5B-sized model (1.84 GiB) peaked at 7.3 GiB RSS and spent 17 s of CPU
 * building its first run that way, against 3.4 GiB and 5 s in place (its second run ~25% slower: onnxruntime
 * cannot prepack weights that arrive as inputs). Smaller models keep the initializers, which run faster.
 */
export const IN_PLACE_MIN_BYTES = 2 ** 30;

/** Whether a model with these dims should keep its weights outside the wasm heap (see above). */
export function weightsOutsideWasm(cfg: Readonly<ModelDims>, choice?: EngineChoice): boolean {
  if (tf.getBackend() !== "wasm" || engineFor(cfg, undefined, choice).engine.name !== "ort") return false;
  if (modelSize(cfg as ModelDims).heldBytes >= IN_PLACE_MIN_BYTES) return true;
  try {
    checkModelFits(cfg as ModelDims, "the wasm heap");
    return false;
  } catch {
    return true;
  }
}

/**
 * Runs fn with TF.js's cpu backend active (tensors it makes live in JS memory), then switches back. Both
 * backends are registered and initialised, so each switch completes synchronously (the promise is a formality).
 */
export function onCpuBackend<T>(fn: () => T): T {
  const previous = tf.getBackend();
  void tf.setBackend("cpu");
  if (tf.getBackend() !== "cpu") fail("could not switch to TF.js's cpu backend synchronously to hold the weights");
  try {
    return fn();
  } finally {
    void tf.setBackend(previous);
  }
}
