/**
 * Tiny random checkpoints in Hugging Face's exact on-disk format for every family (and variants that exercise
 * their other flags and the RoPE scalings): `config.json` with the fields the transformers config class writes
 * (`save_pretrained` keeps every class attribute), and `model.safetensors` with HF parameter names, tied weights
 * omitted. Shapes: 2 layers, hidden 64, vocab 512, 4 heads (GQA / MQA where the family has it),
 * windows of 4 where the family has local or sliding attention. Weights N(0, 0.2²), norm weights 1 + N(0, 0.2²),
 * biases random, as in test/fixtures/hf.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { writeTensors } from "./safetensors-mini";

type Kind = "w" | "norm" | "bias";
export type Param = [name: string, shape: number[], kind: Kind];

export interface FamilyCase {
  /** Test label, e.g. "gpt-neox" or "gpt-neox (sequential residual)". */
  label: string;
  /** The Arrakis family the adapter registry should pick. */
  family: string;
  config: Record<string, unknown>;
  params: Param[];
}

/** The tiny shape every checkpoint here has: layers, hidden size, vocabulary, positions, heads. */
export const L = 2, D = 64, V = 512, P = 128, H = 4;
const common = { torch_dtype: "float32", transformers_version: "4.43.4", use_cache: true, vocab_size: V, initializer_range: 0.02 };
export const layers = (f: (l: number) => Param[]): Param[] => Array.from({ length: L }, (_, l) => f(l)).flat();

/** Llama-style attention + SwiGLU parameter names under `model.layers.{l}.`. */
export function llamaParams(o: {
  kv: number; hd: number; I: number; qkvBias?: boolean; oBias?: boolean; mlpBias?: boolean; norm?: "rms" | "ln"; post?: boolean; qkNorm?: boolean;
  /** Norm names: Llama's two, Gemma 2's four (sandwich), OLMo 2's two post norms, or none (OLMo). */
  norms?: "llama" | "gemma2" | "olmo2" | "none";
  /** q_norm/k_norm weights: one of size head_dim (Qwen3, Gemma 3) or of the whole projection (OLMo 2). */
  qkRms?: "head" | "projection";
}): Param[] {
  const ln = (name: string): Param[] => (o.norm === "ln" ? [[name + ".weight", [D], "norm"], [name + ".bias", [D], "bias"]] : [[name + ".weight", [D], "norm"]]);
  return layers((l) => {
    const p = `model.layers.${l}.`;
    const a = p + "self_attn.";
    const out: Param[] = [
      ...ln(p + "input_layernorm"),
      [a + "q_proj.weight", [H * o.hd, D], "w"], [a + "k_proj.weight", [o.kv * o.hd, D], "w"], [a + "v_proj.weight", [o.kv * o.hd, D], "w"],
      [a + "o_proj.weight", [D, H * o.hd], "w"],
      [p + "mlp.gate_proj.weight", [o.I, D], "w"], [p + "mlp.up_proj.weight", [o.I, D], "w"], [p + "mlp.down_proj.weight", [D, o.I], "w"],
    ];
    if (o.qkvBias) out.push([a + "q_proj.bias", [H * o.hd], "bias"], [a + "k_proj.bias", [o.kv * o.hd], "bias"], [a + "v_proj.bias", [o.kv * o.hd], "bias"]);
    if (o.oBias) out.push([a + "o_proj.bias", [D], "bias"]);
    if (o.mlpBias) out.push([p + "mlp.gate_proj.bias", [o.I], "bias"], [p + "mlp.up_proj.bias", [o.I], "bias"], [p + "mlp.down_proj.bias", [D], "bias"]);
    const norms = o.norms ?? "llama";
    if (norms === "none" || norms === "olmo2") out.splice(0, 1); // no input_layernorm
    if (norms === "olmo2") out.push(...ln(p + "post_attention_layernorm"), ...ln(p + "post_feedforward_layernorm"));
    if (norms === "gemma2") out.push(...ln(p + "post_attention_layernorm"), ...ln(p + "pre_feedforward_layernorm"), ...ln(p + "post_feedforward_layernorm"));
    if (norms === "llama" && o.post !== false) out.push(...ln(p + "post_attention_layernorm"));
    if (o.qkRms) {
      out.push([a + "q_norm.weight", [o.qkRms === "head" ? o.hd : H * o.hd], "norm"], [a + "k_norm.weight", [o.qkRms === "head" ? o.hd : o.kv * o.hd], "norm"]);
    }
    if (o.qkNorm) {
      for (let h = 0; h < H; h++) out.push([`${a}q_layernorm.norms.${h}.weight`, [o.hd], "norm"]);
      for (let h = 0; h < o.kv; h++) out.push([`${a}k_layernorm.norms.${h}.weight`, [o.hd], "norm"]);
    }
    return out;
  });
}

