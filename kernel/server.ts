/**
 * The kernel's transport: shell, IOPub and stdin on the main thread, control and heartbeat on a worker
 * (control-worker.ts). tslab's ZmqServer is not reused here: it binds every channel on the thread that
 * runs cells, and the protocol defects this kernel fixes sit in its dispatch (comm_info answered as a
 * complete_reply, no history_request, no control-channel interrupt, executions aborted for 200 ms after
 * any error, status published around requests that have not started). The language work is tslab's
 * handler, extended in handler.ts.
 *
 * Execution order follows ipykernel: execute requests run one at a time in arrival order, each wrapped in
 * busy/idle status messages published when it starts; other shell requests are answered at once.
 * After an error (with `stop_on_error`, the default) the kernel aborts the execute requests that had
 * arrived before it sent the error reply — the client sent them before it could know of the error — and
 * runs those that arrive afterwards (messaging spec, execute_request `stop_on_error`; ipykernel aborts
 * its queue the same way). Arrival order decides, never `header.date`: a client's clock may be behind
 * the kernel's, or its dates may carry no timezone.
 */
import fs from "fs";
import path from "path";
import { Worker } from "worker_threads";
import type * as Zmq from "zeromq";
import type { ControlWorkerData, ToMain } from "./control-worker";
import { ArrakisHandler, ExecuteRequest } from "./handler";
import { HistoryRequest } from "./history";
import { InterruptState } from "./interrupt-state";
import { kernelLog, kernelWarn } from "./log";
import { exitKernel } from "./process-handlers";
import { configurePublisher, IopubChannel } from "./iopub";
import { ConnectionInfo, Message, SendQueue, WireCodec } from "./wire";

/** How long a failed cell's reply waits for requests already in transit (only after an error). */
const ARRIVAL_SETTLE_MS = 50;

export interface ServerOptions {
  connectionFile: string;
  zeromqPath: string;
  state: InterruptState;
  /** How long a soft interrupt may take before the control worker sends SIGINT. */
  interruptGraceMs: number;
}

export class ArrakisServer {
  private readonly conn: ConnectionInfo;
  private readonly codec: WireCodec;
  private readonly kernelId: string;
  private readonly zmq: typeof Zmq;
  private shell!: Zmq.Router;
  private iopub!: Zmq.Publisher;
  private stdin!: Zmq.Router;
  private shellOut!: SendQueue;
  private iopubOut!: IopubChannel;
  private worker: Worker | undefined;
  private readonly queue: Message[] = [];
  private draining = false;
  /** Execute requests that had arrived when a cell failed: they are answered "aborted", not run. */
  private readonly toAbort = new WeakSet<Message>();
  private closing = false;

  constructor(private readonly handler: ArrakisHandler, private readonly opts: ServerOptions) {
    this.conn = JSON.parse(fs.readFileSync(opts.connectionFile, "utf8"));
    this.codec = new WireCodec(this.conn.key, this.conn.signature_scheme);
    this.kernelId = path.basename(opts.connectionFile).replace(/^kernel-|\.json$/g, "");
    this.zmq = require(opts.zeromqPath);
  }

  async start(): Promise<void> {
    const addr = (port: number) => `${this.conn.transport}://${this.conn.ip}:${port}`;
    this.shell = new this.zmq.Router();
    this.iopub = new this.zmq.Publisher();
    configurePublisher(this.iopub);
    this.stdin = new this.zmq.Router();
    const onError = (e: unknown) => kernelWarn("send failed:", e);
    this.shellOut = new SendQueue(this.shell, onError);
    this.iopubOut = new IopubChannel(this.iopub, this.codec, this.kernelId);
    await Promise.all([this.shell.bind(addr(this.conn.shell_port)), this.iopub.bind(addr(this.conn.iopub_port)), this.stdin.bind(addr(this.conn.stdin_port))]);
    await this.startControlWorker();
    this.publish("status", { execution_state: "starting" });
    void this.serveShell();
  }

