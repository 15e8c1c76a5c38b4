/**
 * A session is one worker's membership in one upstream — its id, group,
 * snapshot wish and topics — delivering through the {@link Outlet} of the
 * worker's connection. Adapters see it only as a {@link SessionHandle}.
 *
 * A transparent connection (`/u/<upstream>`) has exactly one session. An
 * envelope connection (`/hub`) has one per upstream and group it subscribes
 * through; they share the connection's outlet and slow-consumer policy, and
 * their frames are envelope-encoded (once per message, see message.ts).
 */
import type { SessionHandle } from '../adapters/types.js';
import type { WshubError } from '../errors.js';
import type { Frame } from './frame.js';
import type { UpstreamMessage } from './message.js';

/** How a session's connection wants frames: the upstream's own bytes, or envelopes. */
export interface SessionEncoder {
  /** An upstream message delivered under `topic` (undefined: to everyone). */
  message(message: UpstreamMessage, topic: string | undefined): Frame;
  /** A frame for this session alone (an answer, an ack, a per-session notification). */
  own(data: Buffer, isBinary: boolean, answers: string | undefined, topic: string | undefined): Frame;
}

/** What a session needs of its connection's write side: an Outlet, or (cluster mode) a remote hub's stand-in. */
export interface SessionOutlet {
  readonly id: string;
  readonly closed: boolean;
  readonly backlogBytes: number;
  /** One frame: `topic` and `upstream` say what it is, `keep` marks an answer (see Outlet.deliver). */
  deliver(frame: Frame, topic?: string, upstream?: string, keep?: boolean): void;
  end(code: number, reason: string, timeoutMs?: number): Promise<void>;
}

export interface SessionOptions {
  id: string;
  upstream: string;
  outlet: SessionOutlet;
  encoder: SessionEncoder;
  group?: string | undefined;
  snapshot?: boolean;
  /** False for envelope sessions: they subscribe explicitly instead of receiving what a transparent client would. @default true */
  transparent?: boolean;
  /** Told about this session's bad input, failed requests and refused sends; `origin` is what the caller passed with the frame (an envelope id). */
  onError?: (error: WshubError, origin: unknown) => void;
}

/** This session's side of the ledger, worker → upstream: `received` = `forwarded` + `answeredByHub` + `refused`. */
export interface SessionLedger {
  /** Frames received from the worker. */
  received: number;
  /** Frames (or frames made from them) handed to the upstream client. */
  forwarded: number;
  /** Handled by the hub itself (a deduplicated subscribe, an envelope control frame). */
  answeredByHub: number;
  /** Refused at the door, by reason. */
  refused: Record<string, number>;
  /** Forwarded but lost later (expired in the outage queue, lost with a dying connection), by reason. */
  lostUpstream: Record<string, number>;
}

export interface SessionStats {
  id: string;
  upstream: string;
  group: string | undefined;
  topics: number;
  messagesIn: number;
  bytesIn: number;
  /** This session's messages to the upstream that were not sent, by reason (queue full, expired, …). */
  upstreamDrops: Record<string, number>;
  ledger: SessionLedger;
}

export class Session implements SessionHandle {
  readonly id: string;
  readonly upstream: string;
  readonly group: string | undefined;
  readonly wantsSnapshot: boolean;
  readonly outlet: SessionOutlet;
  readonly transparent: boolean;
  readonly encoder: SessionEncoder;
  readonly onError: ((error: WshubError, origin: unknown) => void) | undefined;
  /** Topics (adapter-defined keys) this session is subscribed to. */
  readonly topics = new Set<string>();
  messagesIn = 0;
  bytesIn = 0;
  readonly ledger: SessionLedger = { received: 0, forwarded: 0, answeredByHub: 0, refused: {}, lostUpstream: {} };
  /** Set once the session left its route: nothing more is routed for it. */
  detached = false;

  constructor(options: SessionOptions) {
    this.id = options.id;
    this.upstream = options.upstream;
    this.group = options.group;
    this.wantsSnapshot = options.snapshot ?? false;
    this.outlet = options.outlet;
    this.encoder = options.encoder;
    this.transparent = options.transparent ?? true;
    this.onError = options.onError;
  }

  get closed(): boolean {
    return this.detached || this.outlet.closed;
  }

  get backlogBytes(): number {
    return this.outlet.backlogBytes;
  }

  /** An upstream message for this session's audience of `topic`. */
  deliver(message: UpstreamMessage, topic: string | undefined): void {
    this.outlet.deliver(this.encoder.message(message, topic), topic, this.upstream);
  }

  /** A frame for this session alone. Answers are kept past the slow-consumer policy. */
  reply(data: Buffer, isBinary: boolean, answers: string | undefined, topic: string | undefined): void {
    this.outlet.deliver(this.encoder.own(data, isBinary, answers, topic), topic, this.upstream, answers !== undefined);
  }

  stats(): SessionStats {
    const upstreamDrops: Record<string, number> = {};
    for (const [k, v] of Object.entries(this.ledger.refused)) upstreamDrops[k] = (upstreamDrops[k] ?? 0) + v;
    for (const [k, v] of Object.entries(this.ledger.lostUpstream)) upstreamDrops[k] = (upstreamDrops[k] ?? 0) + v;
    return {
      id: this.id,
      upstream: this.upstream,
      group: this.group,
      topics: this.topics.size,
      messagesIn: this.messagesIn,
      bytesIn: this.bytesIn,
      upstreamDrops,
      ledger: { ...this.ledger, refused: { ...this.ledger.refused }, lostUpstream: { ...this.ledger.lostUpstream } },
    };
  }
}
