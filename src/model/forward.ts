/**
 * The forward pass of every family, as TensorFlow.js ops: embeddings, one block, and the final norm with the
 * unembedding. Each stage reports its activations through `point(name, layer, x)`, which applies hooks and
 * caching and returns the (possibly replaced) tensor. The wiring of a block (sequential or parallel residual)
 * is read from `ModelDims` flags; the components it calls are in `components.ts`.
 *
 * These functions allocate freely: the caller runs each stage inside its own `tf.tidy`.
 */
import * as tf from "@tensorflow/tfjs";
import { type At, attention, causalMask, mlp, norm, project, softcap } from "./components";
import { checkReportedPoint } from "./hooks";
import { rotaryTablesFor } from "./rope";
import type { LayerParams, ModelDims, ModelParams, NormParams } from "./types";

/** Applies hooks and caching at a hook point and returns the tensor the forward pass continues with. */
export type PointFn = <X extends tf.Tensor>(name: string, layer: number | null, x: X) => X;

/** `point`, refusing names the hook catalogue does not list (so the catalogue stays the one source of truth). */
function listed(c: ModelDims, point: PointFn): PointFn {
  return (name, layer, x) => {
    checkReportedPoint(c, name);
    return point(name, layer, x);
  };
}

/** Token (and learned position) embeddings of id rows `[batch][pos]` → the residual stream `[batch, pos, d_model]`. */
export function embed(c: ModelDims, params: ModelParams, rows: number[][], reportAt: PointFn): tf.Tensor3D {
  const point = listed(c, reportAt);
  const [B, T] = [rows.length, rows[0].length];
  const tokens = tf.tensor2d(rows.flat(), [B, T], "int32");
  let x = tf.gather(params.wE, tokens) as unknown as tf.Tensor3D; // [batch, pos, d_model]
  if (c.embedScale !== 1) x = tf.mul(x, tf.scalar(c.embedScale, "float32"));
  x = point("hook_embed", null, x);
  if (!params.wPos) return x;
  const pos = tf.broadcastTo(tf.slice(params.wPos, [0, 0], [T, c.dModel]), [B, T, c.dModel]) as tf.Tensor3D; // [batch, pos, d_model]
  return tf.add(x, point("hook_pos_embed", null, pos));
}

/**
 * One transformer block: residual `[batch, pos, d_model]` in and out. Norm placement (cfg.normPlacement): "pre"
 * normalises each sublayer's input, "sandwich" also its output, "post" only its output; a parallel block feeds
 * attention and MLP from the same residual.
 */
export function block(c: ModelDims, p: LayerParams, l: number, residIn: tf.Tensor3D, reportAt: PointFn): tf.Tensor3D {
  const point = listed(c, reportAt);
  const at: At = (local, x) => point(`blocks.${l}.${local}`, l, x);
  const T = residIn.shape[1];
  const inputs = {
    mask: causalMask(T, c.windows[l]),
    rotary: c.positional === "rotary" ? rotaryTablesFor(c, l, T) : undefined,
  };
  const placement = c.normPlacement ?? "pre";
  /** A sublayer's input: normalised unless the norms sit after the sublayers. */
  const input = (x: tf.Tensor3D, n: NormParams, name: string) => (placement === "post" ? x : at(name, norm(c, x, n)));
  /** A sublayer's output as it joins the residual stream: normalised under "sandwich" and "post". */
  const output = (y: tf.Tensor3D, n: NormParams | undefined, name: string) => (placement === "pre" ? y : at(name, norm(c, y, n!)));
  const resid = at("hook_resid_pre", residIn);
  const attnRaw = attention(c, input(resid, p.ln1, "ln1.hook_normalized"), p.attn, inputs, at);
  const attnOut = at("hook_attn_out", output(attnRaw, placement === "post" ? p.ln1 : p.ln1Post, "ln1_post.hook_normalized"));
  if (c.parallelResidual) {
    const mlpOut = at("hook_mlp_out", output(mlp(c, input(resid, p.ln2, "ln2.hook_normalized"), p.mlp, at), placement === "post" ? p.ln2 : p.ln2Post, "ln2_post.hook_normalized"));
    return at("hook_resid_post", tf.add(tf.add(resid, attnOut), mlpOut) as tf.Tensor3D);
  }
  const mid = at("hook_resid_mid", tf.add(resid, attnOut) as tf.Tensor3D);
  const mlpOut = at("hook_mlp_out", output(mlp(c, input(mid, p.ln2, "ln2.hook_normalized"), p.mlp, at), placement === "post" ? p.ln2 : p.ln2Post, "ln2_post.hook_normalized"));
  return at("hook_resid_post", tf.add(mid, mlpOut) as tf.Tensor3D);
}

/** Final norm and unembedding: residual `[batch, pos, d_model]` → logits `[batch, pos, vocab]`. */
export function unembed(c: ModelDims, params: ModelParams, resid: tf.Tensor3D, reportAt: PointFn): tf.Tensor3D {
  const point = listed(c, reportAt);
  const [B, T] = resid.shape;
  const normed = point("ln_final.hook_normalized", null, norm(c, resid, params.lnFinal));
  const logits = project(tf.reshape(normed, [B * T, c.dModel]), params.wU, params.bU); // [batch·pos, vocab]
  const capped = c.finalSoftcap === undefined ? logits : softcap(logits, c.finalSoftcap);
  return tf.reshape(capped, [B, T, c.dVocab]) as tf.Tensor3D;
}
