/**
 * A Hugging Face model folder: `config.json`, `model.safetensors` or a sharded
 * `model.safetensors.index.json` (+ the shards it names), and optionally `tokenizer.json`.
 *
 * The checkpoint is opened lazily: headers are parsed (and checked) first, and a tensor's bytes are read only
 * when the loader asks for it, so a config that does not match the checkpoint is refused before any weight is
 * read, and the loader never holds the whole checkpoint in JavaScript memory beside the model's tensors.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { fail, show } from "../errors";
import { isPlainRelativeName } from "./relative-name";
import { checkRegularFile, type LoadedTensor, type SafetensorsDtype, type SafetensorsEntry, SafetensorsFile } from "./safetensors";

export const CONFIG_FILE = "config.json";
export const SINGLE_WEIGHTS = "model.safetensors";
export const WEIGHTS_INDEX = "model.safetensors.index.json";

/** config.json as an object with a `model_type` (the one field every transformers config carries). */
export function readConfigJson(dir: string): Record<string, unknown> & { model_type: string } {
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) fail(`model folder ${show(dir)} does not exist`);
  const file = path.join(dir, CONFIG_FILE);
  if (!fs.existsSync(file)) fail(`${show(dir)} is not a Hugging Face model folder: it has no ${CONFIG_FILE} (found: ${listing(dir)})`);
  checkRegularFile(file, CONFIG_FILE);
  let json: unknown;
  try {
    json = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (e) {
    fail(`cannot parse ${show(file)}: ${(e as Error).message}`);
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    fail(`${show(file)} must hold a JSON object of config fields (with "model_type"), got ${show(json)}`);
  }
  const modelType = (json as Record<string, unknown>).model_type;
  if (typeof modelType !== "string" || !modelType) {
    fail(`${show(file)} has no "model_type" field (got ${show(modelType)}); every transformers config.json names its architecture there, e.g. "gpt2" or "llama"`);
  }
  return json as Record<string, unknown> & { model_type: string };
}

/** A stored tensor: its header entry, and its data read from disk when asked for. */
export interface StoredTensor extends LoadedTensor {
  /** The file it lives in. */
  file: string;
}

/** The tensors of a checkpoint folder by stored name, read on demand; `close()` releases the files. */
export interface Checkpoint {
  tensors: Map<string, StoredTensor>;
  /** Every file of the checkpoint (one, or the shards). */
  files: string[];
  /** Tensors whose data held NaN or ±Infinity when read, with counts. */
  nonFinite: { name: string; nan: number; inf: number }[];
  close(): void;
}

const FLOAT_DTYPES: ReadonlySet<SafetensorsDtype> = new Set(["F64", "F32", "F16", "BF16"]);

/** Opens `model.safetensors` (or the shards of its index); only headers are read here. */
export function openCheckpoint(dir: string): Checkpoint {
  const single = path.join(dir, SINGLE_WEIGHTS);
  const index = path.join(dir, WEIGHTS_INDEX);
  if (fs.existsSync(single)) return openFiles([single], null);
  if (fs.existsSync(index)) return openSharded(dir, index);
  fail(`no weights in ${show(dir)}: expected ${SINGLE_WEIGHTS} or ${WEIGHTS_INDEX} (found: ${listing(dir)}; PyTorch .bin checkpoints are not supported)`);
}

/**
 * Refuses integer (and boolean) tensors among the weights the model will use: a float weight stored as I32
 * would be converted value by value and give a model of garbage without an error. `ignored` are buffers
 * (attention masks) that the loader skips and that may be integer or boolean.
 */
export function checkFloatWeights(ckpt: Checkpoint, ignored: RegExp[]): void {
  const bad = [...ckpt.tensors].filter(([name, t]) => !FLOAT_DTYPES.has(t.dtype) && !ignored.some((re) => re.test(name)));
  if (bad.length) {
    const list = bad.slice(0, 6).map(([name, t]) => `${name} (${t.dtype})`).join(", ");
    fail(`${show(bad[0][1].file)}: weights must be floating point (F32, F16, BF16 or F64), but ${bad.length} tensor${bad.length > 1 ? "s are" : " is"} stored as integers: ${list}${bad.length > 6 ? ", …" : ""}`);
  }
}

