/**
 * The safetensors format (https://github.com/huggingface/safetensors, "Format" section):
 *   8 bytes little-endian u64 N | N bytes UTF-8 JSON header | raw data.
 * The header maps tensor names to {dtype, shape, data_offsets: [begin, end]} (offsets relative to the data
 * block) plus an optional "__metadata__" string map. We read F32/F16/BF16 (and integer dtypes) into
 * Float32Array/Int32Array and write F32/F64/I32.
 */
import * as fs from "node:fs";
import { ArrakisError, fail, show } from "../errors";

export type SafetensorsDtype = "F64" | "F32" | "F16" | "BF16" | "I64" | "I32" | "I16" | "I8" | "U8" | "BOOL";

export interface SafetensorsEntry {
  dtype: SafetensorsDtype;
  shape: number[];
  /** [begin, end) byte offsets relative to the start of the data block. */
  data_offsets: [number, number];
}

export interface SafetensorsHeader {
  entries: Map<string, SafetensorsEntry>;
  metadata: Record<string, string>;
  /** Absolute byte offset of the data block in the file. */
  dataStart: number;
}

export interface LoadedTensor {
  dtype: SafetensorsDtype;
  shape: number[];
  /** Float data converted to float32; integer data as Int32Array. */
  data: Float32Array | Int32Array;
}

/** Largest header we accept; the reference implementation refuses headers above 100 MB as well. */
export const MAX_HEADER_BYTES = 100 * 1024 * 1024;

const BYTES_PER_ELEMENT: Record<SafetensorsDtype, number> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1,
};

