/**
 * Helpers shared by the adapters: reading config fields whose spelling or meaning drifted across transformers
 * versions, the dims of a Llama-like decoder, and the weight layouts several families share (Llama-style
 * `q/k/v/o_proj` attention, `gate/up/down_proj` MLP, q/k norms, sandwich norms).
 */
import * as tf from "@tensorflow/tfjs";
import { fail, show } from "../../errors";
import type { Activation, AttnParams, LayerParams, MlpParams, ModelDims, ModelParams, NormParams } from "../types";
import { transposeData, type WeightReader } from "../weights";
import { type HfConfig, attentionHeads, firstOf, headDim, nestedRope, num, posInt, ropeTheta, tokenId } from "./adapter";

/** Hugging Face `ACT2FN` names we implement, mapped to our activations. */
const ACTIVATIONS: Record<string, Activation> = {
  gelu_new: "gelu_new", gelu: "gelu", gelu_pytorch_tanh: "gelu_pytorch_tanh", relu: "relu", silu: "silu", swish: "silu",
};

/** The activation named by `hf[key]`, or a clear error naming the family and the supported names. */
export function activation(hf: HfConfig, key: string, family: string): Activation {
  const name = hf[key];
  return ACTIVATIONS[String(name)] ?? fail(`${family}: ${key} ${show(name)} is not supported (expected one of ${Object.keys(ACTIVATIONS).join(", ")})`);
}

/** `transformers_version` of a saved config.json as [major, minor], or null when absent (a user-made config). */
export function savedWithVersion(hf: HfConfig): [number, number] | null {
  const m = typeof hf.transformers_version === "string" ? /^(\d+)\.(\d+)/.exec(hf.transformers_version) : null;
  return m ? [Number(m[1]), Number(m[2])] : null;
}

/**
 * True when the config was saved by a transformers older than major.minor. Used only where the eager forward
 * pass changed between versions for the same config (documented at each use); without a version we follow the
 * newer behaviour.
 */
export function savedBefore(hf: HfConfig, major: number, minor: number): boolean {
  const v = savedWithVersion(hf);
  return v !== null && (v[0] < major || (v[0] === major && v[1] < minor));
}

/**
 * The fraction of each head's features that is rotated: `partial_rotary_factor` (StableLM, Phi-3, transformers 5
 * `rope_parameters`) or GPT-NeoX's older `rotary_pct`, else the family default.
 */
export function partialRotaryFactor(hf: HfConfig, fallback: number): number {
  // The nested value first (transformers 5), since the top-level fields may hold the config class's defaults.
  const v = nestedRope(hf, "partial_rotary_factor") ?? firstOf(hf, ["partial_rotary_factor", "rotary_pct"]);
  if (v === undefined) return fallback;
  if (typeof v !== "number" || !(v > 0 && v <= 1)) fail(`config field partial_rotary_factor/rotary_pct must be a number in (0, 1], got ${show(v)}`);
  return v;
}

/** Rotated features per head: `int(head_dim * factor)` exactly as Hugging Face computes it; must be even (rotate-half). */
export function rotaryDims(dHead: number, factor: number, family: string): number {
  const r = Math.floor(dHead * factor);
  if (r <= 0 || r % 2 !== 0) fail(`${family}: head_dim ${dHead} × partial rotary factor ${factor} gives ${r} rotary dims; it must be a positive even number`);
  return r;
}

/** A positive integer window, or null for `null`/absent. */
export function windowSize(hf: HfConfig, key: string): number | null {
  const w = hf[key];
  if (w === null || w === undefined) return null;
  if (typeof w !== "number" || !Number.isInteger(w) || w <= 0) fail(`config field ${key} must be a positive integer or null, got ${show(w)}`);
  return w;
}

export function norm1d(r: WeightReader, name: string, d: number, withBias: boolean): NormParams {
  return { w: r.tensor1d(name + ".weight", d), b: withBias ? r.tensor1d(name + ".bias", d) : undefined };
}

