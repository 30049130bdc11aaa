/**
 * The real config.json files of test/fixtures/configs shrunk to the tiny shape of the parity checkpoints, with
 * only the sizes changed (layers, hidden size, heads, head_dim, MLP width, vocabulary, sliding window, and lists
 * whose length follows a size: layer_types, longrope factors); every flag and spelling of the published file is
 * kept. `catalogueCase` pairs the shrunk config with the tensor names and shapes Hugging Face stores for it.
 */
import { D, H, L, V, type FamilyCase, type Param, gptNeoxParams, layers, llamaParams, phi3Layers, phiParams } from "./checkpoints";

type Cfg = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** The config with only its sizes shrunk to 2 layers, hidden 64, 4 heads, MLP 128, vocabulary 512. */
export function shrinkConfig(real: Cfg): Cfg {
  const c: Cfg = JSON.parse(JSON.stringify(real));
  if (c.model_type === "gpt2") return { ...c, n_embd: D, n_layer: L, n_head: H, vocab_size: V };
  const heads = c.num_attention_heads;
  const kv = c.num_key_value_heads;
  Object.assign(c, { hidden_size: D, num_hidden_layers: L, num_attention_heads: H, intermediate_size: 128, vocab_size: V });
  // Keep the attention kind: MHA stays MHA, MQA stays MQA, GQA becomes 4 query heads on 2 kv heads.
  if (kv != null) c.num_key_value_heads = kv === heads ? H : kv === 1 ? 1 : 2;
  // An explicit head_dim stays explicit, and stays different from hidden/heads when it was.
  if (c.head_dim != null) c.head_dim = c.head_dim === real.hidden_size / heads ? D / H : 24;
  if (typeof c.sliding_window === "number") c.sliding_window = 4;
  if (typeof c.query_pre_attn_scalar === "number") c.query_pre_attn_scalar = c.head_dim ?? D / H;
  if (c.max_window_layers != null) c.max_window_layers = Math.min(c.max_window_layers, L);
  // The last two layer types: Gemma 3's patterns end in a local and a global layer.
  if (Array.isArray(c.layer_types)) c.layer_types = c.layer_types.slice(-L);
  const scaling = c.rope_scaling;
  if (scaling?.long_factor) {
    const half = Math.floor((c.head_dim ?? D / H) * (c.partial_rotary_factor ?? 1)) / 2;
    const pick = (xs: number[]) => Array.from({ length: half }, (_, i) => xs[Math.round((i * (xs.length - 1)) / (half - 1))]);
    c.rope_scaling = { ...scaling, long_factor: pick(scaling.long_factor), short_factor: pick(scaling.short_factor) };
  }
  return c;
}

/** Hugging Face's stored tensors for a shrunk config (tied heads omitted, as save_pretrained omits them). */
function paramsFor(c: Cfg): Param[] {
  const type: string = c.model_type;
  const I = c.intermediate_size;
  const hd = c.head_dim ?? D / H;
  const kv = c.num_key_value_heads ?? H;
  const embed: Param = ["model.embed_tokens.weight", [V, D], "w"];
  const head: Param[] = c.tie_word_embeddings === false || (c.tie_word_embeddings === undefined && !type.startsWith("gemma")) ? [["lm_head.weight", [V, D], "w"]] : [];
  switch (type) {
    case "gpt2":
      return [
        ["transformer.wte.weight", [V, D], "w"], ["transformer.wpe.weight", [c.n_positions, D], "w"],
        ...layers((l): Param[] => {
          const p = `transformer.h.${l}.`;
          return [
            [p + "ln_1.weight", [D], "norm"], [p + "ln_1.bias", [D], "bias"],
            [p + "attn.c_attn.weight", [D, 3 * D], "w"], [p + "attn.c_attn.bias", [3 * D], "bias"],
            [p + "attn.c_proj.weight", [D, D], "w"], [p + "attn.c_proj.bias", [D], "bias"],
            [p + "ln_2.weight", [D], "norm"], [p + "ln_2.bias", [D], "bias"],
            [p + "mlp.c_fc.weight", [D, 4 * D], "w"], [p + "mlp.c_fc.bias", [4 * D], "bias"],
            [p + "mlp.c_proj.weight", [4 * D, D], "w"], [p + "mlp.c_proj.bias", [D], "bias"],
          ];
        }),
        ["transformer.ln_f.weight", [D], "norm"], ["transformer.ln_f.bias", [D], "bias"],
      ];
    case "gpt_neox":
      return gptNeoxParams(I);
    case "phi3":
      return [embed, ...phi3Layers({ kv, hd, I }), ["model.norm.weight", [D], "norm"], ...head];
    case "phi":
      return phiParams({ hd, I });
    default: {
      const bias = Boolean(c.attention_bias);
      const o = {
        kv, hd, I, qkvBias: type === "qwen2" || bias, oBias: bias && type !== "qwen2", mlpBias: Boolean(c.mlp_bias),
        norms: type === "gemma2" || type === "gemma3_text" ? ("gemma2" as const) : type === "olmo2" ? ("olmo2" as const) : ("llama" as const),
        qkRms: type === "qwen3" || type === "gemma3_text" ? ("head" as const) : type === "olmo2" ? ("projection" as const) : undefined,
      };
      return [embed, ...llamaParams(o), ["model.norm.weight", [D], "norm"], ...head];
    }
  }
}

/** The parity case for a published config: the shrunk config and its stored tensors. */
export function catalogueCase(name: string, real: Cfg, family: string): FamilyCase {
  const config = shrinkConfig(real);
  return { label: name, family, config, params: paramsFor(config) };
}
