/**
 * GPT-NeoX / Pythia (HF `GPTNeoXForCausalLM`), reproducing `modeling_gpt_neox.py` of transformers 4.43 (eager):
 * - `attention.query_key_value` is one `nn.Linear(d, 3d)` whose output is viewed as `[T, H, 3·head_dim]`: per head,
 *   q, k and v are consecutive blocks of head_dim (interleaved per head, NOT `[Q | K | V]` as in GPT-2);
 * - rotary on the first `int(head_dim · rotary_pct)` features of each head (`rotary_pct`, default 0.25; newer
 *   configs: `partial_rotary_factor` / `rope_parameters`), rotate-half layout, base `rotary_emb_base` (newer:
 *   `rope_theta` / `rope_parameters.rope_theta`), default 10000;
 * - scores scaled by `head_size ** -0.5` (`norm_factor`, applied as baddbmm's alpha);
 * - `use_parallel_residual` (default true): `x + attn(ln1(x)) + mlp(ln2(x))`, else sequential;
 * - MLP `dense_h_to_4h` → `hidden_act` (default `gelu` = exact erf GELU) → `dense_4h_to_h`, all with bias;
 *   q/k/v and `dense` biases per `attention_bias` (default true);
 * - untied `embed_out` unless `tie_word_embeddings`; no position embeddings.
 * Buffers stored by old checkpoints (`attention.bias`, `attention.masked_bias`, `rotary_emb.inv_freq`) are ignored.
 */
import * as tf from "@tensorflow/tfjs";
import type { ModelDims, ModelParams } from "../types";
import type { WeightReader } from "../weights";
import { type FamilyAdapter, type HfConfig, firstOf, headDim, nestedRope, num, posInt, tokenId } from "./adapter";
import { activation, linearPick, norm1d, partialRotaryFactor, rotaryDims, unembed } from "./shared";

/** Output-feature indices of q, k or v (s = 0, 1, 2) in the per-head interleaved `[H, 3, head_dim]` layout. */
function fusedRows(nHeads: number, dHead: number, s: number): number[] {
  const rows: number[] = [];
  for (let h = 0; h < nHeads; h++) for (let i = 0; i < dHead; i++) rows.push(h * 3 * dHead + s * dHead + i);
  return rows;
}

/** Rotary base: `rotary_emb_base` (≤ 4.4x), `rope_theta`, or `rope_parameters.rope_theta` (5.x). */
function rotaryBase(hf: HfConfig): number {
  const v = nestedRope(hf, "rope_theta") ?? firstOf(hf, ["rotary_emb_base", "rope_theta"]);
  return typeof v === "number" ? v : 10000;
}

export const gptNeox = {
  family: "gpt-neox" as const,
  aliases: ["gpt_neox", "pythia", "GPTNeoXForCausalLM", "GPTNeoXModel"],
  configKeys: [
    "vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "hidden_act",
    "rotary_pct", "partial_rotary_factor", "rotary_emb_base", "rope_theta", "rope_scaling", "rope_parameters",
    "attention_dropout", "hidden_dropout", "classifier_dropout", "max_position_embeddings", "layer_norm_eps",
    "use_parallel_residual", "attention_bias",
  ],
  // GPTNeoXConfig.__init__ defaults (the 20B shape).
  defaults: {
    vocab_size: 50432, hidden_size: 6144, num_hidden_layers: 44, num_attention_heads: 64, intermediate_size: 24576,
    hidden_act: "gelu", rotary_pct: 0.25, rotary_emb_base: 10000, max_position_embeddings: 2048, initializer_range: 0.02,
    layer_norm_eps: 1e-5, bos_token_id: 0, eos_token_id: 2, tie_word_embeddings: false, use_parallel_residual: true,
    attention_bias: true,
  },
  weightPrefixes: ["gpt_neox."],
  ignoredWeights: [/(^|\.)attention\.(bias|masked_bias)$/, /rotary_emb\.inv_freq$/],

  dims(hf: HfConfig): ModelDims {
    const dModel = posInt(hf, "hidden_size");
    const nHeads = posInt(hf, "num_attention_heads");
    const dHead = headDim(dModel, nHeads, "hidden_size", "num_attention_heads");
    const nLayers = posInt(hf, "num_hidden_layers");
    return {
      family: "gpt-neox", nLayers, nHeads, nKvHeads: nHeads, dModel, dHead, dMlp: posInt(hf, "intermediate_size"),
      dVocab: posInt(hf, "vocab_size"), nCtx: posInt(hf, "max_position_embeddings"),
      normKind: "layernorm", normEps: num(hf, "layer_norm_eps"), normWeightOffset: 0,
      positional: "rotary", rotaryDim: rotaryDims(dHead, partialRotaryFactor(hf, 0.25), "gpt-neox"), rotaryBase: rotaryBase(hf),
      parallelResidual: hf.use_parallel_residual !== false, gatedMlp: false, act: activation(hf, "hidden_act", "gpt-neox"),
      attnScale: 1 / Math.sqrt(dHead), windows: new Array(nLayers).fill(null), embedScale: 1,
      tiedEmbeddings: Boolean(hf.tie_word_embeddings), bosTokenId: tokenId(hf.bos_token_id),
      eosTokenId: tokenId(hf.eos_token_id), initStd: num(hf, "initializer_range"),
    };
  },

  loadWeights(r: WeightReader, c: ModelDims): ModelParams {
    const d = c.dModel;
    const H = c.nHeads;
    const dh = c.dHead;
    const withBias = (name: string) => r.has(name); // attention_bias=false checkpoints simply lack them
    const layers = Array.from({ length: c.nLayers }, (_, l) => {
      const p = `layers.${l}.`;
      const qkv = r.data(p + "attention.query_key_value.weight", [3 * d, d]); // nn.Linear [out = H·3·dh, in]
      const qkvBias = withBias(p + "attention.query_key_value.bias") ? r.data(p + "attention.query_key_value.bias", [3 * d]) : null;
      const pickBias = (s: number) => (qkvBias ? tf.tensor1d(fusedRows(H, dh, s).map((i) => qkvBias[i])) : undefined);
      return {
        ln1: norm1d(r, p + "input_layernorm", d, true),
        ln2: norm1d(r, p + "post_attention_layernorm", d, true),
        attn: {
          wQ: linearPick(qkv, d, fusedRows(H, dh, 0)), bQ: pickBias(0),
          wK: linearPick(qkv, d, fusedRows(H, dh, 1)), bK: pickBias(1),
          wV: linearPick(qkv, d, fusedRows(H, dh, 2)), bV: pickBias(2),
          wO: r.linear(p + "attention.dense.weight", d, d),
          bO: withBias(p + "attention.dense.bias") ? r.tensor1d(p + "attention.dense.bias", d) : undefined,
        },
        mlp: {
          wIn: r.linear(p + "mlp.dense_h_to_4h.weight", c.dMlp, d),
          bIn: r.tensor1d(p + "mlp.dense_h_to_4h.bias", c.dMlp),
          wOut: r.linear(p + "mlp.dense_4h_to_h.weight", d, c.dMlp),
          bOut: r.tensor1d(p + "mlp.dense_4h_to_h.bias", d),
        },
      };
    });
    const wE = r.tensor2d("embed_in.weight", c.dVocab, d);
    return { wE, layers, lnFinal: norm1d(r, "final_layer_norm", d, true), wU: unembed(r, c, "embed_out.weight", wE) };
  },
} satisfies FamilyAdapter;
