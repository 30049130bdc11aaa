/** HookedAutoConfig / HookedAutoModel behaviour: random init, shapes, hooks, caches, ownership, errors. */
import { test, before } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { ArrakisError, HookedAutoConfig, HookedAutoModel, implementedFamilies, initBackend } from "../src";
import { hfFixture } from "./helpers";

before(async () => {
  await initBackend();
});

const tinyGpt2 = () => new HookedAutoConfig({ name: "gpt2", n_layer: 2, n_head: 4, n_embd: 32, vocab_size: 100, n_positions: 16 });

/** Small random configs for every implemented family, via the family's own HF field names. */
function tinyConfig(family: string): HookedAutoConfig {
  if (family === "gpt2") return tinyGpt2();
  if (family === "gpt-neo") return new HookedAutoConfig({ name: family, num_layers: 2, num_heads: 4, hidden_size: 32, vocab_size: 100, max_position_embeddings: 16, attention_types: [[["global", "local"], 1]], window_size: 4 });
  if (family === "gpt-neox") return new HookedAutoConfig({ name: family, num_hidden_layers: 2, num_attention_heads: 4, hidden_size: 32, intermediate_size: 64, vocab_size: 100, max_position_embeddings: 16 });
  return new HookedAutoConfig({ name: family, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, hidden_size: 32, intermediate_size: 64, vocab_size: 100, max_position_embeddings: 16, ...(family === "gemma" ? { head_dim: 8 } : {}) });
}

test("HookedAutoConfig accepts Arrakis names and HF model_type spellings", () => {
  assert.equal(new HookedAutoConfig({ name: "gpt2" }).name, "gpt2");
  assert.equal(new HookedAutoConfig({ name: "GPT2LMHeadModel" }).name, "gpt2");
  assert.equal(new HookedAutoConfig({ model_type: "llama" }).name, "llama");
  const c = new HookedAutoConfig({ name: "gpt2", hidden_size: 128, num_attention_heads: 8 });
  assert.equal(c.dims.dModel, 128, "GPT2Config.attribute_map hidden_size → n_embd");
  assert.equal(c.dims.dHead, 16);
  const hf = JSON.parse(fs.readFileSync(path.join(hfFixture("llama"), "config.json"), "utf8"));
  const l = new HookedAutoConfig({ ...hf, name: "llama" });
  assert.deepEqual([l.dims.nHeads, l.dims.nKvHeads, l.dims.dHead, l.dims.dMlp], [4, 2, 16, 128]);
});

test("config errors name the bad value", () => {
  assert.throws(() => new HookedAutoConfig({ name: "gpt5" }), /unknown architecture "gpt5"; expected one of gpt2, gpt-neo/);
  assert.throws(() => new HookedAutoConfig({ name: "gpt2", n_embd: 64, n_head: 5 }), /n_embd=64 is not divisible by n_head=5/);
  assert.throws(() => new HookedAutoConfig({ name: "llama", num_attention_heads: 4, num_key_value_heads: 3, hidden_size: 64 }), /num_attention_heads=4 is not a multiple of num_key_value_heads=3/);
  assert.throws(() => new HookedAutoConfig({ name: "gpt2", n_embed: 64 }), /unknown config field for gpt2: n_embed/);
  assert.throws(() => new HookedAutoConfig({ name: "gpt2", n_layer: 0 }), /n_layer must be a positive integer, got 0/);
  assert.throws(() => new HookedAutoConfig({ name: "gpt2", n_embd: 64, hidden_size: 32 }), /hidden_size=32 and n_embd=64 disagree/);
});

for (const family of implementedFamilies()) {
  test(`${family}: random init runs forward with the right shapes; same seed, same weights`, () => {
    const base = tf.memory().numTensors;
    const a = new HookedAutoModel(tinyConfig(family), { seed: 7 });
    const b = new HookedAutoModel(tinyConfig(family), { seed: 7 });
    const c = new HookedAutoModel(tinyConfig(family), { seed: 8 });
    const ids = [[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]];
    const [la, lb, lc] = [a, b, c].map((m) => m.forward(ids));
    assert.deepEqual(la.shape, [1, 10, 100]);
    assert.deepEqual(Array.from(la.dataSync()), Array.from(lb.dataSync()), "same seed, same logits");
    assert.notDeepEqual(Array.from(la.dataSync()), Array.from(lc.dataSync()), "different seed, different logits");
    assert.ok(la.dataSync().every(Number.isFinite));
    tf.dispose([la, lb, lc]);
    [a, b, c].forEach((m) => m.dispose());
    assert.equal(tf.memory().numTensors, base, "weights and activations freed");
  });
}

