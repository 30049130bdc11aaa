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
import { adapterFor } from "./adapters";
import { type FamilyAdapter, GENERIC_CONFIG_KEYS, type HfConfig } from "./adapters/adapter";
import type { ModelDims } from "./types";

export interface HookedAutoConfigFields {
  /** Arrakis name (`gpt2`, `gpt-neo`, `gpt-neox`, `llama`, `gemma`, `phi3`, `qwen2`, `mistral`, `stable-lm`) or HF model_type. */
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
    if (name === undefined) fail(`HookedAutoConfig needs a name (one of gpt2, gpt-neo, gpt-neox, llama, gemma, phi3, qwen2, mistral, stable-lm) or a model_type field`);
    this.adapter = adapterFor(name);
    this.name = this.adapter.family;
    const { name: _drop, ...rest } = fields;
    const renamed = applyAttributeMap(rest, this.adapter.attributeMap ?? {});
    const known = new Set([...GENERIC_CONFIG_KEYS, ...this.adapter.configKeys]);
    const unknown = Object.keys(renamed).filter((k) => !known.has(k));
    if (unknown.length && options.strict !== false) {
      fail(`unknown config field${unknown.length > 1 ? "s" : ""} for ${this.name}: ${unknown.join(", ")} (known: ${this.adapter.configKeys.join(", ")})`);
    }
    this.ignoredKeys = unknown;
    this.hf = Object.freeze({ ...this.adapter.defaults, ...renamed, model_type: this.adapter.aliases[0] });
    this.dims = Object.freeze(this.adapter.dims(this.hf));
    checkScalars(this.dims, this.hf);
  }

  /** The config as a Hugging Face config.json object. */
  toJSON(): HfConfig {
    return { ...this.hf };
  }
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
