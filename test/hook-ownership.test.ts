/**
 * A tensor a hook returns belongs to whoever made it: activation patching returns the same cached tensor on
 * every forward pass, so the model must never dispose it. Checked at every hook point of every family (the
 * random-init models of each registered adapter, plus the Hugging Face fixture folders), twice in a row.
 */
import { before, test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { HookedAutoModel, initBackend } from "../src";
import { familyCases, INPUT_IDS, laterCases, writeCheckpoint } from "./reference/checkpoints";
import { hfFixture, scratchDir } from "./helpers";

const tmpRoot = scratchDir("arrakis-hook-own-");
before(async () => {
  await initBackend();
});

/** Caches every point once, then returns each cached tensor from a hook at its own point on two forwards. */
function checkEveryPoint(model: HookedAutoModel, label: string): void {
  const ids = [INPUT_IDS[0].slice(0, 6)];
  const { logits: clean, cache } = model.runWithCache(ids);
  const cleanValues = clean.dataSync().slice();
  clean.dispose();
  try {
    for (const name of model.hookNames) {
      const saved = cache.get(name); // owned by the cache
      const handle = model.addHook(name, () => saved);
      try {
        for (let run = 0; run < 2; run++) {
          const before = tf.memory().numTensors;
          const logits = model.forward(ids);
          assert.ok(!saved.isDisposed, `${label}: ${name} was disposed by forward #${run + 1}`);
          // Patching a point with its own clean value must give the clean logits back.
          const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(logits, tf.tensor(cleanValues, logits.shape)))).dataSync()[0]);
          logits.dispose();
          assert.ok(diff <= 1e-5, `${label}: ${name} patched with its own value changed logits by ${diff}`);
          assert.equal(tf.memory().numTensors, before, `${label}: ${name} leaked tensors`);
        }
      } finally {
        handle.remove();
      }
    }
  } finally {
    cache.dispose();
  }
}

test("hook-returned tensors survive the forward pass, at every point of every family", async () => {
  const dirs = [...familyCases(), ...laterCases()].map((c, i) => {
    const dir = path.join(tmpRoot, `${i}`);
    writeCheckpoint(c, dir, 500 + i);
    return { label: c.label, dir };
  });
  dirs.push({ label: "gpt2 fixture", dir: hfFixture("gpt2") }, { label: "llama fixture", dir: hfFixture("llama") });
  for (const { label, dir } of dirs) {
    const model = await HookedAutoModel.fromPretrained(dir);
    try {
      checkEveryPoint(model, label);
    } finally {
      model.dispose();
    }
  }
});