/** GPT-NeoX's stored tensors, embeddings to unembedding; `I` is the MLP width. */
export function gptNeoxParams(I: number): Param[] {
  return [
    ["gpt_neox.embed_in.weight", [V, D], "w"],
    ...layers((l): Param[] => {
      const p = `gpt_neox.layers.${l}.`;
      return [
        [p + "input_layernorm.weight", [D], "norm"], [p + "input_layernorm.bias", [D], "bias"],
        [p + "post_attention_layernorm.weight", [D], "norm"], [p + "post_attention_layernorm.bias", [D], "bias"],
        [p + "attention.query_key_value.weight", [3 * D, D], "w"], [p + "attention.query_key_value.bias", [3 * D], "bias"],
        [p + "attention.dense.weight", [D, D], "w"], [p + "attention.dense.bias", [D], "bias"],
        [p + "mlp.dense_h_to_4h.weight", [I, D], "w"], [p + "mlp.dense_h_to_4h.bias", [I], "bias"],
        [p + "mlp.dense_4h_to_h.weight", [D, I], "w"], [p + "mlp.dense_4h_to_h.bias", [D], "bias"],
      ];
    }),
    ["gpt_neox.final_layer_norm.weight", [D], "norm"], ["gpt_neox.final_layer_norm.bias", [D], "bias"],
    ["embed_out.weight", [V, D], "w"],
  ];
}

/** Phi-3's fused qkv and gate_up layers under `model.layers.{l}.` (embeddings, final norm and head are the caller's). */
export function phi3Layers(o: { kv: number; hd: number; I: number }): Param[] {
  return layers((l): Param[] => {
    const p = `model.layers.${l}.`;
    return [
      [p + "self_attn.o_proj.weight", [D, H * o.hd], "w"], [p + "self_attn.qkv_proj.weight", [(H + 2 * o.kv) * o.hd, D], "w"],
      [p + "mlp.gate_up_proj.weight", [2 * o.I, D], "w"], [p + "mlp.down_proj.weight", [D, o.I], "w"],
      [p + "input_layernorm.weight", [D], "norm"], [p + "post_attention_layernorm.weight", [D], "norm"],
    ];
  });
}

/** Phi (Phi-2 layout)'s stored tensors: one LayerNorm a layer, biases everywhere, a biased untied head. */
export function phiParams(o: { hd: number; I: number }): Param[] {
  return [
    ["model.embed_tokens.weight", [V, D], "w"],
    ...layers((l): Param[] => {
      const p = `model.layers.${l}.`;
      const a = p + "self_attn.";
      return [
        [p + "input_layernorm.weight", [D], "norm"], [p + "input_layernorm.bias", [D], "bias"],
        ...(["q_proj", "k_proj", "v_proj"] as const).flatMap((n): Param[] => [[a + n + ".weight", [H * o.hd, D], "w"], [a + n + ".bias", [H * o.hd], "bias"]]),
        [a + "dense.weight", [D, H * o.hd], "w"], [a + "dense.bias", [D], "bias"],
        [p + "mlp.fc1.weight", [o.I, D], "w"], [p + "mlp.fc1.bias", [o.I], "bias"],
        [p + "mlp.fc2.weight", [D, o.I], "w"], [p + "mlp.fc2.bias", [D], "bias"],
      ];
    }),
    ["model.final_layernorm.weight", [D], "norm"], ["model.final_layernorm.bias", [D], "bias"],
    ["lm_head.weight", [V, D], "w"], ["lm_head.bias", [V], "bias"],
  ];
}

