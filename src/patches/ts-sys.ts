/**
 * Redirected file lookups for tslab's TypeScript host. tslab builds its compiler host with
 * `Object.create(ts.sys)`, so replacing the file-system methods of the shared `ts.sys` (TypeScript's
 * process-wide host object, mutable but not meant to be patched) before the converter is created changes
 * what the type checker sees. Written for the TypeScript that tslab bundles.
 */
import * as fs from "node:fs";
import { ApplyOptions, guarded, installedVersion, PatchSpec } from "./index";

export const TS_SYS: PatchSpec = {
  name: "ts-sys",
  target: "@tslab/typescript-for-tslab",
  pinned: "5.0.4",
  does: "tslab's type checker finds the project's packages under <cwd>/node_modules",
  withoutIt: "cells type-check only against packages installed next to the kernel (imports of project packages may report 'Cannot find module')",
};

/** The part of the TypeScript namespace the patch touches. */
export interface TsLike {
  version?: string;
  sys: unknown;
}

const LOOKUPS = ["fileExists", "directoryExists", "readFile", "readDirectory", "getDirectories", "getModifiedTime"];

/**
 * Makes every path lookup of `ts.sys` go through `map` (a path it does not change is looked up as before);
 * `realpath` returns the real location of a mapped path, so a file reached two ways is one file to the
 * checker. Returns whether it was applied (the reason is in `patchReport()`).
 */
export function redirectTsSys(ts: TsLike, map: (p: string) => string, opts: ApplyOptions = {}): boolean {
  const version = opts.version ?? ts.version ?? installedVersion(TS_SYS.target);
  const applied = guarded(TS_SYS, version, () => {
    const sys = ts.sys as Record<string, unknown>;
    if (!sys || typeof sys.fileExists !== "function") throw new Error("ts.sys has no fileExists");
    for (const fn of LOOKUPS) {
      const orig = sys[fn] as ((p: string, ...rest: unknown[]) => unknown) | undefined;
      if (typeof orig !== "function") continue;
      sys[fn] = function (this: unknown, p: string, ...rest: unknown[]) {
        return orig.call(this, map(p), ...rest);
      };
    }
    const realpath = sys.realpath as ((p: string) => string) | undefined;
    sys.realpath = (p: string) => {
      const mapped = map(p);
      if (mapped !== p) {
        try {
          return fs.realpathSync.native(mapped);
        } catch {
          return mapped;
        }
      }
      return realpath ? realpath(p) : p;
    };
    return true;
  });
  return applied === true;
}