/**
 * A second copy of a norm's weights, for a parallel block (Phi, StableLM) whose MLP reads the attention's norm:
 * the model then owns two tensors, one per hook point.
 */
export function copyNorm(n: NormParams): NormParams {
  return { w: n.w.clone(), b: n.b?.clone() };
}

/** Optional bias of an `nn.Linear`: read when the config says the layer has one. */
function bias(r: WeightReader, name: string, n: number, present: boolean): tf.Tensor1D | undefined {
  return present ? r.tensor1d(name + ".bias", n) : undefined;
}

/** Llama-style attention: separate `q_proj`, `k_proj`, `v_proj`, `o_proj` `nn.Linear`s (stored `[out, in]`). */
export function separateQkv(r: WeightReader, c: ModelDims, p: string, bias_: { qkv: boolean; o: boolean }): AttnParams {
  const d = c.dModel;
  const qDim = c.nHeads * c.dHead;
  const kvDim = c.nKvHeads * c.dHead;
  return {
    wQ: r.linear(p + "q_proj.weight", qDim, d), bQ: bias(r, p + "q_proj", qDim, bias_.qkv),
    wK: r.linear(p + "k_proj.weight", kvDim, d), bK: bias(r, p + "k_proj", kvDim, bias_.qkv),
    wV: r.linear(p + "v_proj.weight", kvDim, d), bV: bias(r, p + "v_proj", kvDim, bias_.qkv),
    wO: r.linear(p + "o_proj.weight", d, qDim), bO: bias(r, p + "o_proj", d, bias_.o),
  };
}

/** SwiGLU-style MLP `down(act(gate(x)) * up(x))` from `gate_proj`, `up_proj`, `down_proj` (biases with Llama's `mlp_bias`). */
export function gatedMlp(r: WeightReader, c: ModelDims, p: string, withBias = false): MlpParams {
  return {
    wGate: r.linear(p + "gate_proj.weight", c.dMlp, c.dModel), bGate: bias(r, p + "gate_proj", c.dMlp, withBias),
    wIn: r.linear(p + "up_proj.weight", c.dMlp, c.dModel), bIn: bias(r, p + "up_proj", c.dMlp, withBias),
    wOut: r.linear(p + "down_proj.weight", c.dModel, c.dMlp), bOut: bias(r, p + "down_proj", c.dModel, withBias),
  };
}

/** How a Llama-like family's decoder layer is stored beyond the Llama names. */
export interface LlamaLayerLayout {
  /** Biases on q/k/v and on o (Qwen2 q/k/v; Llama `attention_bias` all four). */
  attnBias: { qkv: boolean; o: boolean };
  /** Biases on gate/up/down (Llama `mlp_bias`). */
  mlpBias?: boolean;
  /**
   * Norm names: "llama" input_layernorm → ln1, post_attention_layernorm → ln2; "gemma2" adds
   * post_attention_layernorm → ln1Post, pre_feedforward_layernorm → ln2, post_feedforward_layernorm → ln2Post;
   * "olmo2" post_attention_layernorm → ln1 and post_feedforward_layernorm → ln2 (both on the sublayer outputs).
   */
  norms?: "llama" | "gemma2" | "olmo2";
}

/** The decoder layers of the Llama-like families (`layers.{l}.self_attn.q_proj` … `mlp.down_proj`), RMSNorm. */
export function llamaLayers(r: WeightReader, c: ModelDims, o: LlamaLayerLayout): LayerParams[] {
  const d = c.dModel;
  return Array.from({ length: c.nLayers }, (_, l) => {
    const p = `layers.${l}.`;
    const n = (name: string) => norm1d(r, p + name, d, false);
    const norms = o.norms === "gemma2"
      ? { ln1: n("input_layernorm"), ln1Post: n("post_attention_layernorm"), ln2: n("pre_feedforward_layernorm"), ln2Post: n("post_feedforward_layernorm") }
      : o.norms === "olmo2"
        ? { ln1: n("post_attention_layernorm"), ln2: n("post_feedforward_layernorm") }
        : { ln1: n("input_layernorm"), ln2: n("post_attention_layernorm") };
    const attn = separateQkv(r, c, p + "self_attn.", o.attnBias);
    if (c.qkRmsNorm) Object.assign(attn, qkNormWeights(r, c, p + "self_attn."));
    return { ...norms, attn, mlp: gatedMlp(r, c, p + "mlp.", o.mlpBias) };
  });
}

