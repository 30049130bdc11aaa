/**
 * Gemma (HF `GemmaForCausalLM`, Gemma 1), reproducing `modeling_gemma.py` of transformers 4.43 (eager):
 * - token embeddings × `hidden_size ** 0.5`, with the factor rounded to the embedding dtype first
 *   (`torch.tensor(hidden_size**0.5, dtype=hidden_states.dtype)`; float32 here);
 * - `GemmaRMSNorm`: `x * rsqrt(mean(x²) + eps) * (1 + w)` computed in float32 (weights stored as offsets from 1);
 * - `head_dim` read from the config (default 256, NOT hidden_size / num_attention_heads), q_proj out = heads·head_dim;
 * - multi-query / grouped-query attention through `num_key_value_heads` (repeat-interleave), scale head_dim^-0.5;
 * - RoPE rotate-half over the whole head_dim, base `rope_theta`;
 * - MLP `down(act(gate(x)) * up(x))` with act = `hidden_activation`, which defaults to `gelu_pytorch_tanh`
 *   (4.40–4.47 ignore the legacy `hidden_act`; from 4.48 the modeling code reads `hidden_act`, so a config saved by
 *   4.48+ or without a version uses `hidden_act`);
 * - lm_head tied to `embed_tokens` (not stored), and it is NOT scaled by sqrt(hidden).
 */
import { fail } from "../../errors";
import type { Activation, ModelDims, ModelParams } from "../types";
import type { WeightReader } from "../weights";
import type { FamilyAdapter, HfConfig } from "./adapter";
import { activation, llamaLikeDims, llamaLikeWeights, savedBefore, storedAttnBias } from "./shared";

/** Gemma's MLP activation across transformers versions (see the header). */
function gemmaActivation(hf: HfConfig): Activation {
  if (hf.hidden_activation != null) return activation(hf, "hidden_activation", "gemma");
  if (savedBefore(hf, 4, 48) || hf.hidden_act == null) return "gelu_pytorch_tanh";
  return activation(hf, "hidden_act", "gemma");
}

export const gemma = {
  family: "gemma" as const,
  aliases: ["gemma", "GemmaForCausalLM", "GemmaModel"],
  configKeys: [
    "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
    "num_key_value_heads", "head_dim", "hidden_act", "hidden_activation", "max_position_embeddings", "rms_norm_eps",
    "rope_theta", "rope_scaling", "rope_parameters", "attention_bias", "attention_dropout", "use_bidirectional_attention",
  ],
  // GemmaConfig.__init__ defaults (the 7B shape).
  defaults: {
    vocab_size: 256000, hidden_size: 3072, intermediate_size: 24576, num_hidden_layers: 28, num_attention_heads: 16,
    num_key_value_heads: 16, head_dim: 256, hidden_act: "gelu_pytorch_tanh", hidden_activation: null,
    max_position_embeddings: 8192, initializer_range: 0.02, rms_norm_eps: 1e-6, pad_token_id: 0, eos_token_id: 1,
    bos_token_id: 2, tie_word_embeddings: true, rope_theta: 10000, attention_bias: false,
  },
  weightPrefixes: ["model."],
  ignoredWeights: [/rotary_emb\.inv_freq$/],

  dims(hf: HfConfig): ModelDims {
    const c = llamaLikeDims(hf, "gemma", { act: gemmaActivation(hf), headDim: "explicit" });
    if (hf.use_bidirectional_attention) fail("gemma: use_bidirectional_attention=true is not supported (causal attention only)");
    return {
      ...c,
      normWeightOffset: 1,
      embedScale: Math.sqrt(c.dModel), // rounded to float32 where it is applied, as HF rounds it to the embedding dtype
      tiedEmbeddings: hf.tie_word_embeddings !== false,
    };
  },

  loadWeights(r: WeightReader, c: ModelDims): ModelParams {
    return llamaLikeWeights(r, c, { attnBias: storedAttnBias(r) });
  },
} satisfies FamilyAdapter;
