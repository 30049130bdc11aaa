#!/usr/bin/env node
/**
 * `npm test`: runs every test/*.test.ts with Node's test runner, one file at a time, with the system temp folder
 * redirected to a fresh folder of this run. Afterwards the folder is checked and removed: a test that leaves an
 * `arrakis-*` folder behind fails the run (each test must clean up what it made, also when it fails), and nothing
 * a test, a kernel, Chromium or Jupyter writes to the temp folder can pile up in the user's /tmp.
 *
 * The first pass runs on the automatically chosen engine (onnxruntime when it loads); without file arguments the
 * parity suite then runs a second time on the TF.js engine (ARRAKIS_ENGINE=tfjs), so both engines are held to the
 * same references.
 *
 *   node scripts/run-tests.mjs [test/some.test.ts ...]   (default: every test/*.test.ts, then the parity suite on TF.js)
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..");
const files = process.argv.slice(2).length
  ? process.argv.slice(2)
  : fs.readdirSync(path.join(root, "test")).filter((f) => f.endsWith(".test.ts")).sort().map((f) => path.join("test", f));

const runTmp = fs.mkdtempSync(path.join(os.tmpdir(), "arrakis-test-run-"));
const env = { ...process.env, TMPDIR: runTmp, TEMP: runTmp, TMP: runTmp };
const testRun = (list, extra = {}) => spawnSync(process.execPath, ["--test", "--test-concurrency=1", "--import", "tsx", ...list], { cwd: root, env: { ...env, ...extra }, stdio: "inherit" });
let run = testRun(files);
const PARITY_SUITE = ["parity", "families", "model", "attention-tools", "detectors"].map((f) => path.join("test", `${f}.test.ts`));
if (!process.argv.slice(2).length && run.status === 0 && process.env.ARRAKIS_ENGINE !== "tfjs") {
  console.log("\n# the parity suite again, on the TF.js engine (ARRAKIS_ENGINE=tfjs)");
  run = testRun(PARITY_SUITE, { ARRAKIS_ENGINE: "tfjs" });
}

const left = fs.readdirSync(runTmp);
const ours = left.filter((name) => name.startsWith("arrakis-"));
fs.rmSync(runTmp, { recursive: true, force: true });
if (ours.length) {
  console.error(`\ntests left ${ours.length} temp folder(s) behind: ${ours.join(", ")} (each test must remove what it creates)`);
}
if (left.length > ours.length) console.log(`(removed ${left.length - ours.length} temp entr${left.length - ours.length === 1 ? "y" : "ies"} left by child programs)`);
const status = run.status ?? 1;
process.exit(status !== 0 ? status : ours.length ? 1 : 0);
