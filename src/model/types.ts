/**
 * The normalised model description every shared component reads (`model.cfg`), and the parameter layout
 * every adapter produces. Architecture differences are flags here; the wiring lives in the adapters.
 */
import type * as tf from "@tensorflow/tfjs";

/** An Arrakis family name: one per adapter in the registry (adapters/index.ts), which this type is derived from. */
export type { FamilyName } from "./adapters";

export type Activation = "gelu_new" | "gelu" | "gelu_pytorch_tanh" | "relu" | "silu";

export interface ModelDims {
  /** The family (a `FamilyName`; typed as a string here so the registry's type can be derived from the adapters). */
  family: string;
  nLayers: number;
  nHeads: number;
  /** Key/value heads: equal to nHeads without grouped-query attention, 1 for multi-query attention. */
  nKvHeads: number;
  dModel: number;
  dHead: number;
  dMlp: number;
  dVocab: number;
  /** Longest sequence the model accepts (learned positions) or was trained for (rotary). */
  nCtx: number;
  normKind: "layernorm" | "rmsnorm";
  normEps: number;
  /** RMSNorm multiplies by (offset + w): 0 normally, 1 for Gemma. */
  normWeightOffset: number;
  positional: "learned" | "rotary";
  /** Number of leading features of each head that are rotated (partial rotary), even. */
  rotaryDim: number;
  rotaryBase: number;
  parallelResidual: boolean;
  gatedMlp: boolean;
  act: Activation;
  /** Attention scores are multiplied by this (1/sqrt(dHead) normally; 1 for GPT-Neo). */
  attnScale: number;
  /** Per layer: null for full causal attention, W for keys with i-W < j <= i. */
  windows: (number | null)[];
  /** Scales the token embedding (sqrt(dModel) for Gemma, else 1). */
  embedScale: number;
  tiedEmbeddings: boolean;
  bosTokenId: number | null;
  eosTokenId: number | null;
  /** Standard deviation for random initialisation (HF `initializer_range`). */
  initStd: number;
  /**
   * Per-head LayerNorm without bias on queries and keys, after the projection and before rotary (StableLM
   * `qk_layernorm`). Absent or false: no such norm.
   */
  qkNorm?: boolean;

  // ---- Flags of the later families. Absent means the neutral behaviour above; an engine that does not implement
  // one of them must refuse a model that sets it (`dimsExtensions` lists the ones a model uses).

  /** RoPE frequency scaling (HF `rope_scaling` / `rope_parameters`); absent: plain RoPE. */
  ropeScaling?: RopeScaling;
  /** Layers with a sliding window rotate with plain RoPE at this base instead (Gemma 3 `rope_local_base_freq`). */
  rotaryBaseLocal?: number;
  /**
   * RMSNorm of queries and keys after the projection, before rotary, with the model's norm eps and weight offset:
   * "head" normalises each head's d_head features with one weight shared by all heads (Qwen3, Gemma 3; stored
   * tiled to `[head, d_head]`), "projection" the whole `head·d_head` projection at once (OLMo 2).
   */
  qkRmsNorm?: "head" | "projection";
  /** Queries, keys and values are clamped to [-clipQkv, clipQkv] after the projection (OLMo `clip_qkv`). */
  clipQkv?: number;
  /** Attention scores become tanh(s / c) · c before the mask (Gemma 2 `attn_logit_softcapping`). */
  attnSoftcap?: number;
  /** Logits become tanh(l / c) · c (Gemma 2 `final_logit_softcapping`). */
  finalSoftcap?: number;
  /**
   * Where the block's norms sit. "pre" (default): ln1/ln2 normalise the attention/MLP input. "sandwich" (Gemma 2,
   * Gemma 3): as "pre", and ln1Post/ln2Post normalise the attention/MLP output before it joins the residual.
   * "post" (OLMo 2): the inputs are not normalised; ln1/ln2 normalise the attention/MLP output.
   */
  normPlacement?: "pre" | "sandwich" | "post";
}

