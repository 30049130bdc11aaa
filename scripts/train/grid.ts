/**
 * The generalisation grid of an induction circuit: does the model copy a repeated segment of every length,
 * wherever it starts, with or without filler around it, two or more times? Measured with the project's own
 * model and tools (`HookedAutoModel`, the head detectors' induction score, head ablation), on the files a
 * model directory holds — so it checks the export as well as the circuit.
 *
 * Cells: for every segment length n from 3 to the longest that fits twice after `<bos>` (⌊(n_ctx − 1)/2⌋) and
 * every start offset f (the filler before the first copy, 0 … n_ctx − 1 − 2n):
 *   - copies 2:  `<bos> f… A A g…`  (g fills the context; f = 0 is "no filler before", g = 0 "none after");
 *   - copies k:  `<bos> f… A A … A g…` with k = as many copies as fit, when that is 3 or more.
 * Every word of a sequence is distinct (filler and segment), so the only repeats are the copies'.
 *
 * Per cell (mean over its sequences):
 *   - repeated-part loss: mean NLL of every token of copies 2..k except the first token of copy 2 (which
 *     nothing before it foretells);
 *   - first-copy loss: mean NLL of tokens 2..n of copy 1 (random words; ≈ ln |words| when nothing leaks);
 *   - induction score of every head: the head detectors' definition (`src/tools/detectors.ts`), i.e. mean
 *     attention from each query of copies 2..k to the positions right after its earlier occurrences;
 *   - with the induction heads zeroed together (heads whose grid-mean induction score is > 0.5, or the best
 *     head when none is): the rise of the repeated-part loss and the shift of the first-copy loss.
 * The recipe search (`recipe_search.py`) implements the same definitions in PyTorch.
 */
import type { HookedAutoModel } from "../../src/model/hooked-model";
import { AttentionTools } from "../../src/tools/attention";
import { detectHeads } from "../../src/tools/detectors";
import { BOS_ID, FIRST_WORD_ID, Rng } from "./synthetic";

export interface GridCell {
  /** Segment length. */
  n: number;
  /** Filler words before the first copy. */
  offset: number;
  copies: number;
  /** The cell's sequences, each exactly n_ctx ids. */
  rows: number[][];
}

export interface GridSpec {
  /** Sequences per cell, at least; short segments get more (see `minTokens`). */
  samples: number;
  /**
   * Enough sequences that each cell's first copy has at least this many scored tokens (n − 1 per sequence), so
   * a short segment's first-copy and repeated-part means are not a handful of tokens (default 24).
   */
  minTokens?: number;
  seed: number;
  /**
   * Which offsets of a length to include (given the largest, for two copies): every one by default; tests
   * pass a sample (e.g. first, middle, last) to keep the cost down while covering the same axes.
   */
  offsets?: (n: number, maxOffset: number) => number[];
}

/** Every segment length from 3 to the longest that fits twice in `nCtx` after `<bos>`. */
export function gridLengths(nCtx: number): number[] {
  return Array.from({ length: Math.floor((nCtx - 1) / 2) - 2 }, (_, i) => i + 3);
}

/** The grid's cells and their seeded sequences (see the file comment). */
export function gridCells(nCtx: number, vocabSize: number, spec: GridSpec): GridCell[] {
  const rng = new Rng(spec.seed);
  const slots = nCtx - 1;
  const cells: GridCell[] = [];
  for (const n of gridLengths(nCtx)) {
    const maxOffset = slots - 2 * n;
    const offsets = spec.offsets ? spec.offsets(n, maxOffset) : Array.from({ length: maxOffset + 1 }, (_, i) => i);
    for (const offset of offsets) {
      const many = Math.floor((slots - offset) / n); // as many copies as fit
      for (const copies of many >= 3 ? [2, many] : [2]) {
        const rows = Array.from({ length: Math.max(spec.samples, Math.ceil((spec.minTokens ?? 24) / (n - 1))) }, () => {
          const words = rng.distinct(slots - copies * n + n, FIRST_WORD_ID, vocabSize - 1);
          const [segment, filler] = [words.slice(0, n), words.slice(n)];
          return [BOS_ID, ...filler.slice(0, offset), ...Array.from({ length: copies }, () => segment).flat(), ...filler.slice(offset)];
        });
        cells.push({ n, offset, copies, rows });
      }
    }
  }
  return cells;
}

