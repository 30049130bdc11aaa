/**
 * An independent float64 re-implementation of the Hugging Face forward passes (transformers 4.4x–4.5x eager
 * attention) for every Arrakis family and the RoPE scalings of modeling_rope_utils, written from the HF modeling
 * files' semantics in plain loops over the HF-named tensors of a checkpoint folder. It shares no code with src/model (no components, no weight mapping,
 * no tfjs): its independence is what makes the parity tests mean something. It is checked first against HF's own
 * outputs for gpt2 and llama (test/fixtures/hf), which validates the method; the other families follow the
 * modeling files cited in each `layer` function.
 *
 * Layouts: activations are flat Float64Arrays, row-major; `[B, T, D]` rows are indexed (b·T + t).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { type RefTensor, readTensors } from "./safetensors-mini";

export interface RefOutputs {
  /** `[B, T, V]` */
  logits: Float64Array;
  /** L + 1 entries `[B, T, D]`; the last is the final-norm output (HF `output_hidden_states`). */
  hidden: Float64Array[];
  /** Per layer `[B, H, T, T]` post-softmax probabilities (HF `output_attentions`). */
  attentions: Float64Array[];
  /** Per layer `[B, T, H·head_dim]`: the input of the attention output projection (clean run). */
  z: Float64Array[];
}

/** Zero query head `head`'s z in layer `layer` before the output projection (the HF fixtures' ablation). */
export interface Ablation {
  layer: number;
  head: number;
}

type Cfg = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

// ------------------------------------------------------------------------------------------------ math helpers

/** erf in float64 (Taylor series below 3, continued fraction for erfc above); |error| < 1e-13. */
export function erf(x: number): number {
  const ax = Math.abs(x);
  if (ax < 3) {
    let term = ax;
    let sum = ax;
    for (let n = 1; n < 300; n++) {
      term *= (-ax * ax) / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
    }
    return (Math.sign(x) * 2 * sum) / Math.sqrt(Math.PI);
  }
  let f = 0;
  for (let k = 80; k >= 1; k--) f = k / 2 / (ax + f);
  return Math.sign(x) * (1 - Math.exp(-ax * ax) / Math.sqrt(Math.PI) / (ax + f));
}

/** HF `ACT2FN` entries used by the nine families. */
function activation(name: string): (v: number) => number {
  switch (name) {
    case "gelu_new":
    case "gelu_pytorch_tanh":
      return (v) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v * v * v)));
    case "gelu":
      return (v) => 0.5 * v * (1 + erf(v / Math.SQRT2));
    case "silu":
    case "swish":
      return (v) => v / (1 + Math.exp(-v));
    case "relu":
      return (v) => Math.max(0, v);
    default:
      throw new Error(`reference: activation ${name} not implemented`);
  }
}

/** `nn.Linear`: x `[n, in]`, weight `[out, in]` → `[n, out]`. */
function linear(x: Float64Array, n: number, w: RefTensor, b?: RefTensor): Float64Array {
  const [out, inp] = w.shape;
  const y = new Float64Array(n * out);
  for (let r = 0; r < n; r++) {
    for (let o = 0; o < out; o++) {
      let s = b ? b.data[o] : 0;
      for (let i = 0; i < inp; i++) s += x[r * inp + i] * w.data[o * inp + i];
      y[r * out + o] = s;
    }
  }
  return y;
}

/** GPT-2 `Conv1D`: x `[n, in]`, weight `[in, out]` → `[n, out]`. */
function conv1d(x: Float64Array, n: number, w: RefTensor, b: RefTensor): Float64Array {
  const [inp, out] = w.shape;
  const y = new Float64Array(n * out);
  for (let r = 0; r < n; r++) {
    for (let o = 0; o < out; o++) {
      let s = b.data[o];
      for (let i = 0; i < inp; i++) s += x[r * inp + i] * w.data[i * out + o];
      y[r * out + o] = s;
    }
  }
  return y;
}

/** `nn.LayerNorm` over rows of width d (biased variance). */
function layerNorm(x: Float64Array, d: number, w: Float64Array, b: Float64Array | null, eps: number): Float64Array {
  const y = new Float64Array(x.length);
  for (let r = 0; r < x.length / d; r++) {
    let mean = 0;
    for (let i = 0; i < d; i++) mean += x[r * d + i];
    mean /= d;
    let v = 0;
    for (let i = 0; i < d; i++) v += (x[r * d + i] - mean) ** 2;
    const inv = 1 / Math.sqrt(v / d + eps);
    for (let i = 0; i < d; i++) y[r * d + i] = (x[r * d + i] - mean) * inv * w[i] + (b ? b[i] : 0);
  }
  return y;
}

/** Llama RMSNorm `x / sqrt(mean(x²) + eps) * (offset + w)`; Gemma's offset is 1. */
function rmsNorm(x: Float64Array, d: number, w: Float64Array, eps: number, offset: number): Float64Array {
  const y = new Float64Array(x.length);
  for (let r = 0; r < x.length / d; r++) {
    let ms = 0;
    for (let i = 0; i < d; i++) ms += x[r * d + i] ** 2;
    const inv = 1 / Math.sqrt(ms / d + eps);
    for (let i = 0; i < d; i++) y[r * d + i] = x[r * d + i] * inv * (offset + w[i]);
  }
  return y;
}

