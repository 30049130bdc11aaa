/**
 * Refitting late position rows for the previous-token head, the first step of the broadening stage.
 *
 * Stage 1 learns its previous-token head only where its data needed one: positions below ~47. Past them the
 * head attends to positions 30–40 instead, so a first copy sitting late gives the induction head no key to
 * match; and because the induction head then puts ~0 attention on those keys, the loss sends almost no
 * gradient back to fix them (the induction plateau, locally). Broad data alone did not move it in the recipe
 * search (worst grid cell ≈ 5.9 nats after 1,500 steps), nor did copying or restarting the rows.
 *
 * (Query 2, right after the first word, is the same case: stage 1's data always had filler or a long segment
 * there.) So before stage 2, the rows of wpe whose query the head leaves — and nothing else — are fitted for a few
 * hundred Adam steps to make layer 0's previous-token head attend to the previous position from every query on
 * random sequences. Stage 2 then trains every parameter on the broad data; the grid checks the result.
 */
import * as tf from "@tensorflow/tfjs";
import { fail, show } from "../../src/errors";
import { FIRST_WORD_ID, Rng } from "./synthetic";
import { causalMask, HostTensor, layerNorm, mm, TinyGpt2Shape } from "./tiny-gpt2";

/** Layer 0's attention log-probabilities of one head for `[B, T]` ids: `[B, T, T]` (query, key). */
function layer0LogPattern(s: TinyGpt2Shape, p: Record<string, tf.Tensor>, wpe: tf.Tensor2D, ids: number[][], head: number, mask: tf.Tensor2D): tf.Tensor3D {
  const [B, T] = [ids.length, ids[0].length];
  const D = s.dModel, dh = D / s.nHead;
  const oneHot = tf.cast(tf.oneHot(tf.tensor1d(ids.flat(), "int32"), s.vocabSize), "float32") as tf.Tensor2D; // [B·T, V]
  const x = tf.add(mm(oneHot, p["transformer.wte.weight"] as tf.Tensor2D), tf.tile(wpe, [B, 1])) as tf.Tensor2D; // [B·T, D]
  const a = layerNorm(x, p["transformer.h.0.ln_1.weight"], p["transformer.h.0.ln_1.bias"]) as tf.Tensor2D;
  const W = p["transformer.h.0.attn.c_attn.weight"], bias = p["transformer.h.0.attn.c_attn.bias"];
  const project = (part: number) => { // the head's slice of Q (part 0) or K (part 1): [B, T, dh]
    const at = part * D + head * dh;
    return tf.reshape(tf.add(mm(a, tf.slice(W, [0, at], [D, dh]) as tf.Tensor2D), tf.slice(bias, [at], [dh])), [B, T, dh]);
  };
  const scores = tf.add(tf.mul(tf.matMul(project(0), project(1), false, true), 1 / Math.sqrt(dh)), mask); // [B, T, T]
  return tf.logSoftmax(scores) as tf.Tensor3D;
}

/** Mean over the batch and queries `from..to−1` of `values` `[B, T, T]` at (query, query − 1). */
function meanAtPrevious(values: tf.Tensor3D, from: number, to: number): tf.Scalar {
  const T = values.shape[1];
  const select = new Float32Array(T * T); // 1 at (q, q − 1) for from ≤ q < to
  for (let q = Math.max(1, from); q < to; q++) select[q * T + q - 1] = 1;
  const picked = tf.sum(tf.mul(values, tf.tensor2d(select, [T, T])), [1, 2]); // [B]
  return tf.div(tf.mean(picked), to - Math.max(1, from)) as tf.Scalar;
}

/**
 * The position rows whose query the previous-token head leaves (attention to the previous position < 0.5 on
 * random sequences), refitted in place (see the file comment): only those rows move, to maximise the head's
 * attention to the previous position from every query. Returns the head, the rows and the final mean attention.
 */
export function refitPositions(s: TinyGpt2Shape, params: Record<string, HostTensor>, steps: number, rng: Rng): { head: number; rows: number[]; attention: number } {
  if (!(Number.isInteger(steps) && steps > 0)) fail(`position refit: steps must be a positive integer, got ${show(steps)}`);
  const T = s.nCtx, D = s.dModel;
  const randomRows = (n: number) => Array.from({ length: n }, () => [0, ...rng.distinct(T - 1, FIRST_WORD_ID, s.vocabSize - 1)]);
  const wpeHost = params["transformer.wpe.weight"].data;
  return tf.tidy(() => {
    const p: Record<string, tf.Tensor> = {};
    for (const k of ["transformer.wte.weight", "transformer.h.0.ln_1.weight", "transformer.h.0.ln_1.bias", "transformer.h.0.attn.c_attn.weight", "transformer.h.0.attn.c_attn.bias"]) {
      p[k] = tf.tensor(params[k].data, params[k].shape);
    }
    const mask = causalMask(T);
    const wpe = tf.tensor2d(wpeHost, [T, D]); // [T, D]
    // The previous-token head (most attention to the previous position over all queries), then per query.
    const probe = randomRows(64);
    const perQuery = Array.from({ length: s.nHead }, (_, h) => previousByQuery(tf.exp(layer0LogPattern(s, p, wpe, probe, h, mask)) as tf.Tensor3D));
    const means = perQuery.map((q) => q.reduce((a, b) => a + b, 0) / q.length);
    const head = means.indexOf(Math.max(...means));
    const rows = perQuery[head].map((v, i) => [i + 1, v]).filter(([, v]) => v < 0.5).map(([q]) => q);
    if (rows.length === 0) return { head, rows, attention: means[head] };
    const select = new Float32Array(T).fill(0);
    for (const q of rows) select[q] = 1;
    const sel = tf.tensor2d(select, [T, 1]); // [T, 1]: 1 on the refitted rows
    const delta = tf.variable(tf.zeros([T, D]), true); // [T, D], only its selected rows reach the model
    const optimizer = tf.train.adam(1e-2);
    let last = 0;
    for (let i = 0; i < steps; i++) {
      const ids = randomRows(32);
      const cost = optimizer.minimize(() => tf.neg(meanAtPrevious(layer0LogPattern(s, p, tf.add(wpe, tf.mul(delta, sel)) as tf.Tensor2D, ids, head, mask), 1, T)) as tf.Scalar, true, [delta]);
      last = cost!.dataSync()[0];
    }
    const fitted = tf.add(wpe, tf.mul(delta, sel)).dataSync() as Float32Array;
    wpeHost.set(fitted);
    optimizer.dispose();
    delta.dispose();
    return { head, rows, attention: Math.exp(-last) };
  });
}

/** Mean attention to the previous position per query 1..T−1 (`[B, T, T]` pattern in). */
function previousByQuery(pattern: tf.Tensor3D): number[] {
  const T = pattern.shape[1];
  const data = tf.mean(pattern, 0).dataSync(); // [T, T]
  return Array.from({ length: T - 1 }, (_, i) => data[(i + 1) * T + i]);
}
