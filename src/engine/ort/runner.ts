/**
 * Runs one model on onnxruntime: a session per stage (embeddings, each block, unembedding), compiled lazily
 * per set of hooked points. Without hooks a stage is one session whose hook points are outputs only when a
 * cache asks for them; with hooks the stage is cut at each hooked point, the JS hooks receive the activation
 * as a tf.Tensor, and the next segment continues with what they return.
 */
import * as tf from "@tensorflow/tfjs";
import { causalMask } from "../../model/components";
import { rotaryTablesFor } from "../../model/rope";
import { hookPointsFor } from "../../model/hooks";
import type { ModelDims } from "../../model/types";
import type { AblatedHead, AblationBatches, EngineModel, RunRequest, Runner } from "../types";
import { emitBlock, emitEmbed, emitUnembed, LOSS_OUT, STAGE_OUT } from "./emit";
import { type Graph, planSegments, type Segment, serialize } from "./graph";
import { f32, i64, type OrtTensor, SyncSession } from "./session";

interface Compiled {
  parts: { seg: Segment; session: SyncSession; fetchAlways: Set<string> }[];
}

/** Compiled variants kept per stage (each holds a copy of the stage's weights inside onnxruntime). */
const MAX_VARIANTS = 3;

class Stage {
  private refs: unknown[] = [];
  /** Weights fed as inputs (views of the tensors' storage), when the model keeps them outside onnxruntime. */
  weightFeeds: Record<string, OrtTensor> = {};
  private readonly variants = new Map<string, Compiled>();
  readonly order: Map<string, number>;

  constructor(
    readonly points: string[],
    readonly layer: number | null,
    private readonly build: () => Graph,
    private readonly current: () => unknown[],
    /** The values the stage ends with (its output first). */
    private readonly finals: string[] = [STAGE_OUT],
  ) {
    this.order = new Map(points.map((p, i) => [p, i]));
  }

  /** Drops every compiled variant when the weights this stage was built from were swapped (a merge). */
  private checkWeights(): void {
    const now = this.current();
    if (now.length === this.refs.length && now.every((t, i) => t === this.refs[i])) return;
    this.dispose();
    this.refs = now;
  }

  compiled(cuts: string[], declareAll: boolean): Compiled {
    this.checkWeights();
    const key = `${cuts.join(",")}|${declareAll ? "all" : "plain"}`;
    const hit = this.variants.get(key);
    if (hit) {
      this.variants.delete(key); // most recently used last
      this.variants.set(key, hit);
      return hit;
    }
    while (this.variants.size >= MAX_VARIANTS) {
      const [oldest, v] = this.variants.entries().next().value as [string, Compiled];
      v.parts.forEach((p) => p.session.dispose());
      this.variants.delete(oldest);
    }
    // The graph (with copies of the weights) lives only while its sessions are made.
    const g = this.build();
    const made = new Set(g.nodes.map((n) => n.output));
    const missing = this.points.filter((p) => !made.has(p));
    if (missing.length) throw new Error(`the ONNX graph of this stage lacks the hook points ${missing.join(", ")} (the emitter and hookPointsFor disagree)`);
    const segments = planSegments(g, cuts, declareAll ? this.points : [], this.finals, this.order);
    const parts = segments.map((seg, s) => {
      const later = new Set(segments.slice(s + 1).flatMap((x) => x.inputs));
      const fetchAlways = new Set(seg.outputs.filter((v) => later.has(v) || v === seg.cut || v === STAGE_OUT));
      const session = new SyncSession(serialize(g, seg.nodes, seg.inputs.map((v) => g.info(v)), seg.outputs.map((v) => g.info(v))));
      return { seg, session, fetchAlways };
    });
    const c = { parts };
    this.variants.set(key, c);
    this.weightFeeds = Object.fromEntries([...g.weightFeeds].map(([n, w]) => [n, f32(w.data as Float32Array, w.dims)]));
    return c;
  }

  dispose(): void {
    for (const v of this.variants.values()) v.parts.forEach((p) => p.session.dispose());
    this.variants.clear();
  }
}

/**
 * Rows (batch rows × positions) one batched run of the blocks takes at most: all 12 heads of a GPT-2-small
 * layer at 64 tokens (768 rows) go in one run. Bigger products run closer to the GEMM's peak and each layer's
 * run is one session call per block instead of four; with glibc's huge pages (as the kernel and bench run) the
 * larger arena costs little to grow. Measured with GPT-2 small, 64 tokens, 1 thread: ~9.1–9.5 s of CPU per sweep
 * at 768 rows against ~11.3 s at 192.
 */