function add(a: Float64Array, ...rest: Float64Array[]): Float64Array {
  const y = Float64Array.from(a);
  for (const r of rest) for (let i = 0; i < y.length; i++) y[i] += r[i];
  return y;
}

interface Rope {
  cos: Float64Array;
  sin: Float64Array;
  dim: number;
}

const f = Math.fround;

/** HF `_compute_default_rope_parameters`: 1 / base ** (arange(0, dim, 2).float() / dim), float32 tensors. */
function defaultInvFreq(dim: number, base: number): number[] {
  return Array.from({ length: dim / 2 }, (_, i) => f(1 / f(Math.pow(f(base), f((2 * i) / dim)))));
}

/**
 * The inverse frequencies and the cos/sin factor `(inv_freq, attention_scaling)` HF's rotary embedding module uses
 * for a forward over T positions (modeling_rope_utils of 4.4x–4.5x plus the `dynamic_rope_update` wrapper, which
 * recomputes dynamic and longrope frequencies from `max(position_ids) + 1 = T`).
 */
function hfInvFreq(cfg: Cfg, scaling: Cfg | null, dim: number, base: number, T: number): { inv: number[]; scale: number } {
  const type = scaling ? (scaling.rope_type ?? scaling.type ?? "default") : "default";
  const maxPos: number = cfg.max_position_embeddings;
  if (type === "default") return { inv: defaultInvFreq(dim, base), scale: 1 };
  if (type === "linear") return { inv: defaultInvFreq(dim, base).map((v) => f(v / scaling!.factor)), scale: 1 };
  if (type === "dynamic") {
    // Init computes with seq_len = max_position_embeddings (base unchanged); the update recomputes once T exceeds it.
    const seqLen = Math.max(T, maxPos);
    const grown = base * Math.pow((scaling!.factor * seqLen) / maxPos - (scaling!.factor - 1), dim / (dim - 2));
    return { inv: defaultInvFreq(dim, grown), scale: 1 };
  }
  if (type === "llama3") {
    const { factor, low_freq_factor: lo, high_freq_factor: hi, original_max_position_embeddings: old } = scaling!;
    const inv = defaultInvFreq(dim, base).map((v) => {
      const wavelen = f((2 * Math.PI) / v);
      const llama = wavelen > old / lo ? f(v / factor) : v;
      const smooth = f(f(f(old / wavelen) - lo) / (hi - lo));
      const smoothed = f(f(f(f(1 - smooth) * llama) / factor) + f(smooth * llama));
      const medium = !(wavelen < old / hi) && !(wavelen > old / lo);
      return medium ? smoothed : llama;
    });
    return { inv, scale: 1 };
  }
  if (type === "yarn") {
    let factor: number = scaling!.factor;
    let original = maxPos;
    if (scaling!.original_max_position_embeddings != null) {
      original = scaling!.original_max_position_embeddings;
      factor = maxPos / original;
    }
    const mscale = (s: number, m = 1) => (s <= 1 ? 1 : 0.1 * m * Math.log(s) + 1);
    const attn = scaling!.attention_factor ?? (scaling!.mscale && scaling!.mscale_all_dim ? mscale(factor, scaling!.mscale) / mscale(factor, scaling!.mscale_all_dim) : mscale(factor));
    const betaFast = scaling!.beta_fast || 32;
    const betaSlow = scaling!.beta_slow || 1;
    const corr = (rot: number) => (dim * Math.log(original / (rot * 2 * Math.PI))) / (2 * Math.log(base));
    let low = corr(betaFast), high = corr(betaSlow);
    if (scaling!.truncate !== false) { low = Math.floor(low); high = Math.ceil(high); }
    low = Math.max(low, 0);
    high = Math.min(high, dim - 1);
    if (low === high) high += 0.001;
    const inv = Array.from({ length: dim / 2 }, (_, i) => {
      const posFreq = f(Math.pow(f(base), f((2 * i) / dim)));
      const extra = f(1 / posFreq);
      const inter = f(1 / f(f(factor) * posFreq));
      const ramp = Math.min(Math.max(f(f(i - low) / f(high - low)), 0), 1);
      const extraFactor = f(1 - ramp);
      return f(f(inter * f(1 - extraFactor)) + f(extra * extraFactor));
    });
    return { inv, scale: attn };
  }
  if (type === "longrope" || type === "su") {
    let original = maxPos;
    let factor = scaling!.factor;
    if (cfg.original_max_position_embeddings != null) {
      original = cfg.original_max_position_embeddings;
      factor = maxPos / original;
    }
    const attn = scaling!.attention_factor ?? (factor <= 1 ? 1 : Math.sqrt(1 + Math.log(factor) / Math.log(original)));
    const ext: number[] = T > original ? scaling!.long_factor : scaling!.short_factor;
    const inv = Array.from({ length: dim / 2 }, (_, i) => f(1 / f(f(ext[i]) * f(Math.pow(f(base), f((2 * i) / dim))))));
    return { inv, scale: attn };
  }
  throw new Error(`reference: rope type ${type} not implemented`);
}

