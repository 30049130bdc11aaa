/**
 * Gemma 3 text models (HF `Gemma3ForCausalLM`, model_type `gemma3_text`: gemma-3-270m, gemma-3-1b), reproducing
 * `modeling_gemma3.py` of transformers 4.50–4.5x (eager). Gemma 2's layout (see gemma2.ts) with:
 * - q/k RMSNorm with (1 + w) over each head's head_dim (`self_attn.q_norm` / `k_norm`, one weight shared by all
 *   heads), after the projection and before rotary;
 * - the local/global pattern from `layer_types`, else `sliding_window_pattern` (default 6): layer l slides unless
 *   (l + 1) is a multiple of the pattern (five local layers, then one global);
 * - local layers rotate with plain RoPE at `rope_local_base_freq` (default 10000), global layers with `rope_theta`
 *   and `rope_scaling` (e.g. linear factor 8 for the 4B+ models);
 * - soft-capping off by default (`attn_logit_softcapping`, `final_logit_softcapping` null).
 * The multimodal `gemma3` configs (Gemma3ForConditionalGeneration, nested `text_config`) are refused by name.
 */
import { fail } from "../../errors";
import type { ModelDims } from "../types";
import { type FamilyAdapter, type HfConfig, posInt } from "./adapter";
import { gemma2Dims, loadGemma2Weights } from "./gemma2";
import { layerWindows, windowSize } from "./shared";
import { ropeBase } from "../rope";

export const gemma3 = {
  family: "gemma3" as const,
  aliases: ["gemma3_text", "Gemma3ForCausalLM", "Gemma3TextModel"],
  configKeys: [
    "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
    "num_key_value_heads", "head_dim", "hidden_act", "hidden_activation", "max_position_embeddings", "rms_norm_eps",
    "rope_theta", "rope_scaling", "rope_parameters", "rope_local_base_freq", "attention_bias", "attention_dropout",
    "query_pre_attn_scalar", "sliding_window", "sliding_window_pattern", "_sliding_window_pattern", "layer_types",
    "final_logit_softcapping", "attn_logit_softcapping", "cache_implementation", "use_bidirectional_attention",
  ],
  // Gemma3TextConfig.__init__ defaults.
  defaults: {
    vocab_size: 262208, hidden_size: 2304, intermediate_size: 9216, num_hidden_layers: 26, num_attention_heads: 8,
    num_key_value_heads: 4, head_dim: 256, hidden_activation: "gelu_pytorch_tanh", max_position_embeddings: 131072,
    initializer_range: 0.02, rms_norm_eps: 1e-6, pad_token_id: 0, eos_token_id: 1, bos_token_id: 2,
    tie_word_embeddings: true, rope_theta: 1000000, attention_bias: false, attention_dropout: 0, query_pre_attn_scalar: 256,
    sliding_window: 4096, final_logit_softcapping: null, attn_logit_softcapping: null, rope_scaling: null,
    rope_local_base_freq: 10000, sliding_window_pattern: 6,
  },
  weightPrefixes: ["model."],
  ignoredWeights: [/rotary_emb(_local)?\.inv_freq$/],

  dims(hf: HfConfig): ModelDims {
    const c = gemma2Dims(hf, "gemma3");
    const nLayers = posInt(hf, "num_hidden_layers");
    const pattern = hf.sliding_window_pattern ?? hf._sliding_window_pattern ?? 6;
    if (typeof pattern !== "number" || !Number.isInteger(pattern) || pattern <= 0) fail(`gemma3: sliding_window_pattern must be a positive integer, got ${pattern}`);
    const windows = layerWindows(hf, "gemma3", nLayers, windowSize(hf, "sliding_window"), (l) => (l + 1) % pattern !== 0);
    // Transformers 5 keeps the local base in rope_parameters.sliding_attention; older configs in rope_local_base_freq.
    const perType = (hf.rope_parameters as Record<string, unknown> | null | undefined)?.sliding_attention as Record<string, unknown> | undefined;
    const local = typeof perType?.rope_theta === "number" ? perType.rope_theta : typeof hf.rope_local_base_freq === "number" ? hf.rope_local_base_freq : 10000;
    return { ...c, rotaryBase: ropeBase(hf, 1000000), windows, qkRmsNorm: "head", rotaryBaseLocal: local };
  },

  loadWeights: loadGemma2Weights,
} satisfies FamilyAdapter;
