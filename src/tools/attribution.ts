/**
 * Direct logit attribution: the logit difference between two tokens at one position, split into what each
 * component writes directly into the final residual stream — the embeddings, each head's output
 * (`z_h @ W_O[h]`), each layer's attention output bias, each MLP — read through the final norm with its scale
 * frozen at the value the full residual gives (TransformerLens `apply_ln_to_stack`): for LayerNorm a
 * component c contributes `(c − mean(c)) / scale · ((w) ⊙ (W_U[:, a] − W_U[:, b]))`, for RMSNorm without the
 * centring. The norm's bias and the unembedding bias are the one constant term ("final norm and unembed
 * biases"). The contributions sum to the model's own logit difference up to float32 rounding.
 *
 * Done in float64 on the cached activations (vectors of d_model numbers; W_O·u is one pass over W_O).
 */
import * as tf from "@tensorflow/tfjs";
import { attributionView, type Displayable, type MimeBundle } from "../display";
import { fail, show } from "../errors";
import type { HookedAutoModel } from "../model/hooked-model";
import type { ModelInput } from "../model/input";
import { checkOptions, fmt, oneSequence, textTable, tok } from "./common";
import { tokenId } from "./patching";

export type ComponentKind = "embed" | "pos_embed" | "head" | "attn_bias" | "mlp" | "bias";

export interface LogitComponent {
  name: string;
  kind: ComponentKind;
  layer: number | null;
  head: number | null;
  /** Its direct contribution to logit(answer) − logit(wrong). */
  value: number;
}

export class LogitAttribution implements Displayable {
  constructor(
    readonly answer: { id: number; token: string },
    readonly wrong: { id: number; token: string },
    readonly position: number,
    readonly tokens: string[],
    /** Every component, in forward order (embeddings, then per layer its heads, attention bias and MLP, then the biases). */
    readonly components: LogitComponent[],
    /** The model's logit(answer) − logit(wrong) at `position`. */
    readonly logitDiff: number,
    /** Per head `[layer][head]`. */
    readonly heads: number[][],
  ) {}

  /** Sum of all components (equals `logitDiff` up to float32 rounding of the forward pass). */
  get sum(): number {
    return this.components.reduce((a, c) => a + c.value, 0);
  }

  /** The k components with the largest |value|, largest first. */
  top(k = 10): LogitComponent[] {
    return [...this.components].sort((a, b) => Math.abs(b.value) - Math.abs(a.value)).slice(0, k);
  }

  get title(): string {
    return `Direct logit attribution: logit(${tok(this.answer.token)}) − logit(${tok(this.wrong.token)}) at position ${this.position}`;
  }

  toMimeBundle(): MimeBundle {
    return attributionView({
      names: this.components.map((c) => c.name),
      values: this.components.map((c) => c.value),
      title: this.title,
      subtitle: `model ${fmt(this.logitDiff)}, sum of components ${fmt(this.sum)} (final norm scale frozen)`,
    });
  }

  toJSON(): object {
    const { answer, wrong, position, tokens, components, logitDiff, heads } = this;
    return { answer, wrong, position, tokens, components, logitDiff, sum: this.sum, heads };
  }

  toString(): string {
    const rows = [["component", "contribution"], ...this.top(12).map((c) => [c.name, fmt(c.value)])];
    return [`LogitAttribution(${this.title}; model ${fmt(this.logitDiff)}, sum ${fmt(this.sum)})`, textTable(rows)].join("\n");
  }
}

export interface AttributionOptions {
  /** Position whose logits are explained (default: the last). */
  position?: number;
}

/** Row `p` of a cached `[1, pos, ...]` activation as float64. */
function at(data: Float32Array | Int32Array | Uint8Array, p: number, width: number): Float64Array {
  return Float64Array.from(data.subarray(p * width, (p + 1) * width));
}

const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
};

