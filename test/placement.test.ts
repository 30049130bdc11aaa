/**
 * Where a model's weights live (src/engine/placement.ts): models of 1 GiB and more, or too big for the wasm
 * heap, keep their weights in JS memory when onnxruntime runs them; small ones stay in the heap. A model fed
 * in place computes what the TF.js engine and the initializer path compute, hooks and a merge included, and
 * frees every tensor on dispose. The huge-page report says whether large allocations get 2 MiB pages.
 */
import { before, test } from "node:test";
import * as assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { AttentionTools, HookedAutoConfig, HookedAutoModel, engineReport, initBackend, modelSize } from "../src";
import { HUGE_PAGES_ENV, hugePagesState } from "../src/engine/huge-pages";
import { IN_PLACE_MIN_BYTES, onCpuBackend, weightsOutsideWasm } from "../src/engine/placement";
import { initParams } from "../src/model/init";
import { tidyParams } from "../src/model/params";
import { maxAbsDiff } from "./helpers";

let ortAvailable = false;
before(async () => {
  await initBackend();
  ortAvailable = engineReport().startsWith("engine: ort");
});

const llama = (hidden: number, layers: number, vocab: number, mlp = 4 * hidden) =>
  new HookedAutoConfig({ name: "llama", hidden_size: hidden, num_hidden_layers: layers, num_attention_heads: 4, num_key_value_heads: 2, intermediate_size: mlp, vocab_size: vocab, max_position_embeddings: 64, tie_word_embeddings: true });

test("weights go in place from 1 GiB on onnxruntime, stay in the wasm heap below it and on TF.js", { skip: tf.getBackend() !== "wasm" && "needs the wasm backend" }, (t) => {
  if (!ortAvailable) return t.skip("onnxruntime is not available here");
  const small = llama(64, 2, 100).dims;
  // Qwen2.5-0.5B-like: 1.84 GiB of weights (+ the tied unembedding's copy), fits the heap, goes in place
  const half = new HookedAutoConfig({ name: "qwen2", hidden_size: 896, num_hidden_layers: 24, num_attention_heads: 14, num_key_value_heads: 2, intermediate_size: 4864, vocab_size: 151936, tie_word_embeddings: true }).dims;
  // under the threshold: a 2-layer model holding 0.75 GB
  const under = llama(2048, 2, 16000).dims;
  assert.ok(modelSize(under).heldBytes < IN_PLACE_MIN_BYTES && modelSize(half).heldBytes >= IN_PLACE_MIN_BYTES);
  assert.equal(weightsOutsideWasm(small, "ort"), false);
  assert.equal(weightsOutsideWasm(under, "ort"), false);
  assert.equal(weightsOutsideWasm(half, "ort"), true);
  assert.equal(weightsOutsideWasm(half, "tfjs"), false, "the TF.js engine computes on the heap");
});

test("a model fed in place matches the initializer path and the TF.js engine, with hooks and a merge", (t) => {
  if (!ortAvailable) return t.skip("onnxruntime is not available here");
  const config = llama(64, 2, 300);
  const baseline = tf.memory().numTensors;
  const inPlace = new HookedAutoModel(config, { engine: "ort", weightsInJsMemory: true }, onCpuBackend(() => tidyParams(() => initParams(config.dims, 5))));
  const onHeap = new HookedAutoModel(config, { engine: "ort", seed: 5 });
  const tfjs = new HookedAutoModel(config, { engine: "tfjs", seed: 5 });
  try {
    assert.equal(inPlace.engine, "ort");
    assert.ok(inPlace.params.wE.dataSync().every((v, i) => v === onHeap.params.wE.dataSync()[i]), "same seed, same weights wherever they live");
    const rows = [[1, 7, 42, 299, 3, 3, 150, 8], [0, 2, 4, 6, 8, 10, 12, 14]];
    const names = (n: string) => n.endsWith("hook_pattern") || n.endsWith("hook_resid_post");
    const runs = [inPlace, onHeap, tfjs].map((m) => m.runWithCache(rows, { names }));
    try {
      for (const other of runs.slice(1)) {
        assert.ok(maxAbsDiff(runs[0].logits.dataSync(), other.logits.dataSync()) < 1e-5);
        assert.ok(maxAbsDiff(runs[0].cache.values("blocks.1.attn.hook_pattern"), other.cache.values("blocks.1.attn.hook_pattern")) < 1e-6);
      }
    } finally {
      runs.forEach((r) => (r.logits.dispose(), r.cache.dispose()));
    }
    // A hook that zeroes head 1's z in layer 0, and a merge, on both engines.
    for (const m of [inPlace, tfjs]) {
      m.addHook("blocks.0.attn.hook_z", (z) => tf.tidy(() => z.mul(tf.tensor([1, 0, 1, 1]).reshape([1, 1, 4, 1]))));
    }
    const hooked = [inPlace, tfjs].map((m) => m.forward(rows));
    assert.ok(maxAbsDiff(hooked[0].dataSync(), hooked[1].dataSync()) < 1e-5, "a hook cut works in place");
    tf.dispose(hooked);
    [inPlace, tfjs].forEach((m) => m.resetHooks());
    // A weight merge reaches the in-place weights (and its restore brings back the exact clean logits).
    const logits = (m: HookedAutoModel) => {
      const y = m.forward(rows);
      const v = Array.from(y.dataSync());
      y.dispose();
      return v;
    };
    const merged = [inPlace, tfjs].map((m) => {
      const clean = logits(m);
      const merge = new AttentionTools(m).mergeHeads(1, 0, 1, 0.5, { mode: "weights" });
      const loss = m.loss(rows);
      merge.restore();
      return { clean, loss, restored: logits(m) };
    });
    assert.ok(Math.abs(merged[0].loss - merged[1].loss) < 1e-5, `merged loss ${merged[0].loss} vs ${merged[1].loss}`);
    assert.deepEqual(merged[0].restored, merged[0].clean, "restore is bit-exact in place");
  } finally {
    [inPlace, onHeap, tfjs].forEach((m) => m.dispose());
  }
  assert.equal(tf.memory().numTensors, baseline, "every weight freed, wherever it lived");
});

test("huge pages: on with the tunable under madvise, or under always; off otherwise, saying how to turn them on", () => {
  const on = { GLIBC_TUNABLES: HUGE_PAGES_ENV.GLIBC_TUNABLES };
  assert.match(hugePagesState(on, "madvise", "linux"), /^on \(glibc\.malloc\.hugetlb=1, kernel policy madvise\)/);
  assert.match(hugePagesState({ GLIBC_TUNABLES: `glibc.malloc.arena_max=2:${HUGE_PAGES_ENV.GLIBC_TUNABLES}` }, "madvise", "linux"), /^on/);
  assert.match(hugePagesState({}, "madvise", "linux"), /^off .*start Node with GLIBC_TUNABLES=glibc\.malloc\.hugetlb=1/);
  assert.match(hugePagesState({}, "always", "linux"), /^on \(kernel policy always\)/);
  assert.match(hugePagesState(on, "never", "linux"), /^off \(kernel policy never\)/);
  assert.equal(hugePagesState(on, "madvise", "darwin"), "not Linux");
});