/**
 * HF RoPE tables: angle = t · inv_freq (float32), emb = cat(freqs, freqs), cos = emb.cos() · attention_scaling (all
 * float32, emulated with Math.fround); cos/sin `[T, dim]`.
 */
function ropeTables(cfg: Cfg, scaling: Cfg | null, T: number, dim: number, base: number): Rope {
  const { inv, scale } = hfInvFreq(cfg, scaling, dim, base, T);
  const cos = new Float64Array(T * dim);
  const sin = new Float64Array(T * dim);
  for (let i = 0; i < dim / 2; i++) {
    for (let t = 0; t < T; t++) {
      const a = f(t * inv[i]);
      cos[t * dim + i] = cos[t * dim + i + dim / 2] = f(f(Math.cos(a)) * f(scale));
      sin[t * dim + i] = sin[t * dim + i + dim / 2] = f(f(Math.sin(a)) * f(scale));
    }
  }
  return { cos, sin, dim };
}

/** The scaling dict of a config (`rope_scaling`, else `rope_parameters`) or null. */
function scalingOf(cfg: Cfg): Cfg | null {
  const s = cfg.rope_scaling ?? cfg.rope_parameters ?? null;
  return s && s.full_attention ? s.full_attention : s;
}

/**
 * `x·cos + rotate_half(x)·sin` on the first `dim` features of every head vector of x `[B, T, heads, hd]`
 * (`rotate_half(x) = cat(-x[dim/2:], x[:dim/2])`); the remaining features pass through (partial rotary).
 */
function applyRope(x: Float64Array, B: number, T: number, heads: number, hd: number, rope: Rope): Float64Array {
  const { cos, sin, dim } = rope;
  const y = Float64Array.from(x);
  const half = dim / 2;
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      for (let h = 0; h < heads; h++) {
        const o = ((b * T + t) * heads + h) * hd;
        for (let i = 0; i < dim; i++) {
          const rot = i < half ? -x[o + i + half] : x[o + i - half];
          y[o + i] = x[o + i] * cos[t * dim + i] + rot * sin[t * dim + i];
        }
      }
    }
  }
  return y;
}

interface AttnDims {
  B: number;
  T: number;
  H: number;
  KV: number;
  hd: number;
}

/**
 * Eager causal attention: q `[B, T, H, hd]`, k/v `[B, T, KV, hd]`; query head h reads kv head h // (H/KV)
 * (`repeat_kv`); masked keys get probability exactly 0 (HF fills them with finfo.min). Returns z `[B, T, H·hd]`
 * and probabilities `[B, H, T, T]`.
 */
function attend(q: Float64Array, k: Float64Array, v: Float64Array, d: AttnDims, scale: number, visible: (i: number, j: number) => boolean, softcap?: number) {
  const { B, T, H, KV, hd } = d;
  const z = new Float64Array(B * T * H * hd);
  const probs = new Float64Array(B * H * T * T);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const g = Math.floor(h / (H / KV));
      for (let i = 0; i < T; i++) {
        const s = new Float64Array(T).fill(-Infinity);
        for (let j = 0; j < T; j++) {
          if (!visible(i, j)) continue;
          let dot = 0;
          for (let e = 0; e < hd; e++) dot += q[((b * T + i) * H + h) * hd + e] * k[((b * T + j) * KV + g) * hd + e];
          s[j] = softcap ? Math.tanh((dot * scale) / softcap) * softcap : dot * scale; // Gemma 2: cap, then mask
        }
        const m = Math.max(...s);
        let sum = 0;
        for (let j = 0; j < T; j++) sum += s[j] === -Infinity ? 0 : Math.exp(s[j] - m);
        for (let j = 0; j < T; j++) {
          const p = s[j] === -Infinity ? 0 : Math.exp(s[j] - m) / sum;
          probs[((b * H + h) * T + i) * T + j] = p;
          for (let e = 0; e < hd; e++) z[((b * T + i) * H + h) * hd + e] += p * v[((b * T + j) * KV + g) * hd + e];
        }
      }
    }
  }
  return { z, probs };
}

/** Zeroes features [head·hd, (head+1)·hd) of every row of z `[n, H·hd]` (a copy). */
function zeroHead(z: Float64Array, H: number, hd: number, head: number): Float64Array {
  const y = Float64Array.from(z);
  for (let r = 0; r < z.length / (H * hd); r++) y.fill(0, r * H * hd + head * hd, r * H * hd + (head + 1) * hd);
  return y;
}

/** Columns [from, to) of rows of width `w`. */
function cols(x: Float64Array, w: number, from: number, to: number): Float64Array {
  const n = x.length / w;
  const y = new Float64Array(n * (to - from));
  for (let r = 0; r < n; r++) y.set(x.subarray(r * w + from, r * w + to), r * (to - from));
  return y;
}

// ------------------------------------------------------------------------------------------------ families

interface Ctx {
  cfg: Cfg;
  W: (name: string) => RefTensor;
  has: (name: string) => boolean;
  B: number;
  T: number;
}

