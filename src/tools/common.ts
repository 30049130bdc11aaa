/**
 * Small helpers shared by the tools: argument checks that name the bad value, a seeded PRNG, ranking and
 * text formatting for `toString()`. Nothing here touches tensors.
 */
import { mulberry32 } from "../model/init";
import { checkIndex, fail, show } from "../errors";
import type { HookedAutoModel } from "../model/hooked-model";
import type { ModelInput } from "../model/input";

/** Rejects option keys the function does not know, so a typo (`{ mdoe: "mean" }`) is not silently ignored. */
export function checkOptions<T extends object>(where: string, opts: T | undefined, known: readonly string[]): T {
  if (opts === undefined || opts === null) return {} as T;
  if (typeof opts !== "object" || Array.isArray(opts)) fail(`${where}: options must be an object, got ${show(opts)}`);
  for (const key of Object.keys(opts)) {
    if (!known.includes(key)) fail(`${where}: unknown option ${show(key)}; known options: ${known.join(", ")}`);
  }
  return opts;
}

export function checkLayer(model: HookedAutoModel, layer: unknown): number {
  return checkIndex("layer", layer, model.cfg.nLayers);
}

export function checkHead(model: HookedAutoModel, head: unknown): number {
  return checkIndex("head", head, model.cfg.nHeads);
}

/** An integer ≥ min (k, nSamples, seqLen …). */
export function checkCount(what: string, value: unknown, min = 1): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < min) fail(`${what} must be an integer ≥ ${min}, got ${show(value)}`);
  return value;
}

/** A number in [lo, hi] (alpha of a merge, significance level …). */
export function checkUnit(what: string, value: unknown, lo = 0, hi = 1): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value < lo || value > hi) fail(`${what} must be a number in [${lo}, ${hi}], got ${show(value)}`);
  return value;
}

/**
 * The token ids of exactly one sequence. Tools that return one picture per sequence (patterns, top-attended
 * keys, ablation comparisons) take one sequence; a batch is an explicit error rather than a silent `[0]`.
 */
export function oneSequence(model: HookedAutoModel, input: ModelInput, tool: string): number[] {
  const rows = model.tokenRows(input);
  if (rows.length !== 1) {
    fail(`${tool} takes one sequence, got a batch of ${rows.length}; call it once per sequence, e.g. rows.map((r) => attention.${tool}(r, …))`);
  }
  return rows[0];
}

/** The model's seeded PRNG (mulberry32, identical on every platform), with the seed checked. */
export function seededRandom(seed: number): () => number {
  if (!Number.isInteger(seed)) fail(`seed must be an integer, got ${show(seed)}`);
  return mulberry32(seed);
}

/** Indices of the k largest values, largest first; ties keep the lower index first (stable, reproducible). */
export function topIndices(values: readonly number[], k: number): number[] {
  return values
    .map((v, i) => [v, i] as const)
    .sort((a, b) => b[0] - a[0] || a[1] - b[1])
    .slice(0, k)
    .map(([, i]) => i);
}

/** A number for text output: fixed decimals, sign kept. */
export function fmt(x: number, digits = 3): string {
  return Number.isFinite(x) ? x.toFixed(digits) : String(x);
}

/** A token for text output: quoted JSON string, shortened. */
export function tok(s: string, max = 14): string {
  const q = JSON.stringify(s);
  return q.length > max + 2 ? q.slice(0, max + 1) + "…\"" : q;
}

/** Left-aligned columns for text output. */
export function textTable(rows: string[][]): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => (r[c] ?? "").length)));
  return rows.map((r) => r.map((cell, c) => cell.padEnd(widths[c])).join("  ").trimEnd()).join("\n");
}
