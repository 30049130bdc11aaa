/**
 * `HookedAutoModel`: a decoder-only transformer whose every intermediate activation is a named hook point.
 *
 *     const model = await HookedAutoModel.fromPretrained("path/to/hf-folder");
 *     const logits = model.forward("the cat sat");                     // [batch, pos, vocab]
 *     const { logits: l2, cache } = model.runWithCache("the cat sat"); // cache.get("blocks.0.attn.hook_pattern")
 *     cache.dispose(); logits.dispose(); l2.dispose();
 *
 * Ownership: every returned tensor belongs to the caller; caches belong to the caller until `dispose()`.
 * Each block runs in its own `tf.tidy`, so intermediates never outlive their block (and the wasm heap, which
 * never shrinks, only ever holds one block's worth of them).
 */
import * as tf from "@tensorflow/tfjs";
import { backendReady, initBackend } from "../backend";
import { checkEngineChoice, type EngineChoice, engineFor } from "../engine/engine";
import { onCpuBackend, weightsOutsideWasm } from "../engine/placement";
import type { Engine, EngineName, RunRequest, Runner } from "../engine/types";
import { ArrakisError, fail, show } from "../errors";
import { TextTokenizer } from "../io/tokenizer";
import { ActivationCache } from "./cache";
import { HookedAutoConfig } from "./config";
import { ModelEdits } from "./edits";
import { type HookFn, type HookHandle, type HookPointInfo, HookRegistry, type HookSpec, type HookTarget, hookPointsFor } from "./hooks";
import { initParams } from "./init";
import { loadPretrained, type PretrainedOptions } from "./load";
import { disposeParams, tidyParams } from "./params";
import { idsFromTensor, type ModelInput, validateIds } from "./input";
import type { ModelDims, ModelParams } from "./types";

import type { ModelOptions } from "./options";
export type { ModelOptions };

export interface RunWithCacheOptions {
  /** Hook names (or a predicate) to record; default all. Only these are kept. */
  names?: string[] | ((name: string) => boolean);
}

export interface LossOptions {
  /** Return the loss of every prediction `[batch][pos - 1]` instead of the mean. */
  perToken?: boolean;
}

/** What one forward pass does at each hook point: user hooks, then caching. */
interface RunState {
  hooks: HookRegistry;
  cache: ActivationCache | null;
  cacheFilter: ((name: string) => boolean) | null;
}

export class HookedAutoModel {
  readonly config: HookedAutoConfig;
  /** Normalised dimensions: nLayers, nHeads, nKvHeads, dModel, dHead, dMlp, dVocab, nCtx, and flags. */
  readonly cfg: Readonly<ModelDims>;
  /** Every hook point with its shape and meaning, in forward order. */
  readonly hookPoints: readonly HookPointInfo[];
  /** Every hook name, in forward order. */
  readonly hookNames: readonly string[];
  tokenizer: TextTokenizer | null;
  /** Whether string input gets a BOS token prepended (the model's one BOS policy). */
  prependBos: boolean;
  /** Where the weights came from: "the embedded induction-2l model", the folder or Hub id given, or "random(seed=…)". */
  readonly source: string;
  /** @internal The weights; only the edit ledger (`edits.swapLayer`) swaps entries, and restores them. */
  params: ModelParams;
  /** Every change to the model that outlives a forward pass (hooks, ablations, merges): see `restoreAll()`. */
  readonly edits: ModelEdits;
  private readonly hooks: HookRegistry;
  private disposed = false;
  private readonly engineChoice: EngineChoice | undefined;
  private selected: { engine: Engine; reason: string; runner: Runner } | null = null;

  constructor(config: HookedAutoConfig, options: ModelOptions = {}, params?: ModelParams, source?: string) {
    if (!(config instanceof HookedAutoConfig)) fail(`HookedAutoModel expects a HookedAutoConfig, got ${show(config)}`);
    this.config = config;
    this.cfg = config.dims;
    this.hookPoints = hookPointsFor(this.cfg);
    this.hookNames = this.hookPoints.map((p) => p.name);
    this.hooks = new HookRegistry(this.hookNames);
    requireBackend("new HookedAutoModel");
    this.engineChoice = checkEngineChoice(options.engine);
    const seed = options.seed ?? 0;
    this.weightsAsInputs = options.weightsInJsMemory ?? false;
    this.params = params ?? this.randomParams(seed);
    this.edits = new ModelEdits(this.hooks, () => this.params);
    this.source = source ?? `random(seed=${seed})`;
    this.tokenizer = options.tokenizer ?? null;
    this.prependBos = options.prependBos ?? this.tokenizer?.addsBos ?? false;
  }

