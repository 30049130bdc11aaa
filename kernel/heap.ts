/**
 * V8 heap sizing for a long-lived kernel process.
 *
 * Every cell runs the TypeScript compiler (type-check and transpile), which allocates a program's worth of
 * objects that live until the next cell and then die. What a cell keeps is small (its history entry and
 * declarations: the live heap grew 124 → 129 MB over 1,000 cells), but V8 sizes the old generation by a
 * dynamic growing factor and does not give committed pages back, so the resident size climbed to ~600 MB
 * after 1,000 cells of distinct code. A growing factor of 1.1 makes V8 collect before it commits more:
 * the same 1,000 cells then took it from 306 to 320 MB, and after 100 distinct cells, 20 heatmaps and 200
 * forward passes RSS was ~340 MB instead of ~490 MB, with cells and forward passes as fast.
 */
import v8 from "v8";

export const HEAP_GROWING_PERCENT_ENV = "ARRAKIS_HEAP_GROWING_PERCENT";
export const DEFAULT_HEAP_GROWING_PERCENT = 10;

/**
 * Sets V8's heap growing factor to 1 + p/100 (p from ARRAKIS_HEAP_GROWING_PERCENT, default 10; 0 keeps
 * V8's own dynamic factor). Called first thing in the kernel process, before the heap has grown.
 * Returns the percentage applied, or 0.
 */
export function tuneHeap(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env[HEAP_GROWING_PERCENT_ENV];
  const pct = raw === undefined || raw === "" ? DEFAULT_HEAP_GROWING_PERCENT : Number(raw);
  if (!Number.isInteger(pct) || pct < 0 || pct > 1000) {
    throw new Error(`${HEAP_GROWING_PERCENT_ENV}=${JSON.stringify(raw)}: expected an integer percentage from 0 to 1000`);
  }
  if (pct > 0) v8.setFlagsFromString(`--heap-growing-percent=${pct}`);
  return pct;
}
