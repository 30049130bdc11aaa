/**
 * Numerical parity with Hugging Face: the fixtures in test/fixtures/hf were produced by the real
 * transformers code (see their README). Tolerances are the project's targets: 1e-4 on logits, hidden states
 * and losses, 1e-5 on attention probabilities.
 */
import { test, before } from "node:test";
import * as assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { HookedAutoModel, initBackend, readSafetensors } from "../src";
import type { LoadedTensor } from "../src/io/safetensors";
import { hfFixture, maxAbsDiff } from "./helpers";

before(async () => {
  await initBackend();
});

for (const arch of ["gpt2", "llama"] as const) {
  const load = async () => {
    const model = await HookedAutoModel.fromPretrained(hfFixture(arch));
    const ref = readSafetensors(`${hfFixture(arch)}/reference.safetensors`).tensors;
    const ids = ref.get("input_ids")!.data;
    const rows = [Array.from(ids.slice(0, 16)), Array.from(ids.slice(16, 32))];
    return { model, ref, rows };
  };
  const r = (ref: Map<string, LoadedTensor>, name: string) => ref.get(name)!.data;

  test(`${arch}: logits, patterns, z, hidden states match Hugging Face`, async () => {
    const { model, ref, rows } = await load();
    const { logits, cache } = model.runWithCache(rows);
    try {
      assert.deepEqual(logits.shape, [2, 16, 512]);
      assert.ok(maxAbsDiff(logits.dataSync(), r(ref, "logits")) <= 1e-4, "logits");
      for (let l = 0; l < 2; l++) {
        const pattern = maxAbsDiff(cache.get(`blocks.${l}.attn.hook_pattern`).dataSync(), r(ref, `attentions.${l}`));
        assert.ok(pattern <= 1e-5, `layer ${l} pattern error ${pattern}`);
        const z = maxAbsDiff(cache.get(`blocks.${l}.attn.hook_z`).dataSync(), r(ref, `attn_out_proj_input.${l}`));
        assert.ok(z <= 1e-4, `layer ${l} z error ${z}`);
        const hs = maxAbsDiff(cache.get(`blocks.${l}.hook_resid_pre`).dataSync(), r(ref, `hidden_states.${l}`));
        assert.ok(hs <= 1e-4, `hidden_states.${l} error ${hs}`);
      }
      // HF's last hidden_states entry is the final-norm output; the raw last-layer output is separate.
      assert.ok(maxAbsDiff(cache.get("ln_final.hook_normalized").dataSync(), r(ref, "hidden_states.2")) <= 1e-4);
      assert.ok(maxAbsDiff(cache.get("blocks.1.hook_resid_post").dataSync(), r(ref, "last_layer_output")) <= 1e-4);
    } finally {
      cache.dispose();
      logits.dispose();
      model.dispose();
    }
  });

  test(`${arch}: per-sequence loss matches loss.clean`, async () => {
    const { model, ref, rows } = await load();
    const perToken = model.loss(rows, { perToken: true });
    const perSeq = perToken.map((row) => row.reduce((a, b) => a + b, 0) / row.length);
    assert.ok(maxAbsDiff(perSeq, r(ref, "loss.clean")) <= 1e-4, `loss ${perSeq}`);
    model.dispose();
  });

  test(`${arch}: zeroing layer 0 head 1 of hook_z reproduces ablated.logits and loss.ablated`, async () => {
    const { model, ref, rows } = await load();
    const zeroHead1 = (z: tf.Tensor) => {
      const mask = tf.tensor1d(Array.from({ length: model.cfg.nHeads }, (_, h) => (h === 1 ? 0 : 1))).reshape([1, 1, -1, 1]);
      return tf.mul(z, mask); // [batch, pos, head, d_head]
    };
    const logits = model.runWithHooks(rows, [["blocks.0.attn.hook_z", zeroHead1]]);
    assert.ok(maxAbsDiff(logits.dataSync(), r(ref, "ablated.logits")) <= 1e-4, "ablated logits");
    assert.equal(model.hookCount, 0, "temporary hook removed");
    const losses = (await import("../src/model/hooked-model")).tokenLosses(logits, rows).map((row) => row.reduce((a, b) => a + b, 0) / row.length);
    assert.ok(maxAbsDiff(losses, r(ref, "loss.ablated")) <= 1e-4, `ablated loss ${losses}`);
    logits.dispose();
    model.dispose();
  });
}
