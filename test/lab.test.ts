/**
 * The committed notebooks in the real JupyterLab 4 application, end to end: JupyterLab is assembled from its
 * pinned npm packages (test/lab/app, built once by test/lab/build.sh and cached under .cache/), served by
 * Debian's jupyterlab_server on jupyter_server (test/lab/lab_server.py), and driven in headless Chromium by
 * test/lab/drive.mjs against this checkout's kernel (installed into a temporary prefix from dist/):
 *  - the tour: Run All from the Run menu with no error, every Plotly and Vega-Lite output drawn, titles inside
 *    their figures, progress updated in place, hover tooltips on a heatmap and on a Vega-Lite chart,
 *    TypeScript highlighting, Tab completion, Shift+Tab after `(` / inside arguments / on a name, Contextual
 *    Help, idle status, save + reload trusted, and the "library gone" note whose advice works as written;
 *  - the ablation notebook: Run All, a head sweep interrupted from the toolbar (idle again, no ablation
 *    left applied), restart from the Kernel menu.
 * Screenshots and each scenario's report.json go to artifacts/lab4/<scenario>/ (gitignored).
 * Needs Debian's chromium, python3-jupyter-server and python3-jupyterlab-server (.ci/setup.sh installs them).
 */
import { after, before, describe, test } from "node:test";
import * as assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { CHROMIUM, PYTHON, freePort, tmpDir } from "./display-pages";
import { repoRoot } from "./helpers";

const LAB = path.join(repoRoot, "test", "lab");
const CLI = path.join(repoRoot, "dist", "kernel", "cli.js");
const SHOTS = path.join(repoRoot, "artifacts", "lab4");

function missing(): string | false {
  if (!fs.existsSync(CHROMIUM)) return `${CHROMIUM} not found (Debian package chromium)`;
  const py = spawnSync(PYTHON, ["-c", "import jupyter_server, jupyterlab_server"], { encoding: "utf8" });
  if (py.status !== 0) return "jupyter_server / jupyterlab_server not importable (Debian python3-jupyter-server, python3-jupyterlab-server)";
  return false;
}
const SKIP = missing();
if (SKIP) console.error(`JupyterLab end-to-end tests skipped: ${SKIP}; run .ci/setup.sh`);

let tmp: string;
let server: ChildProcess | undefined;
let url: string;
let serverLog = "";

/** Environment of the server and its kernels: Jupyter's folders in the temporary folder, our kernelspec only. */
function jupyterEnv(): NodeJS.ProcessEnv {
  return {
    ...process.env,
    JUPYTER_PATH: path.join(tmp, "prefix", "share", "jupyter"),
    JUPYTER_CONFIG_DIR: path.join(tmp, "config"),
    JUPYTER_DATA_DIR: path.join(tmp, "data"),
    JUPYTER_RUNTIME_DIR: path.join(tmp, "runtime"),
    JUPYTER_PLATFORM_DIRS: "1",
    PYTHONDONTWRITEBYTECODE: "1",
  };
}

before(async () => {
  if (SKIP) return;
  assert.ok(fs.existsSync(CLI), `${CLI} is missing: run \`npm run build\` first`);
  // Built once per lockfile: later runs find it in .cache/ and take no time here.
  const build = spawnSync("bash", [path.join(LAB, "build.sh")], { encoding: "utf8", timeout: 15 * 60_000 });
  assert.equal(build.status, 0, `test/lab/build.sh failed:\n${(build.stderr ?? "").slice(-4000)}`);
  const app = build.stdout.trim().split("\n").pop()!;
  assert.ok(fs.existsSync(path.join(app, "build", "bundle.js")), `no JupyterLab build in ${app}`);

  tmp = tmpDir("arrakis-lab-");
  const install = spawnSync(process.execPath, [CLI, "install", "--prefix", path.join(tmp, "prefix")], { encoding: "utf8", timeout: 60_000 });
  assert.equal(install.status, 0, install.stderr);
  const root = path.join(tmp, "root");
  fs.mkdirSync(root);
  for (const nb of ["attention-tour.ipynb", "ablation.ipynb"]) fs.copyFileSync(path.join(repoRoot, "notebooks", nb), path.join(root, nb));

  const port = await freePort();
  url = `http://127.0.0.1:${port}`;
  const args = [path.join(LAB, "lab_server.py"), "--port", String(port), "--root", root, "--state", path.join(tmp, "state"), "--app", app];
  server = spawn(PYTHON, args, { env: jupyterEnv(), detached: true, stdio: ["ignore", "pipe", "pipe"] });
  server.stdout!.on("data", (d) => (serverLog += d));
  server.stderr!.on("data", (d) => (serverLog += d));
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      if ((await fetch(`${url}/api/status`)).ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline || server.exitCode !== null) throw new Error(`JupyterLab server did not start:\n${serverLog.slice(-4000)}`);
    await new Promise((r) => setTimeout(r, 500));
  }
});

