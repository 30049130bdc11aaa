/**
 * The wasm fast path (2-D matMuls, heap-view slicing, threads): parity with the Hugging Face fixture with threaded wasm on and off, the
 * heap-view Slice/Unpack/SplitV kernels against the cpu backend, and the ActivationCache that lives outside
 * the backend. Threads are chosen once per process, so each setting runs in a child process (this file,
 * re-run with ARRAKIS_FASTPATH_CHILD=1). No wall-clock time is asserted anywhere: speed is `npm run bench`.
 *
 *   node --test --import tsx test/fastpath.test.ts
 */
import { before, describe, test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { HookedAutoConfig, HookedAutoModel, initBackend, readSafetensors } from "../src";
import { wasmThreads } from "../src/backend";
import { hfFixture, maxAbsDiff, reportToParent, runChildReport } from "./helpers";

/** What a child reports about its backend and the fixture. */
interface ChildReport {
  backend: string;
  threads: { used: boolean; count: number; reason: string };
  logitsDiff: number;
  patternDiff: number;
  zDiff: number;
  sliceMismatches: number;
  sliceTrials: number;
  logits: number[];
}

// ------------------------------------------------------------------ child

/** The report of one child: its backend, and the fixture's logits, patterns and z against the HF dump. */
async function child(): Promise<ChildReport> {
  const backend = await initBackend();
  const dir = hfFixture("gpt2");
  const ref = readSafetensors(`${dir}/reference.safetensors`).tensors;
  const ids = ref.get("input_ids")!.data;
  const rows = [Array.from(ids.slice(0, ids.length / 2)), Array.from(ids.slice(ids.length / 2))];
  const m = await HookedAutoModel.fromPretrained(dir);
  const { logits, cache } = m.runWithCache(rows);
  const report: ChildReport = {
    backend,
    threads: { ...wasmThreads() },
    logitsDiff: maxAbsDiff(logits.dataSync(), ref.get("logits")!.data),
    patternDiff: Math.max(...[0, 1].map((l) => maxAbsDiff(cache.values(`blocks.${l}.attn.hook_pattern`), ref.get(`attentions.${l}`)!.data))),
    zDiff: Math.max(...[0, 1].map((l) => maxAbsDiff(cache.values(`blocks.${l}.attn.hook_z`), ref.get(`attn_out_proj_input.${l}`)!.data))),
    ...sliceAgainstCpu(),
    logits: Array.from(logits.dataSync()),
  };
  cache.dispose();
  logits.dispose();
  m.dispose();
  return report;
}

/** slice / unstack / split on the current backend against the cpu backend, on seeded random shapes. */
function sliceAgainstCpu(): { sliceMismatches: number; sliceTrials: number } {
  const main = tf.getBackend();
  let seed = 7;
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % n;
  };
  let mismatches = 0;
  const trials = 200;
  for (let trial = 0; trial < trials; trial++) {
    const rank = 1 + rand(4);
    const shape = Array.from({ length: rank }, () => 1 + rand(6));
    const values = Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => i * 1.5 - 3);
    const begin = shape.map((d) => rand(d));
    const size = shape.map((d, i) => (rand(3) === 0 ? -1 : 1 + rand(d - begin[i])));
    const axis = rand(rank);
    const run = (name: string): string => {
      tf.setBackend(name);
      return JSON.stringify(
        tf.tidy(() => {
          const x = tf.tensor(values, shape);
          const parts = shape[axis] >= 2 ? [1, shape[axis] - 1] : 1;
          return [tf.slice(x, begin, size), ...tf.unstack(x, axis), ...tf.split(x, parts, axis)].map((t) => [t.shape, Array.from(t.dataSync())]);
        }),
      );
    };
    if (run(main) !== run("cpu")) mismatches++;
  }
  tf.setBackend(main);
  return { sliceMismatches: mismatches, sliceTrials: trials };
}

/** This file again in a child process with `env`: wasm threads are chosen once per process. */
const runChild = (env: NodeJS.ProcessEnv) => runChildReport<ChildReport>(__filename, { ...env, ARRAKIS_FASTPATH_CHILD: "1" });

// ------------------------------------------------------------------ tests

