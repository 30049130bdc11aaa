/**
 * The circuit tools against an independent float64 reference (test/reference/hf-reference.ts, which shares
 * no code with src/model) on the Hugging Face GPT-2 and Llama fixtures:
 * - activation patching of the residual stream and of each head's output: the patched metrics equal the
 *   reference's patched forwards, and the normalisation is TransformerLens' (patched − corrupted) / (clean − corrupted);
 * - direct logit attribution: every component equals the float64 decomposition through the frozen final-norm
 *   scale, and the parts sum to the model's logit difference within 1e-4 (LayerNorm and RMSNorm);
 * - logit lens: per layer, the decoded probabilities, top tokens and next-token ranks equal the reference's;
 * - the linked attention view carries the real patterns; every tool leaves no tensor and no hook behind.
 */
import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { AttentionTools, HookedAutoModel } from "../src";
import { ArrakisError } from "../src/errors";
import { fixtureModels, hfFixture, maxAbsDiff } from "./helpers";
import { referenceModel } from "./reference/hf-reference";
import { type RefTensor, readTensors } from "./reference/safetensors-mini";

let gpt2: HookedAutoModel;
let llama: HookedAutoModel;
let tools: AttentionTools;
let W: Map<string, RefTensor>;
let clean: number[];
let corrupted: number[];
let answer: number;
let wrong: number;
const T = 12;
const D = 64, H = 4, hd = 16, EPS = 1e-5;

const { noLeaks } = fixtureModels((fx) => {
  ({ gpt2, llama } = fx);
  tools = new AttentionTools(gpt2);
  W = readTensors(path.join(hfFixture("gpt2"), "model.safetensors"));
  const ids = readTensors(path.join(hfFixture("gpt2"), "reference.safetensors")).get("input_ids")!.data;
  clean = Array.from(ids.slice(0, T));
  corrupted = [...clean];
  corrupted[2] = clean[7];
  corrupted[5] = (clean[5] + 101) % 512;
  // The answer and the competitor: the clean run's top token at the end, and the corrupted run's.
  const top = (row: number[]) => {
    const l = gpt2.forward([row]);
    const last = tf.tidy(() => tf.argMax(tf.slice(l, [0, T - 1, 0], [1, 1, -1]).reshape([-1])).dataSync()[0]);
    l.dispose();
    return last;
  };
  answer = top(clean);
  wrong = top(corrupted);
  if (answer === wrong) wrong = (answer + 1) % 512;
});

// ------------------------------------------------------------------ float64 GPT-2 pieces (weights from the file)

const w = (s: string) => W.get(W.has("transformer." + s) ? "transformer." + s : s)!;

function conv1d(x: Float64Array, n: number, wt: RefTensor, b: RefTensor): Float64Array {
  const [inp, out] = wt.shape;
  const y = new Float64Array(n * out);
  for (let r = 0; r < n; r++) for (let o = 0; o < out; o++) {
    let s = b.data[o];
    for (let i = 0; i < inp; i++) s += x[r * inp + i] * wt.data[i * out + o];
    y[r * out + o] = s;
  }
  return y;
}

function layerNorm(x: Float64Array, g: RefTensor, b: RefTensor): Float64Array {
  const y = new Float64Array(x.length);
  for (let r = 0; r < x.length / D; r++) {
    const row = x.subarray(r * D, (r + 1) * D);
    const mean = row.reduce((a, v) => a + v, 0) / D;
    const inv = 1 / Math.sqrt(row.reduce((a, v) => a + (v - mean) ** 2, 0) / D + EPS);
    for (let i = 0; i < D; i++) y[r * D + i] = (row[i] - mean) * inv * g.data[i] + b.data[i];
  }
  return y;
}

const gelu = (v: number) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v * v * v)));
const add = (a: Float64Array, b: Float64Array) => a.map((v, i) => v + b[i]);

