/**
 * The embedded-model training script (issue 6): a short seeded run lowers the loss, writes a Hugging Face
 * GPT-2 directory with the right names and shapes, and its tokenizer round-trips with @huggingface/tokenizers.
 * The shipped checkpoint's circuit is asserted elsewhere with the project's own tools.
 */
import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { Tokenizer } from "@huggingface/tokenizers";
import { readSafetensors } from "../src/io/safetensors";
import { trainEmbedded, TrainResult } from "../src/train/train-embedded";
import { parameterShapes } from "../src/train/tiny-gpt2";
import { repeatedSequences, trainingSequence, Rng, VOCAB, BOS_ID, UNK_ID, FIRST_WORD_ID } from "../src/train/synthetic";
import { forwardJs, loadGpt2Dir } from "../src/train/circuit";
import { ArrakisError } from "../src/errors";
import { scratchDir } from "./helpers";

const shippedDir = path.join(__dirname, "..", "src", "assets", "induction-2l");
const outDir = scratchDir("arrakis-train-");
let run: TrainResult | undefined;

async function shortRun(): Promise<TrainResult> {
  // 16-token sequences over the first 8 words only: cheap, and the loss has far to fall (ln 318 → ln 8 and below).
  run ??= await trainEmbedded({
    steps: 40, seed: 7, out: outDir, batch: 8, warmup: 5, logEvery: 0, evalEvery: 0, check: false,
    curriculum: [[40, 16]], vocabCurriculum: [[40, 8]],
  }, () => {});
  return run;
}

test("synthetic data is seeded, starts with <bos> and repeats a segment", () => {
  const o = { length: 65, minSegment: 3, maxSegment: 30 };
  const a = trainingSequence(new Rng(3), o), b = trainingSequence(new Rng(3), o);
  assert.deepEqual(a, b);
  assert.equal(a.length, 65);
  assert.equal(a[0], BOS_ID);
  assert.ok(a.slice(1).every((id) => id >= FIRST_WORD_ID && id < VOCAB.length));
  const held = repeatedSequences(3, 10, 5);
  assert.deepEqual(held, repeatedSequences(3, 10, 5));
  for (const s of held) {
    assert.equal(s.length, 21);
    assert.equal(s[0], BOS_ID);
    assert.deepEqual(s.slice(1, 11), s.slice(11));
    assert.equal(new Set(s.slice(1, 11)).size, 10);
  }
  assert.throws(() => repeatedSequences(1, 0, 1), ArrakisError);
});

test("a short seeded run lowers the loss", async () => {
  const r = await shortRun();
  assert.equal(r.losses.length, 40);
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const first = mean(r.losses.slice(0, 5)), last = mean(r.losses.slice(-5));
  assert.ok(last < first - 0.5, `loss should decrease: first 5 steps ${first.toFixed(4)}, last 5 ${last.toFixed(4)}`);
});

test("the written directory is a Hugging Face GPT-2 checkpoint", async () => {
  const r = await shortRun();
  for (const f of ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"]) {
    assert.ok(fs.existsSync(path.join(outDir, f)), `${f} written`);
  }
  const cfg = JSON.parse(fs.readFileSync(path.join(outDir, "config.json"), "utf8"));
  assert.equal(cfg.model_type, "gpt2");
  assert.deepEqual(cfg.architectures, ["GPT2LMHeadModel"]);
  assert.equal(cfg.activation_function, "gelu_new");
  assert.equal(cfg.n_embd, r.shape.dModel);
  assert.equal(cfg.n_head, r.shape.nHead);
  assert.equal(cfg.n_layer, 2);
  assert.equal(cfg.n_positions, r.shape.nCtx);
  assert.equal(cfg.n_inner, r.shape.dMlp);
  assert.equal(cfg.vocab_size, VOCAB.length);
  assert.equal(cfg.layer_norm_epsilon, 1e-5);
  assert.equal(cfg.bos_token_id, BOS_ID);

  const { tensors, metadata } = readSafetensors(path.join(outDir, "model.safetensors"));
  assert.deepEqual(metadata, { format: "pt" });
  const expected = parameterShapes(r.shape);
  assert.deepEqual([...tensors.keys()].sort(), Object.keys(expected).sort());
  assert.ok(!tensors.has("lm_head.weight"), "tied lm_head is not stored");
  const D = r.shape.dModel;
  assert.deepEqual(tensors.get("transformer.wte.weight")!.shape, [VOCAB.length, D]);
  assert.deepEqual(tensors.get("transformer.h.0.attn.c_attn.weight")!.shape, [D, 3 * D]); // Conv1D [in, out]
  assert.deepEqual(tensors.get("transformer.h.1.mlp.c_proj.weight")!.shape, [r.shape.dMlp, D]);
  for (const [name, t] of tensors) {
    assert.equal(t.dtype, "F32", name);
    assert.deepEqual(t.shape, expected[name], name);
    assert.ok(t.data.every(Number.isFinite), `${name} is finite`);
  }
  // The file's weights give a proper distribution with the independent float64 forward.
  const { logProbs } = forwardJs(loadGpt2Dir(outDir), repeatedSequences(1, 5, 1)[0]);
  const total = logProbs[3].reduce((a, lp) => a + Math.exp(lp), 0);
  assert.ok(Math.abs(total - 1) < 1e-9);
});

test("the tokenizer round-trips with @huggingface/tokenizers and prepends <bos>", async () => {
  await shortRun();
  for (const dir of [outDir, shippedDir]) {
    if (!fs.existsSync(path.join(dir, "tokenizer.json"))) continue; // the shipped model may not be trained yet
    const tok = new Tokenizer(
      JSON.parse(fs.readFileSync(path.join(dir, "tokenizer.json"), "utf8")),
      JSON.parse(fs.readFileSync(path.join(dir, "tokenizer_config.json"), "utf8")),
    );
    const text = "the cat sat on the mat";
    const enc = tok.encode(text);
    assert.deepEqual(enc.ids, [BOS_ID, ...text.split(" ").map((w) => VOCAB.indexOf(w))]);
    assert.ok(enc.ids.every((id) => id > UNK_ID || id === BOS_ID));
    assert.equal(tok.decode(enc.ids, { skip_special_tokens: true }), text);
    assert.equal(tok.decode(enc.ids), `<bos> ${text}`);
    assert.deepEqual(tok.encode("The  CAT\tzebra").ids, [BOS_ID, VOCAB.indexOf("the"), VOCAB.indexOf("cat"), UNK_ID]);
    // Every vocabulary word maps to its own id.
    const words = VOCAB.slice(FIRST_WORD_ID);
    assert.deepEqual(tok.encode(words.join(" ")).ids, [BOS_ID, ...words.map((_, i) => i + FIRST_WORD_ID)]);
  }
});

test("the shipped directory is complete and small", () => {
  if (!fs.existsSync(path.join(shippedDir, "model.safetensors"))) return;
  const files = fs.readdirSync(shippedDir);
  for (const f of ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "README.md"]) assert.ok(files.includes(f), f);
  const bytes = files.reduce((n, f) => n + fs.statSync(path.join(shippedDir, f)).size, 0);
  assert.ok(bytes <= 2 * 1024 * 1024, `${bytes} bytes`);
});
