/**
 * The model's edit ledger: every change that outlives one forward pass — a persistent hook (user hooks, head
 * ablations, pattern merges) or a swap of one layer's weights (weight merges) — is recorded here, and nowhere
 * else. `restoreAll()` undoes all of them, so nothing can stay applied while the handle that made it says
 * otherwise: a handle's `active` is its ledger entry's state.
 *
 *     const e = model.edits.addHook("blocks.0.attn.hook_z", fn, "my hook");   // an Edit (also a HookHandle)
 *     model.edits.active;                                                    // [Edit("hook", "my hook")]
 *     model.restoreAll();                                                    // every edit undone, newest first
 *
 * Weight swaps replace an entry of `params.layers[l]` (e.g. `attn`) by a new object and bump that layer's
 * version (`layerVersion(l)`), again on restore: an engine that keeps its own copy of the weights (onnxruntime)
 * compares versions before a run and rebuilds what changed. Restore puts the very same tensor objects back,
 * so a restored model computes bit-identical logits.
 */
import * as tf from "@tensorflow/tfjs";
import { fail } from "../errors";
import type { HookFn, HookHandle, HookRegistry, HookTarget } from "./hooks";
import type { LayerParams, ModelParams } from "./types";

export type EditKind = "hook" | "ablation" | "merge";

/** One recorded change to the model, live until restored (once; a second `restore()` does nothing). */
export interface Edit extends HookHandle {
  readonly kind: EditKind;
  /** What the edit is, for listings (`model.edits.toString()`). */
  readonly label: string;
  /** False once restored (by its handle, `restoreAll()` or `resetHooks()`). */
  readonly active: boolean;
  restore(): void;
}

class LedgerEntry implements Edit {
  private live = true;

  constructor(
    readonly kind: EditKind,
    readonly label: string,
    private readonly undo: () => void,
    private readonly onEnd: (e: LedgerEntry) => void,
  ) {}

  get active(): boolean {
    return this.live;
  }

  restore(): void {
    if (!this.live) return;
    this.live = false;
    try {
      this.undo();
    } finally {
      this.onEnd(this);
    }
  }

  /** A hook handle's name for `restore()`. */
  remove(): void {
    this.restore();
  }

  toString(): string {
    return `${this.kind}: ${this.label}${this.live ? "" : " (restored)"}`;
  }
}

/** The parts of one layer's weights an edit may swap. */
export type LayerPart = keyof LayerParams;

export class ModelEdits {
  private readonly entries = new Set<LedgerEntry>();
  private readonly versions: number[];
  /** layer → part → the active swap of it (a second swap would have to restore in order; it is refused). */
  private readonly swapped = new Map<string, LedgerEntry>();

  /** @internal Created by HookedAutoModel with its hook registry and weights. */
  constructor(
    private readonly hooks: HookRegistry,
    private readonly params: () => ModelParams,
  ) {
    this.versions = new Array<number>(params().layers.length).fill(0);
  }

  /** Every active edit, oldest first. */
  get active(): Edit[] {
    return [...this.entries];
  }

  /** Number of active edits of a kind (all kinds without an argument). */
  count(kind?: EditKind): number {
    let n = 0;
    for (const e of this.entries) if (!kind || e.kind === kind) n++;
    return n;
  }

  /**
   * The weight version of layer `l`: 0 at load, incremented by every swap of that layer's weights and by every
   * restore of one. Equal versions mean identical weight objects.
   */
  layerVersion(l: number): number {
    if (!Number.isInteger(l) || l < 0 || l >= this.versions.length) fail(`layerVersion: layer must be an integer in [0, ${this.versions.length - 1}], got ${l}`);
    return this.versions[l];
  }

  /**
   * Attaches a persistent hook, recorded as an edit of `kind` until restored; `cleanup` runs after the hook is
   * removed (e.g. freeing a tensor the hook reads).
   */
  addHook(target: HookTarget, fn: HookFn, options: { label?: string; kind?: EditKind; cleanup?: () => void } = {}): Edit {
    const handle = this.hooks.add(target, fn);
    const label = options.label ?? `hook on ${typeof target === "string" ? target : "a filter"}`;
    return this.record(options.kind ?? "hook", label, () => {
      handle.remove();
      options.cleanup?.();
    });
  }

  /**
   * Replaces `params.layers[layer][part]` by `replacement` until restored; the edit owns the tensors in `owned`
   * (freed on restore). Restore puts the original object back: the same tensors, bit-identical results.
   */
  swapLayer<P extends LayerPart>(layer: number, part: P, replacement: LayerParams[P], owned: tf.Tensor[], label: string, kind: EditKind = "merge"): Edit {
    this.layerVersion(layer); // validates the index
    const key = `${layer}.${part}`;
    const current = this.swapped.get(key);
    if (current) {
      tf.dispose(owned);
      fail(`layer ${layer}'s ${part} weights are already edited (${current.label}); restore that edit first`);
    }
    const layerParams = this.params().layers[layer];
    const original = layerParams[part];
    layerParams[part] = replacement;
    this.versions[layer]++;
    const entry = this.record(kind, label, () => {
      layerParams[part] = original;
      this.versions[layer]++;
      tf.dispose(owned);
      this.swapped.delete(key);
    });
    this.swapped.set(key, entry);
    return entry;
  }

  /** Records an edit made by other means, undone by `undo` (exactly once). */
  record(kind: EditKind, label: string, undo: () => void): LedgerEntry {
    const entry = new LedgerEntry(kind, label, undo, (e) => this.entries.delete(e));
    this.entries.add(entry);
    return entry;
  }

  /** Undoes every active edit, newest first; an undo that throws does not stop the others (the first error is rethrown). */
  restoreAll(): void {
    let first: unknown;
    for (const e of [...this.entries].reverse()) {
      try {
        e.restore();
      } catch (err) {
        first ??= err;
      }
    }
    if (first !== undefined) throw first;
  }

  toString(): string {
    const list = this.active;
    return list.length ? `ModelEdits(${list.length} active: ${list.map(String).join("; ")})` : "ModelEdits(none active)";
  }

  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return this.toString();
  }
}
