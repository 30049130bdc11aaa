/**
 * Head detectors: one score per layer × head saying how much a head attends like a previous-token,
 * duplicate-token or induction head, measured on the real attention patterns of a forward pass.
 *
 *     attention.inductionHeads()              // on generated repeated random tokens (seeded)
 *     attention.previousTokenHeads("the cat sat on the mat").top(2)
 *
 * Definitions follow TransformerLens' head detector (`transformer_lens/head_detector.py`): each kind names,
 * for every query position q, a set of target key positions —
 *
 * | kind            | targets of query q                                                          |
 * |-----------------|-----------------------------------------------------------------------------|
 * | previous-token  | q − 1                                                                       |
 * | duplicate-token | every earlier j < q with the same token as q                                 |
 * | induction       | j + 1 for every earlier j < q with the same token as q (what followed it)     |
 *
 * and a head's score is the attention it puts on the targets, averaged over the query positions that have
 * targets (over all sequences of the batch). A perfect head scores 1, a head that never attends there 0.
 * TransformerLens' default ("mul") divides by all query positions instead, so a perfect induction head on
 * `A A` scores only about 0.5 there; averaging over queries with targets makes 1 mean "perfect" for every
 * kind and input.
 *
 * Without an input the scores come from generated sequences `[bos] A A` (A = `seqLen` distinct random token
 * ids, special tokens excluded, a fixed seed), the standard probe for induction (Olsson et al. 2022).
 */
import * as tf from "@tensorflow/tfjs";
import { type Displayable, headGridText, headGridView, type MimeBundle } from "../display";
import { fail, show } from "../errors";
import type { HookedAutoModel } from "../model/hooked-model";
import type { ModelInput } from "../model/input";
import { checkCount, checkOptions, seededRandom, topIndices } from "./common";

export type DetectorKind = "previous-token" | "duplicate-token" | "induction";
export const DETECTOR_KINDS: readonly DetectorKind[] = ["previous-token", "duplicate-token", "induction"];

/** Options of the generated probe input (only used when no input is given). */
export interface DetectorOptions {
  /** Length of the random segment A of `[bos] A A` (default min(20, what fits the context)). */
  seqLen?: number;
  /** Number of generated sequences the scores average over (default 4). */
  nSeqs?: number;
  /** Seed of the generator (default 0): same seed, same sequences, same scores. */
  seed?: number;
}

/** Detector scores of every head, `[layer][head]`, in [0, 1]. */
export class HeadScores implements Displayable {
  constructor(
    readonly kind: DetectorKind,
    /** Score of every head, `[layer][head]`. */
    readonly values: number[][],
    /** The token-id rows the patterns came from. */
    readonly rows: number[][],
    /** Where the rows came from, e.g. "4 generated sequences [bos] A A, |A| = 20, seed 0". */
    readonly source: string,
  ) {}

  /** "induction score" etc. */
  get label(): string {
    return `${this.kind} score`;
  }

  /** The score of one head. */
  at(layer: number, head: number): number {
    const v = this.values[layer]?.[head];
    if (v === undefined) fail(`no head L${show(layer)}H${show(head)}: the scores cover ${this.values.length} layers × ${this.values[0]?.length ?? 0} heads`);
    return v;
  }

  /** The k highest-scoring heads, best first. */
  top(k = 5): { layer: number; head: number; score: number }[] {
    checkCount("k", k);
    const flat = this.values.flatMap((row, layer) => row.map((score, head) => ({ layer, head, score })));
    return topIndices(flat.map((e) => e.score), k).map((i) => flat[i]);
  }

  private get grid() {
    return { values: this.values, title: `${capitalise(this.kind)} heads (${this.source})`, metricLabel: this.label, diverging: false, domain: [0, 1] as [number, number] };
  }

  toMimeBundle(): MimeBundle {
    return headGridView(this.grid);
  }

  toJSON(): object {
    return { kind: this.kind, values: this.values, source: this.source, rows: this.rows };
  }

  /** A header naming the data, then the grid view's text (highest and lowest heads, the table). */
  toString(): string {
    return `HeadScores(${this.label} of every layer × head; ${this.source})\n${headGridText(this.grid)}`;
  }

}

function capitalise(s: string): string {
  return s[0].toUpperCase() + s.slice(1);
}

/**
 * For every query position of one sequence, the key positions a head of this kind attends to (see the table
 * in the file comment). Exported for tests and custom detectors.
 */
export function detectionTargets(kind: DetectorKind, row: readonly number[]): number[][] {
  return row.map((id, q) => {
    if (kind === "previous-token") return q > 0 ? [q - 1] : [];
    const earlier: number[] = [];
    for (let j = 0; j < q; j++) if (row[j] === id) earlier.push(kind === "induction" ? j + 1 : j);
    return earlier;
  });
}

/**
 * `nSeqs` sequences `[bos] A A` with A = `seqLen` random token ids (distinct when the vocabulary allows),
 * seeded. BOS is prepended when the model's BOS policy prepends it to strings; token ids whose strings look
 * special (`<…>`, e.g. `<bos>`, `<|endoftext|>`) are never drawn.
 */
export function repeatedRandomTokens(model: HookedAutoModel, options: DetectorOptions = {}): number[][] {
  const { bos, seqLen, nSeqs, seed } = probeSpec(model, options);
  const pool = drawableIds(model);
  const random = seededRandom(seed);
  const pick = () => pool[Math.floor(random() * pool.length)];
  return Array.from({ length: nSeqs }, () => {
    const segment: number[] = [];
    const used = new Set<number>();
    while (segment.length < seqLen) {
      const id = pick();
      if (used.has(id) && pool.length >= seqLen) continue; // distinct, so the only repeats are the copy's
      used.add(id);
      segment.push(id);
    }
    return [...bos, ...segment, ...segment];
  });
}

