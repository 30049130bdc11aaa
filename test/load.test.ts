/**
 * Loading failures (src/model/load.ts, src/io/hf-dir.ts): every failing `fromPretrained` names what is wrong
 * and leaves `tf.memory().numTensors` where it was; hostile folders (shard names leaving the folder, FIFOs,
 * overlapping offsets, integer weights, absurd config sizes) are refused before any weight is read.
 */
import { test, before } from "node:test";
import * as assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { HookedAutoConfig, HookedAutoModel, initBackend, readSafetensors } from "../src";
import { ArrakisError } from "../src/errors";
import { encodeSafetensors, SafetensorsFile, type TensorToWrite } from "../src/io/safetensors";
import { hfFixture, scratchDir } from "./helpers";

let scratch: string;
let count = 0;

before(async () => {
  await initBackend();
  scratch = scratchDir("arrakis-load-");
});

/** A copy of a fixture folder (config.json + model.safetensors). */
function copy(arch: "gpt2" | "llama" = "gpt2"): string {
  const dir = path.join(scratch, `m${count++}`);
  fs.mkdirSync(dir);
  for (const f of ["config.json", "model.safetensors"]) fs.copyFileSync(path.join(hfFixture(arch), f), path.join(dir, f));
  return dir;
}

function editConfig(dir: string, edit: (c: Record<string, unknown>) => unknown): string {
  const file = path.join(dir, "config.json");
  fs.writeFileSync(file, JSON.stringify(edit(JSON.parse(fs.readFileSync(file, "utf8")))));
  return dir;
}

function editWeights(dir: string, edit: (t: Record<string, TensorToWrite>) => void): string {
  const file = path.join(dir, "model.safetensors");
  const out: Record<string, TensorToWrite> = {};
  for (const [name, t] of readSafetensors(file).tensors) out[name] = { shape: t.shape, data: t.data };
  edit(out);
  fs.writeFileSync(file, encodeSafetensors(out));
  return dir;
}

/** Rewrites the JSON header of model.safetensors in place (same length, padded with spaces). */
function editHeader(dir: string, edit: (h: Record<string, { dtype: string; shape: number[]; data_offsets: number[] }>) => void): string {
  const file = path.join(dir, "model.safetensors");
  const bytes = fs.readFileSync(file);
  const n = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString());
  edit(header);
  const text = JSON.stringify(header);
  assert.ok(text.length <= n, "edited header fits in place");
  fs.writeFileSync(file, Buffer.concat([bytes.subarray(0, 8), Buffer.from(text.padEnd(n, " ")), bytes.subarray(8 + n)]));
  return dir;
}

/** fromPretrained must reject with an ArrakisError matching `pattern` and free every tensor it made. */
async function refused(dir: string, pattern: RegExp): Promise<void> {
  const base = tf.memory().numTensors;
  await assert.rejects(HookedAutoModel.fromPretrained(dir), (e: unknown) => {
    assert.ok(e instanceof ArrakisError, `expected an ArrakisError, got ${(e as Error)?.stack ?? e}`);
    assert.match(e.message, pattern);
    return true;
  });
  assert.equal(tf.memory().numTensors, base, `tensors leaked by the failed load of ${dir}`);
}

test("the fixture loads, and a failing load after it frees everything: garbage tokenizer, config, weights, truncation", async () => {
  const good = await HookedAutoModel.fromPretrained(hfFixture("gpt2"));
  good.dispose();

  const garbageTok = copy();
  fs.writeFileSync(path.join(garbageTok, "tokenizer.json"), "{garbage");
  await refused(garbageTok, /tokenizer\.json.*Expected property name/);

  const wrongTok = copy();
  fs.writeFileSync(path.join(wrongTok, "tokenizer.json"), JSON.stringify({ model: { type: "NoSuchModel" } }));
  await refused(wrongTok, /cannot load tokenizer .*tokenizer\.json/);

  await refused(editConfig(copy(), (c) => ({ ...c, n_embd: 65 })), /config\.json.*n_embd=65 is not divisible by n_head=4/);
  await refused(editWeights(copy(), (t) => delete t["transformer.h.1.mlp.c_fc.weight"]), /missing weights: h\.1\.mlp\.c_fc\.weight/);
  await refused(editWeights(copy(), (t) => (t["transformer.ln_f.weight"] = { shape: [32], data: new Float32Array(32) })), /wrong shapes: transformer\.ln_f\.weight: \[32\], expected \[64\]/);
  await refused(editWeights(copy(), (t) => (t["transformer.h.0.attn.rogue"] = { shape: [1], data: new Float32Array(1) })), /unexpected weights: transformer\.h\.0\.attn\.rogue/);

  const truncated = copy();
  const full = fs.readFileSync(path.join(truncated, "model.safetensors"));
  fs.writeFileSync(path.join(truncated, "model.safetensors"), full.subarray(0, full.length - 100));
  await refused(truncated, /truncated safetensors file: tensor "transformer\.wte\.weight"/);

  const llamaMissing = editWeights(copy("llama"), (t) => delete t["model.layers.0.mlp.up_proj.weight"]);
  await refused(llamaMissing, /llama architecture: missing weights: layers\.0\.mlp\.up_proj\.weight/);
});

