/**
 * The experiment bench: the seed's `BaseInterpretabilityBench` / `MIExperiment`, with tools passed to
 * experiment functions, an append-only experiment log on disk, a per-layer profiler and a hypothesis test.
 *
 *     class MIExperiment extends BaseInterpretabilityBench {
 *       constructor(model: HookedAutoModel) { super(model, "experiments"); }
 *     }
 *     const exp = new MIExperiment(model);
 *     const inductionLoss = exp.logExperiment(
 *       exp.useTools("attention", (text: string, attention: AttentionTools) =>
 *         attention.withAblatedHead(1, 0, () => model.loss(text))),
 *       "induction_loss");
 *     inductionLoss("the cat sat on the mat the cat sat on the mat");
 *     exp.listVersions("induction_loss");   // survives a kernel restart: read from experiments/induction_loss.jsonl
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { performance } from "node:perf_hooks";
import * as tf from "@tensorflow/tfjs";
import ttest2 = require("@stdlib/stats-ttest2");
import type { Displayable, MimeBundle } from "../display";
import { fail, show } from "../errors";
import type { HookedAutoModel } from "../model/hooked-model";
import { AttentionTools } from "./attention";
import { checkCount, checkOptions, fmt, textTable } from "./common";

/** The tools a bench hands to experiment functions; subclasses add theirs with `registerTool`. */
export interface BenchTools {
  attention: AttentionTools;
  [name: string]: unknown;
}

/** One line of `saveDir/<name>.jsonl`: one call of a logged experiment. */
export interface ExperimentRecord {
  experiment: string;
  /** First 12 hex digits of the SHA-256 of the function's source. */
  version: string;
  status: "ok" | "error";
  /** ISO time the call started. */
  startedAt: string;
  durationMs: number;
  /** The call's arguments, made JSON-safe (tensors as nested arrays, the rest as placeholders). */
  args: unknown[];
  /** The (awaited) return value, JSON-safe; absent on error. */
  result?: unknown;
  /** What was thrown; absent on success. */
  error?: { name: string; message: string; stack?: string };
  /** The function's source text. */
  source: string;
}

/** One version of a logged experiment: a distinct source text. */
export interface ExperimentVersion {
  version: string;
  runs: number;
  errors: number;
  firstRun: string;
  lastRun: string;
  source: string;
}

/** Source text of a wrapper's underlying function, so logged versions hash what the user wrote. */
const SOURCE = Symbol("arrakis.source");
type WithSource = { [SOURCE]?: string };

export class BaseInterpretabilityBench {
  readonly tools: BenchTools;
  /** Absolute folder of the experiment logs (resolved once, so a later chdir does not move it). */
  readonly saveDir: string;

