/**
 * The experiment log on disk: `<dir>/<name>.jsonl`, one JSON line per call, append-only; large numeric
 * values of a record in `<dir>/<name>.tensors/<record>.safetensors`, written before the line that refers to it.
 *
 * Crash safety: a record's side file is written to a temporary name and renamed, then its line is appended
 * with one write; a process killed in between leaves at most an unreferenced side file or a torn last line,
 * which readers skip. Reading streams the file in chunks and parses line by line, so no string larger than
 * one line is ever built (a whole-file string stops working at 512 MiB).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { fail, show } from "../errors";
import { SafetensorsFile, writeSafetensors } from "../io/safetensors";
import type { TensorRef, TensorSink } from "./record-value";

/** One line of `<dir>/<name>.jsonl`: one call of a logged experiment. */
export interface ExperimentRecord {
  experiment: string;
  /** First 12 hex digits of the SHA-256 of the function's source. */
  version: string;
  status: "ok" | "error";
  /** ISO time the call started. */
  startedAt: string;
  durationMs: number;
  /** The call's arguments, made JSON-safe (small tensors as nested arrays, large ones as TensorRefs). */
  args: unknown[];
  /** The (awaited) return value, JSON-safe; absent on error. */
  result?: unknown;
  /** What was thrown; absent on success. */
  error?: { name: string; message: string; stack?: string };
  /** The function's source text (the TypeScript of the notebook cell when run in the kernel). */
  source: string;
}

/** Names become file names: letters, digits, "_", "-", "." and short enough for any file system. */
export const MAX_NAME_LENGTH = 120;

/** A line longer than this cannot be a record we wrote (large values go to side files); it is skipped. */
const MAX_LINE_BYTES = 256 * 1024 * 1024;
const CHUNK_BYTES = 1 << 20;

export class ExperimentLog {
  constructor(readonly dir: string) {}

  file(name: string): string {
    return path.join(this.dir, `${name}.jsonl`);
  }

  /** A fresh sink for one record's large values; its file is relative to the log folder. */
  sink(name: string, version: string): TensorSink {
    const stamp = new Date().toISOString().replace(/[-:.]/g, "");
    const rand = Math.random().toString(36).slice(2, 8);
    return { file: `${name}.tensors/${stamp}-${version}-${rand}.safetensors`, tensors: new Map() };
  }

  /** Writes the side file (when there are large values), then appends the record's line. */
  append(record: ExperimentRecord, sink: TensorSink | null): void {
    const line = JSON.stringify(record) + "\n";
    fs.mkdirSync(this.dir, { recursive: true });
    if (sink && sink.tensors.size) {
      const file = path.join(this.dir, sink.file);
      fs.mkdirSync(path.dirname(file), { recursive: true });
      const out: Parameters<typeof writeSafetensors>[1] = {};
      const dtypes: Record<string, string> = {};
      for (const [key, t] of sink.tensors) {
        out[key] = { shape: t.shape, data: t.data };
        dtypes[key] = t.dtype;
      }
      writeSafetensors(file, out, { format: "arrakis-experiment", dtypes: JSON.stringify(dtypes) });
    }
    const target = this.file(record.experiment);
    fs.appendFileSync(target, endsWithNewline(target) ? line : "\n" + line);
  }

  names(): string[] {
    if (!fs.existsSync(this.dir)) return [];
    return fs.readdirSync(this.dir).filter((f) => f.endsWith(".jsonl")).map((f) => f.slice(0, -".jsonl".length)).sort();
  }

  /**
   * Calls `fn` with every record, oldest first. A line that does not parse (a torn last line from a killed
   * process) is skipped; so is a line too long to be one of ours, with a warning.
   */
  forEach(name: string, fn: (r: ExperimentRecord) => void): void {
    let oversize = 0;
    forEachLine(this.file(name), (line) => {
      if (line === null) {
        oversize++;
        return;
      }
      if (!line.trim()) return;
      let record: ExperimentRecord;
      try {
        record = JSON.parse(line) as ExperimentRecord;
      } catch {
        return; // a torn line from a killed process: earlier records are intact, this one never finished
      }
      fn(record);
    });
    if (oversize) console.warn(`experiment log ${show(this.file(name))}: skipped ${oversize} line(s) longer than ${MAX_LINE_BYTES / 2 ** 20} MiB (not written by this library)`);
  }