export interface CellResult {
  n: number;
  offset: number;
  copies: number;
  repeated: number;
  first: number;
  /** Induction score of every head, [layer][head]. */
  induction: number[][];
  /** With the induction heads zeroed. */
  ablated: { repeated: number; first: number };
}

export interface GridReport {
  nCtx: number;
  samples: number;
  cells: CellResult[];
  /** Grid means of every head, [layer][head]. */
  prevToken: number[][];
  induction: number[][];
  /** Rise of the grid-mean repeated-part loss when each head alone is zeroed, [layer][head]. */
  ablationRise: number[][];
  prevTokenHead: [number, number];
  /** The heads zeroed together for each cell's ablation figures. */
  inductionHeads: Array<[number, number]>;
}

/** The thresholds every cell must meet. */
export const GRID_REQUIREMENTS = {
  maxRepeatedLoss: 1.0,
  minInductionScore: 0.5,
  minAblationRise: 1.0,
  maxFirstCopyShift: 0.2,
};

/** Mean NLL of the repeated part and of the first copy of a cell's sequences (see the file comment). */
function cellLosses(perToken: number[][], n: number, offset: number, copies: number): { repeated: number; first: number } {
  const p0 = 1 + offset; // position of the first copy's first token
  let repeated = 0, first = 0, nr = 0, nf = 0;
  for (const row of perToken) { // row[t - 1] is the loss of the token at position t
    for (let t = p0 + 1; t < p0 + n; t++, nf++) first += row[t - 1];
    for (let t = p0 + n + 1; t < p0 + copies * n; t++, nr++) repeated += row[t - 1];
  }
  return { repeated: repeated / nr, first: first / nf };
}

/** Per-token losses of every cell's rows, in batches. */
function allLosses(model: HookedAutoModel, cells: GridCell[]): number[][][] {
  const rows = cells.flatMap((c) => c.rows);
  const out: number[][] = [];
  for (let i = 0; i < rows.length; i += 128) out.push(...model.loss(rows.slice(i, i + 128), { perToken: true }));
  let at = 0;
  return cells.map((c) => out.slice(at, (at += c.rows.length)));
}

const meanGrid = (grids: number[][][]) => grids[0].map((row, l) => row.map((_, h) => grids.reduce((s, g) => s + g[l][h], 0) / grids.length));

function argmax(grid: number[][], fromLayer = 0): [number, number] {
  let best: [number, number] = [fromLayer, 0];
  grid.forEach((row, l) => row.forEach((v, h) => { if (l >= fromLayer && v > grid[best[0]][best[1]]) best = [l, h]; }));
  return best;
}

/** Runs the grid on `model` (its own forward; active edits apply). */
export function inductionGrid(model: HookedAutoModel, spec: GridSpec): GridReport {
  const { nCtx, dVocab, nLayers: L, nHeads: H } = model.cfg;
  const cells = gridCells(nCtx, dVocab, spec);
  const tools = new AttentionTools(model);
  const induction = cells.map((c) => detectHeads(model, "induction", c.rows).values);
  const prevToken = meanGrid(cells.filter((_, i) => i % 8 === 0).map((c) => detectHeads(model, "previous-token", c.rows).values));
  const inductionMean = meanGrid(induction);
  let inductionHeads = inductionMean.flatMap((row, l) => row.map((v, h) => [l, h, v] as const)).filter(([, , v]) => v > 0.5).map(([l, h]) => [l, h] as [number, number]);
  if (!inductionHeads.length) inductionHeads = [argmax(inductionMean)];
  const clean = allLosses(model, cells).map((p, i) => cellLosses(p, cells[i].n, cells[i].offset, cells[i].copies));
  const handles = inductionHeads.map(([l, h]) => tools.ablateHead(l, h));
  let ablated: Array<{ repeated: number; first: number }>;
  try {
    ablated = allLosses(model, cells).map((p, i) => cellLosses(p, cells[i].n, cells[i].offset, cells[i].copies));
  } finally {
    for (const h of handles) h.restore();
  }
  const meanRepeated = (xs: Array<{ repeated: number }>) => xs.reduce((s, x) => s + x.repeated, 0) / xs.length;
  const ablationRise = Array.from({ length: L }, (_, l) => Array.from({ length: H }, (_, h) =>
    tools.withAblatedHead(l, h, () => meanRepeated(allLosses(model, cells).map((p, i) => cellLosses(p, cells[i].n, cells[i].offset, cells[i].copies)))) - meanRepeated(clean)));
  return {
    nCtx, samples: spec.samples,
    cells: cells.map((c, i) => ({ n: c.n, offset: c.offset, copies: c.copies, ...clean[i], induction: induction[i], ablated: ablated[i] })),
    prevToken, induction: inductionMean, ablationRise,
    prevTokenHead: argmax(prevToken), inductionHeads,
  };
}

