/**
 * The one place for patches of other packages' internals (private fields, monkey-patched functions,
 * re-registered kernels, Emscripten glue hooks). Internals change without notice between releases, so every
 * patch names the package and the exact version it was written and tested against; at apply time the
 * installed version is compared and, when it differs, the patch is skipped (the package's own behaviour
 * stays) with a stated reason. `patchReport()` lists what was applied or skipped and why
 * (`backendReport()` prints it).
 *
 * One file per patch:
 *   wasm-slice-kernels.ts  heap-view Slice/Unpack/SplitV kernels        @tensorflow/tfjs-backend-wasm
 *   wasm-threads.ts        the multi-threaded wasm build under Node     @tensorflow/tfjs-backend-wasm
 *   wasm-heap-guard.ts     errors instead of garbage when the heap is full  @tensorflow/tfjs-backend-wasm
 *   tf-run-kernel.ts       a wrapper around every kernel call           @tensorflow/tfjs-core
 *   tf-engine-state.ts     closing scopes left open by terminated code  @tensorflow/tfjs-core
 *   ts-sys.ts              project packages for tslab's type checker    @tslab/typescript-for-tslab
 *   tslab-display.ts       tslab's `display` routed to the current cell tslab
 *   vega-view-size.ts      a view's size for synchronous SVG            vega
 */

/** What happened to one patch, for reports and tests. */
export interface PatchStatus {
  /** The patch's file name without extension, e.g. "wasm-slice-kernels". */
  name: string;
  /** The package whose internals it touches. */
  target: string;
  /** The version it was written for (exact). */
  pinned: string;
  /** The version found at apply time (null when it could not be read). */
  installed: string | null;
  applied: boolean;
  /** Applied: what it does. Skipped: why, and what the user loses. */
  reason: string;
}

export interface PatchSpec {
  name: string;
  target: string;
  pinned: string;
  /** One line: what the patch changes (shown when applied). */
  does: string;
  /** One line: what is lost when it is skipped (shown with the reason). */
  withoutIt: string;
}

/** Options every `apply…` function takes; `version` fakes the installed version (tests). */
export interface ApplyOptions {
  version?: string;
}

const statuses = new Map<string, PatchStatus>();

/**
 * Applies `apply()` when `installed` equals the pinned version, else records why it was skipped. A patch
 * whose `apply()` throws is recorded as skipped with the error (the package's own behaviour stays).
 * Returns what `apply()` returned, or undefined when skipped.
 */
export function guarded<T>(spec: PatchSpec, installed: string | null | undefined, apply: () => T): T | undefined {
  const found = installed ?? null;
  const base = { name: spec.name, target: spec.target, pinned: spec.pinned, installed: found };
  if (found !== spec.pinned) {
    const got = found === null ? "an unknown version" : found;
    const reason = `skipped: written for ${spec.target} ${spec.pinned}, found ${got}; ${spec.withoutIt}`;
    statuses.set(spec.name, { ...base, applied: false, reason });
    return undefined;
  }
  try {
    const result = apply();
    statuses.set(spec.name, { ...base, applied: true, reason: spec.does });
    return result;
  } catch (e) {
    const why = String((e as Error)?.message ?? e).split("\n")[0];
    statuses.set(spec.name, { ...base, applied: false, reason: `skipped: applying it failed (${why}); ${spec.withoutIt}` });
    return undefined;
  }
}

/** The status of every patch tried so far in this process, in the order they were tried. */
export function patchStatuses(): PatchStatus[] {
  return [...statuses.values()];
}

/** The status of one patch, or undefined when it was never tried. */
export function patchStatus(name: string): PatchStatus | undefined {
  return statuses.get(name);
}

/** One line per patch tried: "name (target pinned): applied|skipped — reason". */
export function patchReport(): string[] {
  return patchStatuses().map((s) => `patch ${s.name} (${s.target} ${s.pinned}): ${s.applied ? "applied" : "NOT applied"}: ${s.reason}`);
}

/** Reads `version` from an installed package's package.json; null when it cannot be found. */
export function installedVersion(pkg: string, from: string = __dirname): string | null {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return (require(require.resolve(`${pkg}/package.json`, { paths: [from] })) as { version?: string }).version ?? null;
  } catch {
    return null;
  }
}
