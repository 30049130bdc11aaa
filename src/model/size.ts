/**
 * How big a model is before anything is allocated: parameter count and float32 bytes from `ModelDims`, and the
 * refusal of a model that cannot fit in the active engine's memory (on wasm the 4 GiB heap, where every matMul
 * weight also keeps a packed copy; other backends are bounded by the machine). Without this check a default
 * config (HF's LlamaConfig is Llama-2-7B: 6.7 B parameters, 27 GB in float32) would start filling memory and hang
 * with no output.
 */
import * as os from "node:os";
import * as tf from "@tensorflow/tfjs";
import { wasmSafeHeapBytes } from "../backend";
import { fail } from "../errors";
import type { ModelDims } from "./types";
import { wantedEngine } from "../engine/choice";

export interface ModelSize {
  /** Parameters (weights, biases, norm weights; a tied unembedding counted once), as Hugging Face counts them. */
  params: number;
  /** Bytes of those parameters in float32, the dtype the engines compute in. */
  bytes: number;
  /**
   * Bytes the engine holds for the weights: `bytes`, plus the unembedding's own transposed copy when it is tied
   * to the embedding (`[d_model, vocab]` for a plain matMul).
   */
  heldBytes: number;
  /** Bytes of the weights used in 2-D matMuls (projections, MLP, unembedding): wasm keeps a packed copy of each. */
  matMulBytes: number;
}

/** The memory a model may take, and whether matMul weights cost twice there (wasm's packed copies). */
export interface MemoryLimit {
  bytes: number;
  what: string;
  packedMatMulCopies?: boolean;
}

/**
 * Parameter count of a model with these dims, as Hugging Face counts the checkpoint. Biases are counted where
 * the family stores them (the LayerNorm families' projections, Qwen2's q/k/v, Phi's lm_head); optional ones a
 * config switches on (Llama's attention_bias / mlp_bias) are a few thousand parameters and are not.
 */
export function modelSize(c: ModelDims): ModelSize {
  const q = c.nHeads * c.dHead;
  const kv = c.nKvHeads * c.dHead;
  const olmo = c.family === "olmo"; // LayerNorm without parameters, and no biases
  const biases = c.normKind === "layernorm" && !olmo;
  const normSize = olmo ? 0 : biases ? 2 * c.dModel : c.dModel;
  // Projection biases of the LayerNorm families: GPT-Neo has none on q/k/v, StableLM none on o (its q/k/v ones
  // follow use_qkv_bias, counted here).
  const qkvBias = biases && c.family !== "gpt-neo" ? q + 2 * kv : 0;
  const oBias = biases && c.family !== "stable-lm" ? c.dModel : 0;
  const attn = c.dModel * q + 2 * c.dModel * kv + q * c.dModel + qkvBias + oBias;
  const qkNorms = c.qkNorm || c.qkRmsNorm === "projection" ? q + kv : c.qkRmsNorm === "head" ? 2 * c.dHead : 0;
  const mlp = (c.gatedMlp ? 3 : 2) * c.dModel * c.dMlp + (biases && !c.gatedMlp ? c.dMlp + c.dModel : 0);
  // StableLM's parallel block and Phi store one input norm per layer (the MLP reads a copy of it).
  const oneInputNorm = c.parallelResidual && c.family !== "gpt-neox";
  const norms = (c.normPlacement === "sandwich" ? 4 : oneInputNorm ? 1 : 2) * normSize;
  const qwenBiases = c.family === "qwen2" ? q + 2 * kv : 0; // Qwen2's q/k/v biases on an RMSNorm family
  const layer = attn + qkNorms + mlp + norms + qwenBiases;
  const embed = c.dVocab * c.dModel + (c.positional === "learned" ? c.nCtx * c.dModel : 0);
  const unembed = (c.tiedEmbeddings ? 0 : c.dVocab * c.dModel) + (c.family === "phi" ? c.dVocab : 0); // Phi's lm_head has a bias
  const params = embed + c.nLayers * layer + normSize + unembed;
  const matMul = c.nLayers * (attn - qkvBias - oBias + (c.gatedMlp ? 3 : 2) * c.dModel * c.dMlp) + c.dVocab * c.dModel;
  const tiedCopy = c.tiedEmbeddings ? c.dVocab * c.dModel : 0;
  return { params, bytes: 4 * params, heldBytes: 4 * (params + tiedCopy), matMulBytes: 4 * matMul };
}

/**
 * The memory a model may take: on the wasm backend the heap budget for weights (4 GiB minus working space), else
 * the machine's memory. The weights are TF.js tensors on the wasm heap whatever the engine, but only the TF.js
 * engine multiplies them there, where XNNPACK keeps a packed copy of each matMul weight: they count twice unless
 * the onnxruntime engine was chosen explicitly (ARRAKIS_ENGINE=ort or initBackend({ engine: "ort" })).
 */
export function memoryLimit(): MemoryLimit {
  if (tf.getBackend() === "wasm") {
    const packed = wantedEngine().choice !== "ort";
    const what = packed ? "the wasm heap's budget for weights" : "the wasm heap's budget for weights (onnxruntime engine: no packed copies)";
    return { bytes: wasmSafeHeapBytes(), what, packedMatMulCopies: packed };
  }
  return { bytes: os.totalmem(), what: `this machine's memory (${tf.getBackend() ?? "no"} backend)` };
}

/** 6738415616 → "6.74 B", 124439808 → "124 M". */
export function formatCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(n >= 1e8 ? 0 : 1)} M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} k`;
  return String(n);
}

/** 26953662464 → "25.1 GiB", 2319282176 → "2.16 GiB". */
export function formatBytes(b: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (b >= 1024 && i < units.length - 1) {
    b /= 1024;
    i++;
  }
  return `${b.toFixed(i === 0 ? 0 : b >= 10 ? 1 : 2)} ${units[i]}`;
}

/**
 * Throws an ArrakisError when the parameters alone exceed the memory limit (activations come on top), naming the
 * count, the bytes, the limit and how to get a model that fits. `where` says what was being built, e.g.
 * `random init of llama` or `the checkpoint in /models/x`.
 */
export function checkModelFits(c: ModelDims, where: string, limit: MemoryLimit = memoryLimit()): ModelSize {
  const size = modelSize(c);
  const need = size.heldBytes + (limit.packedMatMulCopies ? size.matMulBytes : 0);
  if (need > limit.bytes) {
    const held = need === size.bytes ? "" : ` (${formatBytes(need)} held${limit.packedMatMulCopies ? " with the packed copies wasm keeps of matMul weights" : ""})`;
    fail(
      `${where}: ${formatCount(size.params)} parameters need ${formatBytes(size.bytes)} in float32${held}, more than ${limit.what} ` +
        `(${formatBytes(limit.bytes)}). ${limit.packedMatMulCopies ? "Use the onnxruntime engine (ARRAKIS_ENGINE=ort), or" : "Use"} a smaller model: ` +
        `set the sizes yourself (hidden_size, num_hidden_layers, ` +
        `num_attention_heads, intermediate_size, vocab_size) or start from HookedAutoConfig.small("${c.family}"), ` +
        `e.g. new HookedAutoModel(HookedAutoConfig.small("${c.family}")).`,
    );
  }
  return size;
}