function gptNeo(): FamilyCase {
  const I = 4 * D;
  return {
    label: "gpt-neo", family: "gpt-neo",
    config: {
      ...common, activation_function: "gelu_new", architectures: ["GPTNeoForCausalLM"], attention_dropout: 0.0,
      attention_layers: ["global", "local"], attention_types: [[["global", "local"], 1]], bos_token_id: 50256,
      classifier_dropout: 0.1, embed_dropout: 0.0, eos_token_id: 50256, hidden_size: D, intermediate_size: null,
      layer_norm_epsilon: 1e-5, max_position_embeddings: P, model_type: "gpt_neo", num_heads: H, num_layers: L,
      resid_dropout: 0.0, summary_activation: null, summary_first_dropout: 0.1, summary_proj_to_labels: true,
      summary_type: "cls_index", summary_use_proj: true, window_size: 4,
    },
    params: [
      ["transformer.wte.weight", [V, D], "w"], ["transformer.wpe.weight", [P, D], "w"],
      ...layers((l): Param[] => {
        const p = `transformer.h.${l}.`;
        const a = p + "attn.attention.";
        return [
          [p + "ln_1.weight", [D], "norm"], [p + "ln_1.bias", [D], "bias"],
          [a + "k_proj.weight", [D, D], "w"], [a + "v_proj.weight", [D, D], "w"], [a + "q_proj.weight", [D, D], "w"],
          [a + "out_proj.weight", [D, D], "w"], [a + "out_proj.bias", [D], "bias"],
          [p + "ln_2.weight", [D], "norm"], [p + "ln_2.bias", [D], "bias"],
          [p + "mlp.c_fc.weight", [I, D], "w"], [p + "mlp.c_fc.bias", [I], "bias"],
          [p + "mlp.c_proj.weight", [D, I], "w"], [p + "mlp.c_proj.bias", [D], "bias"],
        ];
      }),
      ["transformer.ln_f.weight", [D], "norm"], ["transformer.ln_f.bias", [D], "bias"],
    ],
  };
}

function gptNeox(parallel: boolean): FamilyCase {
  const I = 4 * D;
  return {
    label: parallel ? "gpt-neox" : "gpt-neox (sequential residual)", family: "gpt-neox",
    config: {
      ...common, architectures: ["GPTNeoXForCausalLM"], attention_bias: true, attention_dropout: 0.0, bos_token_id: 0,
      classifier_dropout: 0.1, eos_token_id: 2, hidden_act: "gelu", hidden_dropout: 0.0, hidden_size: D,
      intermediate_size: I, layer_norm_eps: 1e-5, max_position_embeddings: P, model_type: "gpt_neox",
      num_attention_heads: H, num_hidden_layers: L, rope_scaling: null, rotary_emb_base: 10000, rotary_pct: 0.25,
      tie_word_embeddings: false, use_parallel_residual: parallel,
    },
    params: gptNeoxParams(I),
  };
}