export interface LayerOut {
  x: Float64Array;
  probs: Float64Array;
  z: Float64Array;
}

/** Everything that differs between families, written from each HF modeling file. */
interface Family {
  embed(ids: number[][]): Float64Array;
  layer(l: number, x: Float64Array, ablateHead: number | null): LayerOut;
  finalNorm(x: Float64Array): Float64Array;
  /** The lm_head weight `[V, D]` (tied ones are the token embedding). */
  head(): RefTensor;
  /** The lm_head bias `[V]` (Phi). */
  headBias?(): RefTensor;
  /** Final logit soft-capping tanh(l / c) · c (Gemma 2). */
  logitCap?: number;
  D: number;
}

const causal = (i: number, j: number) => j <= i;
/** Keys i - W < j <= i (GPT-Neo local layers, Mistral's sliding window). */
const windowed = (W: number) => (i: number, j: number) => j <= i && j > i - W;

function gatherRows(emb: RefTensor, ids: number[][]): Float64Array {
  const D = emb.shape[1];
  const flat = ids.flat();
  const y = new Float64Array(flat.length * D);
  flat.forEach((id, r) => y.set(emb.data.subarray(id * D, (id + 1) * D), r * D));
  return y;
}

/** modeling_gpt2.py: Conv1D `[in, out]`, c_attn → [Q | K | V], gelu_new, scale 1/sqrt(hd), tied head. */
function gpt2(c: Ctx): Family {
  const { cfg, W, B, T } = c;
  const D = cfg.n_embd, H = cfg.n_head, hd = D / H, eps = cfg.layer_norm_epsilon;
  const n = B * T;
  const p = (s: string) => (c.has("transformer." + s) ? "transformer." + s : s);
  const act = activation(cfg.activation_function);
  return {
    D,
    embed(ids) {
      const x = gatherRows(W(p("wte.weight")), ids);
      const wpe = W(p("wpe.weight"));
      for (let r = 0; r < n; r++) for (let i = 0; i < D; i++) x[r * D + i] += wpe.data[(r % T) * D + i];
      return x;
    },
    layer(l, x, ablate) {
      const q = (s: string) => W(p(`h.${l}.${s}`));
      const h1 = layerNorm(x, D, q("ln_1.weight").data, q("ln_1.bias").data, eps);
      const qkv = conv1d(h1, n, q("attn.c_attn.weight"), q("attn.c_attn.bias"));
      const { z, probs } = attend(cols(qkv, 3 * D, 0, D), cols(qkv, 3 * D, D, 2 * D), cols(qkv, 3 * D, 2 * D, 3 * D), { B, T, H, KV: H, hd }, 1 / Math.sqrt(hd), causal);
      const a = conv1d(ablate === null ? z : zeroHead(z, H, hd, ablate), n, q("attn.c_proj.weight"), q("attn.c_proj.bias"));
      const mid = add(x, a);
      const h2 = layerNorm(mid, D, q("ln_2.weight").data, q("ln_2.bias").data, eps);
      const m = conv1d(conv1d(h2, n, q("mlp.c_fc.weight"), q("mlp.c_fc.bias")).map(act), n, q("mlp.c_proj.weight"), q("mlp.c_proj.bias"));
      return { x: add(mid, m), probs, z };
    },
    finalNorm: (x) => layerNorm(x, D, W(p("ln_f.weight")).data, W(p("ln_f.bias")).data, eps),
    head: () => (c.has("lm_head.weight") ? W("lm_head.weight") : W(p("wte.weight"))),
  };
}

/**
 * modeling_gpt_neo.py: separate q/k/v `nn.Linear` without bias, out_proj with bias, NO score scaling, local layers
 * mask `bias ^ tril(bias, -window_size)` (keys i - W < j <= i), `nn.Linear` MLP, learned positions, tied head.
 */
function gptNeo(c: Ctx): Family {
  const { cfg, W, B, T } = c;
  const D = cfg.hidden_size, H = cfg.num_heads, hd = D / H, eps = cfg.layer_norm_epsilon;
  const n = B * T;
  const act = activation(cfg.activation_function);
  const types: string[] = cfg.attention_layers ?? cfg.attention_types.flatMap((it: [string[], number]) => Array.from({ length: it[1] }, () => it[0]).flat());
  return {
    D,
    embed(ids) {
      const x = gatherRows(W("transformer.wte.weight"), ids);
      const wpe = W("transformer.wpe.weight");
      for (let r = 0; r < n; r++) for (let i = 0; i < D; i++) x[r * D + i] += wpe.data[(r % T) * D + i];
      return x;
    },
    layer(l, x, ablate) {
      const q = (s: string) => W(`transformer.h.${l}.${s}`);
      const h1 = layerNorm(x, D, q("ln_1.weight").data, q("ln_1.bias").data, eps);
      const a = "attn.attention.";
      const mask = types[l] === "local" ? windowed(cfg.window_size) : causal;
      const { z, probs } = attend(linear(h1, n, q(a + "q_proj.weight")), linear(h1, n, q(a + "k_proj.weight")), linear(h1, n, q(a + "v_proj.weight")), { B, T, H, KV: H, hd }, 1, mask);
      const o = linear(ablate === null ? z : zeroHead(z, H, hd, ablate), n, q(a + "out_proj.weight"), q(a + "out_proj.bias"));
      const mid = add(x, o);
      const h2 = layerNorm(mid, D, q("ln_2.weight").data, q("ln_2.bias").data, eps);
      const m = linear(linear(h2, n, q("mlp.c_fc.weight"), q("mlp.c_fc.bias")).map(act), n, q("mlp.c_proj.weight"), q("mlp.c_proj.bias"));
      return { x: add(mid, m), probs, z };
    },
    finalNorm: (x) => layerNorm(x, D, W("transformer.ln_f.weight").data, W("transformer.ln_f.bias").data, eps),
    head: () => (c.has("lm_head.weight") ? W("lm_head.weight") : W("transformer.wte.weight")),
  };
}

