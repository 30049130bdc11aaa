/**
 * A minimal safetensors reader/writer for the reference tests, written from the format spec (8-byte LE header
 * length, JSON header, raw little-endian data) and independent of src/io on purpose: the tests' checkpoints and
 * the reference must not share code with what they check.
 */
import * as fs from "node:fs";

export interface RefTensor {
  shape: number[];
  /** Values widened to float64 (F32 and I32 tensors). */
  data: Float64Array;
}

/** Reads every F32/I32 tensor of a safetensors file. */
export function readTensors(file: string): Map<string, RefTensor> {
  const buf = fs.readFileSync(file);
  const headerLen = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + headerLen).toString("utf8")) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  const base = 8 + headerLen;
  const out = new Map<string, RefTensor>();
  for (const [name, h] of Object.entries(header)) {
    if (name === "__metadata__") continue;
    const [start, end] = h.data_offsets;
    const bytes = buf.subarray(base + start, base + end);
    const n = (end - start) / 4;
    const data = new Float64Array(n);
    for (let i = 0; i < n; i++) data[i] = h.dtype === "I32" ? bytes.readInt32LE(4 * i) : bytes.readFloatLE(4 * i);
    if (h.dtype !== "F32" && h.dtype !== "I32") throw new Error(`readTensors: ${name} has dtype ${h.dtype}`);
    out.set(name, { shape: h.shape, data });
  }
  return out;
}

/**
 * Writes float32 tensors the way `save_pretrained(safe_serialization=True)` does: sorted names,
 * `__metadata__ = {"format": "pt"}`, header padded with spaces to a multiple of 8.
 */
export function writeTensors(file: string, tensors: Map<string, { shape: number[]; data: Float32Array }>): void {
  const names = [...tensors.keys()].sort();
  const header: Record<string, unknown> = { __metadata__: { format: "pt" } };
  let offset = 0;
  for (const name of names) {
    const t = tensors.get(name)!;
    header[name] = { dtype: "F32", shape: t.shape, data_offsets: [offset, offset + 4 * t.data.length] };
    offset += 4 * t.data.length;
  }
  let json = JSON.stringify(header);
  json += " ".repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const head = Buffer.alloc(8);
  head.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  const body = Buffer.alloc(offset);
  let at = 0;
  for (const name of names) for (const v of tensors.get(name)!.data) at = body.writeFloatLE(v, at);
  fs.writeFileSync(file, Buffer.concat([head, Buffer.from(json, "utf8"), body]));
}
