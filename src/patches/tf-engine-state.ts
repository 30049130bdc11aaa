/**
 * Closing tf.js scopes that terminated code left open. A hard interrupt (SIGINT ending synchronous code)
 * skips the `endScope` of every `tidy` it was inside: an open scope would adopt every tensor created later,
 * and the engine would believe a kernel or a gradient tape is still running. This reads and writes fields of
 * the tfjs-core Engine's private `state` (`scopeStack`, `kernelDepth`, `gradientDepth`, `activeTape`).
 */
import { ApplyOptions, guarded, PatchSpec } from "./index";
import type { TfCoreLike } from "./tf-run-kernel";

export const TF_ENGINE_STATE: PatchSpec = {
  name: "tf-engine-state",
  target: "@tensorflow/tfjs-core",
  pinned: "4.22.0",
  does: "after a hard interrupt, tf.js scopes left open are closed and the kernel/gradient depths reset",
  withoutIt: "after a hard interrupt, tf.js scopes left open stay open (tensors created later are adopted by them): restart the kernel",
};

interface EngineState {
  scopeStack: unknown[];
  kernelDepth: number;
  gradientDepth: number;
  activeTape: unknown;
}
interface Engine {
  state: EngineState;
  endScope(result?: unknown): void;
}

/** The engine's scope depth (0 when the engine or its state cannot be read). */
export function scopeDepth(tf: TfCoreLike | undefined): number {
  const e = tf?.engine() as Engine | undefined;
  return e?.state?.scopeStack?.length ?? 0;
}

/**
 * Ends scopes above `baselineDepth` and resets the kernel and gradient depths. Returns how many scopes it
 * closed, or null when skipped (another tfjs-core version; the reason is in `patchReport()`).
 */
export function closeOpenScopes(tf: TfCoreLike | undefined, baselineDepth: number, opts: ApplyOptions = {}): number | null {
  const closed = guarded(TF_ENGINE_STATE, opts.version ?? tf?.version_core, () => {
    const e = tf?.engine() as Engine | undefined;
    if (!e?.state || !Array.isArray(e.state.scopeStack)) throw new Error("tf.engine().state.scopeStack not found");
    let n = 0;
    while (e.state.scopeStack.length > baselineDepth) {
      e.endScope();
      n++;
    }
    e.state.kernelDepth = 0;
    if (e.state.gradientDepth !== 0) {
      e.state.gradientDepth = 0;
      e.state.activeTape = null;
    }
    return n;
  });
  return closed ?? null;
}
