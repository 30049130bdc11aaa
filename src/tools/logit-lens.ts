/**
 * The logit lens: the residual stream after the embeddings and after each layer, decoded as if it were the
 * last layer's (the model's own final norm, recomputed per row, then the unembedding). Per layer and position:
 * the top tokens with their probabilities, and the rank of the token that actually comes next (0 = top).
 * The last row is the model's real prediction.
 */
import * as tf from "@tensorflow/tfjs";
import { type Displayable, logitLensView, type MimeBundle } from "../display";
import { norm, project, softcap } from "../model/components";
import type { HookedAutoModel } from "../model/hooked-model";
import type { ModelInput } from "../model/input";
import { checkCount, checkOptions, fmt, oneSequence, textTable, tok } from "./common";

export interface LensEntry {
  id: number;
  token: string;
  prob: number;
}

export class LogitLens implements Displayable {
  constructor(
    /** Row labels: "embed", then "L0" … "L{n−1}" (the residual after that layer). */
    readonly rows: string[],
    readonly ids: number[],
    readonly tokens: string[],
    /** `[row][position][k]`: the top-k decoded tokens, most probable first. */
    readonly top: LensEntry[][][],
    /** `[row][position]`: rank of the next token (0 = top); null at the last position (nothing follows). */
    readonly targetRank: (number | null)[][],
    /** `[row][position]`: probability of the next token; null at the last position. */
    readonly targetProb: (number | null)[][],
  ) {}

  get title(): string {
    return `Logit lens: the residual stream after each layer, decoded (${this.tokens.length} positions)`;
  }

  toMimeBundle(): MimeBundle {
    return logitLensView({ rows: this.rows, tokens: this.tokens, top: this.top, targetRank: this.targetRank, targetProb: this.targetProb, title: this.title });
  }

  toJSON(): object {
    const { rows, ids, tokens, top, targetRank, targetProb } = this;
    return { rows, ids, tokens, top, targetRank, targetProb };
  }

  toString(): string {
    const T = Math.min(this.tokens.length, 16);
    const header = ["", ...this.tokens.slice(0, T).map((t, p) => `${p} ${tok(t, 8)}`)];
    const body = this.rows.map((r, i) => [r, ...this.top[i].slice(0, T).map((k, p) => `${tok(k[0].token, 8)}${this.targetRank[i][p] === null ? "" : ` #${this.targetRank[i][p]}`}`)]);
    const lines = [`LogitLens(${this.rows.length} rows × ${this.tokens.length} positions; cell: top token, #rank of the true next token)`, textTable([header, ...body])];
    if (T < this.tokens.length) lines.push(`… ${this.tokens.length - T} more positions (see .top)`);
    const last = this.targetProb[this.rows.length - 1].filter((x): x is number => x !== null);
    if (last.length) lines.push(`mean probability of the next token at the last row: ${fmt(last.reduce((a, b) => a + b, 0) / last.length)}`);
    return lines.join("\n");
  }
}

export interface LogitLensOptions {
  /** Top tokens kept per cell (default 5). */
  k?: number;
}

/** Decodes the residual stream of one sequence after the embeddings and after every layer. */
export function logitLens(model: HookedAutoModel, input: ModelInput, options: LogitLensOptions = {}): LogitLens {
  const opts = checkOptions("logitLens", options, ["k"]);
  const k = Math.min(checkCount("k", opts.k ?? 5), model.cfg.dVocab);
  const row = oneSequence(model, input, "logitLens");
  const c = model.cfg;
  const T = row.length;
  const names = ["blocks.0.hook_resid_pre", ...Array.from({ length: c.nLayers }, (_, l) => `blocks.${l}.hook_resid_post`)];
  const { logits, cache } = model.runWithCache([row], { names });
  logits.dispose();
  const targets = row.slice(1);
  const top: LensEntry[][][] = [];
  const targetRank: (number | null)[][] = [];
  const targetProb: (number | null)[][] = [];
  try {
    for (const name of names) {
      // One row at a time: [pos, vocab] probabilities, so a large vocabulary never needs every row at once.
      const [vals, idx, tgtProb, rank] = tf.tidy(() => {
        const resid = cache.get(name) as tf.Tensor3D; // [1, pos, d_model]
        const normed = tf.reshape(norm(c, resid, model.params.lnFinal), [T, c.dModel]) as tf.Tensor2D;
        const raw = project(normed, model.params.wU, model.params.bU); // [pos, vocab]
        const lg = c.finalSoftcap === undefined ? raw : softcap(raw, c.finalSoftcap); // as the model's own logits
        const probs = tf.softmax(lg);
        const { values, indices } = tf.topk(probs, k); // [pos, k]
        if (!targets.length) return [values, indices, tf.zeros([0]), tf.zeros([0])];
        const head = tf.slice(lg, [0, 0], [T - 1, -1]); // positions that have a next token
        const tIdx = tf.tensor1d(targets.map((id, p) => p * c.dVocab + id), "int32");
        const tLogit = tf.gather(tf.reshape(head, [-1]), tIdx).reshape([T - 1, 1]);
        const above = tf.sum(tf.cast(tf.greater(head, tLogit), "int32"), 1); // logits strictly above the target's
        const tProb = tf.gather(tf.reshape(tf.slice(probs, [0, 0], [T - 1, -1]), [-1]), tIdx);
        return [values, indices, tProb, above];
      });
      const v = vals.arraySync() as number[][];
      const ix = idx.arraySync() as number[][];
      const tp = Array.from(tgtProb.dataSync());
      const rk = Array.from(rank.dataSync());
      tf.dispose([vals, idx, tgtProb, rank]);
      top.push(ix.map((ids, p) => ids.map((id, j) => ({ id, token: model.idToToken(id), prob: v[p][j] }))));
      targetRank.push(Array.from({ length: T }, (_, p) => (p < T - 1 ? rk[p] : null)));
      targetProb.push(Array.from({ length: T }, (_, p) => (p < T - 1 ? tp[p] : null)));
    }
  } finally {
    cache.dispose();
  }
  return new LogitLens(["embed", ...Array.from({ length: c.nLayers }, (_, l) => `L${l}`)], row, row.map((id) => model.idToToken(id)), top, targetRank, targetProb);
}
