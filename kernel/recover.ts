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
import { kernelLog } from "./log";

interface EngineState {
  scopeStack: unknown[];
  kernelDepth: number;
  gradientDepth: number;
  activeTape: unknown;
}
interface Engine {
  state: EngineState;
  endScope(result?: unknown): void;
}

export interface TfLike {
  engine(): unknown;
}

/** The engine's scope depth, recorded before a cell so a repair knows where to stop. */
export function scopeDepth(tf: TfLike | undefined): number {
  const e = tf?.engine() as Engine | undefined;
  return e?.state?.scopeStack?.length ?? 0;
}

export function repairEngine(tf: TfLike | undefined, baselineDepth: number): void {
  const e = tf?.engine() as Engine | undefined;
  if (!e?.state || !Array.isArray(e.state.scopeStack)) return;
  let closed = 0;
  while (e.state.scopeStack.length > baselineDepth) {
    e.endScope();
    closed++;
  }
  e.state.kernelDepth = 0;
  if (e.state.gradientDepth !== 0) {
    e.state.gradientDepth = 0;
    e.state.activeTape = null;
  }
  if (closed) kernelLog(`interrupt: closed ${closed} tf.js scope(s) left open by terminated code`);
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
