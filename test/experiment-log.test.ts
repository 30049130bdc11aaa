/**
 * The experiment log's storage (src/tools/experiment-log.ts, record-value.ts, experiment-views.ts): large
 * values in a safetensors side file referenced from the line, reading that streams line by line (a log past
 * 512 MiB still reads), write failures that never lose a result, and readable summaries.
 */
import { test, before, after } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { inspect } from "node:util";
import * as tf from "@tensorflow/tfjs";
import { HookedAutoModel, initBackend } from "../src";
import { ArrakisError } from "../src/errors";
import { MIExperiment, type ExperimentRecord, type TensorRef } from "../src/tools";
import { hfFixture, scratchDir } from "./helpers";

let model: HookedAutoModel;
let scratch: string;
let count = 0;
const ids = [[287, 376, 25, 102, 49, 202, 376, 169, 42, 171, 273, 367, 214, 500, 94, 449]];

before(async () => {
  await initBackend();
  model = await HookedAutoModel.fromPretrained(hfFixture("gpt2"));
  scratch = scratchDir("arrakis-explog-");
});

after(() => {
  model?.dispose();
});

const fresh = () => path.join(scratch, `d${count++}`);
const lines = (file: string) => fs.readFileSync(file, "utf8").split("\n").filter((l) => l.length);

/** Runs fn with console.warn captured. */
function warnings<R>(fn: () => R): { value: R; warned: string[] } {
  const warned: string[] = [];
  const original = console.warn;
  console.warn = (...a: unknown[]) => void warned.push(a.join(" "));
  try {
    return { value: fn(), warned };
  } finally {
    console.warn = original;
  }
}

test("large tensors and number arrays go to a safetensors side file; the line holds a reference; values read back exactly", () => {
  const dir = fresh();
  const exp = new MIExperiment(model, dir);
  const probs = Array.from({ length: 40 }, (_, i) => Array.from({ length: 40 }, (_, j) => (i * 40 + j) / 7)); // 1,600 float64 values
  probs[3][5] = NaN;
  const run = exp.logExperiment(function logits(seq: number[][]) {
    return { logits: model.forward(seq), small: tf.tensor1d([1, 2, 3]), probs, mask: tf.ones([2, 1000], "bool") };
  });
  const out = run(ids);
  const expected = out.logits.arraySync() as number[][][];
  const line = lines(path.join(dir, "logits.jsonl"))[0];
  assert.ok(line.length < 4000, `the line stays small (${line.length} characters; the logits alone are 8,192 numbers)`);
  const rec = exp.records("logits")[0];
  const result = rec.result as { logits: TensorRef; small: number[]; probs: TensorRef; mask: TensorRef };
  assert.deepEqual(result.small, [1, 2, 3], "small tensors stay inline as arrays");
  assert.deepEqual(result.logits.$tensor.shape, [1, 16, 512]);
  assert.equal(result.logits.$tensor.dtype, "float32");
  assert.match(result.logits.$tensor.file, /^logits\.tensors\/.*\.safetensors$/);
  assert.ok(fs.existsSync(path.join(dir, result.logits.$tensor.file)));
  const base = tf.memory().numTensors;
  const back = exp.loadTensor(result.logits);
  assert.deepEqual(back.arraySync(), expected);
  back.dispose();
  assert.equal(tf.memory().numTensors, base);
  assert.deepEqual(exp.loadTensor(result.logits, { as: "array" }), expected);
  const probsBack = exp.loadTensor(result.probs, { as: "array" }) as number[][];
  assert.ok(Number.isNaN(probsBack[3][5]));
  probsBack[3][5] = probs[3][5] = 0;
  assert.deepEqual(probsBack, probs, "float64 values round-trip exactly");
  assert.deepEqual(exp.loadTensor(result.mask, { as: "array" }), Array.from({ length: 2 }, () => new Array(1000).fill(true)));
  tf.dispose([out.logits, out.small, out.mask]);
  assert.throws(() => exp.loadTensor({ $tensor: { file: "../../etc/x.safetensors", key: "a", dtype: "float32", shape: [1] } }), /points outside the log folder/);
  assert.throws(() => exp.loadTensor({ nope: 1 } as never), /expects a \{ \$tensor/);
});

test("reading streams line by line: a log past 512 MiB still gives records(), listVersions() and getVersion()", () => {
  const dir = fresh();
  const exp = new MIExperiment(model, dir);
  const first = exp.logExperiment(function big(i: number) {
    return { i, text: "é✓🙂".repeat(30_000) }; // multi-byte characters across 1 MiB read chunks
  });
  for (let i = 0; i < 12; i++) first(i);
  const file = path.join(dir, "big.jsonl");
  // 520 MiB that are not one of our records (a sparse hole: no disk space used), then more records. Reading
  // the whole file into one string (what the log did) fails with ERR_STRING_TOO_LONG past 512 MiB.
  const size = fs.statSync(file).size;
  fs.truncateSync(file, size + 520 * 2 ** 20);
  fs.appendFileSync(file, "\n");
  const second = exp.logExperiment(function big(i: number) {
    return { i: i * 10 };
  });
  for (let i = 0; i < 3; i++) second(i);
  assert.ok(fs.statSync(file).size > 512 * 2 ** 20);

  const { value: recs, warned } = warnings(() => exp.records("big"));
  assert.equal(recs.length, 15);
  assert.deepEqual(recs.map((r) => (r.result as { i: number }).i), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0, 10, 20]);
  assert.equal((recs[5].result as { text: string }).text, "é✓🙂".repeat(30_000));
  assert.equal(warned.length, 1);
  assert.match(warned[0], /skipped 1 line\(s\) longer than 256 MiB/);
  const versions = warnings(() => exp.listVersions("big")).value;
  assert.deepEqual(versions.map((v) => v.runs), [12, 3]);
  const v = warnings(() => exp.getVersion("big", versions[1].version)).value;
  assert.equal(v.runs.length, 3);
  assert.match(v.source, /i ?\* ?10/);
});

