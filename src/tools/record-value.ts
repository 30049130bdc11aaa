/**
 * Values made JSON-safe for the experiment log. Tensors, typed arrays and rectangular number arrays above
 * `INLINE_ELEMENTS` values go to a side table (written as one safetensors file per record) and the JSON line
 * holds a `TensorRef` to them: a GPT-2 logits tensor is 100+ MB of JSON text, and a log made of such lines
 * becomes unreadable past the 512 MiB limit of a JavaScript string.
 */
import * as tf from "@tensorflow/tfjs";
import { show } from "../errors";

/** Numeric data larger than this many values is stored beside the log, not in the JSON line. */
export const INLINE_ELEMENTS = 1024;

/** Where a large value of a record lives: `file` (relative to the log folder) holds it under `key`. */
export interface TensorRef {
  $tensor: { file: string; key: string; dtype: "float32" | "int32" | "bool" | "float64"; shape: number[] };
}

/** Large numeric data taken out of a record: key → data (F32, I32 or F64 when written). */
export interface TensorSink {
  /** The sidecar file the refs point to (relative to the log folder). */
  file: string;
  tensors: Map<string, { shape: number[]; data: Float32Array | Int32Array | Float64Array; dtype: TensorRef["$tensor"]["dtype"] }>;
}

export function isTensorRef(x: unknown): x is TensorRef {
  const t = (x as TensorRef | null)?.$tensor;
  return typeof x === "object" && x !== null && typeof t === "object" && t !== null && typeof t.file === "string" && typeof t.key === "string" && Array.isArray(t.shape);
}

interface Walk {
  seen: Set<object>;
  sink: TensorSink | null;
}

/**
 * A JSON-safe copy of any value for the log: tensors become nested arrays (or refs into `sink` when large),
 * typed arrays arrays, Maps objects, Sets arrays, non-finite numbers and other non-serialisable values clear
 * "[…]" placeholders. Objects with `toJSON` (the tool results) use it; other class instances are not walked
 * (a model would drag its weights in) but named.
 */
export function toRecordValue(x: unknown, sink: TensorSink | null = null, key = "value"): unknown {
  return walk(x, { seen: new Set(), sink }, key, 0);
}

function walk(x: unknown, w: Walk, key: string, depth: number): unknown {
  if (x === null || typeof x === "string" || typeof x === "boolean") return x;
  if (x === undefined) return null;
  if (typeof x === "number") return Number.isFinite(x) ? x : `[number ${x}]`;
  if (typeof x === "bigint") return `[bigint ${x}]`;
  if (typeof x === "symbol") return `[${x.toString()}]`;
  if (typeof x === "function") return `[function ${x.name || "anonymous"}]`;
  if (depth > 32) return "[too deep]";
  if (x instanceof tf.Tensor) return tensorValue(x, w, key);
  if (ArrayBuffer.isView(x)) return typedValue(x as unknown as ArrayLike<number>, w, key);
  if (x instanceof Date) return x.toISOString();
  if (x instanceof Error) return { name: x.name, message: x.message };
  const obj = x as object;
  if (w.seen.has(obj)) return "[circular]";
  w.seen.add(obj);
  try {
    const rec = (v: unknown, k: string) => walk(v, w, `${key}.${k}`, depth + 1);
    if (Array.isArray(obj)) {
      const big = w.sink ? numericArray(obj) : null;
      if (big) return put(w.sink!, key, big.shape, big.data, "float64");
      return obj.map((v, i) => rec(v, String(i)));
    }
    if (obj instanceof Map) return Object.fromEntries([...obj.entries()].map(([k, v]) => [String(k), rec(v, String(k))]));
    if (obj instanceof Set) return [...obj].map((v, i) => rec(v, String(i)));
    const toJSON = (obj as { toJSON?: unknown }).toJSON;
    if (typeof toJSON === "function") return walk(toJSON.call(obj), w, key, depth + 1);
    const proto = Object.getPrototypeOf(obj);
    if (proto !== Object.prototype && proto !== null) return `[${proto?.constructor?.name ?? "object"} ${String(obj).slice(0, 120)}]`;
    return Object.fromEntries(Object.entries(obj).filter(([, v]) => v !== undefined).map(([k, v]) => [k, rec(v, k)]));
  } catch (e) {
    return `[unserialisable: ${(e as Error).message}]`;
  } finally {
    w.seen.delete(obj);
  }
}

function tensorValue(t: tf.Tensor, w: Walk, key: string): unknown {
  if (t.isDisposed) return `[disposed tensor ${t.dtype} ${show(t.shape)}]`;
  if (!w.sink || t.size <= INLINE_ELEMENTS || (t.dtype !== "float32" && t.dtype !== "int32" && t.dtype !== "bool")) return t.arraySync();
  const values = t.dataSync();
  const data = t.dtype === "float32" ? Float32Array.from(values as Float32Array) : Int32Array.from(values as ArrayLike<number>);
  return put(w.sink, key, [...t.shape], data, t.dtype);
}

function typedValue(x: ArrayLike<number>, w: Walk, key: string): unknown {
  if (!w.sink || x.length <= INLINE_ELEMENTS || x instanceof BigInt64Array || x instanceof BigUint64Array) return Array.from(x, (v) => walk(v, w, key, 0));
  const data = x instanceof Float32Array ? Float32Array.from(x) : x instanceof Int32Array ? Int32Array.from(x) : Float64Array.from(x);
  return put(w.sink, key, [x.length], data, data instanceof Float32Array ? "float32" : data instanceof Int32Array ? "int32" : "float64");
}

function put(sink: TensorSink, key: string, shape: number[], data: Float32Array | Int32Array | Float64Array, dtype: TensorRef["$tensor"]["dtype"]): TensorRef {
  let unique = key;
  for (let i = 2; sink.tensors.has(unique); i++) unique = `${key}#${i}`;
  sink.tensors.set(unique, { shape, data, dtype });
  return { $tensor: { file: sink.file, key: unique, dtype, shape } };
}

/**
 * A rectangular array of numbers (any depth) with more than INLINE_ELEMENTS values, flattened; null for
 * anything else (ragged, mixed, small), which stays JSON. NaN and ±Infinity survive in the side table.
 */
function numericArray(x: unknown[]): { shape: number[]; data: Float64Array } | null {
  const shape: number[] = [];
  let level: unknown = x;
  while (Array.isArray(level)) {
    shape.push(level.length);
    if (level.length === 0) return null;
    level = level[0];
  }
  if (typeof level !== "number") return null;
  const size = shape.reduce((a, b) => a * b, 1);
  if (size <= INLINE_ELEMENTS) return null;
  const data = new Float64Array(size);
  let at = 0;
  const fill = (v: unknown, d: number): boolean => {
    if (d === shape.length) {
      if (typeof v !== "number") return false;
      data[at++] = v;
      return true;
    }
    if (!Array.isArray(v) || v.length !== shape[d]) return false;
    for (const item of v) if (!fill(item, d + 1)) return false;
    return true;
  };
  return fill(x, 0) ? { shape, data } : null;
}