after(async () => {
  if (server && server.exitCode === null) {
    // The server shuts its kernels down on SIGTERM; the whole group goes if it does not within 10 s.
    const exited = new Promise((r) => server!.once("exit", r));
    process.kill(-server.pid!, "SIGTERM");
    await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
    if (server.exitCode === null) process.kill(-server.pid!, "SIGKILL");
  }
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

interface Report {
  checks: Record<string, { ok: boolean; detail: unknown }>;
  runAllSeconds?: number;
  harnessError?: string;
}

/** Shuts down every kernel session of the server, so a scenario starts with none left by the previous one. */
async function shutdownSessions(): Promise<void> {
  const sessions = (await (await fetch(`${url}/api/sessions`)).json()) as { id: string }[];
  for (const s of sessions) await fetch(`${url}/api/sessions/${s.id}`, { method: "DELETE" });
}

/** Runs one drive.mjs scenario on `notebook`; returns its report (screenshots beside it). */
async function drive(scenario: "tour" | "ablation", notebook: string): Promise<Report> {
  await shutdownSessions();
  const shots = path.join(SHOTS, scenario);
  fs.rmSync(shots, { recursive: true, force: true });
  const pw = path.dirname(require.resolve("playwright-core/package.json"));
  const args = [path.join(LAB, "drive.mjs"), "--url", url, "--nb", notebook, "--shots", shots, "--pw", pw, "--scenario", scenario, "--timeout", "300"];
  return new Promise<Report>((resolve, reject) => {
    const child = spawn(process.execPath, args, { env: { ...process.env, CHROMIUM }, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (out += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), 9 * 60_000);
    child.on("close", (code) => {
      clearTimeout(timer);
      const file = path.join(shots, "report.json");
      if (!fs.existsSync(file)) return reject(new Error(`drive.mjs ${scenario} wrote no report (exit ${code}):\n${out.slice(-4000)}`));
      const report = JSON.parse(fs.readFileSync(file, "utf8")) as Report;
      if (report.harnessError) return reject(new Error(`drive.mjs ${scenario}: ${report.harnessError}\n${out.slice(-3000)}`));
      resolve(report);
    });
  });
}

/** Every named check ran and passed; failures are listed with their detail. */
function expectChecks(report: Report, names: string[]): void {
  const failed = Object.entries(report.checks).filter(([, c]) => !c.ok).map(([n, c]) => `${n}: ${JSON.stringify(c.detail).slice(0, 600)}`);
  assert.deepEqual(failed, [], `failed checks:\n${failed.join("\n")}`);
  for (const name of names) assert.ok(report.checks[name]?.ok, `check not run: ${name}`);
}

const RUN_ALL = [
  "all code cells executed",
  "execution counts in order",
  "no error/stderr outputs (model)",
  "no stderr-rendered outputs (DOM)",
  "every Plotly output drawn",
  "Plotly titles inside their figures (none cut)",
  "kernel idle at the end",
];

describe("JupyterLab 4 (assembled from npm packages) with the Arrakis kernel", { skip: SKIP }, () => {
  test("tour notebook: Run All, hover, highlighting, completion, Shift+Tab, Contextual Help, save + reload, library gone", { timeout: 10 * 60_000 }, async () => {
    const report = await drive("tour", "attention-tour.ipynb");
    expectChecks(report, [
      ...RUN_ALL,
      "Vega-Lite drawn interactively (needs a vegalite.v5 renderer)",
      "progress updated in place (one output while running, one line at the end)",
      "Plotly hover tooltip shows on a heatmap cell",
      "Vega-Lite tooltip shows on hover",
      "TypeScript highlighting (editor mime type is TypeScript; keywords coloured)",
      "Tab completion after `attention.att`",
      "Shift+Tab tooltip with the cursor on the name",
      'Shift+Tab tooltip right after "(" (IPython convention)',
      "Shift+Tab tooltip inside the call's arguments",
      "Contextual Help shows the kernel's inspection of `model.loss`",
      "kernel idle at the end (session + status bar)",
      "after save + reload: Plotly drawn (saved notebook signed => trusted)",
      "library gone: static picture + note shown in a new tab",
      "the note's advice `display.resetPlotlyLibrary()` runs without error",
      "library gone: the note's advice + re-run draws it again",
    ]);
  });

  test("ablation notebook: Run All, interrupt a sweep from the toolbar (nothing left applied), restart from the menu", { timeout: 10 * 60_000 }, async () => {
    const report = await drive("ablation", "ablation.ipynb");
    expectChecks(report, [
      ...RUN_ALL,
      "progress updated in place (one output while running, one line at the end)",
      "toolbar interrupt during a sweep: the kernel is idle again",
      "the interrupted sweep cell ends with an InterruptError",
      "after the interrupt no ablation stays applied (model.hookCount 0, edit ledger empty)",
      "restart from the Kernel menu: the kernel restarts and runs cells again (count back to 1, prelude loaded)",
    ]);
  });
});
