/**
 * The shared transformer components. Each takes the normalised dims (`ModelDims`) and the parameters of one
 * block, and reports its intermediate activations through `at(localName, tensor)`, which applies hooks and
 * caching and returns the (possibly replaced) tensor.
 *
 * Fast-path rule (measured on the wasm backend): every heavy product is a 2-D matMul without
 * transpose flags. Weights are stored `[in, out]`; attention loops over heads with 2-D products when batched
 * matMul is slow on the backend.
 */
import * as tf from "@tensorflow/tfjs";
import { batchedMatMulIsFast } from "../backend";
import type { Activation, AttnParams, MlpParams, ModelDims, NormParams } from "./types";

/** Applies hooks/caching at a hook point local to the current block (e.g. "attn.hook_q"). */
export type At = <T extends tf.Tensor>(localName: string, x: T) => T;

/** The float32 minimum, the value Hugging Face gives masked scores, so masked probabilities are exactly 0. */
export const MASK_VALUE = -3.4028234663852886e38;

/** x [n, in] @ w [in, out] (+ b [out]) → [n, out]. */
export function project(x: tf.Tensor2D, w: tf.Tensor2D, b?: tf.Tensor1D): tf.Tensor2D {
  const y = tf.matMul(x, w) as tf.Tensor2D;
  return b ? (tf.add(y, b) as tf.Tensor2D) : y;
}

export function norm(c: ModelDims, x: tf.Tensor3D, p: NormParams): tf.Tensor3D {
  return c.normKind === "rmsnorm" ? rmsNorm(x, p, c.normEps, c.normWeightOffset) : layerNorm(x, p, c.normEps);
}

/** torch.nn.LayerNorm: (x - mean) / sqrt(biased var + eps) * w + b. */
export function layerNorm(x: tf.Tensor3D, p: NormParams, eps: number): tf.Tensor3D {
  const centred = tf.sub(x, tf.mean(x, -1, true));
  const variance = tf.mean(tf.square(centred), -1, true);
  const y = tf.mul(tf.div(centred, tf.sqrt(tf.add(variance, eps))), p.w);
  return (p.b ? tf.add(y, p.b) : y) as tf.Tensor3D;
}

/** Llama-style RMSNorm: x * rsqrt(mean(x²) + eps) * (offset + w); offset is 1 for Gemma. */
export function rmsNorm(x: tf.Tensor3D, p: NormParams, eps: number, offset: number): tf.Tensor3D {
  const scaled = tf.mul(x, tf.rsqrt(tf.add(tf.mean(tf.square(x), -1, true), eps)));
  return tf.mul(scaled, offset ? tf.add(p.w, offset) : p.w) as tf.Tensor3D;
}

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

export function activate(kind: Activation, x: tf.Tensor): tf.Tensor {
  switch (kind) {
    case "gelu_new":
    case "gelu_pytorch_tanh": // 0.5 x (1 + tanh(u)) with u = sqrt(2/π) (x + 0.044715 x³), computed as x·sigmoid(2u)
      // (the same function; on wasm Pow + Tanh cost 22 ms per [1, 128, 3072] call, x·x·x and sigmoid 1 ms).
      return tf.mul(x, tf.sigmoid(tf.mul(tf.add(x, tf.mul(tf.mul(tf.mul(x, x), x), 0.044715)), 2 * SQRT_2_OVER_PI)));
    case "gelu": // exact: 0.5 x (1 + erf(x / sqrt 2))
      return tf.mul(tf.mul(x, 0.5), tf.add(1, tf.erf(tf.mul(x, Math.SQRT1_2))));
    case "silu":
      return tf.mul(x, tf.sigmoid(x));
    case "relu":
      return tf.relu(x);
  }
}

/** Additive/multiplicative causal masks `[q, k]`, built from float arrays (bool bandPart is broken on wasm). */
export function causalMask(T: number, window: number | null): { keep: tf.Tensor2D; fill: tf.Tensor2D } {
  const keep = new Float32Array(T * T);
  const fill = new Float32Array(T * T);
  for (let i = 0; i < T; i++) {
    for (let j = 0; j < T; j++) {
      const visible = j <= i && (window === null || i - j < window);
      keep[i * T + j] = visible ? 1 : 0;
      fill[i * T + j] = visible ? 0 : MASK_VALUE;
    }
  }
  return { keep: tf.tensor2d(keep, [T, T]), fill: tf.tensor2d(fill, [T, T]) };
}

/**
 * RoPE tables `[pos, rotary_dim]` as Hugging Face computes them in float32:
 * inv_freq[i] = 1 / base^(2i/dim), angle = pos * inv_freq (float32 product), emb = concat(angle, angle).
 */
