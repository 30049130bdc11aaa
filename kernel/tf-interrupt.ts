/**
 * Interrupt points inside synchronous tf.js code. Every tf.js op goes through `engine.runKernel`; checking
 * the shared interrupt flag there lets a soft interrupt land within one op even in a long synchronous
 * loop (a forward pass per head, a sweep without awaits), as an ordinary exception: `tidy` closes its
 * scopes and the tools' `finally` blocks restore ablations, exactly as for any other error.
 *
 * The same wrapper counts the kernels in flight so the control worker holds back SIGINT while one runs:
 * terminating code inside the wasm backend (e.g. in its malloc) can corrupt the module's heap, after which
 * ops hang. Measured here: a forward pass terminated mid-kernel made the next forward loop forever.
 */
import { InterruptError } from "./coroutine";
import { InterruptState } from "./interrupt-state";
import { kernelLog } from "./log";
import type { TfLike } from "./recover";

type RunKernel = (this: unknown, ...args: unknown[]) => unknown;

export function installOpInterrupts(tf: TfLike | undefined, state: InterruptState): void {
  const engine = tf?.engine() as { runKernel?: RunKernel } | undefined;
  if (!engine || typeof engine.runKernel !== "function") {
    kernelLog("tf.js engine not found: synchronous tf.js code is interruptible only by SIGINT");
    return;
  }
  const runKernel = engine.runKernel;
  engine.runKernel = function (this: unknown, ...args: unknown[]) {
    if (state.takeInterrupt(state.running)) throw new InterruptError(false);
    state.enterKernel();
    try {
      return runKernel.apply(this, args);
    } finally {
      state.exitKernel();
    }
  };
}
