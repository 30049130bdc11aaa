/**
 * Checks that a trained checkpoint really contains an induction circuit, with a forward written
 * independently of the TensorFlow.js training code: plain float64 loops over the weights read back from the
 * written `model.safetensors` + `config.json`. Besides the circuit figures this catches export mistakes
 * (names, [in, out] layouts, Q|K|V order) because the numbers come from the file, not the training variables.
 *
 * Definitions (on held-out sequences `<bos> w1 … wn w1 … wn`, positions 0..2n):
 *  - previous-token score of a head: mean over query positions i ≥ 1 of pattern[i, i-1];
 *  - induction score: mean over second-half positions i in n+1..2n of pattern[i, i-n+1] (the token right after
 *    the earlier occurrence of the current token);
 *  - first-half loss: mean NLL of the tokens at positions 2..n (w2..wn, first time; w1 is unpredictable);
 *  - repeated-half loss: mean NLL of the tokens at positions n+2..2n (w2..wn again — everything an induction
 *    circuit can predict; w1's second occurrence cannot be foreseen);
 *  - head ablation: that head's z (its d_head-wide slice of the `c_proj` input) set to 0; c_proj's bias stays.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { fail, show } from "../errors";
import { readSafetensors } from "../io/safetensors";

export interface Gpt2Weights {
  nLayer: number;
  nHead: number;
  dModel: number;
  dMlp: number;
  nCtx: number;
  vocabSize: number;
  eps: number;
  w: Map<string, Float32Array>;
}

export function loadGpt2Dir(dir: string): Gpt2Weights {
  const cfgPath = path.join(dir, "config.json");
  if (!fs.existsSync(cfgPath)) fail(`no config.json in ${show(dir)}`);
  const cfg = JSON.parse(fs.readFileSync(cfgPath, "utf8")) as Record<string, unknown>;
  if (cfg.model_type !== "gpt2") fail(`${cfgPath}: model_type must be "gpt2", got ${show(cfg.model_type)}`);
  if (cfg.activation_function !== "gelu_new") fail(`${cfgPath}: only gelu_new is supported here, got ${show(cfg.activation_function)}`);
  const dModel = cfg.n_embd as number;
  const { tensors } = readSafetensors(path.join(dir, "model.safetensors"));
  const w = new Map<string, Float32Array>();
  for (const [k, t] of tensors) w.set(k, t.data as Float32Array);
  return {
    nLayer: cfg.n_layer as number,
    nHead: cfg.n_head as number,
    dModel,
    dMlp: (cfg.n_inner as number | null) ?? 4 * dModel,
    nCtx: cfg.n_positions as number,
    vocabSize: cfg.vocab_size as number,
    eps: (cfg.layer_norm_epsilon as number) ?? 1e-5,
    w,
  };
}

function get(m: Gpt2Weights, name: string): Float32Array {
  return m.w.get(name) ?? fail(`checkpoint has no tensor ${show(name)}`);
}

/** y[T, out] = x[T, in] @ W[in, out] + b (HF Conv1D). */
function conv1d(x: Float64Array, T: number, nIn: number, W: Float32Array, b: Float32Array, nOut: number): Float64Array {
  const y = new Float64Array(T * nOut);
  for (let t = 0; t < T; t++) {
    const row = y.subarray(t * nOut, (t + 1) * nOut);
    for (let o = 0; o < nOut; o++) row[o] = b[o];
    for (let i = 0; i < nIn; i++) {
      const xi = x[t * nIn + i];
      if (xi === 0) continue;
      const wr = i * nOut;
      for (let o = 0; o < nOut; o++) row[o] += xi * W[wr + o];
    }
  }
  return y;
}

function layerNorm(x: Float64Array, T: number, D: number, g: Float32Array, b: Float32Array, eps: number): Float64Array {
  const y = new Float64Array(T * D);
  for (let t = 0; t < T; t++) {
    let mean = 0;
    for (let d = 0; d < D; d++) mean += x[t * D + d];
    mean /= D;
    let v = 0;
    for (let d = 0; d < D; d++) v += (x[t * D + d] - mean) ** 2;
    const inv = 1 / Math.sqrt(v / D + eps);
    for (let d = 0; d < D; d++) y[t * D + d] = (x[t * D + d] - mean) * inv * g[d] + b[d];
  }
  return y;
}

const geluNew = (x: number) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));

export interface JsForward {
  /** log-probabilities [T][V]. */
  logProbs: Float64Array[];
  /** patterns[layer][head] = [T·T] row-major [query, key]. */
  patterns: Float64Array[][];
}