  private startControlWorker(): Promise<void> {
    const data: ControlWorkerData = {
      conn: this.conn,
      session: this.codec.session,
      zeromqPath: this.opts.zeromqPath,
      state: this.opts.state.buffer,
      kernelInfo: this.handler.handleKernel(),
      graceMs: this.opts.interruptGraceMs,
    };
    const worker = new Worker(path.join(__dirname, "control-worker.js"), { workerData: data });
    this.worker = worker;
    worker.on("error", (e) => kernelWarn("control worker error:", e));
    return new Promise((resolve, reject) => {
      worker.on("message", (m: ToMain) => {
        if (m.type === "ready") resolve();
        else this.onWorkerMessage(m);
      });
      worker.once("exit", (code) => {
        if (!this.closing) kernelWarn(`control worker exited (${code})`);
        reject(new Error("control worker exited before binding"));
      });
    });
  }

  private onWorkerMessage(m: ToMain): void {
    switch (m.type) {
      case "interrupt":
        this.handler.interrupt();
        break;
      case "shutdown":
        void this.shutdown();
        break;
      case "status": {
        const parent = { header: m.parent } as Message;
        this.publish("status", { execution_state: "busy" }, parent);
        this.publish("status", { execution_state: "idle" }, parent);
        break;
      }
      case "log":
        (m.warn ? kernelWarn : kernelLog)(m.text);
        break;
    }
  }

  private async serveShell(): Promise<void> {
    try {
      for await (const frames of this.shell) {
        let msg: Message;
        try {
          msg = this.codec.decode(frames);
        } catch (e) {
          // One line, not a stack: a misconfigured client may send many of these.
          kernelWarn(`shell: dropped a message (${(e as Error).message})`);
          continue;
        }
        this.onShell(msg);
      }
    } catch (e) {
      if (!this.closing) kernelWarn("shell loop ended:", e);
    }
  }

  /** Broadcasts on IOPub; `stream` content is coalesced with neighbouring writes (iopub.ts). */
  publish(msgType: string, content: object, parent?: Message): void {
    this.iopubOut.publish(msgType, content, parent);
  }

  private reply(req: Message, msgType: string, content: object): void {
    this.shellOut.send(this.codec.encode(this.codec.make(msgType, content, req)));
  }

  /** Answers a non-execute request at once, wrapped in busy/idle as every request is. */
  private answer(req: Message, msgType: string, content: () => object): void {
    this.publish("status", { execution_state: "busy" }, req);
    try {
      this.reply(req, msgType, content());
    } catch (e) {
      kernelWarn(`${req.header.msg_type} failed:`, e);
      this.reply(req, msgType, { status: "error", ename: "KernelError", evalue: String(e), traceback: [] });
    } finally {
      this.publish("status", { execution_state: "idle" }, req);
    }
  }

  private onShell(msg: Message): void {
    const h = this.handler;
    const c = msg.content;
    switch (msg.header.msg_type) {
      case "execute_request":
        this.queue.push(msg);
        void this.drain();
        return;
      case "kernel_info_request":
        return this.answer(msg, "kernel_info_reply", () => h.handleKernel());
      case "is_complete_request":
        return this.answer(msg, "is_complete_reply", () => h.handleIsComplete(c as { code: string }));
      // Both need the prelude's declarations (`model`, `attention`, ...): until they exist, these wait.
      case "inspect_request":
        void h.whenReady().then(() => this.answer(msg, "inspect_reply", () => h.handleInspect(c as Parameters<ArrakisHandler["handleInspect"]>[0])));
        return;
      case "complete_request":
        void h.whenReady().then(() => this.answer(msg, "complete_reply", () => h.handleComplete(c as Parameters<ArrakisHandler["handleComplete"]>[0])));
        return;
      case "history_request":
        return this.answer(msg, "history_reply", () => h.historyReply(c as HistoryRequest));
      case "comm_info_request":
        // No comm targets are registered (spec: "Comm info").
        return this.answer(msg, "comm_info_reply", () => ({ status: "ok", comms: {} }));
      case "comm_open":
        // Spec: an unknown target_name must be answered with comm_close at once.
        this.publish("comm_close", { comm_id: c.comm_id, data: {} }, msg);
        return;
      case "comm_msg":
      case "comm_close":
        return;
      case "connect_request":
        return this.answer(msg, "connect_reply", () => ({
          status: "ok",
          shell_port: this.conn.shell_port,
          iopub_port: this.conn.iopub_port,
          stdin_port: this.conn.stdin_port,
          hb_port: this.conn.hb_port,
          control_port: this.conn.control_port,
        }));
      case "interrupt_request": // belongs on control, accepted here too
        this.answer(msg, "interrupt_reply", () => ({ status: "ok" }));
        h.interrupt();
        return;
      case "shutdown_request": // older clients send it on shell
        this.answer(msg, "shutdown_reply", () => ({ status: "ok", restart: !!c.restart }));
        void this.shutdown();
        return;
      default:
        kernelLog(`shell: ignoring ${msg.header.msg_type}`);
    }
  }

