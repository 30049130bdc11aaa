/**
 * Hook points and the bookkeeping around them (after TransformerLens' `hook_points.py`: a hook point is
 * nothing but a named identity; every hook is added and removed by the code in this one module).
 */
import type * as tf from "@tensorflow/tfjs";
import { fail, show } from "../errors";
import type { ModelDims } from "./types";

export interface HookContext {
  /** The full hook name, e.g. `blocks.0.attn.hook_z`. */
  name: string;
  /** The block index, or null for hooks outside the blocks (`hook_embed`, `ln_final.hook_normalized`). */
  layer: number | null;
}

/**
 * Called with the activation at a hook point. Return a tensor of the same shape to replace the activation
 * (the tensor may be created inside the hook: it is cleaned up with the block), or nothing to leave it as is.
 * The activation must not be disposed by the hook.
 */
export type HookFn = (activation: tf.Tensor, ctx: HookContext) => tf.Tensor | void | undefined;

/** A hook name, or a predicate selecting hook names (e.g. `(n) => n.endsWith("hook_pattern")`). */
export type HookTarget = string | ((name: string) => boolean);
export type HookSpec = [HookTarget, HookFn];

export interface HookHandle {
  /** Removes the hook; calling it again does nothing. */
  remove(): void;
}

export interface HookPointInfo {
  name: string;
  /** Symbolic shape, e.g. `[batch, pos, head, d_head]`. */
  shape: string;
  layer: number | null;
  description: string;
}

/**
 * Every hook point a model with these dims has, in forward order: the one list the forward pass may report at
 * (a name outside it is refused at run time). Points beyond TransformerLens' usual set, where a family has them:
 * - `attn.q_norm.hook_normalized`, `attn.k_norm.hook_normalized`: queries/keys after the q/k norm (StableLM
 *   qk_layernorm, Qwen3, Gemma 3, OLMo 2); `hook_q`/`hook_k` are the projections before it;
 * - `ln1_post.hook_normalized`, `ln2_post.hook_normalized`: the attention/MLP output after its norm (Gemma 2 and
 *   Gemma 3 sandwich norms; OLMo 2, whose blocks have no input norms and hence no `ln1`/`ln2` points).
 */
export function hookPointsFor(c: ModelDims): HookPointInfo[] {
  const pts: HookPointInfo[] = [];
  const add = (name: string, shape: string, layer: number | null, description: string) => pts.push({ name, shape, layer, description });
  add("hook_embed", "[batch, pos, d_model]", null, "token embedding (times the embedding scale, e.g. Gemma's sqrt(d_model))");
  if (c.positional === "learned") add("hook_pos_embed", "[batch, pos, d_model]", null, "learned position embedding");
  const kv = c.nKvHeads === c.nHeads ? "head" : "kv_head";
  const qkNorm = c.qkNorm ? "per-head LayerNorm" : c.qkRmsNorm === "head" ? "per-head RMSNorm" : c.qkRmsNorm === "projection" ? "RMSNorm over the whole projection" : null;
  const placement = c.normPlacement ?? "pre";
  const clip = c.clipQkv === undefined ? "" : `, clamped to ±${c.clipQkv}`;
  for (let l = 0; l < c.nLayers; l++) {
    const b = `blocks.${l}.`;
    add(b + "hook_resid_pre", "[batch, pos, d_model]", l, "residual stream entering the block");
    if (placement !== "post") add(b + "ln1.hook_normalized", "[batch, pos, d_model]", l, "attention input after the first norm");
    const before = qkNorm ? `before the ${qkNorm} and rotary` : "before rotary";
    add(b + "attn.hook_q", "[batch, pos, head, d_head]", l, `queries (${before}${clip})`);
    add(b + "attn.hook_k", `[batch, pos, ${kv}, d_head]`, l, c.nKvHeads === c.nHeads ? `keys (${before}${clip})` : `keys per key/value head (${before}${clip}); query head h reads kv head h // (head/kv_head)`);
    add(b + "attn.hook_v", `[batch, pos, ${kv}, d_head]`, l, (c.nKvHeads === c.nHeads ? "values" : "values per key/value head; query head h reads kv head h // (head/kv_head)") + clip);
    if (qkNorm) {
      add(b + "attn.q_norm.hook_normalized", "[batch, pos, head, d_head]", l, `queries after the ${qkNorm} (before rotary)`);
      add(b + "attn.k_norm.hook_normalized", `[batch, pos, ${kv}, d_head]`, l, `keys after the ${qkNorm} (before rotary)`);
    }
    if (c.positional === "rotary") {
      add(b + "attn.hook_rot_q", "[batch, pos, head, d_head]", l, "queries after rotary embedding");
      add(b + "attn.hook_rot_k", `[batch, pos, ${kv}, d_head]`, l, "keys after rotary embedding");
    }
    const capped = c.attnSoftcap === undefined ? "" : `, soft-capped to ±${c.attnSoftcap}`;
    add(b + "attn.hook_attn_scores", "[batch, head, query_pos, key_pos]", l, `scaled${capped}, masked scores (masked entries are the float32 minimum)`);
    add(b + "attn.hook_pattern", "[batch, head, query_pos, key_pos]", l, "post-softmax attention probabilities");
    add(b + "attn.hook_z", "[batch, pos, head, d_head]", l, "attention-weighted values per query head, before the output projection");
    if (placement !== "pre") add(b + "ln1_post.hook_normalized", "[batch, pos, d_model]", l, "attention output (after the output projection) after its norm");
    add(b + "hook_attn_out", "[batch, pos, d_model]", l, placement === "pre" ? "attention output (after the output projection and its bias)" : "attention output as it joins the residual stream (after its norm)");
    if (!c.parallelResidual) add(b + "hook_resid_mid", "[batch, pos, d_model]", l, "residual stream between attention and MLP");
    if (placement !== "post") add(b + "ln2.hook_normalized", "[batch, pos, d_model]", l, "MLP input after the second norm (equal to ln1's where the family has one input norm: StableLM parallel, Phi)");
    add(b + "mlp.hook_pre", "[batch, pos, d_mlp]", l, c.gatedMlp ? "gate projection, before the activation" : "MLP hidden layer before the activation");
    if (c.gatedMlp) add(b + "mlp.hook_pre_linear", "[batch, pos, d_mlp]", l, "up projection (multiplied with the activated gate)");
    add(b + "mlp.hook_post", "[batch, pos, d_mlp]", l, "MLP hidden layer after the activation (times the up projection when gated)");
    if (placement !== "pre") add(b + "ln2_post.hook_normalized", "[batch, pos, d_model]", l, "MLP output after its norm");
    add(b + "hook_mlp_out", "[batch, pos, d_model]", l, placement === "pre" ? "MLP output" : "MLP output as it joins the residual stream (after its norm)");
    add(b + "hook_resid_post", "[batch, pos, d_model]", l, "residual stream leaving the block");
  }
  add("ln_final.hook_normalized", "[batch, pos, d_model]", null, "final norm output (Hugging Face's last hidden_states entry)");
  return pts;
}

