/**
 * `ActivationCache`: activations recorded during one forward pass, owned by the cache until `dispose()`.
 *
 * Each activation is copied out of the backend as soon as it is made (a plain typed array + shape), and a
 * tensor is materialised only when `get(name)` asks for it. On the wasm backend this keeps the cache out of
 * the wasm heap, which is capped at 4 GiB and never shrinks (caching every hook point of GPT-2 small
 * at 1,024 tokens is ~1.9 GB, on top of the weights and one block's intermediates).
 */
import * as tf from "@tensorflow/tfjs";
import { fail, show } from "../errors";

interface Entry {
  /** The activation's values, row-major (owned by the cache; never handed out for mutation). */
  values: Float32Array | Int32Array | Uint8Array;
  shape: number[];
  dtype: tf.DataType;
  /** The tensor made by the first `get`, owned by the cache. */
  tensor: tf.Tensor | null;
}

export class ActivationCache {
  private readonly store = new Map<string, Entry>();
  private disposed = false;

  /** @internal Copies the values of `t` out of the backend; the caller keeps ownership of `t`. */
  record(name: string, t: tf.Tensor): void {
    // wasm and tfjs-node return a fresh copy; cpu returns its (immutable) storage, which is safe to share.
    const values = t.dataSync() as Entry["values"];
    this.replace(name, { values, shape: [...t.shape], dtype: t.dtype, tensor: null });
  }

  /** @internal Takes ownership of values computed outside TF.js (an engine's output array). */
  recordValues(name: string, values: Float32Array, shape: number[]): void {
    this.replace(name, { values, shape: [...shape], dtype: "float32", tensor: null });
  }

  /** @internal Takes ownership of `t` (it is copied out and disposed). */
  set(name: string, t: tf.Tensor): void {
    this.record(name, t);
    t.dispose();
  }

  /**
   * The activation recorded at a hook point, as a tensor owned by the cache (do not dispose it yourself). It
   * is made on the first call and reused; it survives an enclosing `tf.tidy`.
   */
  get(name: string): tf.Tensor {
    const e = this.entry(name);
    if (!e.tensor) e.tensor = tf.keep(tf.tensor(e.values, e.shape, e.dtype));
    return e.tensor;
  }

  /**
   * The recorded values of a hook point, flat in row-major order, without making a tensor (no backend memory
   * used). The array belongs to the cache: read it, do not modify it.
   */
  values(name: string): Float32Array | Int32Array | Uint8Array {
    return this.entry(name).values;
  }

  /** The shape of a recorded activation. */
  shape(name: string): number[] {
    return [...this.entry(name).shape];
  }

  has(name: string): boolean {
    return this.store.has(name);
  }

  get names(): string[] {
    return [...this.store.keys()];
  }

  /** Bytes of recorded values (outside the backend), not counting tensors made by `get`. */
  get bytes(): number {
    let n = 0;
    for (const e of this.store.values()) n += e.values.byteLength;
    return n;
  }

  /** Frees the tensors made by `get` and drops the recorded values; the cache cannot be used afterwards. */
  dispose(): void {
    for (const e of this.store.values()) e.tensor?.dispose();
    this.store.clear();
    this.disposed = true;
  }

  toString(): string {
    return `ActivationCache(${this.store.size} activations, ${(this.bytes / 1e6).toFixed(2)} MB)`;
  }

  private entry(name: string): Entry {
    if (this.disposed) fail(`this ActivationCache was disposed; run runWithCache again to get ${show(name)}`);
    const e = this.store.get(name);
    if (!e) fail(`no activation ${show(name)} in the cache; it holds ${this.store.size ? this.names.slice(0, 6).join(", ") + (this.store.size > 6 ? ", …" : "") : "nothing"}`);
    return e;
  }

  private replace(name: string, e: Entry): void {
    this.store.get(name)?.tensor?.dispose();
    this.store.set(name, e);
  }
}
