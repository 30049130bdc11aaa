/**
 * The embedded-model training script: its data has the promised variety, a short seeded run lowers the loss
 * and writes a Hugging Face GPT-2 directory with the right names and shapes that the model loads to the same
 * logits as the training forward, its tokenizer round-trips with @huggingface/tokenizers, and the grid's cells
 * are laid out as described. The shipped checkpoint's circuit is asserted in detectors.test.ts.
 */
import { before, test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { Tokenizer } from "@huggingface/tokenizers";
import * as tf from "@tensorflow/tfjs";
import { readSafetensors } from "../src/io/safetensors";
import { HookedAutoModel } from "../src/model/hooked-model";
import { STAGE1, trainEmbedded, TrainResult } from "../scripts/train/train-embedded";
import { initBackend } from "../src/backend";
import { causalMask, forward, initParameters, parameterShapes } from "../scripts/train/tiny-gpt2";
import { refitPositions } from "../scripts/train/positions";
import { gridCells, gridLengths } from "../scripts/train/grid";
import { repeatedSequences, trainingSequence, Rng, VOCAB, BOS_ID, UNK_ID, FIRST_WORD_ID } from "../scripts/train/synthetic";
import { ArrakisError } from "../src/errors";
import { maxAbsDiff, scratchDir } from "./helpers";

const shippedDir = path.join(__dirname, "..", "src", "assets", "induction-2l");
const outDir = scratchDir("arrakis-train-");
let run: TrainResult | undefined;

// The training script's backend (single-threaded wasm), for the tests that use its forward directly.
before(async () => {
  process.env.ARRAKIS_BACKEND ??= "wasm";
  process.env.ARRAKIS_WASM_THREADS ??= "0";
  await initBackend();
});

async function shortRun(): Promise<TrainResult> {
  // 16-token sequences over the first 8 words only: cheap, and the loss has far to fall (ln 318 → ln 8 and below).
  run ??= await trainEmbedded({
    ...STAGE1, // stage 1's data forms (the defaults are stage 2, which starts from stage 1's weights)
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

test("the data mixture: each form in its share, segments from 2 words, distinct copies anywhere, corners when asked", () => {
  const mix = { toEnd: 0.3, copies: 0.5, early: 0.05, late: 0.05, none: 0.1 };
  const o = { length: 65, minSegment: 2, maxSegment: 32, mix };
  assert.deepEqual(trainingSequence(new Rng(4), o), trainingSequence(new Rng(4), o), "seeded");
  const rng = new Rng(12);
  const seqs = Array.from({ length: 4000 }, () => trainingSequence(rng, o));
  for (const s of seqs) {
    assert.equal(s.length, 65);
    assert.equal(s[0], BOS_ID);
    assert.ok(s.slice(1).every((id) => id >= FIRST_WORD_ID && id < VOCAB.length));
  }
  // A repeat that reaches the end of the sequence is the "to the end" form; a repeat with every other word
  // distinct is a grid-like form; no repeat is "none" (chance repeats of filler drawn with replacement aside).
  const found = seqs.map((s) => ({ s, r: longestRepeat(s) }));
  const toEnd = found.filter(({ s, r }) => r && 1 + r.offset + r.copies * r.n >= s.length - r.n + 1 && new Set(s).size < 65 - (r.copies - 1) * r.n);
  const distinct = found.filter(({ s, r }) => r && new Set(s).size === 65 - (r.copies - 1) * r.n);
  const none = found.filter(({ r }) => r === null).length / seqs.length;
  assert.ok(none > 0.07 && none < 0.13, `no repeat: ${none}`);
  assert.ok(distinct.length / seqs.length > 0.5, `distinct-word copies: ${distinct.length / seqs.length}`);
  assert.ok(toEnd.length / seqs.length > 0.2, `repeated to the end: ${toEnd.length / seqs.length}`);
  const lengths = new Set(distinct.map(({ r }) => r!.n));
  for (let n = 2; n <= 32; n++) assert.ok(lengths.has(n), `distinct copies of ${n} words occur`);
  assert.ok(distinct.some(({ r }) => r!.offset === 0 && r!.n <= 3) && distinct.some(({ r }) => r!.n <= 3 && r!.offset >= 55), "short segments at both ends");
  assert.ok(distinct.some(({ r }) => r!.copies >= 10), "many copies");
  // The corners: a short segment within 3 words of <bos>, and one whose first copy reaches the last 20 positions.
  const late = distinct.filter(({ r }) => r!.n <= 8 && r!.copies === 2 && 1 + r!.offset + r!.n > 44);
  assert.ok(late.length / seqs.length > 0.05, `late short copies: ${late.length / seqs.length}`);
  assert.throws(() => trainingSequence(new Rng(1), { length: 65, minSegment: 0, maxSegment: 4, mix }), ArrakisError);
});

test("head dropout zeroes layer 1's heads per sequence in the training forward, and nothing when all are kept", () => {
  const s = { vocabSize: 20, nCtx: 8, dModel: 8, nHead: 2, nLayer: 2, dMlp: 16 };
  const init = initParameters(s, 5);
  const p = Object.fromEntries(Object.entries(init).map(([k, v]) => [k, tf.tensor(v.data, v.shape)]));
  const ids = [[0, 3, 4, 5, 3, 4, 5, 6], [0, 7, 8, 9, 7, 8, 9, 10]];
  const oh = tf.oneHot(tf.tensor1d(ids.flat(), "int32"), s.vocabSize).toFloat() as tf.Tensor2D;
  const mask = causalMask(8);
  const plain = forward(s, p, oh, 2, 8, mask).arraySync() as number[][];
  const keepAll = forward(s, p, oh, 2, 8, mask, tf.ones([2, 2, 1, 1]) as tf.Tensor4D).arraySync() as number[][];
  assert.deepEqual(keepAll, plain, "a keep mask of ones changes nothing");
  // Row 0 drops both heads of layer 1, row 1 keeps them: only row 0 changes, and it equals the forward with
  // layer 1's value projection zeroed (z = pattern · v = 0), which is what zeroing its heads means.
  const dropped = forward(s, p, oh, 2, 8, mask, tf.tensor4d([0, 0, 1, 1], [2, 2, 1, 1])).arraySync() as number[][];
  assert.deepEqual(dropped.slice(8), plain.slice(8));
  const W = init["transformer.h.1.attn.c_attn.weight"].data.slice(), b = init["transformer.h.1.attn.c_attn.bias"].data.slice();
  for (let r = 0; r < s.dModel; r++) W.fill(0, r * 3 * s.dModel + 2 * s.dModel, (r + 1) * 3 * s.dModel);
  b.fill(0, 2 * s.dModel);
  const noV = { ...p, "transformer.h.1.attn.c_attn.weight": tf.tensor(W, [s.dModel, 3 * s.dModel]), "transformer.h.1.attn.c_attn.bias": tf.tensor(b, [3 * s.dModel]) };
  const reference = forward(s, noV, oh, 2, 8, mask).arraySync() as number[][];
  assert.ok(maxAbsDiff(dropped.slice(0, 8).flat(), reference.slice(0, 8).flat()) < 1e-5);
  assert.ok(maxAbsDiff(dropped.slice(0, 8).flat(), plain.slice(0, 8).flat()) > 1e-3, "dropping the heads moved row 0");
  tf.dispose([...Object.values(p), ...Object.values(noV), oh, mask]);
});

test("the position refit moves only the rows whose query stage 1's previous-token head leaves, until it attends there", () => {
  // Stage 1's kept weights: its previous-token head L0H1 attends elsewhere from queries 47.. (and 2).
  const s = { vocabSize: VOCAB.length, nCtx: 64, dModel: 64, nHead: 2, nLayer: 2, dMlp: 256 };
  const { tensors } = readSafetensors(path.join(__dirname, "..", "scripts", "train", "stage1", "model.safetensors"));
  const params = Object.fromEntries(Object.entries(parameterShapes(s)).map(([k, shape]) => [k, { shape, data: Float32Array.from(tensors.get(k)!.data) }]));
  const before = Float32Array.from(params["transformer.wpe.weight"].data);
  const baseline = tf.memory().numTensors;
  const { head, rows, attention } = refitPositions(s, params, 150, new Rng(2));
  assert.equal(tf.memory().numTensors, baseline, "the refit leaves no tensors behind");
  assert.equal(head, 1, "L0H1 is stage 1's previous-token head");
  for (let q = 50; q < 64; q++) assert.ok(rows.includes(q), `row ${q} refitted (rows ${rows})`);
  assert.ok(rows.every((q) => q === 2 || q >= 45), `only the rows it leaves: ${rows}`);
  const D = s.dModel, wpe = params["transformer.wpe.weight"].data;
  for (let p = 0; p < 64; p++) {
    const moved = before.slice(p * D, (p + 1) * D).some((v, d) => v !== wpe[p * D + d]);
    assert.equal(moved, rows.includes(p), `row ${p} ${moved ? "moved" : "kept"}`);
  }
  assert.ok(attention > 0.9, `attention to the previous position after the refit: ${attention}`);
  assert.throws(() => refitPositions(s, params, 0, new Rng(1)), /steps must be a positive integer/);
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
  const opts = { ...STAGE1, steps: 1, seed: 7, batch: 8, warmup: 5, logEvery: 0, evalEvery: 0, check: false, curriculum: [[1, 16]] as Array<[number, number]>, vocabCurriculum: [[1, 8]] as Array<[number, number]> };
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
