/**
 * Package resolution for notebooks anywhere on disk.
 *
 * tslab resolves imports from the kernel's working directory, which Jupyter sets to the notebook's folder
 * (and which must stay there so relative file paths in cells mean what the user sees). A notebook outside
 * this project would then find neither `arrakis-ts` nor its dependencies. Bare imports are therefore
 * resolved from the arrakis-ts package first — at run time through the `require` cells receive, and at
 * type-check time by presenting the project's packages under `<notebook dir>/node_modules/` to tslab's
 * TypeScript host. Project packages win over same-named ones near the notebook so that cells and the
 * preloaded objects share one `@tensorflow/tfjs` (two copies would mean two engines and foreign tensors).
 */
import fs from "fs";
import path from "path";
import { builtinModules } from "module";
import type * as TS from "@tslab/typescript-for-tslab";
import { patchStatus } from "../src/patches";
import { redirectTsSys } from "../src/patches/ts-sys";
import { kernelLog } from "./log";
import { PACKAGE_NAME, projectRequire, projectRoot } from "./paths";

const builtins = new Set(builtinModules);

function isBare(id: string): boolean {
  return !(id.startsWith(".") || path.isAbsolute(id) || id.startsWith("node:") || builtins.has(id.split("/")[0]));
}

/** Splits "pkg/sub/path" or "@scope/pkg/sub" into the package name and the rest. */
export function splitPackage(id: string): { name: string; rest: string } {
  const parts = id.split("/");
  const n = id.startsWith("@") ? 2 : 1;
  return { name: parts.slice(0, n).join("/"), rest: parts.slice(n).join("/") };
}

const dirCache = new Map<string, string | null>();

/** The directory of package `name` as the project sees it: the project itself for arrakis-ts. */
export function projectPackageDir(name: string): string | null {
  if (name === PACKAGE_NAME) return projectRoot();
  const cached = dirCache.get(name);
  if (cached !== undefined) return cached;
  let found: string | null = null;
  for (let dir = projectRoot(); ; dir = path.dirname(dir)) {
    const cand = path.join(dir, "node_modules", name);
    if (fs.existsSync(path.join(cand, "package.json"))) {
      found = cand;
      break;
    }
    if (path.dirname(dir) === dir) break;
  }
  dirCache.set(name, found);
  return found;
}

/** Wraps the `require` tslab hands to cells (`__tslab__.require`). */
export function wrapCellRequire(original: NodeJS.Require): (id: string) => unknown {
  const fromProject = projectRequire();
  return function require(id: string): unknown {
    if (typeof id !== "string" || !isBare(id) || id === "tslab") return original(id);
    const { name, rest } = splitPackage(id);
    if (name === PACKAGE_NAME) return fromProject(path.join(projectRoot(), rest));
    try {
      return fromProject(id);
    } catch (e) {
      if ((e as { code?: string }).code !== "MODULE_NOT_FOUND" || !String((e as Error).message).includes(`'${id}'`)) throw e;
      return original(id);
    }
  };
}

/**
 * Makes tslab's TypeScript host see project packages under `<cwd>/node_modules/`. tslab builds its host
 * with `Object.create(ts.sys)` and already fakes the existence of that folder (for `import "tslab"`), so
 * patching the shared `ts.sys` before the converter is created is enough; `realpath` maps the files to
 * their real location so declarations reached two ways are one file to the checker. `@types` stays
 * untouched: tslab picks Node's types itself and project type roots would be loaded into every cell.
 */
export function forwardTypeResolution(ts: typeof TS, cwd: string): void {
  const base = path.join(cwd, "node_modules") + path.sep;
  const map = (p: string): string => {
    const native = path.normalize(p);
    if (!native.startsWith(base)) return p;
    const { name, rest } = splitPackage(native.slice(base.length).split(path.sep).join("/"));
    if (!name || name === "tslab" || name.startsWith("@types")) return p;
    if (name.startsWith("@") && !name.includes("/")) return p; // a bare scope folder
    const dir = projectPackageDir(name);
    return dir ? path.join(dir, rest) : p;
  };
  if (!redirectTsSys(ts, map)) kernelLog(`project packages not visible to the type checker: ${patchStatus("ts-sys")?.reason}`);
}