test("config.json of null, [] or without model_type: an error naming config.json", async () => {
  for (const [text, pattern] of [
    ["null", /config\.json" must hold a JSON object of config fields .* got null/],
    ["[]", /config\.json" must hold a JSON object of config fields .* got \[\]/],
    ['"gpt2"', /config\.json" must hold a JSON object .* got "gpt2"/],
    ["{not json", /cannot parse ".*config\.json"/],
  ] as const) {
    const dir = copy();
    fs.writeFileSync(path.join(dir, "config.json"), text);
    await refused(dir, pattern);
  }
  await refused(editConfig(copy(), (c) => ({ ...c, model_type: undefined })), /config\.json" has no "model_type" field/);
  await refused(editConfig(copy(), (c) => ({ ...c, model_type: "bert" })), /config\.json": unknown architecture "bert"/);
});

test("negative layer_norm_epsilon / rms_norm_eps and rope_theta ≤ 0 are refused, from config.json and in code", async () => {
  await refused(editConfig(copy(), (c) => ({ ...c, layer_norm_epsilon: -1e-5 })), /config\.json": config field layer_norm_epsilon must be a number ≥ 0 .* got -0\.00001/);
  await refused(editConfig(copy("llama"), (c) => ({ ...c, rms_norm_eps: -1e-6 })), /config field rms_norm_eps must be a number ≥ 0/);
  await refused(editConfig(copy("llama"), (c) => ({ ...c, rope_theta: -10000 })), /config field rope_theta must be a number > 0 .* got -10000/);
  await refused(editConfig(copy("llama"), (c) => ({ ...c, rope_theta: 0 })), /config field rope_theta must be a number > 0/);
  assert.throws(() => new HookedAutoConfig({ name: "gpt2", layer_norm_epsilon: -1 }), /layer_norm_epsilon must be a number ≥ 0/);
  assert.throws(() => new HookedAutoConfig({ name: "gpt-neox", rotary_emb_base: -5 }), /rotary_emb_base must be a number > 0/);
  assert.equal(new HookedAutoConfig({ name: "gpt2", layer_norm_epsilon: 0 }).dims.normEps, 0, "zero is allowed (as in PyTorch)");
});

test("a shard name leaving the model folder is refused (../, absolute, backslash), and nothing outside is read", async () => {
  const outside = path.join(scratch, `outside-${count++}`);
  fs.mkdirSync(outside);
  for (const shard of ["../x.safetensors", path.join(outside, "x.safetensors"), "..\\x.safetensors", "sub/../../x.safetensors"]) {
    const dir = copy();
    const names = [...readSafetensors(path.join(dir, "model.safetensors")).tensors.keys()];
    fs.renameSync(path.join(dir, "model.safetensors"), path.join(outside, "x.safetensors"));
    fs.writeFileSync(path.join(dir, "model.safetensors.index.json"), JSON.stringify({ weight_map: Object.fromEntries(names.map((n) => [n, shard])) }));
    await refused(dir, /shard file .* is not a plain name inside the model folder/);
  }
});

test("a FIFO named model.safetensors, config.json or tokenizer.json is refused at once, never opened", async (t) => {
  const mkfifo = (file: string) => execFileSync("mkfifo", [file]);
  try {
    mkfifo(path.join(scratch, "probe-fifo"));
  } catch {
    t.skip("mkfifo is not available on this system");
    return;
  }
  const weights = copy();
  fs.rmSync(path.join(weights, "model.safetensors"));
  mkfifo(path.join(weights, "model.safetensors"));
  await refused(weights, /model\.safetensors" is not a regular file \(it is a named pipe \(FIFO\)/);
  const config = copy();
  fs.rmSync(path.join(config, "config.json"));
  mkfifo(path.join(config, "config.json"));
  await refused(config, /config\.json .*is not a regular file/);
  const tokenizer = copy();
  mkfifo(path.join(tokenizer, "tokenizer.json"));
  await refused(tokenizer, /tokenizer\.json .*is not a regular file/);
  const folder = copy();
  fs.rmSync(path.join(folder, "model.safetensors"));
  fs.mkdirSync(path.join(folder, "model.safetensors"));
  await refused(folder, /is not a regular file \(it is a folder\)/);
});

test("overlapping safetensors offsets are refused; a symlinked file (as in the Hub cache) is fine", async () => {
  const dir = editHeader(copy(), (h) => {
    h["transformer.h.0.ln_2.bias"].data_offsets = [...h["transformer.h.0.ln_1.bias"].data_offsets];
  });
  await refused(dir, /malformed safetensors header: tensors "transformer\.h\.0\.ln_(1|2)\.bias" \[\d+, \d+\] and "transformer\.h\.0\.ln_(1|2)\.bias" \[\d+, \d+\] overlap/);
  const partial = editHeader(copy(), (h) => {
    const [a, b] = h["transformer.h.0.ln_1.bias"].data_offsets;
    const other = h["transformer.h.0.ln_1.weight"];
    // shift ln_1.weight so that it starts in the middle of ln_1.bias (same length, still inside the file)
    const len = other.data_offsets[1] - other.data_offsets[0];
    const start = a + (b - a) / 2;
    other.data_offsets = [start, start + len];
  });
  assert.throws(() => SafetensorsFile.open(path.join(partial, "model.safetensors")), /overlap/);

  const linked = path.join(scratch, `linked-${count++}`);
  fs.mkdirSync(linked);
  fs.symlinkSync(path.join(hfFixture("gpt2"), "config.json"), path.join(linked, "config.json"));
  fs.symlinkSync(path.join(hfFixture("gpt2"), "model.safetensors"), path.join(linked, "model.safetensors"));
  (await HookedAutoModel.fromPretrained(linked)).dispose();
});

test("integer dtypes for float weights are refused; integer buffers the model skips are fine", async () => {
  await refused(
    editWeights(copy(), (t) => (t["transformer.ln_f.weight"] = { shape: [64], data: new Int32Array(64).fill(1) })),
    /model\.safetensors": weights must be floating point \(F32, F16, BF16 or F64\), but 1 tensor is stored as integers: transformer\.ln_f\.weight \(I32\)/,
  );
  const withMask = editWeights(copy(), (t) => (t["transformer.h.0.attn.bias"] = { shape: [1, 1, 4, 4], data: new Int32Array(16).fill(1) }));
  const m = await HookedAutoModel.fromPretrained(withMask);
  m.dispose();
});

test("NaN and Inf weights load with a warning naming the tensors and counts (not refused)", async () => {
  const dir = editWeights(copy(), (t) => {
    const w = t["transformer.ln_f.weight"].data as Float32Array;
    w[3] = NaN;
    w[4] = NaN;
    (t["transformer.h.1.mlp.c_proj.bias"].data as Float32Array)[0] = -Infinity;
  });
  const warnings: string[] = [];
  const original = console.warn;
  console.warn = (...a: unknown[]) => void warnings.push(a.join(" "));
  let model: HookedAutoModel;
  try {
    model = await HookedAutoModel.fromPretrained(dir);
  } finally {
    console.warn = original;
  }
  assert.equal(warnings.length, 1);
  assert.match(warnings[0], /2 weight tensors of .* hold non-finite values: .*transformer\.h\.1\.mlp\.c_proj\.bias \(1 ±Inf\)/);
  assert.match(warnings[0], /transformer\.ln_f\.weight \(2 NaN\)/);
  const logits = model.forward([[1, 2, 3]]);
  assert.ok(Number.isNaN(logits.dataSync()[0]), "the warning is about real NaN outputs");
  logits.dispose();
  model.dispose();
  const clean: string[] = [];
  console.warn = (...a: unknown[]) => void clean.push(a.join(" "));
  try {
    (await HookedAutoModel.fromPretrained(hfFixture("gpt2"))).dispose();
  } finally {
    console.warn = original;
  }
  assert.deepEqual(clean, [], "a clean checkpoint loads silently");
});

test("a config claiming absurd sizes is refused from the headers before anything is allocated", async () => {
  const rssBefore = process.memoryUsage().rss;
  await refused(editConfig(copy(), (c) => ({ ...c, n_positions: 1.5e7 })), /config\.json" does not match its checkpoint: it gives n_positions = 15000000 \(the context length\), so the position embedding should be \[15000000, 64\], but transformer\.wpe\.weight is \[128, 64\]/);
  await refused(editConfig(copy(), (c) => ({ ...c, n_positions: 1e9 })), /n_positions = 1000000000/);
  await refused(editConfig(copy(), (c) => ({ ...c, vocab_size: 5e8 })), /vocab_size = 500000000 and n_embd = 64, so the token embedding should be \[500000000, 64\], but transformer\.wte\.weight is \[512, 64\]/);
  await refused(editConfig(copy(), (c) => ({ ...c, n_layer: 100000 })), /it gives n_layer = 100000 layers but the checkpoint holds 2 \(layer indices 0\.\.1\)/);
  await refused(editConfig(copy("llama"), (c) => ({ ...c, num_hidden_layers: 1 })), /num_hidden_layers = 1 layers but the checkpoint holds 2/);
  await refused(editConfig(copy("llama"), (c) => ({ ...c, vocab_size: 1e9 })), /token embedding should be \[1000000000, \d+\], but model\.embed_tokens\.weight is \[\d+, \d+\]/);
  // d 64, vocab 512, 128 positions, 2 layers: per layer attention 4·64² + 4·64 = 16,640, norms 256, MLP
  // 2·64·n_inner + n_inner + 64; embeddings 512·64 + 128·64 = 40,960, final norm 128. n_inner 2,560 claims
  // 2·(16,640 + 256 + 330,304) + 40,960 + 128 = 735,488; the checkpoint (n_inner 256) stores 141,056.
  await refused(editConfig(copy(), (c) => ({ ...c, n_inner: 64 * 40 })), /config\.json" does not match its checkpoint: it describes 735\.5 k parameters but the checkpoint stores 141\.1 k values/);
  // The refusals read headers only: a 3.8 GB stand-in for the position table is never made.
  assert.ok(process.memoryUsage().rss - rssBefore < 500e6, `rss grew by ${(process.memoryUsage().rss - rssBefore) / 1e6} MB`);
});

test("a file that shrinks after its header was read gives a truncation error, not zeros", () => {
  const dir = copy();
  const file = path.join(dir, "model.safetensors");
  const st = SafetensorsFile.open(file);
  try {
    fs.truncateSync(file, 1000);
    assert.throws(() => st.read("transformer.wte.weight"), /truncated safetensors file: tensor "transformer\.wte\.weight" needs 131072 bytes but only \d+ could be read/);
  } finally {
    st.close();
  }
});

test("a checkpoint whose headers match a config too large for memory is refused by the size check before reading", async () => {
  // A sparse file (no disk space used) whose header declares a 2e9 x 64 embedding, as a huge real checkpoint would.
  const dir = path.join(scratch, `huge-${count++}`);
  fs.mkdirSync(dir);
  const vocab = 2_000_000_000;
  const cfg = JSON.parse(fs.readFileSync(path.join(hfFixture("gpt2"), "config.json"), "utf8"));
  fs.writeFileSync(path.join(dir, "config.json"), JSON.stringify({ ...cfg, vocab_size: vocab }));
  const { tensors } = readSafetensors(path.join(hfFixture("gpt2"), "model.safetensors"));
  const header: Record<string, unknown> = {};
  let offset = 0;
  for (const [name, t] of tensors) {
    const shape = name === "transformer.wte.weight" ? [vocab, 64] : t.shape;
    const bytes = shape.reduce((a, b) => a * b, 1) * 4;
    header[name] = { dtype: "F32", shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  const text = Buffer.from(JSON.stringify(header));
  const file = path.join(dir, "model.safetensors");
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(text.length));
  fs.writeFileSync(file, Buffer.concat([len, text]));
  fs.truncateSync(file, 8 + text.length + offset);
  const rssBefore = process.memoryUsage().rss;
  await refused(dir, /the checkpoint in ".*huge-\d+": 128\.0+ B parameters need [\d.]+ GiB in float32.*, more than .*HookedAutoConfig\.small\("gpt2"\)/);
  assert.ok(process.memoryUsage().rss - rssBefore < 500e6);
});