  /** Printed as a one-line summary rather than the model and tools inside. */
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return `${this.constructor.name}(tools: ${Object.keys(this.tools).join(", ")}; logs in ${this.saveDir})`;
  }

  constructor(
    readonly model: HookedAutoModel,
    saveDir = "experiments",
  ) {
    if (typeof saveDir !== "string" || !saveDir) fail(`saveDir must be a folder path, got ${show(saveDir)}`);
    this.saveDir = path.resolve(saveDir);
    this.tools = { attention: new AttentionTools(model) };
  }

  /** Adds a tool that `useTools(name, …)` can pass (subclasses call this in their constructor). */
  registerTool(name: string, tool: unknown): void {
    if (typeof name !== "string" || !/^[A-Za-z_$][\w$]*$/.test(name)) fail(`tool name must be an identifier, got ${show(name)}`);
    if (tool === undefined || tool === null) fail(`tool ${show(name)} is ${tool}`);
    this.tools[name] = tool;
  }

  // ------------------------------------------------------------------ useTools

  /**
   * The seed's `@exp.use_tools("attention")` decorator as a wrapper: returns a function that calls
   * `fn(...args, tool1, tool2, …)`, the named tools appended after the caller's arguments in the order named.
   *
   *     const patterns = exp.useTools("attention", (text: string, attention: AttentionTools) => attention.attentionPatterns(text, 1));
   *     patterns("the cat sat");
   */
  useTools<A extends unknown[], R>(name: "attention", fn: (...args: [...A, AttentionTools]) => R): (...args: A) => R;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  useTools<R>(...namesAndFn: [...string[], (...args: any[]) => R]): (...args: any[]) => R;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  useTools(...namesAndFn: unknown[]): (...args: any[]) => unknown {
    const fn = namesAndFn[namesAndFn.length - 1];
    const names = namesAndFn.slice(0, -1);
    if (typeof fn !== "function") fail(`useTools expects tool names and then a function, e.g. useTools("attention", (text, attention) => …); got ${show(fn)} last`);
    if (!names.length) fail(`useTools needs at least one tool name before the function; known tools: ${Object.keys(this.tools).join(", ")}`);
    for (const n of names) {
      if (typeof n !== "string" || !(n in this.tools)) fail(`unknown tool ${show(n)}; known tools: ${Object.keys(this.tools).join(", ")}`);
    }
    const wrapped = (...args: unknown[]) => fn(...args, ...names.map((n) => this.tools[n as string]));
    Object.defineProperty(wrapped, "name", { value: fn.name });
    (wrapped as WithSource)[SOURCE] = sourceOf(fn);
    return wrapped;
  }

  // ------------------------------------------------------------------ the experiment log

  /**
   * Wraps a (possibly async) function so that every call appends one JSON line to `saveDir/<name>.jsonl`:
   * args, result or error, start time, duration, source and a version hash of the source. The line is
   * written with one `appendFileSync` after the call finishes (or throws, in which case the error is
   * recorded and rethrown), so a crash never damages earlier lines. Name defaults to the function's name.
   *
   *     const run = exp.logExperiment(function sweepLoss(text: string) { return attention.headAblationSweep(text).values; });
   *     run("the cat sat on the mat");
   */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  logExperiment<F extends (...args: any[]) => any>(fn: F, name?: string): F {
    if (typeof fn !== "function") fail(`logExperiment expects a function, got ${show(fn)}`);
    const experiment = checkExperimentName(name ?? fn.name, fn);
    const source = sourceOf(fn);
    const version = versionOf(source);
    const file = this.logFile(experiment);
    const write = (record: ExperimentRecord) => appendRecord(this.saveDir, file, record);
    const wrapped = (...args: unknown[]): unknown => {
      const startedAt = new Date().toISOString();
      const t0 = performance.now();
      const base = () => ({ experiment, version, startedAt, durationMs: performance.now() - t0, args: args.map((a) => toRecordValue(a)), source });
      const failed = (e: unknown) => {
        try {
          write({ ...base(), status: "error", error: errorRecord(e) });
        } catch (logError) {
          console.warn(`logExperiment: could not record the error of ${experiment}: ${(logError as Error).message}`);
        }
        return e;
      };
      let out: unknown;
      try {
        out = fn(...args);
      } catch (e) {
        throw failed(e);
      }
      if (out instanceof Promise) {
        return out.then(
          (value) => {
            write({ ...base(), status: "ok", result: toRecordValue(value) });
            return value;
          },
          (e) => {
            throw failed(e);
          },
        );
      }
      write({ ...base(), status: "ok", result: toRecordValue(out) });
      return out;
    };
    Object.defineProperty(wrapped, "name", { value: fn.name });
    (wrapped as WithSource)[SOURCE] = source;
    return wrapped as F;
  }

  /** Names of the experiments logged in `saveDir`. */
  listExperiments(): string[] {
    if (!fs.existsSync(this.saveDir)) return [];
    return fs.readdirSync(this.saveDir).filter((f) => f.endsWith(".jsonl")).map((f) => f.slice(0, -".jsonl".length)).sort();
  }

  /**
   * Every record of an experiment, oldest first, read from disk. A line that does not parse (only possible
   * as the last line, when a process was killed in the middle of writing it) is skipped.
   */
  records(name: string): ExperimentRecord[] {
    const file = this.logFile(checkExperimentName(name));
    if (!fs.existsSync(file)) {
      const known = this.listExperiments();
      fail(`no experiment ${show(name)} in ${this.saveDir}; logged experiments: ${known.length ? known.join(", ") : "none yet"}`);
    }
    const out: ExperimentRecord[] = [];
    for (const line of fs.readFileSync(file, "utf8").split("\n")) {
      if (!line.trim()) continue;
      try {
        out.push(JSON.parse(line) as ExperimentRecord);
      } catch {
        // a torn last line from a killed process: earlier records are intact, this one never finished
      }
    }
    return out;
  }

  /** The versions (distinct sources) of an experiment, in order of first use, with run counts. */
  listVersions(name: string): ExperimentVersion[] {
    const byVersion = new Map<string, ExperimentVersion>();
    for (const r of this.records(name)) {
      const v = byVersion.get(r.version) ?? { version: r.version, runs: 0, errors: 0, firstRun: r.startedAt, lastRun: r.startedAt, source: r.source };
      v.runs++;
      if (r.status === "error") v.errors++;
      v.lastRun = r.startedAt;
      byVersion.set(r.version, v);
    }
    return [...byVersion.values()];
  }

  /** One version of an experiment (a hash or a unique prefix of ≥ 4 digits): its source and its runs. */
  getVersion(name: string, hash: string): { version: string; source: string; runs: ExperimentRecord[] } {
    if (typeof hash !== "string" || hash.length < 4) fail(`version must be a hash or a prefix of at least 4 hex digits, got ${show(hash)}`);
    const versions = this.listVersions(name);
    const hits = versions.filter((v) => v.version.startsWith(hash.toLowerCase()));
    if (hits.length === 0) fail(`experiment ${show(name)} has no version ${show(hash)}; versions: ${versions.map((v) => v.version).join(", ")}`);
    if (hits.length > 1) fail(`version prefix ${show(hash)} of ${show(name)} is ambiguous: ${hits.map((v) => v.version).join(", ")}`);
    const v = hits[0];
    return { version: v.version, source: v.source, runs: this.records(name).filter((r) => r.version === v.version) };
  }

  private logFile(name: string): string {
    return path.join(this.saveDir, `${name}.jsonl`);
  }

  // ------------------------------------------------------------------ profiling

  /**
   * Runs `fn` (which runs the model) with a timing hook on every hook point and reports where the time went:
   * per layer and per component (embed, norm, attention, MLP, residual adds, unembed) and the size of every
   * activation. Each interval between two consecutive hook points is charged to the component that
   * produced the later activation, so the figures partition fn's wall time (they add up to it). On
   * synchronous backends (cpu, wasm, tensorflow) an op has finished when it returns; on others each hook
   * reads one element to force completion.
   *
   *     exp.profileModel(() => model.forward("the cat sat on the mat").dispose())
   */
  profileModel<R>(fn: () => Promise<R>): Promise<ModelProfile<R>>;
  profileModel<R>(fn: () => R): ModelProfile<R>;
  profileModel<R>(fn: () => R | Promise<R>): ModelProfile<R> | Promise<ModelProfile<R>> {
    if (typeof fn !== "function") fail(`profileModel expects a function that runs the model, got ${show(fn)}`);
    const recorder = new TimingRecorder(this.model);
    let out: R | Promise<R>;
    try {
      out = fn();
    } catch (e) {
      recorder.stop();
      throw e;
    }
    if (out instanceof Promise) {
      return out.then(
        (value) => recorder.finish(value),
        (e) => {
          recorder.stop();
          throw e;
        },
      );
    }
    return recorder.finish(out);
  }

  // ------------------------------------------------------------------ statistics

  /**
   * Welch's two-sample t-test (unequal variances; `@stdlib/stats-ttest2`) of `altFn` against `nullFn`:
   * each is called `nSamples` times with the sample index and returns a number (or a promise of one, which
   * makes the result a promise). `reject` is true when p < alpha. Positive t: the alternative's mean is higher.
   *
   *     exp.testHypothesis(
   *       (i) => model.loss(randomText(i)),
   *       (i) => attention.withAblatedHead(1, 0, () => model.loss(randomText(i))),
   *       { nSamples: 20, alpha: 0.01 });
   */
  testHypothesis(nullFn: (i: number) => number, altFn: (i: number) => number, options?: HypothesisOptions): HypothesisTest;
  testHypothesis(nullFn: (i: number) => number | Promise<number>, altFn: (i: number) => number | Promise<number>, options?: HypothesisOptions): Promise<HypothesisTest>;
  testHypothesis(nullFn: (i: number) => number | Promise<number>, altFn: (i: number) => number | Promise<number>, options: HypothesisOptions = {}): HypothesisTest | Promise<HypothesisTest> {
    if (typeof nullFn !== "function" || typeof altFn !== "function") fail(`testHypothesis expects two functions (i) => number, got ${show(typeof nullFn)} and ${show(typeof altFn)}`);
    const opts = checkOptions("testHypothesis", options, ["nSamples", "alpha", "alternative"]);
    const nSamples = checkCount("nSamples", opts.nSamples ?? 20, 2);
    const alpha = opts.alpha ?? 0.05;
    if (typeof alpha !== "number" || !(alpha > 0 && alpha < 1)) fail(`alpha must be a number in (0, 1), got ${show(alpha)}`);
    const alternative = opts.alternative ?? "two-sided";
    if (!["two-sided", "less", "greater"].includes(alternative)) fail(`alternative must be "two-sided", "less" or "greater", got ${show(alternative)}`);
    const nulls: (number | Promise<number>)[] = [];
    const alts: (number | Promise<number>)[] = [];
    for (let i = 0; i < nSamples; i++) {
      nulls.push(nullFn(i));
      alts.push(altFn(i));
    }
    const run = (n: number[], a: number[]) => welch(n, a, alpha, alternative);
    if ([...nulls, ...alts].some((x) => x instanceof Promise)) return Promise.all([Promise.all(nulls), Promise.all(alts)]).then(([n, a]) => run(n, a));
    return run(nulls as number[], alts as number[]);
  }
}

