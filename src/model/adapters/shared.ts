/**
 * Helpers shared by the adapters added for issue 8 (gpt-neo, gpt-neox, gemma, phi3, qwen2, mistral, stable-lm):
 * reading config fields whose spelling or meaning drifted across transformers versions, and the weight layouts
 * several families share (Llama-style `q/k/v/o_proj` attention, `gate/up/down_proj` MLP).
 */
import * as tf from "@tensorflow/tfjs";
import { fail, show } from "../../errors";
import type { Activation, AttnParams, LayerParams, MlpParams, ModelDims, NormParams } from "../types";
import type { WeightReader } from "../weights";
import { type HfConfig, firstOf } from "./adapter";

/** Hugging Face `ACT2FN` names we implement, mapped to our activations. */
const ACTIVATIONS: Record<string, Activation> = {
  gelu_new: "gelu_new", gelu: "gelu", gelu_pytorch_tanh: "gelu_pytorch_tanh", relu: "relu", silu: "silu", swish: "silu",
};

/** The activation named by `hf[key]`, or a clear error naming the family and the supported names. */
export function activation(hf: HfConfig, key: string, family: string): Activation {
  const name = hf[key];
  return ACTIVATIONS[String(name)] ?? fail(`${family}: ${key} ${show(name)} is not supported (expected one of ${Object.keys(ACTIVATIONS).join(", ")})`);
}

/** `transformers_version` of a saved config.json as [major, minor], or null when absent (a user-made config). */
export function savedWithVersion(hf: HfConfig): [number, number] | null {
  const m = typeof hf.transformers_version === "string" ? /^(\d+)\.(\d+)/.exec(hf.transformers_version) : null;
  return m ? [Number(m[1]), Number(m[2])] : null;
}

/**
 * True when the config was saved by a transformers older than major.minor. Used only where the eager forward
 * pass changed between versions for the same config (documented at each use); without a version we follow the
 * newer behaviour.
 */
export function savedBefore(hf: HfConfig, major: number, minor: number): boolean {
  const v = savedWithVersion(hf);
  return v !== null && (v[0] < major || (v[0] === major && v[1] < minor));
}

/**
 * The fraction of each head's features that is rotated: `partial_rotary_factor` (StableLM, Phi-3, transformers 5
 * `rope_parameters`) or GPT-NeoX's older `rotary_pct`, else the family default.
 */
export function partialRotaryFactor(hf: HfConfig, fallback: number): number {
  const params = (hf.rope_parameters ?? null) as Record<string, unknown> | null;
  const v = firstOf(hf, ["partial_rotary_factor", "rotary_pct"]) ?? params?.partial_rotary_factor;
  if (v === undefined) return fallback;
  if (typeof v !== "number" || !(v > 0 && v <= 1)) fail(`config field partial_rotary_factor/rotary_pct must be a number in (0, 1], got ${show(v)}`);
  return v;
}

/** Rotated features per head: `int(head_dim * factor)` exactly as Hugging Face computes it; must be even (rotate-half). */
export function rotaryDims(dHead: number, factor: number, family: string): number {
  const r = Math.floor(dHead * factor);
  if (r <= 0 || r % 2 !== 0) fail(`${family}: head_dim ${dHead} × partial rotary factor ${factor} gives ${r} rotary dims; it must be a positive even number`);
  return r;
}

/** A positive integer window, or null for `null`/absent. */
export function windowSize(hf: HfConfig, key: string): number | null {
  const w = hf[key];
  if (w === null || w === undefined) return null;
  if (typeof w !== "number" || !Number.isInteger(w) || w <= 0) fail(`config field ${key} must be a positive integer or null, got ${show(w)}`);
  return w;
}

export function norm1d(r: WeightReader, name: string, d: number, withBias: boolean): NormParams {
  return { w: r.tensor1d(name + ".weight", d), b: withBias ? r.tensor1d(name + ".bias", d) : undefined };
}

