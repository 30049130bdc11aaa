/**
 * Scale check: a random Llama with Llama-3.2-1B's dimensions (hidden 2048, 16 layers, 32 heads, 8 kv heads,
 * MLP 8192, vocab 128,256, tied; 1.24 B parameters) built from HookedAutoConfig, then 128 tokens with every
 * attention pattern cached, on the onnxruntime engine. Prints the time of each step, the total and the peak RSS.
 * Needs ~7 GB free (the weights in JS memory, activations on top); run it with nothing else memory-heavy.
 *
 *   node --import tsx scripts/scale-llama-1b.ts        (ARRAKIS_ORT_THREADS sets onnxruntime's threads)
 */
import * as tf from "@tensorflow/tfjs";
import { HookedAutoConfig, HookedAutoModel, initBackend, modelSize } from "../src";

const GiB = 2 ** 30;
const peakRss = () => (process.resourceUsage().maxRSS * 1024) / GiB;
/** CPU seconds of this process so far (robust to other load on a shared machine). */
const cpuS = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

async function main(): Promise<void> {
  const t0 = performance.now();
  await initBackend({ engine: "ort" });
  const config = new HookedAutoConfig({
    name: "llama", hidden_size: 2048, num_hidden_layers: 16, num_attention_heads: 32, num_key_value_heads: 8,
    intermediate_size: 8192, vocab_size: 128256, tie_word_embeddings: true, max_position_embeddings: 131072, rope_theta: 500000,
  });
  const size = modelSize(config.dims);
  console.log(`Llama-3.2-1B dims: ${(size.params / 1e9).toFixed(3)} B parameters, ${(size.bytes / GiB).toFixed(2)} GiB in float32`);
  const t1 = performance.now();
  const model = new HookedAutoModel(config, { seed: 0 });
  const t2 = performance.now();
  console.log(`random init: ${((t2 - t1) / 1000).toFixed(1)} s (engine ${model.engine}; weights in ${model.weightsAsInputs ? "JS memory (TF.js cpu storage), fed to onnxruntime in place" : "the TF.js backend"}); peak RSS ${peakRss().toFixed(2)} GiB`);
  const ids = Array.from({ length: 128 }, (_, i) => (i * 7919 + 13) % 128256);
  const { logits, cache } = model.runWithCache([ids], { names: (n) => n.endsWith("attn.hook_pattern") });
  const t3 = performance.now();
  const pattern = cache.values("blocks.15.attn.hook_pattern");
  let worstRow = 0;
  for (let r = 0; r < pattern.length / 128; r++) {
    let s = 0;
    for (let k = 0; k < 128; k++) s += pattern[r * 128 + k];
    worstRow = Math.max(worstRow, Math.abs(s - 1));
  }
  const finite = (logits.dataSync() as Float32Array).every(Number.isFinite);
  console.log(`runWithCache, 128 tokens, ${cache.names.length} attention patterns cached: ${((t3 - t2) / 1000).toFixed(1)} s (first run: sessions built); logits ${logits.shape.join("x")} finite ${finite}; pattern rows sum to 1 within ${worstRow.toExponential(1)}`);
  logits.dispose();
  cache.dispose();
  const t4 = performance.now();
  const again = model.runWithCache([ids], { names: (n) => n.endsWith("attn.hook_pattern") });
  const t5 = performance.now();
  again.logits.dispose();
  again.cache.dispose();
  console.log(`second runWithCache: ${((t5 - t4) / 1000).toFixed(1)} s`);
  console.log(`total from start to the first cached patterns: ${((t3 - t0) / 1000).toFixed(1)} s wall; CPU ${cpuS().toFixed(1)} s for everything (load average ${require("node:os").loadavg()[0].toFixed(1)}); peak RSS ${peakRss().toFixed(2)} GiB; tf tensors ${tf.memory().numTensors}`);
  model.dispose();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
