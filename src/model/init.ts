/**
 * Seeded random initialisation (what `new HookedAutoModel(config)` gives): N(0, initializer_range²) for
 * matrices, ones for norm weights (zeros for Gemma's (1 + w) norms), zeros for biases. A small JS PRNG makes
 * the weights identical on every backend for the same seed; normals come from it by the ziggurat method
 * (src/model/normal.ts), fast enough for billion-parameter models.
 */
import * as tf from "@tensorflow/tfjs";
import { checkModelFits } from "./size";
import { NormalStream } from "./normal";
import { transpose2d } from "./weights";
import type { ModelDims, ModelParams, NormParams } from "./types";

/** mulberry32: a tiny, well-distributed 32-bit PRNG (also the training script's data and init stream). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function initParams(c: ModelDims, seed: number): ModelParams {
  checkModelFits(c, `random init of ${c.family}`); // before the first allocation: a 7 B default would hang the machine
  const stream = new NormalStream(seed);
  const normalValues = (n: number): Float32Array => stream.fill(new Float32Array(n), c.initStd);
  const normal = (shape: number[]): tf.Tensor => tf.tensor(normalValues(shape.reduce((a, b) => a * b, 1)), shape);
  const m = (rows: number, cols: number) => normal([rows, cols]) as tf.Tensor2D;
  const zeros = (n: number) => tf.zeros([n]) as tf.Tensor1D;
  const normP = (): NormParams => ({
    w: (c.normWeightOffset ? tf.zeros([c.dModel]) : tf.ones([c.dModel])) as tf.Tensor1D,
    b: c.normKind === "layernorm" ? zeros(c.dModel) : undefined,
  });
  const q = c.nHeads * c.dHead;
  const kv = c.nKvHeads * c.dHead;
  const bias = c.normKind === "layernorm"; // LayerNorm families carry biases on their projections
  // q/k norm weights [heads, d_head]: ones, or zeros under Gemma's (1 + w) convention.
  const qkWeight = (heads: number) => (c.qkRmsNorm && c.normWeightOffset ? tf.zeros([heads, c.dHead]) : tf.ones([heads, c.dHead])) as tf.Tensor2D;
  const sandwich = c.normPlacement === "sandwich";
  const layers = Array.from({ length: c.nLayers }, () => ({
    ln1: normP(),
    ln2: normP(),
    ...(sandwich ? { ln1Post: normP(), ln2Post: normP() } : {}),
    attn: {
      wQ: m(c.dModel, q), wK: m(c.dModel, kv), wV: m(c.dModel, kv), wO: m(q, c.dModel),
      ...(bias ? { bQ: zeros(q), bK: zeros(kv), bV: zeros(kv), bO: zeros(c.dModel) } : {}),
      ...(c.qkNorm || c.qkRmsNorm ? { qNorm: qkWeight(c.nHeads), kNorm: qkWeight(c.nKvHeads) } : {}),
    },
    mlp: {
      wIn: m(c.dModel, c.dMlp), wOut: m(c.dMlp, c.dModel),
      ...(c.gatedMlp ? { wGate: m(c.dModel, c.dMlp) } : {}),
      ...(bias && !c.gatedMlp ? { bIn: zeros(c.dMlp), bOut: zeros(c.dModel) } : {}),
    },
  }));
  const wEValues = normalValues(c.dVocab * c.dModel);
  const wE = tf.tensor2d(wEValues, [c.dVocab, c.dModel]);
  return {
    wE,
    wPos: c.positional === "learned" ? m(c.nCtx, c.dModel) : undefined,
    layers,
    lnFinal: normP(),
    // The tied unembedding is the embedding transposed in JS (exact, and ~40× faster than the cpu backend's).
    wU: c.tiedEmbeddings ? transpose2d(wEValues, c.dVocab, c.dModel) : m(c.dModel, c.dVocab),
  };
}