  /** The data a TensorRef points to, as a tensor owned by the caller (float64 data becomes float32). */
  readTensor(ref: TensorRef): tf.Tensor {
    const { dtype, shape } = ref.$tensor;
    const data = this.readData(ref);
    if (dtype === "bool") return tf.tensor(data as Int32Array, shape, "bool");
    return data instanceof Int32Array ? tf.tensor(data, shape, "int32") : tf.tensor(Float32Array.from(data), shape, "float32");
  }

  /** The data a TensorRef points to as nested arrays, exactly as logged (float64 values stay float64). */
  readArray(ref: TensorRef): unknown[] {
    const { shape, dtype } = ref.$tensor;
    const data = this.readData(ref);
    const flat: unknown[] = dtype === "bool" ? Array.from(data, (v) => v !== 0) : Array.from(data);
    return nest(flat, shape);
  }

  private readData(ref: TensorRef): Float32Array | Int32Array | Float64Array {
    const { file, key } = ref.$tensor;
    const full = path.resolve(this.dir, file);
    if (path.relative(this.dir, full).startsWith("..")) fail(`tensor reference ${show(file)} points outside the log folder ${show(this.dir)}`);
    if (!fs.existsSync(full)) fail(`the side file ${show(full)} of this record is missing (was the log folder copied without its .tensors folders?)`);
    const st = SafetensorsFile.open(full);
    try {
      const entry = st.header.entries.get(key) ?? fail(`${show(full)} has no tensor ${show(key)}`);
      if (entry.dtype !== "F64") return st.read(key).data;
      const bytes = st.readBytes(key);
      return new Float64Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 8);
    } finally {
      st.close();
    }
  }
}

/** Row-major flat values as nested arrays of `shape`. */
function nest(flat: unknown[], shape: number[]): unknown[] {
  if (shape.length <= 1) return flat;
  const step = flat.length / shape[0];
  return Array.from({ length: shape[0] }, (_, i) => nest(flat.slice(i * step, (i + 1) * step), shape.slice(1)));
}

/**
 * Calls `fn` with each line of `file` (without "\n"), or with null for a line over MAX_LINE_BYTES (its bytes
 * are dropped as they stream past). Lines are cut at newline bytes and decoded one by one.
 */
function forEachLine(file: string, fn: (line: string | null) => void): void {
  const fd = fs.openSync(file, "r");
  try {
    let parts: Buffer[] = [];
    let length = 0;
    let tooLong = false;
    const keep = (bytes: Buffer) => {
      if (tooLong) return;
      if (length + bytes.length > MAX_LINE_BYTES) {
        tooLong = true;
        parts = [];
        length = 0;
        return;
      }
      parts.push(bytes); // a view of its chunk: each chunk is a fresh buffer, never overwritten
      length += bytes.length;
    };
    const endLine = () => {
      fn(tooLong ? null : Buffer.concat(parts, length).toString("utf8"));
      parts = [];
      length = 0;
      tooLong = false;
    };
    for (;;) {
      const chunk = Buffer.allocUnsafe(CHUNK_BYTES);
      const n = fs.readSync(fd, chunk, 0, CHUNK_BYTES, null);
      if (n === 0) break;
      let start = 0;
      for (let nl = chunk.indexOf(0x0a, start); nl !== -1 && nl < n; nl = chunk.indexOf(0x0a, start)) {
        keep(chunk.subarray(start, nl));
        endLine();
        start = nl + 1;
      }
      if (start < n) keep(chunk.subarray(start, n));
    }
    if (length || tooLong) endLine();
  } finally {
    fs.closeSync(fd);
  }
}

function endsWithNewline(file: string): boolean {
  let fd: number;
  try {
    fd = fs.openSync(file, "r");
  } catch {
    return true; // no file yet
  }
  try {
    const size = fs.fstatSync(fd).size;
    if (size === 0) return true;
    const last = Buffer.alloc(1);
    fs.readSync(fd, last, 0, 1, size - 1);
    return last[0] === 0x0a;
  } finally {
    fs.closeSync(fd);
  }
}