/** Parses and validates the header of a safetensors buffer of `totalBytes` bytes. `label` names the file in errors. */
export function parseHeader(headerPrefix: Uint8Array, totalBytes: number, label: string): SafetensorsHeader {
  if (totalBytes < 8) fail(`${label}: not a safetensors file: ${totalBytes} bytes, need at least 8 for the header length`);
  const view = new DataView(headerPrefix.buffer, headerPrefix.byteOffset, headerPrefix.byteLength);
  const declared = view.getBigUint64(0, true);
  if (declared > BigInt(MAX_HEADER_BYTES)) {
    fail(`${label}: malformed safetensors header: declared header length ${declared} bytes exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  }
  const n = Number(declared);
  if (8 + n > totalBytes) {
    fail(`${label}: truncated safetensors file: header declares ${n} bytes but the file has only ${totalBytes - 8} after the length`);
  }
  if (headerPrefix.byteLength < 8 + n) fail(`${label}: internal error: header prefix too short`);
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(headerPrefix.subarray(8, 8 + n)));
  } catch (e) {
    fail(`${label}: malformed safetensors header: not valid UTF-8 JSON (${(e as Error).message})`);
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    fail(`${label}: malformed safetensors header: expected a JSON object, got ${show(json)}`);
  }
  const dataStart = 8 + n;
  const dataBytes = totalBytes - dataStart;
  const entries = new Map<string, SafetensorsEntry>();
  let metadata: Record<string, string> = {};
  for (const [name, raw] of Object.entries(json as Record<string, unknown>)) {
    if (name === "__metadata__") {
      metadata = raw as Record<string, string>;
      continue;
    }
    entries.set(name, checkEntry(name, raw, dataBytes, label));
  }
  checkNoOverlap(entries, label);
  return { entries, metadata, dataStart };
}

/**
 * Two tensors sharing bytes would alias each other's data (a write to one shows in the other, and a crafted
 * file can make one weight read another's bytes as a different dtype); the reference implementation refuses it.
 */
function checkNoOverlap(entries: Map<string, SafetensorsEntry>, label: string): void {
  const spans = [...entries].filter(([, e]) => e.data_offsets[1] > e.data_offsets[0]).sort((a, b) => a[1].data_offsets[0] - b[1].data_offsets[0]);
  for (let i = 1; i < spans.length; i++) {
    const [prevName, prev] = spans[i - 1];
    const [name, cur] = spans[i];
    if (cur.data_offsets[0] < prev.data_offsets[1]) {
      fail(`${label}: malformed safetensors header: tensors ${show(prevName)} ${show(prev.data_offsets)} and ${show(name)} ${show(cur.data_offsets)} overlap; each tensor must have bytes of its own`);
    }
  }
}

function checkEntry(name: string, raw: unknown, dataBytes: number, label: string): SafetensorsEntry {
  const e = raw as SafetensorsEntry;
  const where = `${label}: tensor ${show(name)}`;
  if (!e || typeof e !== "object") fail(`${where}: expected {dtype, shape, data_offsets}, got ${show(raw)}`);
  if (!(e.dtype in BYTES_PER_ELEMENT)) {
    fail(`${where}: unsupported dtype ${show(e.dtype)} (supported: ${Object.keys(BYTES_PER_ELEMENT).join(", ")})`);
  }
  if (!Array.isArray(e.shape) || !e.shape.every((d) => Number.isInteger(d) && d >= 0)) {
    fail(`${where}: shape must be a list of non-negative integers, got ${show(e.shape)}`);
  }
  const offs = e.data_offsets;
  if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((o) => Number.isInteger(o) && o >= 0) || offs[0] > offs[1]) {
    fail(`${where}: data_offsets must be [begin, end] with 0 <= begin <= end, got ${show(offs)}`);
  }
  const expected = e.shape.reduce((a, b) => a * b, 1) * BYTES_PER_ELEMENT[e.dtype];
  if (offs[1] - offs[0] !== expected) {
    fail(`${where}: ${e.dtype}${show(e.shape)} needs ${expected} bytes but data_offsets ${show(offs)} span ${offs[1] - offs[0]}`);
  }
  if (offs[1] > dataBytes) {
    fail(`${label}: truncated safetensors file: tensor ${show(name)} ends at byte ${offs[1]} of the data block, which has only ${dataBytes} bytes`);
  }
  return { dtype: e.dtype, shape: e.shape, data_offsets: [offs[0], offs[1]] };
}

/** Converts raw little-endian bytes of one tensor to float32 (floats) or int32 (integers). */
export function decodeTensor(entry: SafetensorsEntry, bytes: Uint8Array): LoadedTensor {
  const count = entry.shape.reduce((a, b) => a * b, 1);
  // Copy into an aligned buffer: the data block offsets need not be aligned to the element size.
  const aligned = new Uint8Array(bytes.byteLength);
  aligned.set(bytes);
  const buf = aligned.buffer;
  let data: Float32Array | Int32Array;
  switch (entry.dtype) {
    case "F32": data = new Float32Array(buf, 0, count); break;
    case "F64": data = Float32Array.from(new Float64Array(buf, 0, count)); break;
    case "F16": data = f16ToF32(new Uint16Array(buf, 0, count)); break;
    case "BF16": data = bf16ToF32(new Uint16Array(buf, 0, count)); break;
    case "I32": data = new Int32Array(buf, 0, count); break;
    case "I64": data = Int32Array.from(new BigInt64Array(buf, 0, count), (v) => Number(v)); break;
    case "I16": data = Int32Array.from(new Int16Array(buf, 0, count)); break;
    case "I8": data = Int32Array.from(new Int8Array(buf, 0, count)); break;
    case "U8": case "BOOL": data = Int32Array.from(new Uint8Array(buf, 0, count)); break;
  }
  return { dtype: entry.dtype, shape: entry.shape, data };
}

/** bfloat16 is the top half of a float32. */
export function bf16ToF32(src: Uint16Array): Float32Array {
  const out = new Uint32Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = src[i] << 16;
  return new Float32Array(out.buffer);
}

/** IEEE 754 half precision to single precision, including subnormals, infinities and NaN. */
export function f16ToF32(src: Uint16Array): Float32Array {
  const out = new Float32Array(src.length);
  for (let i = 0; i < src.length; i++) {
    const h = src[i];
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const frac = h & 0x3ff;
    if (exp === 0) out[i] = sign * frac * 2 ** -24;
    else if (exp === 31) out[i] = frac ? NaN : sign * Infinity;
    else out[i] = sign * (1 + frac / 1024) * 2 ** (exp - 15);
  }
  return out;
}

/** A safetensors file opened for reading: the header is parsed eagerly, tensors are read on demand. */
export class SafetensorsFile {
  private constructor(readonly path: string, readonly header: SafetensorsHeader, private readonly fd: number) {}

  static open(path: string): SafetensorsFile {
    checkRegularFile(path, "safetensors file");
    let fd: number;
    try {
      fd = fs.openSync(path, "r");
    } catch (e) {
      throw new ArrakisError(`cannot open safetensors file ${show(path)}: ${(e as Error).message}`);
    }
    try {
      const size = fs.fstatSync(fd).size;
      const lenBuf = new Uint8Array(8);
      fs.readSync(fd, lenBuf, 0, Math.min(8, size), 0);
      // Validate the declared length before allocating anything of that size.
      parseHeaderLengthOnly(lenBuf, size, path);
      const n = Number(new DataView(lenBuf.buffer).getBigUint64(0, true));
      const prefix = new Uint8Array(8 + n);
      fs.readSync(fd, prefix, 0, 8 + n, 0);
      return new SafetensorsFile(path, parseHeader(prefix, size, path), fd);
    } catch (e) {
      fs.closeSync(fd);
      throw e;
    }
  }

  get names(): string[] {
    return [...this.header.entries.keys()];
  }

  read(name: string): LoadedTensor {
    const entry = this.header.entries.get(name) ?? fail(`${this.path}: no tensor named ${show(name)}`);
    return decodeTensor(entry, this.readBytes(name));
  }

  /** The raw little-endian bytes of one tensor (for dtypes `read` would convert, such as F64). */
  readBytes(name: string): Uint8Array {
    const entry = this.header.entries.get(name) ?? fail(`${this.path}: no tensor named ${show(name)}`);
    const [begin, end] = entry.data_offsets;
    const bytes = new Uint8Array(end - begin);
    const got = readFully(this.fd, bytes, this.header.dataStart + begin);
    // The header was checked against the file's size when it was opened; a short read means it shrank since.
    if (got !== end - begin) fail(`${this.path}: truncated safetensors file: tensor ${show(name)} needs ${end - begin} bytes but only ${got} could be read (the file changed after it was opened)`);
    return bytes;
  }

  close(): void {
    fs.closeSync(this.fd);
  }
}

/**
 * Refuses anything but a regular file (symbolic links to one are fine: the Hub cache is made of them). Opening
 * a FIFO for reading blocks until a writer appears, which would hang the loader; a device or folder is no file.
 */
export function checkRegularFile(file: string, what: string): void {
  let stat: fs.Stats | undefined;
  try {
    stat = fs.statSync(file, { throwIfNoEntry: false });
  } catch (e) {
    fail(`cannot read ${what} ${show(file)}: ${(e as Error).message}`);
  }
  if (!stat) fail(`${what} ${show(file)} does not exist`);
  if (!stat.isFile()) fail(`${what} ${show(file)} is not a regular file (it is ${fileKind(stat)}); expected a file`);
}

function fileKind(s: fs.Stats): string {
  if (s.isDirectory()) return "a folder";
  if (s.isFIFO()) return "a named pipe (FIFO), which would block the reader";
  if (s.isSocket()) return "a socket";
  if (s.isCharacterDevice() || s.isBlockDevice()) return "a device";
  return "not a file";
}

/** Reads `into.length` bytes from `position` (one readSync returns at most 2 GiB); returns the bytes read. */
function readFully(fd: number, into: Uint8Array, position: number): number {
  let got = 0;
  while (got < into.length) {
    const n = fs.readSync(fd, into, got, into.length - got, position + got);
    if (n === 0) break; // end of file
    got += n;
  }
  return got;
}

function parseHeaderLengthOnly(lenBuf: Uint8Array, size: number, label: string): void {
  if (size < 8) fail(`${label}: not a safetensors file: ${size} bytes, need at least 8 for the header length`);
  const declared = new DataView(lenBuf.buffer).getBigUint64(0, true);
  if (declared > BigInt(MAX_HEADER_BYTES)) {
    fail(`${label}: malformed safetensors header: declared header length ${declared} bytes exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  }
  if (8n + declared > BigInt(size)) {
    fail(`${label}: truncated safetensors file: header declares ${declared} bytes but the file has only ${size - 8} after the length`);
  }
}

/** Reads every tensor of a safetensors file. */
export function readSafetensors(path: string): { tensors: Map<string, LoadedTensor>; metadata: Record<string, string> } {
  const file = SafetensorsFile.open(path);
  try {
    const tensors = new Map<string, LoadedTensor>();
    for (const name of file.names) tensors.set(name, file.read(name));
    return { tensors, metadata: file.header.metadata };
  } finally {
    file.close();
  }
}

export interface TensorToWrite {
  shape: number[];
  data: Float32Array | Int32Array | Float64Array;
}

/**
 * Serialises tensors as safetensors (F32 for Float32Array, F64 for Float64Array, I32 for Int32Array), names sorted and the header
 * padded with spaces to a multiple of 8, as `save_pretrained` writes them.
 */
export function encodeSafetensors(tensors: Record<string, TensorToWrite>, metadata: Record<string, string> = { format: "pt" }): Uint8Array {
  const names = Object.keys(tensors).sort();
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const name of names) {
    const t = tensors[name];
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (count !== t.data.length) fail(`tensor ${show(name)}: shape ${show(t.shape)} needs ${count} values, got ${t.data.length}`);
    const bytes = t.data.byteLength;
    header[name] = { dtype: t.data instanceof Int32Array ? "I32" : t.data instanceof Float64Array ? "F64" : "F32", shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  const raw = new TextEncoder().encode(JSON.stringify(header));
  const headerBytes = new Uint8Array(raw.length + ((8 - (raw.length % 8)) % 8)).fill(0x20); // pad with spaces
  headerBytes.set(raw);
  const out = new Uint8Array(8 + headerBytes.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let at = 8 + headerBytes.length;
  for (const name of names) {
    const d = tensors[name].data;
    out.set(new Uint8Array(d.buffer, d.byteOffset, d.byteLength), at);
    at += d.byteLength;
  }
  return out;
}

/**
 * Writes a safetensors file atomically: to a temporary file in the same folder, then renamed over the target,
 * so a crash never leaves a half-written checkpoint.
 */
export function writeSafetensors(path: string, tensors: Record<string, TensorToWrite>, metadata?: Record<string, string>): void {
  const tmp = `${path}.tmp-${process.pid}-${Date.now()}`;
  fs.writeFileSync(tmp, encodeSafetensors(tensors, metadata));
  fs.renameSync(tmp, path);
}
