/**
 * Scale check: a random Llama with Llama-3.2-1B's dimensions (hidden 2048, 16 layers, 32 heads, 8 kv heads,
 * MLP 8192, vocab 128,256, tied; 1.24 B parameters) built from HookedAutoConfig, then 128 tokens with every
 * attention pattern cached, on the onnxruntime engine. Prints wall and CPU time of each step, the total from
 * start to the first cached patterns, the peak RSS and the load average (the machine may be shared).
 * Needs ~7 GB free; run it with nothing else memory-heavy.
 *
 *   node --import tsx scripts/scale-llama-1b.ts        (ARRAKIS_ORT_THREADS sets onnxruntime's threads)
 *   node --import tsx scripts/scale-llama-1b.ts --model qwen2-0.5b|gpt2 --engine ort|tfjs   (other sizes, engines)
 *
 * On Linux it restarts itself with huge pages for large allocations (HUGE_PAGES_ENV, see
 * src/engine/huge-pages.ts) unless GLIBC_TUNABLES is already set: `GLIBC_TUNABLES= node …` measures without.
 */
import * as os from "node:os";
import { hugePagesState } from "../src/engine/huge-pages";
import { runWithHugePages } from "./run-with-huge-pages";

const GiB = 2 ** 30;
const peakRss = () => (process.resourceUsage().maxRSS * 1024) / GiB;
/** CPU seconds of this process so far (robust to other load on a shared machine). */
const cpuS = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

/** Wall and CPU seconds of one step, printed with what it says. */
function step<T>(label: string, fn: () => T, say: (r: T) => string = () => ""): T {
  const [w, c] = [performance.now(), cpuS()];
  const r = fn();
  const wall = (performance.now() - w) / 1000;
  console.log(`${label}: ${wall.toFixed(1)} s wall, ${(cpuS() - c).toFixed(1)} s CPU${say(r) ? `; ${say(r)}` : ""} (peak RSS ${peakRss().toFixed(2)} GiB, load ${os.loadavg()[0].toFixed(1)})`);
  return r;
}

/** Model sizes to measure (the memory table in the README): Hugging Face config fields. */
const PRESETS: Record<string, { label: string; hf: Record<string, unknown> }> = {
  "llama-1b": {
    label: "Llama-3.2-1B",
    hf: {
      name: "llama", hidden_size: 2048, num_hidden_layers: 16, num_attention_heads: 32, num_key_value_heads: 8,
      intermediate_size: 8192, vocab_size: 128256, tie_word_embeddings: true, max_position_embeddings: 131072, rope_theta: 500000,
    },
  },
  "qwen2-0.5b": {
    label: "Qwen2.5-0.5B",
    hf: {
      name: "qwen2", hidden_size: 896, num_hidden_layers: 24, num_attention_heads: 14, num_key_value_heads: 2,
      intermediate_size: 4864, vocab_size: 151936, tie_word_embeddings: true, max_position_embeddings: 32768, rope_theta: 1000000,
    },
  },
  gpt2: { label: "GPT-2 small", hf: { name: "gpt2" } },
};

/** `--name value` from the command line, or the default. */
function option(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}

async function main(): Promise<void> {
  const t0 = performance.now();
  // Loaded here, not at the top: a restart for huge pages (below) should not load the library twice.
  const tf = await import("@tensorflow/tfjs");
  const { HookedAutoConfig, HookedAutoModel, initBackend, modelSize } = await import("../src");
  await initBackend({ engine: option("--engine", "ort") as "ort" | "tfjs" });
  console.log(`backend started: ${((performance.now() - t0) / 1000).toFixed(1)} s wall; huge pages ${hugePagesState()}`);
  const preset = PRESETS[option("--model", "llama-1b")];
  if (!preset) throw new Error(`--model must be one of ${Object.keys(PRESETS).join(", ")}`);
  const config = new HookedAutoConfig(preset.hf);
  const size = modelSize(config.dims);
  console.log(`${preset.label} dims: ${(size.params / 1e9).toFixed(3)} B parameters, ${(size.bytes / GiB).toFixed(2)} GiB in float32`);
  const model = step("random init", () => new HookedAutoModel(config, { seed: 0 }), (m) =>
    `engine ${m.engine}; weights in ${m.weightsAsInputs ? "JS memory (TF.js cpu storage), fed to onnxruntime in place" : "the TF.js backend"}`);
  const ids = Array.from({ length: 128 }, (_, i) => (i * 7919 + 13) % config.dims.dVocab);
  const patterns = { names: (n: string) => n.endsWith("attn.hook_pattern") };
  const { logits, cache } = step("first runWithCache, 128 tokens, every attention pattern (sessions built)", () => model.runWithCache([ids], patterns), ({ logits, cache }) => {
    const pattern = cache.values(`blocks.${config.dims.nLayers - 1}.attn.hook_pattern`);
    let worstRow = 0;
    for (let r = 0; r < pattern.length / 128; r++) {
      let s = 0;
      for (let k = 0; k < 128; k++) s += pattern[r * 128 + k];
      worstRow = Math.max(worstRow, Math.abs(s - 1));
    }
    const finite = (logits.dataSync() as Float32Array).every(Number.isFinite);
    return `${cache.names.length} patterns; logits ${logits.shape.join("x")} finite ${finite}; pattern rows sum to 1 within ${worstRow.toExponential(1)}`;
  });
  const t3 = performance.now();
  const cpuFirst = cpuS();
  logits.dispose();
  cache.dispose();
  const again = step("second runWithCache", () => model.runWithCache([ids], patterns));
  again.logits.dispose();
  again.cache.dispose();
  console.log(`total from start to the first cached patterns: ${((t3 - t0) / 1000).toFixed(1)} s wall, ${cpuFirst.toFixed(1)} s CPU (process start included); peak RSS ${peakRss().toFixed(2)} GiB; load average ${os.loadavg().map((l) => l.toFixed(1)).join(" ")}`);
  model.dispose();
  if (tf.memory().numTensors > 0) console.log(`tf tensors left after dispose: ${tf.memory().numTensors} (the backend's own)`);
}

runWithHugePages(main);
