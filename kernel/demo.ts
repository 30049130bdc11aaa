#!/usr/bin/env node
/**
 * `npm run demo` — the main job: installs the Arrakis kernelspec (if needed), executes
 * notebooks/attention-tour.ipynb with it on the embedded model, and writes the executed notebook and an HTML
 * export to a folder it names at the end.
 *
 *   node dist/kernel/demo.js [--out DIR] [--prefix DIR] [--notebook PATH]
 *
 * --prefix installs the kernelspec under DIR/share/jupyter (and points Jupyter there) instead of the user's
 * Jupyter data folder; the tests use it to stay out of the user's setup.
 */
import { spawnSync } from "child_process";
import fs from "fs";
import path from "path";
import { install, type Location } from "./kernelspec";
import { projectRoot } from "./paths";

/** Debian's Python has Jupyter; the first python3 on PATH may not. */
const PYTHON = fs.existsSync("/usr/bin/python3") ? "/usr/bin/python3" : "python3";

interface DemoOptions {
  out: string;
  prefix?: string;
  notebook: string;
}

function parseArgs(argv: string[]): DemoOptions {
  const opts: DemoOptions = { out: path.join(projectRoot(), "demo-output"), notebook: path.join(projectRoot(), "notebooks", "attention-tour.ipynb") };
  for (let i = 0; i < argv.length; i++) {
    const value = argv[i + 1];
    if (!value) throw new Error(`${argv[i]} needs a value`);
    if (argv[i] === "--out") opts.out = path.resolve(value);
    else if (argv[i] === "--prefix") opts.prefix = path.resolve(value);
    else if (argv[i] === "--notebook") opts.notebook = path.resolve(value);
    else throw new Error(`unknown argument ${argv[i]} (expected --out DIR, --prefix DIR, --notebook PATH)`);
    i++;
  }
  return opts;
}

function jupyterEnv(prefix?: string): NodeJS.ProcessEnv {
  if (!prefix) return process.env;
  const share = path.join(prefix, "share", "jupyter");
  return { ...process.env, JUPYTER_PATH: [share, process.env.JUPYTER_PATH].filter(Boolean).join(path.delimiter) };
}

/** Runs nbconvert; its own progress goes to our stderr, a failure stops the demo with its message. */
function nbconvert(args: string[], env: NodeJS.ProcessEnv): void {
  const r = spawnSync(PYTHON, ["-m", "nbconvert", ...args], { env, stdio: ["ignore", "inherit", "inherit"], timeout: 20 * 60_000 });
  if (r.error) throw new Error(`could not run ${PYTHON} -m nbconvert (${r.error.message}); run .ci/setup.sh to install python3-nbconvert`);
  if (r.status !== 0) throw new Error(`nbconvert ${args[0]} ${args[1]} failed with exit code ${r.status}`);
}

/** How many outputs of each kind the executed notebook holds (the demo reports it; the tests assert it). */
export function summarise(notebookFile: string): { cells: number; heatmaps: number; pictures: number; errors: number } {
  const nb = JSON.parse(fs.readFileSync(notebookFile, "utf8"));
  let heatmaps = 0;
  let pictures = 0;
  let errors = 0;
  for (const cell of nb.cells) {
    for (const out of cell.outputs ?? []) {
      if (out.output_type === "error") errors++;
      if (out.data?.["application/vnd.plotly.v1+json"]) heatmaps++;
      if (out.data?.["image/png"]) pictures++;
    }
  }
  return { cells: nb.cells.length, heatmaps, pictures, errors };
}

export function runDemo(opts: DemoOptions): { notebook: string; html: string } {
  if (!fs.existsSync(opts.notebook)) throw new Error(`notebook ${opts.notebook} does not exist`);
  const location: Location = opts.prefix ? { kind: "prefix", dir: opts.prefix } : { kind: "user" };
  const specDir = install(location);
  console.error(`kernelspec: ${specDir}`);
  fs.mkdirSync(opts.out, { recursive: true });
  const env = jupyterEnv(opts.prefix);
  // Executed in the output folder (the kernel's working directory is the notebook's), so files the
  // notebook writes, such as the bench's experiments/ logs, land there and not in the package.
  const executed = path.join(opts.out, path.basename(opts.notebook));
  fs.copyFileSync(opts.notebook, executed);
  nbconvert(["--to", "notebook", "--execute", "--inplace", "--ExecutePreprocessor.kernel_name=arrakis-ts", "--ExecutePreprocessor.timeout=900", executed], env);
  nbconvert(["--to", "html", "--output-dir", opts.out, executed], env);
  return { notebook: executed, html: executed.replace(/\.ipynb$/, ".html") };
}

if (require.main === module) {
  try {
    const opts = parseArgs(process.argv.slice(2));
    const started = Date.now();
    const { notebook, html } = runDemo(opts);
    const s = summarise(notebook);
    const kb = (f: string) => `${(fs.statSync(f).size / 1024).toFixed(0)} KB`;
    console.log(`\nExecuted ${path.relative(process.cwd(), opts.notebook) || opts.notebook} in ${((Date.now() - started) / 1000).toFixed(1)} s: ${s.cells} cells, ${s.heatmaps} interactive heatmaps, ${s.pictures} static pictures, ${s.errors} errors.`);
    console.log(`Outputs are in ${opts.out}:\n  ${notebook} (${kb(notebook)})\n  ${html} (${kb(html)})`);
    process.exit(s.errors ? 1 : 0);
  } catch (e) {
    console.error(`demo: ${(e as Error).message}`);
    process.exit(1);
  }
}
