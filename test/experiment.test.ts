/**
 * The experiment bench (src/tools/experiment.ts): useTools, the append-only experiment log (including a
 * child process killed in the middle of a run), versions read back by a fresh bench, the profiler's time
 * partition and activation sizes, and Welch's t-test against R's numbers for Student's sleep data.
 * The log's storage (side files, streaming reads, write failures, summaries): experiment-log.test.ts.
 */
import { test, before, after } from "node:test";
import * as assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { HookedAutoModel, initBackend } from "../src";
import { ArrakisError } from "../src/errors";
import { AttentionTools, BaseInterpretabilityBench, MIExperiment, type ExperimentRecord } from "../src/tools";
import { hfFixture, repoRoot } from "./helpers";

let model: HookedAutoModel;
let scratch: string;
const ids = [[287, 376, 25, 102, 49, 202, 376, 169, 42, 171, 273, 367, 214, 500, 94, 449]];

before(async () => {
  await initBackend();
  model = await HookedAutoModel.fromPretrained(hfFixture("gpt2"));
  scratch = fs.mkdtempSync(path.join(os.tmpdir(), "arrakis-bench-"));
});

after(() => {
  model?.dispose();
  if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
});

const throwsArrakis = (fn: () => unknown, pattern: RegExp) => assert.throws(fn, (e: unknown) => e instanceof ArrakisError && pattern.test(e.message));
const freshDir = (name: string) => path.join(scratch, name);
const lines = (file: string) => fs.readFileSync(file, "utf8").split("\n").filter((l) => l.length);

// ------------------------------------------------------------------------------------------ useTools

test("useTools passes the named tools after the caller's arguments; unknown names list the known ones", () => {
  const exp = new MIExperiment(model, freshDir("use-tools"));
  assert.ok(exp.tools.attention instanceof AttentionTools);
  const f = exp.useTools("attention", (text: number[], layer: number, attention: AttentionTools) => {
    assert.equal(attention, exp.tools.attention);
    return attention.attentionPatterns(text, layer).heads.length;
  });
  assert.equal(f(ids[0], 1), 4);

  class MyBench extends BaseInterpretabilityBench {
    constructor(m: HookedAutoModel) {
      super(m, freshDir("my-bench"));
      this.registerTool("counter", { n: 41 });
    }
  }
  const mine = new MyBench(model);
  const g = mine.useTools("attention", "counter", (x: number, attention: AttentionTools, counter: { n: number }) => x + counter.n + (attention ? 0 : 100));
  assert.equal(g(1), 42);
  throwsArrakis(() => exp.useTools("circuits", () => 1), /unknown tool "circuits"; known tools: attention/);
  throwsArrakis(() => mine.useTools("attention", "nope", () => 1), /unknown tool "nope"; known tools: attention, counter/);
  throwsArrakis(() => exp.useTools("attention" as never, "not a function" as never), /expects tool names and then a function/);
  throwsArrakis(() => (exp.useTools as (...a: unknown[]) => unknown)(() => 1), /at least one tool name/);
});

// ------------------------------------------------------------------------------------------ logExperiment

test("logExperiment appends one JSON line per call: args, result, times, source and version; tensors as arrays", async () => {
  const dir = freshDir("log");
  const exp = new MIExperiment(model, dir);
  const losses = exp.logExperiment(function losses(seq: number[][], scale: number) {
    return { loss: model.loss(seq) * scale, logits: tf.tidy(() => tf.slice(model.forward(seq), [0, 0, 0], [1, 2, 3])) };
  });
  const out = losses(ids, 2);
  assert.ok(out.logits instanceof tf.Tensor, "the caller still gets the real result");
  const file = path.join(dir, "losses.jsonl");
  assert.equal(lines(file).length, 1);
  const rec = JSON.parse(lines(file)[0]) as ExperimentRecord;
  assert.equal(rec.experiment, "losses");
  assert.equal(rec.status, "ok");
  assert.match(rec.version, /^[0-9a-f]{12}$/);
  assert.deepEqual(rec.args, [ids, 2]);
  assert.equal((rec.result as { loss: number }).loss, out.loss);
  assert.deepEqual((rec.result as { logits: unknown }).logits, out.logits.arraySync(), "tensor stored as nested arrays");
  assert.match(rec.source, /model\.loss\(seq\) ?\* ?scale/, "the source as the runtime compiled it");
  assert.ok(rec.durationMs > 0);
  assert.ok(Math.abs(Date.parse(rec.startedAt) - Date.now()) < 60_000);
  out.logits.dispose();

  const later = await exp.logExperiment(async function losses(seq: number[][]) {
    await new Promise((r) => setTimeout(r, 5));
    return model.loss(seq);
  })(ids);
  assert.equal(typeof later, "number");
  const recs = exp.records("losses");
  assert.equal(recs.length, 2);
  assert.ok(recs[1].durationMs >= 4, "async duration covers the awaited work");
  assert.notEqual(recs[0].version, recs[1].version, "a changed source is a new version");
});

