/**
 * The one place that decides which TensorFlow.js backend runs the math.
 *
 * Order of preference: `@tensorflow/tfjs-node` (native TensorFlow; installable on machines with internet,
 * never a hard dependency because its install step downloads libtensorflow), then the WebAssembly backend
 * (XNNPACK, SIMD when the runtime has it), then the pure-JS `cpu` backend. `ARRAKIS_BACKEND`
 * (`tensorflow` | `wasm` | `cpu`) overrides the choice.
 *
 * On wasm, the multi-threaded build is started when it passes a self-check (issue 7: ~1.6x on GPT-2-small
 * matmuls with 2 cores); `ARRAKIS_WASM_THREADS=0` turns it off, `ARRAKIS_WASM_THREADS=N` asks for N threads.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { fail, show } from "./errors";

export type BackendName = "tensorflow" | "wasm" | "cpu";
const KNOWN: BackendName[] = ["tensorflow", "wasm", "cpu"];

let initPromise: Promise<BackendName> | null = null;
/** Why each preferred backend was skipped, for `backendReport()`. */
const skipped: string[] = [];

/** Loads tfjs-node if it is installed; it registers the "tensorflow" backend as a side effect. */
function tryLoadNode(): boolean {
  try {
    require("@tensorflow/tfjs-node");
    return tf.findBackendFactory("tensorflow") != null;
  } catch (e) {
    skipped.push(`tensorflow: @tensorflow/tfjs-node not loadable (${firstLine(e)})`);
    return false;
  }
}

function tryLoadWasm(): boolean {
  try {
    require("@tensorflow/tfjs-backend-wasm");
    return tf.findBackendFactory("wasm") != null;
  } catch (e) {
    skipped.push(`wasm: @tensorflow/tfjs-backend-wasm not loadable (${firstLine(e)})`);
    return false;
  }
}

/**
 * Runs `start` and removes the `uncaughtException` / `unhandledRejection` listeners it added. Emscripten's
 * Node glue (both wasm builds) installs listeners that rethrow, which restores Node's default crash but makes
 * Node print the glue's 300 kB minified source line as the throw site of every later uncaught error.
 * Without them Node's own default handling (same exit, the user's stack) applies.
 */
async function withoutGlueListeners<T>(start: () => Promise<T>): Promise<T> {
  const events = ["uncaughtException", "unhandledRejection"] as const;
  const before = events.map((ev) => new Set(process.listeners(ev)));
  try {
    return await start();
  } finally {
    events.forEach((ev, i) => {
      for (const l of process.listeners(ev)) if (!before[i].has(l)) process.removeListener(ev, l as (...args: unknown[]) => void);
    });
  }
}

function firstLine(e: unknown): string {
  return String((e as Error)?.message ?? e).split("\n")[0];
}

async function activate(name: BackendName): Promise<boolean> {
  try {
    const ok = await withoutGlueListeners(() => tf.setBackend(name));
    if (ok) await tf.ready();
    if (!ok) skipped.push(`${name}: setBackend returned false`);
    return ok;
  } catch (e) {
    skipped.push(`${name}: ${firstLine(e)}`);
    return false;
  }
}

async function choose(): Promise<BackendName> {
  const forced = process.env.ARRAKIS_BACKEND?.trim();
  if (forced) {
    if (!KNOWN.includes(forced as BackendName)) {
      fail(`ARRAKIS_BACKEND=${show(forced)} is not a backend; expected one of ${KNOWN.join(", ")}`);
    }
    const name = forced as BackendName;
    const loaded = name === "tensorflow" ? tryLoadNode() : name === "wasm" ? tryLoadWasm() : true;
    if (!loaded || !(await activate(name))) {
      fail(`ARRAKIS_BACKEND=${name} was requested but could not be started: ${skipped.join("; ")}`);
    }
    if (name === "wasm") {
      installWasmSliceKernels();
      await startWasmThreads();
    }
    return name;
  }
  if (tryLoadNode() && (await activate("tensorflow"))) return "tensorflow";
  if (tryLoadWasm() && (await activate("wasm"))) {
    installWasmSliceKernels();
    await startWasmThreads();
    return "wasm";
  }
  await activate("cpu");
  return "cpu";
}

/**
 * Picks and starts the backend once per process; later calls return the same promise.
 * Every async entry point of the library awaits it, so users rarely need to call it themselves.
 */
export function initBackend(): Promise<BackendName> {
  if (!initPromise) initPromise = choose();
  return initPromise;
}

