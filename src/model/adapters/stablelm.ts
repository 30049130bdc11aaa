/**
 * StableLM (HF `StableLmForCausalLM`: stablelm-3b-4e1t, stablelm-2), reproducing `modeling_stablelm.py` of
 * transformers 4.43 (eager):
 * - `nn.LayerNorm` with bias everywhere (eps `layer_norm_eps`, default 1e-5), final `model.norm` too;
 * - q/k/v biases when `use_qkv_bias` (default false); `o_proj` never has one; head_dim = hidden / heads, GQA by
 *   repeat-interleave;
 * - `qk_layernorm` (default false): a separate `nn.LayerNorm(head_dim, bias=False)` per query head and per key/value
 *   head (`q_layernorm.norms.{h}.weight`, `k_layernorm.norms.{h}.weight`), applied after the projections and
 *   before rotary;
 * - partial rotary on the first `int(head_dim · partial_rotary_factor)` features (default 0.25), rotate-half,
 *   base `rope_theta`; scale 1/sqrt(head_dim);
 * - SwiGLU MLP `down(act(gate(x)) * up(x))` without biases, act = `hidden_act` (default silu);
 * - `use_parallel_residual` (default false): `x + attn(ln1(x)) + mlp(ln1(x))` — ONE norm feeds both branches and
 *   `post_attention_layernorm` does not exist. We reproduce it by giving the MLP a copy of the input LayerNorm
 *   (so `blocks.l.ln2.hook_normalized` equals `ln1.hook_normalized`; patching ln1 does not reach the MLP).
 * - untied `lm_head` unless `tie_word_embeddings`.
 */
import * as tf from "@tensorflow/tfjs";
import type { ModelDims, ModelParams } from "../types";
import type { WeightReader } from "../weights";
import type { FamilyAdapter, HfConfig } from "./adapter";
import { copyNorm, gatedMlp, llamaLikeDims, norm1d, partialRotaryFactor, rotaryDims, separateQkv, unembed } from "./shared";

/** The per-head LayerNorm weights `norms.{h}.weight` stacked to `[heads, d_head]`. */
function perHeadNorm(r: WeightReader, prefix: string, heads: number, dHead: number): tf.Tensor2D {
  const out = new Float32Array(heads * dHead);
  for (let h = 0; h < heads; h++) out.set(r.data(`${prefix}.norms.${h}.weight`, [dHead]), h * dHead);
  return tf.tensor2d(out, [heads, dHead]);
}

export const stablelm = {
  family: "stable-lm" as const,
  aliases: ["stablelm", "stable_lm", "StableLmForCausalLM", "StableLmModel"],
  configKeys: [
    "vocab_size", "intermediate_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
    "num_key_value_heads", "hidden_act", "max_position_embeddings", "layer_norm_eps", "rope_theta", "rope_scaling",
    "rope_parameters", "use_qkv_bias", "qk_layernorm", "use_parallel_residual", "hidden_dropout",
    "attention_dropout", "partial_rotary_factor",
  ],
  // StableLmConfig.__init__ defaults (the stablelm-3b-4e1t shape).
  defaults: {
    vocab_size: 50304, intermediate_size: 6912, hidden_size: 2560, num_hidden_layers: 32, num_attention_heads: 32,
    num_key_value_heads: 32, hidden_act: "silu", max_position_embeddings: 4096, initializer_range: 0.02,
    layer_norm_eps: 1e-5, tie_word_embeddings: false, rope_theta: 10000, rope_scaling: null, use_qkv_bias: false,
    qk_layernorm: false, use_parallel_residual: false, partial_rotary_factor: 0.25, bos_token_id: 0, eos_token_id: 0,
  },
  weightPrefixes: ["model."],
  ignoredWeights: [/rotary_emb\.inv_freq$/],

  dims(hf: HfConfig): ModelDims {
    const c = llamaLikeDims(hf, "stable-lm", { headDim: "derived", epsKey: "layer_norm_eps" });
    return {
      ...c, normKind: "layernorm", rotaryDim: rotaryDims(c.dHead, partialRotaryFactor(hf, 0.25), "stable-lm"),
      parallelResidual: Boolean(hf.use_parallel_residual), qkNorm: Boolean(hf.qk_layernorm),
    };
  },

  loadWeights(r: WeightReader, c: ModelDims): ModelParams {
    const d = c.dModel;
    const qkvBias = r.has("layers.0.self_attn.q_proj.bias"); // use_qkv_bias
    const layers = Array.from({ length: c.nLayers }, (_, l) => {
      const p = `layers.${l}.`;
      const ln1 = norm1d(r, p + "input_layernorm", d, true);
      const attn = separateQkv(r, c, p + "self_attn.", { qkv: qkvBias, o: false });
      if (c.qkNorm) {
        attn.qNorm = perHeadNorm(r, p + "self_attn.q_layernorm", c.nHeads, c.dHead);
        attn.kNorm = perHeadNorm(r, p + "self_attn.k_layernorm", c.nKvHeads, c.dHead);
      }
      return {
        ln1,
        ln2: c.parallelResidual ? copyNorm(ln1) : norm1d(r, p + "post_attention_layernorm", d, true),
        attn,
        mlp: gatedMlp(r, c, p + "mlp."),
      };
    });
    const wE = r.tensor2d("embed_tokens.weight", c.dVocab, d);
    return { wE, layers, lnFinal: norm1d(r, "norm", d, true), wU: unembed(r, c, "lm_head.weight", wE) };
  },
} satisfies FamilyAdapter;
