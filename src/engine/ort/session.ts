/**
 * onnxruntime-node, run synchronously. The public `InferenceSession.run` is async (it defers the native call
 * with setImmediate), but `model.forward` is synchronous, so sessions are driven through the package's native
 * binding (`onnxruntime-node/dist/binding`), which its own session handler wraps. That is internal API: the
 * package version is pinned, and the engine is used only after a self-check against the TF.js engine passes.
 */
import * as os from "node:os";
import { fail, show } from "../../errors";
import { EXTERNAL_FILE, type Serialized } from "./graph";

/** The onnxruntime-node version the synchronous binding was written against. */
export const TESTED_ORT_VERSION = "1.30.0";

/** An onnxruntime tensor as the binding returns it. */
export interface OrtTensor {
  data: Float32Array | BigInt64Array;
  dims: readonly number[];
  type: string;
}

/* eslint-disable @typescript-eslint/no-explicit-any */
interface Ort {
  version: string;
  Tensor: new (type: string, data: Float32Array | BigInt64Array, dims: readonly number[]) => OrtTensor;
  NativeSession: new () => any;
}
let ort: Ort | null = null;

/** Loads onnxruntime-node and its binding (throws with the reason when it cannot). */
export function loadOrt(): Ort {
  if (ort) return ort;
  const pkg = require("onnxruntime-node") as { Tensor: Ort["Tensor"] };
  const version = (require("onnxruntime-node/package.json") as { version: string }).version;
  const b = require("onnxruntime-node/dist/binding") as { initOrt(): void; binding: { InferenceSession: new () => any } };
  if (typeof b.initOrt !== "function" || typeof b.binding?.InferenceSession !== "function") {
    throw new Error(`onnxruntime-node ${version} has no synchronous binding where ${TESTED_ORT_VERSION} has it (dist/binding)`);
  }
  b.initOrt();
  ort = { version, Tensor: pkg.Tensor, NativeSession: b.binding.InferenceSession };
  return ort;
}

/** onnxruntime's intra-op threads: ARRAKIS_ORT_THREADS, else one per core. */
export function ortThreads(): number {
  const env = process.env.ARRAKIS_ORT_THREADS?.trim();
  if (env) {
    const n = Number(env);
    if (!Number.isInteger(n) || n < 1) fail(`ARRAKIS_ORT_THREADS=${show(env)} is not a thread count; expected a positive integer`);
    return n;
  }
  return typeof os.availableParallelism === "function" ? os.availableParallelism() : os.cpus().length;
}

export function f32(data: Float32Array, dims: readonly number[]): OrtTensor {
  return new (loadOrt().Tensor)("float32", data, dims);
}

export function i64(data: BigInt64Array, dims: readonly number[]): OrtTensor {
  return new (loadOrt().Tensor)("int64", data, dims);
}

/** One onnxruntime session, created and run synchronously. */
export class SyncSession {
  private native: any;

  constructor(s: Serialized) {
    const o = loadOrt();
    this.native = new o.NativeSession();
    const threads = ortThreads();
    const options = {
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      executionMode: "sequential",
      graphOptimizationLevel: "all",
      // No busy-waiting between kernels: on a shared machine spinning threads steal the cores others need.
      extra: { session: { "intra_op.allow_spinning": "0", "inter_op.allow_spinning": "0" } },
      externalData: s.external.byteLength ? [{ path: EXTERNAL_FILE, data: s.external }] : [],
    };
    this.native.loadModel(s.model.buffer, s.model.byteOffset, s.model.byteLength, options);
  }

  /** Runs with these feeds and returns the named outputs. */
  run(feeds: Record<string, OrtTensor>, fetch: readonly string[]): Record<string, OrtTensor> {
    const fetches: Record<string, null> = {};
    for (const n of fetch) fetches[n] = null;
    return this.native.run(feeds, fetches, {});
  }

  dispose(): void {
    this.native?.dispose();
    this.native = null;
  }
}
/* eslint-enable @typescript-eslint/no-explicit-any */
