/**
 * Writing and removing the `arrakis-ts` kernelspec without Python: a kernelspec is a folder holding
 * kernel.json in one of Jupyter's kernels directories (jupyter_client docs, "Kernel specs"). Paths are
 * absolute (this Node, this package), so the kernel starts the same from any notebook folder.
 */
import fs from "fs";
import os from "os";
import path from "path";
import { spawnSync } from "child_process";
import { HUGE_PAGES_ENV } from "../src/engine/huge-pages";
import { isHubId } from "../src/io/hub";
import { kernelDistDir, packageVersion, projectRoot } from "./paths";

export const KERNEL_NAME = "arrakis-ts";
export const DISPLAY_NAME = "Arrakis (TypeScript)";

export type Location = { kind: "user" } | { kind: "sys-prefix" } | { kind: "prefix"; dir: string };

/** Jupyter's per-user data dir (jupyter_core.paths.jupyter_data_dir). */
export function userDataDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.JUPYTER_DATA_DIR) return path.resolve(env.JUPYTER_DATA_DIR);
  const home = os.homedir();
  if (process.platform === "darwin") return path.join(home, "Library", "Jupyter");
  if (process.platform === "win32") return path.join(env.APPDATA ?? path.join(home, "AppData", "Roaming"), "jupyter");
  return path.join(env.XDG_DATA_HOME || path.join(home, ".local", "share"), "jupyter");
}

/**
 * Why `--sys-prefix` is refused when no virtual environment is active, or undefined when one is.
 * Without one, sys.prefix is the system Python's (e.g. /usr): writing there usually needs root, and a
 * Jupyter installed elsewhere (pip --user, pipx, another venv) does not search it.
 */
export function sysPrefixWarning(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.CONDA_PREFIX || env.VIRTUAL_ENV) return undefined;
  let where: string;
  try {
    where = path.join(sysPrefix(env), "share", "jupyter", "kernels");
  } catch (e) {
    return (e as Error).message;
  }
  return (
    `--sys-prefix: no virtual environment is active (VIRTUAL_ENV and CONDA_PREFIX are unset), so it would ` +
    `install into the system Python's prefix, ${where}. Only a Jupyter run by that same Python searches it ` +
    `(a Jupyter from pip --user, pipx or another environment does not), and writing there usually needs root. ` +
    `Activate the environment that runs Jupyter and try again, use --user (the default), or --prefix DIR to choose.`
  );
}

/** sys.prefix of the active Python environment: conda or venv variables first, then asking python3. */
function sysPrefix(env: NodeJS.ProcessEnv = process.env): string {
  if (env.CONDA_PREFIX) return env.CONDA_PREFIX;
  if (env.VIRTUAL_ENV) return env.VIRTUAL_ENV;
  for (const py of ["python3", "python"]) {
    const r = spawnSync(py, ["-c", "import sys; print(sys.prefix)"], { encoding: "utf8" });
    if (r.status === 0 && r.stdout.trim()) return r.stdout.trim();
  }
  throw new Error("--sys-prefix needs an active conda/virtualenv (CONDA_PREFIX or VIRTUAL_ENV) or a python3 on PATH; use --prefix DIR instead");
}

export function kernelsDir(loc: Location): string {
  switch (loc.kind) {
    case "user":
      return path.join(userDataDir(), "kernels");
    case "sys-prefix":
      return path.join(sysPrefix(), "share", "jupyter", "kernels");
    case "prefix":
      return path.join(path.resolve(loc.dir), "share", "jupyter", "kernels");
  }
}

export interface KernelJson {
  argv: string[];
  display_name: string;
  language: string;
  interrupt_mode: "message" | "signal";
  env: Record<string, string>;
  metadata: Record<string, unknown>;
}

/**
 * Checks `--model` when the kernelspec is written, so a typo fails now rather than at every kernel start:
 * an existing folder must hold a Hugging Face config.json; anything else must be "random" or a Hub id
 * ("name" or "org/name"), which the kernel downloads on first start. Returns the value for kernel.json.
 */
export function checkModelSpec(model: string | undefined, cwd = process.cwd()): { value?: string; note?: string } {
  if (model === undefined || model === "random") return { value: model };
  const asPath = path.resolve(cwd, model);
  if (fs.existsSync(asPath)) {
    if (!fs.statSync(asPath).isDirectory()) throw new Error(`--model ${JSON.stringify(model)} is a file; expected a Hugging Face model folder (config.json, *.safetensors, tokenizer.json)`);
    if (!fs.existsSync(path.join(asPath, "config.json"))) throw new Error(`--model ${JSON.stringify(model)}: ${asPath} has no config.json; expected a Hugging Face model folder (config.json, *.safetensors, tokenizer.json)`);
    return { value: asPath };
  }
  if (isHubId(model)) {
    return { value: model, note: `--model ${JSON.stringify(model)} is not a local folder, so it is a Hugging Face Hub id: the kernel downloads it on first start (network needed once; then cached).` };
  }
  throw new Error(`--model ${JSON.stringify(model)}: no such folder (${asPath}), and not a Hugging Face Hub id ("name" or "org/name": letters, digits, "_", "-", ".")`);
}

/** A --model that names an existing folder is made absolute; anything else (a Hub id, "random") is kept. */
export function normaliseModel(model: string | undefined, cwd = process.cwd()): string | undefined {
  if (!model) return undefined;
  const asPath = path.resolve(cwd, model);
  return fs.existsSync(asPath) ? asPath : model;
}

export function kernelJson(model?: string): KernelJson {
  const argv = [process.execPath, path.join(kernelDistDir(), "cli.js"), "kernel", "--connection-file", "{connection_file}"];
  if (model) argv.push("--model", model);
  return {
    argv,
    display_name: DISPLAY_NAME,
    language: "typescript",
    // Interrupts arrive as interrupt_request on the control channel, which a worker thread serves even
    // while a cell computes (see kernel/control-worker.ts); SIGINT is handled as well.
    interrupt_mode: "message",
    // Large weights in huge pages: halves the CPU time of first touching a billion-parameter model's memory.
    env: process.platform === "linux" ? { ...HUGE_PAGES_ENV } : {},
    metadata: { "arrakis-ts": { version: packageVersion(), package: projectRoot(), debugger: false } },
  };
}

const LOGO_SVG = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64"><rect width="64" height="64" rx="10" fill="#c2772b"/><path d="M0 46 Q20 36 34 44 T64 40 V64 H0Z" fill="#8f4f18"/><text x="32" y="33" font-family="sans-serif" font-size="22" font-weight="700" fill="#fff" text-anchor="middle">TS</text></svg>\n`;

export function install(loc: Location, model?: string): string {
  const cli = path.join(kernelDistDir(), "cli.js");
  if (!fs.existsSync(cli)) throw new Error(`${cli} does not exist: build the package first (npm run build)`);
  const dir = path.join(kernelsDir(loc), KERNEL_NAME);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, "kernel.json"), JSON.stringify(kernelJson(normaliseModel(model)), null, 2) + "\n");
  fs.writeFileSync(path.join(dir, "logo-svg.svg"), LOGO_SVG);
  return dir;
}

/** Removes the kernelspec; returns the folder removed, or undefined when there was none. */
export function uninstall(loc: Location): string | undefined {
  const dir = path.join(kernelsDir(loc), KERNEL_NAME);
  if (!fs.existsSync(path.join(dir, "kernel.json"))) return undefined;
  fs.rmSync(dir, { recursive: true, force: true });
  return dir;
}
