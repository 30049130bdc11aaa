/**
 * A minimal, trainable GPT-2 in TensorFlow.js, used only to train the embedded default model. Parameters
 * are keyed by the exact names Hugging Face's `GPT2LMHeadModel.save_pretrained` writes, and the forward
 * follows `transformers/models/gpt2/modeling_gpt2.py` (v4.43) so the checkpoint loads unchanged in any GPT-2
 * implementation, ours included:
 *
 *   x = wte[ids] + wpe[pos]
 *   per block:  x += c_proj(attn(ln_1 x));  x += mlp.c_proj(gelu_new(mlp.c_fc(ln_2 x)))
 *   logits = ln_f(x) @ wteᵀ                       (tied lm_head, not stored)
 *
 * Conv1D is `y = x @ W + b` with W `[in, out]`; `c_attn` output is `[Q | K | V]`, each split into heads of
 * `d_head` contiguous features; scores are scaled by 1/sqrt(d_head) and causally masked; LayerNorm uses the
 * biased variance with eps 1e-5; gelu_new is the tanh approximation.
 *
 * Why training has its own differentiable forward beside the model's (`src/model/forward.ts`): the model's is
 * built for inference on wasm — per-head 2-D products over unstacked slices, `gather` embeddings (no gradient
 * on wasm: UnsortedSegmentSum is missing), hooks at every point — and under `tf.variableGrads` it measured
 * 0.8 s per 32 × 64-token step against 0.37 s for this one (15-step runs, same machine and load). Here the
 * parameters stay in the checkpoint's layout (`c_attn` = [Q | K | V] sliced per step), attention is one batched
 * product per layer, every 2-D product has a gradient made of plain 2-D matMuls without transpose flags (`mm`),
 * and embeddings are a one-hot product. That the two forwards agree is tested: the model loads a written
 * checkpoint to the logits this forward computes from the same tensors (test/train.test.ts).
 */
import * as tf from "@tensorflow/tfjs";
import { fail, show } from "../../src/errors";
import { Rng } from "./synthetic";

export interface TinyGpt2Shape {
  vocabSize: number;
  /** n_positions (= n_ctx). */
  nCtx: number;
  /** n_embd. */
  dModel: number;
  nHead: number;
  nLayer: number;
  /** n_inner (MLP width). */
  dMlp: number;
}

export const LAYER_NORM_EPS = 1e-5;

/** A float32 parameter in host memory with its shape (what safetensors stores). */
export interface HostTensor {
  shape: number[];
  data: Float32Array;
}

/** Every parameter name with its shape, in HF `save_pretrained` naming (tied lm_head omitted). */
export function parameterShapes(s: TinyGpt2Shape): Record<string, number[]> {
  const { vocabSize: V, nCtx: P, dModel: D, dMlp: M } = s;
  const shapes: Record<string, number[]> = {
    "transformer.wte.weight": [V, D],
    "transformer.wpe.weight": [P, D],
    "transformer.ln_f.weight": [D],
    "transformer.ln_f.bias": [D],
  };
  for (let l = 0; l < s.nLayer; l++) {
    const h = `transformer.h.${l}`;
    shapes[`${h}.ln_1.weight`] = [D];
    shapes[`${h}.ln_1.bias`] = [D];
    shapes[`${h}.attn.c_attn.weight`] = [D, 3 * D];
    shapes[`${h}.attn.c_attn.bias`] = [3 * D];
    shapes[`${h}.attn.c_proj.weight`] = [D, D];
    shapes[`${h}.attn.c_proj.bias`] = [D];
    shapes[`${h}.ln_2.weight`] = [D];
    shapes[`${h}.ln_2.bias`] = [D];
    shapes[`${h}.mlp.c_fc.weight`] = [D, M];
    shapes[`${h}.mlp.c_fc.bias`] = [M];
    shapes[`${h}.mlp.c_proj.weight`] = [M, D];
    shapes[`${h}.mlp.c_proj.bias`] = [D];
  }
  return shapes;
}

export function checkShape(s: TinyGpt2Shape): void {
  for (const [k, v] of Object.entries(s)) {
    if (!Number.isInteger(v) || (v as number) < 1) fail(`model shape field ${k} must be a positive integer, got ${show(v)}`);
  }
  if (s.dModel % s.nHead !== 0) fail(`n_embd ${s.dModel} is not divisible by n_head ${s.nHead}`);
}

export function parameterCount(s: TinyGpt2Shape): number {
  return Object.values(parameterShapes(s)).reduce((n, shape) => n + shape.reduce((a, b) => a * b, 1), 0);
}