/** The rest of GPT-2 layer l after its attention: z `[T, H·hd]` → (attention output, layer output). */
function afterAttention(l: number, x: Float64Array, z: Float64Array): { attn: Float64Array; mlp: Float64Array; out: Float64Array } {
  const attn = conv1d(z, T, w(`h.${l}.attn.c_proj.weight`), w(`h.${l}.attn.c_proj.bias`));
  const mid = add(x, attn);
  const h2 = layerNorm(mid, w(`h.${l}.ln_2.weight`), w(`h.${l}.ln_2.bias`));
  const mlp = conv1d(conv1d(h2, T, w(`h.${l}.mlp.c_fc.weight`), w(`h.${l}.mlp.c_fc.bias`)).map(gelu), T, w(`h.${l}.mlp.c_proj.weight`), w(`h.${l}.mlp.c_proj.bias`));
  return { attn, mlp, out: add(mid, mlp) };
}

const ref = () => referenceModel(hfFixture("gpt2"), 1, T);

/** logit(answer) − logit(wrong) at the last position of a final residual `[T, D]`. */
function refDiff(r: ReturnType<typeof ref>, x: Float64Array): number {
  const logits = r.unembed(r.finalNorm(x));
  const V = logits.length / T;
  return logits[(T - 1) * V + answer] - logits[(T - 1) * V + wrong];
}

/** Clean reference residuals entering each layer, and each layer's z. */
function refRun(r: ReturnType<typeof ref>, row: number[]): { xs: Float64Array[]; zs: Float64Array[]; final: Float64Array } {
  let x = r.embed([row]);
  const xs: Float64Array[] = [];
  const zs: Float64Array[] = [];
  for (let l = 0; l < r.nLayers; l++) {
    xs.push(x);
    const o = r.layer(l, x);
    zs.push(o.z);
    x = o.x;
  }
  return { xs, zs, final: x };
}

// ------------------------------------------------------------------ patching

test("patchResidual: every (layer, position) patched metric equals a float64 patched forward; normalised as TransformerLens", () => {
  const res = noLeaks(() => tools.patchResidual(clean, corrupted, { answer, wrong }));
  const r = ref();
  const c = refRun(r, clean);
  const k = refRun(r, corrupted);
  const cleanRef = refDiff(r, c.final);
  const corruptRef = refDiff(r, k.final);
  assert.ok(Math.abs(res.clean - cleanRef) < 1e-4 && Math.abs(res.corrupted - corruptRef) < 1e-4, `clean ${res.clean} vs ${cleanRef}, corrupted ${res.corrupted} vs ${corruptRef}`);
  assert.ok(Math.abs(cleanRef - corruptRef) > 0.05, `inputs differ in the metric (${cleanRef} vs ${corruptRef})`);
  let worstRaw = 0, worstNorm = 0;
  for (let l = 0; l < 2; l++) {
    for (let p = 0; p < T; p++) {
      let x = Float64Array.from(k.xs[l]);
      x.set(c.xs[l].subarray(p * D, (p + 1) * D), p * D);
      for (let m = l; m < 2; m++) x = r.layer(m, x).x;
      const want = refDiff(r, x);
      worstRaw = Math.max(worstRaw, Math.abs(res.patched[l][p] - want));
      worstNorm = Math.max(worstNorm, Math.abs(res.values[l][p] - (want - corruptRef) / (cleanRef - corruptRef)));
    }
  }
  assert.ok(worstRaw < 1e-4, `max |patched metric − float64| = ${worstRaw}`);
  assert.ok(worstNorm < 1e-3, `max |normalised − float64| = ${worstNorm}`);
  // Positions where clean and corrupted agree and nothing before them differs restore nothing; patching the
  // whole stream at a corrupted position of layer 0 restores everything that flows through it.
  assert.ok(Math.abs(res.values[0][0]) < 1e-6 && Math.abs(res.values[0][1]) < 1e-6);
  assert.equal(res.values[0].length, T);
  assert.match(res.columns[2], /^2 .+ \/ .+/, "a corrupted position names both tokens");
  // Batching changes nothing: one row per forward gives the same grid.
  const single = tools.patchResidual(clean, corrupted, { answer, wrong, batchSize: 1 });
  assert.ok(maxAbsDiff(single.values.flat(), res.values.flat()) < 1e-5);
  console.log(`patchResidual vs float64: raw ${worstRaw.toExponential(2)}, normalised ${worstNorm.toExponential(2)} (span ${(cleanRef - corruptRef).toFixed(4)})`);
});