  /**
   * Loads a Hugging Face checkpoint folder (config.json + safetensors [+ tokenizer.json]) or a Hub id.
   * With no argument, loads the small model shipped with the package.
   */
  static async fromPretrained(dirOrId?: string, options: PretrainedOptions = {}): Promise<HookedAutoModel> {
    const { config, params, tokenizer, source, weightsInJsMemory } = await loadPretrained(dirOrId, options);
    try {
      return new HookedAutoModel(config, { ...options, tokenizer, weightsInJsMemory }, params, source);
    } catch (e) {
      disposeParams(params);
      throw e;
    }
  }

  // ---------------------------------------------------------------- tokens

  /** Token ids `[batch, pos]` (int32, owned by the caller) for any accepted input. */
  toTokens(input: ModelInput, opts: { prependBos?: boolean } = {}): tf.Tensor2D {
    const rows = this.tokenRows(input, opts.prependBos);
    return tf.tensor2d(rows.flat(), [rows.length, rows[0].length], "int32");
  }

  /** The vocabulary strings of a single sequence (a string or ids). */
  toStrTokens(input: string | number[] | tf.Tensor, opts: { prependBos?: boolean } = {}): string[] {
    const rows = this.tokenRows(input as ModelInput, opts.prependBos);
    if (rows.length !== 1) fail(`toStrTokens takes one sequence, got a batch of ${rows.length}`);
    return rows[0].map((id) => this.idToToken(id));
  }

  /** The vocabulary string of one id (`<id>` when the model has no tokenizer). */
  idToToken(id: number): string {
    return this.tokenizer ? this.tokenizer.idToToken(id) : `<${id}>`;
  }

  /** @internal Validated token-id rows `[batch][pos]`. */
  tokenRows(input: ModelInput, prependBos = this.prependBos): number[][] {
    let rows: number[][];
    if (Array.isArray(input) && input.length === 0) fail("input is empty: expected at least one token");
    if (typeof input === "string") rows = [this.encodeText(input, prependBos)];
    else if (input instanceof tf.Tensor) rows = idsFromTensor(input);
    else if (Array.isArray(input) && input.length && input.every((x) => typeof x === "string")) rows = (input as string[]).map((s) => this.encodeText(s, prependBos));
    else if (Array.isArray(input) && input.length && input.every((x) => Array.isArray(x))) rows = input as number[][];
    else if (Array.isArray(input) && input.every((x) => typeof x === "number")) rows = [input as number[]];
    else fail(`input must be a string, string[], number[], number[][] or an int32 tensor, got ${show(input)}`);
    return validateIds(rows, this.cfg.dVocab, this.cfg.positional === "learned" ? this.cfg.nCtx : null);
  }

  private encodeText(text: string, prependBos: boolean): number[] {
    if (!this.tokenizer) fail(`string input ${show(text.slice(0, 40))} needs a tokenizer, and this model (${this.source}) has none: pass token ids, or load a folder with tokenizer.json`);
    if (!text.length) fail("input is empty: expected a non-empty string");
    const ids = this.tokenizer.encode(text);
    if (!prependBos) return ids;
    if (this.cfg.bosTokenId === null) fail(`prependBos is on but the config has no bos_token_id`);
    return [this.cfg.bosTokenId, ...ids];
  }

  // ---------------------------------------------------------------- hooks

  /** Attaches a hook that stays until `handle.remove()`, `restoreAll()` or `resetHooks()` (recorded in `edits`). */
  addHook(target: HookTarget, fn: HookFn): HookHandle {
    this.checkAlive();
    return this.edits.addHook(target, fn);
  }

  /**
   * Undoes every edit of the model, newest first: user hooks, head ablations, merges (weights swapped back).
   * The kernel calls this after an interrupt.
   */
  restoreAll(): void {
    this.edits.restoreAll();
  }

  /** The same as `restoreAll()`: a hook-based edit cannot be removed while the rest of it stays applied. */
  resetHooks(): void {
    this.edits.restoreAll();
  }

  /** Number of hooks currently attached. */
  get hookCount(): number {
    return this.hooks.count;
  }

  // ---------------------------------------------------------------- running

  /** Logits `[batch, pos, vocab]` (owned by the caller). */
  forward(input: ModelInput): tf.Tensor3D {
    return this.run(input, { hooks: this.hooks, cache: null, cacheFilter: null });
  }

