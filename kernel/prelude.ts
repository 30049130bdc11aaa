/**
 * The prelude: what exists before the first cell. Loading happens here, in kernel code (backend, model,
 * tools), through the library's own typed exports (kernel and library ship in one package). The library
 * is imported when the prelude runs, not when the kernel starts, so the sockets are bound and
 * kernel_info answered while tf.js and the model load. The objects are then bound by a short TypeScript
 * cell run through tslab's executor, so later cells see `model`, `attention`, `exp`, `tf` and `display`
 * as declarations with their real types (completion and hover come from those declarations).
 *
 * Model choice: ARRAKIS_MODEL, else the kernelspec's `--model`, else the embedded model; "random" asks
 * for a small randomly initialised gpt2. Without an explicit choice a missing embedded model falls back to
 * that random gpt2 quietly (kernel log); an explicit choice that fails to load also warns in the first cell.
 */
import type * as Library from "../src";
import type { HookedAutoModel } from "../src";
import { kernelProgressFactory, kernelProgressHost } from "./display";
import { kernelLog, kernelWarn } from "./log";
import type { Preloaded } from "./handler";

type Lib = typeof Library;

/** The random model used when no checkpoint can be loaded (small, so the kernel still starts fast). */
export const RANDOM_GPT2 = { name: "gpt2", n_layer: 2, n_head: 4, n_embd: 64, vocab_size: 512, n_positions: 128 };

export const PRELOAD_GLOBAL = "__arrakis_preload__";

export interface PreludePlan {
  /** TypeScript run as the kernel's hidden first cell. */
  source: string;
  preloaded: Preloaded;
  /** The globals the prelude defines, for the log. */
  names: string[];
  /** Backend and model in one line, for the kernel's ready line. */
  summary: string;
}

/** Builds one preloaded object; a failure leaves that name undefined (warned) rather than no kernel. */
function tryBuild<T>(build: () => T, what: string): T | undefined {
  try {
    return build();
  } catch (e) {
    kernelWarn(`prelude: ${what} failed (${(e as Error).message.split("\n")[0]})`);
    return undefined;
  }
}

interface Loaded {
  model?: HookedAutoModel;
  /** What `model` is, for its hover doc. */
  label?: string;
  warning?: string;
}

async function loadModel(lib: Lib, spec: string | undefined): Promise<Loaded> {
  const random = () => new lib.HookedAutoModel(new lib.HookedAutoConfig(RANDOM_GPT2), { seed: 0 });
  if (spec === "random") {
    kernelLog("prelude: model = random gpt2 (2 layers, 4 heads, d_model 64)");
    return { model: random(), label: "a random gpt2" };
  }
  const t0 = Date.now();
  try {
    const model = await lib.HookedAutoModel.fromPretrained(spec);
    kernelLog(`prelude: model = ${spec ?? "the embedded model"} (${Date.now() - t0} ms)`);
    return { model, label: spec ? JSON.stringify(spec) : "the embedded model" };
  } catch (e) {
    const why = (e as Error).message?.split("\n")[0] ?? String(e);
    kernelWarn(`prelude: could not load ${spec ?? "the embedded model"} (${why}); using a random gpt2`);
    const warning = spec ? `arrakis-ts: could not load model ${JSON.stringify(spec)}: ${why}\n\`model\` is a small random gpt2 instead.` : undefined;
    return { model: tryBuild(random, "the random gpt2 fallback"), label: `a random gpt2: ${spec ? JSON.stringify(spec) : "the embedded model"} could not be loaded`, warning };
  }
}

/** Loads what the prelude binds. `modelSpec` is the kernelspec's --model (ARRAKIS_MODEL overrides it). */
export async function preparePrelude(modelSpec: string | undefined): Promise<PreludePlan> {
  const lib: Lib = await import("../src");
  const display = await import("../src/display");
  // Long tool calls (head sweeps) report progress through the library; the kernel shows it as one output.
  display.setProgressFactory(kernelProgressFactory(display.progressBundle));
  display.setProgressHost(kernelProgressHost());

  let backend = "unknown backend";
  try {
    const name = await lib.initBackend();
    // The start line names what runs the math; the full account (threads, heap budget, each patch) is debug.
    kernelLog(`prelude: ${oneLine(lib.backendReport())}`);
    const wasm = name === "wasm" ? ` (${lib.wasmThreads().count} thread${lib.wasmThreads().count === 1 ? "" : "s"})` : "";
    backend = `${lib.engineReport()}; tf.js backend: ${name}${wasm}`;
  } catch (e) {
    kernelWarn("prelude: initBackend failed:", e);
  }

  const spec = process.env.ARRAKIS_MODEL || modelSpec || undefined;
  const { model, label, warning } = await loadModel(lib, spec);
  const objects: Record<string, unknown> = { model };
  const lines = [`import * as tf from "@tensorflow/tfjs";`, `import { display } from "arrakis-ts/dist/kernel/display";`];
  const imports: string[] = [];
  const names = ["tf", "display"];
  // The doc comments travel into tslab's declarations, so hover on these names shows them.
  const bind = (name: string, type: string, value: unknown, doc: string) => {
    objects[name] = value;
    imports.push(type);
    lines.push(`/** ${doc} */`, `const ${name}: ${type} = (globalThis as any).${PRELOAD_GLOBAL}.${name};`);
    names.push(name);
  };
  const tools: unknown[] = [];
  if (model) {
    bind("model", "HookedAutoModel", model, `The preloaded model (${label}; choose with ARRAKIS_MODEL or \`arrakis-ts install --model\`).`);
    const attention = tryBuild(() => new lib.AttentionTools(model), "new AttentionTools(model)");
    if (attention) bind("attention", "AttentionTools", attention, "Attention tools on `model`: attentionPatterns, topAttendedIds, ablateHead, mergeHeads, ...");
    const exp = tryBuild(() => new lib.MIExperiment(model), "new MIExperiment(model)");
    if (exp) bind("exp", "MIExperiment", exp, "The experiment bench on `model` (useTools, logExperiment, listVersions, ...); logs under ./experiments.");
    tools.push(...[attention, exp].filter(Boolean));
  }
  if (imports.length) lines.splice(2, 0, `import { ${imports.join(", ")} } from "arrakis-ts";`);
  (globalThis as Record<string, unknown>)[PRELOAD_GLOBAL] = objects;
  const summary = `${backend}; model: ${label ?? "none"}`;
  return { source: lines.join("\n") + "\n", preloaded: { models: model ? [model] : [], tools, tf: lib.tf, warning }, names, summary };
}

/** The engine report's lines without the skipped alternatives, joined: "backend: wasm, wasm SIMD: true, ...". */
function oneLine(report: string): string {
  return report
    .split("\n")
    .filter((l) => l && !l.startsWith("skipped"))
    .join(", ");
}