test("patchHeads: each head's clean z patched into the corrupted run equals a float64 forward with that head's z replaced", () => {
  const res = noLeaks(() => tools.patchHeads(clean, corrupted, { answer, wrong, batchSize: 3 }));
  const r = ref();
  const c = refRun(r, clean);
  const k = refRun(r, corrupted);
  const cleanRef = refDiff(r, c.final);
  const corruptRef = refDiff(r, k.final);
  let worstRaw = 0, worstNorm = 0;
  for (let l = 0; l < 2; l++) {
    for (let h = 0; h < H; h++) {
      const z = Float64Array.from(k.zs[l]);
      for (let t = 0; t < T; t++) z.set(c.zs[l].subarray(t * D + h * hd, t * D + (h + 1) * hd), t * D + h * hd);
      let x = afterAttention(l, k.xs[l], z).out;
      for (let m = l + 1; m < 2; m++) x = r.layer(m, x).x;
      const want = refDiff(r, x);
      worstRaw = Math.max(worstRaw, Math.abs(res.patched[l][h] - want));
      worstNorm = Math.max(worstNorm, Math.abs(res.values[l][h] - (want - corruptRef) / (cleanRef - corruptRef)));
    }
  }
  assert.ok(worstRaw < 1e-4, `max |patched metric − float64| = ${worstRaw}`);
  assert.ok(worstNorm < 1e-3, `max |normalised − float64| = ${worstNorm}`);
  assert.deepEqual(res.columns, ["H0", "H1", "H2", "H3"]);
  console.log(`patchHeads vs float64: raw ${worstRaw.toExponential(2)}, normalised ${worstNorm.toExponential(2)}`);
});

test("patching with the loss metric: the clean metric is the model loss, unchanged positions restore exactly 0; refusals are clear", () => {
  const res = noLeaks(() => tools.patchResidual(clean, corrupted, { metric: "loss" }));
  assert.equal(res.metricLabel, "loss on the clean tokens");
  assert.ok(Math.abs(res.clean - gpt2.loss([clean])) < 1e-5, "the clean metric is the model's loss on the clean input");
  // Positions 0 and 1 are the same in both inputs and nothing before them differs: patching them changes nothing.
  assert.equal(res.values[0][0], 0);
  assert.equal(res.values[0][1], 0);
  assert.ok(res.values.flat().every(Number.isFinite));
  const throwsArrakis = (fn: () => unknown, re: RegExp) => assert.throws(fn, (e: unknown) => e instanceof ArrakisError && re.test(e.message));
  throwsArrakis(() => tools.patchResidual(clean, clean, { answer, wrong }), /give the same .* nothing can be normalised/);
  throwsArrakis(() => tools.patchResidual(clean, corrupted.slice(1), { answer, wrong }), /same number of tokens, got 12 and 11/);
  throwsArrakis(() => tools.patchHeads(clean, corrupted, { metric: "logitDiff" }), /needs \{ answer, wrong \}/);
  throwsArrakis(() => tools.patchHeads(clean, corrupted, { answer: 999, wrong }), /answer must be a token id in \[0, 511\], got 999/);
  throwsArrakis(() => tools.patchHeads(clean, corrupted, { answer, wrong, position: 12 }), /position must be an integer in \[0, 11\], got 12/);
  throwsArrakis(() => tools.patchHeads(clean, corrupted, { answr: 1 } as never), /unknown option "answr"/);
  assert.equal(gpt2.hookCount, 0);
});

