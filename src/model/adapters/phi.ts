/**
 * Phi-1, Phi-1.5 and Phi-2 (HF `PhiForCausalLM`), reproducing `modeling_phi.py` of transformers 4.4x–4.5x (eager):
 * - one LayerNorm (`input_layernorm`, with bias, eps `layer_norm_eps`) feeds attention and MLP in parallel:
 *   `x + attn(ln(x)) + mlp(ln(x))`; we give the MLP a copy of that norm, so `ln2.hook_normalized` equals
 *   `ln1.hook_normalized` (patching ln1 does not reach the MLP);
 * - `q_proj`, `k_proj`, `v_proj` and the output projection `dense` all with biases; scale head_dim^-0.5 (scores in
 *   float32); rotary on the first int(head_dim · `partial_rotary_factor`) features (Phi-2: 0.4 of 80 = 32);
 * - MLP `fc2(act(fc1(x)))` with biases, act = `hidden_act` (gelu_new);
 * - `final_layernorm` (with bias), untied `lm_head` WITH a bias.
 * `qk_layernorm=true` (no released checkpoint uses it) is refused by name.
 */
import { fail } from "../../errors";
import type { ModelDims, ModelParams } from "../types";
import type { WeightReader } from "../weights";
import type { FamilyAdapter, HfConfig } from "./adapter";
import { copyNorm, llamaLikeDims, norm1d, partialRotaryFactor, rotaryDims, unembed } from "./shared";

export const phi = {
  family: "phi" as const,
  aliases: ["phi", "PhiForCausalLM", "PhiModel"],
  configKeys: [
    "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
    "num_key_value_heads", "resid_pdrop", "embd_pdrop", "attention_dropout", "hidden_act", "max_position_embeddings",
    "layer_norm_eps", "rope_theta", "rope_scaling", "rope_parameters", "partial_rotary_factor", "qk_layernorm",
  ],
  // PhiConfig.__init__ defaults (the phi-1 shape).
  defaults: {
    vocab_size: 51200, hidden_size: 2048, intermediate_size: 8192, num_hidden_layers: 24, num_attention_heads: 32,
    num_key_value_heads: null, hidden_act: "gelu_new", max_position_embeddings: 2048, initializer_range: 0.02,
    layer_norm_eps: 1e-5, tie_word_embeddings: false, rope_theta: 10000, rope_scaling: null, partial_rotary_factor: 0.5,
    qk_layernorm: false, bos_token_id: 1, eos_token_id: 2,
  },
  weightPrefixes: ["model."],
  ignoredWeights: [/rotary_emb\.inv_freq$/],

  dims(hf: HfConfig): ModelDims {
    if (hf.qk_layernorm) fail("phi: qk_layernorm=true is not supported (no released Phi checkpoint uses it)");
    const c = llamaLikeDims(hf, "phi", { epsKey: "layer_norm_eps" });
    return {
      ...c, normKind: "layernorm", rotaryDim: rotaryDims(c.dHead, partialRotaryFactor(hf, 0.5), "phi"),
      parallelResidual: true, gatedMlp: false,
    };
  },

  loadWeights(r: WeightReader, c: ModelDims): ModelParams {
    const d = c.dModel;
    const q = c.nHeads * c.dHead;
    const kv = c.nKvHeads * c.dHead;
    const layers = Array.from({ length: c.nLayers }, (_, l) => {
      const p = `layers.${l}.`;
      const a = p + "self_attn.";
      const ln1 = norm1d(r, p + "input_layernorm", d, true);
      return {
        ln1,
        ln2: copyNorm(ln1),
        attn: {
          wQ: r.linear(a + "q_proj.weight", q, d), bQ: r.tensor1d(a + "q_proj.bias", q),
          wK: r.linear(a + "k_proj.weight", kv, d), bK: r.tensor1d(a + "k_proj.bias", kv),
          wV: r.linear(a + "v_proj.weight", kv, d), bV: r.tensor1d(a + "v_proj.bias", kv),
          wO: r.linear(a + "dense.weight", d, q), bO: r.tensor1d(a + "dense.bias", d),
        },
        mlp: {
          wIn: r.linear(p + "mlp.fc1.weight", c.dMlp, d), bIn: r.tensor1d(p + "mlp.fc1.bias", c.dMlp),
          wOut: r.linear(p + "mlp.fc2.weight", d, c.dMlp), bOut: r.tensor1d(p + "mlp.fc2.bias", d),
        },
      };
    });
    const wE = r.tensor2d("embed_tokens.weight", c.dVocab, d);
    return {
      wE, layers, lnFinal: norm1d(r, "final_layernorm", d, true),
      wU: unembed(r, c, "lm_head.weight", wE), bU: r.tensor1d("lm_head.bias", c.dVocab),
    };
  },
} satisfies FamilyAdapter;
