/**
 * The normalised model description every shared component reads (`model.cfg`), and the parameter layout
 * every adapter produces. Architecture differences are flags here; the wiring lives in the adapters.
 */
import type * as tf from "@tensorflow/tfjs";

export type FamilyName = "gpt2" | "gpt-neo" | "gpt-neox" | "llama" | "gemma" | "phi3" | "qwen2" | "mistral" | "stable-lm";

export type Activation = "gelu_new" | "gelu" | "gelu_pytorch_tanh" | "relu" | "silu";

export interface ModelDims {
  family: FamilyName;
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
  qNorm?: tf.Tensor2D; // [head, d_head]    per-head LayerNorm weight on queries (when cfg.qkNorm)
  kNorm?: tf.Tensor2D; // [kv_head, d_head] per-head LayerNorm weight on keys (when cfg.qkNorm)
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
  ln1: NormParams;
  ln2: NormParams;
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
