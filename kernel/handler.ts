/**
 * The language side of the kernel: tslab's JupyterHandlerImpl (completion, inspection, tslab's
 * is-complete heuristics, stream redirection) extended with what stock tslab gets wrong or lacks:
 *  - kernel_info_reply with `status` and the real TypeScript version (tslab hard-codes "3.7.2");
 *  - is_complete that can answer `invalid` (tslab only knows complete/incomplete);
 *  - execution with `execute_input`, the last value as an `execute_result` bundle instead of text on
 *    stdout, errors as an `error` message with ename/evalue/traceback, history and user_expressions.
 * Transport concerns (sockets, status, queueing, aborts) live in server.ts.
 */
import type * as TS from "@tslab/typescript-for-tslab";
import * as tslabJupyter from "tslab/dist/jupyter";
import { setTslabDisplaySink } from "../src/patches/tslab-display";
import type { Executor } from "tslab/dist/executor";
import { JupyterHandlerImpl } from "tslab/dist/jupyter";
import { CellRunner } from "./execute";
import { History, HistoryRequest } from "./history";
import { InterruptState } from "./interrupt-state";
import { DisplayContent, setDisplaySink } from "./display";
import { codePointsToUtf16, enclosingCallee } from "./inspect";
import { kernelLog, kernelWarn } from "./log";
import { MimeBundle, toMimeBundle } from "../src/display/mime";
import { ErrorContent, errorContent } from "./outcome";
import { packageVersion } from "./paths";
import { ensureProcessHandlers } from "./process-handlers";
import { repairEngine, restoreModels, scopeDepth, TfLike } from "./recover";

export interface ExecuteRequest {
  code: string;
  silent?: boolean;
  store_history?: boolean;
  user_expressions?: Record<string, string>;
  allow_stdin?: boolean;
  stop_on_error?: boolean;
}

/** Where a cell's output goes: IOPub messages parented to its execute_request. */
export interface CellIO {
  publish(msgType: string, content: object): void;
}

export type ExecuteReplyContent =
  | { status: "ok"; execution_count: number; payload: object[]; user_expressions: Record<string, unknown> }
  | ({ status: "error"; execution_count: number } & ErrorContent);

export interface Preloaded {
  /** Objects whose hooks are reset after an interrupt (the preloaded model). */
  models: unknown[];
  /** Tools whose ablations and merges are restored after an interrupt (`attention`, `exp` and its tools). */
  tools: unknown[];
  tf?: TfLike;
  /** A message for the first cell when the prelude could not provide what was asked for. */
  warning?: string;
}

export type InspectRequest = Parameters<JupyterHandlerImpl["handleInspect"]>[0];
export type InspectReply = ReturnType<JupyterHandlerImpl["handleInspect"]>;

/**
 * The editor mode, as a MIME type every frontend resolves to TypeScript: JupyterLab 4 looks `name` up among its
 * language names, then `mime` among their MIME types ("application/typescript" is its TypeScript); JupyterLab 3
 * and classic Notebook look `name` up in CodeMirror 5's mode list, then by MIME, and CodeMirror 5 itself maps
 * the MIME to its JavaScript mode with `typescript: true`. (tslab's `{ name: "javascript", mode: "typescript" }`
 * gives JavaScript in JupyterLab 4; `name: "typescript"` gives plain text in classic Notebook.)
 */
export const CODEMIRROR_MODE = { name: "application/typescript", mime: "application/typescript" };

export class ArrakisHandler extends JupyterHandlerImpl {
  private count = 0;
  private readonly history = new History();
  private preloaded: Preloaded = { models: [], tools: [] };
  private ready: Promise<void> = Promise.resolve();
  private warned = false;
  /** Errors thrown by background work (timers, callbacks, rejections) while no cell ran, for the next cell. */
  private backgroundErrors: string[] = [];

  constructor(
    private readonly exec: Executor,
    private readonly runner: CellRunner,
    private readonly state: InterruptState,
    private readonly ts: typeof TS,
  ) {
    super(exec, false);
  }

