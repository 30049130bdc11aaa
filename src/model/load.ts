/**
 * Loading a model: the embedded model shipped with the package, a local Hugging Face folder, or a Hub id.
 *
 * Order matters for what a failure costs. Everything that can be checked without allocating a tensor is
 * checked first: config.json, the tokenizer, the safetensors headers (regular files, offsets, dtypes) and the
 * header shapes against the config. Only then are weights read, one tensor at a time; a failure after that
 * point frees every tensor already made.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { initBackend } from "../backend";
import { ArrakisError, fail, show } from "../errors";
import { type Checkpoint, checkFloatWeights, CONFIG_FILE, openCheckpoint, readConfigJson } from "../io/hf-dir";
import { checkRegularFile } from "../io/safetensors";
import { TextTokenizer } from "../io/tokenizer";
import { HookedAutoConfig } from "./config";
import type { ModelOptions } from "./options";
import { checkHeaderShapes, checkParameterCount } from "./load-checks";
import { disposeParams, tidyParams } from "./params";
import { checkModelFits } from "./size";
import { onCpuBackend, weightsOutsideWasm } from "../engine/placement";
import type { ModelParams } from "./types";
import { WeightReader } from "./weights";

export type PretrainedOptions = Omit<ModelOptions, "seed"> & Record<string, unknown>;

/** What a model is built from; `params` belong to the caller (dispose them if the model is not built). */
export interface Pretrained {
  config: HookedAutoConfig;
  params: ModelParams;
  tokenizer: TextTokenizer | null;
  /** The folder the weights came from. */
  dir: string;
  /** The weights live in TF.js's cpu storage (too big for the wasm heap, run by onnxruntime). */
  weightsInJsMemory: boolean;
  /**
   * How the model names its origin: "the embedded induction-2l model", or the folder or Hub id as the caller
   * gave it. Never the absolute folder of the installed package, which would end up in shared notebooks.
   */
  source: string;
}

/**
 * Reads a checkpoint folder (config.json + safetensors [+ tokenizer.json]) or a Hub id; with no argument, the
 * small model shipped with the package.
 */
export async function loadPretrained(dirOrId: string | undefined, options: PretrainedOptions = {}): Promise<Pretrained> {
  await initBackend();
  const dir = dirOrId === undefined ? embeddedModelDir() : await resolveModelDir(dirOrId, options);
  const config = readConfig(dir);
  const tokenizer = options.tokenizer ?? readTokenizer(dir);
  const ckpt = openCheckpoint(dir);
  try {
    checkFloatWeights(ckpt, config.adapter.ignoredWeights);
    checkHeaderShapes(ckpt, config, path.join(dir, CONFIG_FILE));
    checkParameterCount(ckpt, config, path.join(dir, CONFIG_FILE));
    // Big (or too big for the wasm heap) and run by onnxruntime: the weights go to JS memory (checked against the
    // machine's), fed to onnxruntime in place (see src/engine/placement.ts).
    const outside = weightsOutsideWasm(config.dims, options.engine);
    const where = `the checkpoint in ${show(dir)}`;
    const params = outside ? onCpuBackend(() => (checkModelFits(config.dims, where), readWeights(ckpt, config))) : (checkModelFits(config.dims, where), readWeights(ckpt, config));
    warnNonFinite(ckpt, dir);
    return { config, params, tokenizer, dir, source: describeSource(dirOrId, dir), weightsInJsMemory: outside };
  } finally {
    ckpt.close();
  }
}

/** The weights as the model's parameter tree; on any failure every tensor made so far is freed. */
function readWeights(ckpt: Checkpoint, config: HookedAutoConfig): ModelParams {
  const reader = new WeightReader(ckpt.tensors, config.adapter.weightPrefixes, config.adapter.ignoredWeights);
  // A throw inside the tidy (an unreadable tensor) frees what the tidy made.
  const params = tidyParams(() => config.adapter.loadWeights(reader, config.dims));
  try {
    reader.finish(config.name);
  } catch (e) {
    disposeParams(params);
    throw e;
  }
  return params;
}