  /** Runs with temporary hooks, removed afterwards even when a hook throws. */
  runWithHooks(input: ModelInput, hooks: HookSpec[]): tf.Tensor3D {
    if (!Array.isArray(hooks)) fail(`runWithHooks expects a list of [hookName, fn] pairs, got ${show(hooks)}`);
    const handles: HookHandle[] = [];
    try {
      for (const spec of hooks) {
        if (!Array.isArray(spec) || spec.length !== 2) fail(`each hook must be a [hookName, fn] pair, got ${show(spec)}`);
        handles.push(this.addHook(spec[0], spec[1]));
      }
      return this.forward(input);
    } finally {
      for (const h of handles) h.remove();
    }
  }

  /** Logits and an ActivationCache of the named hook points (default all); both owned by the caller. */
  runWithCache(input: ModelInput, options: RunWithCacheOptions = {}): { logits: tf.Tensor3D; cache: ActivationCache } {
    const cache = new ActivationCache();
    const filter = this.cacheFilter(options.names);
    try {
      const logits = this.run(input, { hooks: this.hooks, cache, cacheFilter: filter });
      return { logits, cache };
    } catch (e) {
      cache.dispose();
      throw e;
    }
  }

  /**
   * Mean next-token cross-entropy: loss at position t predicts token t+1. Default: the mean over every
   * prediction of the batch (HF's `labels=input_ids` loss); `perToken`: `[batch][pos - 1]`.
   */
  loss(input: ModelInput, opts: { perToken: true }): number[][];
  loss(input: ModelInput, opts?: { perToken?: false }): number;
  loss(input: ModelInput, opts: LossOptions = {}): number | number[][] {
    const rows = this.tokenRows(input);
    if (rows[0].length < 2) fail(`loss needs at least 2 tokens per sequence to predict one, got ${rows[0].length}`);
    const logits = this.forward(rows);
    try {
      const perToken = tokenLosses(logits, rows);
      return opts.perToken ? perToken : mean(perToken.flat());
    } finally {
      logits.dispose();
    }
  }

  /** Frees the weights; the model cannot be used afterwards. */
  dispose(): void {
    if (this.disposed) return;
    this.edits.restoreAll(); // swapped-in weights are freed and the originals put back before they are freed
    this.disposed = true;
    this.selected?.runner.dispose();
    this.selected = null;
    disposeParams(this.params);
  }

