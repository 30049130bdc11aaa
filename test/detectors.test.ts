/**
 * Head detectors (src/tools/detectors.ts): the target sets, the seeded probe sequences, scores against a
 * plain-JS recomputation from the cached patterns, and heads forced (through a hook on hook_pattern) to be
 * a perfect previous-token / induction / duplicate-token head, which must score exactly 1.
 */
import { test, before, after } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { HookedAutoModel, initBackend } from "../src";
import { ArrakisError } from "../src/errors";
import { AttentionTools, detectionTargets, repeatedRandomTokens, type DetectorKind } from "../src/tools";
import { hfFixture, repoRoot } from "./helpers";
import { repeatedSequences } from "../src/train/synthetic";

let model: HookedAutoModel;
let attention: AttentionTools;

before(async () => {
  await initBackend();
  model = await HookedAutoModel.fromPretrained(hfFixture("gpt2"));
  attention = new AttentionTools(model);
});

after(() => model?.dispose());

const throwsArrakis = (fn: () => unknown, pattern: RegExp) => assert.throws(fn, (e: unknown) => e instanceof ArrakisError && pattern.test(e.message));

test("detectionTargets: previous token, earlier duplicates, and the token after each earlier duplicate", () => {
  const row = [7, 3, 5, 3, 7, 3];
  assert.deepEqual(detectionTargets("previous-token", row), [[], [0], [1], [2], [3], [4]]);
  assert.deepEqual(detectionTargets("duplicate-token", row), [[], [], [], [1], [0], [1, 3]]);
  assert.deepEqual(detectionTargets("induction", row), [[], [], [], [2], [1], [2, 4]]);
  // A A: every second-half query's induction target is the position after its first occurrence
  const aa = [0, 11, 12, 13, 11, 12, 13];
  assert.deepEqual(detectionTargets("induction", aa).slice(4), [[2], [3], [4]]);
});

