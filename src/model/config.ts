/**
 * `HookedAutoConfig`: an architecture name plus Hugging Face `config.json` fields, unchanged.
 *
 *     new HookedAutoConfig({ name: "llama", hidden_size: 64, num_attention_heads: 4, num_key_value_heads: 2 })
 *
 * Missing fields take the Hugging Face defaults of that family's config class; unknown field names are an
 * error (a typo would otherwise silently build a different model) unless `strict: false`, which
 * `fromPretrained` uses because real config.json files carry fields of newer transformers versions.
 */
import { fail, show } from "../errors";
import { ARRAKIS_NAMES, adapterFor } from "./adapters";
import { type FamilyAdapter, GENERIC_CONFIG_KEYS, type HfConfig } from "./adapters/adapter";
import { ropeScalingFromConfig } from "./rope";
import type { ModelDims } from "./types";

/**
 * Fields of other families' configs that change the forward pass. A config that sets one of them to a value
 * other than its neutral one describes a model we would silently compute wrongly, so it is refused by name even
 * with `strict: false` (which otherwise ignores unknown fields). A family that implements a field lists it in its
 * configKeys, which takes it out of this check.
 */
const MATH_FIELDS: Record<string, (v: unknown) => boolean> = {
  use_bidirectional_attention: (v) => !v,
  attention_chunk_size: (v) => v == null,
  no_rope_layers: (v) => v == null || (Array.isArray(v) && v.every((x) => x === 1)),
  attn_logit_softcapping: (v) => v == null,
  final_logit_softcapping: (v) => v == null,
  query_pre_attn_scalar: (v) => v == null,
  qk_layernorm: (v) => !v,
  use_qk_norm: (v) => !v,
  clip_qkv: (v) => v == null,
  sliding_window: (v) => v == null,
  use_sliding_window: (v) => !v,
  attention_bias: (v) => !v,
  mlp_bias: (v) => !v,
  partial_rotary_factor: (v) => v == null || v === 1,
  rope_local_base_freq: (v) => v == null,
  embedding_multiplier: (v) => v == null || v === 1,
  residual_multiplier: (v) => v == null || v === 1,
  attention_multiplier: (v) => v == null,
  logits_scaling: (v) => v == null || v === 1,
  scale_attn_by_inverse_layer_idx: (v) => !v,
  num_experts: (v) => v == null || v === 0,
  num_local_experts: (v) => v == null || v === 0,
  mrope_section: (v) => v == null,
  text_config: (v) => v == null,
  vision_config: (v) => v == null,
  alibi: (v) => !v,
  position_embedding_type: (v) => v == null || v === "absolute" || v === "rope" || v === "rotary",
  rope_interleaved: (v) => !v, // SmolLM2's nanotron field: interleaved (GPT-J) rotary pairs instead of rotate-half
};

export interface HookedAutoConfigFields {
  /** Arrakis name (see `ARRAKIS_NAMES`: gpt2, llama, gemma2, qwen3 …) or HF model_type. */
  name?: string;
  /** Hugging Face config.json fields. */
  [hfField: string]: unknown;
}

export interface ConfigOptions {
  /** Reject unknown field names (default true). */
  strict?: boolean;
}

export class HookedAutoConfig {
  /** The family's Arrakis name. */
  readonly name: string;
  /** The Hugging Face fields after defaults, as config.json would hold them. */
  readonly hf: Readonly<HfConfig>;
  /** The normalised dimensions and flags the model is built from. */
  readonly dims: Readonly<ModelDims>;
  /** Fields that were not recognised and ignored (only with `strict: false`). */
  readonly ignoredKeys: string[];
  /** @internal */
  readonly adapter: FamilyAdapter;

