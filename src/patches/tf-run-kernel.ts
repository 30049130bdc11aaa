/**
 * A wrapper around every tf.js kernel call. Every op goes through `engine.runKernel` (a method of the tfjs-core
 * Engine, not public API), so replacing it on the engine instance puts code before and after each kernel: the
 * kernel uses it to raise a soft interrupt inside a long synchronous loop and to count kernels in flight.
 */
import { ApplyOptions, guarded, PatchSpec } from "./index";

export const TF_RUN_KERNEL: PatchSpec = {
  name: "tf-run-kernel",
  target: "@tensorflow/tfjs-core",
  pinned: "4.22.0",
  does: "engine.runKernel is wrapped (interrupt points inside synchronous tf.js code)",
  withoutIt: "synchronous tf.js code is interruptible only by SIGINT, which is then not held back while a kernel runs",
};

/** The part of the tf namespace the tfjs-core patches need (the kernel passes the project's own tf). */
export interface TfCoreLike {
  engine(): unknown;
  version_core?: string;
}

type RunKernel = (this: unknown, ...args: unknown[]) => unknown;

/**
 * Replaces `tf.engine().runKernel` with `around(call)`, where `call()` runs the original kernel call.
 * Returns false (and records why) when skipped: another tfjs-core version, or no engine with a runKernel.
 */
export function wrapRunKernel(tf: TfCoreLike | undefined, around: (call: () => unknown) => unknown, opts: ApplyOptions = {}): boolean {
  const applied = guarded(TF_RUN_KERNEL, opts.version ?? tf?.version_core, () => {
    const engine = tf?.engine() as { runKernel?: RunKernel } | undefined;
    if (!engine || typeof engine.runKernel !== "function") throw new Error("tf.engine() has no runKernel method");
    const runKernel = engine.runKernel;
    engine.runKernel = function (this: unknown, ...args: unknown[]) {
      return around(() => runKernel.apply(this, args));
    };
    return true;
  });
  return applied === true;
}
