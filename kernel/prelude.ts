/**
 * The prelude: what exists before the first cell. Loading happens here, in kernel code (backend, model,
 * tools), with the library loaded dynamically so the kernel works while parts of it are still missing:
 * each missing piece is skipped with a note in the kernel log. The objects are then bound by a short
 * TypeScript cell run through tslab's executor, so later cells see `model`, `attention`, `exp`, `tf` and
 * `display` as declarations with their real types (completion and hover come from those declarations).
 *
 * Model choice: ARRAKIS_MODEL, else the kernelspec's `--model`, else the embedded model; "random" asks
 * for a small randomly initialised gpt2. Without an explicit choice a missing embedded model falls back to
 * that random gpt2 quietly (kernel log); an explicit choice that fails to load also warns in the first cell.
 */
import path from "path";
import { kernelProgressFactory, kernelProgressHost } from "./display";
import { kernelLog, kernelWarn } from "./log";
import { setLibraryFormatter, MimeBundle } from "./mime";
import { projectRequire, projectRoot } from "./paths";
import type { Preloaded } from "./handler";
import type { TfLike } from "./recover";

/** The slice of the library API the prelude needs; everything optional until it lands. */
interface Library {
  initBackend?: () => Promise<string>;
  backendReport?: () => string;
  HookedAutoConfig?: new (fields: Record<string, unknown>) => unknown;
  HookedAutoModel?: { new (config: unknown, opts?: { seed?: number }): unknown; fromPretrained?: (dirOrId?: string) => Promise<unknown> };
  AttentionTools?: new (model: unknown) => unknown;
  MIExperiment?: new (model: unknown, saveDir?: string) => unknown;
  toMimeBundle?: (x: unknown) => MimeBundle;
  setProgressFactory?: (f: ReturnType<typeof kernelProgressFactory>) => void;
  progressBundle?: Parameters<typeof kernelProgressFactory>[0];
}

/** The random model used when no checkpoint is available (the brief's fallback). */
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

function tryRequire<T>(load: () => T, what: string): T | undefined {
  try {
    return load();
  } catch (e) {
    kernelLog(`prelude: ${what} unavailable (${(e as Error).message.split("\n")[0]})`);
    return undefined;
  }
}

interface Loaded {
  model?: unknown;
  /** What `model` is, for its hover doc. */
  label?: string;
  warning?: string;
}

async function loadModel(lib: Library, spec: string | undefined): Promise<Loaded> {
  const M = lib.HookedAutoModel;
  if (!M) return {};
  const random = () => {
    if (!lib.HookedAutoConfig) throw new Error("HookedAutoConfig is not exported");
    return new M(new lib.HookedAutoConfig(RANDOM_GPT2), { seed: 0 });
  };
  if (spec === "random") {
    kernelLog("prelude: model = random gpt2 (2 layers, 4 heads, d_model 64)");
    return { model: random(), label: "a random gpt2" };
  }
  const t0 = Date.now();
  try {
    if (!M.fromPretrained) throw new Error("HookedAutoModel.fromPretrained is not available");
    const model = await M.fromPretrained(spec);
    kernelLog(`prelude: model = ${spec ?? "the embedded model"} (${Date.now() - t0} ms)`);
    return { model, label: spec ? JSON.stringify(spec) : "the embedded model" };
  } catch (e) {
    const why = (e as Error).message?.split("\n")[0] ?? String(e);
    kernelWarn(`prelude: could not load ${spec ?? "the embedded model"} (${why}); using a random gpt2`);
    const warning = spec ? `arrakis-ts: could not load model ${JSON.stringify(spec)}: ${why}\n\`model\` is a small random gpt2 instead.` : undefined;
    return { model: tryRequire(random, "the random gpt2 fallback"), label: `a random gpt2: ${spec ? JSON.stringify(spec) : "the embedded model"} could not be loaded`, warning };
  }
}

/** Loads what the prelude binds. `modelSpec` is the kernelspec's --model (ARRAKIS_MODEL overrides it). */
export async function preparePrelude(modelSpec: string | undefined): Promise<PreludePlan> {
  const req = projectRequire();
  const lib = tryRequire(() => req(projectRoot()) as Library, "the arrakis-ts library (dist/src/index.js)") ?? {};
  const display = tryRequire(() => req(path.join(projectRoot(), "dist", "src", "display")) as Library, "src/display");
  const formatter = lib.toMimeBundle ?? display?.toMimeBundle;
  setLibraryFormatter(formatter);
  // Long tool calls (head sweeps) report progress through the library; the kernel shows it as one output.
  if (display?.setProgressFactory && display.progressBundle) display.setProgressFactory(kernelProgressFactory(display.progressBundle));
  (display as { setProgressHost?: (h: ReturnType<typeof kernelProgressHost>) => void } | undefined)?.setProgressHost?.(kernelProgressHost());

  const tf = req("@tensorflow/tfjs") as TfLike;
  let backend = "unknown backend";
  if (lib.initBackend) {
    try {
      backend = await lib.initBackend();
      kernelLog(`prelude: tf.js backend ${backend}`);
      if (lib.backendReport) backend = oneLine(lib.backendReport());
    } catch (e) {
      kernelWarn("prelude: initBackend failed:", e);
    }
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
  if (model) {
    bind("model", "HookedAutoModel", model, `The preloaded model (${label}; choose with ARRAKIS_MODEL or \`arrakis-ts install --model\`).`);
    const build = (name: string, type: string, C: (new (m: unknown) => unknown) | undefined, doc: string) => {
      if (!C) return kernelLog(`prelude: ${type} is not exported yet; \`${name}\` is not defined`);
      const value = tryRequire(() => new C(model), `new ${type}(model)`);
      if (value) bind(name, type, value, doc);
    };
    build("attention", "AttentionTools", lib.AttentionTools, "Attention tools on `model`: attentionPatterns, topAttendedIds, ablateHead, mergeHeads, ...");
    build("exp", "MIExperiment", lib.MIExperiment, "The experiment bench on `model` (useTools, logExperiment, listVersions, ...); logs under ./experiments.");
  } else {
    kernelLog("prelude: HookedAutoModel is not available; `model`, `attention` and `exp` are not defined");
  }
  if (imports.length) lines.splice(2, 0, `import { ${imports.join(", ")} } from "arrakis-ts";`);
  (globalThis as Record<string, unknown>)[PRELOAD_GLOBAL] = objects;
  const tools = [objects.attention, objects.exp].filter(Boolean);
  const summary = `${backend}; model: ${label ?? "none"}`;
  return { source: lines.join("\n") + "\n", preloaded: { models: model ? [model] : [], tools, tf, warning }, names, summary };
}

/** The engine report's lines without the skipped alternatives, joined: "backend: wasm, wasm SIMD: true, ...". */
function oneLine(report: string): string {
  return report
    .split("\n")
    .filter((l) => l && !l.startsWith("skipped"))
    .join(", ");
}