  constructor(fields: HookedAutoConfigFields, options: ConfigOptions = {}) {
    if (typeof fields !== "object" || fields === null) fail(`HookedAutoConfig expects an object of config fields, got ${show(fields)}`);
    const name = fields.name ?? fields.model_type;
    if (name === undefined) fail(`HookedAutoConfig needs a name (one of ${ARRAKIS_NAMES.join(", ")}) or a model_type field`);
    this.adapter = adapterFor(name);
    this.name = this.adapter.family;
    const { name: _drop, ...rest } = fields;
    const renamed = applyAttributeMap(rest, this.adapter.attributeMap ?? {});
    const known = new Set([...GENERIC_CONFIG_KEYS, ...this.adapter.configKeys]);
    const unknown = Object.keys(renamed).filter((k) => !known.has(k));
    if (unknown.length && options.strict !== false) {
      fail(`unknown config field${unknown.length > 1 ? "s" : ""} for ${this.name}: ${unknown.join(", ")} (known: ${this.adapter.configKeys.join(", ")})`);
    }
    const harmful = unknown.filter((k) => k in MATH_FIELDS && !MATH_FIELDS[k](renamed[k]));
    if (harmful.length) {
      fail(`${this.name}: config field${harmful.length > 1 ? "s" : ""} ${harmful.map((k) => `${k}=${show(renamed[k])}`).join(", ")} change${harmful.length > 1 ? "" : "s"} the forward pass and ${harmful.length > 1 ? "are" : "is"} not implemented for this family`);
    }
    this.ignoredKeys = unknown;
    this.hf = Object.freeze({ ...this.adapter.defaults, ...renamed, model_type: this.adapter.aliases[0] });
    this.dims = Object.freeze(withRopeScaling(this.adapter.dims(this.hf), this.hf));
    checkScalars(this.dims, this.hf);
  }

  /**
   * A small model of a family for experiments and tests (2 layers, hidden 128, 4 heads of 32, MLP 512, a
   * vocabulary of 1024, the family's own flags): under a million parameters, built in well under a second. For a
   * real tokenizer's ids pass its `vocab_size` in `overrides` (the embedding then dominates the size).
   *
   *     new HookedAutoModel(HookedAutoConfig.small("llama"))
   */
  static small(name: string, overrides: HookedAutoConfigFields = {}): HookedAutoConfig {
    const adapter = adapterFor(name);
    const keys = new Set([...adapter.configKeys, ...Object.keys(adapter.attributeMap ?? {})]);
    const fields: HookedAutoConfigFields = { name: adapter.family, hidden_size: 128, num_hidden_layers: 2, num_attention_heads: 4, vocab_size: 1024 };
    const set = (key: string, value: unknown) => {
      if (keys.has(key)) fields[key] = value;
    };
    set("num_key_value_heads", 2);
    set("head_dim", 32);
    set("intermediate_size", 512);
    set("n_inner", 512);
    set("query_pre_attn_scalar", 32);
    if (adapter.family === "gpt-neo") fields.attention_types = [[["global", "local"], 1]];
    return new HookedAutoConfig({ ...fields, ...overrides });
  }

  /** The config as a Hugging Face config.json object. */
  toJSON(): HfConfig {
    return { ...this.hf };
  }
}

/** Every rotary family reads `rope_scaling` / `rope_parameters` the same way (HF's modeling_rope_utils). */
function withRopeScaling(dims: ModelDims, hf: HfConfig): ModelDims {
  if (dims.positional !== "rotary" || dims.ropeScaling) return dims;
  const scaling = ropeScalingFromConfig(hf, dims.family, dims.rotaryDim);
  return scaling ? { ...dims, ropeScaling: scaling } : dims;
}

/** Renames generic names (hidden_size …) to the family's own, refusing both spellings with different values. */
function applyAttributeMap(fields: HfConfig, map: Record<string, string>): HfConfig {
  const out: HfConfig = { ...fields };
  for (const [alias, own] of Object.entries(map)) {
    if (!(alias in out)) continue;
    if (own in out && out[own] !== out[alias]) fail(`config fields ${alias}=${show(out[alias])} and ${own}=${show(out[own])} disagree (they name the same value)`);
    out[own] = out[alias];
    delete out[alias];
  }
  return out;
}

/**
 * Values every family reads the same way, checked once here rather than in each adapter: a negative norm
 * epsilon makes the normaliser divide by sqrt(variance - |eps|) (NaN for small variances), and a rotary base
 * of 0 or below gives infinite or NaN angles.
 */
function checkScalars(dims: ModelDims, hf: HfConfig): void {
  const key = (candidates: string[], fallback: string) => candidates.find((k) => typeof hf[k] === "number") ?? fallback;
  if (!(dims.normEps >= 0)) {
    fail(`config field ${key(["layer_norm_epsilon", "layer_norm_eps", "rms_norm_eps"], "layer_norm_epsilon")} must be a number ≥ 0 (typically 1e-5 or 1e-6), got ${show(dims.normEps)}`);
  }
  if (dims.positional === "rotary" && !(dims.rotaryBase > 0)) {
    fail(`config field ${key(["rope_theta", "rotary_emb_base"], "rope_theta")} must be a number > 0 (typically 10000), got ${show(dims.rotaryBase)}`);
  }
}