  /** Node's console/REPL and the kernel's text/plain show the summary, not thousands of weight fields. */
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return this.toString();
  }

  toString(): string {
    const c = this.cfg;
    return `HookedAutoModel(${c.family}: ${c.nLayers} layers, ${c.nHeads} heads${c.nKvHeads !== c.nHeads ? ` / ${c.nKvHeads} kv` : ""}, d_model ${c.dModel}, vocab ${c.dVocab}; ${this.source}; engine ${this.disposed ? "none (disposed)" : this.engine})`;
  }

  private cacheFilter(names: RunWithCacheOptions["names"]): (name: string) => boolean {
    if (names === undefined) return () => true;
    if (typeof names === "function") {
      this.hooks.resolve(names);
      return names;
    }
    if (!Array.isArray(names)) fail(`names must be a list of hook names or a predicate, got ${show(names)}`);
    const set = new Set(names.flatMap((n) => this.hooks.resolve(n)));
    return (n) => set.has(n);
  }

  private checkAlive(): void {
    if (this.disposed) fail("this model was disposed");
  }

  /**
   * @internal Head ablations in batches for sweeps: the engine runs the clean pass once and then, per layer,
   * several ablated heads per forward (one batch row group each) from the clean residual entering that layer.
   * Null when the engine has no such path or any hook is attached (the batched path applies no hooks).
   */
  ablationBatches(rows: number[][]): ReturnType<NonNullable<Runner["ablationBatches"]>> | null {
    const runner = this.engineState().runner;
    if (!runner.ablationBatches || this.hookCount > 0) return null;
    requireBackend("an ablation sweep");
    return runner.ablationBatches(rows);
  }

  /** @internal The weights live in TF.js's cpu storage (see src/engine/placement.ts): engines read them in place. */
  weightsAsInputs = false;

  /**
   * Random init. A model too big for the wasm heap that will run on onnxruntime is made on TF.js's cpu backend:
   * its weights are plain JS memory (bounded by the machine), which the engine feeds to onnxruntime without a
   * copy; tf ops on them (a merge) move only what they touch into the active backend.
   */
  private randomParams(seed: number): ModelParams {
    const make = () => tidyParams(() => initParams(this.cfg, seed));
    if (!weightsOutsideWasm(this.cfg, this.engineChoice)) return make();
    this.weightsAsInputs = true;
    return onCpuBackend(make);
  }

  /** The engine running this model ("ort" or "tfjs"); chosen on first use. */
  get engine(): EngineName {
    return this.engineState().engine.name;
  }

  /** Why this model runs on its engine (or why not on onnxruntime). */
  get engineReason(): string {
    return this.engineState().reason;
  }

  private engineState(): { engine: Engine; reason: string; runner: Runner } {
    this.checkAlive();
    if (!this.selected) {
      const { engine, reason } = engineFor(this.cfg, this.params, this.engineChoice);
      this.selected = { engine, reason, runner: engine.runner(this) };
    }
    return this.selected;
  }

  /** The forward pass, run by the model's engine; hooks and caching happen at each point as `atPoint` says. */
  private run(input: ModelInput, state: RunState): tf.Tensor3D {
    this.checkAlive();
    requireBackend("the forward pass");
    const rows = this.tokenRows(input);
    const cache = state.cache;
    const req: RunRequest = {
      rows,
      hooksAt: (name) => state.hooks.get(name),
      caches: (name) => cache !== null && (state.cacheFilter?.(name) ?? false),
      cache,
      record: (name, values, shape) => {
        if (cache && state.cacheFilter?.(name)) cache.recordValues(name, values, shape);
      },
      point: (name, layer, x) => this.atPoint(state, name, layer, x),
    };
    return this.engineState().runner.run(req);
  }

  /** A hook point: run the attached hooks in order (each may replace the activation), then record it. */
  private atPoint<X extends tf.Tensor>(state: RunState, name: string, layer: number | null, x: X): X {
    let out = x;
    for (const fn of state.hooks.get(name) ?? []) {
      let r: tf.Tensor | void | undefined;
      try {
        r = fn(out, { name, layer });
      } catch (e) {
        if (e instanceof Error && !(e instanceof ArrakisError)) e.message = `hook on ${name} threw: ${e.message}`;
        throw e;
      }
      if (r === undefined || r === null) continue;
      if (!(r instanceof tf.Tensor)) fail(`hook on ${name} returned ${show(r)}; expected a tensor or nothing`);
      if (r.shape.length !== out.shape.length || r.shape.some((d, i) => d !== out.shape[i])) {
        fail(`hook on ${name} returned shape ${show(r.shape)}; expected ${show(out.shape)}`);
      }
      // A tensor a hook returns stays the hook's (activation patching returns a cached tensor many times):
      // the forward pass continues with a clone, which shares the data and is freed with the block.
      out = (r.dtype === out.dtype ? tf.clone(r) : tf.cast(r, out.dtype)) as X;
    }
    if (state.cache && state.cacheFilter?.(name)) state.cache.record(name, out); // copied out of the backend now
    return out;
  }
}

/**
 * Fails with the fix when TF.js has no backend started yet: TF.js would otherwise fall to its pure-JS cpu
 * backend (~50x slower). Backends start asynchronously, so a synchronous entry point cannot start one itself;
 * it starts it in the background so that a retry after awaiting works.
 */
function requireBackend(where: string): void {
  if (backendReady()) return;
  initBackend().catch(() => {}); // the failure is reported by the awaited call
  fail(`${where} needs a started backend: run \`await initBackend()\` once first (it picks tfjs-node or wasm and the engine; without it TF.js would silently use its pure-JS cpu backend, ~50x slower)`);
}

/** Per-token next-token cross-entropy `[batch][pos - 1]` from logits `[batch, pos, vocab]`. */
export function tokenLosses(logits: tf.Tensor3D, rows: number[][]): number[][] {
  const [B, T, V] = logits.shape;
  const values = tf.tidy(() => {
    const logp = tf.logSoftmax(tf.slice(logits, [0, 0, 0], [B, T - 1, V])); // [batch, pos-1, vocab]
    const targets = tf.tensor2d(rows.map((r) => r.slice(1)).flat(), [B, T - 1], "int32");
    return tf.neg(tf.sum(tf.mul(logp, tf.oneHot(targets, V)), -1)); // [batch, pos-1]
  });
  const flat = Array.from(values.dataSync());
  values.dispose();
  return Array.from({ length: B }, (_, b) => flat.slice(b * (T - 1), (b + 1) * (T - 1)));
}

function mean(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}
