/**
 * RoPE frequency scaling with Hugging Face's semantics (`modeling_rope_utils.py`, transformers 4.4x–4.5x):
 * reading `rope_scaling` / `rope_parameters` (`rope_type` or the older `type`) into a `RopeScaling`, and the cos/sin
 * tables of one layer for a sequence of T positions.
 *
 * Hugging Face computes the inverse frequencies in float32 tensors with Python floats as scalars; `f32` below
 * marks every float32 rounding so the tables match theirs to the last bit or two. Variants:
 * - linear:   inv / factor;
 * - dynamic:  NTK-aware base growth once the sequence is longer than max_position_embeddings:
 *             base · (factor · T / max − (factor − 1))^(dim / (dim − 2)); shorter sequences use plain RoPE;
 * - yarn:     a ramp between interpolated (inv / factor) and extrapolated (inv) frequencies over the dimensions
 *             between the beta_fast and beta_slow correction bounds; cos and sin × attention factor
 *             (0.1 · ln(factor) + 1 by default);
 * - llama3:   low frequencies (wavelength > old_context / low_freq_factor) divided by factor, high ones kept,
 *             the band between interpolated smoothly;
 * - longrope: inv / short_factor[i] up to original_max_position_embeddings, inv / long_factor[i] beyond; cos and sin
 *             × attention factor (sqrt(1 + ln(factor) / ln(original)) by default).
 */
import * as tf from "@tensorflow/tfjs";
import { fail, show } from "../errors";
import { rotaryTables } from "./components";
import type { ModelDims, RopeScaling } from "./types";

const f32 = Math.fround;
type Fields = Record<string, unknown>;

/** The scaling dict of a config: `rope_scaling`, else `rope_parameters` (for Gemma 3 in v5 layout, its full_attention entry). */
function scalingDict(hf: Fields): Fields | null {
  const scaling = hf.rope_scaling;
  if (scaling != null) {
    if (typeof scaling !== "object" || Array.isArray(scaling)) fail(`config field rope_scaling must be an object or null, got ${show(scaling)}`);
    return scaling as Fields;
  }
  const params = hf.rope_parameters as Fields | null | undefined;
  if (params == null) return null;
  if (typeof params !== "object" || Array.isArray(params)) fail(`config field rope_parameters must be an object or null, got ${show(params)}`);
  return (params.full_attention as Fields | undefined) ?? params;
}

/**
 * rope_theta inside rope_parameters (transformers 5; per layer type for Gemma 3) or at the top level. The nested
 * value wins: a v5 config has no top-level rope_theta, so one there was filled in from the class defaults.
 */
export function ropeBase(hf: Fields, fallback: number, layerType: "full_attention" | "sliding_attention" = "full_attention"): number {
  const params = hf.rope_parameters as Fields | null | undefined;
  const perType = params?.[layerType] as Fields | undefined;
  const v = (perType ? perType.rope_theta : params?.rope_theta) ?? hf.rope_theta;
  if (v === undefined || v === null) return fallback;
  if (typeof v !== "number" || !(v > 1)) fail(`config field rope_theta must be a number > 1, got ${show(v)}`);
  return v;
}

function positiveNumber(d: Fields, key: string, where: string): number {
  const v = d[key];
  if (typeof v !== "number" || !(v > 0) || !Number.isFinite(v)) fail(`${where}.${key} must be a positive number, got ${show(v)}`);
  return v;
}

function optionalNumber(d: Fields, key: string, where: string): number | undefined {
  return d[key] == null ? undefined : positiveNumber(d, key, where);
}

function factorList(d: Fields, key: string, where: string, half: number): number[] {
  const v = d[key];
  if (!Array.isArray(v) || !v.every((x) => typeof x === "number" && x > 0)) fail(`${where}.${key} must be a list of positive numbers, got ${show(v)}`);
  if (v.length !== half) fail(`${where}.${key} has ${v.length} entries; it needs rotary_dim / 2 = ${half}`);
  return v as number[];
}

/**
 * The RoPE scaling of a config, resolved to HF's values, or undefined for plain RoPE.
 * @param rotaryDim rotated features per head (HF's `dim`, after the partial rotary factor)
 */