export function rotaryTables(T: number, dim: number, base: number): { cos: tf.Tensor2D; sin: tf.Tensor2D } {
  const half = dim / 2;
  const cos = new Float32Array(T * dim);
  const sin = new Float32Array(T * dim);
  for (let i = 0; i < half; i++) {
    const invFreq = Math.fround(1 / Math.pow(base, Math.fround((2 * i) / dim)));
    for (let t = 0; t < T; t++) {
      const angle = Math.fround(t * invFreq);
      cos[t * dim + i] = cos[t * dim + i + half] = Math.cos(angle);
      sin[t * dim + i] = sin[t * dim + i + half] = Math.sin(angle);
    }
  }
  return { cos: tf.tensor2d(cos, [T, dim]), sin: tf.tensor2d(sin, [T, dim]) };
}

/** x' = x·cos + rotate_half(x)·sin on the first `rotary_dim` features of each head; the rest pass through. */
export function applyRotary(x: tf.Tensor4D, tables: { cos: tf.Tensor2D; sin: tf.Tensor2D }): tf.Tensor4D {
  const [B, T, H, D] = x.shape;
  const R = tables.cos.shape[1];
  const rot = R === D ? x : tf.slice(x, [0, 0, 0, 0], [B, T, H, R]); // [batch, pos, head, rotary_dim]
  const [x1, x2] = tf.split(rot, 2, 3);
  const rotatedHalf = tf.concat([tf.neg(x2), x1], 3);
  const cos = tf.reshape(tables.cos, [1, T, 1, R]);
  const sin = tf.reshape(tables.sin, [1, T, 1, R]);
  const out = tf.add(tf.mul(rot, cos), tf.mul(rotatedHalf, sin)) as tf.Tensor4D;
  return R === D ? out : tf.concat([out, tf.slice(x, [0, 0, 0, R], [B, T, H, D - R])], 3);
}

/**
 * out[i] = a[i] @ b[pick(i)] for a `[n, m, k]`, b `[n', k, p]` → `[n, m, p]`. Under grouped-query attention
 * several query heads share one key/value head, hence `pick`.
 */
export function pairedMatMul(a: tf.Tensor3D, b: tf.Tensor3D, pick: (i: number) => number): tf.Tensor3D {
  const n = a.shape[0];
  if (batchedMatMulIsFast()) {
    const idx = Array.from({ length: n }, (_, i) => pick(i));
    const same = idx.every((j, i) => j === i) && b.shape[0] === n;
    return tf.matMul(a, same ? b : tf.gather(b, idx));
  }
  const as = tf.unstack(a) as tf.Tensor2D[];
  const bs = tf.unstack(b) as tf.Tensor2D[];
  return tf.stack(as.map((ai, i) => tf.matMul(ai, bs[pick(i)]))) as tf.Tensor3D;
}

export interface AttentionInputs {
  mask: { keep: tf.Tensor2D; fill: tf.Tensor2D };
  rotary?: { cos: tf.Tensor2D; sin: tf.Tensor2D };
}

/**
 * Per-head LayerNorm without bias over d_head (StableLM `qk_layernorm`: one `nn.LayerNorm(head_dim)` per head);
 * x `[batch, pos, head, d_head]`, w `[head, d_head]`. Without weights, x is returned unchanged.
 */
export function headNorm(x: tf.Tensor4D, w: tf.Tensor2D | undefined, eps: number): tf.Tensor4D {
  if (!w) return x;
  const centred = tf.sub(x, tf.mean(x, -1, true));
  const variance = tf.mean(tf.square(centred), -1, true);
  return tf.mul(tf.div(centred, tf.sqrt(tf.add(variance, eps))), w) as tf.Tensor4D; // w broadcasts over [batch, pos]
}

/**
 * RMSNorm of queries or keys x `[batch, pos, head, d_head]` with weight w `[head, d_head]` (times (offset + w)):
 * over each head's features, or over the whole projection (all heads at once, OLMo 2).
 */
export function qkRmsNorm(x: tf.Tensor4D, w: tf.Tensor2D, eps: number, offset: number, wholeProjection: boolean): tf.Tensor4D {
  const axes = wholeProjection ? [2, 3] : [3];
  const scaled = tf.mul(x, tf.rsqrt(tf.add(tf.mean(tf.square(x), axes, true), eps)));
  return tf.mul(scaled, offset ? tf.add(w, offset) : w) as tf.Tensor4D;
}

/** The query or key norm the model has, if any (reported at `attn.q_norm` / `attn.k_norm`). */
function qkNormed(c: ModelDims, x: tf.Tensor4D, w: tf.Tensor2D | undefined, point: string, at: At): tf.Tensor4D {
  if (c.qkNorm) return at(point, headNorm(x, w, c.normEps));
  if (c.qkRmsNorm && w) return at(point, qkRmsNorm(x, w, c.normEps, c.normWeightOffset, c.qkRmsNorm === "projection"));
  return x;
}

