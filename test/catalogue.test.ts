/**
 * The configs of the small checkpoints researchers load most (test/fixtures/configs, as published on their
 * model pages): each parses as `fromPretrained` reads it, its parameter count from the config matches the
 * published count, and a copy with only the sizes shrunk loads from a checkpoint in Hugging Face's format and
 * runs at parity with the float64 reference (logits, attention probabilities, and a head ablated at hook_z).
 */
import { after, before, describe, test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { HookedAutoConfig, HookedAutoModel, initBackend, modelSize } from "../src";
import { catalogueCase } from "./reference/catalogue";
import { INPUT_IDS, writeCheckpoint } from "./reference/checkpoints";
import { referenceForward } from "./reference/hf-reference";
import { maxAbsDiff } from "./helpers";

const CONFIGS = path.join(__dirname, "fixtures", "configs");
const tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), "arrakis-catalogue-"));
before(async () => {
  await initBackend();
});
after(() => fs.rmSync(tmpRoot, { recursive: true, force: true }));

/**
 * File, Arrakis family, and the parameter count Hugging Face reports for the checkpoint
 * (`model.num_parameters()`; tied embeddings counted once).
 */
const CATALOGUE: [file: string, family: string, published: number][] = [
  ["gpt2", "gpt2", 124_439_808],
  ["pythia-70m", "gpt-neox", 70_426_624],
  ["pythia-160m", "gpt-neox", 162_322_944],
  ["llama-3.2-1b", "llama", 1_235_814_400],
  ["smollm2-135m", "llama", 134_515_008],
  ["tinyllama-1.1b-chat-v1.0", "llama", 1_100_048_384],
  ["qwen2.5-0.5b", "qwen2", 494_032_768],
  ["qwen3-0.6b", "qwen3", 596_049_920],
  ["gemma-2-2b", "gemma2", 2_614_341_888],
  ["gemma-3-270m", "gemma3", 268_098_176],
  ["gemma-3-1b", "gemma3", 999_885_952],
  ["phi-3.5-mini-instruct", "phi3", 3_821_079_552],
  ["phi-2", "phi", 2_779_683_840],
  ["mistral-7b-v0.1", "mistral", 7_241_732_096],
  ["olmo-2-0425-1b", "olmo2", 1_484_916_736],
];

const read = (file: string) => JSON.parse(fs.readFileSync(path.join(CONFIGS, `${file}.json`), "utf8"));
const maxAbs = (a: ArrayLike<number>) => Array.prototype.reduce.call(a, (m: number, v: number) => Math.max(m, Math.abs(v)), 0) as number;
const report: string[] = [];
after(() => console.log(["config | family | params (ours) | published | logits | patterns | ablated logits", ...report].join("\n")));

describe("published configs parse and give the published parameter count", () => {
  for (const [file, family, published] of CATALOGUE) {
    test(file, () => {
      const hf = read(file);
      const config = new HookedAutoConfig({ ...hf, name: String(hf.model_type) }, { strict: false });
      assert.equal(config.name, family);
      const { params } = modelSize(config.dims);
      assert.equal(params, published);
    });
  }
});

describe("each config shrunk to 2 layers × 64 runs at parity with the float64 reference", () => {
  CATALOGUE.forEach(([file, family, published], index) => {
    test(file, async () => {
      const c = catalogueCase(file, read(file), family);
      const dir = path.join(tmpRoot, file);
      writeCheckpoint(c, dir, 3000 + index);
      const ref = referenceForward(dir, INPUT_IDS);
      const refAbl = referenceForward(dir, INPUT_IDS, { layer: 0, head: 1 });
      const model = await HookedAutoModel.fromPretrained(dir);
      const before = tf.memory().numTensors;
      try {
        assert.equal(model.cfg.family, family);
        const { logits, cache } = model.runWithCache(INPUT_IDS, { names: (n) => n.endsWith("hook_pattern") || n.endsWith("hook_attn_scores") });
        const ablated = model.runWithHooks(INPUT_IDS, [["blocks.0.attn.hook_z", (z: tf.Tensor) => tf.mul(z, tf.tensor4d([1, 0, 1, 1], [1, 1, 4, 1]))]]);
        try {
          const e = { logits: maxAbsDiff(logits.dataSync(), ref.logits), ablated: maxAbsDiff(ablated.dataSync(), refAbl.logits), pattern: 0 };
          assert.ok(e.logits <= Math.max(1e-4, 1e-5 * maxAbs(ref.logits)), `logits error ${e.logits}`);
          assert.ok(e.ablated <= Math.max(1e-4, 1e-5 * maxAbs(refAbl.logits)), `ablated logits error ${e.ablated}`);
          assert.ok(maxAbsDiff(ref.logits, refAbl.logits) > 1e-2, "the ablation changes the output");
          for (let l = 0; l < 2; l++) {
            const p = maxAbsDiff(cache.get(`blocks.${l}.attn.hook_pattern`).dataSync(), ref.attentions[l]);
            const scores = cache.get(`blocks.${l}.attn.hook_attn_scores`).dataSync().filter((s) => s > -1e30);
            assert.ok(p <= Math.max(1e-5, 1e-6 * maxAbs(scores)), `layer ${l} pattern error ${p}`);
            e.pattern = Math.max(e.pattern, p);
          }
          const ours = modelSize(new HookedAutoConfig({ ...read(file), name: family }, { strict: false }).dims).params;
          report.push(`${file} | ${family} | ${ours} | ${published} | ${e.logits.toExponential(1)} | ${e.pattern.toExponential(1)} | ${e.ablated.toExponential(1)}`);
        } finally {
          tf.dispose([logits, ablated]);
          cache.dispose();
        }
        assert.equal(tf.memory().numTensors, before);
      } finally {
        model.dispose();
      }
    });
  });
});