/** The backend currently running tensor math (after `initBackend()`, the chosen one). */
export function backend(): string {
  return tf.getBackend();
}

/** A human-readable account of the choice: which backend runs and why the preferred ones were skipped. */
export function backendReport(): string {
  const lines = [`backend: ${tf.getBackend()}`];
  if (tf.getBackend() === "wasm") {
    const flags = tf.env().features;
    lines.push(`wasm SIMD: ${flags["WASM_HAS_SIMD_SUPPORT"] ?? "unknown"}`);
    lines.push(`wasm threads: ${threads.count} (${threads.used ? "multi-threaded build" : "single-threaded build"}; ${threads.reason})`);
  }
  for (const s of skipped) lines.push(`skipped ${s}`);
  return lines.join("\n");
}

/**
 * Whether batched (3-D) matMul is fast on the current backend. On wasm only 2-D matMul without transpose
 * flags reaches XNNPACK; batched matMul falls to a scalar loop (measured 1–2 GFLOP/s), so attention loops
 * over heads with 2-D products there.
 */
export function batchedMatMulIsFast(): boolean {
  return tf.getBackend() !== "wasm";
}

// ------------------------------------------------------------------ threaded wasm

/** What `initBackend()` did about wasm threads (see `wasmThreads()`). */
export interface WasmThreads {
  /** True when the multi-threaded wasm build runs the math. */
  used: boolean;
  /** XNNPACK threads (1 when single-threaded). */
  count: number;
  /** Why (not): the switch, the self-check result, or the error that made us fall back. */
  reason: string;
  /** Milliseconds spent starting the threaded module (0 when not attempted). */
  startMs: number;
}

let threads: WasmThreads = { used: false, count: 1, reason: "not attempted", startMs: 0 };

/** Whether the multi-threaded wasm build is running, how many threads, and why. */
export function wasmThreads(): Readonly<WasmThreads> {
  return threads;
}

/** How long the threaded module may take to start before we give up on it. */
const THREAD_START_TIMEOUT_MS = 30_000;

/**
 * Swaps the single-threaded wasm backend for the multi-threaded build when it is wanted, can start, and
 * computes a small matMul exactly as the single-threaded build does; otherwise leaves the single-threaded
 * backend in place and records why in `wasmThreads().reason`.
 */
async function startWasmThreads(): Promise<void> {
  const env = process.env.ARRAKIS_WASM_THREADS?.trim();
  const cores = typeof os.availableParallelism === "function" ? os.availableParallelism() : os.cpus().length;
  let want = cores;
  if (env !== undefined && env !== "") {
    const n = Number(env);
    if (!Number.isInteger(n) || n < 0) fail(`ARRAKIS_WASM_THREADS=${show(env)} is not a thread count; expected 0 (off) or a positive integer`);
    if (n === 0 || n === 1) {
      threads = { used: false, count: 1, reason: `off (ARRAKIS_WASM_THREADS=${n})`, startMs: 0 };
      return;
    }
    want = n;
  }
  if (want < 2) {
    threads = { used: false, count: 1, reason: `${cores} core${cores === 1 ? "" : "s"}: nothing to gain`, startMs: 0 };
    return;
  }
  if (typeof SharedArrayBuffer === "undefined") {
    threads = { used: false, count: 1, reason: "no SharedArrayBuffer in this runtime", startMs: 0 };
    return;
  }
  const single = tf.engine().backend;
  if (single.numDataIds() > 0) {
    // Swapping the backend would strand these tensors; keep the single-threaded one.
    threads = { used: false, count: 1, reason: `${single.numDataIds()} tensors already live on the single-threaded backend`, startMs: 0 };
    return;
  }
  const reference = selfCheckProduct();
  const stockFactory = tf.findBackendFactory("wasm");
  const t0 = Date.now();
  let module: ThreadedModule | null = null;
  let stopWorkers = () => {}; // set as soon as the glue has spawned its workers, so a timeout can end them
  try {
    module = await withTimeout(createThreadedWasmModule(want, (stop) => (stopWorkers = stop)), THREAD_START_TIMEOUT_MS, "the threaded wasm module did not start");
    const started = module;
    tf.removeBackend("wasm"); // disposes the single-threaded instance (it holds no tensors, checked above)
    tf.registerBackend("wasm", () => started.makeBackend(), WASM_PRIORITY);
    if (!(await tf.setBackend("wasm"))) throw new Error("setBackend(wasm) returned false for the threaded build");
    const count = started.threadsCount();
    const got = selfCheckProduct();
    const diff = maxAbs(got, reference);
    if (count < 2) throw new Error(`the threaded build started only ${count} thread`);
    if (!(diff <= 1e-6)) throw new Error(`self-check matMul differs from the single-threaded result by ${diff}`);
    started.unrefWorkers();
    threads = { used: true, count, reason: `self-check passed (max-abs diff ${diff} vs single-threaded)`, startMs: Date.now() - t0 };
  } catch (e) {
    const why = firstLine(e);
    try {
      if (tf.findBackendFactory("wasm") !== stockFactory) {
        if (tf.findBackendFactory("wasm")) tf.removeBackend("wasm");
        if (stockFactory) tf.registerBackend("wasm", stockFactory, WASM_PRIORITY);
      }
      module?.terminate();
      stopWorkers();
      await withoutGlueListeners(() => tf.setBackend("wasm"));
    } catch (e2) {
      fail(`the threaded wasm backend failed (${why}) and the single-threaded one could not be restored: ${firstLine(e2)}`);
    }
    threads = { used: false, count: 1, reason: `threaded build not used: ${why}`, startMs: Date.now() - t0 };
  }
}