/** config.json as a HookedAutoConfig; its errors name the file. */
function readConfig(dir: string): HookedAutoConfig {
  const hf = readConfigJson(dir);
  try {
    return new HookedAutoConfig({ ...hf, name: hf.model_type }, { strict: false });
  } catch (e) {
    if (e instanceof ArrakisError) throw new ArrakisError(`${show(path.join(dir, CONFIG_FILE))}: ${e.message}`);
    throw e;
  }
}

/** tokenizer.json (with tokenizer_config.json) when present; a FIFO or folder of that name is refused, not read. */
function readTokenizer(dir: string): TextTokenizer | null {
  for (const name of ["tokenizer.json", "tokenizer_config.json"]) {
    const file = path.join(dir, name);
    if (fs.existsSync(file)) checkRegularFile(file, name);
  }
  return TextTokenizer.fromDir(dir);
}

/**
 * NaN or infinite weights are loaded (with a warning), not refused: a checkpoint with a few bad rows (e.g. an
 * unused padded vocabulary row) is still worth inspecting, and refusing would make it impossible to study
 * what went wrong. The warning names the tensors, since every forward pass through them will give NaN.
 */
function warnNonFinite(ckpt: Checkpoint, dir: string): void {
  if (!ckpt.nonFinite.length) return;
  const list = ckpt.nonFinite.slice(0, 8).map((t) => `${t.name} (${[t.nan && `${t.nan} NaN`, t.inf && `${t.inf} ±Inf`].filter(Boolean).join(", ")})`);
  console.warn(`arrakis-ts: warning: ${ckpt.nonFinite.length} weight tensor${ckpt.nonFinite.length > 1 ? "s" : ""} of ${show(dir)} ${ckpt.nonFinite.length > 1 ? "hold" : "holds"} non-finite values: ${list.join(", ")}${ckpt.nonFinite.length > 8 ? ", …" : ""}; outputs that depend on them will be NaN`);
}

/** The package root (the folder with package.json), from src/ or dist/src/. */
export function packageRoot(): string {
  let dir = __dirname;
  while (!fs.existsSync(path.join(dir, "package.json"))) {
    const up = path.dirname(dir);
    if (up === dir) fail(`cannot find the arrakis-ts package root above ${__dirname}`);
    dir = up;
  }
  return dir;
}

/** The small model trained for and shipped with the package (see its model card). */
export function embeddedModelDir(): string {
  const dir = path.join(packageRoot(), "src", "assets", "induction-2l");
  if (!fs.existsSync(path.join(dir, CONFIG_FILE))) fail(`the embedded model is missing from ${show(dir)} (reinstall the package)`);
  return dir;
}

/** See `Pretrained.source`. */
function describeSource(dirOrId: string | undefined, dir: string): string {
  const embedded = path.join(packageRoot(), "src", "assets", "induction-2l");
  if (dirOrId === undefined || path.resolve(dir) === embedded) return `the embedded ${path.basename(embedded)} model`;
  return dirOrId;
}

/** A local folder as is; anything else is treated as a Hugging Face Hub id. */
async function resolveModelDir(dirOrId: string, options: Record<string, unknown>): Promise<string> {
  if (typeof dirOrId !== "string" || !dirOrId) fail(`fromPretrained expects a folder or a Hub id, got ${show(dirOrId)}`);
  if (fs.existsSync(dirOrId)) return dirOrId;
  if (dirOrId.startsWith(".") || dirOrId.startsWith("/") || dirOrId.includes("\\")) fail(`model folder ${show(dirOrId)} does not exist`);
  // The Hub client is loaded lazily: local folders never touch it (or the network).
  const hub = require("../io/hub") as { resolvePretrained(id: string, opts?: Record<string, unknown>): Promise<string> };
  return hub.resolvePretrained(dirOrId, options);
}
