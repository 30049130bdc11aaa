/**
 * The multi-threaded SIMD build of the tfjs wasm backend, started under Node (see
 * `createThreadedWasmModule`). The policy (how many threads, the self-check, the fallback) is in
 * src/backend.ts; this file holds what depends on the package's files and Emscripten's glue.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { ApplyOptions, guarded, PatchSpec } from "./index";
import { wasmStderrSink, wasmVersion } from "./wasm-heap-guard";

export const WASM_THREADS: PatchSpec = {
  name: "wasm-threads",
  target: "@tensorflow/tfjs-backend-wasm",
  pinned: "4.22.0",
  does: "the multi-threaded SIMD wasm build runs the math (started by hand: tfjs does not offer it under Node)",
  withoutIt: "the single-threaded wasm build runs the math (same results, slower matMuls)",
};

/** Runs `start` and removes the `uncaughtException` / `unhandledRejection` listeners it added (see backend.ts). */
export type WithoutGlueListeners = <T>(start: () => Promise<T>) => Promise<T>;

/**
 * Starts the threaded module under the version guard: on another tfjs-backend-wasm the glue, file layout
 * and pool hooks it relies on may differ, so it returns null (reason in `patchReport()`) and the
 * single-threaded build stays.
 */
export function startThreadedWasm(
  wanted: number,
  onWorkers: (terminate: () => void) => void,
  withoutGlueListeners: WithoutGlueListeners,
  opts: ApplyOptions = {},
): Promise<ThreadedModule> | null {
  return guarded(WASM_THREADS, opts.version ?? wasmVersion(), () => createThreadedWasmModule(wanted, onWorkers, withoutGlueListeners)) ?? null;
}

function firstLine(e: unknown): string {
  return String((e as Error)?.message ?? e).split("\n")[0];
}

export interface ThreadedModule {
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
async function createThreadedWasmModule(
  wanted: number,
  onWorkers: (terminate: () => void) => void,
  withoutGlueListeners: WithoutGlueListeners,
): Promise<ThreadedModule> {
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
  let running = false; // set once the module is up: its stderr is then printed, not kept
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
    // The module's stderr: kernel failures go to the heap guard; anything else is kept for the startup
    // error message until the module runs, then printed as the stock glue would.
    printErr: (text: string) => {
      if (wasmStderrSink(text)) return;
      if (running) console.warn(text);
      else threadErrors.push(text);
    },
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
  running = true;
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
