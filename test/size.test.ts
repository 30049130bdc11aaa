/**
 * Model size before allocation: the parameter count from the dims equals the count of Hugging Face's stored
 * tensors for every family's checkpoint, and a model that cannot fit is refused before the first tensor with a
 * message that says what to do instead.
 */
import { before, describe, test } from "node:test";
import * as assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { ArrakisError, HookedAutoConfig, HookedAutoModel, checkModelFits, implementedFamilies, initBackend, memoryLimit, modelSize } from "../src";
import { wasmSafeHeapBytes } from "../src/backend";
import { familyCases, laterCases } from "./reference/checkpoints";

before(async () => {
  await initBackend();
});

describe("modelSize counts what Hugging Face stores", () => {
  for (const c of [...familyCases(), ...laterCases()]) {
    test(c.label, () => {
      const stored = c.params.reduce((n, [, shape]) => n + shape.reduce((a, b) => a * b, 1), 0);
      const { params, bytes } = modelSize(new HookedAutoConfig({ ...c.config }, { strict: false }).dims);
      // Exact but for the biases a config switches on (Llama's attention_bias / mlp_bias): a fraction of a percent.
      if (c.label.includes("attention_bias")) assert.ok(Math.abs(params - stored) <= 0.01 * stored, `${params} counted vs ${stored} stored`);
      else assert.equal(params, stored);
      assert.equal(bytes, 4 * params);
    });
  }
});

describe("a model that cannot fit is refused before allocation", () => {
  const llama = new HookedAutoConfig({ name: "llama" }); // HF's LlamaConfig defaults: the Llama-2-7B shape

  test("checkModelFits names the count, the bytes, the limit and the small preset", () => {
    assert.equal(modelSize(llama.dims).params, 6738415616); // Llama-2-7B's published count
    assert.throws(
      () => checkModelFits(llama.dims, "random init of llama", { bytes: 4 * 1024 ** 3, what: "the 4 GiB heap of the wasm backend" }),
      (e: Error) =>
        e instanceof ArrakisError &&
        /6\.74 B parameters need 25\.1 GiB in float32, more than the 4 GiB heap of the wasm backend \(4\.00 GiB\)/.test(e.message) &&
        /hidden_size, num_hidden_layers/.test(e.message) &&
        /HookedAutoConfig\.small\("llama"\)/.test(e.message),
    );
    assert.deepEqual(checkModelFits(HookedAutoConfig.small("llama").dims, "x", { bytes: 4 * 1024 ** 3, what: "4 GiB" }), modelSize(HookedAutoConfig.small("llama").dims));
  });

  test("on wasm every matMul weight counts twice (XNNPACK's packed copy): the measured 36-layer Llama fits, 40 do not", () => {
    const wasm = { bytes: wasmSafeHeapBytes(), what: "the wasm heap's budget for weights", packedMatMulCopies: true };
    const shape = { name: "llama", hidden_size: 1024, intermediate_size: 2816, vocab_size: 32000, num_attention_heads: 16 };
    const fits = modelSize(new HookedAutoConfig({ ...shape, num_hidden_layers: 36 }).dims);
    assert.equal((fits.heldBytes / 2 ** 30).toFixed(2), "1.97"); // the backend's measurement: 1.97 GiB of weights,
    assert.ok(Math.abs((fits.heldBytes + fits.matMulBytes) / 2 ** 30 - 3.82) < 0.015); // and 3.82 GiB with packed copies
    checkModelFits(new HookedAutoConfig({ ...shape, num_hidden_layers: 36 }).dims, "36 layers", wasm);
    assert.throws(
      () => checkModelFits(new HookedAutoConfig({ ...shape, num_hidden_layers: 40 }).dims, "40 layers", wasm),
      /40 layers: 579 M parameters need 2\.16 GiB in float32 \(4\.19 GiB held with the packed copies wasm keeps of matMul weights\), more than the wasm heap's budget for weights \(3\.87 GiB\)\. Use the onnxruntime engine/,
    );
    // Without packed copies (any other backend) the same model needs only its weights.
    checkModelFits(new HookedAutoConfig({ ...shape, num_hidden_layers: 40 }).dims, "40 layers", { bytes: 4 * 2 ** 30, what: "4 GiB" });
  });

  test("new HookedAutoModel(new HookedAutoConfig({ name: 'llama' })) throws at once and allocates nothing", (t) => {
    if (memoryLimit().bytes >= modelSize(llama.dims).bytes) {
      t.skip(`this engine may hold ${memoryLimit().bytes} bytes, so a 27 GB model is not refused here`);
      return;
    }
    const before = tf.memory().numTensors;
    assert.throws(() => new HookedAutoModel(llama), /random init of llama: 6\.74 B parameters/);
    assert.equal(tf.memory().numTensors, before);
  });

  test("HookedAutoConfig.small gives every family a model that builds and runs", () => {
    for (const f of implementedFamilies()) {
      const config = HookedAutoConfig.small(f);
      assert.equal(config.dims.family, f);
      assert.ok(modelSize(config.dims).params < 1e6, `${f}: ${modelSize(config.dims).params} parameters`);
      const model = new HookedAutoModel(config);
      const y = model.forward([[1, 2, 3]]);
      assert.deepEqual(y.shape, [1, 3, 1024]);
      assert.ok(y.dataSync().every(Number.isFinite));
      y.dispose();
      model.dispose();
    }
  });
});
