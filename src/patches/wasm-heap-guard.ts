/**
 * Errors instead of garbage when the WebAssembly heap is full.
 *
 * The wasm backend addresses at most 4 GiB (wasm32; the glue's heap maximum is 4 GiB - 64 KiB), and every
 * weight used in a 2-D matMul costs twice its size there: XNNPACK's fully-connected operator packs a private
 * copy of the weight matrix on first use, and tfjs caches that operator for as long as the weight tensor
 * lives. When the heap cannot grow any more, tfjs-backend-wasm 4.22.0 fails silently in two ways:
 *
 * 1. `xnn_create_fully_connected_nc_f32` returns `xnn_status_out_of_memory` (6); the C++ kernel prints a
 *    warning to the module's stderr and returns without writing the output, so the result is whatever the
 *    freshly allocated buffer held (zeros from a newly grown heap, or stale values from a recycled one).
 * 2. `_malloc` returns 0 and `BackendWasm.move` registers the tensor at address 0 and copies its values
 *    over the module's static data, which corrupts the module (later ops return garbage or abort).
 *
 * This patch turns both into an `ArrakisError` that says what happened and what to do:
 * - every wasm kernel is re-registered behind a wrapper that clears a "failure seen" flag, runs the
 *   original, and throws (after freeing the kernel's outputs) when the module printed an XNNPACK failure
 *   meanwhile; an Emscripten abort thrown from inside a kernel is rethrown with the same explanation;
 * - the backend's `wasm._malloc` is wrapped to throw instead of returning 0 for a non-empty request.
 * The module's stderr reaches the flag through `wasmStderrSink` (the threaded build's `printErr`) or, for
 * the single-threaded build that tfjs creates itself, through `withWasmStderr`, which makes the glue bind
 * our `console.warn` as its stderr (it does `Module.printErr || console.warn.bind(console)` once, at
 * module creation).
 */
import * as tf from "@tensorflow/tfjs";
import { fail } from "../errors";
import { ApplyOptions, guarded, PatchSpec } from "./index";

export const WASM_HEAP_GUARD: PatchSpec = {
  name: "wasm-heap-guard",
  target: "@tensorflow/tfjs-backend-wasm",
  pinned: "4.22.0",
  does: "a full wasm heap raises an ArrakisError (XNNPACK out-of-memory, failed _malloc, module abort) instead of returning zeros or stale values",
  withoutIt: "a full wasm heap may return all-zero or stale results without an error (keep models well under the wasm size limit)",
};

/** Emscripten's heap maximum in tfjs-backend-wasm 4.22.0 (`getHeapMax()` in both glue files). */
export const WASM_HEAP_MAX_BYTES = 4294901760;

const GiB = 2 ** 30;
const XNN_FAILURE = /XNN status for (\w+) is not successful\. Got status (\d+)/;
/** xnn_status values (xnnpack.h) that can appear in the failure message. */
const XNN_STATUS: Record<string, string> = {
  "1": "uninitialized",
  "2": "invalid parameter",
  "3": "invalid state",
  "4": "unsupported parameter",
  "5": "unsupported hardware",
  "6": "out of memory",
};
/** The tfjs C++ kernels' other failure message ("<Kernel> ... failed. Unknown dtype %d"). */
const KERNEL_FAILURE = /failed\. Un(known|supported) dtype/;

/** The failure the module printed since the current kernel started (null: none). */
let pending: string | null = null;
let kernelsWrapped = false;
/** What the last failure was, for reports and tests. */
let lastFailure: string | null = null;

/**
 * Receives one line of the wasm module's stderr. Returns true when it was a kernel failure (recorded, so
 * the running kernel throws), false for anything else (the caller prints it as before).
 */
export function wasmStderrSink(text: string): boolean {
  const line = String(text);
  if (!XNN_FAILURE.test(line) && !KERNEL_FAILURE.test(line)) return false;
  pending = line;
  lastFailure = line;
  return true;
}

/** The last kernel failure the module reported in this process (null: none). */
export function lastWasmFailure(): string | null {
  return lastFailure;
}

/**
 * Runs `start` (which creates the single-threaded wasm module) with `console.warn` replaced, so the glue
 * binds our function as its stderr; afterwards `console.warn` is restored for everyone else while the
 * module keeps printing through the sink. Skipped (plain `start()`) on another tfjs-backend-wasm version.
 */
export async function withWasmStderr<T>(start: () => Promise<T>, opts: ApplyOptions = {}): Promise<T> {
  if ((opts.version ?? wasmVersion()) !== WASM_HEAP_GUARD.pinned) return start();
  const original = console.warn;
  console.warn = function (...args: unknown[]) {
    if (args.length === 1 && wasmStderrSink(String(args[0]))) return;
    original.apply(console, args);
  };
  try {
    return await start();
  } finally {
    console.warn = original;
  }
}