/** One sequence through the model; `ablate` lists [layer, head] pairs whose z is zeroed. */
export function forwardJs(m: Gpt2Weights, ids: number[], ablate: Array<[number, number]> = []): JsForward {
  const T = ids.length, D = m.dModel, H = m.nHead, dh = D / H, V = m.vocabSize;
  if (T < 1 || T > m.nCtx) fail(`sequence length ${T} must be in [1, ${m.nCtx}]`);
  const wte = get(m, "transformer.wte.weight"), wpe = get(m, "transformer.wpe.weight");
  let x = new Float64Array(T * D);
  ids.forEach((id, t) => {
    if (!Number.isInteger(id) || id < 0 || id >= V) fail(`token id ${show(id)} at position ${t} is out of range [0, ${V - 1}]`);
    for (let d = 0; d < D; d++) x[t * D + d] = wte[id * D + d] + wpe[t * D + d];
  });
  const patterns: Float64Array[][] = [];
  for (let l = 0; l < m.nLayer; l++) {
    const p = `transformer.h.${l}`;
    const a = layerNorm(x, T, D, get(m, `${p}.ln_1.weight`), get(m, `${p}.ln_1.bias`), m.eps);
    const qkv = conv1d(a, T, D, get(m, `${p}.attn.c_attn.weight`), get(m, `${p}.attn.c_attn.bias`), 3 * D); // [T, Q|K|V]
    const z = new Float64Array(T * D); // head-major merged z, the c_proj input
    const layerPatterns: Float64Array[] = [];
    for (let h = 0; h < H; h++) {
      const pat = new Float64Array(T * T);
      for (let i = 0; i < T; i++) {
        let max = -Infinity;
        for (let j = 0; j <= i; j++) {
          let s = 0;
          for (let e = 0; e < dh; e++) s += qkv[i * 3 * D + h * dh + e] * qkv[j * 3 * D + D + h * dh + e];
          s /= Math.sqrt(dh);
          pat[i * T + j] = s;
          if (s > max) max = s;
        }
        let sum = 0;
        for (let j = 0; j <= i; j++) sum += pat[i * T + j] = Math.exp(pat[i * T + j] - max);
        for (let j = 0; j <= i; j++) pat[i * T + j] /= sum;
      }
      layerPatterns.push(pat);
      if (ablate.some(([al, ah]) => al === l && ah === h)) continue;
      for (let i = 0; i < T; i++) {
        for (let j = 0; j <= i; j++) {
          const pw = pat[i * T + j];
          for (let e = 0; e < dh; e++) z[i * D + h * dh + e] += pw * qkv[j * 3 * D + 2 * D + h * dh + e];
        }
      }
    }
    patterns.push(layerPatterns);
    const attnOut = conv1d(z, T, D, get(m, `${p}.attn.c_proj.weight`), get(m, `${p}.attn.c_proj.bias`), D);
    for (let i = 0; i < x.length; i++) x[i] += attnOut[i];
    const h2 = layerNorm(x, T, D, get(m, `${p}.ln_2.weight`), get(m, `${p}.ln_2.bias`), m.eps);
    const pre = conv1d(h2, T, D, get(m, `${p}.mlp.c_fc.weight`), get(m, `${p}.mlp.c_fc.bias`), m.dMlp);
    for (let i = 0; i < pre.length; i++) pre[i] = geluNew(pre[i]);
    const mlpOut = conv1d(pre, T, m.dMlp, get(m, `${p}.mlp.c_proj.weight`), get(m, `${p}.mlp.c_proj.bias`), D);
    x = x.map((v, i) => v + mlpOut[i]);
  }
  const f = layerNorm(x, T, D, get(m, "transformer.ln_f.weight"), get(m, "transformer.ln_f.bias"), m.eps);
  const logProbs: Float64Array[] = [];
  for (let t = 0; t < T; t++) {
    const lp = new Float64Array(V);
    let max = -Infinity;
    for (let v = 0; v < V; v++) {
      let s = 0;
      for (let d = 0; d < D; d++) s += f[t * D + d] * wte[v * D + d];
      lp[v] = s;
      if (s > max) max = s;
    }
    let sum = 0;
    for (let v = 0; v < V; v++) sum += Math.exp(lp[v] - max);
    const lse = max + Math.log(sum);
    for (let v = 0; v < V; v++) lp[v] -= lse;
    logProbs.push(lp);
  }
  return { logProbs, patterns };
}

export interface HalfLosses {
  first: number;
  repeated: number;
}

/** First-half and repeated-half mean NLL of one `<bos> A A` sequence (see the file comment). */
export function halfLosses(ids: number[], logProbs: Float64Array[]): HalfLosses {
  const n = (ids.length - 1) / 2;
  if (!Number.isInteger(n) || n < 2) fail(`expected a <bos> A A sequence of odd length >= 5, got length ${ids.length}`);
  let first = 0, repeated = 0;
  for (let t = 2; t <= n; t++) first -= logProbs[t - 1][ids[t]];
  for (let t = n + 2; t <= 2 * n; t++) repeated -= logProbs[t - 1][ids[t]];
  return { first: first / (n - 1), repeated: repeated / (n - 1) };
}

