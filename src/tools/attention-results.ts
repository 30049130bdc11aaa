/**
 * What the attention tools return: a pattern, the most-attended keys, an ablation comparison and a head sweep.
 * Each holds plain numbers (no tensors unless asked for), renders through its view in `src/display`, and
 * prints a text summary.
 */
import * as tf from "@tensorflow/tfjs";
import { ablationComparisonView, attentionHeatmap, attentionText, type Displayable, headGridText, headGridView, linkedAttentionView, type MimeBundle, topAttendedView } from "../display";
import { fail, show } from "../errors";
import { checkCount, fmt, textTable, tok, topIndices } from "./common";

/** How an ablation replaces a head's z: by 0, or by its mean over a reference input. */
export type AblationMode = "zero" | "mean";


/**
 * The post-softmax attention pattern of one layer from a real forward pass (`blocks.{l}.attn.hook_pattern`).
 * `values` is `[q][k]` for one head or `[head][q][k]` for all heads; row q sums to 1 over keys 0..q.
 *
 * The numbers live in plain arrays (exactly the float32 values of the forward pass); `.tensor` makes a tensor
 * of them on first use, owned by this object until `dispose()`.
 */
export class AttentionPattern<V extends number[][] | number[][][] = number[][] | number[][][]> implements Displayable {
  private cached: tf.Tensor | null = null;

  constructor(
    readonly layer: number,
    /** The head asked for, or null when all heads were. */
    readonly head: number | null,
    /** The heads held, in order (one entry when `head` is set). */
    readonly heads: number[],
    readonly ids: number[],
    readonly tokens: string[],
    /** `[heads.length][q][k]`. */
    private readonly patterns: number[][][],
  ) {}

  /** `[q][k]` for one head, `[head][q][k]` for all heads. */
  get values(): V {
    return (this.head === null ? this.patterns : this.patterns[0]) as V;
  }

  /** The `[q][k]` pattern of one of the held heads. */
  forHead(head: number): number[][] {
    const i = this.heads.indexOf(head);
    if (i < 0) fail(`this AttentionPattern holds head${this.heads.length > 1 ? "s" : ""} ${this.heads.join(", ")}, not ${show(head)}`);
    return this.patterns[i];
  }

  /** `[q, k]` or `[head, q, k]` float32, owned by this object (freed by `dispose()`, recreated on next use). */
  get tensor(): tf.Tensor {
    if (!this.cached || this.cached.isDisposed) this.cached = tf.tensor(this.values as number[][]);
    return this.cached;
  }

  dispose(): void {
    this.cached?.dispose();
    this.cached = null;
  }

  toMimeBundle(): MimeBundle {
    return attentionHeatmap({ tokens: this.tokens, patterns: this.patterns, heads: this.heads, layer: this.layer });
  }

  toJSON(): object {
    return { layer: this.layer, head: this.head, heads: this.heads, ids: this.ids, tokens: this.tokens, values: this.values };
  }

  /** The heatmap view's text (title, per-head summary, strongest key per query) under a line naming the data. */
  toString(): string {
    const what = this.head === null ? `heads ${this.heads[0]}–${this.heads[this.heads.length - 1]}, .values is [head][q][k]` : `head ${this.head}, .values is [q][k]`;
    const text = attentionText({ tokens: this.tokens, patterns: this.patterns, heads: this.heads, layer: this.layer });
    return `AttentionPattern(layer ${this.layer}, ${what}; ${this.tokens.length} tokens)\n${text}`;
  }
}

/**
 * Every head's pattern of several layers for one sequence, shown as a linked view: tokens as text, head
 * thumbnails, hover a token to see where it attends and what attends to it (static heatmap without scripts).
 */
export class AttentionView implements Displayable {
  constructor(
    readonly layers: number[],
    readonly ids: number[],
    readonly tokens: string[],
    /** `[layer entry][head][q][k]`. */
    readonly patterns: number[][][][],
    /** The head selected when the view opens. */
    readonly selected: { layer: number; head: number },
  ) {}