const BLOCK_ROWS_PER_RUN = 768;
/**
 * Rows one run of the unembedding takes at most. Its product is as fast per row from 128 rows on as at 768
 * (the 50,257-column weight is streamed once per run either way; ~28–29 ms per 63-position head measured at
 * 128–768 rows), while its logits and their log-softmax, [rows, vocab] each, stay ~40 MB instead of ~150 MB.
 */
const UNEMBED_ROWS_PER_RUN = 192;

/** Items split into near-equal groups of at most `cap` rows each (`rows` per item; at least one item each). */
function groupsOf<X>(items: X[], rows: number, cap: number): X[][] {
  const runs = Math.ceil((items.length * rows) / cap);
  const per = Math.max(1, Math.ceil(items.length / runs));
  return Array.from({ length: Math.ceil(items.length / per) }, (_, i) => items.slice(i * per, (i + 1) * per));
}

/** `n` copies of `x` one after the other. */
function tile(x: Float32Array, n: number): Float32Array {
  const out = new Float32Array(n * x.length);
  for (let i = 0; i < n; i++) out.set(x, i * x.length);
  return out;
}

/** The unembedding's `targets` when no loss is wanted: none per row, so its loss branch does no work. */
function noTargets(B: number): OrtTensor {
  return i64(new BigInt64Array(0), [B, 0, 1]);
}

/** Every tensor of a parameter subtree, in a fixed order (to notice swapped entries). */
function leaves(x: unknown, out: unknown[] = []): unknown[] {
  if (x instanceof tf.Tensor) out.push(x);
  else if (Array.isArray(x)) x.forEach((v) => leaves(v, out));
  else if (x && typeof x === "object") for (const k of Object.keys(x).sort()) leaves((x as Record<string, unknown>)[k], out);
  return out;
}

export class OrtRunner implements Runner {
  private readonly stages: Stage[];
  private readonly c: Readonly<ModelDims>;
  private inputsFor: {
    T: number;
    masks: Map<string, { keep: OrtTensor; fill: OrtTensor }>;
    rotary: { cos: OrtTensor; sin: OrtTensor }[];
    noAblation: { z_keep: OrtTensor; z_fill: OrtTensor };
  } | null = null;

  constructor(private readonly model: EngineModel) {
    const c = (this.c = model.cfg);
    const names = hookPointsFor(c).map((p) => p.name);
    const p = () => model.params;
    const asInputs = model.weightsAsInputs ?? false;
    const version = (l: number) => model.edits?.layerVersion(l) ?? 0;
    const embedNames = names.filter((n) => n === "hook_embed" || n === "hook_pos_embed");
    this.stages = [
      new Stage(embedNames, null, () => emitEmbed(c, p(), asInputs), () => [p().wE, p().wPos]),
      ...Array.from({ length: c.nLayers }, (_, l) => {
        const prefix = `blocks.${l}.`;
        return new Stage(names.filter((n) => n.startsWith(prefix)), l, () => emitBlock(c, p().layers[l], l, asInputs), () => [version(l), ...leaves(p().layers[l])]);
      }),
      new Stage(["ln_final.hook_normalized"], null, () => emitUnembed(c, p(), asInputs), () => [p().wU, p().bU, ...leaves(p().lnFinal)], [STAGE_OUT, LOSS_OUT]),
    ];
  }

  run(req: RunRequest): tf.Tensor3D {
    const rows = req.rows;
    const [B, T] = [rows.length, rows[0].length];
    const feeds: Record<string, OrtTensor> = { tokens: i64(BigInt64Array.from(rows.flat(), BigInt), [B, T]) };
    if (this.c.positional === "learned") feeds.positions = i64(BigInt64Array.from({ length: T }, (_, t) => BigInt(t)), [T]);
    let x = this.runStage(this.stages[0], feeds, req);
    for (let l = 0; l < this.c.nLayers; l++) x = this.runStage(this.stages[l + 1], this.blockFeeds(l, T, x), req);
    const logits = this.runStage(this.stages[this.c.nLayers + 1], { resid_in: x, targets: noTargets(B) }, req);
    return tf.tensor3d(logits.data as Float32Array, logits.dims as [number, number, number]);
  }

