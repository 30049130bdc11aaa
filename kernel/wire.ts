/**
 * The Jupyter wire protocol (messaging spec, "The Wire Protocol"): routing identities, the `<IDS|MSG>`
 * delimiter, an HMAC signature over the four JSON frames, then optional binary buffers.
 *
 * Used from both threads (the shell/IOPub thread and the control/heartbeat worker), so it depends on
 * nothing but Node. Replies carry the kernel's own session id, as the spec asks of every sender.
 */
import { createHmac, randomUUID, timingSafeEqual } from "crypto";

export const PROTOCOL_VERSION = "5.3";
const DELIM = "<IDS|MSG>";

export interface Header {
  msg_id: string;
  session: string;
  username: string;
  date: string;
  msg_type: string;
  version: string;
  [k: string]: unknown;
}

export interface Message<C = Record<string, any>> {
  identities: Buffer[];
  header: Header;
  parent_header: Header | Record<string, never>;
  metadata: Record<string, unknown>;
  content: C;
  buffers: Buffer[];
}

export interface ConnectionInfo {
  shell_port: number;
  iopub_port: number;
  stdin_port: number;
  control_port: number;
  hb_port: number;
  ip: string;
  key: string;
  transport: string;
  signature_scheme: string;
  kernel_name?: string;
}

/** Signatures remembered against replay (jupyter_client's Session.digest_history_size). */
export const DIGEST_HISTORY_SIZE = 2 ** 16;

export class WireCodec {
  private readonly algorithm: string;
  /** Signatures of the messages accepted so far, oldest first: a replayed message repeats one. */
  private readonly seen = new Set<string>();

  /** `session` is shared by both kernel threads so every message the kernel sends names one sender. */
  constructor(private readonly key: string, signatureScheme = "hmac-sha256", readonly session: string = randomUUID()) {
    // signature_scheme is "hmac-<hashlib name>"; an empty key disables signing (spec: "Authentication").
    this.algorithm = signatureScheme.replace(/^hmac-/, "");
  }

  private sign(frames: (string | Buffer)[]): string {
    if (!this.key) return "";
    const h = createHmac(this.algorithm, this.key);
    for (const f of frames) h.update(f);
    return h.digest("hex");
  }

  /**
   * Parses a multipart message; throws on a missing delimiter, a bad signature, or a signature already
   * seen (a captured message sent again would otherwise run again; jupyter_client rejects it the same way).
   */
  decode(frames: Buffer[]): Message {
    const at = frames.findIndex((f) => f.length === DELIM.length && f.toString() === DELIM);
    if (at < 0) throw new Error("message without <IDS|MSG> delimiter");
    const signature = frames[at + 1].toString();
    const parts = frames.slice(at + 2, at + 6);
    if (parts.length < 4) throw new Error("message with fewer than four JSON frames");
    if (this.key) {
      const want = Buffer.from(this.sign(parts));
      const got = Buffer.from(signature);
      if (want.length !== got.length || !timingSafeEqual(want, got)) throw new Error("invalid message signature");
      if (this.seen.has(signature)) throw new Error(`duplicate signature ${signature.slice(0, 16)}… (a replayed message)`);
      this.remember(signature);
    }
    return {
      identities: frames.slice(0, at),
      header: JSON.parse(parts[0].toString()),
      parent_header: JSON.parse(parts[1].toString()),
      metadata: JSON.parse(parts[2].toString()),
      content: JSON.parse(parts[3].toString()),
      buffers: frames.slice(at + 6),
    };
  }

  private remember(signature: string): void {
    this.seen.add(signature);
    if (this.seen.size <= DIGEST_HISTORY_SIZE) return;
    // Forget the oldest tenth at once, so culling is rare (jupyter_client culls a random 10%).
    let drop = Math.ceil(DIGEST_HISTORY_SIZE / 10);
    for (const old of this.seen) {
      if (drop-- <= 0) break;
      this.seen.delete(old);
    }
  }

  /** A new message; `parent` sets the parent header and, for ROUTER replies, the routing identities. */
  make<C>(msgType: string, content: C, parent?: Message, identities?: Buffer[]): Message<C> {
    return {
      identities: identities ?? parent?.identities ?? [],
      header: {
        msg_id: randomUUID(),
        session: this.session,
        username: "kernel",
        date: new Date().toISOString(),
        msg_type: msgType,
        version: PROTOCOL_VERSION,
      },
      parent_header: parent ? parent.header : {},
      metadata: {},
      content,
      buffers: [],
    };
  }

  encode(msg: Message<unknown>): Buffer[] {
    const json = [msg.header, msg.parent_header, msg.metadata, msg.content].map((x) => Buffer.from(JSON.stringify(x)));
    return [...msg.identities, Buffer.from(DELIM), Buffer.from(this.sign(json)), ...json, ...msg.buffers];
  }
}

/** IOPub topic in ipykernel's form ("kernel.<id>.<msg_type>"); subscribers filter on prefixes only. */
export function iopubTopic(kernelId: string, msgType: string): Buffer {
  return Buffer.from(`kernel.${kernelId}.${msgType}`);
}

/**
 * Serialises sends on one zeromq socket: zeromq.js allows a single pending send() per socket when the
 * peer is slow (it rejects a second one with EBUSY), and the kernel sends from many async paths.
 */
export class SendQueue {
  private tail: Promise<void> = Promise.resolve();
  constructor(private readonly socket: { send(frames: Buffer[]): Promise<void> }, private readonly onError: (e: unknown) => void) {}
  send(frames: Buffer[]): void {
    this.tail = this.tail.then(() => this.socket.send(frames)).catch(this.onError);
  }
  /** Resolves once everything queued so far has been handed to zeromq. */
  flush(): Promise<void> {
    return this.tail;
  }
}
