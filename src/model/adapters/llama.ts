/**
 * Llama (HF `LlamaForCausalLM`: Llama 2/3.x, TinyLlama, SmolLM2 …), reproducing `modeling_llama.py` of transformers
 * 4.4x–4.5x (eager). Traps: RMSNorm; RoPE in rotate-half layout, scaled by `rope_scaling` (Llama 3.x: `llama3`);
 * grouped-query attention (query head h reads kv head h // (H/KV)); an explicit `head_dim` may differ from
 * hidden_size / num_attention_heads (null falls back to it); `attention_bias` puts biases on q/k/v/o and `mlp_bias`
 * on gate/up/down; SwiGLU `down(act(gate) * up)`; `nn.Linear` weights stored `[out, in]`; untied `lm_head` unless
 * `tie_word_embeddings` (Llama 3.2 1B ties it).
 */
import { fail } from "../../errors";
import type { ModelDims, ModelParams } from "../types";
import type { WeightReader } from "../weights";
import type { FamilyAdapter, HfConfig } from "./adapter";
import { llamaLikeDims, llamaLikeWeights, storedAttnBias } from "./shared";

export const llama = {
  family: "llama" as const,
  aliases: ["llama", "LlamaForCausalLM", "LlamaModel"],
  configKeys: [
    "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
    "num_key_value_heads", "hidden_act", "max_position_embeddings", "rms_norm_eps", "pretraining_tp",
    "rope_theta", "rope_scaling", "rope_parameters", "attention_bias", "attention_dropout", "mlp_bias", "head_dim",
  ],
  // LlamaConfig.__init__ defaults (the Llama-2-7B shape).
  defaults: {
    vocab_size: 32000, hidden_size: 4096, intermediate_size: 11008, num_hidden_layers: 32, num_attention_heads: 32,
    num_key_value_heads: null, hidden_act: "silu", max_position_embeddings: 2048, rms_norm_eps: 1e-6,
    rope_theta: 10000, attention_bias: false, mlp_bias: false, tie_word_embeddings: false, initializer_range: 0.02,
    bos_token_id: 1, eos_token_id: 2, pretraining_tp: 1,
  },
  weightPrefixes: ["model."],
  ignoredWeights: [/rotary_emb\.inv_freq$/],

  dims(hf: HfConfig): ModelDims {
    // pretraining_tp > 1 slices the projections but computes the same sums (HF's own note); nothing to do.
    if (hf.pretraining_tp != null && !(typeof hf.pretraining_tp === "number" && hf.pretraining_tp >= 1)) fail(`llama: pretraining_tp must be a positive integer, got ${String(hf.pretraining_tp)}`);
    return llamaLikeDims(hf, "llama");
  },

  loadWeights(r: WeightReader, c: ModelDims): ModelParams {
    return llamaLikeWeights(r, c, { attnBias: storedAttnBias(r), mlpBias: r.has("layers.0.mlp.gate_proj.bias") });
  },
} satisfies FamilyAdapter;