  /**
   * Head ablations in batches, for sweeps: one clean pass keeps the residual stream entering every block; then
   * each layer's call runs the blocks from `layer` on with one batch row group per ablated head (the clean
   * prefix below the layer is reused). Hooks are not applied: the caller uses it only on a model without hooks.
   */
  ablationBatches(rows: number[][]): AblationBatches {
    const [B, T] = [rows.length, rows[0].length];
    const none: RunRequest = { rows, hooksAt: () => undefined, caches: () => false, cache: null, record: () => {}, point: (_n, _l, x) => x };
    const feeds: Record<string, OrtTensor> = { tokens: i64(BigInt64Array.from(rows.flat(), BigInt), [B, T]) };
    if (this.c.positional === "learned") feeds.positions = i64(BigInt64Array.from({ length: T }, (_, t) => BigInt(t)), [T]);
    const L = this.c.nLayers;
    // residIn[l]: the clean residual entering block l [B, T, D]; residIn[L]: the one entering the unembedding
    const residIn: OrtTensor[] = [this.runStage(this.stages[0], feeds, none)];
    const blockFeeds = (l: number, x: OrtTensor) => this.blockFeeds(l, T, x);
    for (let l = 0; l < L; l++) residIn.push(this.runStage(this.stages[l + 1], blockFeeds(l, residIn[l]), none));
    const { nHeads: H, dHead: dh, dVocab: V, dModel: D } = this.c;
    const unembed = this.stages[L + 1];
    /** The final residual of each head's ablation of `layer`, heads stacked along the batch: [n·B, T, D]. */
    const ablatedResid = (layer: number, heads: AblatedHead[]): OrtTensor => {
      const n = heads.length;
      // With one sequence the clean residual goes in once, [1, T, D]: the block's norm, projections and
      // attention run on that one row and broadcast against the n rows of z_keep / z_fill where z is edited, so
      // only the output projection and the MLP run per head. With B sequences it is tiled to [n·B, T, D].
      const resid = B === 1 ? residIn[layer] : f32(tile(residIn[layer].data as Float32Array, n), [n * B, T, D]);
      const keep = new Float32Array(n * B * H).fill(1); // [n·B, 1, H, 1]
      const fill = new Float32Array(n * B * H * dh); // [n·B, 1, H, dh]
      heads.forEach(({ head, fill: f }, i) => {
        for (let b = 0; b < B; b++) {
          const row = i * B + b;
          keep[row * H + head] = 0;
          if (f) fill.set(f, (row * H + head) * dh);
        }
      });
      const f = { ...blockFeeds(layer, resid), z_keep: f32(keep, [n * B, 1, H, 1]), z_fill: f32(fill, [n * B, 1, H, dh]) };
      let x = this.runStage(this.stages[layer + 1], f, none);
      for (let l = layer + 1; l < L; l++) x = this.runStage(this.stages[l + 1], blockFeeds(l, x), none);
      return x;
    };
    /**
     * Next-token losses of `groups` stacked rows [groups·B, T, D] → per group [B][T − 1]. Only the first T − 1
     * positions predict a token, so only they are unembedded, a few groups per run.
     */
    const losses = (x: OrtTensor, groups: number): number[][][] => {
      if (T < 2) throw new Error(`next-token losses need at least 2 tokens per row, got ${T}`);
      const P = T - 1;
      const all = x.data as Float32Array; // [groups·B, T, D]
      const { session } = unembed.compiled([], false).parts[0];
      const out: number[][][] = [];
      for (const chunk of groupsOf(Array.from({ length: groups }, (_, i) => i), B * P, UNEMBED_ROWS_PER_RUN)) {
        const R = chunk.length * B;
        const first = chunk[0] * B;
        const resid = new Float32Array(R * P * D); // [R, T − 1, D]
        for (let r = 0; r < R; r++) resid.set(all.subarray((first + r) * T * D, ((first + r) * T + P) * D), r * P * D);
        const targets = new BigInt64Array(R * P); // [R, T − 1, 1]
        for (let r = 0; r < R; r++) rows[r % B].slice(1).forEach((id, t) => (targets[r * P + t] = BigInt(id)));
        const feeds = { resid_in: f32(resid, [R, P, D]), targets: i64(targets, [R, P, 1]), ...unembed.weightFeeds };
        const loss = session.run(feeds, [LOSS_OUT])[LOSS_OUT].data as Float32Array; // [R, T − 1]
        for (let i = 0; i < chunk.length; i++) out.push(Array.from({ length: B }, (_, b) => Array.from(loss.subarray((i * B + b) * P, (i * B + b + 1) * P))));
      }
      return out;
    };
    return {
      runLayer: (layer, heads, each) => {
        let done = 0;
        for (const group of groupsOf(heads, B * T, BLOCK_ROWS_PER_RUN)) {
          const x = ablatedResid(layer, group).data as Float32Array; // [n·B, T, D]
          // The logits leave onnxruntime a few heads at a time: [n·B, T, V] at once would be ~150 MB per run.
          for (const chunk of groupsOf(Array.from({ length: group.length }, (_, i) => i), B * T, UNEMBED_ROWS_PER_RUN)) {
            const R = chunk.length * B;
            const resid = f32(x.subarray(chunk[0] * B * T * D, (chunk[0] * B + R) * T * D), [R, T, D]);
            const logits = this.runStage(unembed, { resid_in: resid, targets: noTargets(R) }, none).data as Float32Array; // [R, T, V]
            const per = B * T * V;
            for (let i = 0; i < chunk.length; i++) {
              const t = tf.tensor3d(logits.subarray(i * per, (i + 1) * per), [B, T, V]);
              try {
                each(done + chunk[i], t);
              } finally {
                t.dispose();
              }
            }
          }
          done += group.length;
        }
      },
      lossLayer: (layer, heads) => groupsOf(heads, B * T, BLOCK_ROWS_PER_RUN).flatMap((g) => losses(ablatedResid(layer, g), g.length)),
      cleanLoss: () => losses(residIn[L], 1)[0],
    };
  }