// ------------------------------------------------------------------ direct logit attribution

test("logitAttribution (GPT-2, LayerNorm): each component equals the float64 decomposition with the frozen scale; the sum is the model's logit difference within 1e-4", () => {
  const dla = noLeaks(() => tools.logitAttribution(clean, answer, wrong));
  const r = ref();
  const run = refRun(r, clean);
  // Frozen scale of the final residual at the last position; u = ln_f.weight ⊙ (W_U[answer] − W_U[wrong]).
  const x = run.final.subarray((T - 1) * D, T * D);
  const mean = x.reduce((a, v) => a + v, 0) / D;
  const scale = Math.sqrt(x.reduce((a, v) => a + (v - mean) ** 2, 0) / D + EPS);
  const wte = w("wte.weight").data;
  const g = w("ln_f.weight").data;
  const u = Array.from({ length: D }, (_, i) => g[i] * (wte[answer * D + i] - wte[wrong * D + i]));
  const apply = (v: ArrayLike<number>) => {
    const m = Array.from(v).reduce((a, b) => a + b, 0) / D;
    return Array.from(v).reduce((a, vi, i) => a + ((vi - m) / scale) * u[i], 0);
  };
  const last = (a: Float64Array) => a.subarray((T - 1) * D, T * D);
  const want = new Map<string, number>();
  const emb = r.embed([clean]);
  const wpe = w("wpe.weight").data.subarray((T - 1) * D, T * D);
  want.set("pos_embed", apply(wpe));
  want.set("embed", apply(last(emb).map((v, i) => v - wpe[i])));
  for (let l = 0; l < 2; l++) {
    const z = run.zs[l];
    const wo = w(`h.${l}.attn.c_proj.weight`).data; // [H·hd, D]
    for (let h = 0; h < H; h++) {
      const out = Array.from({ length: D }, (_, j) => {
        let s = 0;
        for (let i = 0; i < hd; i++) s += z[(T - 1) * D + h * hd + i] * wo[(h * hd + i) * D + j];
        return s;
      });
      want.set(`L${l}H${h}`, apply(out));
    }
    want.set(`L${l} attn bias`, apply(w(`h.${l}.attn.c_proj.bias`).data));
    want.set(`L${l} MLP`, apply(last(afterAttention(l, run.xs[l], run.zs[l]).mlp)));
  }
  const lnB = w("ln_f.bias").data;
  want.set("final norm and unembed biases", Array.from(lnB).reduce((a, b, i) => a + b * (wte[answer * D + i] - wte[wrong * D + i]), 0));
  assert.deepEqual(dla.components.map((c) => c.name).sort(), [...want.keys()].sort());
  let worst = 0;
  for (const c of dla.components) worst = Math.max(worst, Math.abs(c.value - want.get(c.name)!));
  const refTotal = [...want.values()].reduce((a, b) => a + b, 0);
  assert.ok(worst < 1e-5, `max |component − float64| = ${worst}`);
  assert.ok(Math.abs(refTotal - refDiff(r, run.final)) < 1e-9, "the float64 parts sum to the float64 logit difference (the decomposition is exact)");
  assert.ok(Math.abs(dla.sum - dla.logitDiff) < 1e-4, `sum ${dla.sum} vs model ${dla.logitDiff}`);
  const heads = dla.heads.flat().reduce((a, b) => a + b, 0);
  const rest = dla.components.filter((c) => c.kind !== "head").reduce((a, c) => a + c.value, 0);
  assert.ok(Math.abs(heads + rest - dla.logitDiff) < 1e-4, "per-head values plus the rest give the logit difference");
  console.log(`logitAttribution vs float64: worst component ${worst.toExponential(2)}, |sum − model| ${Math.abs(dla.sum - dla.logitDiff).toExponential(2)}`);
});

