/** Shared test helpers: where the Hugging Face fixtures live and small numeric comparisons. */
import * as path from "node:path";
import * as fs from "node:fs";

/** The repository root (this file lives in test/). */
export const repoRoot = path.resolve(__dirname, "..");

/**
 * `../shared/fixtures/hf` beside the checkout: CI clones the repo into a fresh folder with a copy of shared/
 * next to it, developers have it at /work/shared.
 */
export function hfFixture(arch: "gpt2" | "llama"): string {
  const dir = path.join(repoRoot, "..", "shared", "fixtures", "hf", arch);
  if (!fs.existsSync(dir)) throw new Error(`fixture folder ${dir} not found (expected ../shared beside the checkout)`);
  return dir;
}

/** Max absolute difference of two equally long arrays. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length mismatch: ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}
