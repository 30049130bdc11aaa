/**
 * The one place that decides which TensorFlow.js backend runs the math.
 *
 * Order of preference: `@tensorflow/tfjs-node` (native TensorFlow; installable on machines with internet,
 * never a hard dependency because its install step downloads libtensorflow), then the WebAssembly backend
 * (XNNPACK, SIMD when the runtime has it), then the pure-JS `cpu` backend. `ARRAKIS_BACKEND`
 * (`tensorflow` | `wasm` | `cpu`) overrides the choice.
 */
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

function firstLine(e: unknown): string {
  return String((e as Error)?.message ?? e).split("\n")[0];
}

async function activate(name: BackendName): Promise<boolean> {
  try {
    const ok = await tf.setBackend(name);
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
    return name;
  }
  if (tryLoadNode() && (await activate("tensorflow"))) return "tensorflow";
  if (tryLoadWasm() && (await activate("wasm"))) return "wasm";
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
    lines.push(`wasm SIMD: ${flags["WASM_HAS_SIMD_SUPPORT"] ?? "unknown"}, threads: ${flags["WASM_HAS_MULTITHREAD_SUPPORT"] ?? "unknown"}`);
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
