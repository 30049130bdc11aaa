/**
 * The bench's per-layer profiler: a timing hook on every hook point while a function runs the model, turned
 * into time per layer and per component and the size of every activation.
 */
import { performance } from "node:perf_hooks";
import * as tf from "@tensorflow/tfjs";
import type { Displayable, MimeBundle } from "../display";
import { fail, show } from "../errors";
import type { HookedAutoModel } from "../model/hooked-model";
import { escapeHtml as esc } from "../display/tokens";
import { fmt, textTable } from "./common";


export type ProfileComponent = "embed" | "norm" | "attention" | "mlp" | "residual" | "unembed";
const COMPONENTS: readonly ProfileComponent[] = ["embed", "norm", "attention", "mlp", "residual", "unembed"];

/** The component whose computation ends at a hook point. */
function componentOf(name: string): ProfileComponent {
  if (name === "hook_embed" || name === "hook_pos_embed") return "embed";
  if (name.endsWith("hook_normalized")) return "norm";
  if (name.includes(".attn.") || name.endsWith("hook_attn_out")) return "attention";
  if (name.includes(".mlp.") || name.endsWith("hook_mlp_out")) return "mlp";
  return "residual"; // hook_resid_pre / mid / post: the residual adds and the block's setup
}

/** Backends whose ops have finished when they return. */
const SYNC_BACKENDS = new Set(["cpu", "wasm", "tensorflow"]);

/** Timestamps at every hook point while attached; turns them into a ModelProfile. */
export class TimingRecorder {
  private readonly events: { name: string; layer: number | null; t: number }[] = [];
  private readonly sizes = new Map<string, { shape: number[]; bytes: number }>();
  private readonly hook: { remove(): void };
  private readonly t0: number;

  constructor(private readonly model: HookedAutoModel) {
    const force = !SYNC_BACKENDS.has(tf.getBackend());
    this.hook = model.addHook(() => true, (x, { name, layer }) => {
      if (force) tf.tidy(() => tf.slice(x, x.shape.map(() => 0), x.shape.map(() => 1)).dataSync());
      this.events.push({ name, layer, t: performance.now() });
      this.sizes.set(name, { shape: [...x.shape], bytes: x.size * bytesPer(x.dtype) });
    });
    this.t0 = performance.now();
  }

  stop(): void {
    this.hook.remove();
  }

  finish<R>(result: R): ModelProfile<R> {
    const t1 = performance.now();
    this.stop();
    if (!this.events.length) fail("profileModel: the function ran no forward pass of this bench's model, so there is nothing to profile");
    const L = this.model.cfg.nLayers;
    const byLayer = Array.from({ length: L }, (_, layer) => ({ layer, ms: 0, components: { norm: 0, attention: 0, mlp: 0, residual: 0 } }));
    const byComponent = Object.fromEntries(COMPONENTS.map((c) => [c, 0])) as Record<ProfileComponent, number>;
    let prev = this.t0;
    let prevName = "";
    let passes = 0;
    for (const e of this.events) {
      const dt = e.t - prev;
      // After the final norm comes the unembedding; the next pass's embedding is charged to it too (no hook point between).
      const comp: ProfileComponent = e.name === "hook_embed" && prevName === "ln_final.hook_normalized" ? "unembed" : componentOf(e.name);
      if (e.name === "hook_embed") passes++;
      byComponent[comp] += dt;
      if (e.layer !== null && comp !== "embed" && comp !== "unembed") {
        byLayer[e.layer].ms += dt;
        byLayer[e.layer].components[comp] += dt;
      }
      prev = e.t;
      prevName = e.name;
    }
    byComponent.unembed += t1 - prev; // from the last hook point (the final norm) to fn's end
    const activations = [...this.sizes.entries()].map(([name, s]) => ({ name, ...s }));
    return new ModelProfile(result, t1 - this.t0, passes, byLayer, byComponent, activations, tf.getBackend());
  }
}

function bytesPer(dtype: string): number {
  return dtype === "complex64" ? 8 : dtype === "bool" ? 1 : 4;
}

/** Where a run's time went, per layer and component, and the size of every activation (of the last pass). */
export class ModelProfile<R = unknown> implements Displayable {
  constructor(
    /** What the profiled function returned. */
    readonly result: R,
    /** Wall time of the profiled function (ms); the figures below add up to it. */
    readonly totalMs: number,
    /** Forward passes seen. */
    readonly passes: number,
    readonly byLayer: { layer: number; ms: number; components: { norm: number; attention: number; mlp: number; residual: number } }[],
    readonly byComponent: Record<ProfileComponent, number>,
    readonly activations: { name: string; shape: number[]; bytes: number }[],
    readonly backend: string,
  ) {}

  /** Sum of the per-component figures (equals totalMs up to rounding). */
  get accountedMs(): number {
    return Object.values(this.byComponent).reduce((a, b) => a + b, 0);
  }

  get activationBytes(): number {
    return this.activations.reduce((a, b) => a + b.bytes, 0);
  }

  toJSON(): object {
    const { totalMs, passes, byLayer, byComponent, activations, backend } = this;
    return { totalMs, passes, byLayer, byComponent, activations, backend };
  }

  toString(): string {
    const pct = (ms: number) => `${((100 * ms) / (this.totalMs || 1)).toFixed(1)}%`;
    const lines = [`ModelProfile(${fmt(this.totalMs, 1)} ms, ${this.passes} forward pass${this.passes === 1 ? "" : "es"}, backend ${this.backend})`];
    lines.push(textTable([["component", "ms", "share"], ...COMPONENTS.map((c) => [c, fmt(this.byComponent[c], 2), pct(this.byComponent[c])])]));
    lines.push("per layer:");
    lines.push(textTable([["layer", "ms", "norm", "attention", "mlp", "residual"], ...this.byLayer.map((l) => [String(l.layer), fmt(l.ms, 2), fmt(l.components.norm, 2), fmt(l.components.attention, 2), fmt(l.components.mlp, 2), fmt(l.components.residual, 2)])]));
    lines.push(`activations: ${this.activations.length} hook points, ${(this.activationBytes / 1e6).toFixed(2)} MB per pass (largest: ${[...this.activations].sort((a, b) => b.bytes - a.bytes).slice(0, 3).map((a) => `${a.name} ${show(a.shape)}`).join(", ")})`);
    return lines.join("\n");
  }

  toMimeBundle(): MimeBundle {
    const bar = (ms: number) => `<div style="background:#4c78a8;height:10px;width:${Math.round((200 * ms) / (this.totalMs || 1))}px"></div>`;
    const row = (cells: string[]) => `<tr>${cells.map((c) => `<td style="padding:2px 8px;text-align:left">${c}</td>`).join("")}</tr>`;
    const html = [
      `<div><b>Model profile</b>: ${fmt(this.totalMs, 1)} ms, ${this.passes} forward pass(es), backend ${esc(this.backend)}`,
      "<table>",
      row(["<b>component</b>", "<b>ms</b>", ""]),
      ...COMPONENTS.map((c) => row([c, fmt(this.byComponent[c], 2), bar(this.byComponent[c])])),
      row(["<b>layer</b>", "<b>ms</b>", ""]),
      ...this.byLayer.map((l) => row([`layer ${l.layer}`, fmt(l.ms, 2), bar(l.ms)])),
      "</table></div>",
    ].join("");
    return { "text/plain": this.toString(), "text/html": html };
  }
}

