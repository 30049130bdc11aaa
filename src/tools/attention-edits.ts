/**
 * Head ablations and head merges as edits of the model: each is recorded in the model's ledger
 * (`model.edits`), and its handle only reads and ends that record. So `model.restoreAll()` (or
 * `resetHooks()`, or the kernel after an interrupt) undoes the change and the handle says so at once.
 */
import * as tf from "@tensorflow/tfjs";
import { fail } from "../errors";
import type { Edit } from "../model/edits";
import type { HookedAutoModel } from "../model/hooked-model";
import type { HookFn } from "../model/hooks";
import type { AblationMode } from "./attention-results";
import { mergedAttention, type MergeSecond, patternMergeHook } from "./merge-math";

/** Something a tool changed in the model until `restore()`. */
export interface ToolHandle {
  /** False once restored (by this handle, `restoreAll()` or `model.resetHooks()`). */
  readonly active: boolean;
  /** Undoes the change; calling it again does nothing. */
  restore(): void;
}

/** The shared life cycle of a tool's change: the model's ledger entry, restored exactly once. */
abstract class RestorableHandle implements ToolHandle {
  protected constructor(private readonly edit: Edit) {}

  get active(): boolean {
    return this.edit.active;
  }

  restore(): void {
    this.edit.restore();
  }

  protected get state(): string {
    return this.active ? "active: restore() to undo" : "restored";
  }
}

/** An active head ablation: a persistent hook on `blocks.{layer}.attn.hook_z`. */
export class AblationHandle extends RestorableHandle {
  /** @internal */
  constructor(
    readonly layer: number,
    readonly head: number,
    readonly mode: AblationMode,
    edit: Edit,
  ) {
    super(edit);
  }

  override toString(): string {
    return `AblationHandle(L${this.layer}H${this.head} ${this.mode}-ablated, ${this.state})`;
  }
}

/** How a merge is applied: at the attention pattern (default) or by blending the heads' weights. */
export type MergeMode = "patterns" | "weights";

/** An active head merge. */
export class MergeHandle extends RestorableHandle {
  /** @internal */
  constructor(
    readonly layer: number,
    readonly h1: number,
    readonly h2: number,
    readonly alpha: number,
    readonly mode: MergeMode,
    readonly second: MergeSecond,
    edit: Edit,
  ) {
    super(edit);
  }

  override toString(): string {
    return `MergeHandle(${mergeLabel(this.layer, this.h1, this.h2, this.alpha, this.mode, this.second)}; ${this.state})`;
  }
}

function mergeLabel(layer: number, h1: number, h2: number, alpha: number, mode: MergeMode, second: MergeSecond): string {
  const what = mode === "patterns" ? "pattern" : "weights";
  const fate = second === "keep" ? `H${h2} kept` : second === "remove" ? `H${h2} removed` : `H${h2} gets the same blend`;
  return `L${layer}: H${h1} ${what} ← ${alpha}·H${h1} + ${+(1 - alpha).toFixed(6)}·H${h2}, ${fate}`;
}

/**
 * Replaces one head's z by 0 or by `meanZ` in every later forward pass. The edit owns `meanZ` (freed on
 * restore, or at once if the hook cannot be attached).
 */
export function installAblation(model: HookedAutoModel, layer: number, head: number, mode: AblationMode, meanZ: tf.Tensor1D | null): AblationHandle {
  const { nHeads: H, dHead } = model.cfg;
  const keep = Array.from({ length: H }, (_, h) => (h === head ? 0 : 1));
  const fn: HookFn = (z) =>
    tf.tidy(() => {
      const keepMask = tf.tensor4d(keep, [1, 1, H, 1]); // [1, 1, head, 1]
      const kept = tf.mul(z, keepMask); // [batch, pos, head, d_head], the head's slot exactly 0
      if (!meanZ) return kept;
      const onlyHead = tf.sub(1, keepMask);
      return tf.add(kept, tf.mul(onlyHead, tf.reshape(meanZ, [1, 1, 1, dHead]))); // slot = mean exactly
    });
  let edit: Edit;
  try {
    edit = model.edits.addHook(`blocks.${layer}.attn.hook_z`, fn, { label: `L${layer}H${head} ${mode}-ablated`, kind: "ablation", cleanup: () => meanZ?.dispose() });
  } catch (e) {
    meanZ?.dispose();
    throw e;
  }
  return new AblationHandle(layer, head, mode, edit);
}

/** A merge at `hook_pattern` (any attention, grouped-query included: patterns are per query head). */
export function installPatternMerge(model: HookedAutoModel, layer: number, h1: number, h2: number, alpha: number, second: MergeSecond): MergeHandle {
  const fn = patternMergeHook(model.cfg.nHeads, h1, h2, alpha, second);
  const edit = model.edits.addHook(`blocks.${layer}.attn.hook_pattern`, fn, { label: mergeLabel(layer, h1, h2, alpha, "patterns", second), kind: "merge" });
  return new MergeHandle(layer, h1, h2, alpha, "patterns", second, edit);
}

/**
 * A merge of the heads' weights, swapped into the model by its ledger (which versions the layer, so an
 * engine holding its own copy of the weights rebuilds it). Under grouped-query attention, heads reading
 * different kv heads are refused unless alpha = 1: mixing their keys/values would change the whole group.
 */
export function installWeightMerge(model: HookedAutoModel, layer: number, h1: number, h2: number, alpha: number, second: MergeSecond): MergeHandle {
  const c = model.cfg;
  const group = c.nHeads / c.nKvHeads;
  const kv1 = Math.floor(h1 / group);
  const kv2 = Math.floor(h2 / group);
  if (c.nKvHeads !== c.nHeads && kv1 !== kv2 && (alpha !== 1 || second === "blend")) {
    fail(
      `mergeHeads(${layer}, ${h1}, ${h2}, { mode: "weights" }): under grouped-query attention (${c.nHeads} query heads, ${c.nKvHeads} kv heads) head ${h1} reads kv head ${kv1} and head ${h2} reads kv head ${kv2}; ` +
        `mixing their keys/values would change every query head of kv head ${kv1} too. Merge heads of the same kv group (heads ${kv1 * group}..${(kv1 + 1) * group - 1}), use the default pattern mode, or alpha = 1 to only remove head ${h2}.`,
    );
  }
  if (c.qkRmsNorm === "projection") {
    fail(`mergeHeads(${layer}, ${h1}, ${h2}, { mode: "weights" }): this ${c.family} model normalises the whole query/key projection of all heads at once, so changing one head's weights changes every head; use the default pattern mode`);
  }
  const { merged, created } = mergedAttention(model.params.layers[layer].attn, c.nHeads, c.nKvHeads, h1, h2, alpha, second);
  const edit = model.edits.swapLayer(layer, "attn", merged, created, mergeLabel(layer, h1, h2, alpha, "weights", second), "merge");
  return new MergeHandle(layer, h1, h2, alpha, "weights", second, edit);
}

/** Runs fn with a change applied and always undoes it: after a return, a throw, or an async fn's settling. */
export function scoped<R>(handle: ToolHandle, fn: () => R): R {
  let result: R;
  try {
    result = fn();
  } catch (e) {
    handle.restore();
    throw e;
  }
  if (result instanceof Promise) return result.finally(() => handle.restore()) as R;
  handle.restore();
  return result;
}
