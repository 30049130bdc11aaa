/** Ownership helpers for the parameter tree (which tf's TensorContainer type cannot name). */
import * as tf from "@tensorflow/tfjs";
import type { ModelParams } from "./types";

/** tf.tidy for a function returning the parameter tree: intermediates are freed, and everything on a throw. */
export function tidyParams(fn: () => ModelParams): ModelParams {
  return tf.tidy(() => fn() as unknown as tf.TensorContainer) as unknown as ModelParams;
}

export function disposeParams(p: ModelParams): void {
  tf.dispose(p as unknown as tf.TensorContainer);
}
