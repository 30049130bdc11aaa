/**
 * Qwen3 dense models (HF `Qwen3ForCausalLM`), reproducing `modeling_qwen3.py` of transformers 4.51–4.5x (eager):
 * the Llama layout with
 * - an explicit `head_dim` (default 128; Qwen3-0.6B: 16 heads × 128 = 2048 ≠ hidden_size 1024);
 * - RMSNorm on queries and keys over each head's head_dim (`self_attn.q_norm` / `k_norm`, one weight of size
 *   head_dim shared by all heads), after the projection and before rotary;
 * - GQA; `attention_bias` puts biases on q/k/v/o; tied embeddings when `tie_word_embeddings` (0.6B ties them);
 * - sliding windows as Qwen2 (see qwen2.ts): off unless `use_sliding_window`.
 */
import type { ModelDims, ModelParams } from "../types";
import type { WeightReader } from "../weights";
import type { FamilyAdapter, HfConfig } from "./adapter";
import { qwenWindows } from "./qwen2";
import { llamaLikeDims, llamaLikeWeights, storedAttnBias } from "./shared";

export const qwen3 = {
  family: "qwen3" as const,
  aliases: ["qwen3", "Qwen3ForCausalLM", "Qwen3Model"],
  configKeys: [
    "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
    "num_key_value_heads", "head_dim", "hidden_act", "max_position_embeddings", "rms_norm_eps", "rope_theta",
    "rope_scaling", "rope_parameters", "attention_bias", "use_sliding_window", "sliding_window", "max_window_layers",
    "layer_types", "attention_dropout",
  ],
  // Qwen3Config.__init__ defaults.
  defaults: {
    vocab_size: 151936, hidden_size: 4096, intermediate_size: 22016, num_hidden_layers: 32, num_attention_heads: 32,
    num_key_value_heads: 32, head_dim: 128, hidden_act: "silu", max_position_embeddings: 32768, initializer_range: 0.02,
    rms_norm_eps: 1e-6, tie_word_embeddings: false, rope_theta: 10000, rope_scaling: null, attention_bias: false,
    use_sliding_window: false, sliding_window: 4096, max_window_layers: 28,
  },
  weightPrefixes: ["model."],
  ignoredWeights: [/rotary_emb\.inv_freq$/],

  dims(hf: HfConfig): ModelDims {
    const c = llamaLikeDims(hf, "qwen3");
    return { ...c, windows: qwenWindows(hf, c.nLayers, "qwen3"), qkRmsNorm: "head" };
  },

  loadWeights(r: WeightReader, c: ModelDims): ModelParams {
    return llamaLikeWeights(r, c, { attnBias: storedAttnBias(r) });
  },
} satisfies FamilyAdapter;