/** tfjs-backend-wasm registers "wasm" with this priority (tf-backend-wasm.node.js, 4.22.0). */
const WASM_PRIORITY = 2;

/** A deterministic [67, 300] @ [300, 131] product, read back: many output tiles (split across threads), odd edges. */
function selfCheckProduct(): Float32Array {
  const [m, k, n] = [67, 300, 131];
  const fill = (len: number, salt: number) => Float32Array.from({ length: len }, (_, i) => Math.sin(i * 0.37 + salt) * 2);
  return tf.tidy(() => tf.matMul(tf.tensor2d(fill(m * k, 1), [m, k]), tf.tensor2d(fill(k * n, 2), [k, n])).dataSync() as Float32Array);
}

function maxAbs(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return a.length === b.length ? m : Infinity;
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

interface ThreadedModule {
  makeBackend(): tf.KernelBackend;
  threadsCount(): number;
  /** Lets the process exit while the pool threads idle. */
  unrefWorkers(): void;
  terminate(): void;
}

/* eslint-disable @typescript-eslint/no-explicit-any */
/**
 * Starts the multi-threaded SIMD build of the tfjs wasm backend under Node. Everything that depends on tfjs
 * internals is here. Written against @tensorflow/tfjs-backend-wasm 4.22.0 (Emscripten 3.1.x glue); it relies on:
 *
 * 1. the files `wasm-out/tfjs-backend-wasm-threaded-simd.{js,wasm}` (the Emscripten factory and binary) and
 *    `wasm-out/tfjs-backend-wasm-threaded-simd.worker.js`, which exports the pthread worker source as the string
 *    `wasmWorkerContents` with its `"\n"` escapes unescaped (tfjs re-escapes it the same way before use);
 * 2. the exported `BackendWasm` class taking the Emscripten module with a `tfjs` object of cwrapped
 *    `init`, `init_with_threads_count`, `get_threads_count`, `register_tensor`, `dispose_data`, `dispose`
 *    (what tfjs's own `init()` builds) and the exported `setThreadsCount`;
 * 3. the C++ side capping the pool at `emscripten_num_logical_cores() / 2` (backend.cc), so that import is
 *    replaced in `instantiateWasm` to report twice the wanted count;
 * 4. Emscripten's `Module.PThread.{runningWorkers, unusedWorkers, terminateAllThreads}`: running pool threads
 *    are `ref()`ed by Emscripten and would keep Node alive, so they are `unref()`ed; of the 8 workers the
 *    glue pre-spawns (PTHREAD_POOL_SIZE, via `locateFile`), those beyond the pool get an empty script and
 *    are removed from `unusedWorkers` before `receiveInstance` loads the module into the rest (startup time).
 *
 * Why not the stock path: tfjs's `WASM_HAS_MULTITHREAD_SUPPORT` flag is false under Node, and forcing it makes
 * tfjs hand Node a `blob:` URL for the worker script, which `worker_threads` cannot load. Here the worker is
 * a `data:` ES module that evaluates the same worker source with a CommonJS `require`.
 */
async function createThreadedWasmModule(wanted: number, onWorkers: (terminate: () => void) => void): Promise<ThreadedModule> {
  const wasmPkg = require("@tensorflow/tfjs-backend-wasm") as {
    BackendWasm: new (module: unknown) => tf.KernelBackend;
    setThreadsCount(n: number): void;
    getThreadsCount(): number;
  };
  const dir = path.join(path.dirname(require.resolve("@tensorflow/tfjs-backend-wasm/package.json")), "wasm-out");
  const glue = path.join(dir, "tfjs-backend-wasm-threaded-simd.js");
  const binary = path.join(dir, "tfjs-backend-wasm-threaded-simd.wasm");
  const workerSource = path.join(dir, "tfjs-backend-wasm-threaded-simd.worker.js");
  for (const f of [glue, binary, workerSource]) if (!fs.existsSync(f)) throw new Error(`${f} is missing (tfjs-backend-wasm layout changed?)`);
  const boot = [
    `import { createRequire } from "node:module";`,
    `const require = createRequire(${JSON.stringify(workerSource)});`,
    `const source = require(${JSON.stringify(workerSource)}).wasmWorkerContents.replace(/\\n/g, "\\\\n");`,
    `new Function("require", "__filename", source)(require, ${JSON.stringify(workerSource)});`,
  ].join("\n");
  const workerUrl = new URL("data:text/javascript," + encodeURIComponent(boot));
  const factory = require(glue) as (moduleArg: any) => Promise<any>;
  let instantiateFailed: (e: unknown) => void = () => {};
  const failed = new Promise<never>((_, reject) => (instantiateFailed = reject));
  // The glue pre-spawns 8 workers; the pool needs wanted - 1 (the calling thread is the other one). The
  // extra ones get an empty script and are dropped before the module is handed to the workers.
  let spawned = 0;
  const idleUrl = new URL("data:text/javascript,");
  const moduleArg: any = {
    locateFile: (file: string, prefix: string) => (file.endsWith(".worker.js") ? (spawned++ < wanted - 1 ? workerUrl : idleUrl) : prefix + file),
    instantiateWasm: (imports: any, receive: (instance: WebAssembly.Instance, module: WebAssembly.Module) => void) => {
      imports.env.emscripten_num_logical_cores = () => 2 * wanted;
      WebAssembly.instantiate(fs.readFileSync(binary), imports).then((r) => {
        for (const w of moduleArg.PThread.unusedWorkers.splice(wanted - 1)) w.terminate();
        receive(r.instance, r.module);
      }, instantiateFailed);
      return {};
    },
    printErr: (text: string) => threadErrors.push(text),
  };
  const threadErrors: string[] = [];
  const terminate = () => {
    try {
      moduleArg.PThread?.terminateAllThreads();
    } catch {
      /* already gone */
    }
  };
  onWorkers(terminate);
  let module: any;
  try {
    module = await withoutGlueListeners(() => Promise.race([factory(moduleArg), failed]));
  } catch (e) {
    terminate();
    throw new Error(`${firstLine(e)}${threadErrors.length ? ` (${threadErrors[0]})` : ""}`);
  }
  module.tfjs = {
    init: module.cwrap("init", null, []),
    initWithThreadsCount: module.cwrap("init_with_threads_count", null, ["number"]),
    getThreadsCount: module.cwrap("get_threads_count", "number", []),
    registerTensor: module.cwrap("register_tensor", null, ["number", "number", "number"]),
    disposeData: module.cwrap("dispose_data", null, ["number"]),
    dispose: module.cwrap("dispose", null, []),
  };
  return {
    makeBackend: () => {
      wasmPkg.setThreadsCount(wanted);
      return new wasmPkg.BackendWasm(module); // calls init_with_threads_count, which starts the pool threads
    },
    threadsCount: () => module.tfjs.getThreadsCount(),
    unrefWorkers: () => {
      for (const w of [...module.PThread.runningWorkers, ...module.PThread.unusedWorkers]) w.unref?.();
    },
    terminate,
  };
}
/* eslint-enable @typescript-eslint/no-explicit-any */

// ------------------------------------------------------------------ slicing on wasm

let sliceKernelsInstalled = false;

/* eslint-disable @typescript-eslint/no-explicit-any */
/**
 * Replaces the wasm `Slice`, `Unpack` and `SplitV` kernels with ones that read their input through a view
 * of the wasm heap. In @tensorflow/tfjs-backend-wasm 4.22.0, `Slice` starts with `backend.readSync(x)`, a
 * copy of the whole input out of the heap, on every call, and `Unpack` / `SplitV` call it once per output:
 * unstacking the 12 heads of a [12, 512, 512] pattern copied 150 MB (measured 1.4 s per block; the per-head
 * attention path unstacks 4 tensors per block). These versions copy only what they return, inside the heap.
 *
 * Relies on (tfjs 4.22.0): the kernel registry (`getKernel`/`unregisterKernel`/`registerKernel`, public), the
 * `BackendWasm` methods `makeOutput(shape, dtype)` and `typedArrayFromHeap(tensorInfo)` (public in its .d.ts),
 * and on views being taken after `makeOutput` (which may grow, and so detach, the heap). Strings go to the
 * original kernels. Values are copied unchanged, so results are bit-identical.
 */
function installWasmSliceKernels(): void {
  if (sliceKernelsInstalled) return;
  const original = { Slice: tf.getKernel("Slice", "wasm"), Unpack: tf.getKernel("Unpack", "wasm"), SplitV: tf.getKernel("SplitV", "wasm") };
  if (!original.Slice || !original.Unpack || !original.SplitV) return; // a different tfjs: leave it alone
  sliceKernelsInstalled = true;
  const replace = (name: keyof typeof original, kernelFunc: (args: any) => any) => {
    tf.unregisterKernel(name, "wasm");
    tf.registerKernel({ kernelName: name, backendName: "wasm", kernelFunc });
  };
  replace("Slice", (args) => {
    const { inputs: { x }, attrs: { begin, size }, backend } = args;
    if (x.dtype === "string") return original.Slice!.kernelFunc(args);
    const [b, sz] = tf.slice_util.parseSliceParams(x, begin, size);
    return sliceFromHeap(backend, x, b, sz);
  });
  replace("Unpack", (args) => {
    const { inputs: { value }, attrs, backend } = args;
    if (value.dtype === "string") return original.Unpack!.kernelFunc(args);
    const rank = value.shape.length;
    const axis = attrs.axis < 0 ? attrs.axis + rank : attrs.axis;
    const outShape = value.shape.filter((_: number, i: number) => i !== axis);
    const size = [...value.shape];
    size[axis] = 1;
    return Array.from({ length: value.shape[axis] }, (_, i) => {
      const begin = new Array(rank).fill(0);
      begin[axis] = i;
      const out = sliceFromHeap(backend, value, begin, size);
      return { dataId: out.dataId, dtype: out.dtype, shape: outShape };
    });
  });
  replace("SplitV", (args) => {
    const { inputs: { x }, attrs: { numOrSizeSplits, axis }, backend } = args;
    if (x.dtype === "string") return original.SplitV!.kernelFunc(args);
    const ax = tf.util.parseAxisParam(axis, x.shape)[0];
    const sizes = tf.backend_util.prepareSplitSize(x, numOrSizeSplits, ax);
    const begin = new Array(x.shape.length).fill(0);
    return sizes.map((n: number) => {
      const size = [...x.shape];
      size[ax] = n;
      const out = sliceFromHeap(backend, x, [...begin], size);
      begin[ax] += n;
      return out;
    });
  });
}

/** out = x[begin : begin + size] for a numeric tensor on the wasm backend, copied heap to heap. */
function sliceFromHeap(backend: any, x: any, begin: number[], size: number[]): any {
  const out = backend.makeOutput(size, x.dtype); // may grow the heap: take views only after this
  const n = tf.util.sizeFromShape(size);
  if (n === 0) return out;
  const src = backend.typedArrayFromHeap(x);
  const dst = backend.typedArrayFromHeap(out);
  const strides = tf.util.computeStrides(x.shape);
  if (tf.slice_util.isSliceContinous(x.shape, begin, size)) {
    const offset = tf.slice_util.computeFlatOffset(begin, strides);
    dst.set(src.subarray(offset, offset + n));
    return out;
  }
  // Copy row by row: a row is a run along the last axis; an odometer walks the outer indices.
  const rank = size.length;
  const run = size[rank - 1];
  const idx = new Array(rank - 1).fill(0);
  for (let o = 0; o < n; o += run) {
    let from = begin[rank - 1];
    for (let d = 0; d < rank - 1; d++) from += (begin[d] + idx[d]) * strides[d];
    if (run >= 32) dst.set(src.subarray(from, from + run), o);
    else for (let j = 0; j < run; j++) dst[o + j] = src[from + j];
    for (let d = rank - 2; d >= 0; d--) {
      if (++idx[d] < size[d]) break;
      idx[d] = 0;
    }
  }
  return out;
}
/* eslint-enable @typescript-eslint/no-explicit-any */