/** The generator's options with defaults filled in and checked against the model's context. */
function probeSpec(model: HookedAutoModel, options: DetectorOptions): { bos: number[]; seqLen: number; nSeqs: number; seed: number } {
  const c = model.cfg;
  const bos = model.prependBos && c.bosTokenId !== null ? [c.bosTokenId] : [];
  const fits = Math.floor((c.nCtx - bos.length) / 2);
  const { seqLen = Math.min(20, fits), nSeqs = 4, seed = 0 } = checkOptions("repeatedRandomTokens", options, ["seqLen", "nSeqs", "seed"]);
  checkCount("seqLen", seqLen);
  checkCount("nSeqs", nSeqs);
  if (!Number.isInteger(seed)) fail(`seed must be an integer, got ${show(seed)}`);
  if (seqLen > fits) fail(`seqLen ${seqLen} is too long: ${bos.length ? "bos + " : ""}2 × ${seqLen} tokens exceed the model's context of ${c.nCtx} (at most ${fits})`);
  return { bos, seqLen, nSeqs, seed };
}

/** Ids the generator may draw: not BOS/EOS, and (with a tokenizer) not special-looking strings. */
function drawableIds(model: HookedAutoModel): number[] {
  const c = model.cfg;
  const special = (id: number) => id === c.bosTokenId || id === c.eosTokenId || (model.tokenizer !== null && /^<.*>$/.test(model.idToToken(id)));
  const ids = Array.from({ length: c.dVocab }, (_, id) => id).filter((id) => !special(id));
  if (!ids.length) fail(`the vocabulary of ${c.dVocab} tokens has no ordinary token to build a probe sequence from`);
  return ids;
}

/**
 * Scores of every layer × head for one detector kind, on `input` (a string, ids or a batch) or, without an
 * input, on generated repeated random tokens. Reflects the model as it is (active ablations/merges apply).
 */
export function detectHeads(model: HookedAutoModel, kind: DetectorKind, input?: ModelInput | DetectorOptions, options?: DetectorOptions): HeadScores {
  if (!DETECTOR_KINDS.includes(kind)) fail(`unknown head detector ${show(kind)}; known: ${DETECTOR_KINDS.join(", ")}`);
  // `inductionHeads({ seqLen: 10 })`: options without an input.
  if (isPlainObject(input) && options === undefined) [input, options] = [undefined, input as DetectorOptions];
  let rows: number[][];
  let source: string;
  if (input === undefined) {
    const opts = checkOptions(`${kind} detector`, options, ["seqLen", "nSeqs", "seed"]);
    rows = repeatedRandomTokens(model, opts);
    const spec = probeSpec(model, opts);
    source = `${spec.nSeqs} generated sequence${spec.nSeqs > 1 ? "s" : ""} ${spec.bos.length ? "[bos] " : ""}A A, |A| = ${spec.seqLen}, seed ${spec.seed}`;
  } else {
    if (options !== undefined && Object.keys(checkOptions(`${kind} detector`, options, ["seqLen", "nSeqs", "seed"])).length) {
      fail(`${kind} detector: seqLen / nSeqs / seed shape the generated input; they do not apply when an input is given`);
    }
    rows = model.tokenRows(input as ModelInput);
    source = `${rows.length} given sequence${rows.length > 1 ? "s" : ""} of ${rows[0].length} tokens`;
  }
  const targets = rows.map((row) => detectionTargets(kind, row)); // [batch][q] → key positions
  const counted = targets.flat().filter((t) => t.length > 0).length;
  if (!counted) {
    fail(`the input has no query position with a target for the ${kind} detector (${kind === "previous-token" ? "it needs at least 2 tokens" : "no token occurs twice"}); pass a sequence with repeated tokens, or no input for a generated repeated sequence`);
  }
  return new HeadScores(kind, scoreLayers(model, rows, targets, counted), rows, source);
}

function isPlainObject(x: unknown): boolean {
  return typeof x === "object" && x !== null && !Array.isArray(x) && !(x instanceof tf.Tensor);
}

/** One forward pass caching every layer's pattern; per layer the mean target attention of each head. */
function scoreLayers(model: HookedAutoModel, rows: number[][], targets: number[][][], counted: number): number[][] {
  const { nLayers: L } = model.cfg;
  const T = rows[0].length;
  const names = Array.from({ length: L }, (_, l) => `blocks.${l}.attn.hook_pattern`);
  const mask = new Float32Array(rows.length * T * T); // [batch, q, k]: 1 on targets
  targets.forEach((perQuery, b) => perQuery.forEach((keys, q) => keys.forEach((k) => (mask[(b * T + q) * T + k] = 1))));
  const { logits, cache } = model.runWithCache(rows, { names });
  try {
    return names.map((name) => {
      const perHead = tf.tidy(() => {
        const detection = tf.tensor4d(mask, [rows.length, 1, T, T]); // [batch, 1, q, k]
        const onTargets = tf.sum(tf.mul(cache.get(name), detection), [0, 2, 3]); // [head]
        return tf.div(onTargets, counted);
      });
      const values = Array.from(perHead.dataSync());
      perHead.dispose();
      return values;
    });
  } finally {
    logits.dispose();
    cache.dispose();
  }
}