  /** One stage: its segments in order, hooks applied at each cut, cached points recorded. */
  private runStage(stage: Stage, feeds: Record<string, OrtTensor>, req: RunRequest): OrtTensor {
    const cuts = stage.points.filter((p) => (req.hooksAt(p)?.length ?? 0) > 0);
    const cached = req.cache ? stage.points.filter((p) => req.caches(p)) : [];
    const wantCache = new Set(cached.filter((p) => !cuts.includes(p)));
    const { parts } = stage.compiled(cuts, cached.length > 0);
    const values: Record<string, OrtTensor> = { ...feeds, ...stage.weightFeeds };
    for (const { seg, session, fetchAlways } of parts) {
      const f: Record<string, OrtTensor> = {};
      for (const v of seg.inputs) f[v] = values[v];
      const fetch = seg.outputs.filter((v) => fetchAlways.has(v) || wantCache.has(v));
      const out = session.run(f, fetch);
      Object.assign(values, out);
      for (const v of fetch) if (wantCache.has(v)) req.record(v, out[v].data as Float32Array, [...out[v].dims]);
      if (seg.cut) values[seg.cut] = this.hook(seg.cut, stage.layer, out[seg.cut], req);
    }
    return values[STAGE_OUT];
  }

  /** Hands an activation to the JS hooks as a tf.Tensor and returns what the pass continues with. */
  private hook(name: string, layer: number | null, v: OrtTensor, req: RunRequest): OrtTensor {
    const data = tf.tidy(() => {
      const t = tf.tensor(v.data as Float32Array, [...v.dims]);
      return req.point(name, layer, t).dataSync() as Float32Array;
    });
    return f32(data, v.dims);
  }

  /** A block's inputs besides its weights: the residual, its window's mask, its rotary tables, no z ablation. */
  private blockFeeds(l: number, T: number, x: OrtTensor): Record<string, OrtTensor> {
    const inputs = this.blockInputs(T);
    const m = inputs.masks.get(String(this.c.windows[l]))!;
    return { resid_in: x, mask_keep: m.keep, mask_fill: m.fill, ...(inputs.rotary.length ? inputs.rotary[l] : {}), ...inputs.noAblation };
  }

  /** Masks per window and rotary tables for T positions, as the tf path builds them (reused while T repeats). */
  private blockInputs(T: number) {
    if (this.inputsFor?.T === T) return this.inputsFor;
    const masks = new Map<string, { keep: OrtTensor; fill: OrtTensor }>();
    for (const w of new Set(this.c.windows)) {
      const m = causalMask(T, w);
      masks.set(String(w), { keep: f32(m.keep.dataSync() as Float32Array, [T, T]), fill: f32(m.fill.dataSync() as Float32Array, [T, T]) });
      tf.dispose([m.keep, m.fill]);
    }
    // Rotary tables per layer (a local base on windowed layers, scaled frequencies), shared when equal.
    const rotary: { cos: OrtTensor; sin: OrtTensor }[] = [];
    if (this.c.positional === "rotary") {
      const R = this.c.rotaryDim;
      const seen = new Map<string, { cos: OrtTensor; sin: OrtTensor }>();
      for (let l = 0; l < this.c.nLayers; l++) {
        const r = rotaryTablesFor(this.c, l, T);
        const [cos, sin] = [r.cos.dataSync() as Float32Array, r.sin.dataSync() as Float32Array];
        tf.dispose([r.cos, r.sin]);
        const key = `${cos.join(",")}|${sin.join(",")}`;
        if (!seen.has(key)) seen.set(key, { cos: f32(cos, [1, T, 1, R]), sin: f32(sin, [1, T, 1, R]) });
        rotary.push(seen.get(key)!);
      }
    }
    // z·1 + 0 is z exactly: the block graph's ablation inputs for a forward, broadcast over the batch
    const { nHeads: H, dHead: dh } = this.c;
    const noAblation = { z_keep: f32(new Float32Array(H).fill(1), [1, 1, H, 1]), z_fill: f32(new Float32Array(H * dh), [1, 1, H, dh]) };
    this.inputsFor = { T, masks, rotary, noAblation };
    return this.inputsFor;
  }

  dispose(): void {
    this.stages.forEach((s) => s.dispose());
  }
}