const catalogues = new WeakMap<ModelDims, ReadonlySet<string>>();

/** The catalogue's names for these dims as a set (computed once per dims object). */
export function hookNameSet(c: ModelDims): ReadonlySet<string> {
  let names = catalogues.get(c);
  if (!names) {
    names = new Set(hookPointsFor(c).map((p) => p.name));
    catalogues.set(c, names);
  }
  return names;
}

/**
 * Fails when the forward pass reports at a name the catalogue does not list: the catalogue and the forward code
 * disagree, which is a bug here, not a user error.
 */
export function checkReportedPoint(c: ModelDims, name: string): void {
  if (!hookNameSet(c).has(name)) fail(`internal error: the ${c.family} forward pass reported hook point ${show(name)}, which hookPointsFor does not list`);
}

/** The hooks attached to a model, by hook name. */
export class HookRegistry {
  private readonly byName = new Map<string, HookFn[]>();
  private readonly valid: Set<string>;

  constructor(private readonly names: readonly string[]) {
    this.valid = new Set(names);
  }

  /** The names a target selects; an unknown name or a filter matching nothing is an error. */
  resolve(target: HookTarget): string[] {
    if (typeof target === "function") {
      const hit = this.names.filter((n) => target(n));
      if (!hit.length) fail(`hook filter ${show(target.toString().slice(0, 80))} matches no hook point`);
      return hit;
    }
    if (typeof target !== "string") fail(`hook target must be a hook name or a predicate, got ${show(target)}`);
    if (!this.valid.has(target)) fail(`unknown hook name ${show(target)}${suggest(target, this.names)}; see model.hookNames for all ${this.names.length}`);
    return [target];
  }

  /** Attaches `fn` at every point the target selects; the handle detaches exactly those. */
  add(target: HookTarget, fn: HookFn): HookHandle {
    if (typeof fn !== "function") fail(`hook for ${show(String(target))} must be a function, got ${show(fn)}`);
    const names = this.resolve(target);
    for (const n of names) this.byName.set(n, [...(this.byName.get(n) ?? []), fn]);
    let removed = false;
    return {
      remove: () => {
        if (removed) return;
        removed = true;
        for (const n of names) {
          const rest = (this.byName.get(n) ?? []).filter((f) => f !== fn);
          if (rest.length) this.byName.set(n, rest);
          else this.byName.delete(n);
        }
      },
    };
  }

  get(name: string): HookFn[] | undefined {
    return this.byName.get(name);
  }

  /** Number of attached hooks over all points. */
  get count(): number {
    let n = 0;
    for (const fns of this.byName.values()) n += fns.length;
    return n;
  }

  clear(): void {
    this.byName.clear();
  }
}

/** ", did you mean …?" for a near-miss hook name: the closest names by edit distance. */
function suggest(name: string, names: readonly string[]): string {
  const scored = names.map((n) => ({ n, d: editDistance(name, n) })).filter((x) => x.d <= Math.max(3, name.length / 4));
  scored.sort((a, b) => a.d - b.d);
  const close = scored.slice(0, 3).map((x) => show(x.n));
  return close.length ? ` (did you mean ${close.join(" or ")}?)` : "";
}

/** Levenshtein distance (insertions, deletions, substitutions), one row at a time. */
function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length];
}