function gemma(hd: number): FamilyCase {
  const I = 128;
  return {
    label: hd === D / H ? "gemma" : `gemma (head_dim ${hd} ≠ hidden/heads)`, family: "gemma",
    config: {
      ...common, architectures: ["GemmaForCausalLM"], attention_bias: false, attention_dropout: 0.0, bos_token_id: 2,
      eos_token_id: 1, head_dim: hd, hidden_act: "gelu_pytorch_tanh", hidden_activation: null, hidden_size: D,
      intermediate_size: I, max_position_embeddings: P, model_type: "gemma", num_attention_heads: H,
      num_hidden_layers: L, num_key_value_heads: 1, pad_token_id: 0, rms_norm_eps: 1e-6, rope_theta: 10000.0,
    },
    params: [["model.embed_tokens.weight", [V, D], "w"], ...llamaParams({ kv: 1, hd, I }), ["model.norm.weight", [D], "norm"]],
  };
}

function phi3(version = "4.43.4"): FamilyCase {
  const I = 128, KV = 2, hd = D / H;
  return {
    label: version === "4.43.4" ? "phi3" : `phi3 (saved by ${version}: sliding window applied)`, family: "phi3",
    config: {
      ...common, transformers_version: version, architectures: ["Phi3ForCausalLM"], attention_dropout: 0.0,
      bos_token_id: 1, embd_pdrop: 0.0, eos_token_id: 32000, hidden_act: "silu", hidden_size: D, intermediate_size: I,
      max_position_embeddings: P, model_type: "phi3", num_attention_heads: H, num_hidden_layers: L,
      num_key_value_heads: KV, original_max_position_embeddings: P, pad_token_id: 32000, resid_pdrop: 0.0,
      rms_norm_eps: 1e-5, rope_scaling: null, rope_theta: 10000.0, sliding_window: 4, tie_word_embeddings: false,
    },
    params: [
      ["model.embed_tokens.weight", [V, D], "w"], ...phi3Layers({ kv: KV, hd, I }),
      ["model.norm.weight", [D], "norm"], ["lm_head.weight", [V, D], "w"],
    ],
  };
}

function qwen2(version = "4.43.4"): FamilyCase {
  const I = 128;
  return {
    label: version === "4.43.4" ? "qwen2" : `qwen2 (saved by ${version}: layers >= max_window_layers slide)`, family: "qwen2",
    config: {
      ...common, transformers_version: version, architectures: ["Qwen2ForCausalLM"], attention_dropout: 0.0,
      bos_token_id: 151643, eos_token_id: 151643, hidden_act: "silu", hidden_size: D, intermediate_size: I,
      max_position_embeddings: P, max_window_layers: 1, model_type: "qwen2", num_attention_heads: H,
      num_hidden_layers: L, num_key_value_heads: 2, rms_norm_eps: 1e-6, rope_theta: 10000.0, sliding_window: 4,
      tie_word_embeddings: false, use_sliding_window: true,
    },
    params: [
      ["model.embed_tokens.weight", [V, D], "w"], ...llamaParams({ kv: 2, hd: D / H, I, qkvBias: true }),
      ["model.norm.weight", [D], "norm"], ["lm_head.weight", [V, D], "w"],
    ],
  };
}

function mistral(): FamilyCase {
  const I = 128;
  return {
    label: "mistral", family: "mistral",
    config: {
      ...common, architectures: ["MistralForCausalLM"], attention_dropout: 0.0, bos_token_id: 1, eos_token_id: 2,
      head_dim: D / H, hidden_act: "silu", hidden_size: D, intermediate_size: I, max_position_embeddings: P,
      model_type: "mistral", num_attention_heads: H, num_hidden_layers: L, num_key_value_heads: 2, rms_norm_eps: 1e-6,
      rope_theta: 10000.0, sliding_window: 4, tie_word_embeddings: false,
    },
    params: [
      ["model.embed_tokens.weight", [V, D], "w"], ...llamaParams({ kv: 2, hd: D / H, I }),
      ["model.norm.weight", [D], "norm"], ["lm_head.weight", [V, D], "w"],
    ],
  };
}

