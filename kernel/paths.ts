/**
 * Where things live on disk. The kernel runs from `dist/kernel/` after `npm run build`, but these helpers
 * walk up to the package root instead of assuming a depth, so they also work from `kernel/` under tsx and
 * from an npm install where dependencies may be hoisted above the package.
 */
import fs from "fs";
import path from "path";

export const PACKAGE_NAME = "arrakis-ts";

let rootCache: string | undefined;

/** The arrakis-ts package root: the nearest ancestor of this file with our package.json. */
export function projectRoot(): string {
  if (rootCache) return rootCache;
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    const pj = path.join(dir, "package.json");
    if (fs.existsSync(pj)) {
      try {
        if (JSON.parse(fs.readFileSync(pj, "utf8")).name === PACKAGE_NAME) return (rootCache = dir);
      } catch {
        // An unreadable package.json is not ours; keep walking.
      }
    }
    if (path.dirname(dir) === dir) throw new Error(`cannot find the ${PACKAGE_NAME} package root above ${__dirname}`);
  }
}

export function packageVersion(): string {
  return JSON.parse(fs.readFileSync(path.join(projectRoot(), "package.json"), "utf8")).version as string;
}

/** `require` that resolves the way a file at the package root would (dependencies of arrakis-ts). */
export function projectRequire(): NodeJS.Require {
  return require("module").createRequire(path.join(projectRoot(), "package.json")) as NodeJS.Require;
}

/** tslab's package directory (it may be nested or hoisted depending on the installer). */
export function tslabDir(): string {
  return path.dirname(projectRequire().resolve("tslab/package.json"));
}

/** Resolves a dependency of tslab (zeromq, its TypeScript fork) from tslab's own location. */
export function tslabRequire(id: string): unknown {
  const req = require("module").createRequire(path.join(tslabDir(), "package.json")) as NodeJS.Require;
  return req(id);
}

/** The compiled kernel directory (dist/kernel) that holds cli.js, the control worker and display.js. */
export function kernelDistDir(): string {
  const here = __dirname;
  if (path.basename(path.dirname(here)) === "dist") return here;
  return path.join(projectRoot(), "dist", "kernel");
}
