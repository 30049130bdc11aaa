/**
 * The onnxruntime engine: what it can run (an explicit allow-list of ModelDims fields and values, so a flag it
 * does not know yet sends that model to the TF.js engine with the flag named) and its runner.
 */
import { hookPointsFor } from "../../model/hooks";
import type { ModelDims, ModelParams } from "../../model/types";
import type { Engine } from "../types";
import { OrtRunner } from "./runner";

type Check = (v: unknown, c: Readonly<ModelDims>) => boolean;
const isInt = (v: unknown) => Number.isInteger(v) && (v as number) > 0;
const isNum = (v: unknown) => typeof v === "number" && Number.isFinite(v);
const oneOf = (...xs: unknown[]): Check => (v) => xs.includes(v);

/**
 * Every ModelDims field the emitter reads or may ignore, with the values it emits correctly. Typed by string,
 * not by ModelDims' keys, on purpose: a field added to ModelDims later is unknown here and falls back at run time.
 */
const KNOWN: Record<string, Check> = {
  family: () => true, // the emitter reads flags, never the family name
  nLayers: isInt,
  nHeads: isInt,
  nKvHeads: (v, c) => isInt(v) && c.nHeads % (v as number) === 0,
  dModel: isInt,
  dHead: isInt,
  dMlp: isInt,
  dVocab: isInt,
  nCtx: isInt,
  normKind: oneOf("layernorm", "rmsnorm"),
  normEps: isNum,
  normWeightOffset: isNum,
  positional: oneOf("learned", "rotary"),
  rotaryDim: (v, c) => c.positional !== "rotary" || (isInt(v) && (v as number) % 2 === 0 && (v as number) <= c.dHead),
  rotaryBase: isNum,
  parallelResidual: oneOf(true, false),
  gatedMlp: oneOf(true, false),
  act: oneOf("gelu_new", "gelu", "gelu_pytorch_tanh", "relu", "silu"),
  attnScale: isNum,
  windows: (v) => Array.isArray(v) && v.every((w) => w === null || isInt(w)),
  embedScale: isNum,
  tiedEmbeddings: oneOf(true, false),
  bosTokenId: () => true,
  eosTokenId: () => true,
  initStd: () => true,
  qkNorm: oneOf(undefined, true, false),
  // rotary tables come from rope.ts per layer and T (scaled frequencies, local base), fed as graph inputs
  ropeScaling: () => true,
  rotaryBaseLocal: () => true,
  normPlacement: oneOf(undefined, "pre", "sandwich", "post"),
  qkRmsNorm: oneOf(undefined, "head", "projection"),
  clipQkv: (v) => v === undefined || isNum(v),
  attnSoftcap: (v) => v === undefined || isNum(v),
  finalSoftcap: (v) => v === undefined || isNum(v),
};

/** Parameter entries the emitter reads, per part of a layer. */
const KNOWN_PARAMS: Record<string, string[]> = {
  ln1: ["w", "b"],
  ln2: ["w", "b"],
  ln1Post: ["w", "b"],
  ln2Post: ["w", "b"],
  attn: ["wQ", "wK", "wV", "wO", "bQ", "bK", "bV", "bO", "qNorm", "kNorm"],
  mlp: ["wIn", "wGate", "wOut", "bIn", "bGate", "bOut"],
};
const KNOWN_TOP = ["wE", "wPos", "layers", "lnFinal", "wU", "bU"];

/** The hook points the emitter names (block points without their `blocks.{l}.` prefix). */
const KNOWN_POINTS = new Set(["hook_embed", "hook_pos_embed", "ln_final.hook_normalized"]);
const KNOWN_BLOCK_POINTS = new Set([
  "hook_resid_pre", "ln1.hook_normalized", "attn.hook_q", "attn.hook_k", "attn.hook_v", "attn.q_norm.hook_normalized",
  "attn.k_norm.hook_normalized", "attn.hook_rot_q", "attn.hook_rot_k", "attn.hook_attn_scores", "attn.hook_pattern",
  "attn.hook_z", "ln1_post.hook_normalized", "hook_attn_out", "hook_resid_mid", "ln2.hook_normalized", "mlp.hook_pre",
  "mlp.hook_pre_linear", "mlp.hook_post", "ln2_post.hook_normalized", "hook_mlp_out", "hook_resid_post",
]);

/** Why the emitter cannot run these dims (a field it does not know, or a value it does not emit), or null. */
export function ortUnsupported(c: Readonly<ModelDims>, params?: ModelParams): string | null {
  for (const [key, value] of Object.entries(c)) {
    const check = KNOWN[key as keyof ModelDims];
    // An unknown field is fine only when it states that its feature is absent.
    if (!check) {
      if (value === undefined || value === null || value === false) continue;
      return `the onnxruntime engine does not emit ${key} = ${JSON.stringify(value)} yet`;
    }
    if (!check(value, c)) return `the onnxruntime engine does not emit ${key} = ${JSON.stringify(value)}`;
  }
  for (const { name } of hookPointsFor(c as ModelDims)) {
    const local = name.replace(/^blocks\.\d+\./, "");
    if (!(local === name ? KNOWN_POINTS : KNOWN_BLOCK_POINTS).has(local)) return `the onnxruntime engine does not emit the hook point ${name} yet`;
  }
  if (!params) return null;
  for (const k of Object.keys(params)) if (!KNOWN_TOP.includes(k) && (params as unknown as Record<string, unknown>)[k] !== undefined) return `the onnxruntime engine does not read the weight ${k} yet`;
  for (const layer of params.layers) {
    for (const [part, entries] of Object.entries(layer)) {
      const known = KNOWN_PARAMS[part];
      if (!known) return `the onnxruntime engine does not read the layer weights ${part} yet`;
      for (const k of Object.keys(entries as object)) if (!known.includes(k) && (entries as Record<string, unknown>)[k] !== undefined) return `the onnxruntime engine does not read the weight ${part}.${k} yet`;
    }
  }
  return null;
}

export const ortEngine: Engine = {
  name: "ort",
  unsupported: ortUnsupported,
  runner: (model) => new OrtRunner(model),
};