/**
 * modeling_gpt_neox.py: `query_key_value` output viewed `[T, H, 3·hd]` (per head q, k, v blocks), rotary on the
 * first int(hd · rotary_pct) features (base rotary_emb_base), scale hd^-0.5, parallel residual
 * `x + attn(ln1 x) + mlp(ln2 x)` when use_parallel_residual, untied embed_out.
 */
function gptNeox(c: Ctx): Family {
  const { cfg, W, B, T } = c;
  const D = cfg.hidden_size, H = cfg.num_attention_heads, hd = D / H, eps = cfg.layer_norm_eps;
  const n = B * T;
  const act = activation(cfg.hidden_act);
  const rot = Math.floor(hd * (cfg.rotary_pct ?? cfg.partial_rotary_factor));
  const base = cfg.rotary_emb_base ?? cfg.rope_theta;
  return {
    D,
    embed: (ids) => gatherRows(W("gpt_neox.embed_in.weight"), ids),
    layer(l, x, ablate) {
      const q = (s: string) => W(`gpt_neox.layers.${l}.${s}`);
      const bias = (s: string) => (c.has(`gpt_neox.layers.${l}.${s}`) ? q(s) : undefined);
      const h1 = layerNorm(x, D, q("input_layernorm.weight").data, q("input_layernorm.bias").data, eps);
      const qkv = linear(h1, n, q("attention.query_key_value.weight"), bias("attention.query_key_value.bias")); // [n, H·3·hd]
      const part = (s: number) => {
        const y = new Float64Array(n * H * hd);
        for (let r = 0; r < n; r++) for (let h = 0; h < H; h++) for (let e = 0; e < hd; e++) y[(r * H + h) * hd + e] = qkv[r * 3 * D + h * 3 * hd + s * hd + e];
        return y;
      };
      const rope = ropeTables(cfg, scalingOf(cfg), T, rot, base);
      const Q = applyRope(part(0), B, T, H, hd, rope);
      const K = applyRope(part(1), B, T, H, hd, rope);
      const { z, probs } = attend(Q, K, part(2), { B, T, H, KV: H, hd }, 1 / Math.sqrt(hd), causal);
      const a = linear(ablate === null ? z : zeroHead(z, H, hd, ablate), n, q("attention.dense.weight"), bias("attention.dense.bias"));
      const mlp = (h: Float64Array) => linear(linear(h, n, q("mlp.dense_h_to_4h.weight"), q("mlp.dense_h_to_4h.bias")).map(act), n, q("mlp.dense_4h_to_h.weight"), q("mlp.dense_4h_to_h.bias"));
      const ln2 = (y: Float64Array) => layerNorm(y, D, q("post_attention_layernorm.weight").data, q("post_attention_layernorm.bias").data, eps);
      if (cfg.use_parallel_residual) return { x: add(x, a, mlp(ln2(x))), probs, z };
      const mid = add(x, a);
      return { x: add(mid, mlp(ln2(mid))), probs, z };
    },
    finalNorm: (x) => layerNorm(x, D, W("gpt_neox.final_layer_norm.weight").data, W("gpt_neox.final_layer_norm.bias").data, eps),
    head: () => (c.has("embed_out.weight") ? W("embed_out.weight") : W("gpt_neox.embed_in.weight")),
  };
}

/** The version a config was saved with, [major, minor] (save_pretrained writes `transformers_version`). */
function savedBefore(cfg: Cfg, major: number, minor: number): boolean {
  const m = /^(\d+)\.(\d+)/.exec(String(cfg.transformers_version ?? ""));
  return m !== null && (Number(m[1]) < major || (Number(m[1]) === major && Number(m[2]) < minor));
}

/**
 * The Llama-like decoder families (modeling_llama / mistral / qwen2 / qwen3 / gemma / gemma2 / gemma3 / phi3 /
 * stablelm / olmo / olmo2): one function, with every difference spelled out from the HF files.
 */
