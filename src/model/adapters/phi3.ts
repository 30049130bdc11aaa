/**
 * Phi-3 (HF `Phi3ForCausalLM`), reproducing `modeling_phi3.py` of transformers 4.43 (eager):
 * - `self_attn.qkv_proj` is one `nn.Linear(d, (H + 2·KV)·head_dim)` whose output is blocked `[Q | K | V]`, with
 *   K and V sized for the key/value heads (GQA); head_dim = hidden_size / num_attention_heads;
 * - `mlp.gate_up_proj` is one `nn.Linear(d, 2·I)`; `chunk(2)` gives gate FIRST, then up:
 *   `down(up * act(gate))`, act = `hidden_act` (default silu);
 * - RMSNorm (eps `rms_norm_eps`, default 1e-5), RoPE rotate-half with base `rope_theta`; `partial_rotary_factor`
 *   (added to Phi3Config for Phi-4-mini in later versions) rotates only the leading features;
 * - `rope_scaling` (`longrope` of the 128k models such as Phi-3.5-mini, with `original_max_position_embeddings`)
 *   follows rope.ts;
 * - `sliding_window`: transformers 4.42–4.44 build the eager mask without it (the window only reaches flash
 *   attention), so a config saved by those versions gets full causal attention; from 4.45 the eager mask keeps keys
 *   i - W < j <= i on every layer, which is what a config saved by a newer version (or without a version) gets.
 * - untied `lm_head` unless `tie_word_embeddings`.
 */
import type { ModelDims, ModelParams } from "../types";
import type { WeightReader } from "../weights";
import type { FamilyAdapter, HfConfig } from "./adapter";
import { linearRows, llamaLikeDims, norm1d, partialRotaryFactor, rotaryDims, savedBefore, unembed, windowSize } from "./shared";

export const phi3 = {
  family: "phi3" as const,
  aliases: ["phi3", "Phi3ForCausalLM", "Phi3Model"],
  configKeys: [
    "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
    "num_key_value_heads", "resid_pdrop", "embd_pdrop", "attention_dropout", "hidden_act", "max_position_embeddings",
    "original_max_position_embeddings", "rms_norm_eps", "rope_theta", "rope_scaling", "rope_parameters",
    "partial_rotary_factor", "sliding_window",
  ],
  // Phi3Config.__init__ defaults (the Phi-3-mini shape).
  defaults: {
    vocab_size: 32064, hidden_size: 3072, intermediate_size: 8192, num_hidden_layers: 32, num_attention_heads: 32,
    num_key_value_heads: null, hidden_act: "silu", max_position_embeddings: 4096, original_max_position_embeddings: 4096,
    initializer_range: 0.02, rms_norm_eps: 1e-5, tie_word_embeddings: false, rope_theta: 10000, rope_scaling: null,
    bos_token_id: 1, eos_token_id: 32000, pad_token_id: 32000, sliding_window: null,
  },
  weightPrefixes: ["model."],
  ignoredWeights: [/rotary_emb\.inv_freq$/],

  dims(hf: HfConfig): ModelDims {
    const c = llamaLikeDims(hf, "phi3", { headDim: "derived" });
    const window = savedBefore(hf, 4, 45) ? null : windowSize(hf, "sliding_window");
    return { ...c, rotaryDim: rotaryDims(c.dHead, partialRotaryFactor(hf, 1), "phi3"), windows: new Array(c.nLayers).fill(window) };
  },

  loadWeights(r: WeightReader, c: ModelDims): ModelParams {
    const d = c.dModel;
    const q = c.nHeads * c.dHead;
    const kv = c.nKvHeads * c.dHead;
    const I = c.dMlp;
    const layers = Array.from({ length: c.nLayers }, (_, l) => {
      const p = `layers.${l}.`;
      const qkv = r.data(p + "self_attn.qkv_proj.weight", [q + 2 * kv, d]); // rows: [Q | K | V]
      const gateUp = r.data(p + "mlp.gate_up_proj.weight", [2 * I, d]); // rows: [gate | up]
      return {
        ln1: norm1d(r, p + "input_layernorm", d, false),
        ln2: norm1d(r, p + "post_attention_layernorm", d, false),
        attn: {
          wQ: linearRows(qkv, d, 0, q),
          wK: linearRows(qkv, d, q, q + kv),
          wV: linearRows(qkv, d, q + kv, q + 2 * kv),
          wO: r.linear(p + "self_attn.o_proj.weight", d, q),
        },
        mlp: {
          wGate: linearRows(gateUp, d, 0, I),
          wIn: linearRows(gateUp, d, I, 2 * I),
          wOut: r.linear(p + "mlp.down_proj.weight", d, I),
        },
      };
    });
    const wE = r.tensor2d("embed_tokens.weight", c.dVocab, d);
    return { wE, layers, lnFinal: norm1d(r, "norm", d, false), wU: unembed(r, c, "lm_head.weight", wE) };
  },
} satisfies FamilyAdapter;