  /** Cells wait for `prelude` (model loading) before they run; kernel_info and completion do not. */
  setPrelude(prelude: Promise<Preloaded>): void {
    this.ready = prelude.then(
      (p) => void (this.preloaded = p),
      (e) => kernelWarn("prelude failed:", e),
    );
  }

  override handleKernel() {
    const base = super.handleKernel();
    return {
      ...base,
      status: "ok",
      protocol_version: "5.3",
      implementation: "arrakis-ts",
      implementation_version: packageVersion(),
      language_info: {
        ...base.language_info,
        version: this.ts.version,
        pygments_lexer: "typescript",
        codemirror_mode: CODEMIRROR_MODE,
      },
      banner: `Arrakis (TypeScript) ${packageVersion()} on tslab, TypeScript ${this.ts.version}, Node.js ${process.version}\nPreloaded: model, attention, exp, tf, display`,
      debugger: false,
    };
  }

  /**
   * tslab decides complete vs incomplete (an unterminated construct at the very end, or code ending with
   * two blank lines, which consoles use to force submission). Code that is "complete" but does not parse
   * is `invalid` (messaging spec, "Code completeness").
   */
  override handleIsComplete(req: { code: string }): { status: "complete" | "incomplete" | "invalid" | "unknown"; indent?: string } {
    const base = super.handleIsComplete(req);
    if (base.status === "incomplete") return base;
    const sf = this.ts.createSourceFile("cell.ts", `export {};\n${req.code}`, this.ts.ScriptTarget.Latest, false, this.ts.ScriptKind.TS);
    const diags = (sf as unknown as { parseDiagnostics?: unknown[] }).parseDiagnostics ?? [];
    return diags.length > 0 ? { status: "invalid" as const } : { status: "complete" as const };
  }

  /** Completion and inspection wait for the prelude: before it, `model` and friends are not declared yet. */
  whenReady(): Promise<void> {
    return this.ready;
  }

  /** Inside a call's parentheses the called function is inspected (see inspect.ts), else the cursor. */
  override handleInspect(req: InspectRequest): InspectReply {
    const cursor = codePointsToUtf16(req.code, req.cursor_pos);
    const callee = enclosingCallee(this.ts, req.code, cursor);
    if (callee !== undefined) {
      // tslab's inspect takes a UTF-16 offset.
      const reply = super.handleInspect({ ...req, cursor_pos: callee });
      if (reply.found) return reply;
    }
    return super.handleInspect({ ...req, cursor_pos: cursor });
  }

  historyReply(req: HistoryRequest) {
    return { status: "ok", history: this.history.query(req) };
  }

  /** The control worker asked the running cell to stop (see execute.ts for soft vs hard). */
  interrupt(): void {
    this.runner.interruptRunning(false);
  }

  private signalsSeen = 0;

  /**
   * SIGINT that reached the event loop. The control worker's escalation signals are counted in shared
   * memory and need nothing more here; any other SIGINT (interrupt_mode "signal", Ctrl-C in a terminal)
   * is an interrupt request of its own.
   */
  onSigint(): void {
    if (this.state.signals > this.signalsSeen) {
      this.signalsSeen++;
      return;
    }
    this.runner.interruptRunning(true);
  }

  async execute(req: ExecuteRequest, io: CellIO): Promise<ExecuteReplyContent> {
    const silent = !!req.silent;
    // Spec: the counter increases with each request that stores history; silent implies no history.
    const store = !silent && req.store_history !== false;
    const count = store ? ++this.count : this.count;
    if (!silent) io.publish("execute_input", { code: req.code, execution_count: count });

    await this.ready; // before routing output: the prelude still owns stdout until it is done
    const restoreStreams = this.routeOutput(io, silent);
    if (!this.warned && this.preloaded.warning && !silent) {
      this.warned = true;
      io.publish("stream", { name: "stderr", text: this.preloaded.warning + "\n" });
    }
    if (this.backgroundErrors.length > 0 && !silent) {
      io.publish("stream", { name: "stderr", text: this.backgroundErrors.join("") });
      this.backgroundErrors = [];
    }

    const depth = scopeDepth(this.preloaded.tf);
    const out = await this.runner.run(req.code);
    restoreStreams();
    ensureProcessHandlers();
    let error = out.error;
    if (out.interrupted) {
      const note = this.recover(out.hard, depth);
      if (note && error) error = { ...error, evalue: `${error.evalue}; ${note}`, traceback: [...error.traceback, note] };
    }

    let reply: ExecuteReplyContent;
    let outputText: string | null = null;
    if (!error && out.hasValue && !silent) {
      try {
        const data = toMimeBundle(out.value);
        outputText = String(data["text/plain"]);
        io.publish("execute_result", { execution_count: count, data, metadata: {} });
      } catch (e) {
        error = errorContent(e); // a Displayable whose toMimeBundle() throws
      }
    }
    if (error) {
      if (!silent) io.publish("error", error);
      reply = { status: "error", execution_count: count, ...error };
    } else {
      reply = { status: "ok", execution_count: count, payload: [], user_expressions: this.userExpressions(req.user_expressions) };
    }
    if (store) this.history.record(count, req.code, outputText);
    return reply;
  }