/** The attention biases a checkpoint stores: `attention_bias` puts them on q, k, v and o alike. */
export function storedAttnBias(r: WeightReader): { qkv: boolean; o: boolean } {
  const stored = r.has("layers.0.self_attn.q_proj.bias");
  return { qkv: stored, o: stored };
}

/** Embeddings, the Llama-like decoder layers, the final RMSNorm `norm` and `lm_head` (or the tied embeddings). */
export function llamaLikeWeights(r: WeightReader, c: ModelDims, layout: LlamaLayerLayout): ModelParams {
  const wE = r.tensor2d("embed_tokens.weight", c.dVocab, c.dModel);
  return { wE, layers: llamaLayers(r, c, layout), lnFinal: norm1d(r, "norm", c.dModel, false), wU: unembed(r, c, "lm_head.weight", wE) };
}

/**
 * q/k RMSNorm weights as `[heads, d_head]`: `q_norm.weight`/`k_norm.weight` of size d_head shared by every head
 * (Qwen3, Gemma 3: tiled), or of size heads·d_head over the whole projection (OLMo 2: reshaped).
 */
export function qkNormWeights(r: WeightReader, c: ModelDims, p: string): { qNorm: tf.Tensor2D; kNorm: tf.Tensor2D } {
  const read = (name: string, heads: number): tf.Tensor2D => {
    if (c.qkRmsNorm === "projection") return tf.tensor2d(r.data(name, [heads * c.dHead]), [heads, c.dHead]);
    const shared = r.data(name, [c.dHead]);
    const tiled = new Float32Array(heads * c.dHead);
    for (let h = 0; h < heads; h++) tiled.set(shared, h * c.dHead);
    return tf.tensor2d(tiled, [heads, c.dHead]);
  };
  return { qNorm: read(p + "q_norm.weight", c.nHeads), kNorm: read(p + "k_norm.weight", c.nKvHeads) };
}

/** `head_dim` when the config sets it (a null or absent one falls back to hidden_size / num_attention_heads). */
export function explicitHeadDim(hf: HfConfig, dModel: number, nHeads: number): number {
  return hf.head_dim == null ? headDim(dModel, nHeads, "hidden_size", "num_attention_heads") : posInt(hf, "head_dim");
}

/** Where a Llama-like family's config differs from Llama's field names and meanings. */
export interface LlamaLikeFields {
  /** The MLP activation (default: the one `hidden_act` names). */
  act?: Activation;
  /**
   * Where head_dim comes from: "explicit or derived" (default) reads `head_dim` and falls back to hidden_size /
   * num_attention_heads when it is null or absent; "derived" always divides (families whose reproduced modeling
   * code has no head_dim field); "explicit" requires the field (Gemma, whose head_dim is not hidden / heads).
   */
  headDim?: "explicit or derived" | "derived" | "explicit";
  /** The field holding the norm epsilon (default `rms_norm_eps`; the LayerNorm families use `layer_norm_eps`). */
  epsKey?: string;
}

/**
 * The dims of a Llama-like decoder from the Llama field names (hidden_size, num_attention_heads,
 * num_key_value_heads, head_dim, intermediate_size, rms_norm_eps, rope_theta, hidden_act …): RMSNorm before each
 * sublayer, full rotary, gated MLP, scale head_dim^-0.5, full causal attention. Families override what differs.
 */