export interface CircuitReport {
  nLayer: number;
  nHead: number;
  /** [layer][head]. */
  prevToken: number[][];
  induction: number[][];
  clean: HalfLosses;
  /** Losses with each head ablated alone, [layer][head]. */
  ablated: HalfLosses[][];
  /** The head with the highest previous-token score in layer 0, and the highest induction score in layers ≥ 1. */
  prevTokenHead: [number, number];
  inductionHead: [number, number];
}

/** Runs the checks over held-out `<bos> A A` sequences. */
export function circuitReport(m: Gpt2Weights, sequences: number[][]): CircuitReport {
  const L = m.nLayer, H = m.nHead;
  const grid = () => Array.from({ length: L }, () => new Array<number>(H).fill(0));
  const prevToken = grid(), induction = grid();
  const clean: HalfLosses = { first: 0, repeated: 0 };
  const ablated = Array.from({ length: L }, () => Array.from({ length: H }, () => ({ first: 0, repeated: 0 })));
  for (const ids of sequences) {
    const T = ids.length, n = (T - 1) / 2;
    const run = forwardJs(m, ids);
    for (let l = 0; l < L; l++) {
      for (let h = 0; h < H; h++) {
        const pat = run.patterns[l][h];
        let prev = 0, ind = 0;
        for (let i = 1; i < T; i++) prev += pat[i * T + i - 1];
        for (let i = n + 1; i <= 2 * n; i++) ind += pat[i * T + i - n + 1];
        prevToken[l][h] += prev / (T - 1) / sequences.length;
        induction[l][h] += ind / n / sequences.length;
        const ab = halfLosses(ids, forwardJs(m, ids, [[l, h]]).logProbs);
        ablated[l][h].first += ab.first / sequences.length;
        ablated[l][h].repeated += ab.repeated / sequences.length;
      }
    }
    const c = halfLosses(ids, run.logProbs);
    clean.first += c.first / sequences.length;
    clean.repeated += c.repeated / sequences.length;
  }
  const argmax = (rows: number[][], fromLayer: number, toLayer: number): [number, number] => {
    let best: [number, number] = [fromLayer, 0];
    for (let l = fromLayer; l <= toLayer; l++) for (let h = 0; h < H; h++) if (rows[l][h] > rows[best[0]][best[1]]) best = [l, h];
    return best;
  };
  return {
    nLayer: L, nHead: H, prevToken, induction, clean, ablated,
    prevTokenHead: argmax(prevToken, 0, 0),
    inductionHead: argmax(induction, Math.min(1, L - 1), L - 1),
  };
}

/** Thresholds the shipped model must meet (issue 6). */
export const CIRCUIT_REQUIREMENTS = {
  /** Mean attention to the previous token of the layer-0 previous-token head. */
  minPrevTokenScore: 0.5,
  /** Mean attention to the token after the earlier occurrence of the induction head. */
  minInductionScore: 0.5,
  /** Ablating the induction head raises the repeated-half loss by at least this much (nats)... */
  minAblationRise: 1.0,
  /** ...while the first-half loss moves by at most this much. */
  maxFirstHalfShift: 0.3,
};

/** The failed requirements, empty when the circuit is there. */
export function circuitProblems(r: CircuitReport): string[] {
  const q = CIRCUIT_REQUIREMENTS, out: string[] = [];
  const [pl, ph] = r.prevTokenHead, [il, ih] = r.inductionHead;
  if (r.prevToken[pl][ph] < q.minPrevTokenScore) out.push(`best previous-token head L${pl}H${ph} scores ${r.prevToken[pl][ph].toFixed(3)} < ${q.minPrevTokenScore}`);
  if (r.induction[il][ih] < q.minInductionScore) out.push(`best induction head L${il}H${ih} scores ${r.induction[il][ih].toFixed(3)} < ${q.minInductionScore}`);
  const ab = r.ablated[il][ih];
  const rise = ab.repeated - r.clean.repeated, shift = Math.abs(ab.first - r.clean.first);
  if (rise < q.minAblationRise) out.push(`ablating L${il}H${ih} raises the repeated-half loss by ${rise.toFixed(3)} < ${q.minAblationRise} nats`);
  if (shift > q.maxFirstHalfShift) out.push(`ablating L${il}H${ih} moves the first-half loss by ${shift.toFixed(3)} > ${q.maxFirstHalfShift} nats`);
  return out;
}

/** A fixed-width text table of a [layer][head] grid. */
export function formatGrid(title: string, rows: number[][]): string {
  const H = rows[0]?.length ?? 0;
  const head = `${title.padEnd(14)}${Array.from({ length: H }, (_, h) => `H${h}`.padStart(8)).join("")}`;
  return [head, ...rows.map((r, l) => `${`L${l}`.padEnd(14)}${r.map((v) => v.toFixed(3).padStart(8)).join("")}`)].join("\n");
}