export function ropeScalingFromConfig(hf: Fields, family: string, rotaryDim: number): RopeScaling | undefined {
  const d = scalingDict(hf);
  if (d === null) return undefined;
  const kind = String(d.rope_type ?? d.type ?? "default");
  if (kind === "default") return undefined;
  const where = `${family}: rope_scaling`;
  const maxPositions = hf.max_position_embeddings;
  if (typeof maxPositions !== "number" || !(maxPositions > 0)) fail(`${family}: rope_scaling needs max_position_embeddings, got ${show(maxPositions)}`);
  switch (kind) {
    case "linear":
      return { kind, factor: positiveNumber(d, "factor", where), attentionFactor: 1, originalMaxPositions: maxPositions, maxPositions };
    case "dynamic":
      return { kind, factor: positiveNumber(d, "factor", where), attentionFactor: 1, originalMaxPositions: maxPositions, maxPositions };
    case "llama3": {
      const low = positiveNumber(d, "low_freq_factor", where);
      const high = positiveNumber(d, "high_freq_factor", where);
      if (!(high > low)) fail(`${where}: high_freq_factor ${high} must be greater than low_freq_factor ${low}`);
      return {
        kind, factor: positiveNumber(d, "factor", where), attentionFactor: 1, maxPositions,
        originalMaxPositions: positiveNumber(d, "original_max_position_embeddings", where), lowFreqFactor: low, highFreqFactor: high,
      };
    }
    case "yarn": {
      // When the dict names the original length, HF derives the factor from the two lengths.
      const original = optionalNumber(d, "original_max_position_embeddings", where);
      const factor = original !== undefined ? maxPositions / original : positiveNumber(d, "factor", where);
      const mscale = optionalNumber(d, "mscale", where);
      const mscaleAllDim = optionalNumber(d, "mscale_all_dim", where);
      const m = (scale: number, ms = 1) => (scale <= 1 ? 1 : 0.1 * ms * Math.log(scale) + 1);
      const attentionFactor = optionalNumber(d, "attention_factor", where) ?? (mscale && mscaleAllDim ? m(factor, mscale) / m(factor, mscaleAllDim) : m(factor));
      return {
        kind, factor, attentionFactor, maxPositions, originalMaxPositions: original ?? maxPositions,
        betaFast: optionalNumber(d, "beta_fast", where) ?? 32, betaSlow: optionalNumber(d, "beta_slow", where) ?? 1,
        truncate: d.truncate !== false,
      };
    }
    case "longrope":
    case "su": {
      // Phi-3 keeps the pretrained length at the top level and HF then takes factor = max / original.
      const top = hf.original_max_position_embeddings;
      const original = typeof top === "number" ? top : maxPositions;
      const factor = typeof top === "number" ? maxPositions / top : (optionalNumber(d, "factor", where) ?? 1);
      const given = optionalNumber(d, "attention_factor", where);
      const attentionFactor = given ?? (factor <= 1 ? 1 : Math.sqrt(1 + Math.log(factor) / Math.log(original)));
      return {
        kind: "longrope", factor, attentionFactor, maxPositions, originalMaxPositions: original,
        shortFactor: factorList(d, "short_factor", where, rotaryDim / 2), longFactor: factorList(d, "long_factor", where, rotaryDim / 2),
      };
    }
    default:
      fail(`${family}: rope type ${show(kind)} is not supported (supported: default, linear, dynamic, yarn, llama3, longrope)`);
  }
}

/** Plain RoPE inverse frequencies 1 / base^(2i/dim), rounded as HF's float32 tensors are. */
function plainInvFreq(dim: number, base: number): Float32Array {
  const inv = new Float32Array(dim / 2);
  for (let i = 0; i < dim / 2; i++) inv[i] = f32(1 / f32(Math.pow(f32(base), f32((2 * i) / dim))));
  return inv;
}