test("forward accepts every input form and agrees across them", () => {
  const m = new HookedAutoModel(tinyGpt2(), { seed: 1 });
  const ids = [5, 6, 7, 8];
  const forms = [ids, [ids, ids], tf.tensor1d(ids, "int32"), tf.tensor2d([ids], [1, 4], "int32")];
  const outs = forms.map((f) => m.forward(f as number[]));
  assert.deepEqual(outs[1].shape, [2, 4, 100]);
  const first = Array.from(outs[0].dataSync());
  assert.deepEqual(Array.from(outs[2].dataSync()), first);
  assert.deepEqual(Array.from(outs[3].dataSync()), first);
  assert.deepEqual(Array.from(outs[1].dataSync()).slice(0, first.length), first);
  tf.dispose([...outs, forms[2] as tf.Tensor, forms[3] as tf.Tensor]);
  m.dispose();
});

test("hookNames lists every point with a shape; runWithCache with names keeps only those", () => {
  const m = new HookedAutoModel(tinyGpt2(), { seed: 1 });
  assert.ok(m.hookNames.includes("blocks.1.attn.hook_pattern"));
  assert.ok(m.hookNames.includes("hook_pos_embed"));
  assert.equal(m.hookPoints.find((p) => p.name === "blocks.0.attn.hook_z")!.shape, "[batch, pos, head, d_head]");
  const all = m.runWithCache([1, 2, 3]);
  assert.deepEqual(new Set(all.cache.names), new Set(m.hookNames), "default caches every hook point");
  assert.deepEqual(all.cache.get("blocks.0.attn.hook_pattern").shape, [1, 4, 3, 3]);
  assert.deepEqual(all.cache.get("blocks.0.attn.hook_q").shape, [1, 3, 4, 8]);
  const some = m.runWithCache([1, 2, 3], { names: ["blocks.0.attn.hook_z", "ln_final.hook_normalized"] });
  assert.deepEqual(some.cache.names.sort(), ["blocks.0.attn.hook_z", "ln_final.hook_normalized"]);
  const filtered = m.runWithCache([1, 2, 3], { names: (n) => n.endsWith("hook_pattern") });
  assert.deepEqual(filtered.cache.names, ["blocks.0.attn.hook_pattern", "blocks.1.attn.hook_pattern"]);
  for (const r of [all, some, filtered]) {
    r.cache.dispose();
    r.logits.dispose();
  }
  m.dispose();
});

test("a hook's replacement changes the forward pass; hooks are removed after runWithHooks, also on throw", () => {
  const m = new HookedAutoModel(tinyGpt2(), { seed: 2 });
  const clean = m.forward([1, 2, 3]);
  const zeroed = m.runWithHooks([1, 2, 3], [["blocks.0.hook_attn_out", (x) => tf.zerosLike(x)]]);
  assert.notDeepEqual(Array.from(zeroed.dataSync()), Array.from(clean.dataSync()));
  assert.equal(m.hookCount, 0);
  let seen = 0;
  assert.throws(
    () => m.runWithHooks([1, 2, 3], [[(n) => n.endsWith("hook_q"), () => { seen++; }], ["blocks.1.hook_resid_pre", () => { throw new Error("boom"); }]]),
    /hook on blocks\.1\.hook_resid_pre threw: boom/,
  );
  assert.equal(seen, 1, "filter hook ran at layer 0 before the throw at layer 1");
  assert.equal(m.hookCount, 0, "hooks removed after a throwing hook");
  const again = m.forward([1, 2, 3]);
  assert.deepEqual(Array.from(again.dataSync()), Array.from(clean.dataSync()), "model is clean again");
  tf.dispose([clean, zeroed, again]);
  m.dispose();
});