test("repeatedRandomTokens: seeded [bos] A A with distinct ordinary tokens that fit the context", () => {
  const a = repeatedRandomTokens(model, { seqLen: 10, nSeqs: 3, seed: 5 });
  assert.deepEqual(a, repeatedRandomTokens(model, { seqLen: 10, nSeqs: 3, seed: 5 }), "same seed, same sequences");
  assert.notDeepEqual(a, repeatedRandomTokens(model, { seqLen: 10, nSeqs: 3, seed: 6 }));
  assert.equal(a.length, 3);
  for (const row of a) {
    assert.equal(row.length, 20, "the fixture has no tokenizer, so no BOS is prepended");
    assert.deepEqual(row.slice(10), row.slice(0, 10));
    assert.equal(new Set(row.slice(0, 10)).size, 10, "distinct");
    assert.ok(row.every((id) => id !== 0 && id < 512), "never the bos/eos id 0");
  }
  const withBos = (() => {
    const saved = model.prependBos;
    model.prependBos = true;
    try {
      return repeatedRandomTokens(model, { seqLen: 4, nSeqs: 1 })[0];
    } finally {
      model.prependBos = saved;
    }
  })();
  assert.equal(withBos.length, 9);
  assert.equal(withBos[0], 0, "BOS first when the model's policy prepends it");
  assert.equal(repeatedRandomTokens(model)[0].length, 40, "default |A| = 20");
  throwsArrakis(() => repeatedRandomTokens(model, { seqLen: 65 }), /seqLen 65 is too long: 2 × 65 tokens exceed the model's context of 128 \(at most 64\)/);
  throwsArrakis(() => repeatedRandomTokens(model, { seqLen: 0 }), /seqLen must be an integer ≥ 1/);
  throwsArrakis(() => repeatedRandomTokens(model, { seed: 1.5 }), /seed must be an integer/);
});

/** Score of every head recomputed in plain JS from the cached patterns: mean target attention over queries with targets. */
function expectedScores(kind: DetectorKind, rows: number[][]): number[][] {
  const names = [0, 1].map((l) => `blocks.${l}.attn.hook_pattern`);
  const { logits, cache } = model.runWithCache(rows, { names });
  const patterns = names.map((n) => cache.get(n).arraySync() as number[][][][]); // [layer][batch][head][q][k]
  logits.dispose();
  cache.dispose();
  return patterns.map((p) =>
    [0, 1, 2, 3].map((h) => {
      let sum = 0;
      let n = 0;
      rows.forEach((row, b) =>
        detectionTargets(kind, row).forEach((keys, q) => {
          if (!keys.length) return;
          n++;
          for (const k of keys) sum += p[b][h][q][k];
        }),
      );
      return sum / n;
    }),
  );
}

for (const kind of ["previous-token", "duplicate-token", "induction"] as const) {
  test(`${kind} scores equal a plain recomputation from the cached patterns (generated and given input), without leaks`, () => {
    const method = { "previous-token": "previousTokenHeads", "duplicate-token": "duplicateTokenHeads", induction: "inductionHeads" }[kind] as "previousTokenHeads";
    const base = tf.memory().numTensors;
    const scores = attention[method]({ seqLen: 8, nSeqs: 2, seed: 3 });
    assert.equal(tf.memory().numTensors, base);
    assert.equal(scores.kind, kind);
    assert.deepEqual(scores.rows, repeatedRandomTokens(model, { seqLen: 8, nSeqs: 2, seed: 3 }));
    const expected = expectedScores(kind, scores.rows);
    for (let l = 0; l < 2; l++) for (let h = 0; h < 4; h++) assert.ok(Math.abs(scores.values[l][h] - expected[l][h]) < 1e-6, `L${l}H${h}`);
    assert.match(scores.source, /2 generated sequences A A, \|A\| = 8, seed 3/);

    const given = [[5, 6, 7, 5, 6, 7, 9, 5]];
    const onGiven = attention[method](given);
    assert.equal(tf.memory().numTensors, base);
    const exp2 = expectedScores(kind, given);
    for (let l = 0; l < 2; l++) for (let h = 0; h < 4; h++) assert.ok(Math.abs(onGiven.values[l][h] - exp2[l][h]) < 1e-6);
    assert.match(onGiven.source, /1 given sequence of 8 tokens/);
    for (const row of scores.values) for (const v of row) assert.ok(v >= 0 && v <= 1 + 1e-6);
  });
}

/**
 * A hook on layer `layer`'s pattern that makes head `head` a perfect detector of `kind` on the given rows:
 * uniform attention over each query's targets (self where it has none).
 */
function forcePattern(kind: DetectorKind, rows: number[][], layer: number, head: number) {
  const T = rows[0].length;
  const forced = rows.map((row) =>
    detectionTargets(kind, row).map((keys, q) => Array.from({ length: T }, (_, k) => (keys.length ? (keys.includes(k) ? 1 / keys.length : 0) : k === q ? 1 : 0))),
  );
  return model.addHook(`blocks.${layer}.attn.hook_pattern`, (p) => {
    const B = p.shape[0];
    const perHead = tf.unstack(p, 1); // H × [batch, q, k]
    perHead[head] = tf.tensor3d(forced.flat(2), [B, T, T]);
    return tf.stack(perHead, 1); // [batch, head, q, k]
  });
}

test("a head forced to attend like each kind scores 1 for it (and the other heads keep their scores)", () => {
  const rows = repeatedRandomTokens(model, { seqLen: 10, nSeqs: 2, seed: 1 });
  for (const [kind, layer, head] of [["previous-token", 0, 2], ["induction", 1, 3], ["duplicate-token", 1, 0]] as const) {
    const before = attention.inductionHeads(rows);
    const hook = forcePattern(kind, rows, layer, head);
    try {
      const scores = kind === "previous-token" ? attention.previousTokenHeads(rows) : kind === "induction" ? attention.inductionHeads(rows) : attention.duplicateTokenHeads(rows);
      assert.ok(Math.abs(scores.values[layer][head] - 1) < 1e-6, `${kind}: forced head scores ${scores.values[layer][head]}`);
      assert.deepEqual(scores.top(1)[0], { layer, head, score: scores.values[layer][head] });
      assert.equal(scores.at(layer, head), scores.values[layer][head]);
      if (layer === 1) {
        // layer-1 patterns do not feed layer 0 or other layer-1 heads
        const after = attention.inductionHeads(rows);
        for (let h = 0; h < 4; h++) if (h !== head) assert.ok(Math.abs(after.values[1][h] - before.values[1][h]) < 1e-6);
        for (let h = 0; h < 4; h++) assert.ok(Math.abs(after.values[0][h] - before.values[0][h]) < 1e-6);
      }
    } finally {
      hook.remove();
    }
  }
});

test("HeadScores renders as a layer × head grid, prints a table, serialises; errors are clear", () => {
  const scores = attention.inductionHeads({ seqLen: 6, nSeqs: 1 });
  assert.equal(scores.values.length, 2);
  assert.equal(scores.values[0].length, 4);
  const bundle = scores.toMimeBundle();
  assert.ok("application/vnd.plotly.v1+json" in bundle, `bundle keys ${Object.keys(bundle)}`);
  assert.match(String(bundle["text/plain"]), /induction/i);
  assert.match(scores.toString(), /HeadScores\(induction score of every layer × head; 1 generated sequence A A, \|A\| = 6, seed 0\)\n\s+H0\s+H1\s+H2\s+H3\nL0 /);
  const json = JSON.parse(JSON.stringify(scores));
  assert.deepEqual(json.values, scores.values);
  assert.equal(scores.top(3).length, 3);
  assert.ok(scores.top(8).every((e, i, a) => i === 0 || a[i - 1].score >= e.score));
  throwsArrakis(() => scores.top(0), /k must be an integer ≥ 1/);
  throwsArrakis(() => scores.at(2, 0), /no head L2H0/);
  throwsArrakis(() => attention.inductionHeads([1, 2, 3, 4]), /no query position with a target for the induction detector \(no token occurs twice\)/);
  throwsArrakis(() => attention.previousTokenHeads([5]), /it needs at least 2 tokens/);
  throwsArrakis(() => attention.inductionHeads([1, 2, 1], { seqLen: 4 }), /do not apply when an input is given/);
  throwsArrakis(() => attention.inductionHeads({ seqlen: 4 } as never), /unknown option "seqlen"/);
});

const embedded = path.join(repoRoot, "src", "assets", "induction-2l");
const noEmbedded = !fs.existsSync(path.join(embedded, "config.json")) && "embedded model not built yet";

test("the embedded model: a clear previous-token head in layer 0", { skip: noEmbedded }, async () => {
  const m = await HookedAutoModel.fromPretrained();
  try {
    const [prev] = new AttentionTools(m).previousTokenHeads().top(1);
    assert.equal(prev.layer, 0);
    assert.ok(prev.score > 0.5, `previous-token score ${prev.score}: most of the head's attention is on the previous token`);
  } finally {
    m.dispose();
  }
});

// Issue 6's requirement for the shipped model, measured with the project's own tools on held-out sequences
// (a different seed from the training script's own check in src/train/circuit.ts).
test("the embedded model: an induction head in layer 1 whose ablation costs >= 1 nat on the repeated half", { skip: noEmbedded }, async () => {
  const m = await HookedAutoModel.fromPretrained();
  try {
    const tools = new AttentionTools(m);
    const ind = tools.inductionHeads().top(1)[0];
    assert.equal(ind.layer, 1);
    assert.ok(ind.score > 0.5, `induction score ${ind.score}`);
    const n = 20;
    const seqs = repeatedSequences(8, n, 4242, m.cfg.dVocab); // held-out: <bos> A A
    const halves = () => {
      const perToken = m.loss(seqs, { perToken: true }); // perToken[i] predicts token i + 1
      const mean = (a: number, b: number) => perToken.flatMap((r) => r.slice(a, b)).reduce((x, y) => x + y, 0) / (seqs.length * (b - a));
      return { first: mean(1, n), repeated: mean(n + 1, 2 * n) };
    };
    const clean = halves();
    const ablated = tools.withAblatedHead(ind.layer, ind.head, halves);
    assert.ok(ablated.repeated - clean.repeated >= 1, `repeated half: ${clean.repeated} → ${ablated.repeated}`);
    assert.ok(Math.abs(ablated.first - clean.first) < 0.2, `first half: ${clean.first} → ${ablated.first}`);
    // Its pattern: a token of the second copy puts most weight on the token after its earlier occurrence.
    const p = tools.attentionPatterns(seqs[0], ind.layer, ind.head);
    const onTarget = Array.from({ length: n - 1 }, (_, j) => p.values[n + 1 + j][2 + j]);
    p.dispose();
    assert.ok(onTarget.reduce((a, b) => a + b, 0) / onTarget.length > 0.5, `weight on the induction target ${onTarget}`);
  } finally {
    m.dispose();
  }
});
