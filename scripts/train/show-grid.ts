/**
 * Prints the generalisation grid (`grid.ts`) of a model directory: the worst cell per segment length and copy
 * count, every head's scores, and the failed requirements.
 *
 *   npx tsx scripts/train/show-grid.ts [DIR] [--samples N] [--sampled-offsets]
 * DIR defaults to the embedded model; --sampled-offsets keeps only the first, middle and last offset (fast).
 */
import { initBackend } from "../../src/backend";
import { HookedAutoModel } from "../../src/model/hooked-model";
import { gridProblems, inductionGrid } from "./grid";
import { describeReport } from "./train-embedded";

async function main(argv: string[]): Promise<void> {
  const dir = argv.find((a, i) => !a.startsWith("--") && argv[i - 1] !== "--samples");
  const samples = argv.includes("--samples") ? Number(argv[argv.indexOf("--samples") + 1]) : 2;
  const sampled = argv.includes("--sampled-offsets");
  process.env.ARRAKIS_WASM_THREADS ??= "0";
  await initBackend();
  const model = await HookedAutoModel.fromPretrained(dir);
  try {
    const started = Date.now();
    const r = inductionGrid(model, { samples, seed: 1234, offsets: sampled ? (_n, max) => [...new Set([0, Math.floor(max / 2), max])] : undefined });
    console.log(describeReport(r));
    const problems = gridProblems(r);
    console.log(`${r.cells.length} cells × ${samples} sequences in ${((Date.now() - started) / 1000).toFixed(0)} s; ${problems.length} failed requirement(s)`);
    for (const p of problems.slice(0, 20)) console.log(`  ${p}`);
  } finally {
    model.dispose();
  }
}

main(process.argv.slice(2)).catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
