/**
 * The model as ONNX graphs, one per stage (embeddings, each block, final norm + unembedding), emitted from
 * `ModelDims` flags. Each graph computes what `src/model/components.ts` and `forward.ts` compute, in the same
 * order of float32 operations where it matters for parity, and every hook point of the stage is a named value
 * of the graph (named as the hook point), so it can be returned as an output or cut at.
 *
 * Graph inputs: `tokens` [B, T] and `positions` [T] (int64) for the embeddings; `resid_in` [B, T, d_model] for
 * a block and the unembedding; `mask_keep` / `mask_fill` [T, T] and (rotary) `cos` / `sin` [1, T, 1, rotary_dim]
 * for a block. Weights are initializers.
 */
import type * as tf from "@tensorflow/tfjs";
import type { AttnParams, LayerParams, MlpParams, ModelDims, ModelParams, NormParams } from "../../model/types";
import { type Dim, Graph } from "./graph";

/** The value each stage ends with. */
export const STAGE_OUT = "stage_out";

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

/** Float32 values of a weight (a copy on backends that keep data elsewhere, the storage itself on cpu). */
function values(t: tf.Tensor): Float32Array {
  return t.dataSync() as Float32Array;
}

/** A builder for one stage: the graph plus helpers named after the tf components they mirror. */
class Emitter {
  readonly g = new Graph();
  constructor(
    readonly c: Readonly<ModelDims>,
    /** Weights as graph inputs fed from the tensors' own storage (no copy inside onnxruntime) instead of initializers. */
    readonly weightsAsInputs = false,
  ) {}

  w(name: string, t: tf.Tensor): string {
    if (!this.weightsAsInputs) return this.g.init(name, t.shape, values(t));
    this.g.input(name, t.shape);
    this.g.weightFeeds.set(name, { dims: t.shape, data: values(t) });
    return name;
  }

  /** x [.., in] @ w [in, out] (+ b [out]). */
  project(x: string, w: string, b?: string, out?: string, dims?: Dim[]): string {
    const y = this.g.op("MatMul", [x, w], [], b ? undefined : out, b ? undefined : dims);
    return b ? this.g.op("Add", [y, b], [], out, dims) : y;
  }

  norm(x: string, p: NormParams, name: string, out: string): string {
    const d = this.g.dims.get(x) ?? ["B", "T", this.c.dModel];
    if (this.c.normKind === "layernorm") {
      // torch.nn.LayerNorm: (x - mean) / sqrt(biased var + eps) * w + b
      const ins = [x, this.w(`${name}.w`, p.w)];
      if (p.b) ins.push(this.w(`${name}.b`, p.b));
      return this.g.op("LayerNormalization", ins, [{ name: "axis", i: -1 }, { name: "epsilon", f: this.c.normEps }], out, d);
    }
    // RMSNorm: x * rsqrt(mean(x²) + eps) * (offset + w); offset + w is formed in float32 as tf.add does
    const wData = values(p.w);
    const scale = this.c.normWeightOffset ? Float32Array.from(wData, (v) => v + this.c.normWeightOffset) : wData;
    const w = this.g.init(`${name}.w`, [scale.length], scale);
    const ms = this.g.op("ReduceMean", [this.g.op("Mul", [x, x])], [{ name: "axes", ints: [-1] }, { name: "keepdims", i: 1 }]);
    const inv = this.g.op("Reciprocal", [this.g.op("Sqrt", [this.g.op("Add", [ms, this.g.f(this.c.normEps)])])]);
    return this.g.op("Mul", [this.g.op("Mul", [x, inv]), w], [], out, d);
  }

  activate(x: string): string {
    const g = this.g;
    switch (this.c.act) {
      case "gelu_new":
      case "gelu_pytorch_tanh": {
        // x·sigmoid(2u), u = sqrt(2/π)(x + 0.044715 x³), as the tf path computes the tanh form
        const cube = g.op("Mul", [g.op("Mul", [x, x]), x]);
        const inner = g.op("Add", [x, g.op("Mul", [cube, g.f(0.044715)])]);
        return g.op("Mul", [x, g.op("Sigmoid", [g.op("Mul", [inner, g.f(2 * SQRT_2_OVER_PI)])])]);
      }
      case "gelu": // (x·0.5)(1 + erf(x / sqrt 2))
        return g.op("Mul", [g.op("Mul", [x, g.f(0.5)]), g.op("Add", [g.f(1), g.op("Erf", [g.op("Mul", [x, g.f(Math.SQRT1_2)])])])]);
      case "silu":
        return g.op("Mul", [x, g.op("Sigmoid", [x])]);
      case "relu":
        return g.op("Relu", [x]);
    }
  }
}