/** RoPE scaling with every field resolved to Hugging Face's value (see rope.ts for the formulas). */
export interface RopeScaling {
  kind: "linear" | "dynamic" | "yarn" | "llama3" | "longrope";
  /** The scaling factor (for yarn/longrope possibly derived from the position counts, as HF derives it). */
  factor: number;
  /** Multiplies cos and sin (yarn, longrope); 1 otherwise. */
  attentionFactor: number;
  /** Positions the model was pretrained for: llama3's old context, yarn's and longrope's original length. */
  originalMaxPositions: number;
  /** `max_position_embeddings` (dynamic NTK compares the sequence length with it). */
  maxPositions: number;
  lowFreqFactor?: number;
  highFreqFactor?: number;
  betaFast?: number;
  betaSlow?: number;
  /** yarn: round the correction range to whole dimensions (HF default true). */
  truncate?: boolean;
  /** longrope: per-frequency divisors for sequences up to / beyond originalMaxPositions. */
  shortFactor?: number[];
  longFactor?: number[];
}

/** The optional flags a model uses, by name (an engine refuses what it does not implement). */
export function dimsExtensions(c: ModelDims): string[] {
  const used: string[] = [];
  if (c.qkNorm) used.push("qkNorm");
  if (c.ropeScaling) used.push(`ropeScaling:${c.ropeScaling.kind}`);
  if (c.rotaryBaseLocal !== undefined) used.push("rotaryBaseLocal");
  if (c.qkRmsNorm) used.push(`qkRmsNorm:${c.qkRmsNorm}`);
  if (c.clipQkv !== undefined) used.push("clipQkv");
  if (c.attnSoftcap !== undefined) used.push("attnSoftcap");
  if (c.finalSoftcap !== undefined) used.push("finalSoftcap");
  if (c.normPlacement && c.normPlacement !== "pre") used.push(`normPlacement:${c.normPlacement}`);
  return used;
}

export interface NormParams {
  w: tf.Tensor1D; // [d]
  b?: tf.Tensor1D; // [d]
}

export interface AttnParams {
  wQ: tf.Tensor2D; // [d_model, head * d_head]   (stored [in, out] so x @ W is a plain 2-D matMul)
  wK: tf.Tensor2D; // [d_model, kv_head * d_head]
  wV: tf.Tensor2D; // [d_model, kv_head * d_head]
  wO: tf.Tensor2D; // [head * d_head, d_model]
  bQ?: tf.Tensor1D;
  bK?: tf.Tensor1D;
  bV?: tf.Tensor1D;
  bO?: tf.Tensor1D;
  qNorm?: tf.Tensor2D; // [head, d_head]    norm weight on queries (cfg.qkNorm or cfg.qkRmsNorm)
  kNorm?: tf.Tensor2D; // [kv_head, d_head] norm weight on keys (cfg.qkNorm or cfg.qkRmsNorm)
}

export interface MlpParams {
  wIn: tf.Tensor2D; // [d_model, d_mlp] (the "up" projection when gated)
  wGate?: tf.Tensor2D; // [d_model, d_mlp]
  wOut: tf.Tensor2D; // [d_mlp, d_model]
  bIn?: tf.Tensor1D;
  bGate?: tf.Tensor1D;
  bOut?: tf.Tensor1D;
}

export interface LayerParams {
  /** The attention sublayer's norm (on its input, or on its output when cfg.normPlacement is "post"). */
  ln1: NormParams;
  /** The MLP sublayer's norm (likewise). */
  ln2: NormParams;
  /** Norms of the attention / MLP outputs when cfg.normPlacement is "sandwich". */
  ln1Post?: NormParams;
  ln2Post?: NormParams;
  attn: AttnParams;
  mlp: MlpParams;
}

export interface ModelParams {
  wE: tf.Tensor2D; // [vocab, d_model]
  wPos?: tf.Tensor2D; // [n_ctx, d_model]
  layers: LayerParams[];
  lnFinal: NormParams;
  wU: tf.Tensor2D; // [d_model, vocab] (pre-transposed unembedding)
  bU?: tf.Tensor1D; // [vocab]
}