function stablelm(variant: "default" | "parallel+qk_layernorm"): FamilyCase {
  const I = 128, KV = 2;
  const extra = variant !== "default";
  return {
    label: extra ? "stable-lm (parallel residual, qk_layernorm)" : "stable-lm", family: "stable-lm",
    config: {
      ...common, architectures: ["StableLmForCausalLM"], attention_dropout: 0.0, bos_token_id: 0, eos_token_id: 0,
      hidden_act: "silu", hidden_dropout: 0.0, hidden_size: D, intermediate_size: I, layer_norm_eps: 1e-5,
      max_position_embeddings: P, model_type: "stablelm", num_attention_heads: H, num_hidden_layers: L,
      num_key_value_heads: KV, partial_rotary_factor: 0.25, qk_layernorm: extra, rope_scaling: null, rope_theta: 10000,
      tie_word_embeddings: false, use_parallel_residual: extra, use_qkv_bias: true,
    },
    params: [
      ["model.embed_tokens.weight", [V, D], "w"],
      ...llamaParams({ kv: KV, hd: D / H, I, qkvBias: true, norm: "ln", post: !extra, qkNorm: extra }),
      ["model.norm.weight", [D], "norm"], ["model.norm.bias", [D], "bias"], ["lm_head.weight", [V, D], "w"],
    ],
  };
}

/** Llama with every optional flag: GQA, attention_bias, mlp_bias, head_dim ≠ hidden/heads, tied embeddings. */
function llamaBiases(): FamilyCase {
  const I = 128, hd = 24, KV = 2;
  return {
    label: "llama (attention_bias, mlp_bias, head_dim 24 ≠ hidden/heads)", family: "llama",
    config: {
      ...common, transformers_version: "4.50.0", architectures: ["LlamaForCausalLM"], attention_bias: true, attention_dropout: 0.0,
      bos_token_id: 1, eos_token_id: 2, head_dim: hd, hidden_act: "silu", hidden_size: D, intermediate_size: I,
      max_position_embeddings: P, mlp_bias: true, model_type: "llama", num_attention_heads: H, num_hidden_layers: L,
      num_key_value_heads: KV, pretraining_tp: 1, rms_norm_eps: 1e-5, rope_scaling: null, rope_theta: 10000.0,
      tie_word_embeddings: true,
    },
    params: [["model.embed_tokens.weight", [V, D], "w"], ...llamaParams({ kv: KV, hd, I, qkvBias: true, oBias: true, mlpBias: true }), ["model.norm.weight", [D], "norm"]],
  };
}

/**
 * Llama with one RoPE scaling variant. Lengths are chosen so the 16-token inputs exercise it: dynamic grows its
 * base beyond max_position_embeddings = 8; llama3's bands (old context 32, base 100) put frequencies in all three
 * regimes; yarn's original length 32 gives factor 128 / 32 = 4 by either reading of HF's versions.
 */
function llamaRope(variant: "linear" | "dynamic" | "yarn" | "llama3"): FamilyCase {
  const I = 128, KV = 2;
  const scaling: Record<string, Record<string, unknown>> = {
    linear: { type: "linear", factor: 2.0 }, // the pre-4.45 spelling of rope_type
    dynamic: { rope_type: "dynamic", factor: 3.0 },
    yarn: { rope_type: "yarn", factor: 4.0, original_max_position_embeddings: 32 },
    llama3: { rope_type: "llama3", factor: 8.0, low_freq_factor: 1.0, high_freq_factor: 4.0, original_max_position_embeddings: 32 },
  };
  return {
    label: `llama (rope ${variant})`, family: "llama",
    config: {
      ...common, transformers_version: "4.51.3", architectures: ["LlamaForCausalLM"], attention_bias: false, attention_dropout: 0.0,
      bos_token_id: 1, eos_token_id: 2, head_dim: variant === "linear" ? null : D / H, hidden_act: "silu", hidden_size: D,
      intermediate_size: I, max_position_embeddings: variant === "dynamic" ? 8 : P, mlp_bias: false, model_type: "llama",
      num_attention_heads: H, num_hidden_layers: L, num_key_value_heads: KV, pretraining_tp: 1, rms_norm_eps: 1e-5,
      rope_scaling: scaling[variant], rope_theta: variant === "llama3" ? 100.0 : 10000.0, tie_word_embeddings: false,
    },
    params: [
      ["model.embed_tokens.weight", [V, D], "w"], ...llamaParams({ kv: KV, hd: D / H, I }),
      ["model.norm.weight", [D], "norm"], ["lm_head.weight", [V, D], "w"],
    ],
  };
}

