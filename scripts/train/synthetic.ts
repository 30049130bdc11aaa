/**
 * Seeded synthetic data for the embedded default model: sequences of readable English words in which a
 * random segment repeats. Nothing in a sequence is predictable except the continuation of a segment seen
 * before, so the only way to lower the loss is to copy from context — an induction circuit (a previous-token
 * head in layer 0 feeding an induction head in layer 1; Olsson et al. 2022, "In-context Learning and
 * Induction Heads").
 *
 * Every training sequence is exactly `length` tokens and starts with `<bos>`:
 *
 *     <bos> f… A A … A g…      A = n distinct random words, n uniform in [minSegment, maxSegment]
 *                              k copies of A, k uniform in [2, min(maxCopies, what fits)]
 *                              f, g = random filler words (drawn with replacement); the length of f is
 *                              uniform over what leaves room for the k copies, g fills the rest
 *     <bos> w…                 with probability noRepeat: random words only, nothing to copy
 *
 * so a segment of any length from 2 up repeats at any offset, two or more times, with or without filler
 * around it — what a user's own repeated sentence looks like — and sometimes nothing repeats at all.
 * Held-out sequences (`repeatedSequences`) are the plain form `<bos> A A`.
 */
import { fail, show } from "../../src/errors";
import { mulberry32 } from "../../src/model/init";

/** Special tokens, in id order. `<bos>` starts every sequence; `<unk>` is what unknown words map to. */
export const SPECIAL_TOKENS = ["<bos>", "<unk>"] as const;
export const BOS_ID = 0;
export const UNK_ID = 1;

/**
 * Common English words (lowercase, unique). Includes the words of the examples in the design notes
 * ("the cat sat on the mat") so they tokenize without `<unk>`.
 */
export const WORDS: readonly string[] = `
the a an and or but if of to in on at by for with from up down out over under about into after before
cat dog bird fish horse cow pig sheep mouse rabbit lion tiger bear wolf fox duck frog snake bee ant
mat hat bed box cup pot pan car bus train boat ship plane bike road street house home room door window wall
floor roof garden tree flower grass leaf rock stone hill river lake sea sun moon star sky rain snow wind
fire water air earth city town village farm park school shop market church bridge tower castle king queen
man woman boy girl child baby friend mother father sister brother family teacher doctor farmer baker
book letter paper pen pencil table chair desk lamp clock phone radio song music story game ball doll
bread milk cheese apple egg cake soup rice meat tea coffee sugar salt honey butter corn bean pie
red blue green yellow black white brown pink gray orange purple gold silver
big small tall short long old new young hot cold warm cool fast slow happy sad good bad soft hard dark light
loud quiet rich poor clean dirty full empty early late high low deep wide
sat ran ate saw had made went came took gave found told sang read wrote drew walked jumped played
sleeps runs eats sees makes goes comes takes gives finds tells sings reads writes walks jumps plays
is was are were be has have do did can will may must should would could
one two three four five six seven eight nine ten many few some all every each other
day night morning evening week year time hour minute spring summer autumn winter
north south east west left right near far here there now then today always never often
hand foot head eye ear nose mouth face hair arm leg heart
`.split(/\s+/).filter((w) => w.length > 0);

/** The full vocabulary: special tokens first, then the words. Index = token id. */
export const VOCAB: readonly string[] = [...SPECIAL_TOKENS, ...WORDS];
/** Ids that training sequences are made of (every word, no special token). */
export const FIRST_WORD_ID = SPECIAL_TOKENS.length;

{
  const seen = new Set<string>();
  for (const w of VOCAB) {
    if (seen.has(w)) fail(`synthetic vocabulary lists ${show(w)} twice`);
    if (/\s/.test(w) || w !== w.toLowerCase()) fail(`synthetic vocabulary word ${show(w)} must be lowercase without spaces`);
    seen.add(w);
  }
}