/**
 * GPT-2's initialisation (`GPT2PreTrainedModel._init_weights`): weights N(0, 0.02), the residual output
 * projections (`c_proj`) N(0, 0.02/sqrt(2·n_layer)), biases 0, LayerNorm weight 1; optionally sinusoidal
 * position embeddings instead of random ones. Seeded and deterministic; parameters are drawn in sorted-name order.
 */
export interface InitOptions {
  /** wpe as sinusoids (still learned) instead of N(0, 0.02). */
  sinusoidalPositions?: boolean;
  /** Standard deviation of `c_attn` weights (GPT-2: 0.02). */
  attnStd?: number;
  /** Standard deviation of the token embeddings (GPT-2: 0.02). */
  wteStd?: number;
}

export function initParameters(s: TinyGpt2Shape, seed: number, init: InitOptions = {}): Record<string, HostTensor> {
  const sinusoidalPositions = init.sinusoidalPositions ?? false, attnStd = init.attnStd ?? 0.02;
  checkShape(s);
  const rng = new Rng(seed);
  const out: Record<string, HostTensor> = {};
  const shapes = parameterShapes(s);
  for (const name of Object.keys(shapes).sort()) {
    const shape = shapes[name];
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    if (/\.ln_\w+\.weight$/.test(name)) data.fill(1);
    else if (name === "transformer.wpe.weight" && sinusoidalPositions) sinusoid(data, shape[0], shape[1], 0.02);
    else if (name.endsWith(".weight")) {
      const std = name.endsWith("c_proj.weight") ? 0.02 / Math.sqrt(2 * s.nLayer) : name.endsWith("c_attn.weight") ? attnStd : name === "transformer.wte.weight" ? (init.wteStd ?? 0.02) : 0.02;
      for (let i = 0; i < data.length; i++) data[i] = std * rng.normal();
    }
    out[name] = { shape, data };
  }
  return out;
}

/**
 * Transformer sinusoids (Vaswani et al. 2017) with RMS `rms`: pos·ω_i in sin/cos pairs. "Attend to the previous
 * position" is then a fixed rotation of the query, which a previous-token head learns far sooner than from
 * random positions; the embeddings stay ordinary learned parameters.
 */
function sinusoid(out: Float32Array, P: number, D: number, rms: number): void {
  for (let p = 0; p < P; p++) {
    for (let i = 0; i < D / 2; i++) {
      const angle = p / 10000 ** ((2 * i) / D);
      out[p * D + 2 * i] = Math.SQRT2 * rms * Math.sin(angle);
      out[p * D + 2 * i + 1] = Math.SQRT2 * rms * Math.cos(angle);
    }
  }
}

/** `a @ b` for 2-D tensors whose gradient is also made of plain 2-D matMuls (explicit transposes). */
export const mm = tf.customGrad(((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
  const [a, b, save] = args as [tf.Tensor, tf.Tensor, tf.GradSaveFunc];
  save([a, b]);
  return {
    value: tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [sa, sb] = saved as tf.Tensor2D[];
      return [tf.matMul(dy as tf.Tensor2D, tf.transpose(sb)), tf.matMul(tf.transpose(sa), dy as tf.Tensor2D)];
    },
  };
}) as Parameters<typeof tf.customGrad>[0]) as (a: tf.Tensor2D, b: tf.Tensor2D) => tf.Tensor2D;

/** gelu_new: 0.5·x·(1 + tanh(sqrt(2/π)·(x + 0.044715·x³))). */
export function geluNew(x: tf.Tensor): tf.Tensor {
  const inner = tf.mul(Math.sqrt(2 / Math.PI), tf.add(x, tf.mul(0.044715, tf.mul(x, tf.square(x))))); // pow's gradient is slow
  return tf.mul(tf.mul(0.5, x), tf.add(1, tf.tanh(inner)));
}

/** LayerNorm over the last axis, biased variance. */
export function layerNorm(x: tf.Tensor, w: tf.Tensor, b: tf.Tensor): tf.Tensor {
  const mean = tf.mean(x, -1, true);
  const centered = tf.sub(x, mean);
  const variance = tf.mean(tf.square(centered), -1, true);
  return tf.add(tf.mul(tf.mul(centered, tf.rsqrt(tf.add(variance, LAYER_NORM_EPS))), w), b);
}

