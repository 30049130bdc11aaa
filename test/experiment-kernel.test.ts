/**
 * `logExperiment` in the kernel stores the TypeScript of the function as written in the cell (not tslab's
 * compiled JavaScript), and the log's summaries arrive as rich outputs: units of kernel/cell-source.ts on
 * the kernel's own converter, and a notebook executed by nbconvert through a kernelspec installed in a
 * temporary prefix. Python is /usr/bin/python3 (the first python3 on PATH may lack Jupyter); the kernel runs
 * from dist/ (`npm run build` first).
 */
import { after, before, test } from "node:test";
import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { createConverters } from "../kernel/converters";
import { cellSourceOf, setCellSourceLookup } from "../src/tools/cell-source";
import { repoRoot, scratchDir } from "./helpers";

const PYTHON = "/usr/bin/python3";
const CLI = path.join(repoRoot, "dist", "kernel", "cli.js");

// eslint-disable-next-line @typescript-eslint/no-require-imports
const ts = () => require(require.resolve("@tslab/typescript-for-tslab", { paths: [path.join(repoRoot, "node_modules", "tslab")] }));

after(() => setCellSourceLookup(undefined));

/** The function object the kernel would make from compiled text (String(fn) gives that text back). */
function compiledFunction(output: string, startsWith: string, method?: string): (...a: never[]) => unknown {
  const at = output.indexOf(startsWith);
  assert.ok(at >= 0, `${startsWith} not in:\n${output}`);
  const file = ts().createSourceFile("c.js", output, 99, true, 1);
  let text: string | undefined;
  const visit = (node: { getStart(): number; getEnd(): number; getText(): string; kind: number }) => {
    if (text === undefined && node.getStart() === at && ts().isFunctionLike(node)) text = node.getText();
    ts().forEachChild(node, visit);
  };
  visit(file);
  assert.ok(text, `no function starts at ${startsWith}`);
  // eslint-disable-next-line @typescript-eslint/no-implied-eval
  const fn = new Function(method ? `return ({ ${text} }).${method};` : `return (${text});`)() as (...a: never[]) => unknown;
  assert.equal(String(fn), text);
  return fn;
}

test("the converter records cells and maps compiled functions back to their TypeScript", () => {
  const conv = createConverters(ts()).set;
  try {
    const prev = "declare const model: { loss(t: number[][]): number };";
    const cell1 = [
      "const scale: number = 2;",
      "function lossTimes(text: number[][], factor: number): number {",
      "  // scaled loss",
      "  return model.loss(text) * factor * scale;",
      "}",
      "enum E { A, B }",
      "const ident = <T,>(E: T): T => E;",
      "const first = (x: number) => x + 1;",
      "const second = (x: number) => x + 2;",
      "const later = async (n: number): Promise<number> => { await new Promise((r) => setTimeout(r, 1)); return n * scale; };",
      "class Probe { run(this: Probe, k: number): number { return k * scale; } }",
    ].join("\n");
    const r1 = conv.node.convert(prev, cell1);
    assert.deepEqual(r1.diagnostics, []);
    const r2 = conv.node.convert(prev + "\n" + (r1.declOutput ?? ""), "const useLater = (x: number) => first(x) * scale;");
    assert.deepEqual(r2.diagnostics, []);
    const out1 = r1.output!;

    assert.equal(cellSourceOf(compiledFunction(out1, "function lossTimes")), "function lossTimes(text: number[][], factor: number): number {\n  // scaled loss\n  return model.loss(text) * factor * scale;\n}");
    assert.equal(cellSourceOf(compiledFunction(out1, "(E) => E")), "<T,>(E: T): T => E", "an arrow with the enum's name as parameter is not the enum's IIFE");
    assert.equal(cellSourceOf(compiledFunction(out1, "(x) => x + 2")), "(x: number) => x + 2", "same name and parameters: matched by position");
    assert.equal(cellSourceOf(compiledFunction(out1, "(n) => __arrakis__.co")), "async (n: number): Promise<number> => { await new Promise((r) => setTimeout(r, 1)); return n * scale; }");
    assert.equal(cellSourceOf(compiledFunction(out1, "run(k)", "run")), "run(this: Probe, k: number): number { return k * scale; }");
    assert.equal(cellSourceOf(compiledFunction(r2.output!, "(x) => exports.first")), "(x: number) => first(x) * scale");
    assert.equal(cellSourceOf(() => 1), undefined, "a function no cell defined: no source");
  } finally {
    conv.close();
  }
});

// ------------------------------------------------------------------------------------------ through Jupyter

let tmp: string;
let env: NodeJS.ProcessEnv;

