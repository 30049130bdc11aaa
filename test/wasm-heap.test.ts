/**
 * A full wasm heap gives a clear ArrakisError, never zeros or stale values.
 *
 * The wasm heap holds at most 4 GiB and every matMul weight keeps a packed XNNPACK copy beside it, so a random
 * Llama (hidden 1024, MLP 2816, vocab 32000) with 40 layers (2.16 GiB of weights) overflowed it and returned
 * all-zero logits without an error. Building such a model here would take GBs of memory and minutes, so the
 * children below move the boundary down instead: they fill the heap with untouched reservations (address
 * space, next to no resident memory) and then run the same two failure paths on a small model and a matMul:
 *
 * - the heap completely full: a forward pass's first allocation fails (`_malloc` returned 0, which tfjs
 *   4.22 would turn into a tensor at address 0);
 * - 4 MiB free: a [1024, 4096] weight (16 MiB) cannot get its packed copy (XNNPACK out of memory, after which
 *   tfjs 4.22 returns the output buffer unwritten).
 *
 * Both must throw an ArrakisError that points to the onnxruntime engine and leave no tensor behind; after the
 * reservations are freed the same forward matches the Hugging Face dump and the same matMul matches a float64
 * product. Each heap setting runs in a child process (the heap never shrinks), single- and multi-threaded
 * (their stderr reaches the guard by different routes). The size check for the 36- and 40-layer
 * models is plain arithmetic and runs here.
 *
 *   node --test --import tsx test/wasm-heap.test.ts
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { HookedAutoConfig, HookedAutoModel, initBackend } from "../src";
import { checkWasmModelFits, wasmSafeHeapBytes, wasmThreads } from "../src/backend";
import { ArrakisError } from "../src/errors";
import { checkModelFits, memoryLimit } from "../src/model/size";
import { patchStatus } from "../src/patches";
import { lastWasmFailure } from "../src/patches/wasm-heap-guard";
import { readTensors } from "./reference/safetensors-mini";
import { hfFixture, maxAbsDiff, reportToParent, runChildReport } from "./helpers";

interface ChildReport {
  threads: boolean;
  guard: string;
  fullForward: { error: string; name: string; leaked: number };
  fullMatMul: { error: string; name: string; leaked: number; failure: string | null };
  after: { logitsDiff: number; matMulDiff: number; matMulMaxAbs: number };
}

// ------------------------------------------------------------------ child

/** A deterministic pseudo-random fill in [-1, 1). */
function fill(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 31 - 1;
  });
}

/** Reserves every free byte of the wasm heap (halving sizes down to 16 bytes); returns the blocks. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
function reserveHeap(wasm: any): number[] {
  const blocks: number[] = [];
  for (let size = 2 ** 28; size >= 16; size /= 2) {
    for (;;) {
      try {
        blocks.push(wasm._malloc(size)); // the guarded _malloc: throws instead of returning 0
      } catch {
        break;
      }
    }
  }
  return blocks;
}

async function tryRun(run: () => void): Promise<{ error: string; name: string; leaked: number }> {
  const before = tf.memory().numTensors;
  let error = "";
  let name = "";
  try {
    run();
  } catch (e) {
    error = String((e as Error).message);
    name = (e as Error).name;
  }
  return { error, name, leaked: tf.memory().numTensors - before };
}

/** The report of one child: both failure paths on a filled heap, then the same calls after freeing it. */
async function child(): Promise<ChildReport> {
  await initBackend();
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const wasm = (tf.engine().backend as any).wasm;
  const dir = hfFixture("llama");
  const ref = readTensors(path.join(dir, "reference.safetensors"));
  const ids = Array.from(ref.get("input_ids")!.data);
  const rows = [ids.slice(0, ids.length / 2), ids.slice(ids.length / 2)];
  const model = await HookedAutoModel.fromPretrained(dir);
  const [k, n] = [1024, 4096];
  const xv = fill(2 * k, 1);
  const wv = fill(k * n, 2);
  const x = tf.tensor2d(xv, [2, k]);
  const w = tf.tensor2d(wv, [k, n]);

  // A 4 MiB hole, taken first and freed later: room for the [2, 4096] output (32 KiB), not for the
  // weight's 16 MiB packed copy.
  const hole = wasm._malloc(4 * 2 ** 20);
  const blocks = reserveHeap(wasm);
  const fullForward = await tryRun(() => model.forward(rows).dispose());
  wasm._free(hole);
  const fullMatMul = { ...(await tryRun(() => tf.matMul(x, w).dispose())), failure: lastWasmFailure() };
  for (const b of blocks) wasm._free(b);

  const logits = model.forward(rows);
  const y = tf.matMul(x, w);
  const got = y.dataSync();
  const expected = new Float64Array(2 * n);
  for (let r = 0; r < 2; r++) for (let t = 0; t < k; t++) for (let j = 0; j < n; j++) expected[r * n + j] += xv[r * k + t] * wv[t * n + j];
  const after = {
    logitsDiff: maxAbsDiff(logits.dataSync(), ref.get("logits")!.data),
    matMulDiff: maxAbsDiff(got, expected),
    matMulMaxAbs: Math.max(...Array.from(got, Math.abs)),
  };
  tf.dispose([logits, y, x, w]);
  model.dispose();
  return { threads: wasmThreads().used, guard: patchStatus("wasm-heap-guard")?.reason ?? "not tried", fullForward, fullMatMul, after };
}

