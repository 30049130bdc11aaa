/**
 * The IOPub channel: every message the kernel broadcasts (status, streams, displays, results, errors).
 *
 * Two things make it lossless where a plain PUB socket is not:
 *  - Stream output is coalesced as ipykernel does: consecutive writes to the same stream of the same cell
 *    are buffered and sent as one `stream` message on a short interval, when the buffer grows large, and
 *    before any other message (so output order is kept). `console.log` in a loop of 100,000 iterations
 *    becomes a handful of messages instead of 100,000.
 *  - The PUB socket is set to `noDrop`. A ZeroMQ publisher otherwise drops messages silently once a
 *    subscriber's queue holds `sendHighWaterMark` messages (1,000 by default), and zeromq.js resolves the
 *    send as if it had worked; with `noDrop` the send is rejected with EAGAIN instead, and this queue waits
 *    and sends the same message again, in order. A subscriber that stops reading for STALL_MS loses the
 *    message that waited that long (logged), so a dead frontend cannot hold the kernel's memory forever.
 */
import type * as Zmq from "zeromq";
import { kernelWarn } from "./log";
import { iopubTopic, Message, WireCodec } from "./wire";

/** How long stream output may wait in the buffer before it is sent (ipykernel's flush_interval is 0.2 s). */
export const STREAM_FLUSH_MS = 50;
/** Buffered stream text above this many characters is sent at once, even mid-burst. */
export const STREAM_MAX_CHARS = 256 * 1024;
/** Retry delays while the subscriber's queue is full: grows from the first to the last. */
const RETRY_MIN_MS = 1;
const RETRY_MAX_MS = 50;
/** A message that could not be queued for this long is given up (the frontend stopped reading). */
const STALL_MS = 60_000;

interface PendingStream {
  parent: Message | undefined;
  name: string;
  chunks: string[];
  chars: number;
}

export interface IopubSocket {
  send(frames: Buffer[]): Promise<void>;
}

/** Configures a zeromq Publisher for this channel (see the header: no silent drops). */
export function configurePublisher(pub: Zmq.Publisher): void {
  pub.noDrop = true;
  pub.sendHighWaterMark = 10_000;
}

export class IopubChannel {
  private pending: PendingStream | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly outbox: Buffer[][] = [];
  private sending: Promise<void> | undefined;

  constructor(
    private readonly socket: IopubSocket,
    private readonly codec: WireCodec,
    private readonly kernelId: string,
    private readonly flushMs = STREAM_FLUSH_MS,
  ) {}

  /** Queues one message; any buffered stream text goes first so the frontend sees output in order. */
  publish(msgType: string, content: object, parent?: Message): void {
    if (msgType === "stream") {
      const { name, text } = content as { name: string; text: string };
      return this.stream(name, String(text), parent);
    }
    this.flushStream();
    this.enqueue(msgType, content, parent);
  }

  /** Appends text to the stream buffer; a different stream or cell sends what was buffered first. */
  stream(name: string, text: string, parent?: Message): void {
    if (text === "") return;
    const p = this.pending;
    if (p && (p.name !== name || p.parent !== parent)) this.flushStream();
    const q = (this.pending ??= { parent, name, chunks: [], chars: 0 });
    q.chunks.push(text);
    q.chars += text.length;
    if (q.chars >= STREAM_MAX_CHARS) this.flushStream();
    else this.timer ??= setTimeout(() => this.flushStream(), this.flushMs).unref();
  }

  /** Sends the buffered stream text as one message now. */
  flushStream(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const p = this.pending;
    this.pending = undefined;
    if (p) this.enqueue("stream", { name: p.name, text: p.chunks.join("") }, p.parent);
  }

  /** Resolves once everything published so far has been handed to zeromq. */
  async flush(): Promise<void> {
    this.flushStream();
    while (this.sending) await this.sending;
  }

  private enqueue(msgType: string, content: object, parent: Message | undefined): void {
    const msg = this.codec.make(msgType, content, parent, [iopubTopic(this.kernelId, msgType)]);
    this.outbox.push(this.codec.encode(msg));
    this.kick();
  }

  private kick(): void {
    if (this.sending) return;
    this.sending = this.drain().finally(() => {
      this.sending = undefined;
      if (this.outbox.length > 0) this.kick(); // queued after the loop saw an empty outbox
    });
  }

  private async drain(): Promise<void> {
    for (let frames = this.outbox.shift(); frames; frames = this.outbox.shift()) await this.sendOne(frames);
  }

  /** Sends one message, waiting while the subscriber's queue is full (EAGAIN under noDrop). */
  private async sendOne(frames: Buffer[]): Promise<void> {
    const started = Date.now();
    for (let wait = RETRY_MIN_MS; ; wait = Math.min(RETRY_MAX_MS, wait * 2)) {
      try {
        return await this.socket.send(frames);
      } catch (e) {
        const code = (e as { code?: string }).code;
        if (code !== "EAGAIN") return kernelWarn(`iopub: send failed (${code ?? String(e)})`);
        if (Date.now() - started > STALL_MS) return kernelWarn(`iopub: no subscriber read for ${STALL_MS / 1000} s; one message dropped`);
        await new Promise((r) => setTimeout(r, wait));
      }
    }
  }
}