/** The seed's experiment class: a bench logging to `experiments/`. */
export class MIExperiment extends BaseInterpretabilityBench {
  constructor(model: HookedAutoModel, saveDir = "experiments") {
    super(model, saveDir);
  }
}

// ---------------------------------------------------------------------------------------------- log helpers

function sourceOf(fn: unknown): string {
  return (fn as WithSource)[SOURCE] ?? String(fn);
}

function versionOf(source: string): string {
  return createHash("sha256").update(source).digest("hex").slice(0, 12);
}

function checkExperimentName(name: unknown, fn?: unknown): string {
  if (name === "" && fn !== undefined) fail(`logExperiment: this function has no name (an anonymous arrow?); pass one: logExperiment(fn, "my_experiment")`);
  if (typeof name !== "string" || !/^[A-Za-z0-9_][\w.-]*$/.test(name)) fail(`experiment name must be letters, digits, "_", "-" or "." (it names a file), got ${show(name)}`);
  return name;
}

/**
 * Appends one record as one line. The record is serialised first, so nothing is written unless the whole
 * line is ready; if a killed process left a torn last line, the new record starts on a line of its own.
 */
function appendRecord(dir: string, file: string, record: ExperimentRecord): void {
  const line = JSON.stringify(record) + "\n";
  fs.mkdirSync(dir, { recursive: true });
  fs.appendFileSync(file, endsWithNewline(file) ? line : "\n" + line);
}

