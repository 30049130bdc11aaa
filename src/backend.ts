/**
 * The one place that decides which TensorFlow.js backend runs the math.
 *
 * Order of preference: `@tensorflow/tfjs-node` (native TensorFlow; installable on machines with internet,
 * never a hard dependency because its install step downloads libtensorflow), then the WebAssembly backend
 * (XNNPACK, SIMD when the runtime has it), then the pure-JS `cpu` backend. `ARRAKIS_BACKEND`
 * (`tensorflow` | `wasm` | `cpu`) overrides the choice.
 *
 * On wasm, the multi-threaded build is started when it passes a self-check (~1.6x on GPT-2-small matmuls
 * with 2 cores); `ARRAKIS_WASM_THREADS=0` turns it off, `ARRAKIS_WASM_THREADS=N` asks for N threads.
 * Everything that touches tfjs-backend-wasm internals lives in src/patches (version-pinned, reported).
 *
 * Memory on wasm: the heap is wasm32, at most 4 GiB, and each weight used in a matMul costs twice its size
 * there (XNNPACK keeps a packed copy beside it), so float32 models above ~1.9 GiB of weights do not fit:
 * `wasmSafeHeapBytes()` is the budget the size check uses, and the heap guard turns a full heap into an
 * error instead of silent zeros.
 */
import * as os from "node:os";
import * as tf from "@tensorflow/tfjs";
import { type EngineChoice, setEnginePreference } from "./engine/choice";
import { fail, show } from "./errors";
import { patchReport, patchStatus } from "./patches";
import { applyWasmHeapGuard, WASM_HEAP_MAX_BYTES, withWasmStderr } from "./patches/wasm-heap-guard";
import { applyWasmSliceKernels } from "./patches/wasm-slice-kernels";
import { startThreadedWasm, ThreadedModule, WASM_THREADS } from "./patches/wasm-threads";

export type BackendName = "tensorflow" | "wasm" | "cpu";
const KNOWN: BackendName[] = ["tensorflow", "wasm", "cpu"];

let initPromise: Promise<BackendName> | null = null;
let ready = false;
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
    // The wasm module is created here; its stderr must reach the heap guard (see withWasmStderr).
    const ok = await withWasmStderr(() => withoutGlueListeners(() => tf.setBackend(name)));
    if (ok) await tf.ready();
    if (!ok) skipped.push(`${name}: setBackend returned false`);
    return ok;
  } catch (e) {
    skipped.push(`${name}: ${firstLine(e)}`);
    return false;
  }
}

/** The wasm backend is up (single-threaded): the fast kernels, the threaded build, then the heap guard. */
async function finishWasm(): Promise<void> {
  applyWasmSliceKernels();
  await startWasmThreads();
  applyWasmHeapGuard(); // last: it guards the backend that will run (the threaded one replaces the first)
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
    if (name === "wasm") await finishWasm();
    return name;
  }
  if (tryLoadNode() && (await activate("tensorflow"))) return "tensorflow";
  if (tryLoadWasm() && (await activate("wasm"))) {
    await finishWasm();
    return "wasm";
  }
  await activate("cpu");
  return "cpu";
}

export interface InitOptions {
  /** The engine for models created afterwards: "ort" (onnxruntime), "tfjs", or "auto" (default; see backendReport()). */
  engine?: EngineChoice;
}

/**
 * Picks and starts the backend once per process; later calls return the same promise.
 * Every async entry point of the library awaits it, so users rarely need to call it themselves.
 */
export function initBackend(options: InitOptions = {}): Promise<BackendName> {
  if (options.engine !== undefined) setEnginePreference(options.engine);
  if (!initPromise) {
    initPromise = choose().then((name) => {
      ready = true;
      return name;
    });
  }
  return initPromise;
}

/** Whether `initBackend()` has finished (synchronous entry points need a started backend). */
export function backendReady(): boolean {
  return ready;
}

/** The backend currently running tensor math (after `initBackend()`, the chosen one). */
export function backend(): string {
  return tf.getBackend();
}

/**
 * Which TF.js backend runs and why the preferred ones were skipped, and the patches' status. The full report,
 * with the engine, is `backendReport()` of the engine layer.
 */
