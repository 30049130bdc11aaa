/**
 * Mistral (HF `MistralForCausalLM`), reproducing `modeling_mistral.py` of transformers 4.43 (eager):
 * - Llama layout (RMSNorm, rotate-half RoPE with `rope_theta`, GQA by repeat-interleave, SwiGLU, no biases);
 * - `head_dim` from the config when set (Mistral-Nemo), else hidden_size / num_attention_heads;
 * - `sliding_window` W (default 4096, null = off) on every layer: the eager mask excludes keys with
 *   j <= i - W (`arange(target) <= cache_position - sliding_window`), so query i sees keys i - W < j <= i,
 *   W keys including itself; the same boundary as the 4.53+ `sliding_window_overlay` (`kv > q - W`);
 * - untied `lm_head` unless `tie_word_embeddings`.
 */
import type { ModelDims, ModelParams } from "../types";
import type { WeightReader } from "../weights";
import type { FamilyAdapter, HfConfig } from "./adapter";
import { llamaLikeDims, llamaLikeWeights, windowSize } from "./shared";

export const mistral = {
  family: "mistral" as const,
  aliases: ["mistral", "MistralForCausalLM", "MistralModel"],
  configKeys: [
    "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
    "num_key_value_heads", "head_dim", "hidden_act", "max_position_embeddings", "rms_norm_eps", "rope_theta",
    "rope_scaling", "rope_parameters", "sliding_window", "attention_dropout",
  ],
  // MistralConfig.__init__ defaults (the 7B shape).
  defaults: {
    vocab_size: 32000, hidden_size: 4096, intermediate_size: 14336, num_hidden_layers: 32, num_attention_heads: 32,
    num_key_value_heads: 8, head_dim: null, hidden_act: "silu", max_position_embeddings: 4096 * 32,
    initializer_range: 0.02, rms_norm_eps: 1e-6, bos_token_id: 1, eos_token_id: 2, tie_word_embeddings: false,
    rope_theta: 10000, sliding_window: 4096,
  },
  weightPrefixes: ["model."],
  ignoredWeights: [/rotary_emb\.inv_freq$/],

  dims(hf: HfConfig): ModelDims {
    const c = llamaLikeDims(hf, "mistral");
    return { ...c, windows: new Array(c.nLayers).fill(windowSize(hf, "sliding_window")) };
  },

  loadWeights(r: WeightReader, c: ModelDims): ModelParams {
    return llamaLikeWeights(r, c, { attnBias: { qkv: false, o: false } });
  },
} satisfies FamilyAdapter;