/** A projection `[batch·pos, heads·d_head]` as heads `[batch, pos, heads, d_head]`, clamped when the model clips qkv. */
function projectHeads(c: ModelDims, x2: tf.Tensor2D, w: tf.Tensor2D, b: tf.Tensor1D | undefined, shape: [number, number, number, number]): tf.Tensor4D {
  const y = project(x2, w, b);
  return tf.reshape(c.clipQkv === undefined ? y : tf.clipByValue(y, -c.clipQkv, c.clipQkv), shape) as tf.Tensor4D;
}

/** tanh(x / cap) · cap: Gemma 2's soft-capping of attention scores and logits. */
export function softcap<T extends tf.Tensor>(x: T, cap: number): T {
  return tf.mul(tf.tanh(tf.div(x, cap)), cap) as T;
}

/** Multi-head (grouped-query) causal self-attention for one block: x `[batch, pos, d_model]` → same shape. */
export function attention(c: ModelDims, x: tf.Tensor3D, p: AttnParams, inputs: AttentionInputs, at: At): tf.Tensor3D {
  const [B, T, D] = x.shape;
  const { nHeads: H, nKvHeads: KV, dHead: dh } = c;
  const x2 = tf.reshape(x, [B * T, D]) as tf.Tensor2D;
  let q = at("attn.hook_q", projectHeads(c, x2, p.wQ, p.bQ, [B, T, H, dh]));
  let k = at("attn.hook_k", projectHeads(c, x2, p.wK, p.bK, [B, T, KV, dh]));
  const v = at("attn.hook_v", projectHeads(c, x2, p.wV, p.bV, [B, T, KV, dh]));
  q = qkNormed(c, q, p.qNorm, "attn.q_norm.hook_normalized", at);
  k = qkNormed(c, k, p.kNorm, "attn.k_norm.hook_normalized", at);
  if (inputs.rotary) {
    q = at("attn.hook_rot_q", applyRotary(q, inputs.rotary));
    k = at("attn.hook_rot_k", applyRotary(k, inputs.rotary));
  }
  const group = H / KV;
  const kvOf = (i: number) => Math.floor(i / H) * KV + Math.floor((i % H) / group); // (batch·head) → (batch·kv_head)
  const qh = tf.reshape(tf.transpose(q, [0, 2, 1, 3]), [B * H, T, dh]) as tf.Tensor3D; // [batch·head, q, d_head]
  const kT = tf.reshape(tf.transpose(k, [0, 2, 3, 1]), [B * KV, dh, T]) as tf.Tensor3D; // [batch·kv_head, d_head, k]
  let raw = tf.mul(tf.reshape(pairedMatMul(qh, kT, kvOf), [B, H, T, T]), c.attnScale) as tf.Tensor4D; // [batch, head, q, k]
  if (c.attnSoftcap !== undefined) raw = softcap(raw, c.attnSoftcap);
  const scores = at("attn.hook_attn_scores", tf.add(tf.mul(raw, inputs.mask.keep), inputs.mask.fill) as tf.Tensor4D);
  const pattern = at("attn.hook_pattern", tf.softmax(scores) as tf.Tensor4D);
  const vh = tf.reshape(tf.transpose(v, [0, 2, 1, 3]), [B * KV, T, dh]) as tf.Tensor3D; // [batch·kv_head, k, d_head]
  const zh = pairedMatMul(tf.reshape(pattern, [B * H, T, T]) as tf.Tensor3D, vh, kvOf); // [batch·head, q, d_head]
  const z = at("attn.hook_z", tf.transpose(tf.reshape(zh, [B, H, T, dh]), [0, 2, 1, 3]) as tf.Tensor4D); // [batch, pos, head, d_head]
  return tf.reshape(project(tf.reshape(z, [B * T, H * dh]) as tf.Tensor2D, p.wO, p.bO), [B, T, D]) as tf.Tensor3D;
}

/** The MLP (plain or gated): x `[batch, pos, d_model]` → same shape. */
export function mlp(c: ModelDims, x: tf.Tensor3D, p: MlpParams, at: At): tf.Tensor3D {
  const [B, T, D] = x.shape;
  const x2 = tf.reshape(x, [B * T, D]) as tf.Tensor2D;
  const pre = at("mlp.hook_pre", tf.reshape(project(x2, p.wGate ?? p.wIn, p.wGate ? p.bGate : p.bIn), [B, T, c.dMlp]) as tf.Tensor3D);
  let post = activate(c.act, pre) as tf.Tensor3D;
  if (p.wGate) post = tf.mul(post, at("mlp.hook_pre_linear", tf.reshape(project(x2, p.wIn, p.bIn), [B, T, c.dMlp]) as tf.Tensor3D));
  post = at("mlp.hook_post", post);
  return tf.reshape(project(tf.reshape(post, [B * T, c.dMlp]) as tf.Tensor2D, p.wOut, p.bOut), [B, T, D]) as tf.Tensor3D;
}