/**
 * Applies the guard to the active wasm backend: wraps every registered wasm kernel (once per process) and
 * the backend's `_malloc`. Call it again after replacing the backend (the threaded build). Returns whether
 * it was applied; the reason is in `patchReport()`.
 */
export function applyWasmHeapGuard(opts: ApplyOptions = {}): boolean {
  const result = guarded(WASM_HEAP_GUARD, opts.version ?? wasmVersion(), () => {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const backend = tf.engine().findBackend("wasm") as any;
    if (!backend?.wasm || typeof backend.wasm._malloc !== "function") throw new Error("no wasm backend with a _malloc to guard");
    if (!kernelsWrapped) {
      for (const config of tf.getKernelsForBackend("wasm")) {
        tf.unregisterKernel(config.kernelName, "wasm");
        tf.registerKernel({ ...config, kernelFunc: guardKernel(config) });
      }
      kernelsWrapped = true;
    }
    guardMalloc(backend.wasm);
    return true;
  });
  return result === true;
}

/** The installed tfjs-backend-wasm version, from the package itself. */
export function wasmVersion(): string | null {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return (require("@tensorflow/tfjs-backend-wasm") as { version_wasm?: string }).version_wasm ?? null;
  } catch {
    return null;
  }
}

/* eslint-disable @typescript-eslint/no-explicit-any */
function guardKernel(config: tf.KernelConfig): tf.KernelFunc {
  const inner = config.kernelFunc;
  return (args: any) => {
    pending = null;
    let out: any;
    try {
      out = inner(args);
    } catch (e) {
      if (/^Aborted\(/.test(String((e as Error)?.message))) {
        fail(
          `the WebAssembly module aborted inside ${config.kernelName} (${(e as Error).message}), most likely because its ` +
            `heap ran out; the wasm backend is unusable in this process until it restarts. ${ADVICE}`,
        );
      }
      throw e;
    }
    if (pending !== null) {
      const failure = pending;
      pending = null;
      for (const info of Array.isArray(out) ? out : [out]) if (info?.dataId) args.backend.disposeData(info.dataId, true);
      fail(`${config.kernelName} on the wasm backend failed and produced no result: ${describe(failure)}. ${heapState(args.backend)} ${ADVICE}`);
    }
    return out;
  };
}

const guardedMallocs = new WeakSet<object>();

/**
 * Wraps the module's `_malloc` (used by BackendWasm.move for every tensor) to throw instead of returning 0.
 * The glue's `Module._malloc` starts as a stub that, on its first call, replaces itself with the export
 * `Module.asm.malloc`, which would drop a wrapper of the stub; so the export itself is wrapped.
 */
function guardMalloc(wasm: any): void {
  if (guardedMallocs.has(wasm)) return;
  const malloc = typeof wasm.asm?.malloc === "function" ? wasm.asm.malloc : null;
  if (!malloc) throw new Error("the module has no asm.malloc export (glue layout changed)");
  const guardedMalloc = (bytes: number): number => {
    const ptr = malloc(bytes);
    if (ptr === 0 && bytes > 0) {
      lastFailure = `_malloc(${bytes}) returned 0`;
      fail(`could not allocate ${formatBytes(bytes)} on the wasm heap: it is full. ${heapState({ wasm })} ${ADVICE}`);
    }
    return ptr;
  };
  // The glue's own stub may still run once and assign `Module._malloc`; that assignment is ignored.
  Object.defineProperty(wasm, "_malloc", { configurable: true, enumerable: true, get: () => guardedMalloc, set: () => {} });
  guardedMallocs.add(wasm);
}

function formatBytes(bytes: number): string {
  return bytes >= 2 ** 20 ? `${(bytes / 2 ** 20).toFixed(1)} MiB` : bytes >= 1024 ? `${(bytes / 1024).toFixed(1)} KiB` : `${bytes} bytes`;
}

function heapState(backend: any): string {
  const bytes = backend?.wasm?.HEAPU8?.length;
  return typeof bytes === "number" ? `The heap is at ${(bytes / GiB).toFixed(2)} GiB of its ${(WASM_HEAP_MAX_BYTES / GiB).toFixed(2)} GiB maximum.` : "";
}
/* eslint-enable @typescript-eslint/no-explicit-any */

function describe(line: string): string {
  const m = XNN_FAILURE.exec(line);
  if (!m) return line.trim();
  const status = XNN_STATUS[m[2]] ?? `status ${m[2]}`;
  const packing = m[1].startsWith("xnn_create_fully_connected") ? " (XNNPACK could not allocate the packed copy of a matMul weight)" : "";
  return `XNNPACK ${m[1]} returned ${status}${packing}`;
}

const ADVICE =
  "The wasm backend addresses at most 4 GiB and keeps a packed copy of every matMul weight, so float32 models " +
  "above ~1.9 GiB of weights do not fit. Use the onnxruntime engine (ARRAKIS_ENGINE=ort), a smaller model, or " +
  "dispose tensors and models you no longer need.";