if (process.env.ARRAKIS_FASTPATH_CHILD) {
  void reportToParent(child);
} else {
  describe("wasm fast path, threaded and not (child processes)", () => {
    let single: ChildReport;
    let threaded: ChildReport;
    before(async () => {
      [single, threaded] = await Promise.all([
        runChild({ ARRAKIS_BACKEND: "wasm", ARRAKIS_WASM_THREADS: "0" }),
        runChild({ ARRAKIS_BACKEND: "wasm", ARRAKIS_WASM_THREADS: "2" }),
      ]);
    });

    test("single-threaded: logits match the HF fixture to 1e-4, patterns to 1e-5", (t) => {
      t.diagnostic(`single-threaded: logits ${single.logitsDiff}, patterns ${single.patternDiff}, z ${single.zDiff}`);
      assert.equal(single.backend, "wasm");
      assert.equal(single.threads.used, false);
      assert.match(single.threads.reason, /ARRAKIS_WASM_THREADS=0/);
      assert.ok(single.logitsDiff <= 1e-4, `logits max-abs ${single.logitsDiff}`);
      assert.ok(single.patternDiff <= 1e-5, `pattern max-abs ${single.patternDiff}`);
      assert.ok(single.zDiff <= 1e-4, `z max-abs ${single.zDiff}`);
    });

    test("threaded: logits match the HF fixture to 1e-4 and the single-threaded logits", (t) => {
      assert.equal(threaded.backend, "wasm");
      if (!threaded.threads.used) {
        // The self-check refused (or the runtime has no SharedArrayBuffer): the fallback must say why.
        assert.ok(threaded.threads.reason.length > 0);
        t.skip(`threaded wasm not used here: ${threaded.threads.reason}`);
        return;
      }
      const vsSingle = maxAbsDiff(threaded.logits, single.logits);
      t.diagnostic(`threaded (${threaded.threads.count}): logits ${threaded.logitsDiff}, patterns ${threaded.patternDiff}; vs single-threaded ${vsSingle}`);
      assert.equal(threaded.threads.count, 2);
      assert.ok(threaded.logitsDiff <= 1e-4, `logits max-abs ${threaded.logitsDiff}`);
      assert.ok(threaded.patternDiff <= 1e-5, `pattern max-abs ${threaded.patternDiff}`);
      assert.ok(vsSingle <= 1e-5, `threaded vs single-threaded logits max-abs ${vsSingle}`);
    });

    test("slice, unstack and split on wasm (heap-view kernels) equal the cpu backend", () => {
      for (const r of [single, threaded]) assert.equal(r.sliceMismatches, 0, `${r.sliceMismatches} of ${r.sliceTrials} random slices differ (threads ${r.threads.count})`);
    });
  });

  describe("ActivationCache outside the backend", () => {
    const tiny = () => new HookedAutoConfig({ name: "gpt2", n_layer: 2, n_head: 4, n_embd: 32, vocab_size: 64, n_positions: 16 });

    test("runWithCache with a names filter keeps only those names", async () => {
      await initBackend();
      const m = new HookedAutoModel(tiny(), { seed: 3 });
      const names = ["blocks.1.attn.hook_pattern", "blocks.0.mlp.hook_post", "ln_final.hook_normalized"];
      const { logits, cache } = m.runWithCache([1, 2, 3, 4], { names });
      assert.deepEqual([...cache.names].sort(), [...names].sort());
      for (const n of m.hookNames) assert.equal(cache.has(n), names.includes(n), n);
      assert.deepEqual(cache.shape("blocks.1.attn.hook_pattern"), [1, 4, 4, 4]);
      assert.equal(cache.bytes, (4 * 4 * 4 + 4 * 128 + 4 * 32) * 4, "only the three activations are held"); // pattern, mlp post, ln_final
      const pred = m.runWithCache([1, 2, 3], { names: (n) => n.startsWith("blocks.0.attn.hook_") && n.endsWith("_z") });
      assert.deepEqual(pred.cache.names, ["blocks.0.attn.hook_z"]);
      tf.dispose([logits, pred.logits]);
      cache.dispose();
      pred.cache.dispose();
      m.dispose();
    });

    test("values are copied out as made; get() makes one cache-owned tensor that survives tf.tidy", async () => {
      await initBackend();
      const m = new HookedAutoModel(tiny(), { seed: 4 });
      const base = tf.memory().numTensors;
      const { logits, cache } = m.runWithCache([5, 6, 7]);
      logits.dispose();
      assert.equal(tf.memory().numTensors, base, "the cache holds no tensors until get()");
      const name = "blocks.0.attn.hook_pattern";
      const viaTidy = tf.tidy(() => cache.get(name));
      assert.equal(viaTidy.isDisposed, false, "a tensor made inside tf.tidy belongs to the cache, not the tidy");
      assert.equal(cache.get(name), viaTidy, "get() returns the same tensor each time");
      assert.deepEqual(Array.from(viaTidy.dataSync()), Array.from(cache.values(name)));
      assert.equal(tf.memory().numTensors, base + 1);
      cache.dispose();
      assert.equal(viaTidy.isDisposed, true);
      assert.equal(tf.memory().numTensors, base, "dispose() frees what get() made");
      assert.throws(() => cache.get(name), /disposed/);
      m.dispose();
    });
  });
}