export function tfBackendReport(): string {
  const lines = [`backend: ${tf.getBackend()}`];
  if (tf.getBackend() === "wasm") {
    const flags = tf.env().features;
    lines.push(`wasm SIMD: ${flags["WASM_HAS_SIMD_SUPPORT"] ?? "unknown"}`);
    lines.push(`wasm threads: ${threads.count} (${threads.used ? "multi-threaded build" : "single-threaded build"}; ${threads.reason})`);
    lines.push(`wasm heap: ${(heapBytesNow() / GiB).toFixed(2)} GiB in use of ${(WASM_HEAP_MAX_BYTES / GiB).toFixed(2)} GiB max; weights + packed matMul copies budget ${(wasmSafeHeapBytes() / GiB).toFixed(2)} GiB`);
  }
  for (const s of skipped) lines.push(`skipped ${s}`);
  lines.push(...patchReport());
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

// ------------------------------------------------------------------ wasm memory

const GiB = 2 ** 30;

/**
 * Working space kept free on the wasm heap beside the weights: activations of one forward pass (a 1024-token
 * prompt's [1024, 32000] logits are 131 MB), the tokenizer, cached activations of small runs.
 */
export const WASM_WORKING_RESERVE_BYTES = 128 * 2 ** 20;

/**
 * How many bytes a model's weights may occupy on the wasm heap, counting every weight used in a 2-D matMul
 * twice. XNNPACK's fully-connected operator packs a private copy of its weight matrix when first used, and
 * tfjs-backend-wasm keeps that operator (and the copy) as long as the weight tensor lives, so a model fits
 * when `weightBytes + matMulWeightBytes <= wasmSafeHeapBytes()` (embeddings, norms and biases count once).
 * Measured with a random Llama (hidden 1024, MLP 2816, vocab 32000, float32): 36 layers (1.97 GiB of
 * weights, 3.82 GiB with packed copies) run correctly; 40 layers (2.16 GiB, 4.19 GiB) overflow the heap.
 */
export function wasmSafeHeapBytes(): number {
  return WASM_HEAP_MAX_BYTES - WASM_WORKING_RESERVE_BYTES;
}

/**
 * Whether a model fits on the wasm heap (see `wasmSafeHeapBytes`); with `where`, throws an ArrakisError that
 * names the sizes and points to the onnxruntime engine when it does not.
 */
export function checkWasmModelFits(weightBytes: number, matMulWeightBytes: number, where?: string): boolean {
  const need = weightBytes + matMulWeightBytes;
  const fits = need <= wasmSafeHeapBytes();
  if (!fits && where !== undefined) {
    fail(
      `${where}: the model has ${(weightBytes / GiB).toFixed(2)} GiB of float32 weights, and on the wasm backend its ` +
        `matMul weights also keep a packed copy (${(matMulWeightBytes / GiB).toFixed(2)} GiB), ${(need / GiB).toFixed(2)} GiB in all; ` +
        `the wasm heap holds at most ${(wasmSafeHeapBytes() / GiB).toFixed(2)} GiB of weights (4 GiB minus working space). ` +
        `Use the onnxruntime engine (ARRAKIS_ENGINE=ort), or a smaller model (fewer layers, a smaller vocabulary).`,
    );
  }
  return fits;
}

/** Bytes of the current wasm heap (0 when the backend is not wasm). */
function heapBytesNow(): number {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const b = tf.engine().findBackend("wasm") as any;
  return b?.wasm?.HEAPU8?.length ?? 0;
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
    module = await withTimeout(startThreadedModule(want, (stop) => (stopWorkers = stop)), THREAD_START_TIMEOUT_MS, "the threaded wasm module did not start");
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

/** The threaded module's start (a version-guarded patch): rejects with the reason when it is skipped. */
function startThreadedModule(want: number, onWorkers: (stop: () => void) => void): Promise<ThreadedModule> {
  const started = startThreadedWasm(want, onWorkers, withoutGlueListeners);
  return started ?? Promise.reject(new Error(patchStatus(WASM_THREADS.name)?.reason ?? "patch skipped"));
}

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