/** Embeddings: token (times the embedding scale) plus learned positions. */
export function emitEmbed(c: Readonly<ModelDims>, p: ModelParams, weightsAsInputs = false): Graph {
  const e = new Emitter(c, weightsAsInputs);
  const g = e.g;
  g.input("tokens", ["B", "T"], "int64");
  const D = c.dModel;
  let x = g.op("Gather", [e.w("wE", p.wE), "tokens"], [{ name: "axis", i: 0 }], c.embedScale !== 1 ? undefined : "hook_embed", ["B", "T", D]);
  if (c.embedScale !== 1) x = g.op("Mul", [x, g.f(c.embedScale)], [], "hook_embed", ["B", "T", D]);
  if (!p.wPos) {
    g.op("Identity", [x], [], STAGE_OUT, ["B", "T", D]);
    return g;
  }
  g.input("positions", ["T"], "int64");
  const pos = g.op("Gather", [e.w("wPos", p.wPos), "positions"], [{ name: "axis", i: 0 }]); // [T, D]
  const batchShape = g.op("Shape", [x]); // [B, T, D]
  const posB = g.op("Expand", [pos, batchShape], [], "hook_pos_embed", ["B", "T", D]);
  g.op("Add", [x, posB], [], STAGE_OUT, ["B", "T", D]);
  return g;
}

/**
 * One transformer block; its hook values are named `blocks.{l}.…`. The block also takes `z_keep` [B or 1, 1,
 * head, 1] and `z_fill` [B or 1, 1, head, d_head] and continues with z·keep + fill: a head ablation per batch
 * row (the same float32 operations as the ablation hook) for sweeps, and exactly z when fed ones and zeros
 * (a forward). One graph for both means one compiled copy of the block's weights, not two.
 */
export function emitBlock(c: Readonly<ModelDims>, p: LayerParams, l: number, weightsAsInputs = false): Graph {
  const e = new Emitter(c, weightsAsInputs);
  const g = e.g;
  const D = c.dModel;
  const n = (local: string) => `blocks.${l}.${local}`;
  const BTD: Dim[] = ["B", "T", D];
  g.input("resid_in", BTD);
  g.input("mask_keep", ["T", "T"]);
  g.input("mask_fill", ["T", "T"]);
  if (c.positional === "rotary") {
    g.input("cos", [1, "T", 1, c.rotaryDim]);
    g.input("sin", [1, "T", 1, c.rotaryDim]);
  }
  const resid = g.op("Identity", ["resid_in"], [], n("hook_resid_pre"), BTD);
  // Norm placement: "pre" normalises each sublayer's input, "sandwich" also its output, "post" only its output.
  const placement = c.normPlacement ?? "pre";
  const input = (x: string, np: NormParams, name: string) => (placement === "post" ? x : e.norm(x, np, name, n(`${name}.hook_normalized`)));
  const output = (y: string, np: NormParams | undefined, name: string, hook: string) =>
    g.op("Identity", [placement === "pre" ? y : e.norm(y, np!, name, n(`${name}.hook_normalized`))], [], n(hook), BTD);
  g.input("z_keep", ["Bz", 1, c.nHeads, 1]);
  g.input("z_fill", ["Bz", 1, c.nHeads, c.dHead]);
  const attnOut = output(attention(e, input(resid, p.ln1, "ln1"), p.attn, l), placement === "post" ? p.ln1 : p.ln1Post, "ln1_post", "hook_attn_out");
  const mlpOf = (x: string) => output(mlp(e, input(x, p.ln2, "ln2"), p.mlp, l), placement === "post" ? p.ln2 : p.ln2Post, "ln2_post", "hook_mlp_out");
  if (c.parallelResidual) {
    g.op("Add", [g.op("Add", [resid, attnOut]), mlpOf(resid)], [], n("hook_resid_post"), BTD);
  } else {
    const mid = g.op("Add", [resid, attnOut], [], n("hook_resid_mid"), BTD);
    g.op("Add", [mid, mlpOf(mid)], [], n("hook_resid_post"), BTD);
  }
  g.op("Identity", [n("hook_resid_post")], [], STAGE_OUT, BTD);
  return g;
}

/**
 * The query or key norm of the model, if any, x [B, T, heads, d_head], w [heads, d_head]: per-head LayerNorm
 * without bias (qkNorm), or RMSNorm times (offset + w) over each head or over the whole projection (qkRmsNorm).
 */