  toMimeBundle(): MimeBundle {
    return linkedAttentionView({ tokens: this.tokens, layers: this.layers, patterns: this.patterns, layer: this.selected.layer, head: this.selected.head });
  }

  toJSON(): object {
    const { layers, ids, tokens, patterns, selected } = this;
    return { layers, ids, tokens, patterns, selected };
  }

  toString(): string {
    const { layer, head } = this.selected;
    const text = attentionText({ tokens: this.tokens, patterns: [this.patterns[this.layers.indexOf(layer)][head]], heads: [head], layer });
    return `AttentionView(layers ${this.layers.join(", ")} × ${this.patterns[0].length} heads, ${this.tokens.length} tokens; selected L${layer}H${head})\n${text}`;
  }
}

/** One key position and the attention it receives. */
export interface AttendedKey {
  position: number;
  id: number;
  token: string;
  /** Attention weight (summed over queries for the overall ranking; one query's weight per query). */
  weight: number;
}

/** The top-k keys of one head for every query position (`topAttendedIds(…, { perQuery: true })`). */
export interface QueryTopKeys {
  query: number;
  token: string;
  keys: AttendedKey[];
}

/** The key positions that receive the most attention in one head (summed over queries), and optionally per query. */
export class TopAttended implements Displayable {
  constructor(
    readonly layer: number,
    readonly head: number,
    readonly k: number,
    readonly tokens: string[],
    /** The top keys summed over all queries, strongest first. */
    readonly entries: AttendedKey[],
    /** With `{ perQuery: true }`: the top keys of each query (among the keys it can see), else null. */
    readonly perQuery: QueryTopKeys[] | null,
  ) {}

  get positions(): number[] {
    return this.entries.map((e) => e.position);
  }

  get ids(): number[] {
    return this.entries.map((e) => e.id);
  }

  toMimeBundle(): MimeBundle {
    return topAttendedView({
      tokens: this.tokens,
      positions: this.positions,
      weights: this.entries.map((e) => e.weight),
      layer: this.layer,
      head: this.head,
      weightLabel: `attention received (summed over ${this.tokens.length} queries)`,
    });
  }

  toJSON(): object {
    return { layer: this.layer, head: this.head, k: this.k, tokens: this.tokens, entries: this.entries, perQuery: this.perQuery };
  }

  toString(): string {
    const lines = [`TopAttended(layer ${this.layer}, head ${this.head}, top ${this.entries.length} of ${this.tokens.length} keys, weight summed over queries)`];
    lines.push(textTable([["rank", "pos", "token", "id", "weight"], ...this.entries.map((e, i) => [String(i + 1), String(e.position), tok(e.token), String(e.id), fmt(e.weight)])]));
    if (this.perQuery) {
      lines.push("per query:");
      lines.push(textTable(this.perQuery.map((q) => [`${q.query} ${tok(q.token)}`, q.keys.map((key) => `${key.position} ${tok(key.token)} ${fmt(key.weight, 2)}`).join(", ")])));
    }
    return lines.join("\n");
  }
}

/** One vocabulary entry whose logit an ablation moved. */
export interface LogitChange {
  id: number;
  token: string;
  clean: number;
  ablated: number;
  /** ablated − clean */
  delta: number;
}

/**
 * What ablating one head does to one sequence: per-token loss clean vs ablated (position t predicts token t+1,
 * so arrays have `tokens.length − 1` entries), the change of the correct token's logit, and the logits that
 * moved most at each position.
 */
export class AblationComparison implements Displayable {
  constructor(
    readonly layer: number,
    readonly head: number,
    readonly mode: AblationMode,
    readonly ids: number[],
    readonly tokens: string[],
    readonly clean: number[],
    readonly ablated: number[],
    /** Logit of the correct next token, ablated − clean, per prediction. */
    readonly targetLogitDelta: number[],
    /** Per position (all `tokens.length`): the top-|Δ| logits, largest change first. */
    readonly topChanges: LogitChange[][],
  ) {}