/**
 * Seeded sampling for data and initial weights, on the model's PRNG (`mulberry32` of src/model/init.ts:
 * 32-bit integer ops only, so the same seed gives the same stream on every platform).
 */
export class Rng {
  /** Uniform in [0, 1). */
  readonly next: () => number;
  constructor(seed: number) {
    if (!Number.isInteger(seed)) fail(`seed must be an integer, got ${show(seed)}`);
    this.next = mulberry32(seed);
  }
  /** Uniform integer in [lo, hi] (inclusive). */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  /** Standard normal (Box–Muller). */
  normal(): number {
    const u = 1 - this.next(); // (0, 1]
    const v = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
  /** `k` distinct integers drawn uniformly from [lo, hi]. */
  distinct(k: number, lo: number, hi: number): number[] {
    if (k > hi - lo + 1) fail(`cannot draw ${k} distinct values from [${lo}, ${hi}]`);
    const picked = new Set<number>();
    const out: number[] = [];
    while (out.length < k) {
      const x = this.int(lo, hi);
      if (!picked.has(x)) {
        picked.add(x);
        out.push(x);
      }
    }
    return out;
  }
}

export interface SyntheticOptions {
  /** Tokens per sequence, `<bos>` included (the model's context). */
  length: number;
  /** Shortest and longest repeated segment (the longest is capped at what fits twice). */
  minSegment: number;
  maxSegment: number;
  /** Most copies of the segment (at least 2; capped at what fits). */
  maxCopies?: number;
  /** Fraction of the sequences with no repeat at all (random words only). */
  noRepeat?: number;
  /**
   * The first stage's form instead: `<bos> f… A A A…`, filler first (length uniform in [0, length − 1 − 2n]),
   * then A repeated to the end of the sequence (the last copy may be cut short).
   */
  repeatToEnd?: boolean;
  /** Make this fraction of the sequences skip-copy sequences with repeat probability p. */
  skipCopy?: { fraction: number; p: number };
  /**
   * A mixture of forms instead of the ones above (weights summing to 1), the segment length n uniform in
   * [minSegment, maxSegment] for both repeating forms:
   *   - `toEnd`:  `<bos> f… A A A…` (filler drawn with replacement, length uniform in [0, room − 2n]; A repeated to
   *               the end, the last copy possibly cut short);
   *   - `copies`: `<bos> f… A A … A g…` with every word distinct (as in the generalisation grid): k = 2 copies
   *               or, half the time when 3 or more fit, k uniform in [3, what fits]; the filler before uniform
   *               in [0, room − kn], the rest after;
   *   - `early`:  `copies` with a short segment (n ≤ 8) right after `<bos>` (0–3 filler words before it);
   *   - `late`:   two copies of a short segment (n ≤ 8) whose first copy reaches the last 20 positions;
   *   - `none`:   random words, nothing to copy.
   * (`early` and `late` are the grid's corners, rare under the uniform draws of `copies`.)
   */
  mix?: Mixture;
  /** Vocabulary size to draw words from (ids FIRST_WORD_ID..vocabSize-1). Defaults to the full vocabulary. */
  vocabSize?: number;
}

function checkOptions(o: SyntheticOptions): number {
  const vocabSize = o.vocabSize ?? VOCAB.length;
  if (!Number.isInteger(o.length) || o.length < 5) fail(`sequence length must be an integer >= 5, got ${show(o.length)}`);
  if (!Number.isInteger(o.minSegment) || o.minSegment < 1 || 1 + 2 * o.minSegment > o.length) {
    fail(`minSegment must be an integer in [1, ${Math.floor((o.length - 1) / 2)}] for length ${o.length}, got ${show(o.minSegment)}`);
  }
  if (!Number.isInteger(o.maxSegment) || o.maxSegment < o.minSegment) fail(`maxSegment must be an integer >= minSegment=${o.minSegment}, got ${show(o.maxSegment)}`);
  if (Math.min(o.maxSegment, Math.floor((o.length - 1) / 2)) > vocabSize - FIRST_WORD_ID) fail(`maxSegment ${o.maxSegment} exceeds the ${vocabSize - FIRST_WORD_ID} words available`);
  if (o.maxCopies !== undefined && (!Number.isInteger(o.maxCopies) || o.maxCopies < 2)) fail(`maxCopies must be an integer >= 2, got ${show(o.maxCopies)}`);
  if (o.noRepeat !== undefined && !(o.noRepeat >= 0 && o.noRepeat <= 1)) fail(`noRepeat must be a fraction in [0, 1], got ${show(o.noRepeat)}`);
  if (o.mix) {
    const weights = Object.values(o.mix);
    if (!weights.every((w) => w >= 0) || Math.abs(weights.reduce((a, b) => a + b, 0) - 1) > 1e-9) fail(`mix weights must be non-negative and sum to 1, got ${show(o.mix)}`);
  }
  return vocabSize;
}

/** One training sequence (see the file comment), exactly `o.length` ids. */
export function trainingSequence(rng: Rng, o: SyntheticOptions): number[] {
  const vocabSize = checkOptions(o);
  const room = o.length - 1; // tokens after <bos>
  const filler = (k: number) => Array.from({ length: k }, () => rng.int(FIRST_WORD_ID, vocabSize - 1));
  if (o.mix) return mixtureSequence(rng, o, vocabSize, filler);
  if (o.repeatToEnd) {
    const n = rng.int(o.minSegment, Math.min(o.maxSegment, Math.floor(room / 2)));
    const segment = rng.distinct(n, FIRST_WORD_ID, vocabSize - 1);
    const out = [BOS_ID, ...filler(rng.int(0, room - 2 * n))];
    for (let i = 0; out.length < o.length; i++) out.push(segment[i % n]);
    return out;
  }
  if (o.noRepeat && rng.next() < o.noRepeat) return [BOS_ID, ...filler(room)];
  const n = rng.int(o.minSegment, Math.min(o.maxSegment, Math.floor(room / 2)));
  const k = rng.int(2, Math.min(o.maxCopies ?? room, Math.floor(room / n)));
  const before = rng.int(0, room - k * n);
  const segment = rng.distinct(n, FIRST_WORD_ID, vocabSize - 1);
  const copies = Array.from({ length: k }, () => segment).flat();
  return [BOS_ID, ...filler(before), ...copies, ...filler(room - before - k * n)];
}

/** Weights of the data forms of `SyntheticOptions.mix` (summing to 1). */
export interface Mixture {
  toEnd: number;
  copies: number;
  early?: number;
  late?: number;
  none: number;
}

/** `<bos>`, then the filler's first `before` words, `k` copies of the segment, the rest of the filler. */
function withCopies(segment: number[], fill: number[], before: number, k: number): number[] {
  return [BOS_ID, ...fill.slice(0, before), ...Array.from({ length: k }, () => segment).flat(), ...fill.slice(before)];
}

/** `room − (k − 1)·n` distinct words: a segment of `n` and the filler. */
function distinctWords(rng: Rng, room: number, n: number, k: number, vocabSize: number): [number[], number[]] {
  const words = rng.distinct(room - k * n + n, FIRST_WORD_ID, vocabSize - 1);
  return [words.slice(0, n), words.slice(n)];
}

/** One sequence of `o.mix` (see `SyntheticOptions.mix`); the draws mirror recipe_search.py's `--mix`. */
function mixtureSequence(rng: Rng, o: SyntheticOptions, vocabSize: number, filler: (k: number) => number[]): number[] {
  const { toEnd, copies, early = 0, late = 0 } = o.mix!;
  const room = o.length - 1;
  const r = rng.next();
  const shortLength = () => rng.int(o.minSegment, Math.min(8, Math.floor(room / 2)));
  if (r >= toEnd + copies + early + late) return [BOS_ID, ...filler(room)];
  if (r >= toEnd + copies + early) {
    const n = shortLength();
    const before = rng.int(Math.max(0, room - 20 - n), room - 2 * n);
    return withCopies(...distinctWords(rng, room, n, 2, vocabSize), before, 2);
  }
  if (r >= toEnd + copies) {
    const n = shortLength();
    const k = rng.next() < 0.5 ? 2 : rng.int(3, Math.floor((room - 3) / n));
    const before = rng.int(0, Math.min(3, room - k * n));
    return withCopies(...distinctWords(rng, room, n, k, vocabSize), before, k);
  }
  const n = rng.int(o.minSegment, Math.min(o.maxSegment, Math.floor(room / 2)));
  if (r < toEnd) {
    const out = [BOS_ID, ...filler(rng.int(0, room - 2 * n))];
    const segment = rng.distinct(n, FIRST_WORD_ID, vocabSize - 1);
    for (let i = 0; out.length < o.length; i++) out.push(segment[i % n]);
    return out;
  }
  const most = Math.floor(room / n);
  const k = most < 3 || rng.next() < 0.5 ? 2 : rng.int(3, most);
  const before = rng.int(0, room - k * n);
  return withCopies(...distinctWords(rng, room, n, k, vocabSize), before, k);
}

/**
 * A "skip-copy" sequence: random words where each word, with probability `p`, repeats the word two places
 * back (x[i] = x[i-2]). Its only learnable regularity is "the next word may be the one before the current
 * one", which a single previous-token head predicts directly. Used briefly at the start of training, it grows
 * the previous-token head that the induction circuit later builds on (otherwise a long plateau: the induction
 * head gives no gradient to a previous-token head that does not exist yet, and vice versa).
 */
export function skipCopySequence(rng: Rng, length: number, p: number, vocabSize = VOCAB.length): number[] {
  const out = [BOS_ID];
  while (out.length < length) {
    out.push(out.length >= 3 && rng.next() < p ? out[out.length - 2] : rng.int(FIRST_WORD_ID, vocabSize - 1));
  }
  return out;
}

/** `count` training sequences as one flat row-major Int32Array [count, o.length]. */
export function trainingBatch(rng: Rng, count: number, o: SyntheticOptions): Int32Array {
  const out = new Int32Array(count * o.length);
  for (let i = 0; i < count; i++) {
    const skip = o.skipCopy !== undefined && rng.next() < o.skipCopy.fraction;
    out.set(skip ? skipCopySequence(rng, o.length, o.skipCopy!.p, o.vocabSize) : trainingSequence(rng, o), i * o.length);
  }
  return out;
}

/**
 * Held-out repeated sequences for tests and circuit checks: `<bos> w1 … wn w1 … wn` with the n words
 * distinct and uniform over the vocabulary's words, seeded. Positions 1..n are the first half, n+1..2n the
 * repeated half. Use a seed different from the training seed to keep them held out.
 */
export function repeatedSequences(count: number, half: number, seed: number, vocabSize = VOCAB.length): number[][] {
  if (!Number.isInteger(count) || count < 1) fail(`count must be a positive integer, got ${show(count)}`);
  if (!Number.isInteger(half) || half < 1 || half > vocabSize - FIRST_WORD_ID) {
    fail(`half must be an integer in [1, ${vocabSize - FIRST_WORD_ID}], got ${show(half)}`);
  }
  // Offset the stream so that held-out seed s never replays training seed s.
  const rng = new Rng((seed ^ 0x5eed1e55) >>> 0);
  const out: number[][] = [];
  for (let i = 0; i < count; i++) {
    const segment = rng.distinct(half, FIRST_WORD_ID, vocabSize - 1);
    out.push([BOS_ID, ...segment, ...segment]);
  }
  return out;
}

/** Ids to words (space-separated), for printing samples. */
export function detokenize(ids: ArrayLike<number>): string {
  return Array.from(ids, (i) => VOCAB[i] ?? `<${i}?>`).join(" ");
}
