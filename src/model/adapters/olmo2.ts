/**
 * OLMo 2 (HF `Olmo2ForCausalLM`, e.g. OLMo-2-0425-1B), reproducing `modeling_olmo2.py` of transformers 4.47–4.5x
 * (eager): the Llama layout with
 * - no norms on the sublayer inputs: `post_attention_layernorm` normalises the attention output and
 *   `post_feedforward_layernorm` the MLP output before each joins the residual stream (RMSNorm, `rms_norm_eps`);
 * - q/k RMSNorm over the whole projection (`self_attn.q_norm` of size heads·head_dim, `k_norm` of size
 *   kv_heads·head_dim), after the projection and before rotary;
 * - `attention_bias` on q/k/v/o; untied lm_head unless `tie_word_embeddings`.
 */
import { fail } from "../../errors";
import type { ModelDims, ModelParams } from "../types";
import type { WeightReader } from "../weights";
import type { FamilyAdapter, HfConfig } from "./adapter";
import { llamaLikeDims, llamaLikeWeights, storedAttnBias } from "./shared";

export const olmo2 = {
  family: "olmo2" as const,
  aliases: ["olmo2", "Olmo2ForCausalLM", "Olmo2Model"],
  configKeys: [
    "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
    "num_key_value_heads", "hidden_act", "max_position_embeddings", "rms_norm_eps", "rope_theta", "rope_scaling",
    "rope_parameters", "attention_bias", "attention_dropout", "clip_qkv",
  ],
  // Olmo2Config.__init__ defaults (the 7B shape).
  defaults: {
    vocab_size: 50304, hidden_size: 4096, intermediate_size: 11008, num_hidden_layers: 32, num_attention_heads: 32,
    num_key_value_heads: null, hidden_act: "silu", max_position_embeddings: 2048, initializer_range: 0.02,
    pad_token_id: 1, bos_token_id: null, eos_token_id: 50279, tie_word_embeddings: false, rope_theta: 10000,
    rope_scaling: null, attention_bias: false, attention_dropout: 0, rms_norm_eps: 1e-5,
  },
  weightPrefixes: ["model."],
  ignoredWeights: [/rotary_emb\.inv_freq$/],

  dims(hf: HfConfig): ModelDims {
    // Olmo2Config has no clip_qkv; where an older config still carries one we cannot tell where it applied.
    if (hf.clip_qkv != null) fail(`olmo2: clip_qkv=${String(hf.clip_qkv)} is not supported (OLMo 2 does not clip; only null is accepted)`);
    return { ...llamaLikeDims(hf, "olmo2"), normPlacement: "post", qkRmsNorm: "projection" };
  },

  loadWeights(r: WeightReader, c: ModelDims): ModelParams {
    return llamaLikeWeights(r, c, { attnBias: storedAttnBias(r), norms: "olmo2" });
  },
} satisfies FamilyAdapter;