  /**
   * Points stdout/stderr and display() at this cell. As in tslab and ipykernel, output written later by
   * background work keeps going to the last cell that ran; a silent request must not take it over.
   */
  private routeOutput(io: CellIO, silent: boolean): () => void {
    const stream = (name: string, text: string) => io.publish("stream", { name, text });
    if (!silent) {
      process.stdout.write = this.createWriteToIopub("stdout", stream) as typeof process.stdout.write;
      process.stderr.write = this.createWriteToIopub("stderr", stream) as typeof process.stderr.write;
      const sink = {
        display: (c: DisplayContent, update: boolean) => io.publish(update ? "update_display_data" : "display_data", c),
        clear: (wait: boolean) => io.publish("clear_output", { wait }),
      };
      setDisplaySink(sink);
      // tslab's own `display` API (import { display } from "tslab") reads this module variable.
      setTslabDisplaySink(tslabJupyter, sink.display);
      return () => {};
    }
    const saved = [process.stdout.write, process.stderr.write];
    const drop = (() => true) as unknown as typeof process.stdout.write;
    process.stdout.write = drop;
    process.stderr.write = drop;
    return () => {
      [process.stdout.write, process.stderr.write] = saved;
    };
  }

  /**
   * An error nobody caught, from a timer, a callback or a rejected promise. While a cell runs it goes to
   * that cell's output; otherwise the cell that scheduled it has finished and frontends no longer show
   * output for it, so it waits for the next cell (as a stderr note at its top).
   */
  backgroundError(kind: string, e: unknown): void {
    kernelLog(`${kind}:`, e);
    const text = `${kind}: ${errorContent(e).traceback.join("\n")}\n`;
    if (this.state.running !== 0) process.stderr.write(text);
    else this.backgroundErrors.push(text);
  }

  /** Restores models and tools after an interrupt; returns a warning for the user when one is due. */
  private recover(hard: boolean, depth: number): string | undefined {
    // Also the cell's current `model` / `attention`, in case the user rebound them.
    const locals = this.exec.locals as Record<string, unknown>;
    const inKernel = this.state.takeKernelTermination();
    if (hard) repairEngine(this.preloaded.tf, depth); // before restoring: restore() may run tf ops
    restoreModels([...this.preloaded.tools, locals.attention, locals.exp], [...this.preloaded.models, locals.model]);
    kernelLog(`interrupt: cell stopped (${hard ? "hard: SIGINT terminated synchronous code" : "soft"}); ablations restored, hooks reset`);
    if (hard && inKernel) {
      return "it was terminated inside a tf.js kernel, so the backend may be corrupted: restart the kernel if tf.js calls misbehave";
    }
    return undefined;
  }

  /** user_expressions are evaluated as JavaScript against the cell variables (no type-check). */
  private userExpressions(exprs: Record<string, string> | undefined): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const [name, expr] of Object.entries(exprs ?? {})) {
      try {
        const value = new Function("__locals", `with (__locals) { return (${expr}\n); }`)(this.exec.locals);
        const data: MimeBundle = toMimeBundle(value);
        out[name] = { status: "ok", data, metadata: {} };
      } catch (e) {
        out[name] = { status: "error", ...errorContent(e) };
      }
    }
    return out;
  }
}