/** Phi-3 with longrope (Phi-3.5-mini's scheme): long factors beyond original_max_position_embeddings, short below. */
function phi3Longrope(original: number): FamilyCase {
  const base = phi3("4.43.4");
  const half = D / H / 2;
  return {
    ...base,
    label: `phi3 (longrope, ${16 > original ? "long" : "short"} factors)`,
    config: {
      ...base.config, transformers_version: "4.49.0", sliding_window: null, max_position_embeddings: P, original_max_position_embeddings: original,
      rope_scaling: {
        type: "longrope",
        short_factor: Array.from({ length: half }, (_, i) => 1 + 0.25 * i),
        long_factor: Array.from({ length: half }, (_, i) => 1.5 + 1.5 * i),
      },
    },
  };
}

/** GPT-NeoX with dynamic NTK scaling on its partial rotary dims (HF computes the scaled base over int(hd · pct)). */
function gptNeoxDynamic(): FamilyCase {
  const base = gptNeox(true);
  return { ...base, label: "gpt-neox (rope dynamic, partial rotary)", config: { ...base.config, max_position_embeddings: 8, rope_scaling: { type: "dynamic", factor: 2.0 } } };
}

/** Gemma 2: sandwich norms, soft-capping (small caps so tanh bends), query_pre_attn_scalar ≠ head_dim, layer 0 slides. */
function gemma2(): FamilyCase {
  const I = 128, hd = 16, KV = 2;
  return {
    label: "gemma2", family: "gemma2",
    config: {
      ...common, transformers_version: "4.47.1", architectures: ["Gemma2ForCausalLM"], attention_bias: false, attention_dropout: 0.0,
      attn_logit_softcapping: 5.0, bos_token_id: 2, cache_implementation: "hybrid", eos_token_id: 1, final_logit_softcapping: 3.0,
      head_dim: hd, hidden_act: "gelu_pytorch_tanh", hidden_activation: "gelu_pytorch_tanh", hidden_size: D,
      intermediate_size: I, max_position_embeddings: P, model_type: "gemma2", num_attention_heads: H, num_hidden_layers: L,
      num_key_value_heads: KV, pad_token_id: 0, query_pre_attn_scalar: 24, rms_norm_eps: 1e-6, rope_theta: 10000.0,
      sliding_window: 4,
    },
    params: [["model.embed_tokens.weight", [V, D], "w"], ...llamaParams({ kv: KV, hd, I, norms: "gemma2" }), ["model.norm.weight", [D], "norm"]],
  };
}

/**
 * Gemma 3 text: q/k norms, local/global layers with their own RoPE bases, linear scaling on the global layer.
 * "pattern": sliding_window_pattern 2 (layer 0 local, 1 global) as 4.50 writes it; "layer_types": the 4.5x list
 * with the order reversed, and `dtype` instead of `torch_dtype`.
 */