function endsWithNewline(file: string): boolean {
  let fd: number;
  try {
    fd = fs.openSync(file, "r");
  } catch {
    return true; // no file yet
  }
  try {
    const size = fs.fstatSync(fd).size;
    if (size === 0) return true;
    const last = Buffer.alloc(1);
    fs.readSync(fd, last, 0, 1, size - 1);
    return last[0] === 0x0a;
  } finally {
    fs.closeSync(fd);
  }
}

function errorRecord(e: unknown): { name: string; message: string; stack?: string } {
  if (e instanceof Error) return { name: e.name, message: e.message, stack: e.stack };
  return { name: typeof e, message: String(toRecordValue(e)) };
}

/**
 * A JSON-safe copy of any value for the log: tensors become nested arrays, typed arrays arrays, Maps
 * objects, Sets arrays, non-finite numbers and other non-serialisable values clear "[…]" placeholders.
 * Objects with `toJSON` (the tool results) use it; other class instances are not walked (a model would
 * drag its weights in) but named.
 */
export function toRecordValue(x: unknown, seen = new Set<object>(), depth = 0): unknown {
  if (x === null || typeof x === "string" || typeof x === "boolean") return x;
  if (x === undefined) return null;
  if (typeof x === "number") return Number.isFinite(x) ? x : `[number ${x}]`;
  if (typeof x === "bigint") return `[bigint ${x}]`;
  if (typeof x === "symbol") return `[${x.toString()}]`;
  if (typeof x === "function") return `[function ${x.name || "anonymous"}]`;
  if (depth > 32) return "[too deep]";
  if (x instanceof tf.Tensor) return x.isDisposed ? `[disposed tensor ${x.dtype} ${show(x.shape)}]` : x.arraySync();
  if (ArrayBuffer.isView(x)) return Array.from(x as unknown as ArrayLike<number>, (v) => toRecordValue(v));
  if (x instanceof Date) return x.toISOString();
  if (x instanceof Error) return { name: x.name, message: x.message };
  const obj = x as object;
  if (seen.has(obj)) return "[circular]";
  seen.add(obj);
  try {
    const rec = (v: unknown) => toRecordValue(v, seen, depth + 1);
    if (Array.isArray(obj)) return obj.map(rec);
    if (obj instanceof Map) return Object.fromEntries([...obj.entries()].map(([k, v]) => [String(k), rec(v)]));
    if (obj instanceof Set) return [...obj].map(rec);
    const toJSON = (obj as { toJSON?: unknown }).toJSON;
    if (typeof toJSON === "function") return rec(toJSON.call(obj));
    const proto = Object.getPrototypeOf(obj);
    if (proto !== Object.prototype && proto !== null) return `[${proto?.constructor?.name ?? "object"} ${String(obj).slice(0, 120)}]`;
    return Object.fromEntries(Object.entries(obj).filter(([, v]) => v !== undefined).map(([k, v]) => [k, rec(v)]));
  } catch (e) {
    return `[unserialisable: ${(e as Error).message}]`;
  } finally {
    seen.delete(obj);
  }
}