function llamaLike(c: Ctx): Family {
  const { cfg, W, B, T } = c;
  const type: string = cfg.model_type;
  const gemma2or3 = type === "gemma2" || type === "gemma3_text";
  const gemmaAny = type === "gemma" || gemma2or3;
  const D = cfg.hidden_size, H = cfg.num_attention_heads;
  const KV = cfg.num_key_value_heads ?? H;
  // gemma*: head_dim from config; llama / mistral / qwen3 / olmo*: config.head_dim when set (null → hidden/heads)
  const hd = gemmaAny || (["mistral", "llama", "qwen3"].includes(type) && cfg.head_dim) ? cfg.head_dim : D / H;
  const n = B * T;
  const isLN = type === "stablelm"; // nn.LayerNorm with bias
  const eps = isLN ? cfg.layer_norm_eps : type === "olmo" ? 1e-5 : cfg.rms_norm_eps;
  const offset = gemmaAny ? 1 : 0; // Gemma*RMSNorm: * (1 + w)
  const partial = type === "stablelm" ? cfg.partial_rotary_factor : type === "phi3" ? (cfg.partial_rotary_factor ?? 1) : 1;
  const rot = Math.floor(hd * partial);
  const base = cfg.rope_theta;
  // gemma 4.43: hidden_activation, else gelu_pytorch_tanh (hidden_act ignored); gemma2/3 read hidden_activation
  const act = activation(gemmaAny ? (cfg.hidden_activation ?? "gelu_pytorch_tanh") : cfg.hidden_act);
  // gemma2/3: query_pre_attn_scalar ** -0.5; others head_dim ** -0.5
  const scale = gemma2or3 ? cfg.query_pre_attn_scalar ** -0.5 : 1 / Math.sqrt(hd);
  const ones = new Float64Array(D).fill(1);
  const norm = (x: Float64Array, name: string) => {
    if (type === "olmo") return layerNorm(x, D, ones, null, eps); // OlmoLayerNorm: F.layer_norm without parameters
    return isLN ? layerNorm(x, D, W(name + ".weight").data, W(name + ".bias").data, eps) : rmsNorm(x, D, W(name + ".weight").data, eps, offset);
  };
  /** Whether layer l is a sliding-window layer, and its window. */
  const sliding = (l: number): number | null => {
    const W_: number | null = cfg.sliding_window ?? null;
    if (W_ === null) return null;
    if (type === "mistral") return W_; // every layer (4.43 `_update_causal_mask`: masked when j <= i - W)
    // qwen2 / phi3: 4.42–4.44 eager masks ignore the window; newer versions follow the per-layer rules
    if (type === "phi3") return savedBefore(cfg, 4, 45) ? null : W_;
    if (type === "qwen2" || type === "qwen3") {
      if (!cfg.use_sliding_window || savedBefore(cfg, 4, 45)) return null;
      return (cfg.layer_types ? cfg.layer_types[l] === "sliding_attention" : l >= cfg.max_window_layers) ? W_ : null;
    }
    if (cfg.layer_types) return cfg.layer_types[l] === "sliding_attention" ? W_ : null;
    if (type === "gemma2") return l % 2 === 0 ? W_ : null; // is_sliding = not bool(layer_idx % 2)
    if (type === "gemma3_text") return (l + 1) % (cfg.sliding_window_pattern ?? 6) !== 0 ? W_ : null;
    return null;
  };
  const mask = (l: number) => (sliding(l) === null ? causal : windowed(sliding(l)!));
  /** Gemma 3: sliding layers use a default RoPE at rope_local_base_freq; global layers rope_theta with the scaling. */
  const ropeFor = (l: number): Rope =>
    type === "gemma3_text" && sliding(l) !== null ? ropeTables(cfg, null, T, rot, cfg.rope_local_base_freq) : ropeTables(cfg, scalingOf(cfg), T, rot, base);
  const clip = (x: Float64Array) => (type === "olmo" && cfg.clip_qkv != null ? x.map((v) => Math.min(Math.max(v, -cfg.clip_qkv), cfg.clip_qkv)) : x);
  /** q, k, v `[n, heads·hd]` from this family's projection layout. */
  const qkv = (l: number, h: Float64Array) => {
    const a = (s: string) => W(`model.layers.${l}.self_attn.${s}`);
    const b = (s: string) => (c.has(`model.layers.${l}.self_attn.${s}`) ? a(s) : undefined);
    if (type === "phi3") {
      const all = linear(h, n, a("qkv_proj.weight")); // [Q | K | V] blocks, K/V sized for KV heads
      const w = (H + 2 * KV) * hd;
      return [cols(all, w, 0, H * hd), cols(all, w, H * hd, (H + KV) * hd), cols(all, w, (H + KV) * hd, w)];
    }
    return [linear(h, n, a("q_proj.weight"), b("q_proj.bias")), linear(h, n, a("k_proj.weight"), b("k_proj.bias")), linear(h, n, a("v_proj.weight"), b("v_proj.bias"))].map(clip);
  };
  /** StableLM qk_layernorm: per-head nn.LayerNorm(hd, bias=False), weights `norms.{h}.weight`. */
  const headNorm = (x: Float64Array, heads: number, prefix: string) => {
    const y = new Float64Array(x.length);
    for (let h = 0; h < heads; h++) {
      const w = W(`${prefix}.norms.${h}.weight`).data;
      for (let r = 0; r < n; r++) {
        const o = (r * heads + h) * hd;
        y.set(layerNorm(x.subarray(o, o + hd), hd, w, null, eps), o);
      }
    }
    return y;
  };
  /** Qwen3 / Gemma 3: RMSNorm(head_dim) on each head vector, one weight for all heads. */
  const perHeadRms = (x: Float64Array, name: string) => rmsNorm(x, hd, W(name).data, eps, offset);
  const mlp = (l: number, h: Float64Array) => {
    const m = (s: string) => W(`model.layers.${l}.mlp.${s}`);
    const mb = (s: string) => (c.has(`model.layers.${l}.mlp.${s}`) ? m(s) : undefined); // Llama mlp_bias
    const I = cfg.intermediate_size;
    let gate: Float64Array, up: Float64Array;
    if (type === "phi3") {
      const gu = linear(h, n, m("gate_up_proj.weight")); // chunk(2): gate first, then up
      gate = cols(gu, 2 * I, 0, I);
      up = cols(gu, 2 * I, I, 2 * I);
    } else {
      gate = linear(h, n, m("gate_proj.weight"), mb("gate_proj.bias"));
      up = linear(h, n, m("up_proj.weight"), mb("up_proj.bias"));
    }
    return linear(gate.map((g, i) => act(g) * up[i]), n, m("down_proj.weight"), mb("down_proj.bias"));
  };
  return {
    D,
    embed(ids) {
      const x = gatherRows(W("model.embed_tokens.weight"), ids);
      // Gemma*: * torch.tensor(hidden_size ** 0.5, dtype=float32)
      return gemmaAny ? x.map((v) => v * Math.fround(Math.sqrt(D))) : x;
    },
    layer(l, x, ablate) {
      const p = `model.layers.${l}.`;
      const h1 = type === "olmo2" ? x : norm(x, p + "input_layernorm"); // OLMo 2 has no input norm
      let [q, k, v] = qkv(l, h1);
      if (type === "stablelm" && cfg.qk_layernorm) {
        q = headNorm(q, H, p + "self_attn.q_layernorm");
        k = headNorm(k, KV, p + "self_attn.k_layernorm");
      }
      if (type === "qwen3" || type === "gemma3_text") {
        q = perHeadRms(q, p + "self_attn.q_norm.weight");
        k = perHeadRms(k, p + "self_attn.k_norm.weight");
      }
      if (type === "olmo2") {
        // Olmo2RMSNorm(num_heads * head_dim) on the whole projection, before the view into heads
        q = rmsNorm(q, H * hd, W(p + "self_attn.q_norm.weight").data, eps, 0);
        k = rmsNorm(k, KV * hd, W(p + "self_attn.k_norm.weight").data, eps, 0);
      }
      const rope = ropeFor(l);
      q = applyRope(q, B, T, H, hd, rope);
      k = applyRope(k, B, T, KV, hd, rope);
      const cap = gemma2or3 ? cfg.attn_logit_softcapping : null;
      const { z, probs } = attend(q, k, v, { B, T, H, KV, hd }, scale, mask(l), cap ?? undefined);
      const ob = c.has(p + "self_attn.o_proj.bias") ? W(p + "self_attn.o_proj.bias") : undefined;
      let a = linear(ablate === null ? z : zeroHead(z, H, hd, ablate), n, W(p + "self_attn.o_proj.weight"), ob);
      if (type === "stablelm" && cfg.use_parallel_residual) return { x: add(x, a, mlp(l, h1)), probs, z }; // mlp(ln1 x)
      if (gemma2or3) {
        a = norm(a, p + "post_attention_layernorm");
        const mid = add(x, a);
        return { x: add(mid, norm(mlp(l, norm(mid, p + "pre_feedforward_layernorm")), p + "post_feedforward_layernorm")), probs, z };
      }
      if (type === "olmo2") {
        const mid = add(x, norm(a, p + "post_attention_layernorm"));
        return { x: add(mid, norm(mlp(l, mid), p + "post_feedforward_layernorm")), probs, z };
      }
      const mid = add(x, a);
      return { x: add(mid, mlp(l, norm(mid, p + "post_attention_layernorm"))), probs, z };
    },
    finalNorm: (x) => norm(x, "model.norm"),
    head: () => (c.has("lm_head.weight") ? W("lm_head.weight") : W("model.embed_tokens.weight")),
    logitCap: gemma2or3 ? (cfg.final_logit_softcapping ?? undefined) : undefined,
  };
}