/** Optional bias of an `nn.Linear`: read when the config says the layer has one. */
function bias(r: WeightReader, name: string, n: number, present: boolean): tf.Tensor1D | undefined {
  return present ? r.tensor1d(name + ".bias", n) : undefined;
}

/** Llama-style attention: separate `q_proj`, `k_proj`, `v_proj`, `o_proj` `nn.Linear`s (stored `[out, in]`). */
export function separateQkv(r: WeightReader, c: ModelDims, p: string, bias_: { qkv: boolean; o: boolean }): AttnParams {
  const d = c.dModel;
  const qDim = c.nHeads * c.dHead;
  const kvDim = c.nKvHeads * c.dHead;
  return {
    wQ: r.linear(p + "q_proj.weight", qDim, d), bQ: bias(r, p + "q_proj", qDim, bias_.qkv),
    wK: r.linear(p + "k_proj.weight", kvDim, d), bK: bias(r, p + "k_proj", kvDim, bias_.qkv),
    wV: r.linear(p + "v_proj.weight", kvDim, d), bV: bias(r, p + "v_proj", kvDim, bias_.qkv),
    wO: r.linear(p + "o_proj.weight", d, qDim), bO: bias(r, p + "o_proj", d, bias_.o),
  };
}

/** SwiGLU-style MLP `down(act(gate(x)) * up(x))` from `gate_proj`, `up_proj`, `down_proj` without biases. */
export function gatedMlp(r: WeightReader, c: ModelDims, p: string): MlpParams {
  return {
    wGate: r.linear(p + "gate_proj.weight", c.dMlp, c.dModel),
    wIn: r.linear(p + "up_proj.weight", c.dMlp, c.dModel),
    wOut: r.linear(p + "down_proj.weight", c.dModel, c.dMlp),
  };
}

/** The decoder layers of the Llama-like families (`layers.{l}.input_layernorm` … `mlp.down_proj`), RMSNorm. */
export function llamaLayers(r: WeightReader, c: ModelDims, attnBias: { qkv: boolean; o: boolean }): LayerParams[] {
  return Array.from({ length: c.nLayers }, (_, l) => {
    const p = `layers.${l}.`;
    return {
      ln1: norm1d(r, p + "input_layernorm", c.dModel, false),
      ln2: norm1d(r, p + "post_attention_layernorm", c.dModel, false),
      attn: separateQkv(r, c, p + "self_attn.", attnBias),
      mlp: gatedMlp(r, c, p + "mlp."),
    };
  });
}

/**
 * The unembedding `[d_model, vocab]`: `lm_head.weight` (`[vocab, d_model]`) when stored, else (tied weights are not
 * saved by `save_pretrained`) the transposed token embedding.
 */
export function unembed(r: WeightReader, c: ModelDims, headName: string, wE: tf.Tensor2D): tf.Tensor2D {
  if (r.has(headName) || !c.tiedEmbeddings) return r.linear(headName, c.dVocab, c.dModel);
  return tf.transpose(wE) as tf.Tensor2D;
}

/** Row-major `[rows, cols]` → transposed `[cols, rows]` data, for hand-split fused `nn.Linear` weights. */
export function transposeData(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) out[j * rows + i] = data[i * cols + j];
  return out;
}

/** Rows [from, to) of a row-major `[rows, cols]` matrix (an `nn.Linear` slice of output features), as `[in, out]`. */
export function linearRows(data: Float32Array, cols: number, from: number, to: number): tf.Tensor2D {
  return tf.tensor2d(transposeData(data.subarray(from * cols, to * cols), to - from, cols), [cols, to - from]);
}

/** Elements of `rows` (a list of output-feature indices) gathered from an `nn.Linear` weight, as `[in, out]`. */
export function linearPick(data: Float32Array, cols: number, rows: number[]): tf.Tensor2D {
  const out = new Float32Array(rows.length * cols);
  rows.forEach((row, j) => {
    for (let i = 0; i < cols; i++) out[i * rows.length + j] = data[row * cols + i];
  });
  return tf.tensor2d(out, [cols, rows.length]);
}
