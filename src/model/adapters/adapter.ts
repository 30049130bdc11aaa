/**
 * What one architecture family must provide. Everything else (attention, MLP, norms, rotary, hooks) is
 * shared and driven by the `ModelDims` flags the adapter derives from the Hugging Face config.
 */
import type { ModelDims, ModelParams } from "../types";
import type { WeightReader } from "../weights";
import { fail, show } from "../../errors";

export type HfConfig = Record<string, unknown>;

export interface FamilyAdapter {
  /** The Arrakis name (declared `as const` by each adapter, so the registry can derive `FamilyName`). */
  family: string;
  /** Other accepted spellings: Hugging Face `model_type`, architecture class names. */
  aliases: string[];
  /** Hugging Face config fields this family understands (beyond the generic PretrainedConfig ones). */
  configKeys: string[];
  /** Generic names the config class maps onto its own (HF `attribute_map`, e.g. hidden_size → n_embd). */
  attributeMap?: Record<string, string>;
  /** Hugging Face's own defaults for this family's config class, filled in before `dims`. */
  defaults: HfConfig;
  /** Derives the normalised dims; throws on unsupported or impossible values. */
  dims(hf: HfConfig): ModelDims;
  /** Prefixes that checkpoints may or may not put before parameter names. */
  weightPrefixes: string[];
  /** Stored tensors that are buffers, not parameters, and are skipped without complaint. */
  ignoredWeights: RegExp[];
  /** Maps Hugging Face parameter names to the normalised layout (tensors owned by the caller). */
  loadWeights(reader: WeightReader, cfg: ModelDims): ModelParams;
  /** Inverse of loadWeights, used to save a model in Hugging Face's format. Optional. */
  hfWeightNames?(cfg: ModelDims): string[];
}

/** Config fields every Hugging Face `PretrainedConfig` may carry; they never change the forward pass. */
export const GENERIC_CONFIG_KEYS = [
  "architectures", "model_type", "torch_dtype", "dtype", "transformers_version", "_name_or_path", "name_or_path",
  "bos_token_id", "eos_token_id", "pad_token_id", "sep_token_id", "decoder_start_token_id", "tie_word_embeddings",
  "use_cache", "initializer_range", "return_dict", "output_hidden_states", "output_attentions", "torchscript",
  "is_decoder", "is_encoder_decoder", "add_cross_attention", "tokenizer_class", "prefix", "task_specific_params",
  "problem_type", "id2label", "label2id", "num_labels", "pruned_heads", "chunk_size_feed_forward", "max_length",
  "min_length", "do_sample", "early_stopping", "num_beams", "num_beam_groups", "diversity_penalty", "temperature",
  "top_k", "top_p", "typical_p", "repetition_penalty", "length_penalty", "no_repeat_ngram_size",
  "encoder_no_repeat_ngram_size", "bad_words_ids", "num_return_sequences", "output_scores",
  "return_dict_in_generate", "forced_bos_token_id", "forced_eos_token_id", "remove_invalid_values",
  "exponential_decay_length_penalty", "suppress_tokens", "begin_suppress_tokens", "finetuning_task",
  "cross_attention_hidden_size", "tf_legacy_loss", "use_bfloat16", "quantization_config", "_attn_implementation",
  "attn_implementation", "_commit_hash", "gradient_checkpointing", "use_return_dict", "tie_encoder_decoder",
];

/** A positive integer config field. */
export function posInt(hf: HfConfig, key: string): number {
  const v = hf[key];
  if (typeof v !== "number" || !Number.isInteger(v) || v <= 0) fail(`config field ${key} must be a positive integer, got ${show(v)}`);
  return v;
}

export function num(hf: HfConfig, key: string): number {
  const v = hf[key];
  if (typeof v !== "number" || !Number.isFinite(v)) fail(`config field ${key} must be a number, got ${show(v)}`);
  return v;
}

/** The first present field among spellings that drifted across transformers versions. */
export function firstOf(hf: HfConfig, keys: string[]): unknown {
  for (const k of keys) if (hf[k] !== undefined && hf[k] !== null) return hf[k];
  return undefined;
}

export function tokenId(v: unknown): number | null {
  if (typeof v === "number" && Number.isInteger(v)) return v;
  if (Array.isArray(v) && typeof v[0] === "number") return v[0];
  return null;
}

/** Fails when `heads` does not divide `hidden` (the usual head_dim rule). */
export function headDim(hidden: number, heads: number, hiddenKey: string, headsKey: string): number {
  if (hidden % heads !== 0) {
    fail(`inconsistent dims: ${hiddenKey}=${hidden} is not divisible by ${headsKey}=${heads} (head_dim would be ${hidden / heads})`);
  }
  return hidden / heads;
}

/**
 * The Llama-style attention shape fields: `hidden_size`, `num_attention_heads`, and `num_key_value_heads`
 * (absent or null: one kv head per query head, as HF's config classes default it), checked to group evenly.
 */
export function attentionHeads(hf: HfConfig): { dModel: number; nHeads: number; nKvHeads: number } {
  const dModel = posInt(hf, "hidden_size");
  const nHeads = posInt(hf, "num_attention_heads");
  const nKvHeads = hf.num_key_value_heads == null ? nHeads : posInt(hf, "num_key_value_heads");
  checkKvHeads(nHeads, nKvHeads);
  return { dModel, nHeads, nKvHeads };
}

export function checkKvHeads(nHeads: number, nKv: number): void {
  if (nHeads % nKv !== 0) fail(`inconsistent dims: num_attention_heads=${nHeads} is not a multiple of num_key_value_heads=${nKv}`);
}

/** Rotary base from `rope_theta` or the newer `rope_parameters.rope_theta`. */
export function ropeTheta(hf: HfConfig, fallback: number): number {
  // The nested value first: a transformers-5 config has no top-level rope_theta, so the top-level one would be
  // the config class's default filled in before dims.
  const v = nestedRope(hf, "rope_theta") ?? firstOf(hf, ["rope_theta"]);
  return typeof v === "number" ? v : fallback;
}

/** A field of `rope_parameters` (transformers 5: one dict, or one per layer type, `full_attention` for global layers). */
export function nestedRope(hf: HfConfig, key: string, layerType: "full_attention" | "sliding_attention" = "full_attention"): unknown {
  const params = hf.rope_parameters as Record<string, unknown> | null | undefined;
  if (params == null || typeof params !== "object") return undefined;
  const perType = params[layerType] as Record<string, unknown> | undefined;
  return perType && typeof perType === "object" ? perType[key] : params[key];
}