/** Additive causal mask [T, T]: 0 where key ≤ query, -1e9 above the diagonal. Built from floats: a bool bandPart is wrong on the wasm backend. */
export function causalMask(T: number): tf.Tensor2D {
  const m = new Float32Array(T * T);
  for (let q = 0; q < T; q++) for (let k = q + 1; k < T; k++) m[q * T + k] = -1e9;
  return tf.tensor2d(m, [T, T]);
}

export type Params = Record<string, tf.Tensor>;

/**
 * Logits [B·T, V] for token ids (int32, [B, T]). `oneHotIds` is the one-hot input [B·T, V] (float32) and
 * `mask` the causal mask for T; both are passed in so a training loop can reuse them. `headKeep` [B, H, 1, 1]
 * (1 keep, 0 zero) multiplies every head's z in layers ≥ 1 (head dropout); omitted, nothing is zeroed.
 */
export function forward(
  s: TinyGpt2Shape, p: Params, oneHotIds: tf.Tensor2D, B: number, T: number, mask: tf.Tensor2D, headKeep?: tf.Tensor4D,
): tf.Tensor2D {
  const D = s.dModel, H = s.nHead, dh = D / H;
  const pos = tf.tile(tf.slice(p["transformer.wpe.weight"], [0, 0], [T, D]), [B, 1]); // [B·T, D]
  let x: tf.Tensor2D = tf.add(mm(oneHotIds, p["transformer.wte.weight"] as tf.Tensor2D), pos); // [B·T, D]
  for (let l = 0; l < s.nLayer; l++) {
    const h = `transformer.h.${l}`;
    const a = layerNorm(x, p[`${h}.ln_1.weight`], p[`${h}.ln_1.bias`]) as tf.Tensor2D;
    // c_attn output is [Q | K | V]; slicing the (small) weight instead of the [B·T, 3D] output is cheaper.
    const W = p[`${h}.attn.c_attn.weight`], bias = p[`${h}.attn.c_attn.bias`];
    const heads = (i: number) => {
      const y = tf.add(mm(a, tf.slice(W, [0, i * D], [D, D]) as tf.Tensor2D), tf.slice(bias, [i * D], [D])); // [B·T, D]
      return tf.transpose(tf.reshape(y, [B, T, H, dh]), [0, 2, 1, 3]); // [B, H, T, dh]
    };
    const [q, k, v] = [heads(0), heads(1), heads(2)];
    const scores = tf.add(tf.mul(tf.matMul(q, tf.transpose(k, [0, 1, 3, 2])), 1 / Math.sqrt(dh)), mask); // [B, H, T, T]
    const pattern = tf.softmax(scores) as tf.Tensor4D; // [B, H, q, k]
    const z = headKeep && l >= 1 ? tf.mul(tf.matMul(pattern, v), headKeep) : tf.matMul(pattern, v); // [B, H, T, dh]
    const merged = tf.reshape(tf.transpose(z, [0, 2, 1, 3]), [B * T, D]) as tf.Tensor2D; // [B·T, D], head-major
    x = tf.add(x, tf.add(mm(merged, p[`${h}.attn.c_proj.weight`] as tf.Tensor2D), p[`${h}.attn.c_proj.bias`]));
    const m = layerNorm(x, p[`${h}.ln_2.weight`], p[`${h}.ln_2.bias`]) as tf.Tensor2D;
    const hidden = geluNew(tf.add(mm(m, p[`${h}.mlp.c_fc.weight`] as tf.Tensor2D), p[`${h}.mlp.c_fc.bias`])) as tf.Tensor2D; // [B·T, M]
    x = tf.add(x, tf.add(mm(hidden, p[`${h}.mlp.c_proj.weight`] as tf.Tensor2D), p[`${h}.mlp.c_proj.bias`]));
  }
  const f = layerNorm(x, p["transformer.ln_f.weight"], p["transformer.ln_f.bias"]) as tf.Tensor2D;
  return mm(f, tf.transpose(p["transformer.wte.weight"]) as tf.Tensor2D); // [B·T, V], tied lm_head
}

/**
 * Mean next-token cross-entropy of logits [B·T, V] against targets [B·T] (int32 ids), counting only
 * positions whose weight is 1 (weights [B·T] float32).
 */
export function crossEntropy(logits: tf.Tensor2D, targetsOneHot: tf.Tensor2D, weights: tf.Tensor1D): tf.Scalar {
  const nll = tf.neg(tf.sum(tf.mul(tf.logSoftmax(logits), targetsOneHot), -1)); // [B·T]
  return tf.div(tf.sum(tf.mul(nll, weights)), tf.sum(weights)) as tf.Scalar;
}