function gemma3(spelling: "pattern" | "layer_types"): FamilyCase {
  const I = 128, hd = 16, KV = 1;
  const { torch_dtype: _t, ...rest } = common;
  const layout = spelling === "pattern"
    ? { torch_dtype: "float32", transformers_version: "4.50.0", sliding_window_pattern: 2 }
    : { dtype: "float32", transformers_version: "4.56.1", layer_types: ["full_attention", "sliding_attention"], sliding_window_pattern: 6 };
  return {
    label: `gemma3 (${spelling === "pattern" ? "sliding_window_pattern" : "layer_types, dtype"})`, family: "gemma3",
    config: {
      ...rest, ...layout, architectures: ["Gemma3ForCausalLM"], attention_bias: false, attention_dropout: 0.0,
      attn_logit_softcapping: null, bos_token_id: 2, cache_implementation: "hybrid", eos_token_id: 1,
      final_logit_softcapping: null, head_dim: hd, hidden_activation: "gelu_pytorch_tanh", hidden_size: D,
      intermediate_size: I, max_position_embeddings: P, model_type: "gemma3_text", num_attention_heads: H,
      num_hidden_layers: L, num_key_value_heads: KV, pad_token_id: 0, query_pre_attn_scalar: hd, rms_norm_eps: 1e-6,
      rope_local_base_freq: 10.0, rope_scaling: { factor: 2.0, rope_type: "linear" }, rope_theta: 1000000.0, sliding_window: 4,
    },
    params: [["model.embed_tokens.weight", [V, D], "w"], ...llamaParams({ kv: KV, hd, I, norms: "gemma2", qkRms: "head" }), ["model.norm.weight", [D], "norm"]],
  };
}

/** Qwen3: per-head q/k RMSNorm, explicit head_dim ≠ hidden/heads, GQA, tied embeddings (as Qwen3-0.6B). */
function qwen3(): FamilyCase {
  const I = 128, hd = 24, KV = 2;
  return {
    label: "qwen3 (head_dim 24, tied)", family: "qwen3",
    config: {
      ...common, transformers_version: "4.51.0", architectures: ["Qwen3ForCausalLM"], attention_bias: false, attention_dropout: 0.0,
      bos_token_id: 151643, eos_token_id: 151645, head_dim: hd, hidden_act: "silu", hidden_size: D, intermediate_size: I,
      max_position_embeddings: P, max_window_layers: 28, model_type: "qwen3", num_attention_heads: H, num_hidden_layers: L,
      num_key_value_heads: KV, rms_norm_eps: 1e-6, rope_scaling: null, rope_theta: 1000000.0, sliding_window: null,
      tie_word_embeddings: true, use_sliding_window: false,
    },
    params: [["model.embed_tokens.weight", [V, D], "w"], ...llamaParams({ kv: KV, hd, I, qkRms: "head" }), ["model.norm.weight", [D], "norm"]],
  };
}

/** OLMo: parameter-free LayerNorms (no norm weights stored) and clip_qkv. */
function olmo(): FamilyCase {
  const I = 128;
  return {
    label: "olmo (clip_qkv 1.0)", family: "olmo",
    config: {
      ...common, transformers_version: "4.46.0", architectures: ["OlmoForCausalLM"], attention_bias: false, attention_dropout: 0.0,
      bos_token_id: null, clip_qkv: 1.0, eos_token_id: 50279, hidden_act: "silu", hidden_size: D, intermediate_size: I,
      max_position_embeddings: P, model_type: "olmo", num_attention_heads: H, num_hidden_layers: L, num_key_value_heads: H,
      pad_token_id: 1, rope_scaling: null, rope_theta: 10000.0, tie_word_embeddings: false,
    },
    params: [["model.embed_tokens.weight", [V, D], "w"], ...llamaParams({ kv: H, hd: D / H, I, norms: "none" }), ["lm_head.weight", [V, D], "w"]],
  };
}

