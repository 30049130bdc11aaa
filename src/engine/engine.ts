/**
 * Which engine runs a model's forward pass. The math is described once per family (ModelDims flags); the
 * TF.js engine runs it as tf ops (the reference: every family, training with gradients), the onnxruntime
 * engine runs it as ONNX graphs on onnxruntime-node's native CPU kernels (several times faster, no 4 GiB wasm
 * heap cap).
 *
 * Choice: `initBackend({ engine })`, else `ARRAKIS_ENGINE` (`ort` | `tfjs` | `auto`), else automatic: the
 * onnxruntime engine when onnxruntime-node loads and passes a self-check against the TF.js engine (logits of
 * small random models of both norm/position kinds agree), else TF.js with the reason. A model whose flags
 * the onnxruntime emitter does not know runs on TF.js, and says why.
 */
import * as os from "node:os";
import * as tf from "@tensorflow/tfjs";
import { fail } from "../errors";
import { tfBackendReport } from "../backend";
import { type EngineChoice, wantedEngine as wanted } from "./choice";
import type { ModelDims, ModelParams } from "../model/types";
import { tfjsEngine } from "./tfjs";
import type { Engine, EngineName } from "./types";

export { type EngineChoice, checkEngineChoice, setEnginePreference } from "./choice";

let ort: { engine: Engine | null; reason: string } | null = null;

/** Loads the onnxruntime engine and checks it once per process; the reason says what happened. */
function ortEngine(): { engine: Engine | null; reason: string } {
  if (ort) return ort;
  try {
    const { loadOrt, ortThreads } = require("./ort/session") as typeof import("./ort/session");
    const { ortEngine: engine } = require("./ort") as typeof import("./ort");
    const o = loadOrt();
    const { selfCheck } = require("./self-check") as typeof import("./self-check");
    const diff = selfCheck(engine, tfjsEngine);
    if (!(diff <= SELF_CHECK_TOLERANCE)) throw new Error(`self-check: logits differ from the TF.js engine by ${diff} (> ${SELF_CHECK_TOLERANCE})`);
    ort = { engine, reason: `onnxruntime-node ${o.version}, ${ortThreads()} thread${ortThreads() === 1 ? "" : "s"}; self-check passed (max |Δ logits| ${diff.toExponential(1)} vs TF.js)` };
  } catch (e) {
    const msg = String((e as Error)?.message ?? e).split("\n")[0];
    const missing = (e as { code?: string })?.code === "MODULE_NOT_FOUND" && msg.includes("onnxruntime-node");
    ort = { engine: null, reason: missing ? "onnxruntime-node is not installed (it is an optional dependency)" : `onnxruntime-node not usable: ${msg}` };
  }
  return ort;
}

/** Logits of the self-check models may differ by float32 rounding only. */
const SELF_CHECK_TOLERANCE = 1e-4;

/** The engine for a model with these dims (and weights), and why. `forced` overrides the process-wide choice. */
export function engineFor(cfg: Readonly<ModelDims>, params?: ModelParams, forced?: EngineChoice): { engine: Engine; reason: string } {
  const w = forced ? { choice: forced, from: `the model's engine option "${forced}"` } : wanted();
  if (w.choice === "tfjs") return { engine: tfjsEngine, reason: `chosen by ${w.from}` };
  const o = ortEngine();
  if (!o.engine) {
    if (w.choice === "ort") fail(`the onnxruntime engine was requested (${w.from}) but cannot run: ${o.reason}`);
    return { engine: tfjsEngine, reason: o.reason };
  }
  const why = o.engine.unsupported(cfg, params);
  if (why) return { engine: tfjsEngine, reason: why };
  return { engine: o.engine, reason: `${o.reason}; ${w.from}` };
}

/** One line for start-up banners: the engine new models get, and why. */
export function engineReport(): string {
  const w = wanted();
  if (w.choice === "tfjs") return `engine: tfjs (${w.from})`;
  const o = ortEngine();
  return o.engine ? `engine: ort (${o.reason})` : `engine: tfjs (${o.reason})`;
}

/** The engine choice in force (initBackend's option, else ARRAKIS_ENGINE, else "auto"), without loading onnxruntime. */
export function engineChoice(): EngineChoice {
  return wanted().choice;
}

/** The name of the engine new models get ("ort" or "tfjs"). */
export function engineName(): EngineName {
  const w = wanted();
  if (w.choice === "tfjs") return "tfjs";
  return ortEngine().engine ? "ort" : "tfjs";
}

/**
 * Bytes the active engine can hold for weights: the TF.js wasm heap is capped at 4 GiB; onnxruntime and
 * tfjs-node allocate natively, bounded by the machine's memory.
 */
export function engineMemoryLimit(): number {
  if (engineName() === "tfjs" && tf.getBackend() === "wasm") return 4 * 2 ** 30;
  return os.totalmem();
}

/**
 * A human-readable account of what runs the math: the TF.js backend (and why preferred ones were skipped),
 * the patches applied to other packages, and the engine new models get.
 */
export function backendReport(): string {
  return `${tfBackendReport()}\n${engineReport()}`;
}