// ---------------------------------------------------------------------------------------------- profiling

export type ProfileComponent = "embed" | "norm" | "attention" | "mlp" | "residual" | "unembed";
const COMPONENTS: readonly ProfileComponent[] = ["embed", "norm", "attention", "mlp", "residual", "unembed"];

/** The component whose computation ends at a hook point. */
function componentOf(name: string): ProfileComponent {
  if (name === "hook_embed" || name === "hook_pos_embed") return "embed";
  if (name.endsWith("hook_normalized")) return "norm";
  if (name.includes(".attn.") || name.endsWith("hook_attn_out")) return "attention";
  if (name.includes(".mlp.") || name.endsWith("hook_mlp_out")) return "mlp";
  return "residual"; // hook_resid_pre / mid / post: the residual adds and the block's setup
}

/** Backends whose ops have finished when they return. */
const SYNC_BACKENDS = new Set(["cpu", "wasm", "tensorflow"]);

/** Timestamps at every hook point while attached; turns them into a ModelProfile. */
class TimingRecorder {
  private readonly events: { name: string; layer: number | null; t: number }[] = [];
  private readonly sizes = new Map<string, { shape: number[]; bytes: number }>();
  private readonly hook: { remove(): void };
  private readonly t0: number;

  constructor(private readonly model: HookedAutoModel) {
    const force = !SYNC_BACKENDS.has(tf.getBackend());
    this.hook = model.addHook(() => true, (x, { name, layer }) => {
      if (force) tf.tidy(() => tf.slice(x, x.shape.map(() => 0), x.shape.map(() => 1)).dataSync());
      this.events.push({ name, layer, t: performance.now() });
      this.sizes.set(name, { shape: [...x.shape], bytes: x.size * bytesPer(x.dtype) });
    });
    this.t0 = performance.now();
  }

  stop(): void {
    this.hook.remove();
  }

