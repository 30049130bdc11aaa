/**
 * The committed notebooks, executed for real: `npm run demo`'s script runs the tour with the Arrakis kernel
 * (installed into a temporary prefix), the other notebooks likewise, and the executed notebooks are compared
 * with the committed ones, which is what readers of the repository see: every code cell runs, no cell errors,
 * each cell produces the same kinds of output (MIME types), and the same numbers in its text (detector scores,
 * losses, top tokens' weights), up to float rounding between engines.
 */
import { test } from "node:test";
import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { repoRoot, scratchDir } from "./helpers";

const DEMO = path.join(repoRoot, "dist", "kernel", "demo.js");

interface Output {
  output_type: string;
  name?: string;
  text?: string | string[];
  data?: Record<string, unknown>;
}
interface Cell {
  cell_type: string;
  source: string | string[];
  execution_count?: number | null;
  outputs?: Output[];
}

function cells(file: string): Cell[] {
  return JSON.parse(fs.readFileSync(file, "utf8")).cells;
}

/** What kind of output a cell made: output types with their MIME keys, progress displays left out. */
function kinds(cell: Cell): string[] {
  return (cell.outputs ?? [])
    .filter((o) => !String(o.data?.["text/plain"] ?? "").includes("head ablation sweep ("))
    .map((o) => `${o.output_type}${o.name ? `:${o.name}` : ""}${o.data ? `[${Object.keys(o.data).sort().join(",")}]` : ""}`);
}

const text = (o: Output): string => [o.text ?? "", o.data?.["text/plain"] ?? ""].flat().join("");

/**
 * The numbers a cell's text shows, without those that legitimately change from run to run: durations
 * ("0.5 s", "12 ms"), content hashes of logged experiments, and file paths.
 */
function numbersShown(cell: Cell): number[] {
  const shown = (cell.outputs ?? [])
    .filter((o) => o.output_type !== "display_data" || !/head ablation sweep \(/.test(text(o)))
    .map(text)
    .join("\n")
    .replace(/\b(?=[0-9a-f]*[a-f])[0-9a-f]{8,}\b/g, "") // hashes have a letter; long plain digit runs are values
    .replace(/\d+(\.\d+)?\s?(ms|s)\b/g, "")
    .replace(/(\/[\w.@-]+)+/g, "");
  return (shown.match(/-?\d+(\.\d+)?(e[-+]?\d+)?/g) ?? []).map(Number);
}

/** Equal up to the rounding of a printed figure and float32 differences between engines. */
function sameNumbers(got: number[], want: number[]): boolean {
  return got.length === want.length && got.every((g, i) => Math.abs(g - want[i]) <= 2e-3 + 1e-3 * Math.abs(want[i]));
}

function runDemo(notebook: string): { executed: Cell[]; stdout: string; html: string } {
  const tmp = scratchDir("arrakis-nb-");
  const out = path.join(tmp, "out");
  const r = spawnSync(process.execPath, [DEMO, "--out", out, "--prefix", path.join(tmp, "prefix"), "--notebook", notebook], {
    encoding: "utf8",
    timeout: 10 * 60_000,
    env: { ...process.env, ARRAKIS_MODEL: "", JUPYTER_DATA_DIR: path.join(tmp, "data"), JUPYTER_RUNTIME_DIR: path.join(tmp, "runtime") },
  });
  assert.equal(r.status, 0, `demo failed:\n${r.stdout}\n${r.stderr.slice(-3000)}`);
  const name = path.basename(notebook);
  const html = path.join(out, name.replace(/\.ipynb$/, ".html"));
  assert.ok(fs.existsSync(html), "HTML export written");
  return { executed: cells(path.join(out, name)), stdout: r.stdout, html: fs.readFileSync(html, "utf8") };
}

function assertLikeCommitted(committedFile: string, executed: Cell[]): void {
  const committed = cells(committedFile);
  assert.equal(executed.length, committed.length);
  let count = 0;
  executed.forEach((cell, i) => {
    if (cell.cell_type !== "code") return;
    count++;
    assert.equal(cell.execution_count, count, `cell ${i} has its execution count`);
    for (const o of cell.outputs ?? []) assert.notEqual(o.output_type, "error", `cell ${i} raised: ${JSON.stringify(o).slice(0, 400)}`);
    assert.deepEqual(kinds(cell), kinds(committed[i]), `cell ${i} output kinds match the committed notebook`);
    const [got, want] = [numbersShown(cell), numbersShown(committed[i])];
    assert.ok(sameNumbers(got, want), `cell ${i} shows the committed numbers:\n  got  ${got.join(" ")}\n  want ${want.join(" ")}`);
  });
}

test("npm run demo executes the tour with the Arrakis kernel: heatmaps, pictures, progress, the induction story", () => {
  const notebook = path.join(repoRoot, "notebooks", "attention-tour.ipynb");
  const { executed, stdout, html } = runDemo(notebook);
  assert.match(stdout, /Outputs are in /);
  assertLikeCommitted(notebook, executed);
  const outputs = executed.flatMap((c) => c.outputs ?? []);
  const plotly = outputs.filter((o) => o.data?.["application/vnd.plotly.v1+json"]);
  assert.ok(plotly.length >= 5, `interactive heatmaps: ${plotly.length}`);
  for (const o of plotly) {
    assert.match(String(o.data!["text/html"]), /<img[^>]+src="data:image\/png;base64,/, "static fallback inside the HTML");
    assert.ok(o.data!["image/png"], "image/png alongside");
  }
  assert.ok(outputs.some((o) => /^✓ head ablation sweep \(zero, \d+×\d+ heads\): (\d+)\/\1 done in [\d.]+ s$/.test(text(o))), "the sweep's progress display ended as one summary line");
  const table = outputs.map(text).find((t) => t.includes("repeated")) ?? "";
  assert.match(table, /clean/, "the halves table was printed");
  assert.match(html, /Plotly|plotly/, "HTML export carries the interactive plots");
});

test("the ablation notebook executes and matches its committed outputs", () => {
  const notebook = path.join(repoRoot, "notebooks", "ablation.ipynb");
  const { executed } = runDemo(notebook);
  assertLikeCommitted(notebook, executed);
  const restored = executed.flatMap((c) => c.outputs ?? []).map(text);
  assert.ok(restored.includes("true"), "restore gives bit-identical logits");
});

test("the circuits notebook executes and matches its committed outputs", () => {
  const notebook = path.join(repoRoot, "notebooks", "circuits.ipynb");
  const { executed } = runDemo(notebook);
  assertLikeCommitted(notebook, executed);
});