function qkNormed(e: Emitter, x: string, w: tf.Tensor | undefined, name: string, out: string, heads: number): string {
  const { g, c } = e;
  const dims: Dim[] = ["B", "T", heads, c.dHead];
  if (c.qkNorm) {
    if (!w) return g.op("Identity", [x], [], out, dims);
    const ones = g.init(`${name}.ones`, [c.dHead], new Float32Array(c.dHead).fill(1));
    const normed = g.op("LayerNormalization", [x, ones], [{ name: "axis", i: -1 }, { name: "epsilon", f: c.normEps }]);
    return g.op("Mul", [normed, e.w(name, w)], [], out, dims);
  }
  if (c.qkRmsNorm && w) {
    const axes = c.qkRmsNorm === "projection" ? [2, 3] : [3];
    const wData = values(w);
    const scale = c.normWeightOffset ? Float32Array.from(wData, (v) => v + c.normWeightOffset) : wData;
    const ms = g.op("ReduceMean", [g.op("Mul", [x, x])], [{ name: "axes", ints: axes }, { name: "keepdims", i: 1 }]);
    const inv = g.op("Reciprocal", [g.op("Sqrt", [g.op("Add", [ms, g.f(c.normEps)])])]);
    return g.op("Mul", [g.op("Mul", [x, inv]), g.init(name, [...w.shape], scale)], [], out, dims);
  }
  return x;
}

/** tanh(x / cap) · cap (Gemma 2's soft-capping), as components.softcap. */
function softcap(e: Emitter, x: string, cap: number, out?: string, dims?: Dim[]): string {
  return e.g.op("Mul", [e.g.op("Tanh", [e.g.op("Div", [x, e.g.f(cap)])]), e.g.f(cap)], [], out, dims);
}

/** x' = x·cos + rotate_half(x)·sin on the first rotary_dim features of each head; the rest pass through. */
function rotary(e: Emitter, x: string, heads: number, out: string): string {
  const { g, c } = e;
  const R = c.rotaryDim;
  const dh = c.dHead;
  const dims: Dim[] = ["B", "T", heads, dh];
  const axis = [{ name: "axis", i: 3 }];
  const slice = (v: string, from: number, to: number) => g.op("Slice", [v, g.i64([from]), g.i64([to]), g.i64([3])]);
  const rot = R === dh ? x : slice(x, 0, R);
  const x1 = slice(rot, 0, R / 2);
  const x2 = slice(rot, R / 2, R);
  const rotatedHalf = g.op("Concat", [g.op("Neg", [x2]), x1], axis);
  const rotated = g.op("Add", [g.op("Mul", [rot, "cos"]), g.op("Mul", [rotatedHalf, "sin"])], [], R === dh ? out : undefined, R === dh ? dims : undefined);
  return R === dh ? rotated : g.op("Concat", [rotated, slice(x, R, dh)], axis, out, dims);
}

/** Multi-head (grouped-query) causal self-attention, as components.attention. */
function attention(e: Emitter, x: string, p: AttnParams, l: number): string {
  const { g, c } = e;
  const { nHeads: H, nKvHeads: KV, dHead: dh, dModel: D } = c;
  const n = (local: string) => `blocks.${l}.${local}`;
  const w = (name: string, t?: tf.Tensor) => (t ? e.w(`attn.${name}`, t) : undefined);
  const headsOf = (k: number, out: string, which: string, wt: tf.Tensor, bt?: tf.Tensor) => {
    let y = e.project(x, w(`w${which}`, wt)!, w(`b${which}`, bt));
    if (c.clipQkv !== undefined) y = g.op("Clip", [y, g.f(-c.clipQkv), g.f(c.clipQkv)]);
    return g.op("Reshape", [y, g.i64([0, 0, k, dh])], [], out, ["B", "T", k, dh]);
  };
  let q = qkNormed(e, headsOf(H, n("attn.hook_q"), "Q", p.wQ, p.bQ), p.qNorm, "attn.qNorm", n("attn.q_norm.hook_normalized"), H);
  let k = qkNormed(e, headsOf(KV, n("attn.hook_k"), "K", p.wK, p.bK), p.kNorm, "attn.kNorm", n("attn.k_norm.hook_normalized"), KV);
  const v = headsOf(KV, n("attn.hook_v"), "V", p.wV, p.bV);
  if (c.positional === "rotary") {
    q = rotary(e, q, H, n("attn.hook_rot_q"));
    k = rotary(e, k, KV, n("attn.hook_rot_k"));
  }
  // Under grouped-query attention query head h reads kv head h // group: k and v are repeated per query head.
  const group = H / KV;
  const perHead = (t: string) => (group === 1 ? t : g.op("Reshape", [g.op("Expand", [g.op("Unsqueeze", [t, g.i64([2])]), g.i64([1, 1, group, 1, 1])]), g.i64([0, H, -1, dh])]));
  const qh = g.op("Transpose", [q], [{ name: "perm", ints: [0, 2, 1, 3] }]); // [B, H, T, dh]
  const kh = perHead(g.op("Transpose", [k], [{ name: "perm", ints: [0, 2, 1, 3] }])); // [B, H, T, dh]
  const vh = perHead(g.op("Transpose", [v], [{ name: "perm", ints: [0, 2, 1, 3] }])); // [B, H, T, dh]
  const kT = g.op("Transpose", [kh], [{ name: "perm", ints: [0, 1, 3, 2] }]); // [B, H, dh, T]
  let raw = g.op("Mul", [g.op("MatMul", [qh, kT]), g.f(c.attnScale)]); // [B, H, T, T]
  if (c.attnSoftcap !== undefined) raw = softcap(e, raw, c.attnSoftcap);
  const scores = g.op("Add", [g.op("Mul", [raw, "mask_keep"]), "mask_fill"], [], n("attn.hook_attn_scores"), ["B", H, "T", "T"]);
  const pattern = g.op("Softmax", [scores], [{ name: "axis", i: -1 }], n("attn.hook_pattern"), ["B", H, "T", "T"]);
  const zh = g.op("MatMul", [pattern, vh]); // [B, H, T, dh]
  const z = g.op("Transpose", [zh], [{ name: "perm", ints: [0, 2, 1, 3] }], n("attn.hook_z"), ["B", "T", H, dh]);
  const zUsed = g.op("Add", [g.op("Mul", [z, "z_keep"]), "z_fill"]); // [B, T, H, dh]
  const flat = g.op("Reshape", [zUsed, g.i64([0, 0, H * dh])]);
  return e.project(flat, w("wO", p.wO)!, w("bO", p.bO)); // [B, T, D]
}