  finish<R>(result: R): ModelProfile<R> {
    const t1 = performance.now();
    this.stop();
    if (!this.events.length) fail("profileModel: the function ran no forward pass of this bench's model, so there is nothing to profile");
    const L = this.model.cfg.nLayers;
    const byLayer = Array.from({ length: L }, (_, layer) => ({ layer, ms: 0, components: { norm: 0, attention: 0, mlp: 0, residual: 0 } }));
    const byComponent = Object.fromEntries(COMPONENTS.map((c) => [c, 0])) as Record<ProfileComponent, number>;
    let prev = this.t0;
    let prevName = "";
    let passes = 0;
    for (const e of this.events) {
      const dt = e.t - prev;
      // After the final norm comes the unembedding; the next pass's embedding is charged to it too (no hook point between).
      const comp: ProfileComponent = e.name === "hook_embed" && prevName === "ln_final.hook_normalized" ? "unembed" : componentOf(e.name);
      if (e.name === "hook_embed") passes++;
      byComponent[comp] += dt;
      if (e.layer !== null && comp !== "embed" && comp !== "unembed") {
        byLayer[e.layer].ms += dt;
        byLayer[e.layer].components[comp] += dt;
      }
      prev = e.t;
      prevName = e.name;
    }
    byComponent.unembed += t1 - prev; // from the last hook point (the final norm) to fn's end
    const activations = [...this.sizes.entries()].map(([name, s]) => ({ name, ...s }));
    return new ModelProfile(result, t1 - this.t0, passes, byLayer, byComponent, activations, tf.getBackend());
  }
}

function bytesPer(dtype: string): number {
  return dtype === "complex64" ? 8 : dtype === "bool" ? 1 : 4;
}

/** Where a run's time went, per layer and component, and the size of every activation (of the last pass). */
export class ModelProfile<R = unknown> implements Displayable {
  constructor(
    /** What the profiled function returned. */
    readonly result: R,
    /** Wall time of the profiled function (ms); the figures below add up to it. */
    readonly totalMs: number,
    /** Forward passes seen. */
    readonly passes: number,
    readonly byLayer: { layer: number; ms: number; components: { norm: number; attention: number; mlp: number; residual: number } }[],
    readonly byComponent: Record<ProfileComponent, number>,
    readonly activations: { name: string; shape: number[]; bytes: number }[],
    readonly backend: string,
  ) {}

  /** Sum of the per-component figures (equals totalMs up to rounding). */
  get accountedMs(): number {
    return Object.values(this.byComponent).reduce((a, b) => a + b, 0);
  }

  get activationBytes(): number {
    return this.activations.reduce((a, b) => a + b.bytes, 0);
  }

  toJSON(): object {
    const { totalMs, passes, byLayer, byComponent, activations, backend } = this;
    return { totalMs, passes, byLayer, byComponent, activations, backend };
  }

  toString(): string {
    const pct = (ms: number) => `${((100 * ms) / (this.totalMs || 1)).toFixed(1)}%`;
    const lines = [`ModelProfile(${fmt(this.totalMs, 1)} ms, ${this.passes} forward pass${this.passes === 1 ? "" : "es"}, backend ${this.backend})`];
    lines.push(textTable([["component", "ms", "share"], ...COMPONENTS.map((c) => [c, fmt(this.byComponent[c], 2), pct(this.byComponent[c])])]));
    lines.push("per layer:");
    lines.push(textTable([["layer", "ms", "norm", "attention", "mlp", "residual"], ...this.byLayer.map((l) => [String(l.layer), fmt(l.ms, 2), fmt(l.components.norm, 2), fmt(l.components.attention, 2), fmt(l.components.mlp, 2), fmt(l.components.residual, 2)])]));
    lines.push(`activations: ${this.activations.length} hook points, ${(this.activationBytes / 1e6).toFixed(2)} MB per pass (largest: ${[...this.activations].sort((a, b) => b.bytes - a.bytes).slice(0, 3).map((a) => `${a.name} ${show(a.shape)}`).join(", ")})`);
    return lines.join("\n");
  }

