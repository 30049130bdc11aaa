/**
 * Shared test helpers: where the Hugging Face fixtures live, small numeric comparisons, the fixture models a
 * tool test runs on, and re-running a test file in a child process.
 */
import * as path from "node:path";
import * as fs from "node:fs";
import * as os from "node:os";
import { spawn } from "node:child_process";
import { after, before } from "node:test";
import * as assert from "node:assert/strict";
import type * as TF from "@tensorflow/tfjs";
import type { HookedAutoModel } from "../src";

/** The repository root (this file lives in test/). */
export const repoRoot = path.resolve(__dirname, "..");

/**
 * The Hugging Face reference checkpoints committed under `test/fixtures/hf/<arch>/` (see the README there: what
 * each tensor is and which transformers version made it). A fresh clone carries them; nothing outside the
 * checkout is read.
 */
export function hfFixture(arch: "gpt2" | "llama"): string {
  const dir = path.join(repoRoot, "test", "fixtures", "hf", arch);
  if (!fs.existsSync(dir)) throw new Error(`fixture folder ${dir} not found (it is committed with the repository: is the checkout complete?)`);
  return dir;
}

/** Max absolute difference of two equally long arrays. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length mismatch: ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/**
 * A fresh folder in the system temp dir, removed when this test process exits (passed or failed), so a
 * test that throws half-way still leaves nothing behind.
 */
export function scratchDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  process.once("exit", () => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** The fixture models of a tool test and its ownership check; the models are set once `before` has run. */
export interface FixtureModels {
  gpt2: HookedAutoModel;
  llama: HookedAutoModel;
  /** Runs fn and checks that it leaves no tensor and no hook on `m` (GPT-2 unless named) behind. */
  noLeaks<R>(fn: () => R, m?: HookedAutoModel): R;
}

/**
 * Registers a `before` that loads the GPT-2 and Llama fixtures (after initBackend) and then runs the file's
 * `setup` on them, and an `after` that disposes them. One hook, because node:test does not wait for one
 * top-level `before` to finish before starting the next. tf.js and src/ load inside the hook, so the kernel
 * and notebook tests, which import this file too, do not pay seconds for them.
 */
export function fixtureModels(setup: (fx: FixtureModels) => void | Promise<void>): FixtureModels {
  let tf: typeof TF;
  const fx: FixtureModels = {
    gpt2: undefined as unknown as HookedAutoModel,
    llama: undefined as unknown as HookedAutoModel,
    noLeaks<R>(fn: () => R, m: HookedAutoModel = fx.gpt2): R {
      const tensors = tf.memory().numTensors;
      const hooks = m.hookCount;
      const r = fn();
      assert.equal(tf.memory().numTensors, tensors, "numTensors back at its baseline");
      assert.equal(m.hookCount, hooks, "no hook left behind");
      return r;
    },
  };
  before(async () => {
    tf = await import("@tensorflow/tfjs");
    const { HookedAutoModel, initBackend } = await import("../src");
    await initBackend();
    fx.gpt2 = await HookedAutoModel.fromPretrained(hfFixture("gpt2"));
    fx.llama = await HookedAutoModel.fromPretrained(hfFixture("llama"));
    await setup(fx);
  });
  after(() => {
    // Setup may have failed before either model existed: teardown must not add a second, misleading error.
    fx.gpt2?.dispose();
    fx.llama?.dispose();
  });
  return fx;
}

/**
 * Runs `file` (the calling test file) again in a child node process with `env` added, for settings a process
 * chooses once (wasm threads, heap size). Resolves with the first line of its stdout that starts with "{",
 * parsed; rejects with the child's error or the tail of its stderr when it reports none.
 */
export function runChildReport<R>(file: string, env: NodeJS.ProcessEnv): Promise<R> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [...process.execArgv.filter((a) => !a.startsWith("--test")), file], {
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    p.stdout.on("data", (d) => (out += d));
    p.stderr.on("data", (d) => (err += d));
    p.on("error", reject);
    p.on("close", (code) => {
      const line = out.split("\n").find((l) => l.startsWith("{"));
      if (!line) return reject(new Error(`child exited with ${code} without a report: ${err.slice(-2000)}`));
      const r = JSON.parse(line) as R & { error?: string };
      if (r.error) return reject(new Error(`child failed: ${r.error}`));
      resolve(r);
    });
  });
}

/** The child's side of `runChildReport`: prints what `build` returns as one JSON line, or `{ error }` with the stack. */
export async function reportToParent(build: () => Promise<object>): Promise<void> {
  let line: string;
  try {
    line = JSON.stringify(await build());
  } catch (e) {
    line = JSON.stringify({ error: String((e as Error)?.stack ?? e) });
  }
  process.stdout.write(line + "\n");
}