export function llamaLikeDims(hf: HfConfig, family: string, fields: LlamaLikeFields = {}): ModelDims {
  const act = fields.act ?? activation(hf, "hidden_act", family);
  const { dModel, nHeads, nKvHeads } = attentionHeads(hf);
  const headDimFrom = fields.headDim ?? "explicit or derived";
  const dHead = headDimFrom === "derived" ? headDim(dModel, nHeads, "hidden_size", "num_attention_heads")
    : headDimFrom === "explicit" ? posInt(hf, "head_dim")
      : explicitHeadDim(hf, dModel, nHeads);
  const nLayers = posInt(hf, "num_hidden_layers");
  return {
    family, nLayers, nHeads, nKvHeads, dModel, dHead, dMlp: posInt(hf, "intermediate_size"),
    dVocab: posInt(hf, "vocab_size"), nCtx: posInt(hf, "max_position_embeddings"),
    normKind: "rmsnorm", normEps: num(hf, fields.epsKey ?? "rms_norm_eps"), normWeightOffset: 0,
    positional: "rotary", rotaryDim: dHead, rotaryBase: ropeTheta(hf, 10000), parallelResidual: false, gatedMlp: true, act,
    attnScale: 1 / Math.sqrt(dHead), windows: new Array(nLayers).fill(null), embedScale: 1,
    tiedEmbeddings: Boolean(hf.tie_word_embeddings), bosTokenId: tokenId(hf.bos_token_id),
    eosTokenId: tokenId(hf.eos_token_id), initStd: num(hf, "initializer_range"),
  };
}

/**
 * Per-layer windows from `layer_types` ("sliding_attention" / "full_attention"), else from a rule: null for a
 * full-attention layer, the window for a sliding one.
 */
export function layerWindows(hf: HfConfig, family: string, nLayers: number, window: number | null, sliding: (l: number) => boolean): (number | null)[] {
  const types = hf.layer_types;
  if (Array.isArray(types)) {
    if (types.length !== nLayers) fail(`${family}: layer_types has ${types.length} entries but num_hidden_layers is ${nLayers}`);
    return types.map((t, l) => {
      if (t !== "sliding_attention" && t !== "full_attention") fail(`${family}: layer_types[${l}] is ${show(t)}; expected "sliding_attention" or "full_attention"`);
      return t === "sliding_attention" ? window : null;
    });
  }
  return Array.from({ length: nLayers }, (_, l) => (sliding(l) ? window : null));
}

/** A soft-capping value: a positive number, or undefined for null/absent. */
export function softcapField(hf: HfConfig, key: string): number | undefined {
  const v = hf[key];
  if (v === null || v === undefined) return undefined;
  if (typeof v !== "number" || !(v > 0)) fail(`config field ${key} must be a positive number or null, got ${show(v)}`);
  return v;
}

/** A norm without parameters (OLMo's LayerNorm): weight ones, no bias, so the shared LayerNorm applies it exactly. */
export function plainNorm(d: number): NormParams {
  return { w: tf.ones([d]) as tf.Tensor1D };
}

/**
 * The unembedding `[d_model, vocab]`: `lm_head.weight` (`[vocab, d_model]`) when stored, else (tied weights are not
 * saved by `save_pretrained`) the transposed token embedding.
 */
export function unembed(r: WeightReader, c: ModelDims, headName: string, wE: tf.Tensor2D): tf.Tensor2D {
  if (r.has(headName) || !c.tiedEmbeddings) return r.linear(headName, c.dVocab, c.dModel);
  return tf.transpose(wE) as tf.Tensor2D;
}


/** Rows [from, to) of a row-major `[rows, cols]` matrix (an `nn.Linear` slice of output features), as `[in, out]`. */
export function linearRows(data: Float32Array, cols: number, from: number, to: number): tf.Tensor2D {
  return tf.tensor2d(transposeData(data.subarray(from * cols, to * cols), to - from, cols), [cols, to - from]);
}

/** Elements of `rows` (a list of output-feature indices) gathered from an `nn.Linear` weight, as `[in, out]`. */
export function linearPick(data: Float32Array, cols: number, rows: number[]): tf.Tensor2D {
  const out = new Float32Array(rows.length * cols);
  rows.forEach((row, j) => {
    for (let i = 0; i < cols; i++) out[i * rows.length + j] = data[row * cols + i];
  });
  return tf.tensor2d(out, [cols, rows.length]);
}
