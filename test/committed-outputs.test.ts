/**
 * Shared notebooks must not carry the author's machine: no absolute folder of the checkout (or of any home,
 * temp or work folder) in any committed output, and the embedded model names itself instead of its path.
 */
import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { HookedAutoModel, embeddedModelDir } from "../src";
import { repoRoot } from "./helpers";

/** Absolute folders that only exist on someone's machine (POSIX, macOS and Windows user folders). */
const MACHINE_PATH = /(?<![\w.:/])(?:\/(?:work|home|tmp|root|Users|var\/folders|private|mnt|srv|opt)\/[\w.+@-]+|[A-Z]:\\Users\\)/g;

interface Output {
  output_type: string;
  text?: string | string[];
  data?: Record<string, unknown>;
  traceback?: string[];
  evalue?: string;
}

/** Every text an output carries (streams, each MIME value that is text, error messages). */
function outputTexts(o: Output): string[] {
  const join = (v: unknown) => (Array.isArray(v) ? v.join("") : typeof v === "string" ? v : JSON.stringify(v));
  return [o.text, o.evalue, o.traceback, ...Object.values(o.data ?? {})].filter((v) => v !== undefined).map(join);
}

test("committed notebook outputs hold no machine paths", () => {
  const dir = path.join(repoRoot, "notebooks");
  const notebooks = fs.readdirSync(dir).filter((f) => f.endsWith(".ipynb"));
  assert.ok(notebooks.length >= 2, `expected the committed notebooks in ${dir}`);
  const found: string[] = [];
  for (const file of notebooks) {
    const nb = JSON.parse(fs.readFileSync(path.join(dir, file), "utf8")) as { cells: { outputs?: Output[] }[] };
    nb.cells.forEach((cell, i) => {
      for (const o of cell.outputs ?? []) {
        for (const t of outputTexts(o)) {
          for (const m of t.matchAll(MACHINE_PATH)) found.push(`${file} cell ${i}: ${t.slice(Math.max(0, m.index! - 40), m.index! + 60)}`);
          if (t.includes(repoRoot)) found.push(`${file} cell ${i}: the checkout's folder ${repoRoot}`);
        }
      }
    });
  }
  assert.deepEqual(found, []);
});

test("the machine-path pattern catches the paths it is meant to", () => {
  const hits = (s: string) => [...s.matchAll(MACHINE_PATH)].map((m) => m[0]);
  assert.deepEqual(hits("vocab 318; /work/main/src/assets/induction-2l)"), ["/work/main"]);
  assert.deepEqual(hits("at /home/ana/x.ts:3 and C:\\Users\\ana"), ["/home/ana", "C:\\Users\\"]);
  // URLs and relative paths are fine.
  assert.deepEqual(hits("https://example.org/tmp/x and ./tmp/y and src/home/z"), []);
});

test("the embedded model prints as itself, not as its folder", async () => {
  const model = await HookedAutoModel.fromPretrained();
  const again = await HookedAutoModel.fromPretrained(embeddedModelDir());
  try {
    for (const m of [model, again]) {
      assert.match(String(m), /; the embedded induction-2l model[;)]/);
      assert.equal(m.source, "the embedded induction-2l model");
      assert.ok(!String(m).includes(repoRoot), String(m));
    }
  } finally {
    model.dispose();
    again.dispose();
  }
});
