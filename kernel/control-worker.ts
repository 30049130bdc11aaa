/**
 * The control and heartbeat channels, on their own thread.
 *
 * Both must answer while a cell keeps the main thread busy in synchronous code: the heartbeat so
 * frontends do not declare the kernel dead, and control because `interrupt_request` (interrupt_mode
 * "message") and `shutdown_request` travel on it (messaging spec, "Kernel interrupt", "Kernel shutdown").
 * ipykernel likewise serves heartbeat and control on threads of their own.
 *
 * An interrupt marks the running execution in shared memory (the main thread's coroutine runtime sees it
 * at the next await) and messages the main thread (seen when it is idle). If the execution is still
 * running after the grace period, the worker sends the process SIGINT, which Node's watchdog turns into a
 * termination of the synchronous code being run; it repeats while the execution lasts.
 */
import { parentPort, workerData } from "worker_threads";
import type * as Zmq from "zeromq";
import { InterruptState } from "./interrupt-state";
import { ConnectionInfo, Message, SendQueue, WireCodec } from "./wire";

export interface ControlWorkerData {
  conn: ConnectionInfo;
  session: string;
  zeromqPath: string;
  state: SharedArrayBuffer;
  kernelInfo: object;
  graceMs: number;
}

/** Messages from the worker to the main thread. */
export type ToMain =
  | { type: "interrupt" }
  | { type: "shutdown"; restart: boolean }
  | { type: "status"; parent: Message["header"] }
  | { type: "log"; text: string; warn?: boolean }
  | { type: "ready" };

const data = workerData as ControlWorkerData;
const zmq = require(data.zeromqPath) as typeof Zmq;
const codec = new WireCodec(data.conn.key, data.conn.signature_scheme, data.session);
const state = new InterruptState(data.state);
const post = (m: ToMain) => parentPort!.postMessage(m);
const log = (text: string, warn = false) => post({ type: "log", text, warn });
const addr = (port: number) => `${data.conn.transport}://${data.conn.ip}:${port}`;

const control = new zmq.Router();
const hb = new zmq.Reply();
const out = new SendQueue(control, (e) => log(`control send failed: ${String(e)}`, true));

const MAX_SIGINTS = 20;
/** While a tf.js kernel runs, SIGINT waits (poll interval, and at most this many polls per attempt). */
const KERNEL_POLL_MS = 25;
const KERNEL_MAX_POLLS = 400;

/**
 * Sends SIGINT while execution `exec` keeps running past the grace period. Node's watchdog terminates
 * synchronous code only inside a guarded vm run; elsewhere the signal reaches the main thread's handler
 * once it is idle, which is harmless. It is held back while a tf.js kernel executes (see tf-interrupt.ts).
 */
function escalate(exec: number, attempt: number, polls = 0): void {
  const wait = polls === 0 ? data.graceMs : KERNEL_POLL_MS;
  setTimeout(() => {
    if (state.running !== exec || attempt >= MAX_SIGINTS) return;
    if (state.inKernel && polls < KERNEL_MAX_POLLS) return escalate(exec, attempt, polls + 1);
    state.countSignal();
    process.kill(process.pid, "SIGINT");
    escalate(exec, attempt + 1);
  }, wait);
}

function interrupt(): void {
  const exec = state.requestInterrupt();
  post({ type: "interrupt" });
  if (exec !== 0) escalate(exec, 0);
}

function reply(msg: Message, type: string, content: object): void {
  out.send(codec.encode(codec.make(type, content, msg)));
}

function handle(msg: Message): void {
  post({ type: "status", parent: msg.header });
  switch (msg.header.msg_type) {
    case "interrupt_request":
      reply(msg, "interrupt_reply", { status: "ok" });
      interrupt();
      break;
    case "shutdown_request": {
      const restart = !!msg.content.restart;
      reply(msg, "shutdown_reply", { status: "ok", restart });
      // A busy cell would keep the main thread from ever seeing the request.
      if (state.running !== 0) interrupt();
      post({ type: "shutdown", restart });
      break;
    }
    case "kernel_info_request":
      reply(msg, "kernel_info_reply", data.kernelInfo);
      break;
    default:
      log(`control: ignoring ${msg.header.msg_type}`);
  }
}

async function serveControl(): Promise<void> {
  for await (const frames of control) {
    try {
      handle(codec.decode(frames));
    } catch (e) {
      log(`control: dropped a message (${(e as Error).message})`, true);
    }
  }
}

async function serveHeartbeat(): Promise<void> {
  for await (const frames of hb) await hb.send(frames);
}

parentPort!.on("message", (m: { type: string }) => {
  if (m.type !== "close") return;
  // Close sockets before the thread ends: a worker terminated with live zeromq sockets aborts the process.
  void out.flush().finally(() => {
    control.close();
    hb.close();
    parentPort!.close();
  });
});

(async () => {
  await Promise.all([control.bind(addr(data.conn.control_port)), hb.bind(addr(data.conn.hb_port))]);
  post({ type: "ready" });
  await Promise.all([serveControl().catch(() => {}), serveHeartbeat().catch(() => {})]);
})().catch((e) => {
  log(`control worker failed: ${String(e)}`, true);
});