before(() => {
  tmp = scratchDir("arrakis-kernel-exp-");
  const prefix = path.join(tmp, "prefix");
  env = {
    ...process.env,
    JUPYTER_PATH: path.join(prefix, "share", "jupyter"),
    JUPYTER_CONFIG_DIR: path.join(tmp, "config"),
    JUPYTER_DATA_DIR: path.join(tmp, "data"),
    JUPYTER_RUNTIME_DIR: path.join(tmp, "runtime"),
    JUPYTER_PLATFORM_DIRS: "1",
    PYTHONDONTWRITEBYTECODE: "1",
  };
  delete env.ARRAKIS_MODEL;
});

test("nbconvert: the log stores the cell's TypeScript as written, and listVersions() is a rich summary", { timeout: 240_000 }, (t) => {
  if (!fs.existsSync(PYTHON) || spawnSync(PYTHON, ["-c", "import nbconvert"]).status !== 0) {
    t.skip("Jupyter's nbconvert is not installed for /usr/bin/python3");
    return;
  }
  assert.ok(fs.existsSync(CLI), `${CLI} is missing: run \`npm run build\` first`);
  const install = spawnSync(process.execPath, [CLI, "install", "--prefix", path.join(tmp, "prefix")], { cwd: tmp, encoding: "utf8", timeout: 60_000 });
  assert.equal(install.status, 0, install.stderr);
  const dir = path.join(tmp, "nb");
  fs.mkdirSync(dir);
  const fnSource = "function lossTimes(text: number[][], factor: number): number {\n  // the loss, scaled\n  return model.loss(text) * factor * scale;\n}";
  const asyncSource = "async (n: number): Promise<number> => {\n  await new Promise((r) => setTimeout(r, 1));\n  return n * scale;\n}";
  const toolsSource = "(layer: number, tools: typeof attention): number => tools.model.cfg.nHeads * layer";
  const cells = [
    "const scale: number = 2;",
    fnSource,
    "const run = exp.logExperiment(lossTimes);\nrun([[1, 2, 3, 4]], 3) > 0",
    `const asyncOne = exp.logExperiment(${asyncSource}, "async_one");\nawait asyncOne(4)`,
    `exp.listVersions("lossTimes")`,
    `exp.getVersion("async_one", exp.listVersions("async_one")[0].version).source`,
    `const viaTools = exp.logExperiment(exp.useTools("attention", ${toolsSource}), "via_tools");\nviaTools(1)`,
  ];
  const nb = {
    nbformat: 4,
    nbformat_minor: 5,
    metadata: { kernelspec: { name: "arrakis-ts", display_name: "Arrakis (TypeScript)", language: "typescript" } },
    cells: cells.map((source, i) => ({ cell_type: "code", id: `c${i}`, metadata: {}, execution_count: null, outputs: [], source })),
  };
  fs.writeFileSync(path.join(dir, "in.ipynb"), JSON.stringify(nb));
  const r = spawnSync(PYTHON, ["-m", "nbconvert", "--to", "notebook", "--execute", "--ExecutePreprocessor.timeout=180", "--output", "out.ipynb", "in.ipynb"], { cwd: dir, env, encoding: "utf8", timeout: 230_000 });
  assert.equal(r.status, 0, r.stderr.slice(-4000));
  type Output = { output_type: string; data?: Record<string, string | string[]> };
  const outputs: Output[][] = JSON.parse(fs.readFileSync(path.join(dir, "out.ipynb"), "utf8")).cells.map((c: { outputs: Output[] }) => c.outputs);
  const text = (x: string | string[] | undefined) => (Array.isArray(x) ? x.join("") : String(x));

  const lines = (name: string) => fs.readFileSync(path.join(dir, "experiments", `${name}.jsonl`), "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l));
  const [rec] = lines("lossTimes");
  assert.equal(rec.source, fnSource, "the TypeScript as written: types, comment and `scale` (not exports.scale)");
  assert.equal(rec.status, "ok");
  const [asyncRec] = lines("async_one");
  assert.equal(asyncRec.source, asyncSource, "an async arrow as written, not the kernel's generator rewrite");
  assert.equal(asyncRec.result, 8);
  const [toolsRec] = lines("via_tools");
  assert.equal(toolsRec.source, toolsSource, "a useTools-wrapped function is logged as the function the user wrote");

  const summary = outputs[4].find((o) => o.output_type === "execute_result")!;
  assert.match(text(summary.data?.["text/plain"]), /^lossTimes: 1 version\nversion\s+runs\s+errors\s+first run\s+last run\s+source\n[0-9a-f]{12}\s+1\s+0\s+.*function lossTimes\(text: number\[\]\[\], factor: number\): numbe…$/);
  assert.match(text(summary.data?.["text/html"]), /<table>.*<pre[^>]*>function lossTimes\(text: number\[\]\[\], factor: number\): number \{\n  \/\/ the loss, scaled/s);
  assert.equal(text(outputs[5].find((o) => o.output_type === "execute_result")?.data?.["text/plain"]), asyncSource, "a string shows as itself");
});
