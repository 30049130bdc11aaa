/**
 * The embedded-model training script: its data has the promised variety, a short seeded run lowers the loss
 * and writes a Hugging Face GPT-2 directory with the right names and shapes that the model loads to the same
 * logits as the training forward, its tokenizer round-trips with @huggingface/tokenizers, and the grid's cells
 * are laid out as described. The shipped checkpoint's circuit is asserted in detectors.test.ts.
 */
import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { Tokenizer } from "@huggingface/tokenizers";
import * as tf from "@tensorflow/tfjs";
import { readSafetensors } from "../src/io/safetensors";
import { HookedAutoModel } from "../src/model/hooked-model";
import { trainEmbedded, TrainResult } from "../scripts/train/train-embedded";
import { causalMask, forward, parameterShapes } from "../scripts/train/tiny-gpt2";
import { gridCells, gridLengths } from "../scripts/train/grid";
import { repeatedSequences, trainingSequence, Rng, VOCAB, BOS_ID, UNK_ID, FIRST_WORD_ID } from "../scripts/train/synthetic";
import { ArrakisError } from "../src/errors";
import { maxAbsDiff, scratchDir } from "./helpers";

const shippedDir = path.join(__dirname, "..", "src", "assets", "induction-2l");
const outDir = scratchDir("arrakis-train-");
let run: TrainResult | undefined;

async function shortRun(): Promise<TrainResult> {
  // 16-token sequences over the first 8 words only: cheap, and the loss has far to fall (ln 318 → ln 8 and below).
  run ??= await trainEmbedded({
    steps: 40, seed: 7, out: outDir, batch: 8, warmup: 5, logEvery: 0, evalEvery: 0, check: false, init: null,
    curriculum: [[40, 16]], vocabCurriculum: [[40, 8]],
  }, () => {});
  return run;
}

/** The longest segment that occurs at least twice in a row (copies back to back), with its first offset and copy count. */
function longestRepeat(s: number[]): { n: number; offset: number; copies: number } | null {
  for (let n = Math.floor((s.length - 1) / 2); n >= 2; n--) {
    for (let i = 1; i + 2 * n <= s.length; i++) {
      const seg = s.slice(i, i + n);
      if (new Set(seg).size !== n || seg.join() !== s.slice(i + n, i + 2 * n).join()) continue;
      let copies = 2;
      while (s.slice(i + copies * n, i + (copies + 1) * n).join() === seg.join()) copies++;
      return { n, offset: i - 1, copies };
    }
  }
  return null;
}

test("synthetic data is seeded, starts with <bos>, and repeats segments of every length at any offset, or nothing", () => {
  const o = { length: 65, minSegment: 2, maxSegment: 32, noRepeat: 0.1 };
  const a = trainingSequence(new Rng(3), o), b = trainingSequence(new Rng(3), o);
  assert.deepEqual(a, b);
  assert.equal(a.length, 65);
  assert.equal(a[0], BOS_ID);
  assert.ok(a.slice(1).every((id) => id >= FIRST_WORD_ID && id < VOCAB.length));
  const rng = new Rng(11);
  const seen = Array.from({ length: 2000 }, () => longestRepeat(trainingSequence(rng, o)));
  const lengths = new Set(seen.map((r) => r?.n));
  for (let n = 3; n <= 32; n++) assert.ok(lengths.has(n), `segment length ${n} occurs`);
  assert.ok(seen.some((r) => r !== null && r.offset === 0) && seen.some((r) => r !== null && r.offset > 20), "offsets from 0 to far");
  assert.ok(seen.some((r) => r !== null && r.copies >= 4), "more than two copies");
  const none = seen.filter((r) => r === null).length / seen.length; // no repeat (a chance repeat of 2 random words is rare)
  assert.ok(none > 0.05 && none < 0.15, `sequences without a repeat: ${none}`);
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
  // The model loads the written file to the logits the training forward computes from the same tensors.
  const ids = repeatedSequences(2, 7, 1);
  const m = await HookedAutoModel.fromPretrained(outDir);
  try {
    const loaded = m.forward(ids);
    const trained = tf.tidy(() => {
      const params = Object.fromEntries([...tensors].map(([k, t]) => [k, tf.tensor(t.data as Float32Array, t.shape)]));
      const oneHot = tf.cast(tf.oneHot(tf.tensor1d(ids.flat(), "int32"), VOCAB.length), "float32") as tf.Tensor2D;
      return forward(r.shape, params, oneHot, 2, 15, causalMask(15));
    });
    const diff = maxAbsDiff(loaded.dataSync(), trained.dataSync());
    tf.dispose([loaded, trained]);
    assert.ok(diff < 1e-4, `logits differ by ${diff}`);
  } finally {
    m.dispose();
  }
});

test("--init starts from a written checkpoint's weights instead of the seeded initialisation", async () => {
  const r = await shortRun();
  const again = path.join(outDir, "again");
  const opts = { steps: 1, seed: 7, batch: 8, warmup: 5, logEvery: 0, evalEvery: 0, check: false, curriculum: [[1, 16]] as Array<[number, number]>, vocabCurriculum: [[1, 8]] as Array<[number, number]> };
  const resumed = await trainEmbedded({ ...opts, out: again, init: outDir }, () => {});
  const fresh = await trainEmbedded({ ...opts, out: again, init: null }, () => {});
  const late = r.losses.slice(-5).reduce((a, b) => a + b, 0) / 5;
  assert.ok(Math.abs(resumed.losses[0] - late) < 0.5, `first loss from the checkpoint ${resumed.losses[0]} ≈ the end of its run ${late}`);
  assert.ok(fresh.losses[0] > late + 1, `first loss from scratch ${fresh.losses[0]}`);
  await assert.rejects(trainEmbedded({ ...opts, out: again, init: path.join(outDir, "nowhere") }, () => {}), /nowhere/);
});

test("the grid: every length from 3 to the longest that fits twice, every offset, two copies and as many as fit", () => {
  assert.deepEqual(gridLengths(64), Array.from({ length: 29 }, (_, i) => i + 3));
  const cells = gridCells(64, VOCAB.length, { samples: 2, seed: 1 });
  assert.equal(cells.length, 870 + 532, "870 two-copy cells (Σ over n of 64 − 2n offsets) and 532 with 3+ copies");
  for (const c of cells) {
    for (const row of c.rows) {
      assert.equal(row.length, 64);
      assert.equal(row[0], BOS_ID);
      assert.equal(new Set(row).size, 64 - (c.copies - 1) * c.n, "only the copies repeat");
      const seg = row.slice(1 + c.offset, 1 + c.offset + c.n);
      for (let k = 1; k < c.copies; k++) assert.deepEqual(row.slice(1 + c.offset + k * c.n, 1 + c.offset + (k + 1) * c.n), seg);
    }
  }
  const at = (n: number, offset: number, copies: number) => cells.filter((c) => c.n === n && c.offset === offset && c.copies === copies).length;
  assert.equal(at(3, 57, 2), 1, "no filler after");
  assert.equal(at(3, 0, 21), 1, "21 copies of 3 words");
  assert.equal(at(31, 1, 2), 1);
  assert.equal(at(21, 0, 3), 1);
  assert.equal(at(22, 0, 3), 0, "3 copies of 22 words do not fit");
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
