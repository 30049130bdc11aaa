/**
 * Gemma 2 (HF `Gemma2ForCausalLM`), reproducing `modeling_gemma2.py` of transformers 4.4x–4.5x (eager):
 * - Gemma's conventions: embeddings × sqrt(hidden_size) rounded to the model dtype (float32), RMSNorm with (1 + w),
 *   explicit `head_dim` (default 256), GQA, tied lm_head, MLP `down(act(gate) * up)` with act = `hidden_activation`
 *   (the config also carries an unused `hidden_act`);
 * - sandwich norms: `input_layernorm` before attention and `post_attention_layernorm` on its output,
 *   `pre_feedforward_layernorm` before the MLP and `post_feedforward_layernorm` on its output;
 * - scores scaled by `query_pre_attn_scalar`^-0.5 (not head_dim), then soft-capped tanh(s / c) · c with
 *   c = `attn_logit_softcapping`, then masked; final logits soft-capped with `final_logit_softcapping`;
 * - alternating layers: `layer_types` when given, else even layers (0, 2, …) slide, keeping keys i − W < j ≤ i with
 *   W = `sliding_window`, and odd layers attend globally.
 */
import { fail } from "../../errors";
import type { ModelDims, ModelParams } from "../types";
import type { WeightReader } from "../weights";
import { type FamilyAdapter, type HfConfig, num, posInt } from "./adapter";
import { activation, layerWindows, llamaLikeDims, llamaLikeWeights, softcapField, storedAttnBias, windowSize } from "./shared";

/** The Gemma 2 / Gemma 3 dims shared by both adapters (everything but the layer pattern and q/k norms). */
export function gemma2Dims(hf: HfConfig, family: "gemma2" | "gemma3"): ModelDims {
  const c = llamaLikeDims(hf, family, { act: activation(hf, "hidden_activation", family) });
  if (hf.use_bidirectional_attention) fail(`${family}: use_bidirectional_attention=true is not supported (causal attention only)`);
  return {
    ...c,
    normWeightOffset: 1,
    embedScale: Math.sqrt(c.dModel), // rounded to float32 where it is applied, as HF rounds it to the model dtype
    attnScale: 1 / Math.sqrt(num(hf, "query_pre_attn_scalar")),
    tiedEmbeddings: hf.tie_word_embeddings !== false,
    normPlacement: "sandwich",
    ...(softcapField(hf, "attn_logit_softcapping") !== undefined ? { attnSoftcap: softcapField(hf, "attn_logit_softcapping") } : {}),
    ...(softcapField(hf, "final_logit_softcapping") !== undefined ? { finalSoftcap: softcapField(hf, "final_logit_softcapping") } : {}),
  };
}

/** Embeddings, sandwich-normed layers, final norm and the tied head, as Gemma 2 and Gemma 3 store them. */
export function loadGemma2Weights(r: WeightReader, c: ModelDims): ModelParams {
  return llamaLikeWeights(r, c, { attnBias: storedAttnBias(r), norms: "gemma2" });
}

export const gemma2 = {
  family: "gemma2" as const,
  aliases: ["gemma2", "Gemma2ForCausalLM", "Gemma2Model"],
  configKeys: [
    "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
    "num_key_value_heads", "head_dim", "hidden_act", "hidden_activation", "max_position_embeddings", "rms_norm_eps",
    "rope_theta", "rope_scaling", "rope_parameters", "attention_bias", "attention_dropout", "query_pre_attn_scalar",
    "sliding_window", "layer_types", "final_logit_softcapping", "attn_logit_softcapping", "cache_implementation",
    "use_bidirectional_attention",
  ],
  // Gemma2Config.__init__ defaults (the gemma-2-2b shape).
  defaults: {
    vocab_size: 256000, hidden_size: 2304, intermediate_size: 9216, num_hidden_layers: 26, num_attention_heads: 8,
    num_key_value_heads: 4, head_dim: 256, hidden_activation: "gelu_pytorch_tanh", max_position_embeddings: 8192,
    initializer_range: 0.02, rms_norm_eps: 1e-6, pad_token_id: 0, eos_token_id: 1, bos_token_id: 2,
    tie_word_embeddings: true, rope_theta: 10000, attention_bias: false, attention_dropout: 0, query_pre_attn_scalar: 256,
    sliding_window: 4096, final_logit_softcapping: 30.0, attn_logit_softcapping: 50.0,
  },
  weightPrefixes: ["model."],
  ignoredWeights: [/rotary_emb\.inv_freq$/],

  dims(hf: HfConfig): ModelDims {
    const c = gemma2Dims(hf, "gemma2");
    const nLayers = posInt(hf, "num_hidden_layers");
    return { ...c, windows: layerWindows(hf, "gemma2", nLayers, windowSize(hf, "sliding_window"), (l) => l % 2 === 0) };
  },

  loadWeights: loadGemma2Weights,
} satisfies FamilyAdapter;
