/**
 * GPT-2 (HF `GPT2LMHeadModel`). Traps: Conv1D weights are stored `[in, out]` (no transpose needed for x @ W);
 * `c_attn` output is `[Q | K | V]`, each split into heads of contiguous features; `gelu_new` (tanh GELU);
 * lm_head tied to `wte`; names with or without `transformer.`; `attn.bias` / `attn.masked_bias` buffers.
 */
import * as tf from "@tensorflow/tfjs";
import { fail } from "../../errors";
import type { ModelDims, ModelParams } from "../types";
import { columns, type WeightReader } from "../weights";
import { type FamilyAdapter, type HfConfig, headDim, num, posInt, tokenId } from "./adapter";
import { activation, norm1d } from "./shared";

export const gpt2 = {
  family: "gpt2" as const,
  aliases: ["gpt2", "GPT2LMHeadModel", "GPT2Model"],
  configKeys: [
    "vocab_size", "n_positions", "n_ctx", "n_embd", "n_layer", "n_head", "n_inner", "activation_function",
    "resid_pdrop", "embd_pdrop", "attn_pdrop", "layer_norm_epsilon", "summary_type", "summary_use_proj",
    "summary_activation", "summary_proj_to_labels", "summary_first_dropout", "scale_attn_weights",
    "scale_attn_by_inverse_layer_idx", "reorder_and_upcast_attn",
  ],
  attributeMap: { hidden_size: "n_embd", max_position_embeddings: "n_positions", num_attention_heads: "n_head", num_hidden_layers: "n_layer" },
  defaults: {
    vocab_size: 50257, n_positions: 1024, n_embd: 768, n_layer: 12, n_head: 12, n_inner: null,
    activation_function: "gelu_new", layer_norm_epsilon: 1e-5, initializer_range: 0.02, scale_attn_weights: true,
    scale_attn_by_inverse_layer_idx: false, bos_token_id: 50256, eos_token_id: 50256,
  },
  weightPrefixes: ["transformer."],
  ignoredWeights: [/(^|\.)attn\.(bias|masked_bias)$/],

  dims(hf: HfConfig): ModelDims {
    const h = hf;
    const dModel = posInt(h, "n_embd");
    const nHeads = posInt(h, "n_head");
    const act = activation(h, "activation_function", "gpt2");
    if (h.scale_attn_by_inverse_layer_idx) fail("gpt2: scale_attn_by_inverse_layer_idx=true is not supported yet");
    const dHead = headDim(dModel, nHeads, "n_embd", "n_head");
    const nLayers = posInt(h, "n_layer");
    return {
      family: "gpt2", nLayers, nHeads, nKvHeads: nHeads, dModel, dHead,
      dMlp: h.n_inner == null ? 4 * dModel : posInt(h, "n_inner"),
      dVocab: posInt(h, "vocab_size"), nCtx: posInt(h, "n_positions"),
      normKind: "layernorm", normEps: num(h, "layer_norm_epsilon"), normWeightOffset: 0,
      positional: "learned", rotaryDim: 0, rotaryBase: 0, parallelResidual: false, gatedMlp: false, act,
      attnScale: h.scale_attn_weights === false ? 1 : 1 / Math.sqrt(dHead),
      windows: new Array(nLayers).fill(null), embedScale: 1, tiedEmbeddings: true,
      bosTokenId: tokenId(h.bos_token_id), eosTokenId: tokenId(h.eos_token_id), initStd: num(h, "initializer_range"),
    };
  },

  loadWeights(r: WeightReader, c: ModelDims): ModelParams {
    const d = c.dModel;
    const layers = Array.from({ length: c.nLayers }, (_, l) => {
      const p = `h.${l}.`;
      const qkv = r.data(p + "attn.c_attn.weight", [d, 3 * d]); // Conv1D [in, out], out = [Q | K | V]
      const qkvBias = r.data(p + "attn.c_attn.bias", [3 * d]);
      return {
        ln1: norm1d(r, p + "ln_1", d, true),
        ln2: norm1d(r, p + "ln_2", d, true),
        attn: {
          wQ: columns(qkv, d, 3 * d, 0, d),
          wK: columns(qkv, d, 3 * d, d, 2 * d),
          wV: columns(qkv, d, 3 * d, 2 * d, 3 * d),
          bQ: tf.tensor1d(qkvBias.slice(0, d)),
          bK: tf.tensor1d(qkvBias.slice(d, 2 * d)),
          bV: tf.tensor1d(qkvBias.slice(2 * d)),
          wO: r.tensor2d(p + "attn.c_proj.weight", d, d),
          bO: r.tensor1d(p + "attn.c_proj.bias", d),
        },
        mlp: {
          wIn: r.tensor2d(p + "mlp.c_fc.weight", d, c.dMlp),
          bIn: r.tensor1d(p + "mlp.c_fc.bias", c.dMlp),
          wOut: r.tensor2d(p + "mlp.c_proj.weight", c.dMlp, d),
          bOut: r.tensor1d(p + "mlp.c_proj.bias", d),
        },
      };
    });
    const wte = r.data("wte.weight", [c.dVocab, d]);
    // Tied: lm_head.weight is usually not stored; when it is, it equals wte and is used as given.
    const head = r.has("lm_head.weight") ? r.data("lm_head.weight", [c.dVocab, d]) : wte;
    return {
      wE: tf.tensor2d(wte, [c.dVocab, d]),
      wPos: r.tensor2d("wpe.weight", c.nCtx, d),
      layers,
      lnFinal: norm1d(r, "ln_f", d, true),
      wU: tf.transpose(tf.tensor2d(head, [c.dVocab, d])) as tf.Tensor2D, // [d_model, vocab]
    };
  },
} satisfies FamilyAdapter;
