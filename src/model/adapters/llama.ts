/**
 * Llama (HF `LlamaForCausalLM`). Traps: RMSNorm; RoPE in rotate-half layout; grouped-query attention (query
 * head h reads kv head h // (H/KV)); SwiGLU `down(silu(gate) * up)`; `nn.Linear` weights stored `[out, in]`;
 * untied `lm_head` unless `tie_word_embeddings`.
 */
import { fail, show } from "../../errors";
import type { Activation, ModelDims, ModelParams } from "../types";
import type { WeightReader } from "../weights";
import { type FamilyAdapter, type HfConfig, headDim, num, posInt, refuseRopeScaling, ropeTheta, tokenId, attentionHeads } from "./adapter";

const ACTIVATIONS: Record<string, Activation> = { silu: "silu", swish: "silu", gelu: "gelu", gelu_pytorch_tanh: "gelu_pytorch_tanh", relu: "relu" };

export const llama: FamilyAdapter = {
  family: "llama",
  aliases: ["llama", "LlamaForCausalLM", "LlamaModel"],
  configKeys: [
    "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
    "num_key_value_heads", "hidden_act", "max_position_embeddings", "rms_norm_eps", "pretraining_tp",
    "rope_theta", "rope_scaling", "rope_parameters", "attention_bias", "attention_dropout", "mlp_bias", "head_dim",
  ],
  defaults: {
    vocab_size: 32000, hidden_size: 4096, intermediate_size: 11008, num_hidden_layers: 32, num_attention_heads: 32,
    num_key_value_heads: null, hidden_act: "silu", max_position_embeddings: 2048, rms_norm_eps: 1e-6,
    rope_theta: 10000, attention_bias: false, mlp_bias: false, tie_word_embeddings: false, initializer_range: 0.02,
    bos_token_id: 1, eos_token_id: 2,
  },
  weightPrefixes: ["model."],
  ignoredWeights: [/rotary_emb\.inv_freq$/],

  dims(hf: HfConfig): ModelDims {
    const { dModel, nHeads, nKvHeads } = attentionHeads(hf);
    const dHead = hf.head_dim == null ? headDim(dModel, nHeads, "hidden_size", "num_attention_heads") : posInt(hf, "head_dim");
    const act = ACTIVATIONS[String(hf.hidden_act)] ?? fail(`llama: hidden_act ${show(hf.hidden_act)} is not supported (expected one of ${Object.keys(ACTIVATIONS).join(", ")})`);
    refuseRopeScaling(hf, "llama");
    if (hf.attention_bias) fail("llama: attention_bias=true is not supported yet (use the qwen2 adapter for q/k/v biases)");
    if (hf.mlp_bias) fail("llama: mlp_bias=true is not supported yet");
    const nLayers = posInt(hf, "num_hidden_layers");
    return {
      family: "llama", nLayers, nHeads, nKvHeads, dModel, dHead, dMlp: posInt(hf, "intermediate_size"),
      dVocab: posInt(hf, "vocab_size"), nCtx: posInt(hf, "max_position_embeddings"),
      normKind: "rmsnorm", normEps: num(hf, "rms_norm_eps"), normWeightOffset: 0,
      positional: "rotary", rotaryDim: dHead, rotaryBase: ropeTheta(hf, 10000), parallelResidual: false,
      gatedMlp: true, act, attnScale: 1 / Math.sqrt(dHead), windows: new Array(nLayers).fill(null), embedScale: 1,
      tiedEmbeddings: Boolean(hf.tie_word_embeddings), bosTokenId: tokenId(hf.bos_token_id),
      eosTokenId: tokenId(hf.eos_token_id), initStd: num(hf, "initializer_range"),
    };
  },

  loadWeights(r: WeightReader, c: ModelDims): ModelParams {
    const d = c.dModel;
    const qDim = c.nHeads * c.dHead;
    const kvDim = c.nKvHeads * c.dHead;
    const layers = Array.from({ length: c.nLayers }, (_, l) => {
      const p = `layers.${l}.`;
      return {
        ln1: { w: r.tensor1d(p + "input_layernorm.weight", d) },
        ln2: { w: r.tensor1d(p + "post_attention_layernorm.weight", d) },
        attn: {
          wQ: r.linear(p + "self_attn.q_proj.weight", qDim, d),
          wK: r.linear(p + "self_attn.k_proj.weight", kvDim, d),
          wV: r.linear(p + "self_attn.v_proj.weight", kvDim, d),
          wO: r.linear(p + "self_attn.o_proj.weight", d, qDim),
        },
        mlp: {
          wGate: r.linear(p + "mlp.gate_proj.weight", c.dMlp, d),
          wIn: r.linear(p + "mlp.up_proj.weight", c.dMlp, d),
          wOut: r.linear(p + "mlp.down_proj.weight", d, c.dMlp),
        },
      };
    });
    const embed = r.tensor2d("embed_tokens.weight", c.dVocab, d);
    const tiedHead = c.tiedEmbeddings && !r.has("lm_head.weight");
    return {
      wE: embed,
      layers,
      lnFinal: { w: r.tensor1d("norm.weight", d) },
      wU: tiedHead ? (embed.transpose() as import("@tensorflow/tfjs").Tensor2D) : r.linear("lm_head.weight", c.dVocab, d),
    };
  },
};