test("the name and the folder are checked when the function is wrapped, before anything runs", () => {
  const exp = new MIExperiment(model, fresh());
  let ran = 0;
  const long = "x".repeat(300);
  assert.throws(() => exp.logExperiment(() => ran++, long), (e: unknown) => e instanceof ArrakisError && /at most 120 characters .* got 300/.test(e.message));
  const notAFolder = path.join(scratch, `file-${count++}`);
  fs.writeFileSync(notAFolder, "");
  const blocked = new MIExperiment(model, path.join(notAFolder, "experiments"));
  assert.throws(() => blocked.logExperiment(() => ran++, "blocked"), /experiment log folder .* cannot be written \(ENOTDIR: .*\); choose another folder/);
  assert.equal(ran, 0);
});

test("a write failure after a successful run returns the result and warns that the run is not logged", async () => {
  const dir = fresh();
  const exp = new MIExperiment(model, dir);
  const f = exp.logExperiment(function work(x: number) {
    return { x, logits: x > 1 ? model.forward(ids) : null };
  });
  assert.equal(f(1).x, 1);
  const file = path.join(dir, "work.jsonl");

  // a full disk: the log file is /dev/full, where every write fails with ENOSPC
  if (fs.existsSync("/dev/full")) {
    fs.rmSync(file);
    fs.symlinkSync("/dev/full", file);
    const { value, warned } = warnings(() => f(1));
    assert.equal(value.x, 1, "the result is returned");
    assert.equal(warned.length, 1);
    assert.match(warned[0], /could not write run .* of "work" to .*work\.jsonl \(ENOSPC: .*\); the result is returned but this run is NOT in the log/);
    fs.rmSync(file);
  }

  // the log file replaced by a folder (EISDIR), and an async experiment
  fs.mkdirSync(file, { recursive: true });
  const g = exp.logExperiment(async function work(x: number) {
    return x * 2;
  });
  const warned: string[] = [];
  const original = console.warn;
  console.warn = (...a: unknown[]) => void warned.push(a.join(" "));
  try {
    assert.equal(await g(21), 42);
  } finally {
    console.warn = original;
  }
  assert.match(warned.join("\n"), /EISDIR.*NOT in the log/);

  // an experiment that throws while the log cannot be written: its own error is rethrown, not the log's
  const h = exp.logExperiment(function work() {
    throw new RangeError("the experiment's own error");
  });
  const thrown = warnings(() => assert.throws(() => h(), /the experiment's own error/));
  assert.match(thrown.warned[0], /the error is rethrown but this run is NOT in the log/);
  fs.rmSync(file, { recursive: true });

  // the side-file folder cannot be made: no line that would refer to a missing file is written
  fs.writeFileSync(path.join(dir, "work.tensors"), "in the way");
  const big = warnings(() => f(2));
  assert.equal(big.value.x, 2);
  big.value.logits!.dispose();
  assert.match(big.warned[0], /EEXIST|ENOTDIR/);
  assert.equal(fs.existsSync(file), false, "nothing was appended");
  fs.rmSync(path.join(dir, "work.tensors"));
  f(1);
  assert.equal(exp.records("work").length, 1, "logging resumes once the folder is writable");
});

test("listVersions(), records() and getVersion() print as summaries in text and HTML", () => {
  const exp = new MIExperiment(model, fresh());
  const a = exp.logExperiment(function probe(t: number[][]) {
    return model.loss(t);
  });
  const b = exp.logExperiment(function probe(t: number[][]) {
    return { loss: model.loss(t), logits: model.forward(t) };
  });
  a(ids);
  a(ids);
  const out = b(ids);
  out.logits.dispose();
  const versions = exp.listVersions("probe");
  const text = versions.toString();
  assert.match(text, /^probe: 2 versions\nversion\s+runs\s+errors\s+first run\s+last run\s+source/);
  assert.match(text, new RegExp(`${versions[0].version}\\s+2\\s+0\\s+\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d\\s`));
  assert.equal(inspect(versions), text, "the REPL and the kernel's text/plain show the summary");
  const html = String(versions.toMimeBundle()["text/html"]);
  assert.match(html, /<table>.*<details><summary><code>function probe\(t\) ?\{.*<\/code><\/summary><pre[^>]*>function probe\(t\) ?\{\s*return model\.loss\(t\)/s);
  assert.ok(!Array.isArray(versions.map((v) => v) as unknown) || versions.map((v) => v).constructor === Array, "map gives a plain array");

  const recs = exp.records("probe");
  assert.match(recs.toString(), /^probe: 3 runs\nstarted\s+version\s+status\s+time\s+args\s+result/);
  const loss = String(Number(model.loss(ids).toPrecision(4))).replace(".", "\\.");
  assert.match(recs.toString(), new RegExp(`ok\\s+[\\d.]+ ms\\s+\\[\\[\\[287,376,25,102.*\\s+\\{"loss":${loss},"logits":"tensor float32\\[1,16,512\\]"\\}`));
  const detail = exp.getVersion("probe", versions[1].version.slice(0, 6));
  assert.match(detail.toString(), /^probe version [0-9a-f]{12}\nfunction probe\(t\) ?\{[\s\S]*probe version [0-9a-f]{12}: 1 run\n/);
  assert.match(String(detail.toMimeBundle()["text/html"]), /<pre>function probe/);
  const json = JSON.parse(JSON.stringify(detail)) as { runs: ExperimentRecord[] };
  assert.equal(json.runs.length, 1);
});
