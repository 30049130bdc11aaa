/**
 * Qwen2 / Qwen2.5 (HF `Qwen2ForCausalLM`), reproducing `modeling_qwen2.py` of transformers 4.43 (eager):
 * - Llama layout (RMSNorm, rotate-half RoPE with `rope_theta`, GQA by repeat-interleave, SwiGLU) with biases on
 *   `q_proj`, `k_proj`, `v_proj` (always) and none on `o_proj`; head_dim = hidden_size / num_attention_heads;
 * - sliding windows: 4.43 (like 4.42–4.44) builds the eager mask as Llama does, so `use_sliding_window`,
 *   `sliding_window` and `max_window_layers` do not change the eager forward pass (they reach flash attention only);
 *   a config saved by such a version gets full causal attention. For a config saved by 4.45+ (or without a
 *   version) we follow the per-layer rule of 4.53+: `layer_types[l]` when given, else layers l >= max_window_layers
 *   are "sliding_attention" when `use_sliding_window` and `sliding_window` is set; a sliding layer keeps keys
 *   i - W < j <= i. (4.45–4.52 applied the window to every layer instead; not reproduced.)
 * - untied `lm_head` unless `tie_word_embeddings` (Qwen2.5-0.5B ties it).
 */
import type { ModelDims, ModelParams } from "../types";
import type { WeightReader } from "../weights";
import type { FamilyAdapter, HfConfig } from "./adapter";
import { layerWindows, llamaLikeDims, llamaLikeWeights, savedBefore, windowSize } from "./shared";

/** Per-layer windows (see the header for the version rule); Qwen3 follows the same rule. */
export function qwenWindows(hf: HfConfig, nLayers: number, family = "qwen2"): (number | null)[] {
  const none = new Array<number | null>(nLayers).fill(null);
  if (savedBefore(hf, 4, 45) || !hf.use_sliding_window) return none;
  const w = windowSize(hf, "sliding_window");
  if (w === null) return none;
  const first = hf.max_window_layers == null ? 0 : (hf.max_window_layers as number);
  return layerWindows(hf, family, nLayers, w, (l) => l >= first);
}

export const qwen2 = {
  family: "qwen2" as const,
  aliases: ["qwen2", "Qwen2ForCausalLM", "Qwen2Model"],
  configKeys: [
    "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
    "num_key_value_heads", "hidden_act", "max_position_embeddings", "rms_norm_eps", "rope_theta", "rope_scaling",
    "rope_parameters", "use_sliding_window", "sliding_window", "max_window_layers", "layer_types", "attention_dropout",
  ],
  // Qwen2Config.__init__ defaults.
  defaults: {
    vocab_size: 151936, hidden_size: 4096, intermediate_size: 22016, num_hidden_layers: 32, num_attention_heads: 32,
    num_key_value_heads: 32, hidden_act: "silu", max_position_embeddings: 32768, initializer_range: 0.02,
    rms_norm_eps: 1e-6, tie_word_embeddings: false, rope_theta: 10000, use_sliding_window: false, sliding_window: 4096,
    max_window_layers: 28,
  },
  weightPrefixes: ["model."],
  ignoredWeights: [/rotary_emb\.inv_freq$/],

  dims(hf: HfConfig): ModelDims {
    const c = llamaLikeDims(hf, "qwen2", { headDim: "derived" });
    return { ...c, windows: qwenWindows(hf, c.nLayers) };
  },

  loadWeights(r: WeightReader, c: ModelDims): ModelParams {
    return llamaLikeWeights(r, c, { attnBias: { qkv: true, o: false } });
  },
} satisfies FamilyAdapter;