/** This file again in a child process with `env` on wasm: the heap never shrinks, and threads are chosen once per process. */
const runChild = (env: NodeJS.ProcessEnv) => runChildReport<ChildReport>(__filename, { ...env, ARRAKIS_WASM_HEAP_CHILD: "1", ARRAKIS_BACKEND: "wasm" });

// ------------------------------------------------------------------ tests

/** float32 bytes of the random Llama (hidden 1024, MLP 2816, vocab 32000, 16 KV heads, untied). */
function llamaBytes(layers: number): { weights: number; matMul: number } {
  const [h, m, v] = [1024, 2816, 32000];
  const perLayerMatMul = 4 * h * h + 3 * h * m; // q, k, v, o; gate, up, down
  const perLayer = perLayerMatMul + 2 * h; // + two RMSNorm weights
  const weights = layers * perLayer + 2 * v * h + h; // + embed, unembed, final norm
  const matMul = layers * perLayerMatMul + v * h; // the embedding is gathered, not multiplied
  return { weights: 4 * weights, matMul: 4 * matMul };
}

if (process.env.ARRAKIS_WASM_HEAP_CHILD) {
  void reportToParent(child);
} else {
  describe("a full wasm heap is an error, never zeros (child processes)", () => {
    for (const [label, threads] of [["single-threaded", "0"], ["multi-threaded", "2"]] as const) {
      test(label, async (t) => {
        const r = await runChild({ ARRAKIS_WASM_THREADS: threads });
        t.diagnostic(`${label} (threads used: ${r.threads}): full heap forward -> ${r.fullForward.error.slice(0, 120)}`);
        t.diagnostic(`4 MiB free, [1024, 4096] matMul -> ${r.fullMatMul.error.slice(0, 160)}`);
        t.diagnostic(`after freeing: logits vs HF ${r.after.logitsDiff}, matMul vs float64 ${r.after.matMulDiff}`);
        assert.match(r.guard, /ArrakisError/);
        for (const probe of [r.fullForward, r.fullMatMul]) {
          assert.equal(probe.name, "ArrakisError", `expected an ArrakisError, got ${probe.name || "no error"}: ${probe.error}`);
          assert.match(probe.error, /ARRAKIS_ENGINE=ort/);
          assert.equal(probe.leaked, 0, "tensors left behind by the failed call");
        }
        assert.match(r.fullForward.error, /could not allocate .* wasm heap: it is full/);
        assert.match(r.fullMatMul.error, /out of memory.*packed copy of a matMul weight/);
        assert.match(String(r.fullMatMul.failure), /xnn_create_fully_connected_nc_f32 is not successful\. Got status 6/);
        assert.ok(r.after.logitsDiff <= 1e-4, `logits after freeing the heap: max-abs ${r.after.logitsDiff} vs the HF dump`);
        assert.ok(r.after.matMulMaxAbs > 1, "the matMul after freeing returned (near) zeros");
        assert.ok(r.after.matMulDiff <= 1e-4, `matMul after freeing: max-abs ${r.after.matMulDiff} vs float64`);
      });
    }
  });

  describe("the wasm size check for the 36- and 40-layer Llama", () => {
    test("building the 40-layer Llama on wasm is refused before any allocation, pointing to onnxruntime", async () => {
      process.env.ARRAKIS_BACKEND = "wasm";
      assert.equal(await initBackend(), "wasm");
      const before = tf.memory().numTensors;
      const config = new HookedAutoConfig({ name: "llama", hidden_size: 1024, intermediate_size: 2816, vocab_size: 32000, num_hidden_layers: 40, num_attention_heads: 16, num_key_value_heads: 16 });
      const saved = process.env.ARRAKIS_ENGINE;
      process.env.ARRAKIS_ENGINE = "tfjs"; // the engine that multiplies the weights on the wasm heap
      try {
        assert.throws(
          () => new HookedAutoModel(config, { seed: 1 }),
          (e: unknown) => e instanceof ArrakisError && /need 2\.(2|16) GiB in float32 \(4\.(2|19) GiB held with the packed copies.*ARRAKIS_ENGINE=ort/.test(e.message),
        );
      } finally {
        if (saved === undefined) delete process.env.ARRAKIS_ENGINE;
        else process.env.ARRAKIS_ENGINE = saved;
      }
      assert.equal(tf.memory().numTensors, before);
    });

    test("with onnxruntime chosen (ARRAKIS_ENGINE=ort) the weights count once on the wasm heap, so the 40-layer Llama fits", async () => {
      assert.equal(await initBackend(), "wasm");
      const dims = new HookedAutoConfig({ name: "llama", hidden_size: 1024, intermediate_size: 2816, vocab_size: 32000, num_hidden_layers: 40, num_attention_heads: 16, num_key_value_heads: 16 }).dims;
      const saved = process.env.ARRAKIS_ENGINE;
      try {
        process.env.ARRAKIS_ENGINE = "ort";
        assert.equal(memoryLimit().packedMatMulCopies, false);
        assert.equal(checkModelFits(dims, "llama-40 on ort").bytes, llamaBytes(40).weights);
        process.env.ARRAKIS_ENGINE = "tfjs";
        assert.equal(memoryLimit().packedMatMulCopies, true);
        assert.throws(() => checkModelFits(dims, "llama-40 on tfjs"), /packed copies.*ARRAKIS_ENGINE=ort/);
      } finally {
        if (saved === undefined) delete process.env.ARRAKIS_ENGINE;
        else process.env.ARRAKIS_ENGINE = saved;
      }
    });

    test("36 layers (1.97 GiB, ran correctly) fits; 40 layers (2.16 GiB, gave zeros) is refused, pointing to onnxruntime", () => {
      const ok = llamaBytes(36);
      const over = llamaBytes(40);
      assert.equal((ok.weights / 2 ** 30).toFixed(2), "1.97");
      assert.equal((over.weights / 2 ** 30).toFixed(2), "2.16");
      assert.ok(ok.weights + ok.matMul <= wasmSafeHeapBytes());
      assert.equal(checkWasmModelFits(ok.weights, ok.matMul, "llama-36"), true);
      assert.equal(checkWasmModelFits(over.weights, over.matMul), false);
      assert.throws(() => checkWasmModelFits(over.weights, over.matMul, "llama-40"), (e: unknown) => {
        assert.ok(e instanceof ArrakisError);
        assert.match(e.message, /^llama-40: the model has 2\.16 GiB of float32 weights/);
        assert.match(e.message, /ARRAKIS_ENGINE=ort/);
        return true;
      });
    });
  });
}
