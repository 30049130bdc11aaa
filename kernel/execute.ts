/**
 * Runs one cell through tslab's executor and reports what happened, with the interrupt bookkeeping of
 * coroutine.ts around it. The executor type-checks and transpiles the cell (tslab's converter, wrapped so
 * async code becomes interruptible), runs it with tslab's `breakOnSigint`, and awaits top-level promises.
 */
import type { Executor } from "tslab/dist/executor";
import type { KernelConverters } from "./converters";
import { CoroutineRuntime } from "./coroutine";
import { InterruptState } from "./interrupt-state";
import { ErrorContent, OutcomeRecorder } from "./outcome";

export interface CellOutcome {
  hasValue: boolean;
  value?: unknown;
  error?: ErrorContent;
  /** The cell ended because of an interrupt (soft or hard). */
  interrupted: boolean;
  /** Some of its code was terminated by SIGINT, so `finally` blocks may not have run. */
  hard: boolean;
}

/** How long an interrupted cell's own cleanup (awaits in `finally`) may take before we stop waiting. */
const CLEANUP_WAIT_MS = 1000;

export class CellRunner {
  private seq = 0;
  private readonly fallbacks = new Map<number, NodeJS.Timeout>();

  constructor(
    private readonly executor: Executor,
    private readonly recorder: OutcomeRecorder,
    private readonly runtime: CoroutineRuntime,
    private readonly state: InterruptState,
    private readonly converters: KernelConverters,
  ) {}

  async run(code: string): Promise<CellOutcome> {
    const exec = ++this.seq;
    this.recorder.reset();
    this.runtime.currentExec = exec;
    this.state.running = exec;
    try {
      // execute() converts and runs the cell's synchronous part before its first await; tslab runs that
      // part with breakOnSigint, so coroutine steps started there are already under the watchdog.
      await this.runtime.underWatchdog(() => this.executor.execute(code));
    } catch (e) {
      this.recorder.console.error(e);
    } finally {
      this.state.running = 0;
      this.runtime.currentExec = 0;
      const t = this.fallbacks.get(exec);
      if (t) clearTimeout(t);
      this.fallbacks.delete(exec);
    }
    const r = this.recorder.result();
    if (r.error && !r.compileError) this.converters.keepLastDeclarations();
    const wasInterrupted = this.state.isInterrupted(exec);
    const hard = this.runtime.takeHard(exec) || r.sigint;
    // A cell that caught the InterruptError and finished normally succeeds (as Python's KeyboardInterrupt
    // would), but still counts as interrupted so the kernel resets hooks afterwards.
    return { hasValue: r.hasValue, value: r.value, error: r.error, interrupted: r.interrupted || wasInterrupted, hard };
  }

  /**
   * Delivers an interrupt from the event loop: the control worker's message (the worker already recorded
   * the request) or an outside SIGINT that arrived while no watchdog was armed (`request`: record it
   * here). Suspended coroutines get the InterruptError at once; a cell whose top level is not a coroutine
   * (or whose cleanup hangs) is released through tslab's own interrupt.
   */
  interruptRunning(request: boolean): void {
    const exec = request ? this.state.requestInterrupt() : this.state.running;
    if (exec === 0 || !this.state.isInterrupted(exec)) return;
    const thrown = this.runtime.interruptSuspended(exec);
    if (thrown === 0 && this.runtime.liveCount(exec) === 0) {
      this.executor.interrupt();
      return;
    }
    if (!this.fallbacks.has(exec)) {
      this.fallbacks.set(
        exec,
        setTimeout(() => {
          this.fallbacks.delete(exec);
          if (this.state.running === exec) this.executor.interrupt();
        }, CLEANUP_WAIT_MS),
      );
    }
  }
}
