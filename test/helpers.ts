/** Shared test helpers: where the Hugging Face fixtures live and small numeric comparisons. */
import * as path from "node:path";
import * as fs from "node:fs";
import * as os from "node:os";

/** The repository root (this file lives in test/). */
export const repoRoot = path.resolve(__dirname, "..");

/**
 * The Hugging Face reference checkpoints committed under `test/fixtures/hf/<arch>/` (see the README there: what
 * each tensor is and which transformers version made it). A fresh clone carries them; nothing outside the
 * checkout is read.
 */
export function hfFixture(arch: "gpt2" | "llama"): string {
  const dir = path.join(repoRoot, "test", "fixtures", "hf", arch);
  if (!fs.existsSync(dir)) throw new Error(`fixture folder ${dir} not found (it is committed with the repository: is the checkout complete?)`);
  return dir;
}

/** Max absolute difference of two equally long arrays. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length mismatch: ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/**
 * A fresh folder in the system temp dir, removed when this test process exits (passed or failed), so a
 * test that throws half-way still leaves nothing behind.
 */
export function scratchDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  process.once("exit", () => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}
