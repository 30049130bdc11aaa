/**
 * Putting the process back in order after an interrupt.
 *
 * A soft interrupt ran the cell's `finally` blocks, so the tools already restored what they changed; a
 * hard one (SIGINT terminated synchronous code) did not. Either way the kernel restores every ablation and
 * head merge of the preloaded and current `attention` tools and of the tools `exp` holds (`restoreAll()`,
 * which also swaps merged weights back), then removes every hook from the preloaded and current `model`
 * (`resetHooks()`).
 * After a hard interrupt it also closes the tf.js scopes the terminated code left open: an open `tidy`
 * scope would otherwise adopt every tensor created later, and the engine would believe a kernel or a
 * gradient tape is still running.
 */
import { patchStatus } from "../src/patches";
import { closeOpenScopes, scopeDepth as engineScopeDepth } from "../src/patches/tf-engine-state";
import { kernelLog } from "./log";

export interface TfLike {
  engine(): unknown;
  version_core?: string;
}

/** The engine's scope depth, recorded before a cell so a repair knows where to stop. */
export function scopeDepth(tf: TfLike | undefined): number {
  return engineScopeDepth(tf);
}

export function repairEngine(tf: TfLike | undefined, baselineDepth: number): void {
  const closed = closeOpenScopes(tf, baselineDepth);
  if (closed === null) kernelLog(`interrupt: tf.js scopes not repaired (${patchStatus("tf-engine-state")?.reason})`);
  else if (closed) kernelLog(`interrupt: closed ${closed} tf.js scope(s) left open by terminated code`);
}

/** Calls `method` once on each distinct object that has it, logging (not throwing) failures. */
function callEach(objects: unknown[], method: string): void {
  const seen = new Set<unknown>();
  for (const o of objects) {
    if (!o || typeof o !== "object" || seen.has(o)) continue;
    seen.add(o);
    const fn = (o as Record<string, unknown>)[method];
    if (typeof fn !== "function") continue;
    try {
      fn.call(o);
    } catch (e) {
      kernelLog(`interrupt: ${method}() failed:`, e);
    }
  }
}

/** The objects themselves plus the tools a bench holds (`exp.tools.attention` is its own instance). */
function withBenchTools(objects: unknown[]): unknown[] {
  const out: unknown[] = [];
  for (const o of objects) {
    out.push(o);
    const tools = (o as { tools?: unknown } | null)?.tools;
    if (tools && typeof tools === "object") out.push(...Object.values(tools));
  }
  return out;
}

/** Tools first (their restore may remove hooks they own), then every hook left on the models. */
export function restoreModels(tools: unknown[], models: unknown[]): void {
  callEach(withBenchTools(tools), "restoreAll");
  callEach(models, "restoreAll");
}