test("logitAttribution (Llama, RMSNorm, no biases): the parts sum to the model's logit difference within 1e-4 at every position", () => {
  const lt = new AttentionTools(llama);
  let worst = 0;
  for (const position of [3, 7, T - 1]) {
    const dla = noLeaks(() => lt.logitAttribution(clean, 5, 9, { position }), llama);
    assert.equal(dla.components.filter((c) => c.kind === "head").length, 2 * 4);
    assert.ok(!dla.components.some((c) => c.kind === "pos_embed" || c.kind === "attn_bias"));
    worst = Math.max(worst, Math.abs(dla.sum - dla.logitDiff));
  }
  assert.ok(worst < 1e-4, `|sum − logit diff| = ${worst}`);
});

// ------------------------------------------------------------------ logit lens

test("logitLens: each layer's decoded probabilities, top tokens and next-token ranks equal the float64 reference; the last row is the model's prediction", () => {
  const lens = noLeaks(() => tools.logitLens(clean, { k: 3 }));
  assert.deepEqual(lens.rows, ["embed", "L0", "L1"]);
  const r = ref();
  let x = r.embed([clean]);
  const V = 512;
  let worstP = 0;
  let rankMismatch = 0;
  for (let row = 0; row < 3; row++) {
    if (row > 0) x = r.layer(row - 1, x).x;
    const logits = r.unembed(r.finalNorm(x));
    for (let p = 0; p < T; p++) {
      const lg = logits.subarray(p * V, (p + 1) * V);
      const mx = Math.max(...lg);
      const z = lg.reduce((a, v) => a + Math.exp(v - mx), 0);
      const order = Array.from(lg.keys()).sort((a, b) => lg[b] - lg[a]);
      for (let j = 0; j < 3; j++) {
        worstP = Math.max(worstP, Math.abs(lens.top[row][p][j].prob - Math.exp(lg[order[j]] - mx) / z));
        if (lg[order[j]] - lg[order[j + 1]] > 1e-4) assert.equal(lens.top[row][p][j].id, order[j], `row ${row} position ${p} top ${j}`);
      }
      if (p < T - 1) {
        const target = clean[p + 1];
        const rank = lg.filter((v) => v > lg[target]).length;
        if (lens.targetRank[row][p] !== rank) rankMismatch++;
        worstP = Math.max(worstP, Math.abs(lens.targetProb[row][p]! - Math.exp(lg[target] - mx) / z));
      } else {
        assert.equal(lens.targetRank[row][p], null);
      }
    }
  }
  assert.ok(worstP < 1e-5, `max |probability − float64| = ${worstP}`);
  assert.equal(rankMismatch, 0, "next-token ranks agree");
  const logits = gpt2.forward([clean]);
  const argmax = tf.tidy(() => Array.from(tf.argMax(logits, -1).dataSync()));
  logits.dispose();
  assert.deepEqual(lens.top[2].map((k) => k[0].id), argmax, "last row = the model's own top tokens");
  assert.match(lens.toString(), /LogitLens\(3 rows × 12 positions/);
});

// ------------------------------------------------------------------ linked attention view

test("attentionView holds every layer's real patterns and renders HTML that builds itself from them, with a static picture", () => {
  const view = noLeaks(() => tools.attentionView(clean, { layer: 1, head: 2 }));
  assert.deepEqual(view.layers, [0, 1]);
  const p = tools.attentionPatterns(clean, 1, 2).values;
  assert.deepEqual(view.patterns[1][2], p);
  const b = view.toMimeBundle();
  const html = String(b["text/html"]);
  assert.match(html, /<img class="arrakis-static"[^>]+src="data:image\/png;base64,/);
  assert.match(html, /data-arrakis-linked="[0-9a-f-]+"/);
  assert.ok(!/<\/script>[\s\S]*<\/script>/.test(html.replace(/<script[\s\S]*?<\/script>/, "")), "one script");
  assert.equal(typeof b["image/png"], "string");
  assert.match(String(b["text/plain"]), /selected: layer 1, head 2/);
  assert.throws(() => tools.attentionView(clean, { layer: 1, layers: [0] }), /layer 1 is not among the layers shown \(0\)/);
  const long = Array.from({ length: 128 }, (_, i) => (i * 7) % 512); // 2 layers × 4 heads × 128² = 131,072 weights: fits
  assert.equal(noLeaks(() => tools.attentionView(long)).patterns.length, 2);
  const lt = new AttentionTools(llama);
  assert.throws(() => lt.attentionView(Array.from({ length: 200 }, (_, i) => i % 100)), /2 layer\(s\) × 4 heads × 200² positions = 320,000 weights, more than one view holds \(250,000\); pass \{ layers: \[0\] \}/);
});

test("families whose heads do not write linearly into the logits are refused by logitAttribution, with the reason; the lens and pattern merges still work", async () => {
  const { HookedAutoConfig } = await import("../src");
  const gemma2 = new HookedAutoModel(new HookedAutoConfig({ name: "gemma2", hidden_size: 16, num_attention_heads: 2, num_key_value_heads: 1, head_dim: 8, intermediate_size: 32, num_hidden_layers: 2, vocab_size: 20, max_position_embeddings: 32 }), { seed: 3 });
  try {
    const t = new AttentionTools(gemma2);
    assert.throws(() => t.logitAttribution([1, 2, 3], 4, 5), (e: unknown) => e instanceof ArrakisError && /norm placement "sandwich"/.test(e.message));
    const lens = noLeaks(() => t.logitLens([1, 2, 3, 4]), gemma2);
    const logits = gemma2.forward([[1, 2, 3, 4]]);
    const probs = tf.tidy(() => tf.softmax(logits).arraySync() as number[][][]);
    logits.dispose();
    assert.ok(maxAbsDiff(lens.top[2].map((k) => k[0].prob), probs[0].map((r) => Math.max(...r))) < 1e-6, "last row = the model's (soft-capped) probabilities");
    const run = () => tf.tidy(() => Array.from(gemma2.forward([[1, 2, 3, 4]]).dataSync()));
    const clean = run();
    const m = t.mergeHeads(1, 0, 1, 0.5); // heads share the one kv head: no refusal in either mode, none needed in pattern mode
    m.restore();
    assert.deepEqual(run(), clean, "bit-identical after restore");
  } finally {
    gemma2.dispose();
  }
});

test("the circuit tools agree on both engines (onnxruntime and TF.js) within float32 rounding", async (t) => {
  const { engineReport } = await import("../src");
  if (!engineReport().startsWith("engine: ort")) return t.skip(engineReport());
  const [ort, tfjs] = [await HookedAutoModel.fromPretrained(hfFixture("gpt2"), { engine: "ort" }), await HookedAutoModel.fromPretrained(hfFixture("gpt2"), { engine: "tfjs" })];
  try {
    const run = (m: HookedAutoModel) => {
      const a = new AttentionTools(m);
      const r = {
        resid: a.patchResidual(clean, corrupted, { answer, wrong }).patched.flat(),
        heads: a.patchHeads(clean, corrupted, { metric: "loss" }).patched.flat(),
        dla: a.logitAttribution(clean, answer, wrong).components.map((c) => c.value),
        lens: a.logitLens(clean).targetProb.flat().filter((x): x is number => x !== null),
        view: a.attentionView(clean).patterns.flat(3),
      };
      assert.equal(m.engine, m === ort ? "ort" : "tfjs");
      return r;
    };
    const [a, b] = [run(ort), run(tfjs)];
    for (const k of Object.keys(a) as (keyof typeof a)[]) {
      const d = maxAbsDiff(a[k], b[k]);
      assert.ok(d < 1e-4, `${k}: engines differ by ${d}`);
    }
  } finally {
    ort.dispose();
    tfjs.dispose();
  }
});
