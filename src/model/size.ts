/**
 * How big a model is before anything is allocated: parameter count and float32 bytes from `ModelDims`, and the
 * refusal of a model that cannot fit in the active engine's memory (the wasm heap stops at 4 GiB; other backends
 * are bounded by the machine). Without this check a default config (HF's LlamaConfig is Llama-2-7B: 6.7 B
 * parameters, 27 GB in float32) would start filling memory and hang with no output.
 */
import * as os from "node:os";
import * as tf from "@tensorflow/tfjs";
import { fail } from "../errors";
import type { ModelDims } from "./types";

export interface ModelSize {
  /** Parameters (weights, biases, norm weights; a tied unembedding counted once). */
  params: number;
  /** Bytes of those parameters in float32, the dtype the engines compute in. */
  bytes: number;
}

/** The wasm backend's heap cannot grow past 4 GiB (32-bit addressing). */
const WASM_HEAP = 4 * 1024 ** 3;

/**
 * Parameter count of a model with these dims. Biases are counted where the family stores them on its
 * projections (the LayerNorm families, as random init makes them); a family's optional extra biases
 * (Qwen2's q/k/v, Llama's attention_bias) are a few thousand parameters and are not.
 */
export function modelSize(c: ModelDims): ModelSize {
  const q = c.nHeads * c.dHead;
  const kv = c.nKvHeads * c.dHead;
  const biases = c.normKind === "layernorm";
  const normSize = biases ? 2 * c.dModel : c.dModel;
  const attn = c.dModel * q + 2 * c.dModel * kv + q * c.dModel + (biases ? q + 2 * kv + c.dModel : 0);
  const qkNorms = c.qkNorm || c.qkRmsNorm === "projection" ? q + kv : c.qkRmsNorm === "head" ? 2 * c.dHead : 0;
  const mlp = (c.gatedMlp ? 3 : 2) * c.dModel * c.dMlp + (biases && !c.gatedMlp ? c.dMlp + c.dModel : 0);
  const norms = (c.normPlacement === "sandwich" ? 4 : 2) * normSize;
  const layer = attn + qkNorms + mlp + norms;
  const embed = c.dVocab * c.dModel + (c.positional === "learned" ? c.nCtx * c.dModel : 0);
  const unembed = c.tiedEmbeddings ? 0 : c.dVocab * c.dModel;
  const params = embed + c.nLayers * layer + normSize + unembed;
  return { params, bytes: 4 * params };
}

/** The memory a model may take: the wasm heap on the wasm backend, else the machine's memory. */
export function memoryLimit(): { bytes: number; what: string } {
  if (tf.getBackend() === "wasm") return { bytes: WASM_HEAP, what: "the 4 GiB heap of the wasm backend" };
  return { bytes: os.totalmem(), what: `this machine's memory (${tf.getBackend() ?? "no"} backend)` };
}

/** 6738415616 → "6.74 B", 124439808 → "124 M". */
export function formatCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(n >= 1e8 ? 0 : 1)} M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} k`;
  return String(n);
}

/** 26953662464 → "25.1 GiB". */
export function formatBytes(b: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (b >= 1024 && i < units.length - 1) {
    b /= 1024;
    i++;
  }
  return `${b.toFixed(i ? 1 : 0)} ${units[i]}`;
}

/**
 * Throws an ArrakisError when the parameters alone exceed the memory limit (activations come on top), naming the
 * count, the bytes, the limit and how to get a model that fits. `where` says what was being built, e.g.
 * `random init of llama` or `the checkpoint in /models/x`.
 */
export function checkModelFits(c: ModelDims, where: string, limit = memoryLimit()): ModelSize {
  const size = modelSize(c);
  if (size.bytes > limit.bytes) {
    fail(
      `${where}: ${formatCount(size.params)} parameters need ${formatBytes(size.bytes)} in float32, more than ${limit.what} ` +
        `(${formatBytes(limit.bytes)}). For a small model set the sizes yourself (hidden_size, num_hidden_layers, ` +
        `num_attention_heads, intermediate_size, vocab_size) or start from HookedAutoConfig.small("${c.family}"), ` +
        `e.g. new HookedAutoModel(HookedAutoConfig.small("${c.family}")).`,
    );
  }
  return size;
}