/** The MLP (plain or gated), as components.mlp. */
function mlp(e: Emitter, x: string, p: MlpParams, l: number): string {
  const { g, c } = e;
  const n = (local: string) => `blocks.${l}.${local}`;
  const w = (name: string, t?: tf.Tensor) => (t ? e.w(`mlp.${name}`, t) : undefined);
  const F: Dim[] = ["B", "T", c.dMlp];
  const pre = p.wGate ? e.project(x, w("wGate", p.wGate)!, w("bGate", p.bGate), n("mlp.hook_pre"), F) : e.project(x, w("wIn", p.wIn)!, w("bIn", p.bIn), n("mlp.hook_pre"), F);
  let post = e.activate(pre);
  if (p.wGate) post = g.op("Mul", [post, e.project(x, w("wIn", p.wIn)!, w("bIn", p.bIn), n("mlp.hook_pre_linear"), F)]);
  post = g.op("Identity", [post], [], n("mlp.hook_post"), F);
  return e.project(post, w("wOut", p.wOut)!, w("bOut", p.bOut)); // [B, T, D]
}

/** The unembedding's second output: next-token losses [B, P] for the positions `targets` gives. */
export const LOSS_OUT = "token_loss";

/**
 * Final norm and unembedding: logits [B, T, vocab] (the stage output), and `token_loss` [B, P], the next-token
 * loss −log_softmax(logits[b, t])[targets[b, t]] at the first P positions, from the input `targets` [B, P, 1]
 * (int64; P = T − 1 and each row's tokens from the second on, for a sweep; P = 0 in a forward, where the branch
 * then costs nothing). Sweeps fetch only the losses: moving the logits out of onnxruntime would cost as much
 * as computing them, and one graph for both keeps one compiled copy of the unembedding weights.
 */
export function emitUnembed(c: Readonly<ModelDims>, p: ModelParams, weightsAsInputs = false): Graph {
  const e = new Emitter(c, weightsAsInputs);
  const g = e.g;
  g.input("resid_in", ["B", "T", c.dModel]);
  g.input("targets", ["B", "P", 1], "int64");
  const normed = e.norm("resid_in", p.lnFinal, "ln_final", "ln_final.hook_normalized");
  const V: Dim[] = ["B", "T", c.dVocab];
  const wU = e.w("wU", p.wU);
  const bU = p.bU ? e.w("bU", p.bU) : undefined;
  if (c.finalSoftcap === undefined) e.project(normed, wU, bU, STAGE_OUT, V);
  else softcap(e, e.project(normed, wU, bU), c.finalSoftcap, STAGE_OUT, V);
  const P = g.op("Slice", [g.op("Shape", ["targets"]), g.i64([1]), g.i64([2])]); // [1]: P
  const first = g.op("Slice", [STAGE_OUT, g.i64([0]), P, g.i64([1])]); // [B, P, V]
  // LogSoftmax (a vectorised kernel) and a gather: cheaper here than ReduceLogSumExp minus the target logit.
  const logp = g.op("LogSoftmax", [first], [{ name: "axis", i: -1 }]); // [B, P, V]
  const picked = g.op("GatherElements", [logp, "targets"], [{ name: "axis", i: 2 }]); // [B, P, 1]
  g.op("Neg", [g.op("Squeeze", [picked, g.i64([2])])], [], LOSS_OUT, ["B", "P"]);
  return g;
}
