/**
 * Where a model's weights live. On the wasm backend the heap holds at most 4 GiB; a model too big for it that
 * runs on the onnxruntime engine keeps its weights in TF.js's cpu storage instead (plain JS memory, bounded by
 * the machine), which the engine feeds to onnxruntime in place. tf ops on such weights (a merge) move only the
 * tensors they touch into the active backend.
 */
import * as tf from "@tensorflow/tfjs";
import { fail } from "../errors";
import type { ModelDims } from "../model/types";
import { checkModelFits } from "../model/size";
import { type EngineChoice, engineFor } from "./engine";

/** Whether a model with these dims should keep its weights outside the wasm heap (see above). */
export function weightsOutsideWasm(cfg: Readonly<ModelDims>, choice?: EngineChoice): boolean {
  if (tf.getBackend() !== "wasm" || engineFor(cfg, undefined, choice).engine.name !== "ort") return false;
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