/**
 * modeling_phi.py (Phi-1/1.5/2): one LayerNorm (with bias) feeds attention and MLP in parallel,
 * `x + dense(attn(ln x)) + fc2(gelu_new(fc1(ln x)))`; q/k/v/dense and fc1/fc2 with biases; rotary on the first
 * int(head_dim · partial_rotary_factor) features; final_layernorm; lm_head with bias.
 */
function phi(c: Ctx): Family {
  const { cfg, W, B, T } = c;
  const D = cfg.hidden_size, H = cfg.num_attention_heads, KV = cfg.num_key_value_heads ?? H, hd = D / H;
  const eps = cfg.layer_norm_eps;
  const n = B * T;
  const act = activation(cfg.hidden_act);
  const rot = Math.floor(hd * cfg.partial_rotary_factor);
  return {
    D,
    embed: (ids) => gatherRows(W("model.embed_tokens.weight"), ids),
    layer(l, x, ablate) {
      const q = (s: string) => W(`model.layers.${l}.${s}`);
      const h = layerNorm(x, D, q("input_layernorm.weight").data, q("input_layernorm.bias").data, eps);
      const a = "self_attn.";
      const rope = ropeTables(cfg, scalingOf(cfg), T, rot, cfg.rope_theta);
      const Q = applyRope(linear(h, n, q(a + "q_proj.weight"), q(a + "q_proj.bias")), B, T, H, hd, rope);
      const K = applyRope(linear(h, n, q(a + "k_proj.weight"), q(a + "k_proj.bias")), B, T, KV, hd, rope);
      const V = linear(h, n, q(a + "v_proj.weight"), q(a + "v_proj.bias"));
      const { z, probs } = attend(Q, K, V, { B, T, H, KV, hd }, 1 / Math.sqrt(hd), causal);
      const o = linear(ablate === null ? z : zeroHead(z, H, hd, ablate), n, q(a + "dense.weight"), q(a + "dense.bias"));
      const m = linear(linear(h, n, q("mlp.fc1.weight"), q("mlp.fc1.bias")).map(act), n, q("mlp.fc2.weight"), q("mlp.fc2.bias"));
      return { x: add(x, o, m), probs, z };
    },
    finalNorm: (x) => layerNorm(x, D, W("model.final_layernorm.weight").data, W("model.final_layernorm.bias").data, eps),
    head: () => W("lm_head.weight"),
    headBias: () => W("lm_head.bias"),
  };
}