  toMimeBundle(): MimeBundle {
    const esc = (s: string) => s.replace(/[&<>]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;" })[c] as string);
    const bar = (ms: number) => `<div style="background:#4c78a8;height:10px;width:${Math.round((200 * ms) / (this.totalMs || 1))}px"></div>`;
    const row = (cells: string[]) => `<tr>${cells.map((c) => `<td style="padding:2px 8px;text-align:left">${c}</td>`).join("")}</tr>`;
    const html = [
      `<div><b>Model profile</b>: ${fmt(this.totalMs, 1)} ms, ${this.passes} forward pass(es), backend ${esc(this.backend)}`,
      "<table>",
      row(["<b>component</b>", "<b>ms</b>", ""]),
      ...COMPONENTS.map((c) => row([c, fmt(this.byComponent[c], 2), bar(this.byComponent[c])])),
      row(["<b>layer</b>", "<b>ms</b>", ""]),
      ...this.byLayer.map((l) => row([`layer ${l.layer}`, fmt(l.ms, 2), bar(l.ms)])),
      "</table></div>",
    ].join("");
    return { "text/plain": this.toString(), "text/html": html };
  }
}

// ---------------------------------------------------------------------------------------------- statistics

export interface HypothesisOptions {
  /** Samples drawn from each function (default 20, at least 2). */
  nSamples?: number;
  /** Significance level (default 0.05). */
  alpha?: number;
  /** "two-sided" (default), "greater" (alternative mean higher) or "less". */
  alternative?: "two-sided" | "less" | "greater";
}

/** The outcome of a Welch two-sample t-test of the alternative's samples against the null's. */
export class HypothesisTest implements Displayable {
  constructor(
    /** Welch's t statistic (alternative − null). */
    readonly t: number,
    /** Welch–Satterthwaite degrees of freedom. */
    readonly df: number,
    readonly pValue: number,
    /** p < alpha. */
    readonly reject: boolean,
    readonly alpha: number,
    readonly alternative: "two-sided" | "less" | "greater",
    readonly meanNull: number,
    readonly meanAlt: number,
    /** 1 − alpha confidence interval of meanAlt − meanNull. */
    readonly ci: number[],
    readonly nullSamples: number[],
    readonly altSamples: number[],
    /** The library's name of the test ("Welch two-sample t-test"). */
    readonly method: string,
  ) {}

  toJSON(): object {
    const { t, df, pValue, reject, alpha, alternative, meanNull, meanAlt, ci, nullSamples, altSamples, method } = this;
    return { t, df, pValue, reject, alpha, alternative, meanNull, meanAlt, ci, nullSamples, altSamples, method };
  }

  toString(): string {
    return (
      `${this.method}: t = ${fmt(this.t)}, df = ${fmt(this.df, 2)}, p = ${this.pValue.toExponential(3)} → ${this.reject ? "reject" : "do not reject"} ` +
      `the null at alpha = ${this.alpha} (${this.alternative}; mean null ${fmt(this.meanNull)}, alternative ${fmt(this.meanAlt)}, n = ${this.nullSamples.length} + ${this.altSamples.length})`
    );
  }

  toMimeBundle(): MimeBundle {
    return { "text/plain": this.toString() };
  }
}

function welch(nulls: number[], alts: number[], alpha: number, alternative: "two-sided" | "less" | "greater"): HypothesisTest {
  const check = (xs: number[], which: string) =>
    xs.forEach((x, i) => {
      if (typeof x !== "number" || !Number.isFinite(x)) fail(`testHypothesis: ${which} sample ${i} must be a finite number, got ${show(x)}`);
    });
  check(nulls, "null");
  check(alts, "alternative");
  const spread = (xs: number[]) => Math.max(...xs) - Math.min(...xs);
  if (spread(nulls) === 0 && spread(alts) === 0) fail(`testHypothesis: both samples are constant (null ${nulls[0]}, alternative ${alts[0]}), so the t statistic is undefined; vary the inputs across samples`);
  const r = ttest2(alts, nulls, { alpha, alternative, variance: "unequal" });
  return new HypothesisTest(r.statistic, r.df, r.pValue, r.rejected, alpha, alternative, r.ymean, r.xmean, [...r.ci], nulls, alts, r.method);
}
