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
import { wrapRunKernel } from "../src/patches/tf-run-kernel";
import { patchStatus } from "../src/patches";
import { InterruptError } from "./coroutine";
import { InterruptState } from "./interrupt-state";
import { kernelLog } from "./log";
import type { TfLike } from "./recover";

export function installOpInterrupts(tf: TfLike | undefined, state: InterruptState): void {
  const applied = wrapRunKernel(tf, (call) => {
    if (state.takeInterrupt(state.running)) throw new InterruptError(false);
    state.enterKernel();
    try {
      return call();
    } finally {
      state.exitKernel();
    }
  });
  if (!applied) kernelLog(`tf.js kernel wrapper not installed (${patchStatus("tf-run-kernel")?.reason}): synchronous tf.js code is interruptible only by SIGINT`);
}