/** OLMo 2: norms after attention and MLP only, q/k RMSNorm over the whole projection, GQA. */
function olmo2(): FamilyCase {
  const I = 128, KV = 2;
  return {
    label: "olmo2", family: "olmo2",
    config: {
      ...common, transformers_version: "4.48.0", architectures: ["Olmo2ForCausalLM"], attention_bias: false, attention_dropout: 0.0,
      bos_token_id: null, eos_token_id: 100257, hidden_act: "silu", hidden_size: D, intermediate_size: I,
      max_position_embeddings: P, model_type: "olmo2", num_attention_heads: H, num_hidden_layers: L, num_key_value_heads: KV,
      pad_token_id: 100277, rms_norm_eps: 1e-6, rope_scaling: null, rope_theta: 500000, tie_word_embeddings: false,
    },
    params: [
      ["model.embed_tokens.weight", [V, D], "w"], ...llamaParams({ kv: KV, hd: D / H, I, norms: "olmo2", qkRms: "projection" }),
      ["model.norm.weight", [D], "norm"], ["lm_head.weight", [V, D], "w"],
    ],
  };
}

/** Phi-2 layout: parallel attention + MLP from one LayerNorm, biases everywhere, partial rotary int(16 · 0.4) = 6. */
function phiCase(): FamilyCase {
  const I = 4 * D, hd = D / H;
  return {
    label: "phi (partial rotary 0.4)", family: "phi",
    config: {
      ...common, transformers_version: "4.44.2", architectures: ["PhiForCausalLM"], attention_dropout: 0.0, bos_token_id: 50256,
      embd_pdrop: 0.0, eos_token_id: 50256, hidden_act: "gelu_new", hidden_size: D, intermediate_size: I,
      layer_norm_eps: 1e-5, max_position_embeddings: P, model_type: "phi", num_attention_heads: H, num_hidden_layers: L,
      num_key_value_heads: null, partial_rotary_factor: 0.4, qk_layernorm: false, resid_pdrop: 0.1, rope_scaling: null,
      rope_theta: 10000.0, tie_word_embeddings: false,
    },
    params: phiParams({ hd, I }),
  };
}

/** The families and RoPE variants added after the first seven, each checked the same way. */
export function laterCases(): FamilyCase[] {
  return [
    gemma2(), gemma3("pattern"), gemma3("layer_types"), qwen3(), olmo(), olmo2(), phiCase(), llamaBiases(),
    llamaRope("linear"), llamaRope("dynamic"), llamaRope("yarn"), llamaRope("llama3"), phi3Longrope(8), phi3Longrope(32),
    gptNeoxDynamic(),
  ];
}

/** The first seven families in their base configuration, then variants for their other flags. */
export function familyCases(): FamilyCase[] {
  return [
    gptNeo(), gptNeox(true), gemma(D / H), phi3(), qwen2(), mistral(), stablelm("default"),
    gptNeox(false), gemma(24), phi3("4.46.0"), qwen2("4.53.0"), stablelm("parallel+qk_layernorm"),
  ];
}

/** mulberry32 → Box–Muller normals: a seeded, platform-independent N(0, 1) stream. */
function normals(seed: number): () => number {
  let a = seed >>> 0;
  const uniform = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return () => Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform());
}

/** Writes config.json and model.safetensors for a case into `dir` (created). */
export function writeCheckpoint(c: FamilyCase, dir: string, seed: number): void {
  fs.mkdirSync(dir, { recursive: true });
  const next = normals(seed);
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [name, shape, kind] of c.params) {
    const data = new Float32Array(shape.reduce((x, y) => x * y, 1));
    for (let i = 0; i < data.length; i++) data[i] = (kind === "norm" ? 1 : 0) + 0.2 * next();
    tensors.set(name, { shape, data });
  }
  fs.writeFileSync(path.join(dir, "config.json"), JSON.stringify(c.config, null, 2) + "\n");
  writeTensors(path.join(dir, "model.safetensors"), tensors);
}

/** The two 16-token sequences of the HF fixtures (torch.randint(0, 512, (2, 16)), seed 20240601). */
export const INPUT_IDS = [
  [287, 376, 25, 102, 49, 202, 376, 169, 42, 171, 273, 367, 214, 500, 94, 449],
  [23, 159, 260, 368, 275, 405, 333, 345, 239, 250, 113, 116, 371, 218, 363, 207],
];
