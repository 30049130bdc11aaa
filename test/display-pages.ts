/**
 * Helpers for the display browser tests: notebooks whose outputs are our bundles (no kernel needed), the
 * Jupyter tools from Debian's packages, a classic Notebook server on a free loopback port, headless Chromium.
 */
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import type { MimeBundle } from "../src/display";
import { scratchDir } from "./helpers";

/** Debian's Python, which has Jupyter (the first python3 on PATH may not). */
export const PYTHON = "/usr/bin/python3";
export const CHROMIUM = "/usr/bin/chromium";
export const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** A notebook (nbformat 4.5) with one code cell per bundle, each output a display_data of that bundle. */
export function notebookOf(bundles: MimeBundle[], title = "arrakis-ts display test"): object {
  return {
    nbformat: 4,
    nbformat_minor: 5,
    metadata: {
      kernelspec: { name: "python3", display_name: "Python 3", language: "python" },
      language_info: { name: "python" },
      title,
    },
    cells: bundles.map((data, i) => ({
      cell_type: "code",
      id: `cell-${i}`,
      execution_count: i + 1,
      metadata: {},
      source: [`# output ${i}`],
      outputs: [{ output_type: "display_data", data: jsonOnly(data), metadata: {} }],
    })),
  };
}

/** nbformat stores JSON values as they are and text as strings: drop nothing, but fail on non-JSON values. */
function jsonOnly(bundle: MimeBundle): MimeBundle {
  return JSON.parse(JSON.stringify(bundle)) as MimeBundle;
}

/** A private Jupyter home (data, config, runtime dirs) so signing and the server share one secret. */
export function jupyterEnv(root: string): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const [key, dir] of [
    ["JUPYTER_DATA_DIR", "data"],
    ["JUPYTER_CONFIG_DIR", "config"],
    ["JUPYTER_RUNTIME_DIR", "runtime"],
    ["IPYTHONDIR", "ipython"],
  ]) {
    env[key] = path.join(root, dir);
    fs.mkdirSync(env[key] as string, { recursive: true });
  }
  return env;
}

/** Runs a Python module (`python3 -m <module> args`) and returns stdout; throws with stderr on failure. */
export function runPython(moduleArgs: string[], env: NodeJS.ProcessEnv, cwd?: string): string {
  const r = spawnSync(PYTHON, ["-m", ...moduleArgs], { env, cwd, encoding: "utf8", timeout: 120_000 });
  if (r.status !== 0) throw new Error(`python3 -m ${moduleArgs.join(" ")} failed (${r.status}): ${r.stderr}`);
  return r.stdout + r.stderr;
}

/** Signs a notebook so the classic Notebook treats its outputs as trusted (what `jupyter trust` does). */
export function trustNotebook(file: string, env: NodeJS.ProcessEnv): void {
  runPython(["nbformat.sign", file], env);
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

/** Starts `python3 -m notebook` (classic Notebook 6) on 127.0.0.1 and waits until it answers. */
export async function startClassicNotebook(
  dir: string,
  env: NodeJS.ProcessEnv,
): Promise<{ url: string; proc: ChildProcess; stop: () => Promise<void>; log: () => string }> {
  const port = await freePort();
  let log = "";
  const proc = spawn(
    PYTHON,
    [
      "-m", "notebook", "--no-browser", `--port=${port}`, "--ip=127.0.0.1",
      "--NotebookApp.token=", "--NotebookApp.password=", `--notebook-dir=${dir}`,
      // CI and these machines run as root; the server refuses root without this flag.
      ...(process.getuid?.() === 0 ? ["--allow-root"] : []),
    ],
    { env, stdio: ["ignore", "pipe", "pipe"] },
  );
  proc.stdout!.on("data", (b) => (log += b));
  proc.stderr!.on("data", (b) => (log += b));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`notebook server exited (${proc.exitCode}): ${log}`);
    try {
      const res = await fetch(`${url}/api/status`);
      if (res.ok) break;
    } catch {
      /* not up yet */
    }
    if (Date.now() > deadline) throw new Error(`notebook server did not answer within 30 s: ${log}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  const stop = async () => {
    if (proc.exitCode !== null) return;
    const exited = new Promise((r) => proc.once("exit", r));
    proc.kill("SIGTERM");
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    if (proc.exitCode === null) proc.kill("SIGKILL");
  };
  return { url, proc, stop, log: () => log };
}

export function tmpDir(prefix: string): string {
  return scratchDir(prefix);
}

/** Where screenshots go (gitignored). */
export function screenshotPath(name: string): string {
  const dir = path.resolve(__dirname, "..", "artifacts", "screenshots");
  fs.mkdirSync(dir, { recursive: true });
  return path.join(dir, name);
}