/** Logit difference of `answer` over `wrong` at one position, split into direct contributions. */
export function logitAttribution(model: HookedAutoModel, input: ModelInput, answerIn: number | string, wrongIn: number | string, options: AttributionOptions = {}): LogitAttribution {
  const opts = checkOptions("logitAttribution", options, ["position"]);
  const row = oneSequence(model, input, "logitAttribution");
  const a = tokenId(model, answerIn, "answer");
  const b = tokenId(model, wrongIn, "wrong");
  const T = row.length;
  const pos = opts.position ?? T - 1;
  if (!Number.isInteger(pos) || pos < 0 || pos >= T) fail(`logitAttribution: position must be an integer in [0, ${T - 1}], got ${show(pos)}`);
  const c = model.cfg;
  if ((c.normPlacement ?? "pre") !== "pre") fail(`logitAttribution: this ${c.family} model normalises each sublayer's output (norm placement "${c.normPlacement}") before it joins the residual stream, so a head's output is not its contribution to the logits and there is no direct attribution per head`);
  if (c.finalSoftcap !== undefined) fail(`logitAttribution: this ${c.family} model caps its logits (tanh(l / ${c.finalSoftcap}) · ${c.finalSoftcap}), which is not linear in the residual stream; direct logit attribution needs uncapped logits`);
  const { nLayers: L, nHeads: H, dHead: dh, dModel: D } = c;
  const names = ["hook_embed", ...(c.positional === "learned" ? ["hook_pos_embed"] : []), `blocks.${L - 1}.hook_resid_post`];
  for (let l = 0; l < L; l++) names.push(`blocks.${l}.attn.hook_z`, `blocks.${l}.hook_mlp_out`);
  const { logits, cache } = model.runWithCache([row], { names });
  try {
    const lg = tf.tidy(() => tf.slice(logits, [0, pos, 0], [1, 1, -1]).dataSync());
    const logitDiff = lg[a] - lg[b];
    const get = (n: string, width: number) => at(cache.get(n).dataSync() as Float32Array, pos, width);
    // The unembedding direction through the norm's weight, and the frozen scale of the full residual.
    const p = model.params;
    const cols = tf.tidy(() => tf.gather(p.wU, [a, b], 1).dataSync()); // [d_model, 2] row-major
    const w = p.lnFinal.w.dataSync();
    const u = Float64Array.from({ length: D }, (_, i) => (w[i] + c.normWeightOffset) * (cols[2 * i] - cols[2 * i + 1]));
    const resid = get(`blocks.${L - 1}.hook_resid_post`, D);
    const layerNorm = c.normKind === "layernorm";
    const mean = (v: ArrayLike<number>) => dot(v, new Float64Array(v.length).fill(1)) / v.length;
    const centre = (v: Float64Array) => {
      const m = layerNorm ? mean(v) : 0;
      return v.map((x) => x - m);
    };
    const rc = centre(resid);
    const scale = Math.sqrt(dot(rc, rc) / D + c.normEps);
    const uc = centre(u); // (v − mean v)·u = v·(u − mean u): centring moves onto u
    const contrib = (v: Float64Array) => dot(v, uc) / scale;

    const components: LogitComponent[] = [];
    const add = (name: string, kind: ComponentKind, layer: number | null, head: number | null, value: number) => components.push({ name, kind, layer, head, value });
    add("embed", "embed", null, null, contrib(get("hook_embed", D)));
    if (c.positional === "learned") add("pos_embed", "pos_embed", null, null, contrib(get("hook_pos_embed", D)));
    const heads: number[][] = [];
    for (let l = 0; l < L; l++) {
      const attn = p.layers[l].attn;
      const wO = attn.wO.dataSync(); // [head·d_head, d_model]
      const wOu = Float64Array.from({ length: H * dh }, (_, r) => dot(wO.subarray(r * D, (r + 1) * D), uc)); // W_O · u
      const z = get(`blocks.${l}.attn.hook_z`, H * dh); // [head·d_head] at pos
      heads.push(Array.from({ length: H }, (_, h) => {
        const value = dot(z.subarray(h * dh, (h + 1) * dh), wOu.subarray(h * dh, (h + 1) * dh)) / scale;
        add(`L${l}H${h}`, "head", l, h, value);
        return value;
      }));
      if (attn.bO) add(`L${l} attn bias`, "attn_bias", l, null, contrib(Float64Array.from(attn.bO.dataSync())));
      add(`L${l} MLP`, "mlp", l, null, contrib(get(`blocks.${l}.hook_mlp_out`, D)));
    }
    const lnB = p.lnFinal.b?.dataSync();
    const bU = p.bU?.dataSync();
    const constant = (lnB ? Array.from(lnB).reduce((s, x, i) => s + x * (cols[2 * i] - cols[2 * i + 1]), 0) : 0) + (bU ? bU[a] - bU[b] : 0);
    add("final norm and unembed biases", "bias", null, null, constant);
    const token = (id: number) => ({ id, token: model.idToToken(id) });
    return new LogitAttribution(token(a), token(b), pos, row.map((id) => model.idToToken(id)), components, logitDiff, heads);
  } finally {
    logits.dispose();
    cache.dispose();
  }
}
