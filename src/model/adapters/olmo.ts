/**
 * OLMo (HF `OlmoForCausalLM`, e.g. OLMo-1B-hf), reproducing `modeling_olmo.py` of transformers 4.4x–4.5x (eager):
 * the Llama layout with
 * - non-parametric LayerNorm everywhere (`OlmoLayerNorm`: `F.layer_norm` without weight or bias, eps 1e-5 fixed;
 *   the checkpoint stores no norm weights);
 * - `clip_qkv`: queries, keys and values clamped to [−clip, clip] right after their projections;
 * - `attention_bias` on q/k/v/o; untied lm_head unless `tie_word_embeddings`.
 */
import { fail } from "../../errors";
import type { ModelDims, ModelParams } from "../types";
import type { WeightReader } from "../weights";
import type { FamilyAdapter, HfConfig } from "./adapter";
import { gatedMlp, llamaLikeDims, plainNorm, separateQkv, storedAttnBias, unembed } from "./shared";

/** `clip_qkv` when set (a positive number), else undefined. */
export function clipQkv(hf: HfConfig, family: string): number | undefined {
  const v = hf.clip_qkv;
  if (v === null || v === undefined) return undefined;
  if (typeof v !== "number" || !(v > 0)) fail(`${family}: clip_qkv must be a positive number or null, got ${String(v)}`);
  return v;
}

export const olmo = {
  family: "olmo" as const,
  aliases: ["olmo", "OlmoForCausalLM", "OlmoModel"],
  configKeys: [
    "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
    "num_key_value_heads", "hidden_act", "max_position_embeddings", "rope_theta", "rope_scaling", "rope_parameters",
    "attention_bias", "attention_dropout", "clip_qkv",
  ],
  // OlmoConfig.__init__ defaults (the 7B shape).
  defaults: {
    vocab_size: 50304, hidden_size: 4096, intermediate_size: 11008, num_hidden_layers: 32, num_attention_heads: 32,
    num_key_value_heads: null, hidden_act: "silu", max_position_embeddings: 2048, initializer_range: 0.02,
    pad_token_id: 1, bos_token_id: null, eos_token_id: 50279, tie_word_embeddings: false, rope_theta: 10000,
    rope_scaling: null, attention_bias: false, attention_dropout: 0, clip_qkv: null,
  },
  weightPrefixes: ["model."],
  ignoredWeights: [/rotary_emb\.inv_freq$/],

  dims(hf: HfConfig): ModelDims {
    const c = llamaLikeDims({ ...hf, rms_norm_eps: 1e-5 }, "olmo");
    const clip = clipQkv(hf, "olmo");
    return { ...c, normKind: "layernorm", normEps: 1e-5, ...(clip !== undefined ? { clipQkv: clip } : {}) };
  },

  loadWeights(r: WeightReader, c: ModelDims): ModelParams {
    const attnBias = storedAttnBias(r);
    const layers = Array.from({ length: c.nLayers }, (_, l) => ({
      ln1: plainNorm(c.dModel),
      ln2: plainNorm(c.dModel),
      attn: separateQkv(r, c, `layers.${l}.self_attn.`, attnBias),
      mlp: gatedMlp(r, c, `layers.${l}.mlp.`),
    }));
    const wE = r.tensor2d("embed_tokens.weight", c.dVocab, c.dModel);
    return { wE, layers, lnFinal: plainNorm(c.dModel), wU: unembed(r, c, "lm_head.weight", wE) };
  },
} satisfies FamilyAdapter;
