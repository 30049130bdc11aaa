/**
 * A Hugging Face model folder: `config.json`, `model.safetensors` or a sharded
 * `model.safetensors.index.json` (+ the shards it names), and optionally `tokenizer.json`.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { fail, show } from "../errors";
import { type LoadedTensor, readSafetensors } from "./safetensors";

export function readConfigJson(dir: string): Record<string, unknown> {
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) fail(`model folder ${show(dir)} does not exist`);
  const file = path.join(dir, "config.json");
  if (!fs.existsSync(file)) fail(`${show(dir)} is not a Hugging Face model folder: it has no config.json (found: ${listing(dir)})`);
  try {
    return JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (e) {
    fail(`cannot parse ${show(file)}: ${(e as Error).message}`);
  }
}

/** Every tensor of the checkpoint in `dir`, by stored name. */
export function readCheckpoint(dir: string): Map<string, LoadedTensor> {
  const single = path.join(dir, "model.safetensors");
  const index = path.join(dir, "model.safetensors.index.json");
  if (fs.existsSync(single)) return readSafetensors(single).tensors;
  if (fs.existsSync(index)) return readSharded(dir, index);
  fail(`no weights in ${show(dir)}: expected model.safetensors or model.safetensors.index.json (found: ${listing(dir)}; PyTorch .bin checkpoints are not supported)`);
}

function readSharded(dir: string, indexFile: string): Map<string, LoadedTensor> {
  let weightMap: Record<string, string>;
  try {
    weightMap = JSON.parse(fs.readFileSync(indexFile, "utf8")).weight_map;
  } catch (e) {
    fail(`cannot parse ${show(indexFile)}: ${(e as Error).message}`);
  }
  if (!weightMap || typeof weightMap !== "object") fail(`${show(indexFile)} has no weight_map object`);
  const out = new Map<string, LoadedTensor>();
  for (const shard of new Set(Object.values(weightMap))) {
    const file = path.join(dir, shard);
    if (!fs.existsSync(file)) fail(`shard ${show(shard)} named in ${show(indexFile)} is missing`);
    for (const [name, t] of readSafetensors(file).tensors) out.set(name, t);
  }
  const absent = Object.keys(weightMap).filter((n) => !out.has(n));
  if (absent.length) fail(`${show(indexFile)} lists tensors not found in their shards: ${absent.join(", ")}`);
  return out;
}

function listing(dir: string): string {
  const names = fs.readdirSync(dir);
  return names.length ? names.slice(0, 12).join(", ") : "nothing";
}