test("tensor ownership: numTensors returns to baseline after forward, hooks, caches and failed calls", () => {
  const m = new HookedAutoModel(tinyGpt2(), { seed: 3 });
  const base = tf.memory().numTensors;
  m.forward([1, 2, 3]).dispose();
  assert.equal(tf.memory().numTensors, base, "forward");
  m.runWithHooks([1, 2, 3], [["blocks.0.attn.hook_z", (z) => tf.mul(z, 0.5)]]).dispose();
  assert.equal(tf.memory().numTensors, base, "runWithHooks");
  const { logits, cache } = m.runWithCache([1, 2, 3]);
  logits.dispose();
  cache.dispose();
  assert.equal(tf.memory().numTensors, base, "runWithCache + dispose");
  assert.throws(() => m.runWithCache([1, 2, 3], { names: ["nope"] }));
  assert.throws(() => m.runWithHooks([1, 2, 3], [["blocks.1.hook_resid_mid", () => { throw new Error("x"); }]]));
  assert.throws(() => m.forward([1, 2, 999]));
  assert.throws(() => m.runWithHooks([1, 2, 3], [["blocks.0.attn.hook_z", () => tf.zeros([1])]]));
  assert.equal(tf.memory().numTensors, base, "failed calls leak nothing");
  assert.ok(m.loss([1, 2, 3, 4]) > 0);
  assert.equal(tf.memory().numTensors, base, "loss");
  m.dispose();
});

test("input and hook errors name the bad value and the valid range", () => {
  const m = new HookedAutoModel(tinyGpt2(), { seed: 4 });
  const err = (fn: () => unknown, re: RegExp) => assert.throws(fn, (e: unknown) => e instanceof ArrakisError && re.test((e as Error).message));
  err(() => m.forward([1, 100]), /token id 100 at \[0, 1\] is out of range: the vocabulary has 100 tokens \(valid ids 0\.\.99\)/);
  err(() => m.forward([1, -1]), /token id -1 at \[0, 1\] is out of range/);
  err(() => m.forward([]), /input is empty/);
  err(() => m.forward([[1, 2], []]), /input sequence 1 is empty/);
  err(() => m.forward([[1, 2], [1, 2, 3]]), /equal length \(no padding support\): got lengths \[2, 3\]/);
  err(() => m.forward(Array.from({ length: 17 }, () => 1)), /sequence of 17 tokens is longer than the model's context of 16 positions/);
  err(() => m.forward("hello"), /string input "hello" needs a tokenizer/);
  err(() => m.runWithHooks([1], [["blocks.0.attn.hook_zz", () => undefined]]), /unknown hook name "blocks\.0\.attn\.hook_zz".*did you mean/);
  err(() => m.runWithHooks([1], [["blocks.0.attn.hook_z", () => tf.zeros([2, 2])]]), /hook on blocks\.0\.attn\.hook_z returned shape \[2, 2\]; expected \[1, 1, 4, 8\]/);
  err(() => m.runWithCache([1], { names: (n) => n === "nothing" }), /matches no hook point/);
  err(() => m.forward([1.5]), /token id 1.5 at \[0, 0\] is not an integer/);
  m.dispose();
  err(() => m.forward([1]), /this model was disposed/);
});

test("fromPretrained errors: missing folder, no config, missing and unexpected weights listed with the family", async () => {
  await assert.rejects(HookedAutoModel.fromPretrained("/nonexistent/model"), /model folder "\/nonexistent\/model" does not exist/);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "arrakis-model-"));
  try {
    await assert.rejects(HookedAutoModel.fromPretrained(tmp), /is not a Hugging Face model folder: it has no config\.json/);
    fs.copyFileSync(path.join(hfFixture("gpt2"), "config.json"), path.join(tmp, "config.json"));
    await assert.rejects(HookedAutoModel.fromPretrained(tmp), /no weights in .*expected model\.safetensors or model\.safetensors\.index\.json/);
    // gpt2 weights under a llama config: every llama name missing, every gpt2 name unexpected.
    const cfg = JSON.parse(fs.readFileSync(path.join(hfFixture("llama"), "config.json"), "utf8"));
    fs.writeFileSync(path.join(tmp, "config.json"), JSON.stringify(cfg));
    fs.copyFileSync(path.join(hfFixture("gpt2"), "model.safetensors"), path.join(tmp, "model.safetensors"));
    const base = tf.memory().numTensors;
    await assert.rejects(HookedAutoModel.fromPretrained(tmp), (e: Error) =>
      /does not match the llama architecture/.test(e.message) &&
      /missing weights: (.*, )?embed_tokens\.weight/.test(e.message) &&
      /missing weights: .*layers\.0\.input_layernorm\.weight/.test(e.message) &&
      /unexpected weights: .*transformer\.h\.0\.attn\.c_attn\.weight/.test(e.message));
    assert.equal(tf.memory().numTensors, base, "a failed load frees what it built");
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});