/** The inverse frequencies `[dim / 2]` of a scaled RoPE for a sequence of T positions. */
export function scaledInvFreq(s: RopeScaling, dim: number, base: number, T: number): Float32Array {
  switch (s.kind) {
    case "linear":
      return plainInvFreq(dim, base).map((v) => f32(v / s.factor));
    case "dynamic": {
      // HF recomputes the frequencies once the longest position seen exceeds max_position_embeddings.
      if (T <= s.maxPositions) return plainInvFreq(dim, base);
      const grown = base * Math.pow((s.factor * T) / s.maxPositions - (s.factor - 1), dim / (dim - 2));
      return plainInvFreq(dim, grown);
    }
    case "llama3": {
      const inv = plainInvFreq(dim, base);
      const old = s.originalMaxPositions;
      const lowWavelen = old / s.lowFreqFactor!;
      const highWavelen = old / s.highFreqFactor!;
      return inv.map((v) => {
        const wavelen = f32((2 * Math.PI) / v);
        if (wavelen < highWavelen) return v;
        const divided = f32(v / s.factor);
        if (wavelen > lowWavelen) return divided;
        // Band between: (1 − smooth) · inv / factor + smooth · inv, with inv the value before division.
        const smooth = f32(f32(f32(old / wavelen) - s.lowFreqFactor!) / (s.highFreqFactor! - s.lowFreqFactor!));
        return f32(f32(f32(f32(1 - smooth) * v) / s.factor) + f32(smooth * v));
      });
    }
    case "yarn": {
      const correction = (rotations: number) => (dim * Math.log(s.originalMaxPositions / (rotations * 2 * Math.PI))) / (2 * Math.log(base));
      let low = correction(s.betaFast!);
      let high = correction(s.betaSlow!);
      if (s.truncate !== false) [low, high] = [Math.floor(low), Math.ceil(high)];
      low = Math.max(low, 0);
      high = Math.min(high, dim - 1);
      if (low === high) high += 0.001; // HF's guard against a zero-width ramp
      const out = new Float32Array(dim / 2);
      for (let i = 0; i < dim / 2; i++) {
        const pos = f32(Math.pow(f32(base), f32((2 * i) / dim)));
        const extrapolated = f32(1 / pos);
        const interpolated = f32(1 / f32(f32(s.factor) * pos));
        const ramp = Math.min(1, Math.max(0, f32(f32(i - low) / f32(high - low))));
        const keep = f32(1 - ramp); // share of the extrapolated frequency
        out[i] = f32(f32(interpolated * f32(1 - keep)) + f32(extrapolated * keep));
      }
      return out;
    }
    case "longrope": {
      const ext = T > s.originalMaxPositions ? s.longFactor! : s.shortFactor!;
      const out = new Float32Array(dim / 2);
      for (let i = 0; i < dim / 2; i++) out[i] = f32(1 / f32(f32(ext[i]) * f32(Math.pow(f32(base), f32((2 * i) / dim)))));
      return out;
    }
  }
}

/** cos/sin `[T, dim]` from inverse frequencies: angle = t · inv (float32), emb = concat(angle, angle), × scale. */
function tablesFrom(inv: Float32Array, T: number, scale: number): { cos: tf.Tensor2D; sin: tf.Tensor2D } {
  const half = inv.length;
  const dim = 2 * half;
  const cos = new Float32Array(T * dim);
  const sin = new Float32Array(T * dim);
  const s = f32(scale);
  for (let i = 0; i < half; i++) {
    for (let t = 0; t < T; t++) {
      const angle = f32(t * inv[i]);
      cos[t * dim + i] = cos[t * dim + i + half] = f32(f32(Math.cos(angle)) * s);
      sin[t * dim + i] = sin[t * dim + i + half] = f32(f32(Math.sin(angle)) * s);
    }
  }
  return { cos: tf.tensor2d(cos, [T, dim]), sin: tf.tensor2d(sin, [T, dim]) };
}

/**
 * The rotary tables `[T, rotary_dim]` layer l uses for a sequence of T positions: plain RoPE unless the config
 * scales it; layers with a sliding window use plain RoPE at `rotaryBaseLocal` when the family has local bases.
 */
export function rotaryTablesFor(c: ModelDims, l: number, T: number): { cos: tf.Tensor2D; sin: tf.Tensor2D } {
  if (c.rotaryBaseLocal !== undefined && c.windows[l] !== null) return rotaryTables(T, c.rotaryDim, c.rotaryBaseLocal);
  if (!c.ropeScaling) return rotaryTables(T, c.rotaryDim, c.rotaryBase);
  return tablesFrom(scaledInvFreq(c.ropeScaling, c.rotaryDim, c.rotaryBase, T), T, c.ropeScaling.attentionFactor);
}
