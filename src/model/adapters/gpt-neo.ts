/**
 * GPT-Neo (HF `GPTNeoForCausalLM`), reproducing `modeling_gpt_neo.py` of transformers 4.43 (eager attention;
 * unchanged in this respect through 4.5x):
 * - attention scores are NOT scaled by 1/sqrt(head_dim) (`_attn` is a plain `q @ k^T`, computed in float32);
 * - layer l is "global" or "local" from `attention_layers` (or `attention_types` = [[["global","local"], n]]
 *   expanded); a local layer's mask is `tril ^ tril(-window_size)`, i.e. keys with i - W < j <= i;
 * - `q_proj`, `k_proj`, `v_proj` have no bias, `out_proj` has one; the MLP `c_fc`/`c_proj` are `nn.Linear`
 *   (stored `[out, in]`, unlike GPT-2's Conv1D); activation `activation_function` (default `gelu_new`);
 * - learned positions `wpe`, pre-LN blocks, final `ln_f`, lm_head tied to `wte`;
 * - `attn.attention.bias` / `masked_bias` mask buffers stored by old checkpoints are ignored.
 */
import { fail, show } from "../../errors";
import type { ModelDims, ModelParams } from "../types";
import type { WeightReader } from "../weights";
import { type FamilyAdapter, type HfConfig, headDim, num, posInt, tokenId } from "./adapter";
import { activation, norm1d, unembed } from "./shared";

/** `attention_layers` as saved, else HF's `expand_attention_types_params(attention_types)`. */
function attentionLayers(hf: HfConfig, nLayers: number): string[] {
  let layers = hf.attention_layers as unknown;
  if (!Array.isArray(layers)) {
    const types = hf.attention_types;
    if (!Array.isArray(types)) fail(`gpt-neo: attention_types must be a list like [[["global", "local"], 12]], got ${show(types)}`);
    layers = types.flatMap((item: unknown) => {
      if (!Array.isArray(item) || !Array.isArray(item[0]) || !Number.isInteger(item[1])) fail(`gpt-neo: bad attention_types entry ${show(item)}; expected [["global", "local"], n]`);
      return Array.from({ length: item[1] as number }, () => item[0] as string[]).flat();
    });
  }
  const list = layers as unknown[];
  if (list.length !== nLayers) fail(`gpt-neo: attention layers list has ${list.length} entries but num_layers is ${nLayers}`);
  list.forEach((t, l) => {
    if (t !== "global" && t !== "local") fail(`gpt-neo: attention type of layer ${l} is ${show(t)}; only "global" and "local" exist`);
  });
  return list as string[];
}

export const gptNeo = {
  family: "gpt-neo" as const,
  aliases: ["gpt_neo", "GPTNeoForCausalLM", "GPTNeoModel"],
  configKeys: [
    "vocab_size", "max_position_embeddings", "hidden_size", "num_layers", "attention_types", "attention_layers",
    "num_heads", "intermediate_size", "window_size", "activation_function", "resid_dropout", "embed_dropout",
    "attention_dropout", "classifier_dropout", "layer_norm_epsilon", "summary_type", "summary_use_proj",
    "summary_activation", "summary_proj_to_labels", "summary_first_dropout",
  ],
  attributeMap: { num_attention_heads: "num_heads", num_hidden_layers: "num_layers" },
  // GPTNeoConfig.__init__ defaults (the 1.3B shape).
  defaults: {
    vocab_size: 50257, max_position_embeddings: 2048, hidden_size: 2048, num_layers: 24,
    attention_types: [[["global", "local"], 12]], num_heads: 16, intermediate_size: null, window_size: 256,
    activation_function: "gelu_new", layer_norm_epsilon: 1e-5, initializer_range: 0.02, bos_token_id: 50256, eos_token_id: 50256,
  },
  weightPrefixes: ["transformer."],
  ignoredWeights: [/(^|\.)attn\.attention\.(bias|masked_bias)$/],

  dims(hf: HfConfig): ModelDims {
    const dModel = posInt(hf, "hidden_size");
    const nHeads = posInt(hf, "num_heads");
    const nLayers = posInt(hf, "num_layers");
    const window = posInt(hf, "window_size");
    const types = attentionLayers(hf, nLayers);
    return {
      family: "gpt-neo", nLayers, nHeads, nKvHeads: nHeads, dModel, dHead: headDim(dModel, nHeads, "hidden_size", "num_heads"),
      dMlp: hf.intermediate_size == null ? 4 * dModel : posInt(hf, "intermediate_size"),
      dVocab: posInt(hf, "vocab_size"), nCtx: posInt(hf, "max_position_embeddings"),
      normKind: "layernorm", normEps: num(hf, "layer_norm_epsilon"), normWeightOffset: 0,
      positional: "learned", rotaryDim: 0, rotaryBase: 0, parallelResidual: false, gatedMlp: false,
      act: activation(hf, "activation_function", "gpt-neo"),
      attnScale: 1, // GPT-Neo never scales its attention scores
      windows: types.map((t) => (t === "local" ? window : null)),
      embedScale: 1, tiedEmbeddings: hf.tie_word_embeddings !== false,
      bosTokenId: tokenId(hf.bos_token_id), eosTokenId: tokenId(hf.eos_token_id), initStd: num(hf, "initializer_range"),
    };
  },

  loadWeights(r: WeightReader, c: ModelDims): ModelParams {
    const d = c.dModel;
    const layers = Array.from({ length: c.nLayers }, (_, l) => {
      const p = `h.${l}.`;
      const a = p + "attn.attention.";
      return {
        ln1: norm1d(r, p + "ln_1", d, true),
        ln2: norm1d(r, p + "ln_2", d, true),
        attn: {
          wQ: r.linear(a + "q_proj.weight", d, d),
          wK: r.linear(a + "k_proj.weight", d, d),
          wV: r.linear(a + "v_proj.weight", d, d),
          wO: r.linear(a + "out_proj.weight", d, d),
          bO: r.tensor1d(a + "out_proj.bias", d),
        },
        mlp: {
          wIn: r.linear(p + "mlp.c_fc.weight", c.dMlp, d),
          bIn: r.tensor1d(p + "mlp.c_fc.bias", c.dMlp),
          wOut: r.linear(p + "mlp.c_proj.weight", d, c.dMlp),
          bOut: r.tensor1d(p + "mlp.c_proj.bias", d),
        },
      };
    });
    const wE = r.tensor2d("wte.weight", c.dVocab, d);
    return {
      wE,
      wPos: r.tensor2d("wpe.weight", c.nCtx, d),
      layers,
      lnFinal: norm1d(r, "ln_f", d, true),
      wU: unembed(r, c, "lm_head.weight", wE),
    };
  },
} satisfies FamilyAdapter;