test("placeholders for what JSON cannot hold; tool results serialise through toJSON", () => {
  const exp = new MIExperiment(model, freshDir("placeholders"));
  const circular: Record<string, unknown> = { a: 1 };
  circular.self = circular;
  const disposed = tf.tensor1d([1, 2]);
  disposed.dispose();
  const f = exp.logExperiment(function odd() {
    return {
      fn: Math.max,
      nan: NaN,
      inf: -Infinity,
      big: 10n,
      model,
      circular,
      disposed,
      map: new Map([["k", new Float32Array([0.5])]]),
      set: new Set([1, 2]),
      date: new Date(0),
      pattern: new AttentionTools(model).attentionPatterns(ids, 0, 1),
      undef: undefined,
    };
  });
  const result = f();
  const rec = exp.records("odd")[0].result as Record<string, unknown>;
  assert.equal(rec.fn, "[function max]");
  assert.equal(rec.nan, "[number NaN]");
  assert.equal(rec.inf, "[number -Infinity]");
  assert.equal(rec.big, "[bigint 10]");
  assert.match(String(rec.model), /^\[HookedAutoModel HookedAutoModel\(gpt2: 2 layers/);
  assert.deepEqual(rec.circular, { a: 1, self: "[circular]" });
  assert.equal(rec.disposed, "[disposed tensor float32 [2]]");
  assert.deepEqual(rec.map, { k: [0.5] });
  assert.deepEqual(rec.set, [1, 2]);
  assert.equal(rec.date, "1970-01-01T00:00:00.000Z");
  assert.deepEqual((rec.pattern as { values: number[][] }).values, result.pattern.values);
  assert.ok(!("undef" in rec));
});

test("a throwing run is recorded with its error and rethrown; earlier records stay; a new bench instance reads them all", async () => {
  const dir = freshDir("errors");
  const exp = new MIExperiment(model, dir);
  const risky = exp.logExperiment((x: number) => {
    if (x < 0) throw new RangeError(`negative ${x}`);
    return Math.sqrt(x);
  }, "risky");
  assert.equal(risky(4), 2);
  assert.throws(() => risky(-1), /negative -1/);
  const asyncRisky = exp.logExperiment(async () => {
    throw new Error("async failure");
  }, "risky");
  await assert.rejects(asyncRisky(), /async failure/);
  assert.equal(risky(9), 3);

  const restarted = new MIExperiment(model, dir); // as after a kernel restart
  const recs = restarted.records("risky");
  assert.deepEqual(recs.map((r) => r.status), ["ok", "error", "error", "ok"]);
  assert.deepEqual(recs[1].error && { name: recs[1].error.name, message: recs[1].error.message }, { name: "RangeError", message: "negative -1" });
  assert.ok(!("result" in recs[1]));
  const versions = restarted.listVersions("risky");
  assert.equal(versions.length, 2);
  assert.deepEqual(versions.map((v) => [v.runs, v.errors]), [[3, 1], [1, 1]]);
  const v0 = restarted.getVersion("risky", versions[0].version.slice(0, 6));
  assert.equal(v0.version, versions[0].version);
  assert.match(v0.source, /Math\.sqrt\(x\)/);
  assert.equal(v0.runs.length, 3);
  assert.deepEqual(restarted.listExperiments(), ["risky"]);
  throwsArrakis(() => restarted.getVersion("risky", "ffffffff"), /has no version "ffffffff"; versions: /);
  throwsArrakis(() => restarted.getVersion("risky", "ab"), /at least 4 hex digits/);
  throwsArrakis(() => restarted.records("nothing"), /no experiment "nothing" in .*; logged experiments: risky/);
  throwsArrakis(() => exp.logExperiment(() => 1), /has no name .* pass one/);
  throwsArrakis(() => exp.logExperiment(() => 1, "../escape"), /experiment name must be letters/);
});

test("useTools-wrapped functions are versioned by the wrapped function's own source", () => {
  const exp = new MIExperiment(model, freshDir("wrapped"));
  const a = exp.logExperiment(exp.useTools("attention", (l: number, attention: AttentionTools) => attention.model.cfg.nHeads + l), "wrapped");
  const b = exp.logExperiment(exp.useTools("attention", (l: number, attention: AttentionTools) => attention.model.cfg.nLayers + l), "wrapped");
  assert.equal(a(1), 5);
  assert.equal(b(1), 3);
  const versions = exp.listVersions("wrapped");
  assert.equal(versions.length, 2);
  assert.match(versions[0].source, /nHeads/);
  assert.match(versions[1].source, /nLayers/);
});

test("a killed process leaves earlier lines intact; a torn last line is skipped and the next record starts on its own line", async () => {
  const dir = freshDir("killed");
  const script = path.join(scratch, "killed-child.ts");
  fs.writeFileSync(
    script,
    `import { HookedAutoModel } from ${JSON.stringify(path.join(repoRoot, "src"))};
import { MIExperiment } from ${JSON.stringify(path.join(repoRoot, "src", "tools"))};
(async () => {
  const model = await HookedAutoModel.fromPretrained(${JSON.stringify(hfFixture("gpt2"))});
  const exp = new MIExperiment(model, ${JSON.stringify(dir)});
  const step = exp.logExperiment(async function step(i: number) {
    if (i === 3) {
      process.stdout.write("running 3\\n");
      await new Promise((r) => setTimeout(r, 60_000)); // killed in here
    }
    return { i, loss: model.loss([[1, 2, 3, 4]]) };
  });
  for (let i = 0; i < 5; i++) await step(i);
})();
`,
  );
  const child = spawn(process.execPath, ["--import", "tsx", script], { cwd: repoRoot, stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d) => (stderr += d));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`child never reached step 3; stderr: ${stderr}`)), 60_000);
    child.stdout.on("data", (d) => {
      if (String(d).includes("running 3")) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.on("exit", (code) => reject(new Error(`child exited early with ${code}: ${stderr}`)));
  });
  child.removeAllListeners("exit");
  const exited = new Promise((r) => child.on("exit", (_code, signal) => r(signal)));
  child.kill("SIGKILL");
  assert.equal(await exited, "SIGKILL");

  const file = path.join(dir, "step.jsonl");
  const text = fs.readFileSync(file, "utf8");
  assert.ok(text.endsWith("\n"));
  const recs = text.split("\n").filter(Boolean).map((l) => JSON.parse(l) as ExperimentRecord);
  assert.deepEqual(recs.map((r) => (r.result as { i: number }).i), [0, 1, 2], "the three finished runs, intact");

  // A process killed in the middle of a write leaves a torn line; simulate one.
  fs.appendFileSync(file, text.split("\n")[0].slice(0, 40));
  const exp = new MIExperiment(model, dir);
  assert.equal(exp.records("step").length, 3, "the torn line is skipped");
  const step = exp.logExperiment(function step(i: number) {
    return { i };
  });
  step(7);
  const after = exp.records("step");
  assert.deepEqual(after.map((r) => (r.result as { i: number }).i), [0, 1, 2, 7]);
  assert.equal(lines(file).length, 5, "3 good + 1 torn + 1 new line");
});