/** The failed requirements (empty when every cell passes and the previous-token head precedes the induction heads). */
export function gridProblems(r: GridReport): string[] {
  const q = GRID_REQUIREMENTS, out: string[] = [];
  const where = (c: CellResult) => `|A| = ${c.n}, offset ${c.offset}, ${c.copies} copies`;
  for (const c of r.cells) {
    const best = Math.max(...c.induction.flat());
    const rise = c.ablated.repeated - c.repeated, shift = Math.abs(c.ablated.first - c.first);
    if (c.repeated > q.maxRepeatedLoss) out.push(`${where(c)}: repeated-part loss ${c.repeated.toFixed(3)} > ${q.maxRepeatedLoss}`);
    if (best < q.minInductionScore) out.push(`${where(c)}: best induction score ${best.toFixed(3)} < ${q.minInductionScore}`);
    if (rise < q.minAblationRise) out.push(`${where(c)}: zeroing the induction heads raises the repeated-part loss by ${rise.toFixed(3)} < ${q.minAblationRise}`);
    if (shift >= q.maxFirstCopyShift) out.push(`${where(c)}: zeroing the induction heads moves the first copy by ${shift.toFixed(3)} ≥ ${q.maxFirstCopyShift}`);
  }
  const [pl] = r.prevTokenHead;
  for (const [l, h] of r.inductionHeads) if (l <= pl) out.push(`induction head L${l}H${h} is not in a layer after the previous-token head's (L${r.prevTokenHead[0]}H${r.prevTokenHead[1]})`);
  return out;
}

/** Per segment length and copy count: the worst cell over the offsets (text table for logs and the model card). */
export function gridTable(r: GridReport): string {
  const lines = ["| n | copies | offsets | worst repeated-part loss (offset) | mean | lowest best induction score | lowest ablation rise | largest first-copy shift |", "|---|---|---|---|---|---|---|---|"];
  const groups = new Map<string, CellResult[]>();
  for (const c of r.cells) {
    const key = `${c.n}|${c.copies === 2 ? "2" : "≥3"}`;
    groups.set(key, [...(groups.get(key) ?? []), c]);
  }
  for (const [key, cs] of groups) {
    const [n, copies] = key.split("|");
    const worst = cs.reduce((a, b) => (b.repeated > a.repeated ? b : a));
    const mean = cs.reduce((s, c) => s + c.repeated, 0) / cs.length;
    const minBest = Math.min(...cs.map((c) => Math.max(...c.induction.flat())));
    const minRise = Math.min(...cs.map((c) => c.ablated.repeated - c.repeated));
    const maxShift = Math.max(...cs.map((c) => Math.abs(c.ablated.first - c.first)));
    const k = copies === "2" ? "2" : `${Math.min(...cs.map((c) => c.copies))}–${Math.max(...cs.map((c) => c.copies))}`;
    lines.push(`| ${n} | ${k} | ${cs.length} | ${worst.repeated.toFixed(3)} (${worst.offset}) | ${mean.toFixed(3)} | ${minBest.toFixed(3)} | ${minRise.toFixed(3)} | ${maxShift.toFixed(3)} |`);
  }
  return lines.join("\n");
}
