/**
 * tslab's own `display` API (`import { display } from "tslab"`) writes through the module variable
 * `lastWriteDisplayData` of tslab/dist/jupyter, which tslab sets only in its own kernel loop. Our kernel
 * runs the loop itself, so it sets that variable to the current cell's display sink before each cell.
 */
import { ApplyOptions, guarded, installedVersion, PatchSpec } from "./index";

export const TSLAB_DISPLAY: PatchSpec = {
  name: "tslab-display",
  target: "tslab",
  pinned: "1.0.22",
  does: "tslab's display API (import { display } from \"tslab\") writes to the running cell",
  withoutIt: "tslab's own display API shows nothing in this kernel (arrakis's display() still works)",
};

/** Points tslab's `display` at `sink`. Returns whether it was applied (the reason is in `patchReport()`). */
export function setTslabDisplaySink(jupyterModule: object, sink: unknown, opts: ApplyOptions = {}): boolean {
  const applied = guarded(TSLAB_DISPLAY, opts.version ?? installedVersion(TSLAB_DISPLAY.target), () => {
    if (!("lastWriteDisplayData" in jupyterModule)) throw new Error("tslab/dist/jupyter has no lastWriteDisplayData");
    (jupyterModule as { lastWriteDisplayData: unknown }).lastWriteDisplayData = sink;
    return true;
  });
  return applied === true;
}