// ------------------------------------------------------------------------------------------ profileModel

test("profileModel: per-layer and per-component times that partition the run, activation sizes, hooks removed", async () => {
  const exp = new MIExperiment(model, freshDir("profile"));
  model.forward(ids).dispose(); // warm up
  const base = tf.memory().numTensors;
  const prof = exp.profileModel(() => {
    const logits = model.forward([ids[0], ids[0]]);
    const shape = logits.shape;
    logits.dispose();
    return shape;
  });
  assert.equal(model.hookCount, 0);
  assert.equal(tf.memory().numTensors, base);
  assert.deepEqual(prof.result, [2, 16, 512]);
  assert.equal(prof.passes, 1);
  assert.ok(Math.abs(prof.accountedMs - prof.totalMs) < 1e-6 * Math.max(1, prof.totalMs), `components ${prof.accountedMs} vs total ${prof.totalMs}`);
  const layerSum = prof.byLayer.reduce((a, l) => a + l.ms, 0);
  const inLayers = prof.byComponent.attention + prof.byComponent.mlp + prof.byComponent.residual + prof.byComponent.norm;
  assert.ok(layerSum <= inLayers + 1e-9, "layer figures are part of the component figures (the final norm is outside the layers)");
  for (const l of prof.byLayer) {
    assert.ok(l.components.attention > 0 && l.components.mlp > 0 && l.components.norm > 0);
    assert.ok(Math.abs(l.ms - (l.components.attention + l.components.mlp + l.components.norm + l.components.residual)) < 1e-9);
  }
  const pattern = prof.activations.find((a) => a.name === "blocks.0.attn.hook_pattern")!;
  assert.deepEqual(pattern.shape, [2, 4, 16, 16]);
  assert.equal(pattern.bytes, 2 * 4 * 16 * 16 * 4);
  assert.equal(prof.activations.length, model.hookNames.length);
  assert.match(prof.toString(), /ModelProfile\(.* ms, 1 forward pass, backend/);
  assert.ok(String(prof.toMimeBundle()["text/html"]).includes("<table>"));

  const two = await exp.profileModel(async () => {
    model.forward(ids).dispose();
    await new Promise((r) => setImmediate(r));
    model.forward(ids).dispose();
  });
  assert.equal(two.passes, 2);
  assert.ok(two.byComponent.unembed > 0);
  assert.throws(() => exp.profileModel(() => {
    throw new Error("inside profile");
  }), /inside profile/);
  assert.equal(model.hookCount, 0, "hooks removed after a throw");
  throwsArrakis(() => exp.profileModel(() => 1 + 1), /ran no forward pass/);
  assert.equal(model.hookCount, 0);
});

// ------------------------------------------------------------------------------------------ testHypothesis

// Student's sleep data; R: t.test(x, y) → t = -1.8608, df = 17.776, p-value = 0.07939 (Welch)
const sleepX = [0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0];
const sleepY = [1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4];

test("testHypothesis is Welch's t-test (stdlib) and matches R on the sleep data; async samplers give a promise", async () => {
  const exp = new MIExperiment(model, freshDir("stats"));
  const r = exp.testHypothesis((i) => sleepY[i], (i) => sleepX[i], { nSamples: 10 });
  assert.ok(Math.abs(r.t - -1.8608) < 1e-4, `t ${r.t}`);
  assert.ok(Math.abs(r.df - 17.776) < 1e-3, `df ${r.df}`);
  assert.ok(Math.abs(r.pValue - 0.07939) < 1e-4, `p ${r.pValue}`);
  assert.equal(r.reject, false);
  assert.equal(r.method, "Welch two-sample t-test");
  assert.ok(Math.abs(r.meanAlt - 0.75) < 1e-12 && Math.abs(r.meanNull - 2.33) < 1e-12);
  assert.equal(exp.testHypothesis((i) => sleepY[i], (i) => sleepX[i], { nSamples: 10, alpha: 0.1 }).reject, true);
  const less = exp.testHypothesis((i) => sleepY[i], (i) => sleepX[i], { nSamples: 10, alternative: "less" });
  assert.ok(Math.abs(less.pValue - 0.0397) < 1e-4);
  const asyncR = await exp.testHypothesis(async (i) => sleepY[i], (i) => sleepX[i], { nSamples: 10 });
  assert.equal(asyncR.t, r.t);
  assert.match(r.toString(), /Welch two-sample t-test: t = -1\.861, df = 17\.78, p = 7\.939e-2 → do not reject/);
  assert.deepEqual(JSON.parse(JSON.stringify(r)).altSamples, sleepX);
  throwsArrakis(() => exp.testHypothesis(() => 1, () => 2, { nSamples: 1 }), /nSamples must be an integer ≥ 2/);
  throwsArrakis(() => exp.testHypothesis(() => 1, () => 2, { alpha: 1 }), /alpha must be a number in \(0, 1\)/);
  throwsArrakis(() => exp.testHypothesis(() => 1, () => 2, { nSamples: 3 }), /both samples are constant/);
  throwsArrakis(() => exp.testHypothesis((i) => i, () => NaN, { nSamples: 3 }), /alternative sample 0 must be a finite number, got NaN/);
  throwsArrakis(() => exp.testHypothesis((i) => i, (i) => i, { samples: 3 } as never), /unknown option "samples"/);
});

test("testHypothesis on the model: ablating L0H1 changes the loss of random sequences", () => {
  const exp = new MIExperiment(model, freshDir("stats-model"));
  const seq = (i: number) => [Array.from({ length: 12 }, (_, t) => (i * 131 + t * 71 + 7) % 512)];
  const base = tf.memory().numTensors;
  const r = exp.testHypothesis(
    (i) => model.loss(seq(i)),
    (i) => exp.tools.attention.withAblatedHead(0, 1, () => model.loss(seq(i))),
    { nSamples: 8 },
  );
  assert.equal(tf.memory().numTensors, base);
  assert.equal(model.hookCount, 0);
  assert.ok(Number.isFinite(r.t) && Number.isFinite(r.pValue) && r.df > 0);
  assert.equal(r.nullSamples.length, 8);
});