function openSharded(dir: string, indexFile: string): Checkpoint {
  checkRegularFile(indexFile, WEIGHTS_INDEX);
  let weightMap: unknown;
  try {
    weightMap = JSON.parse(fs.readFileSync(indexFile, "utf8"))?.weight_map;
  } catch (e) {
    fail(`cannot parse ${show(indexFile)}: ${(e as Error).message}`);
  }
  if (!weightMap || typeof weightMap !== "object" || Array.isArray(weightMap)) fail(`${show(indexFile)} has no "weight_map" object mapping tensor names to shard files`);
  const map = weightMap as Record<string, unknown>;
  const shards = [...new Set(Object.values(map))].map((shard) => shardPath(dir, shard, indexFile));
  if (!shards.length) fail(`${show(indexFile)} names no shard files`);
  for (const file of shards) if (!fs.existsSync(file)) fail(`shard ${show(path.relative(dir, file))} named in ${show(indexFile)} is missing`);
  const ckpt = openFiles(shards, indexFile);
  const absent = Object.keys(map).filter((n) => !ckpt.tensors.has(n));
  if (absent.length) {
    ckpt.close();
    fail(`${show(indexFile)} lists tensors not found in their shards: ${absent.join(", ")}`);
  }
  return ckpt;
}

/**
 * A shard's path inside the model folder. Shard names come from a file that may have been downloaded or
 * written by someone else: a name like "../x.safetensors" or "/etc/x" would read outside the folder.
 */
function shardPath(dir: string, shard: unknown, indexFile: string): string {
  if (!isPlainRelativeName(shard) || path.isAbsolute(shard)) fail(`shard file ${show(shard)} in ${show(indexFile)} is not a plain name inside the model folder (expected e.g. "model-00001-of-00002.safetensors"; "..", absolute paths and "\\" are refused)`);
  return path.join(dir, ...shard.split("/"));
}

function openFiles(files: string[], indexFile: string | null): Checkpoint {
  const opened: SafetensorsFile[] = [];
  const tensors = new Map<string, StoredTensor>();
  const nonFinite: Checkpoint["nonFinite"] = [];
  const last: LastRead = { tensor: null, data: null };
  const close = () => {
    for (const f of opened.splice(0)) f.close();
    last.tensor = last.data = null;
  };
  try {
    for (const file of files) {
      const st = SafetensorsFile.open(file);
      opened.push(st);
      for (const [name, entry] of st.header.entries) {
        const earlier = tensors.get(name);
        if (earlier) fail(`tensor ${show(name)} is stored twice: in ${show(earlier.file)} and ${show(file)}${indexFile ? ` (index ${show(indexFile)})` : ""}`);
        tensors.set(name, lazyTensor(st, name, entry, nonFinite, last));
      }
    }
  } catch (e) {
    close();
    throw e;
  }
  return { tensors, files, nonFinite, close };
}

/** The one most recently read tensor, so that reading `data` twice in a row does not read the file twice. */
interface LastRead {
  tensor: StoredTensor | null;
  data: Float32Array | Int32Array | null;
}

/**
 * A tensor whose data is read from disk when `data` is used (and scanned for NaN/Inf the first time); only
 * the last tensor read is kept, so the checkpoint is never held in memory beside the model's tensors.
 */
function lazyTensor(st: SafetensorsFile, name: string, entry: SafetensorsEntry, nonFinite: Checkpoint["nonFinite"], last: LastRead): StoredTensor {
  let scanned = false;
  const tensor: StoredTensor = {
    dtype: entry.dtype,
    shape: entry.shape,
    file: st.path,
    get data() {
      if (last.tensor === tensor && last.data) return last.data;
      const data = st.read(name).data;
      last.tensor = tensor;
      last.data = data;
      if (!scanned && data instanceof Float32Array) {
        scanned = true;
        const counts = countNonFinite(data);
        if (counts.nan || counts.inf) nonFinite.push({ name, ...counts });
      }
      return data;
    },
  };
  return tensor;
}

function countNonFinite(data: Float32Array): { nan: number; inf: number } {
  let nan = 0;
  let inf = 0;
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (v - v !== 0) {
      if (v !== v) nan++;
      else inf++;
    }
  }
  return { nan, inf };
}

function listing(dir: string): string {
  const names = fs.readdirSync(dir);
  return names.length ? names.slice(0, 12).join(", ") : "nothing";
}
