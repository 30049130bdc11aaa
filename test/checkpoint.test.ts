/** safetensors reading/writing and Hugging Face folder variants (dtypes, shards, prefixes, buffers). */
import { test, before } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { HookedAutoModel, initBackend, readSafetensors, writeSafetensors } from "../src";
import { bf16ToF32, encodeSafetensors, f16ToF32, SafetensorsFile } from "../src/io/safetensors";
import { hfFixture, maxAbsDiff, scratchDir } from "./helpers";

before(async () => {
  await initBackend();
});

function tmpdir(): string {
  return scratchDir("arrakis-st-");
}

function writeRaw(file: string, headerLen: bigint, header: string, data = new Uint8Array()): void {
  const h = new TextEncoder().encode(header);
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, headerLen, true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  fs.writeFileSync(file, out);
}

test("round trip: encodeSafetensors writes what readSafetensors reads, header padded to 8 bytes", () => {
  const dir = tmpdir();
  const file = path.join(dir, "a.safetensors");
  writeSafetensors(file, { b: { shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) }, a: { shape: [3], data: new Int32Array([7, 8, 9]) } });
  const bytes = fs.readFileSync(file);
  const n = Number(bytes.readBigUInt64LE(0));
  assert.equal(n % 8, 0);
  const { tensors, metadata } = readSafetensors(file);
  assert.deepEqual(metadata, { format: "pt" });
  assert.deepEqual(Array.from(tensors.get("b")!.data), [1, 2, 3, 4]);
  assert.deepEqual(Array.from(tensors.get("a")!.data), [7, 8, 9]);
  assert.deepEqual(Object.keys(JSON.parse(bytes.subarray(8, 8 + n).toString())), ["__metadata__", "a", "b"]);
  assert.equal(fs.readdirSync(dir).length, 1, "no temporary file left behind");
});

test("F16 and BF16 are converted to float32 exactly", () => {
  // 1.0, -2.0, 0.5, 65504 (max half), smallest subnormal 2^-24, +inf
  assert.deepEqual(Array.from(f16ToF32(new Uint16Array([0x3c00, 0xc000, 0x3800, 0x7bff, 0x0001, 0x7c00]))), [1, -2, 0.5, 65504, 2 ** -24, Infinity]);
  assert.deepEqual(Array.from(bf16ToF32(new Uint16Array([0x3f80, 0xc000, 0x3f00]))), [1, -2, 0.5]);
  const dir = tmpdir();
  const file = path.join(dir, "h.safetensors");
  const data = new Uint8Array(new Uint16Array([0x3c00, 0x4000]).buffer);
  writeRaw(file, 80n, JSON.stringify({ x: { dtype: "F16", shape: [2], data_offsets: [0, 4] } }).padEnd(80, " "), data);
  assert.deepEqual(Array.from(readSafetensors(file).tensors.get("x")!.data), [1, 2]);
});

test("malformed and truncated files give clear errors, and a huge declared header is not allocated", () => {
  const dir = tmpdir();
  const f = (name: string) => path.join(dir, name);
  fs.writeFileSync(f("short"), new Uint8Array(5));
  assert.throws(() => SafetensorsFile.open(f("short")), /not a safetensors file: 5 bytes, need at least 8/);
  writeRaw(f("huge"), 2n ** 60n, "{}");
  assert.throws(() => SafetensorsFile.open(f("huge")), /declared header length 1152921504606846976 bytes exceeds the 104857600-byte limit/);
  writeRaw(f("trunc-header"), 1000n, "{}");
  assert.throws(() => SafetensorsFile.open(f("trunc-header")), /truncated safetensors file: header declares 1000 bytes but the file has only 2/);
  writeRaw(f("json"), 8n, "{not jso");
  assert.throws(() => SafetensorsFile.open(f("json")), /malformed safetensors header: not valid UTF-8 JSON/);
  writeRaw(f("trunc-data"), 64n, JSON.stringify({ x: { dtype: "F32", shape: [4], data_offsets: [0, 16] } }).padEnd(64, " "), new Uint8Array(8));
  assert.throws(() => SafetensorsFile.open(f("trunc-data")), /truncated safetensors file: tensor "x" ends at byte 16 of the data block, which has only 8 bytes/);
  writeRaw(f("size"), 64n, JSON.stringify({ x: { dtype: "F32", shape: [3], data_offsets: [0, 16] } }).padEnd(64, " "), new Uint8Array(16));
  assert.throws(() => SafetensorsFile.open(f("size")), /F32\[3\] needs 12 bytes but data_offsets \[0, 16\] span 16/);
  writeRaw(f("dtype"), 64n, JSON.stringify({ x: { dtype: "Q4", shape: [1], data_offsets: [0, 1] } }).padEnd(64, " "), new Uint8Array(1));
  assert.throws(() => SafetensorsFile.open(f("dtype")), /unsupported dtype "Q4"/);
});

