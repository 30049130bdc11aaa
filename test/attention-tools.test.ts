/**
 * AttentionTools on the Hugging Face fixtures (test/fixtures/hf, see their README): patterns against HF's
 * `attentions.{l}`, ablation against HF's `ablated.logits` (layer 0 head 1 zeroed before c_proj), merges
 * against ablations, exact restores, sweeps against single ablations, argument errors, and tensor ownership
 * (`tf.memory().numTensors` back at its baseline after every tool).
 */
import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { type HookedAutoModel, readSafetensors } from "../src";
import { ArrakisError } from "../src/errors";
import { AttentionTools } from "../src/tools";
import { fixtureModels, hfFixture, maxAbsDiff } from "./helpers";

let model: HookedAutoModel;
let llama: HookedAutoModel;
let attention: AttentionTools;
let ref: ReturnType<typeof readSafetensors>["tensors"];
let rows: number[][];

const { noLeaks } = fixtureModels((fx) => {
  ({ gpt2: model, llama } = fx);
  attention = new AttentionTools(model);
  ref = readSafetensors(`${hfFixture("gpt2")}/reference.safetensors`).tensors;
  const ids = ref.get("input_ids")!.data;
  rows = [Array.from(ids.slice(0, 16)), Array.from(ids.slice(16, 32))];
});

function logitsOf(input: number[][], m: HookedAutoModel = model): Float32Array {
  const t = m.forward(input);
  const data = t.dataSync() as Float32Array;
  t.dispose();
  return data;
}

/** Bit-for-bit equality of two float arrays (NaN-safe, distinguishes nothing looser). */
function assertBitIdentical(a: Float32Array, b: Float32Array, what: string): void {
  assert.equal(a.length, b.length);
  assert.ok(Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength)), `${what}: not bit-identical (max diff ${maxAbsDiff(a, b)})`);
}

const throwsArrakis = (fn: () => unknown, pattern: RegExp) => assert.throws(fn, (e: unknown) => e instanceof ArrakisError && pattern.test(e.message));

// ------------------------------------------------------------------------------------------ patterns

test("attentionPatterns(ids, l, h) equals HF attentions.{l}[b, h] within 1e-5, for every sequence, layer and head", () => {
  let worst = 0;
  for (let b = 0; b < 2; b++) {
    for (let l = 0; l < 2; l++) {
      const hf = ref.get(`attentions.${l}`)!.data; // [2, 4, 16, 16]
      for (let h = 0; h < 4; h++) {
        const p = noLeaks(() => attention.attentionPatterns(rows[b], l, h));
        assert.equal(p.values.length, 16);
        assert.equal(p.values[0].length, 16);
        const off = ((b * 4 + h) * 16) * 16;
        worst = Math.max(worst, maxAbsDiff(p.values.flat(), hf.slice(off, off + 256)));
      }
    }
  }
  assert.ok(worst <= 1e-5, `max |pattern − HF| = ${worst}`);
});