  private async drain(): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    try {
      for (let msg = this.queue.shift(); msg; msg = this.queue.shift()) await this.runExecute(msg);
    } finally {
      this.draining = false;
    }
  }

  private async runExecute(msg: Message): Promise<void> {
    const req = msg.content as ExecuteRequest;
    this.publish("status", { execution_state: "busy" }, msg);
    try {
      if (this.toAbort.has(msg)) {
        // ipykernel's reply for a request it never ran (status "aborted", no execution_count).
        this.reply(msg, "execute_reply", { status: "aborted" });
        return;
      }
      const content = await this.handler.execute(req, { publish: (type, content) => this.publish(type, content, msg) });
      if (content.status === "error" && req.stop_on_error !== false && !req.silent) await this.abortArrived();
      this.iopubOut.flushStream(); // the cell's last output goes out before its reply
      this.reply(msg, "execute_reply", content);
    } catch (e) {
      kernelWarn("execute failed inside the kernel:", e);
      this.reply(msg, "execute_reply", { status: "error", ename: "KernelError", evalue: String(e), traceback: [String(e)], execution_count: 0 });
    } finally {
      this.publish("status", { execution_state: "idle" }, msg);
    }
  }

  /**
   * Marks every execute request that has arrived so far for abort. Called before the error reply is
   * sent, so a request the client sends after seeing the error is never caught, and any request that
   * arrives before the reply leaves was sent before the client could know of the error. That is why the
   * kernel waits ARRIVAL_SETTLE_MS first: "Run All" sends its requests back to back, and under load some
   * are still in transit when a quick cell fails. The shell loop reads arrivals in the event loop's poll
   * phase, which timers go through.
   */
  private async abortArrived(): Promise<void> {
    await new Promise((r) => setTimeout(r, ARRIVAL_SETTLE_MS));
    for (let turns = 0; turns < 1000 && this.shell.readable; turns++) await new Promise((r) => setTimeout(r, 1));
    for (const queued of this.queue) if (queued.header.msg_type === "execute_request") this.toAbort.add(queued);
  }

  /** Replies are already queued; flush them, release resources, stop the worker, then exit. */
  async shutdown(): Promise<never> {
    if (!this.closing) {
      this.closing = true;
      kernelLog("shutting down");
      try {
        this.handler.close();
      } catch (e) {
        kernelWarn("handler close failed:", e);
      }
      await Promise.race([Promise.all([this.shellOut.flush(), this.iopubOut.flush()]), delay(1000)]);
      this.shell.close();
      this.iopub.close();
      this.stdin.close();
      const worker = this.worker;
      if (worker) {
        const exited = new Promise((r) => worker.once("exit", r));
        worker.postMessage({ type: "close" });
        await Promise.race([exited, delay(2000)]);
      }
      exitKernel(0);
    }
    return new Promise<never>(() => {});
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}