test("a truncated model file is refused by fromPretrained without leaking tensors", async () => {
  const dir = tmpdir();
  fs.copyFileSync(path.join(hfFixture("gpt2"), "config.json"), path.join(dir, "config.json"));
  const full = fs.readFileSync(path.join(hfFixture("gpt2"), "model.safetensors"));
  fs.writeFileSync(path.join(dir, "model.safetensors"), full.subarray(0, full.length - 100));
  const base = tf.memory().numTensors;
  await assert.rejects(HookedAutoModel.fromPretrained(dir), /truncated safetensors file: tensor "transformer\.wte\.weight"/);
  assert.equal(tf.memory().numTensors, base);
});

/** Writes a variant of the gpt2 fixture folder with transformed tensors. */
function variant(transform: (name: string) => string | null, extra: Record<string, { shape: number[]; data: Float32Array }> = {}, shards = 1): string {
  const dir = tmpdir();
  fs.copyFileSync(path.join(hfFixture("gpt2"), "config.json"), path.join(dir, "config.json"));
  const { tensors } = readSafetensors(path.join(hfFixture("gpt2"), "model.safetensors"));
  const out: Record<string, { shape: number[]; data: Float32Array }> = { ...extra };
  for (const [name, t] of tensors) {
    const renamed = transform(name);
    if (renamed) out[renamed] = { shape: t.shape, data: t.data as Float32Array };
  }
  if (shards === 1) {
    writeSafetensors(path.join(dir, "model.safetensors"), out);
    return dir;
  }
  const names = Object.keys(out).sort();
  const weightMap: Record<string, string> = {};
  for (let s = 0; s < shards; s++) {
    const file = `model-0000${s + 1}-of-0000${shards}.safetensors`;
    const part: typeof out = {};
    names.filter((_, i) => i % shards === s).forEach((n) => { part[n] = out[n]; weightMap[n] = file; });
    fs.writeFileSync(path.join(dir, file), encodeSafetensors(part));
  }
  fs.writeFileSync(path.join(dir, "model.safetensors.index.json"), JSON.stringify({ metadata: {}, weight_map: weightMap }));
  return dir;
}

async function logitsOf(dir: string): Promise<Float32Array> {
  const m = await HookedAutoModel.fromPretrained(dir);
  const l = m.forward([[1, 2, 3, 4, 5]]);
  const out = l.dataSync() as Float32Array;
  l.dispose();
  m.dispose();
  return out;
}

test("checkpoint variants load identically: no prefix, sharded, attn.bias buffers, explicit tied lm_head", async () => {
  const reference = await logitsOf(hfFixture("gpt2"));
  const { tensors } = readSafetensors(path.join(hfFixture("gpt2"), "model.safetensors"));
  const wte = tensors.get("transformer.wte.weight")!;
  const dirs = {
    noPrefix: variant((n) => n.replace(/^transformer\./, "")),
    sharded: variant((n) => n, {}, 3),
    buffers: variant((n) => n, { "transformer.h.0.attn.bias": { shape: [1, 1, 4, 4], data: new Float32Array(16) }, "transformer.h.1.attn.masked_bias": { shape: [1], data: new Float32Array(1) } }),
    tiedStored: variant((n) => n, { "lm_head.weight": { shape: wte.shape, data: wte.data as Float32Array } }),
  };
  for (const [label, dir] of Object.entries(dirs)) {
    assert.equal(maxAbsDiff(await logitsOf(dir), reference), 0, label);
  }
  const extra = variant((n) => n, { "transformer.h.0.attn.rogue": { shape: [1], data: new Float32Array(1) } });
  await assert.rejects(HookedAutoModel.fromPretrained(extra), /gpt2 architecture: unexpected weights: transformer\.h\.0\.attn\.rogue/);
  const missing = variant((n) => (n.includes("h.1.mlp.c_fc") ? null : n));
  await assert.rejects(HookedAutoModel.fromPretrained(missing), /missing weights: h\.1\.mlp\.c_fc\.weight, h\.1\.mlp\.c_fc\.bias/);
  const badShape = variant((n) => n, {});
  const t = readSafetensors(path.join(badShape, "model.safetensors")).tensors;
  const out: Record<string, { shape: number[]; data: Float32Array }> = {};
  for (const [n, v] of t) out[n] = { shape: v.shape, data: v.data as Float32Array };
  out["transformer.ln_f.weight"] = { shape: [32], data: new Float32Array(32) };
  writeSafetensors(path.join(badShape, "model.safetensors"), out);
  await assert.rejects(HookedAutoModel.fromPretrained(badShape), /wrong shapes: transformer\.ln_f\.weight: \[32\], expected \[64\]/);
});