test("attentionPatterns without a head gives [head][q][k] for all heads, tokens attached, a lazily made tensor owned by the result", () => {
  const base = tf.memory().numTensors;
  const p = attention.attentionPatterns(rows[0], 1);
  assert.equal(tf.memory().numTensors, base, "no tensor until .tensor is used");
  assert.deepEqual(p.heads, [0, 1, 2, 3]);
  assert.equal(p.head, null);
  assert.equal(p.values.length, 4);
  assert.deepEqual(p.tokens, rows[0].map((id) => `<${id}>`)); // the fixture has no tokenizer
  assert.deepEqual(p.ids, rows[0]);
  assert.deepEqual(p.tensor.shape, [4, 16, 16]);
  assert.equal(tf.memory().numTensors, base + 1);
  assert.deepEqual(p.forHead(2), attention.attentionPatterns(rows[0], 1, 2).values);
  // causal rows summing to 1
  for (const row of p.values[3]) assert.ok(Math.abs(row.reduce((a, b) => a + b, 0) - 1) < 1e-5);
  assert.equal(p.values[3][0][1], 0);
  p.dispose();
  p.dispose();
  assert.equal(tf.memory().numTensors, base, "dispose frees the tensor");
  assert.match(p.toString(), /AttentionPattern\(layer 1, heads 0–3/);
  const bundle = p.toMimeBundle();
  assert.equal(typeof bundle["text/plain"], "string");
  assert.ok("application/vnd.plotly.v1+json" in bundle, `heatmap bundle has ${Object.keys(bundle)}`);
});

test("attentionPatterns accepts a batch of one and a tensor, and refuses a batch of two with a clear error", () => {
  const a = attention.attentionPatterns([rows[0]], 0, 0).values;
  const ids = tf.tensor1d(rows[0], "int32");
  const b = attention.attentionPatterns(ids, 0, 0).values;
  ids.dispose();
  assert.deepEqual(a, b);
  throwsArrakis(() => attention.attentionPatterns(rows, 0, 0), /takes one sequence, got a batch of 2/);
});

test("topAttendedIds: the k keys with the most attention summed over queries, ids and tokens attached; per query on request", () => {
  const p = attention.attentionPatterns(rows[0], 1, 2).values;
  const received = rows[0].map((_, k) => p.reduce((s, row) => s + row[k], 0));
  const expected = received.map((w, k) => [w, k]).sort((x, y) => y[0] - x[0]).slice(0, 3).map(([, k]) => k);
  const top = noLeaks(() => attention.topAttendedIds(rows[0], 1, 2, 3));
  assert.deepEqual(top.positions, expected);
  assert.deepEqual(top.ids, expected.map((k) => rows[0][k]));
  top.entries.forEach((e) => assert.ok(Math.abs(e.weight - received[e.position]) < 1e-9));
  assert.equal(top.entries[0].token, `<${rows[0][expected[0]]}>`);
  assert.equal(top.perQuery, null);
  assert.equal(attention.topAttendedIds(rows[0], 1, 2).entries.length, 5, "k defaults to 5");
  assert.equal(attention.topAttendedIds(rows[0], 1, 2, 100).entries.length, 16, "k clamps to the sequence");

  const per = attention.topAttendedIds(rows[0], 1, 2, 2, { perQuery: true }).perQuery!;
  assert.equal(per.length, 16);
  assert.equal(per[0].keys.length, 1, "query 0 sees one key");
  assert.deepEqual(per[0].keys.map((k) => k.position), [0]);
  const q9 = p[9].slice(0, 10).map((w, k) => [w, k]).sort((x, y) => y[0] - x[0]).slice(0, 2).map(([, k]) => k);
  assert.deepEqual(per[9].keys.map((k) => k.position), q9);
  assert.ok(per[9].keys.every((k) => k.position <= 9), "only visible keys");
  assert.match(top.toString(), /TopAttended\(layer 1, head 2/);
  assert.ok("image/png" in top.toMimeBundle() || "application/vnd.vegalite.v5+json" in top.toMimeBundle());
});

// ------------------------------------------------------------------------------------------ ablation

test("ablateHead(0, 1) makes model.forward reproduce HF ablated.logits (1e-4); restore() gives the clean logits back bit for bit", () => {
  const clean = logitsOf(rows);
  const base = tf.memory().numTensors;
  const h = attention.ablateHead(0, 1);
  assert.equal(model.hookCount, 1);
  assert.ok(h.active);
  const ablated = logitsOf(rows);
  const err = maxAbsDiff(ablated, ref.get("ablated.logits")!.data);
  assert.ok(err <= 1e-4, `ablated logits error ${err}`);
  const perSeq = model.loss(rows, { perToken: true }).map((r) => r.reduce((a, b) => a + b, 0) / r.length);
  assert.ok(maxAbsDiff(perSeq, ref.get("loss.ablated")!.data) <= 1e-4, `ablated loss ${perSeq}`);
  h.restore();
  assert.ok(!h.active);
  assert.equal(model.hookCount, 0);
  assert.equal(tf.memory().numTensors, base, "numTensors back at its baseline after restore");
  assertBitIdentical(logitsOf(rows), clean, "logits after restore");
  h.restore(); // harmless
  assert.equal(model.hookCount, 0);
  assert.match(String(h), /restored/);
});

test("several ablations at once: restoring one keeps the others; restoreAll clears them", () => {
  const onlyB = (() => {
    const b = attention.ablateHead(1, 3);
    const l = logitsOf(rows);
    b.restore();
    return l;
  })();
  const a = attention.ablateHead(0, 1);
  const b = attention.ablateHead(1, 3);
  assert.equal(attention.active.length, 2);
  const both = logitsOf(rows);
  assert.ok(maxAbsDiff(both, onlyB) > 1e-3, "two ablations differ from one");
  a.restore();
  assertBitIdentical(logitsOf(rows), onlyB, "after restoring a, only b is ablated");
  a.restore();
  assert.equal(model.hookCount, 1);
  attention.ablateHead(0, 0);
  attention.restoreAll();
  assert.equal(model.hookCount, 0);
  assert.equal(attention.active.length, 0);
  assert.ok(!b.active);
});

test("withAblatedHead restores after a return, a throw and an async rejection", async () => {
  const clean = logitsOf(rows);
  const base = tf.memory().numTensors;
  const loss = attention.withAblatedHead(0, 1, () => model.loss(rows));
  assert.ok(Math.abs(loss - ref.get("loss.ablated")!.data.reduce((a, b) => a + b, 0) / 2) < 1e-4);
  assert.equal(model.hookCount, 0);
  assert.throws(() => attention.withAblatedHead(0, 1, () => {
    assert.equal(model.hookCount, 1, "active inside");
    throw new Error("boom");
  }), /boom/);
  assert.equal(model.hookCount, 0, "restored after a throw");
  await assert.rejects(attention.withAblatedHead(0, 1, async () => {
    await new Promise((r) => setTimeout(r, 1));
    assert.equal(model.hookCount, 1, "active while the async callback runs");
    throw new Error("async boom");
  }), /async boom/);
  assert.equal(model.hookCount, 0, "restored after an async rejection");
  assert.equal(await attention.withAblatedHead(0, 1, { mode: "zero" }, async () => 7), 7);
  assert.equal(tf.memory().numTensors, base);
  assertBitIdentical(logitsOf(rows), clean, "logits after scoped ablations");
});

test("mean ablation replaces the head's z by its mean over the reference's positions (reference required)", () => {
  throwsArrakis(() => attention.ablateHead(0, 1, { mode: "mean" }), /needs a reference input/);
  const zName = "blocks.0.attn.hook_z";
  const { logits, cache } = model.runWithCache(rows, { names: [zName] });
  const z = cache.get(zName).arraySync() as number[][][][]; // [batch, pos, head, d_head]
  logits.dispose();
  cache.dispose();
  const meanZ = Array.from({ length: 16 }, (_, d) => z.flatMap((seq) => seq.map((pos) => pos[1][d])).reduce((a, b) => a + b, 0) / 32);
  const base = tf.memory().numTensors;
  const h = attention.ablateHead(0, 1, { mode: "mean", reference: rows });
  assert.equal(tf.memory().numTensors, base + 1, "the handle owns the mean vector");
  const run = model.runWithCache([rows[0]], { names: [zName] });
  const ablatedZ = run.cache.get(zName).arraySync() as number[][][][];
  run.logits.dispose();
  run.cache.dispose();
  for (let t = 0; t < 16; t++) {
    assert.ok(maxAbsDiff(ablatedZ[0][t][1], meanZ) < 1e-5, `position ${t} holds the mean`);
    assert.deepEqual(ablatedZ[0][t][0], z[0][t][0], "other heads untouched");
  }
  h.restore();
  assert.equal(tf.memory().numTensors, base, "restore frees the mean");
});

// ------------------------------------------------------------------------------------------ merging

test("weight merge: mergeHeads(l, a, b, 1.0, { mode: \"weights\" }) equals ablating b alone; weights after restore are the same objects and values", () => {
  const attn0 = model.params.layers[1].attn;
  const before = { wQ: attn0.wQ.dataSync().slice(), wO: attn0.wO.dataSync().slice(), bQ: attn0.bQ!.dataSync().slice() };
  const clean = logitsOf(rows);
  const base = tf.memory().numTensors;
  const ablateB = attention.withAblatedHead(1, 2, () => logitsOf(rows));
  const version = model.edits.layerVersion(1);
  const m = attention.mergeHeads(1, 0, 2, 1.0, { mode: "weights" });
  assert.notEqual(model.params.layers[1].attn, attn0);
  assert.equal(model.edits.layerVersion(1), version + 1, "a weight swap bumps the layer's version");
  assert.equal(model.edits.layerVersion(0), 0, "other layers keep theirs");
  const merged = logitsOf(rows);
  const err = maxAbsDiff(merged, ablateB);
  assert.ok(err <= 1e-5, `merge(alpha=1) vs ablate b: ${err}`);
  m.restore();
  m.restore();
  assert.equal(model.edits.layerVersion(1), version + 2, "restoring bumps it again (an engine copy must be rebuilt)");
  assert.equal(tf.memory().numTensors, base, "merged weights freed on restore");
  const attn1 = model.params.layers[1].attn;
  assert.equal(attn1, attn0, "the original attention params object is back");
  assert.equal(attn1.wQ, attn0.wQ);
  assertBitIdentical(attn1.wQ.dataSync() as Float32Array, before.wQ as Float32Array, "wQ");
  assertBitIdentical(attn1.wO.dataSync() as Float32Array, before.wO as Float32Array, "wO");
  assertBitIdentical(attn1.bQ!.dataSync() as Float32Array, before.bQ as Float32Array, "bQ");
  assertBitIdentical(logitsOf(rows), clean, "logits after merge restore");
});

test("weight merge (l, a, b, 0.0) moves b into a's slot: a's weights and z become b's, and the model equals ablating a", () => {
  const zName = "blocks.0.attn.hook_z";
  const cleanRun = model.runWithCache(rows, { names: [zName] });
  const cleanZ = cleanRun.cache.get(zName).arraySync() as number[][][][];
  cleanRun.logits.dispose();
  cleanRun.cache.dispose();
  const ablateA = attention.withAblatedHead(0, 1, () => logitsOf(rows));
  const p = model.params.layers[0].attn;
  const dh = 16;
  const cols = (w: tf.Tensor2D, h: number) => (tf.tidy(() => tf.slice(w, [0, h * dh], [-1, dh]).arraySync()) as number[][]);
  const rowsOf = (w: tf.Tensor2D, h: number) => (tf.tidy(() => tf.slice(w, [h * dh, 0], [dh, -1]).arraySync()) as number[][]);
  const base = tf.memory().numTensors;
  attention.withMergedHeads(0, 1, 3, 0.0, { mode: "weights" }, () => {
    const q = model.params.layers[0].attn;
    assert.deepEqual(cols(q.wQ, 1), cols(p.wQ, 3), "wQ slot 1 = head 3");
    assert.deepEqual(cols(q.wK, 1), cols(p.wK, 3), "wK slot 1 = head 3");
    assert.deepEqual(cols(q.wV, 1), cols(p.wV, 3), "wV slot 1 = head 3");
    assert.deepEqual(rowsOf(q.wO, 1), rowsOf(p.wO, 3), "wO rows 1 = head 3");
    assert.ok(rowsOf(q.wO, 3).flat().every((x) => x === 0), "head 3 removed");
    assert.deepEqual(cols(q.wQ, 0), cols(p.wQ, 0), "other heads untouched");
    const run = model.runWithCache(rows, { names: [zName] });
    const z = run.cache.get(zName).arraySync() as number[][][][];
    run.logits.dispose();
    run.cache.dispose();
    for (let b = 0; b < 2; b++) for (let t = 0; t < 16; t++) assert.ok(maxAbsDiff(z[b][t][1], cleanZ[b][t][3]) < 1e-6, "z of slot 1 = clean z of head 3");
    const err = maxAbsDiff(logitsOf(rows), ablateA);
    assert.ok(err <= 1e-4, `merge(alpha=0) vs ablating a: ${err}`);
  });
  assert.equal(model.params.layers[0].attn, p);
  assert.equal(tf.memory().numTensors, base);
});

test("weight merge mixes with alpha, refuses a second weight merge in the same layer, and restores after a throw", () => {
  const p = model.params.layers[0].attn;
  const dh = 16;
  const m = attention.mergeHeads(0, 0, 2, 0.25, { mode: "weights" });
  const merged = tf.tidy(() => tf.slice(model.params.layers[0].attn.wQ, [0, 0], [-1, dh]).arraySync()) as number[][];
  const [a, b] = tf.tidy(() => [tf.slice(p.wQ, [0, 0], [-1, dh]).arraySync(), tf.slice(p.wQ, [0, 2 * dh], [-1, dh]).arraySync()]) as number[][][];
  assert.ok(maxAbsDiff(merged.flat(), a.flat().map((x, i) => Math.fround(Math.fround(0.25 * x) + Math.fround(0.75 * b.flat()[i])))) < 1e-6);
  throwsArrakis(() => attention.mergeHeads(0, 1, 3, 0.5, { mode: "weights" }), /layer 0's attn weights are already edited/);
  const other = attention.mergeHeads(1, 1, 3, 0.5, { mode: "weights" }); // another layer is fine
  other.restore();
  m.restore();
  assert.throws(() => attention.withMergedHeads(0, 0, 1, 0.5, { mode: "weights" }, () => {
    throw new Error("inside");
  }), /inside/);
  assert.equal(model.params.layers[0].attn, p);
  assert.equal(attention.active.length, 0);
});

test("changes are tracked per model: a second AttentionTools of the same model sees them and restoreAll undoes them", () => {
  const other = new AttentionTools(model); // e.g. the kernel's `attention` and `exp.tools.attention`
  const clean = logitsOf(rows);
  const p = model.params.layers[0].attn;
  attention.mergeHeads(0, 0, 1, 0.5, { mode: "weights" });
  attention.ablateHead(1, 1);
  assert.equal(other.active.length, 2);
  throwsArrakis(() => other.mergeHeads(0, 2, 3, 0.5, { mode: "weights" }), /layer 0's attn weights are already edited/);
  other.restoreAll();
  assert.equal(attention.active.length, 0);
  assert.equal(model.params.layers[0].attn, p);
  assert.equal(model.hookCount, 0);
  assertBitIdentical(logitsOf(rows), clean, "logits after restoreAll from another instance");
});

test("GQA (llama, 4 heads / 2 kv heads), weight merge: heads of one kv group mix q/o only; different kv groups are refused unless alpha = 1", () => {
  const tools = new AttentionTools(llama);
  const r = rows;
  const clean = logitsOf(r, llama);
  const zName = "blocks.0.attn.hook_z";
  const cleanRun = llama.runWithCache(r, { names: [zName] });
  const cleanZ = cleanRun.cache.get(zName).arraySync() as number[][][][];
  cleanRun.logits.dispose();
  cleanRun.cache.dispose();
  const p = llama.params.layers[0].attn;
  noLeaks(() =>
    tools.withMergedHeads(0, 0, 1, 0.0, { mode: "weights" }, () => {
      const q = llama.params.layers[0].attn;
      assert.equal(q.wK, p.wK, "shared k untouched");
      assert.equal(q.wV, p.wV, "shared v untouched");
      const run = llama.runWithCache(r, { names: [zName] });
      const z = run.cache.get(zName).arraySync() as number[][][][];
      run.logits.dispose();
      run.cache.dispose();
      assert.ok(maxAbsDiff(z[0][5][0], cleanZ[0][5][1]) < 1e-5, "slot 0 computes head 1 (same kv head)");
    }),
    llama,
  );
  throwsArrakis(() => tools.mergeHeads(0, 0, 2, 0.5, { mode: "weights" }), /head 0 reads kv head 0 and head 2 reads kv head 1.*heads 0\.\.1/);
  const onlyRemove = tools.withMergedHeads(0, 0, 2, 1, { mode: "weights" }, () => logitsOf(r, llama));
  const ablate2 = tools.withAblatedHead(0, 2, () => logitsOf(r, llama));
  assert.ok(maxAbsDiff(onlyRemove, ablate2) <= 1e-5);
  // HF's llama ablation fixture (query head 1 of layer 0)
  const llamaRef = readSafetensors(`${hfFixture("llama")}/reference.safetensors`).tensors;
  const ablated = tools.withAblatedHead(0, 1, () => logitsOf(r, llama));
  assert.ok(maxAbsDiff(ablated, llamaRef.get("ablated.logits")!.data) <= 1e-4);
  assertBitIdentical(logitsOf(r, llama), clean, "llama logits after restore");
});

/** Cached `[batch, head, q, k]` patterns, `[batch, pos, kv_head, d_head]` values and `[batch, pos, head, d_head]` z of one layer. */
function layerActs(m: HookedAutoModel, l: number, input: number[][]) {
  const names = [`blocks.${l}.attn.hook_pattern`, `blocks.${l}.attn.hook_v`, `blocks.${l}.attn.hook_z`];
  const { logits, cache } = m.runWithCache(input, { names });
  const [A, v, z] = names.map((n) => cache.get(n).arraySync()) as [number[][][][], number[][][][], number[][][][]];
  logits.dispose();
  cache.dispose();
  return { A, v, z };
}

test("pattern merge (default): h1 attends with alpha·A1 + (1−alpha)·A2 and keeps its values; h2 removed, kept or blended; restore is bit-exact", () => {
  const clean = logitsOf(rows);
  const c = layerActs(model, 0, rows);
  const alpha = 0.3;
  const H = 4, T = 16, dh = 16;
  const version = model.edits.layerVersion(0);
  for (const h2mode of ["remove", "keep", "blend"] as const) {
    const base = tf.memory().numTensors;
    const m = attention.mergeHeads(0, 1, 3, alpha, { h2: h2mode });
    assert.equal(m.mode, "patterns");
    assert.equal(model.edits.layerVersion(0), version, "a pattern merge leaves the weights alone");
    const e = layerActs(model, 0, rows);
    let worstA = 0, worstZ = 0;
    for (let b = 0; b < 2; b++) {
      for (let q = 0; q < T; q++) {
        const blend = c.A[b][1][q].map((a1, k) => alpha * a1 + (1 - alpha) * c.A[b][3][q][k]); // float64, by hand
        worstA = Math.max(worstA, maxAbsDiff(e.A[b][1][q], blend));
        const want3 = h2mode === "keep" ? c.A[b][3][q] : h2mode === "remove" ? new Array(T).fill(0) : blend;
        worstA = Math.max(worstA, maxAbsDiff(e.A[b][3][q], want3));
        for (const h of [0, 2]) assert.deepEqual(e.A[b][h][q], c.A[b][h][q], "other heads untouched");
        // z of h1 = blend @ V of h1 (its own values): alpha·z1 + (1 − alpha)·(A2 @ V1)
        for (let d = 0; d < dh; d++) {
          const a2v1 = c.A[b][3][q].reduce((acc, w, k) => acc + w * c.v[b][k][1][d], 0);
          worstZ = Math.max(worstZ, Math.abs(e.z[b][q][1][d] - (alpha * c.z[b][q][1][d] + (1 - alpha) * a2v1)));
        }
      }
    }
    assert.ok(worstA < 1e-6, `${h2mode}: max |pattern − hand blend| = ${worstA}`);
    assert.ok(worstZ < 1e-5, `${h2mode}: max |z1 − blend·V1| = ${worstZ}`);
    assert.match(String(m), new RegExp(`L0: H1 pattern ← 0.3·H1 \\+ 0.7·H3, H3 ${h2mode === "remove" ? "removed" : h2mode === "keep" ? "kept" : "gets the same blend"}; active`));
    m.restore();
    assert.ok(!m.active);
    assert.equal(tf.memory().numTensors, base);
    assertBitIdentical(logitsOf(rows), clean, `logits after restoring a ${h2mode} pattern merge`);
  }
  // alpha = 1 with h2 removed is exactly the zero ablation of h2; pattern merges stack in one layer
  const removeOnly = attention.withMergedHeads(1, 0, 2, 1, () => logitsOf(rows));
  const ablate2 = attention.withAblatedHead(1, 2, () => logitsOf(rows));
  assert.ok(maxAbsDiff(removeOnly, ablate2) <= 1e-6);
  const a = attention.mergeHeads(0, 0, 1);
  const b = attention.mergeHeads(0, 2, 3);
  assert.equal(attention.active.length, 2);
  attention.restoreAll();
  assert.ok(!a.active && !b.active);
  assertBitIdentical(logitsOf(rows), clean, "after two stacked pattern merges");
});

test("pattern merge under GQA needs no refusal: llama heads of different kv groups blend their patterns", () => {
  const tools = new AttentionTools(llama);
  const clean = logitsOf(rows, llama);
  const c = layerActs(llama, 0, rows);
  noLeaks(() =>
    tools.withMergedHeads(0, 0, 2, 0.5, () => {
      const e = layerActs(llama, 0, rows);
      let worst = 0;
      for (let q = 0; q < 16; q++) {
        for (let d = 0; d < 16; d++) {
          // head 0 reads kv head 0: z0 = 0.5·z0 + 0.5·(A2 @ V_kv0)
          const a2v = c.A[0][2][q].reduce((acc, w, k) => acc + w * c.v[0][k][0][d], 0);
          worst = Math.max(worst, Math.abs(e.z[0][q][0][d] - (0.5 * c.z[0][q][0][d] + 0.5 * a2v)));
        }
        assert.ok(e.A[0][2][q].every((x) => x === 0), "head 2 removed");
      }
      assert.ok(worst < 1e-5, `GQA z of the merged head: ${worst}`);
    }),
    llama,
  );
  assertBitIdentical(logitsOf(rows, llama), clean, "llama after a pattern merge");
});

test("the model owns its edits: resetHooks() and restoreAll() undo merges, ablations and user hooks, and every handle says so", () => {
  const clean = logitsOf(rows);
  const p1 = model.params.layers[1].attn;
  const weights = attention.mergeHeads(1, 0, 1, 0.5, { mode: "weights" });
  const pattern = attention.mergeHeads(0, 2, 3);
  const ablation = attention.ablateHead(0, 1, { mode: "mean", reference: rows });
  const user = model.addHook("blocks.1.hook_resid_post", (x) => tf.mul(x, 2));
  assert.equal(model.edits.active.length, 4);
  assert.deepEqual(model.edits.active.map((e) => e.kind), ["merge", "merge", "ablation", "hook"]);
  assert.match(String(model.edits), /4 active/);
  const base = tf.memory().numTensors;
  model.resetHooks(); // once left the weight merge applied while its handle said "active"
  assert.ok(!weights.active && !pattern.active && !ablation.active, "no handle says active once its edit is gone");
  assert.equal(model.params.layers[1].attn, p1, "merged weights swapped back");
  assert.ok(tf.memory().numTensors < base, "the merge's weights and the mean vector are freed");
  assert.equal(model.edits.active.length, 0);
  assert.equal(model.hookCount, 0);
  assertBitIdentical(logitsOf(rows), clean, "after resetHooks");
  user.remove(); // harmless: already removed
  weights.restore();
  assert.equal(model.edits.layerVersion(1) % 2, 0, "swapped and swapped back once each: even version");

  attention.ablateHead(1, 1);
  model.addHook("hook_embed", () => undefined);
  attention.restoreAll(); // the tools restore their own edits, the user's hook stays
  assert.deepEqual(model.edits.active.map((e) => e.kind), ["hook"]);
  model.restoreAll();
  assert.equal(model.hookCount, 0);
  throwsArrakis(() => model.edits.layerVersion(2), /layer must be an integer in \[0, 1\], got 2/);
});

// ------------------------------------------------------------------------------------------ comparisons

test("ablationComparison: per-token loss clean vs ablated (HF loss.ablated), target-logit change and top logit changes", () => {
  const cmp = noLeaks(() => attention.ablationComparison(rows[1], 0, 1, { topK: 3 }));
  assert.equal(cmp.clean.length, 15);
  assert.ok(Math.abs(cmp.meanClean - ref.get("loss.clean")!.data[1]) <= 1e-4);
  assert.ok(Math.abs(cmp.meanAblated - ref.get("loss.ablated")!.data[1]) <= 1e-4);
  assert.deepEqual(cmp.clean, model.loss([rows[1]], { perToken: true })[0]);
  assert.deepEqual(cmp.delta, cmp.ablated.map((a, t) => a - cmp.clean[t]));
  assert.equal(cmp.topChanges.length, 16);
  const hfClean = ref.get("logits")!.data;
  const hfAbl = ref.get("ablated.logits")!.data;
  for (let t = 0; t < 16; t++) {
    const changes = cmp.topChanges[t];
    assert.equal(changes.length, 3);
    for (let j = 1; j < 3; j++) assert.ok(Math.abs(changes[j - 1].delta) >= Math.abs(changes[j].delta));
    const off = (16 + t) * 512; // sequence 1
    const hfMax = Math.max(...Array.from({ length: 512 }, (_, v) => Math.abs(hfAbl[off + v] - hfClean[off + v])));
    assert.ok(Math.abs(Math.abs(changes[0].delta) - hfMax) < 2e-4, `position ${t}: largest change ${changes[0].delta} vs HF ${hfMax}`);
    if (t < 15) {
      const target = rows[1][t + 1];
      assert.ok(Math.abs(cmp.targetLogitDelta[t] - (hfAbl[off + target] - hfClean[off + target])) < 2e-4);
    }
  }
  assert.match(cmp.toString(), /AblationComparison\(L0H1 zero-ablated; mean loss 7\.558 → 7\.994/);
  const bundle = cmp.toMimeBundle();
  assert.equal(typeof bundle["text/plain"], "string");
  assert.ok(Object.keys(bundle).length > 1);
  const meanCmp = noLeaks(() => attention.ablationComparison(rows[1], 0, 1, { mode: "mean" }));
  assert.equal(meanCmp.mode, "mean");
  assert.notDeepEqual(meanCmp.ablated, cmp.ablated);
});

test("headAblationSweep agrees with individual ablateHead runs, sync and async, with progress", async () => {
  const progress: [number, number][] = [];
  const sweep = noLeaks(() => attention.headAblationSweep(rows, { onProgress: (d, t) => progress.push([d, t]) }));
  assert.deepEqual(progress, Array.from({ length: 9 }, (_, i) => [i, 8]));
  const clean = model.loss(rows);
  // On the onnxruntime engine the sweep's loss is computed inside onnxruntime (its LogSoftmax, not TF.js's):
  // the same numbers up to float32 rounding. A metric of the logits is compared exactly below.
  const near = (a: number, b: number, what: string) => assert.ok(Math.abs(a - b) <= 1e-5, `${what}: ${a} vs ${b}`);
  near(sweep.clean, clean, "clean");
  for (let l = 0; l < 2; l++) {
    for (let h = 0; h < 4; h++) {
      const single = attention.withAblatedHead(l, h, () => model.loss(rows));
      near(sweep.ablated[l][h], single, `L${l}H${h}`);
      assert.equal(sweep.values[l][h], sweep.ablated[l][h] - sweep.clean);
      assert.ok(sweep.ablated[l][h] !== sweep.clean, `L${l}H${h} changes the loss`);
    }
  }
  // HF: ablating L0H1 moves the mean loss from mean(loss.clean) to mean(loss.ablated)
  const hfDelta = (ref.get("loss.ablated")!.data.reduce((a, b) => a + b, 0) - ref.get("loss.clean")!.data.reduce((a, b) => a + b, 0)) / 2;
  assert.ok(Math.abs(sweep.values[0][1] - hfDelta) <= 1e-4);
  const top = sweep.top(2);
  assert.ok(top[0].value >= top[1].value);
  assert.match(sweep.toString(), /HeadSweep\(Δ loss/);
  assert.ok("application/vnd.plotly.v1+json" in sweep.toMimeBundle());

  const base = tf.memory().numTensors;
  const asyncSweep = await attention.headAblationSweepAsync(rows);
  assert.deepEqual(asyncSweep.values, sweep.values);
  assert.equal(tf.memory().numTensors, base);
  assert.equal(model.hookCount, 0);
});

test("headAblationSweep: user metric, mean mode, abort and a throwing metric all leave the model restored", async () => {
  const logit42 = (logits: tf.Tensor3D) => tf.slice(logits, [0, 5, 42], [1, 1, 1]).dataSync()[0];
  const sweep = noLeaks(() => attention.headAblationSweep(rows, { metric: logit42 }));
  assert.equal(sweep.metricLabel, "logit42");
  const single = attention.withAblatedHead(1, 0, () => {
    const t = model.forward(rows);
    const v = logit42(t);
    t.dispose();
    return v;
  });
  assert.equal(sweep.ablated[1][0], single);

  const meanSweep = noLeaks(() => attention.headAblationSweep(rows, { mode: "mean" }));
  const meanSingle = attention.withAblatedHead(0, 2, { mode: "mean", reference: rows }, () => model.loss(rows));
  assert.ok(Math.abs(meanSweep.ablated[0][2] - meanSingle) <= 1e-5, `${meanSweep.ablated[0][2]} vs ${meanSingle}`);

  const base = tf.memory().numTensors;
  const controller = new AbortController();
  await assert.rejects(
    attention.headAblationSweepAsync(rows, { mode: "mean", onProgress: (done) => done === 3 && controller.abort(), signal: controller.signal }),
    /aborted after 3 of 8 heads/,
  );
  assert.equal(model.hookCount, 0);
  assert.equal(tf.memory().numTensors, base);
  let calls = 0;
  assert.throws(() => attention.headAblationSweep(rows, { metric: () => (++calls === 4 ? (() => { throw new Error("metric broke"); })() : 1) }), /metric broke/);
  assert.equal(model.hookCount, 0);
  assert.equal(tf.memory().numTensors, base);
  throwsArrakis(() => attention.headAblationSweep(rows, { metric: () => "x" as unknown as number }), /must return a number/);
  assert.equal(model.hookCount, 0);
});

// ------------------------------------------------------------------------------------------ validation

test("every argument is validated with a clear message", () => {
  const base = tf.memory().numTensors;
  throwsArrakis(() => attention.attentionPatterns(rows[0], 7, 0), /layer 7 is out of range: the model has 2 layers \(valid: 0\.\.1\)/);
  throwsArrakis(() => attention.attentionPatterns(rows[0], 0, -1), /head -1 is out of range: the model has 4 heads/);
  throwsArrakis(() => attention.attentionPatterns(rows[0], 0.5), /layer must be an integer in \[0, 1\], got 0\.5/);
  throwsArrakis(() => attention.attentionPatterns([999], 0), /token id 999 .* out of range/);
  throwsArrakis(() => attention.topAttendedIds(rows[0], 0, 0, 0), /k must be an integer ≥ 1, got 0/);
  throwsArrakis(() => attention.topAttendedIds(rows[0], 0, 0, 2, { perquery: true } as never), /unknown option "perquery"; known options: perQuery/);
  throwsArrakis(() => attention.ablateHead(0, 4), /head 4 is out of range/);
  throwsArrakis(() => attention.ablateHead(0, 1, { mode: "half" as never }), /mode must be "zero" or "mean", got "half"/);
  throwsArrakis(() => attention.ablateHead(0, 1, { mdoe: "mean" } as never), /unknown option "mdoe"/);
  throwsArrakis(() => attention.mergeHeads(0, 1, 1), /two different heads, got h1 = h2 = 1/);
  throwsArrakis(() => attention.mergeHeads(0, 0, 1, 1.5), /alpha must be a number in \[0, 1\], got 1\.5/);
  throwsArrakis(() => attention.mergeHeads(0, 0, 1, NaN), /alpha must be a number in \[0, 1\]/);
  throwsArrakis(() => attention.mergeHeads(0, 0, 1, 0.5, { mode: "pattern" } as never), /mode must be "patterns" or "weights", got "pattern"/);
  throwsArrakis(() => attention.mergeHeads(0, 0, 1, 0.5, { h2: "drop" } as never), /h2 must be "keep", "remove" or "blend", got "drop"/);
  throwsArrakis(() => attention.withAblatedHead(0, 1, {} as never), /expects a callback/);
  throwsArrakis(() => attention.ablationComparison([rows[0][0]], 0, 1), /at least 2 tokens/);
  throwsArrakis(() => attention.headAblationSweep(rows, { metric: "acc" as never }), /metric must be "loss" or a function/);
  assert.throws(() => new AttentionTools({} as never), /expects a HookedAutoModel/);
  assert.equal(tf.memory().numTensors, base);
  assert.equal(model.hookCount, 0);
  assert.equal(attention.active.length, 0);
});
