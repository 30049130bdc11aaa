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
import type * as tf from "@tensorflow/tfjs";
import { fail, show } from "../errors";
import type { HookedAutoModel } from "../model/hooked-model";
import { AttentionTools } from "./attention";
import { cellSourceOf } from "./cell-source";
import { checkCount, checkOptions } from "./common";
import { ExperimentLog, type ExperimentRecord, MAX_NAME_LENGTH } from "./experiment-log";
import { type ExperimentVersion, ExperimentVersionDetail, ExperimentVersionList, ExperimentRecordList } from "./experiment-views";
import { HypothesisTest, type HypothesisOptions, welch } from "./hypothesis";
import { ModelProfile, TimingRecorder } from "./profile";
import { type TensorRef, type TensorSink, toRecordValue } from "./record-value";

export type { ExperimentRecord } from "./experiment-log";
export type { ExperimentVersion } from "./experiment-views";

/** The tools a bench hands to experiment functions; subclasses add theirs with `registerTool`. */
export interface BenchTools {
  attention: AttentionTools;
  [name: string]: unknown;
}

/** Source text of a wrapper's underlying function, so logged versions hash what the user wrote. */
const SOURCE = Symbol("arrakis.source");
type WithSource = { [SOURCE]?: string };

export class BaseInterpretabilityBench {
  readonly tools: BenchTools;
  /** Absolute folder of the experiment logs (resolved once, so a later chdir does not move it). */
  readonly saveDir: string;
  private readonly log: ExperimentLog;

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
    this.log = new ExperimentLog(this.saveDir);
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
   * args, result or error, start time, duration, source and a version hash of the source. Numeric values
   * above 1,024 elements (logits, activations) are written to a safetensors file beside the log and the line
   * refers to them (`loadTensor(ref)` reads one back). The line is written with one append after the call
   * finishes (or throws, in which case the error is recorded and rethrown), so a crash never damages earlier
   * lines. Name defaults to the function's name.
   *
   * The name and the folder are checked here, before anything runs. If writing fails later (disk full,
   * folder made read-only), the call still returns its result and a warning on stderr says the run was not
   * logged and why: the result of a long computation matters more than its log line, and an exception would
   * leave it reachable only through the error object.
   *
   *     const run = exp.logExperiment(function sweepLoss(text: string) { return attention.headAblationSweep(text).values; });
   *     run("the cat sat on the mat");
   */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  logExperiment<F extends (...args: any[]) => any>(fn: F, name?: string): F {
    if (typeof fn !== "function") fail(`logExperiment expects a function, got ${show(fn)}`);
    const experiment = checkExperimentName(name ?? fn.name, fn);
    this.checkWritable(experiment);
    const source = sourceOf(fn);
    const version = versionOf(source);
    const write = (record: ExperimentRecord, sink: TensorSink) => {
      try {
        this.log.append(record, sink);
      } catch (e) {
        const err = e as NodeJS.ErrnoException;
        const what = record.status === "ok" ? "the result is returned but this run is NOT in the log" : "the error is rethrown but this run is NOT in the log";
        console.warn(`logExperiment: could not write run ${record.startedAt} of ${show(experiment)} to ${this.log.file(experiment)} (${err.code ?? err.name}: ${err.message}); ${what}`);
      }
    };
    const wrapped = (...args: unknown[]): unknown => {
      const startedAt = new Date().toISOString();
      const t0 = performance.now();
      const record = (extra: Partial<ExperimentRecord>, value?: unknown) => {
        const sink = this.log.sink(experiment, version);
        const durationMs = performance.now() - t0;
        const base = { experiment, version, startedAt, durationMs, args: args.map((a, i) => toRecordValue(a, sink, `args.${i}`)), source };
        const result = "result" in extra ? { result: toRecordValue(value, sink, "result") } : {};
        write({ ...base, ...extra, ...result } as ExperimentRecord, sink);
      };
      const failed = (e: unknown) => {
        record({ status: "error", error: errorRecord(e) });
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
            record({ status: "ok", result: undefined }, value);
            return value;
          },
          (e) => {
            throw failed(e);
          },
        );
      }
      record({ status: "ok", result: undefined }, out);
      return out;
    };
    Object.defineProperty(wrapped, "name", { value: fn.name });
    (wrapped as WithSource)[SOURCE] = source;
    return wrapped as F;
  }

  /** Names of the experiments logged in `saveDir`. */
  listExperiments(): string[] {
    return this.log.names();
  }

  /**
   * Every record of an experiment, oldest first, read from disk line by line (a log of any size). A line
   * that does not parse (only possible when a process was killed in the middle of writing it) is skipped.
   */
  records(name: string): ExperimentRecordList {
    const out: ExperimentRecord[] = [];
    this.log.forEach(this.existing(name), (r) => out.push(r));
    return ExperimentRecordList.create(name, out);
  }

  /** The versions (distinct sources) of an experiment, in order of first use, with run counts. */
  listVersions(name: string): ExperimentVersionList {
    const byVersion = new Map<string, ExperimentVersion>();
    this.log.forEach(this.existing(name), (r) => {
      const v = byVersion.get(r.version) ?? { version: r.version, runs: 0, errors: 0, firstRun: r.startedAt, lastRun: r.startedAt, source: r.source };
      v.runs++;
      if (r.status === "error") v.errors++;
      v.lastRun = r.startedAt;
      byVersion.set(r.version, v);
    });
    return ExperimentVersionList.create(name, [...byVersion.values()]);
  }

  /** One version of an experiment (a hash or a unique prefix of ≥ 4 digits): its source and its runs. */
  getVersion(name: string, hash: string): ExperimentVersionDetail {
    if (typeof hash !== "string" || hash.length < 4) fail(`version must be a hash or a prefix of at least 4 hex digits, got ${show(hash)}`);
    const prefix = hash.toLowerCase();
    // One pass over the log: the runs of every version the prefix matches, and the names of all versions.
    const all = new Set<string>();
    const hits = new Map<string, ExperimentRecord[]>();
    this.log.forEach(this.existing(name), (r) => {
      all.add(r.version);
      if (!r.version.startsWith(prefix)) return;
      const runs = hits.get(r.version) ?? [];
      runs.push(r);
      hits.set(r.version, runs);
    });
    if (hits.size === 0) fail(`experiment ${show(name)} has no version ${show(hash)}; versions: ${[...all].join(", ")}`);
    if (hits.size > 1) fail(`version prefix ${show(hash)} of ${show(name)} is ambiguous: ${[...hits.keys()].join(", ")}`);
    const [version, runs] = [...hits][0];
    return new ExperimentVersionDetail(name, version, runs[0].source, ExperimentRecordList.create(`${name} version ${version}`, runs));
  }

  /**
   * A large logged value (a `{ $tensor: … }` reference in a record) as a tensor owned by the caller;
   * `{ as: "array" }` gives nested arrays instead, exactly as logged.
   */
  loadTensor(ref: TensorRef): tf.Tensor;
  loadTensor(ref: TensorRef, opts: { as: "array" }): unknown[];
  loadTensor(ref: TensorRef, opts: { as?: "tensor" | "array" } = {}): tf.Tensor | unknown[] {
    if (!isRef(ref)) fail(`loadTensor expects a { $tensor: { file, key, dtype, shape } } reference from a record, got ${show(ref)}`);
    return opts.as === "array" ? this.log.readArray(ref) : this.log.readTensor(ref);
  }

  /** The checked name of a logged experiment (its log file exists). */
  private existing(name: string): string {
    checkExperimentName(name);
    if (!fs.existsSync(this.log.file(name))) {
      const known = this.listExperiments();
      fail(`no experiment ${show(name)} in ${this.saveDir}; logged experiments: ${known.length ? known.join(", ") : "none yet"}`);
    }
    return name;
  }

  /** Fails now, before any experiment runs, when the log folder cannot be written. */
  private checkWritable(experiment: string): void {
    try {
      fs.mkdirSync(this.saveDir, { recursive: true });
      fs.accessSync(this.saveDir, fs.constants.W_OK);
      const file = this.log.file(experiment);
      if (fs.existsSync(file)) fs.accessSync(file, fs.constants.W_OK);
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      fail(`logExperiment: the experiment log folder ${show(this.saveDir)} cannot be written (${err.code ?? err.name}: ${err.message}); choose another folder, e.g. new MIExperiment(model, "/tmp/experiments")`);
    }
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

/** What a wrapper stands for (useTools), else the function's TypeScript from the notebook cell, else its text. */
function sourceOf(fn: unknown): string {
  return (fn as WithSource)[SOURCE] ?? cellSourceOf(fn as (...args: never[]) => unknown) ?? String(fn);
}

function versionOf(source: string): string {
  return createHash("sha256").update(source).digest("hex").slice(0, 12);
}

function checkExperimentName(name: unknown, fn?: unknown): string {
  if (name === "" && fn !== undefined) fail(`logExperiment: this function has no name (an anonymous arrow?); pass one: logExperiment(fn, "my_experiment")`);
  if (typeof name !== "string" || !/^[A-Za-z0-9_][\w.-]*$/.test(name)) fail(`experiment name must be letters, digits, "_", "-" or "." (it names a file), got ${show(name)}`);
  if (name.length > MAX_NAME_LENGTH) fail(`experiment name must be at most ${MAX_NAME_LENGTH} characters (it names a file), got ${name.length}: ${show(name.slice(0, 40) + "…")}`);
  return name;
}

function isRef(x: unknown): x is TensorRef {
  const t = (x as TensorRef | null)?.$tensor;
  return typeof t === "object" && t !== null && typeof t.file === "string" && typeof t.key === "string";
}

function errorRecord(e: unknown): { name: string; message: string; stack?: string } {
  if (e instanceof Error) return { name: e.name, message: e.message, stack: e.stack };
  return { name: typeof e, message: String(toRecordValue(e)) };
}
