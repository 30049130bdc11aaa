/**
 * The checkpoint's safetensors headers against config.json, before any weight is read or allocated.
 *
 * The adapters read weights at the shapes the config implies, and a missing or mis-shaped weight is replaced
 * by zeros of the expected shape so that every problem can be reported at once. A config that claims a huge
 * dimension (n_positions 1.5e7 for a checkpoint of 128 positions) would therefore allocate gigabytes before
 * the mismatch is reported, or fail with a raw RangeError. The dimensions that every family stores in a
 * recognisable tensor (layer count, token embedding, learned position embedding) are checked here instead.
 */
import { fail, show } from "../errors";
import type { Checkpoint } from "../io/hf-dir";
import type { HookedAutoConfig } from "./config";
import { formatCount, modelSize } from "./size";

/** Layer-indexed names in every supported family: `h.3.`, `layers.3.`, `layer.3.`, `blocks.3.`. */
const LAYER_INDEX = /(?:^|\.)(?:h|layers|layer|blocks)\.(\d+)\./;
const TOKEN_EMBEDDING = /(?:^|\.)(?:wte|embed_tokens|embed_in)\.weight$/;
const POSITION_EMBEDDING = /(?:^|\.)(?:wpe|embed_positions)\.weight$/;

export function checkHeaderShapes(ckpt: Checkpoint, config: HookedAutoConfig, configFile: string): void {
  const c = config.dims;
  const names = [...ckpt.tensors.keys()].filter((n) => !config.adapter.ignoredWeights.some((re) => re.test(n)));
  const field = (candidates: string[], value: number) => {
    const key = candidates.find((k) => config.hf[k] === value) ?? candidates.find((k) => k in config.hf) ?? candidates[0];
    return `${key} = ${value}`;
  };
  const refuse = (what: string) => fail(`${show(configFile)} does not match its checkpoint: ${what} (refused before reading any weight)`);

  const layers = new Set<number>();
  for (const n of names) {
    const m = LAYER_INDEX.exec(n);
    if (m) layers.add(Number(m[1]));
  }
  if (layers.size) {
    const stored = Math.max(...layers) + 1;
    if (stored !== c.nLayers) refuse(`it gives ${field(["n_layer", "num_hidden_layers", "num_layers"], c.nLayers)} layers but the checkpoint holds ${stored} (layer indices 0..${stored - 1})`);
  }

  const embedding = names.find((n) => TOKEN_EMBEDDING.test(n));
  if (embedding) {
    const shape = ckpt.tensors.get(embedding)!.shape;
    if (!sameShape(shape, [c.dVocab, c.dModel])) {
      refuse(`it gives ${field(["vocab_size"], c.dVocab)} and ${field(["n_embd", "hidden_size", "d_model"], c.dModel)}, so the token embedding should be ${show([c.dVocab, c.dModel])}, but ${embedding} is ${show(shape)}`);
    }
  }

  if (c.positional === "learned") {
    const positions = names.find((n) => POSITION_EMBEDDING.test(n));
    if (positions) {
      const shape = ckpt.tensors.get(positions)!.shape;
      if (!sameShape(shape, [c.nCtx, c.dModel])) {
        refuse(`it gives ${field(["n_positions", "max_position_embeddings", "n_ctx"], c.nCtx)} (the context length), so the position embedding should be ${show([c.nCtx, c.dModel])}, but ${positions} is ${show(shape)}`);
      }
    }
  }
}

/**
 * The parameter count the config implies against the values the checkpoint stores. The estimate leaves out a
 * few optional biases and may count a few a family does not have, so only a config that claims clearly more
 * than is stored (a dimension it does not have, e.g. an intermediate_size ten times too large) is refused; the
 * weight-by-weight check after loading names the exact tensors.
 */
export function checkParameterCount(ckpt: Checkpoint, config: HookedAutoConfig, configFile: string): void {
  const stored = [...ckpt.tensors]
    .filter(([n]) => !config.adapter.ignoredWeights.some((re) => re.test(n)))
    .reduce((sum, [, t]) => sum + t.shape.reduce((a, b) => a * b, 1), 0);
  const claimed = modelSize(config.dims).params;
  if (claimed > 1.05 * stored + 100_000) {
    fail(`${show(configFile)} does not match its checkpoint: it describes ${formatCount(claimed)} parameters but the checkpoint stores ${formatCount(stored)} values (refused before reading any weight; compare the config's sizes with the tensors in the safetensors header)`);
  }
}

function sameShape(a: number[], b: number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}