  /** ablated − clean loss per prediction. */
  get delta(): number[] {
    return this.ablated.map((a, t) => a - this.clean[t]);
  }

  get meanClean(): number {
    return mean(this.clean);
  }

  get meanAblated(): number {
    return mean(this.ablated);
  }

  get label(): string {
    return `L${this.layer}H${this.head} ${this.mode}-ablated`;
  }

  toMimeBundle(): MimeBundle {
    return ablationComparisonView({ tokens: this.tokens, clean: this.clean, ablated: this.ablated, label: this.label });
  }

  toJSON(): object {
    const { layer, head, mode, ids, tokens, clean, ablated, targetLogitDelta, topChanges } = this;
    return { layer, head, mode, ids, tokens, clean, ablated, delta: this.delta, targetLogitDelta, topChanges };
  }

  toString(): string {
    const d = this.meanAblated - this.meanClean;
    const lines = [`AblationComparison(${this.label}; mean loss ${fmt(this.meanClean)} → ${fmt(this.meanAblated)}, Δ ${d >= 0 ? "+" : ""}${fmt(d)})`];
    const shown = Math.min(this.clean.length, 32);
    const rows = [["pos", "predicts", "clean", "ablated", "Δ loss", "Δ logit(target)", "largest logit change"]];
    for (let t = 0; t < shown; t++) {
      const top = this.topChanges[t][0];
      rows.push([String(t), tok(this.tokens[t + 1]), fmt(this.clean[t]), fmt(this.ablated[t]), fmt(this.ablated[t] - this.clean[t]), fmt(this.targetLogitDelta[t]), top ? `${tok(top.token)} ${top.delta >= 0 ? "+" : ""}${fmt(top.delta)}` : ""]);
    }
    lines.push(textTable(rows));
    if (shown < this.clean.length) lines.push(`… ${this.clean.length - shown} more predictions`);
    return lines.join("\n");
  }
}

/** A layer × head grid of the change in a metric when each head is ablated alone. */
export class HeadSweep implements Displayable {
  constructor(
    /** ablated − clean metric, `[layer][head]`. */
    readonly values: number[][],
    /** The metric with each head ablated, `[layer][head]`. */
    readonly ablated: number[][],
    /** The metric of the model as it was (no extra ablation). */
    readonly clean: number,
    readonly metricLabel: string,
    readonly mode: AblationMode,
    readonly rows: number[][],
  ) {}

  /** The k heads whose ablation raises the metric most, largest first. */
  top(k = 5): { layer: number; head: number; value: number }[] {
    checkCount("k", k);
    const flat = this.values.flatMap((row, layer) => row.map((value, head) => ({ layer, head, value })));
    return topIndices(flat.map((e) => e.value), k).map((i) => flat[i]);
  }

  private get grid() {
    return {
      values: this.values,
      title: `Change in ${this.metricLabel} when each head is ${this.mode}-ablated (clean ${fmt(this.clean)})`,
      metricLabel: `Δ ${this.metricLabel}`,
      diverging: true,
    };
  }

  toMimeBundle(): MimeBundle {
    return headGridView(this.grid);
  }

  toJSON(): object {
    return { values: this.values, ablated: this.ablated, clean: this.clean, metricLabel: this.metricLabel, mode: this.mode, rows: this.rows };
  }

  /** A header naming the data, then the grid view's text (largest and smallest heads, the table). */
  toString(): string {
    return `HeadSweep(Δ ${this.metricLabel} when each head is ${this.mode}-ablated alone; clean ${fmt(this.clean)})\n${headGridText(this.grid)}`;
  }
}


export function mean(xs: number[]): number {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN;
}
