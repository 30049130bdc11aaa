/**
 * Head detectors (src/tools/detectors.ts): the target sets, the seeded probe sequences, scores against a
 * plain-JS recomputation from the cached patterns, and heads forced (through a hook on hook_pattern) to be
 * a perfect previous-token / induction / duplicate-token head, which must score exactly 1; and the embedded
 * model's circuit over the generalisation grid of its training script.
 */
import { test, before, after } from "node:test";
import * as assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { HookedAutoModel, initBackend } from "../src";
import { ArrakisError } from "../src/errors";
import { AttentionTools, detectionTargets, repeatedRandomTokens, type DetectorKind } from "../src/tools";
import { hfFixture } from "./helpers";
import { gridLengths, gridProblems, inductionGrid } from "../scripts/train/grid";

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
  assert.match(scores.toString(), /^HeadScores\(induction score of every layer × head; 1 generated sequence A A, \|A\| = 6, seed 0\)\n2 layers × 4 heads of induction score\nhighest: L\dH\d [\d.]+,[^\n]*\nlowest: [^\n]*\nlayer\s+H0\s+H1\s+H2\s+H3\nL0 /);
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

// The shipped model's circuit over the generalisation grid (scripts/train/grid.ts), with the project's own
// model and tools: every segment length from 3 to the longest that fits twice, offsets sampled at the first,
// a middle and the last position, two copies and as many as fit, two sequences per cell, a seed other than
// the training script's own check (which covers every offset; its figures are in the model card).
test("the embedded model: its induction circuit copies every repeated segment of the grid", async () => {
  const m = await HookedAutoModel.fromPretrained();
  try {
    const baseline = tf.memory().numTensors;
    const r = inductionGrid(m, { samples: 2, seed: 97, offsets: (_n, max) => [...new Set([0, Math.floor(max / 2), max])] });
    assert.equal(tf.memory().numTensors, baseline, "the grid leaves no tensors behind");
    assert.deepEqual([...new Set(r.cells.map((c) => c.n))], gridLengths(m.cfg.nCtx), "every segment length");
    assert.ok(r.cells.some((c) => c.copies >= 3) && r.cells.some((c) => c.offset > 0 && c.copies === 2));
    assert.deepEqual(gridProblems(r), []);
    const [pl, ph] = r.prevTokenHead;
    assert.equal(pl, 0, "previous-token head in layer 0");
    assert.ok(r.prevToken[pl][ph] > 0.5, `previous-token score ${r.prevToken[pl][ph]}`);
    assert.ok(r.inductionHeads.every(([l]) => l === 1), `induction heads ${r.inductionHeads} in layer 1`);
  } finally {
    m.dispose();
  }
});

// A user's own short sentence, repeated: the induction head's stripe is there (the tour's claim).
test("the embedded model: a short repeated sentence shows the induction stripe", async () => {
  const m = await HookedAutoModel.fromPretrained();
  try {
    const tools = new AttentionTools(m);
    const text = "the king gave the old dog a red apple";
    const ids = m.tokenRows(`${text} ${text}`)[0]; // <bos> + 9 words twice
    assert.equal(ids.length, 19);
    const [ind] = tools.inductionHeads(`${text} ${text}`).top(1);
    assert.ok(ind.score > 0.5, `induction score ${ind.score} on the repeated sentence`);
    const p = tools.attentionPatterns(ids, ind.layer, ind.head);
    const n = 9; // word j of the first copy is at position 1 + j, of the second at 1 + n + j
    // "the" occurs twice inside the sentence, so its queries have two targets; take the other words.
    const onTarget = [1, 2, 4, 5, 6, 7, 8].map((j) => p.values[1 + n + j][j + 2]);
    p.dispose();
    assert.ok(onTarget.every((w) => w > 0.5), `weight on the token after the first occurrence: ${onTarget}`);
  } finally {
    m.dispose();
  }
});