const FAMILIES: Record<string, (c: Ctx) => Family> = {
  gpt2, gpt_neo: gptNeo, gpt_neox: gptNeox, llama: llamaLike, mistral: llamaLike, qwen2: llamaLike, gemma: llamaLike,
  phi3: llamaLike, stablelm: llamaLike, gemma2: llamaLike, gemma3_text: llamaLike, qwen3: llamaLike, olmo: llamaLike,
  olmo2: llamaLike, phi,
};

/** The reference's pieces for a checkpoint folder, for layer-by-layer (teacher-forced) comparisons. */
export interface ReferenceModel {
  nLayers: number;
  embed(ids: number[][]): Float64Array;
  /** One decoder layer on x `[B, T, D]`: output `[B, T, D]`, probabilities `[B, H, T, T]`, z `[B, T, H·hd]`. */
  layer(l: number, x: ArrayLike<number>, ablateHead?: number): LayerOut;
  finalNorm(x: ArrayLike<number>): Float64Array;
  /** Logits `[B, T, V]` from final-norm output `[B, T, D]`. */
  unembed(x: ArrayLike<number>): Float64Array;
}

export function referenceModel(dir: string, B: number, T: number): ReferenceModel {
  const cfg = JSON.parse(fs.readFileSync(path.join(dir, "config.json"), "utf8")) as Cfg;
  const tensors = readTensors(path.join(dir, "model.safetensors"));
  const W = (name: string) => tensors.get(name) ?? (() => { throw new Error(`reference: ${name} not in checkpoint`); })();
  const make = FAMILIES[cfg.model_type];
  if (!make) throw new Error(`reference: model_type ${cfg.model_type} not implemented`);
  const fam = make({ cfg, W, has: (n) => tensors.has(n), B, T });
  return {
    nLayers: cfg.num_hidden_layers ?? cfg.n_layer ?? cfg.num_layers,
    embed: (ids) => fam.embed(ids),
    layer: (l, x, ablateHead) => fam.layer(l, Float64Array.from(x), ablateHead ?? null),
    finalNorm: (x) => fam.finalNorm(Float64Array.from(x)),
    unembed: (x) => {
      const logits = linear(Float64Array.from(x), B * T, fam.head(), fam.headBias?.());
      const cap = fam.logitCap;
      return cap ? logits.map((v) => Math.tanh(v / cap) * cap) : logits;
    },
  };
}

/** Runs the reference on a Hugging Face checkpoint folder (config.json + model.safetensors). */
export function referenceForward(dir: string, ids: number[][], ablation?: Ablation): RefOutputs {
  const B = ids.length, T = ids[0].length;
  const fam = referenceModel(dir, B, T);
  let x = fam.embed(ids);
  const hidden = [x];
  const attentions: Float64Array[] = [];
  const z: Float64Array[] = [];
  const L = fam.nLayers;
  for (let l = 0; l < L; l++) {
    const out = fam.layer(l, x, ablation && ablation.layer === l ? ablation.head : undefined);
    x = out.x;
    attentions.push(out.probs);
    z.push(out.z);
    if (l < L - 1) hidden.push(x);
  }
  const final = fam.finalNorm(x);
  hidden.push(final);
  return { logits: fam.unembed(final), hidden, attentions, z };
}
