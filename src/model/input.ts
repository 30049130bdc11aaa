/** Turning the accepted input forms into validated token-id rows. */
import * as tf from "@tensorflow/tfjs";
import { fail, show } from "../errors";

/** A string, a batch of strings, token ids, a batch of token ids, or an int32 tensor `[pos]` / `[batch, pos]`. */
export type ModelInput = string | string[] | number[] | number[][] | tf.Tensor;

/** Checks token-id rows against the vocabulary and context, returning them unchanged. */
export function validateIds(rows: number[][], dVocab: number, maxLen: number | null): number[][] {
  if (!rows.length) fail("input is empty: expected at least one sequence of at least one token");
  const len = rows[0].length;
  rows.forEach((row, b) => {
    if (!row.length) fail(`input sequence ${b} is empty: expected at least one token`);
    if (row.length !== len) fail(`sequences in a batch must have equal length (no padding support): got lengths ${show(rows.map((r) => r.length))}`);
    row.forEach((id, t) => {
      if (!Number.isInteger(id)) fail(`token id ${show(id)} at [${b}, ${t}] is not an integer`);
      if (id < 0 || id >= dVocab) fail(`token id ${id} at [${b}, ${t}] is out of range: the vocabulary has ${dVocab} tokens (valid ids 0..${dVocab - 1})`);
    });
  });
  if (maxLen !== null && len > maxLen) fail(`sequence of ${len} tokens is longer than the model's context of ${maxLen} positions (n_ctx)`);
  return rows;
}

/** Token ids from a tensor `[pos]` or `[batch, pos]`. */
export function idsFromTensor(t: tf.Tensor): number[][] {
  if (t.rank !== 1 && t.rank !== 2) fail(`token tensor must have shape [pos] or [batch, pos], got ${show(t.shape)}`);
  if (t.dtype !== "int32") fail(`token tensor must be int32, got ${t.dtype}`);
  const flat = Array.from(t.dataSync());
  if (t.rank === 1) return [flat];
  const [B, T] = t.shape;
  return Array.from({ length: B }, (_, b) => flat.slice(b * T, (b + 1) * T));
}
