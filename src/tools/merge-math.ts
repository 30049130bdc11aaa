/**
 * The arithmetic of merging two heads of one layer, in the two forms `mergeHeads` offers:
 * - patterns: head h1 attends with `alpha·A1 + (1−alpha)·A2` (a hook on `hook_pattern`), its values and
 *   output projection unchanged;
 * - weights: head h1's q/k/v columns and o rows become `alpha·W1 + (1−alpha)·W2` (a new head, which in general
 *   does not attend with the blend of the two patterns, since softmax is not linear).
 * In both, head h2 is kept, removed (it contributes nothing) or given the same blend.
 */
import * as tf from "@tensorflow/tfjs";
import type { HookFn } from "../model/hooks";
import type { AttnParams } from "../model/types";

/** What happens to head h2 in a merge. */
export type MergeSecond = "keep" | "remove" | "blend";
export const MERGE_SECOND: readonly MergeSecond[] = ["keep", "remove", "blend"];

/**
 * The `hook_pattern` hook of a pattern merge: `[batch, head, q, k]` in and out. Heads other than h1 and h2
 * are the incoming slices themselves (bit-identical); a removed h2 attends nowhere (all-zero row, so its z
 * is 0 and only the output bias remains, exactly as a zero ablation).
 */
export function patternMergeHook(H: number, h1: number, h2: number, alpha: number, second: MergeSecond): HookFn {
  return (pattern) =>
    tf.tidy(() => {
      const heads = tf.split(pattern, H, 1); // H × [batch, 1, q, k]
      const blended = tf.add(tf.mul(heads[h1], alpha), tf.mul(heads[h2], 1 - alpha));
      const a2 = second === "keep" ? heads[h2] : second === "remove" ? tf.zerosLike(heads[h2]) : blended;
      heads[h1] = blended;
      heads[h2] = a2;
      return tf.concat(heads, 1); // [batch, head, q, k]
    });
}

/**
 * Merged copies of one layer's attention weights: head h1 ← alpha·h1 + (1−alpha)·h2 in q (and k/v when every
 * head has its own), its output rows too; h2's output rows zero ("remove"), h2 a copy of the blend ("blend")
 * or untouched ("keep"). Unchanged entries are the original tensor objects; `created` lists the new ones
 * (the merge owns them).
 */
export function mergedAttention(p: AttnParams, H: number, KV: number, h1: number, h2: number, alpha: number, second: MergeSecond): { merged: AttnParams; created: tf.Tensor[] } {
  const created: tf.Tensor[] = [];
  const make = <T extends tf.Tensor>(t: T): T => {
    created.push(t);
    return t;
  };
  // Weights are stored [in, out]: head h owns columns [h·dh, (h+1)·dh) of wQ/wK/wV and rows of wO.
  const mix = <T extends tf.Tensor>(w: T, axis: number, output = false): T =>
    make(
      tf.tidy(() => {
        const blocks = tf.split(w, H, axis); // one block per head
        const blended = tf.add(tf.mul(blocks[h1], alpha), tf.mul(blocks[h2], 1 - alpha));
        blocks[h1] = blended;
        if (second === "blend") blocks[h2] = blended;
        if (second === "remove" && output) blocks[h2] = tf.zerosLike(blocks[h2]); // h2 writes nothing
        return tf.concat(blocks, axis) as T;
      }),
    );
  const merged: AttnParams = { ...p, wQ: mix(p.wQ, 1), wO: mix(p.wO, 0, true) };
  if (p.bQ) merged.bQ = mix(p.bQ, 0);
  // k/v per kv head: without GQA each head has its own and they are mixed like q; under GQA a shared kv
  // head is left as it is (mergeHeads refuses different kv heads unless alpha = 1, which needs no change).
  if (KV === H) {
    merged.wK = mix(p.wK, 1);
    merged.wV = mix(p.wV, 1);
    if (p.bK) merged.bK = mix(p.bK, 0);
    if (p.bV) merged.bV = mix(p.bV, 0);
  }
  return { merged, created };
}
