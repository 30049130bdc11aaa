/**
 * The seeded normal sampler behind random init (src/model/normal.ts): it reads mulberry32's stream, its samples
 * follow N(0, std²) (moments, the tail beyond the ziggurat's base and a Kolmogorov–Smirnov distance against the
 * normal CDF computed independently), the same seed gives the same values, and a random model's matrices have
 * the configured std.
 */
import { test, before } from "node:test";
import * as assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { HookedAutoConfig, HookedAutoModel, initBackend } from "../src";
import { mulberry32 } from "../src/model/init";
import { NormalStream } from "../src/model/normal";

before(async () => {
  await initBackend();
});

/** Standard normal CDF via erfc (Numerical Recipes' Chebyshev fit, relative error < 1.2e-7). */
function phi(x: number): number {
  const z = Math.abs(x) / Math.SQRT2;
  const t = 1 / (1 + 0.5 * z);
  const erfc = t * Math.exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
  return x >= 0 ? 1 - erfc / 2 : erfc / 2;
}

test("the sampler reads mulberry32's stream (the same draws, bit for bit)", () => {
  for (const seed of [0, 1, 42, 0xffffffff]) {
    const s = new NormalStream(seed);
    const m = mulberry32(seed);
    for (let i = 0; i < 10_000; i++) assert.equal(s.uniform(), m(), `seed ${seed}, draw ${i}`);
  }
});

test("samples follow N(0, std²): mean, std, kurtosis, the tail beyond the base layer, KS distance", () => {
  const n = 1_000_000;
  const std = 0.02;
  const x = new NormalStream(3).fill(new Float32Array(n), std);
  let s1 = 0;
  let s2 = 0;
  let s4 = 0;
  let tail = 0;
  for (const v of x) {
    const z = v / std;
    s1 += z;
    s2 += z * z;
    s4 += z ** 4;
    if (Math.abs(z) > 3.442619855899) tail++;
  }
  const mean = s1 / n;
  const sd = Math.sqrt(s2 / n - mean * mean);
  // Standard errors at n = 1e6: mean 1e-3, std 7.1e-4, kurtosis 4.9e-3; bounds at ~4 standard errors.
  assert.ok(Math.abs(mean) < 4e-3, `mean ${mean}`);
  assert.ok(Math.abs(sd - 1) < 3e-3, `std ${sd * std} for configured ${std}`);
  assert.ok(Math.abs(s4 / n - 3) < 2e-2, `kurtosis ${s4 / n}`);
  // P(|z| > 3.4426) = 2(1 - Φ(3.4426)) = 5.761e-4: 576 ± 24 expected samples come from the tail algorithm.
  const expectedTail = 2 * (1 - phi(3.442619855899)) * n;
  assert.ok(Math.abs(tail - expectedTail) < 5 * Math.sqrt(expectedTail), `tail count ${tail}, expected ${expectedTail.toFixed(0)}`);
  // Kolmogorov–Smirnov: sup |F_n - Φ| below its 1% critical value 1.63 / sqrt(n).
  const sorted = Float64Array.from(x, (v) => v / std).sort();
  let d = 0;
  for (let i = 0; i < n; i++) {
    const f = phi(sorted[i]);
    d = Math.max(d, Math.abs((i + 1) / n - f), Math.abs(f - i / n));
  }
  assert.ok(d < 1.63 / Math.sqrt(n), `KS distance ${d}`);
});

test("same seed, same values; the stream continues across fills; another seed differs", () => {
  const whole = new NormalStream(9).fill(new Float32Array(300_001), 1);
  const s = new NormalStream(9);
  const parts = [s.fill(new Float32Array(123_457), 1), s.fill(new Float32Array(176_544), 1)];
  assert.deepEqual(Array.from(parts[0]), Array.from(whole.subarray(0, 123_457)));
  assert.deepEqual(Array.from(parts[1]), Array.from(whole.subarray(123_457)));
  const other = new NormalStream(10).fill(new Float32Array(1000), 1);
  assert.ok(other.some((v, i) => v !== whole[i]));
  assert.ok(whole.every(Number.isFinite));
});

test("a random model's matrices are N(0, initializer_range²); norms are ones", () => {
  const std = 0.05;
  const baseline = tf.memory().numTensors;
  const m = new HookedAutoModel(new HookedAutoConfig({ name: "llama", num_hidden_layers: 1, num_attention_heads: 4, num_key_value_heads: 2, hidden_size: 128, intermediate_size: 512, vocab_size: 1000, max_position_embeddings: 16, initializer_range: std }), { seed: 4 });
  try {
    const p = m.params;
    for (const [name, t] of [["wE", p.wE], ["wQ", p.layers[0].attn.wQ], ["wIn", p.layers[0].mlp.wIn]] as const) {
      const v = t.dataSync();
      const mean = v.reduce((a, b) => a + b, 0) / v.length;
      const sd = Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / v.length);
      // ≥ 65k values: the sample std is within 1% of the configured one (standard error 0.28%).
      assert.ok(Math.abs(sd / std - 1) < 0.01, `${name}: std ${sd}, configured ${std}`);
      assert.ok(Math.abs(mean) < 4 * std / Math.sqrt(v.length), `${name}: mean ${mean}`);
    }
    assert.ok(p.layers[0].ln1.w.dataSync().every((v) => v === 1));
  } finally {
    m.dispose();
  }
  assert.equal(tf.memory().numTensors, baseline, "the model's tensors are freed on dispose");
});
