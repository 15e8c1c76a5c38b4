/**
 * A session is what an adapter and the router see: one worker's membership in
 * one upstream — its id, group, snapshot wish and topics — delivering through
 * the {@link Outbound} queue of the worker's connection.
 *
 * A transparent connection (`/u/<upstream>`) has exactly one session. An
 * envelope connection (`/hub`) has one per upstream and group it subscribes
 * through; they share the connection's queue and slow-consumer policy, and
 * wrap each frame in the envelope (built once per message for all envelope
 * sessions, see `encode`).
 */
import type WebSocket from 'ws';
import type { WshubError } from '../errors.js';
import type { Frame } from './frame.js';
import type { Outbound } from './outbound.js';
import type { Route } from './route.js';

export { DEFAULT_MAX_QUEUE_BYTES, DEFAULT_SLOW_CONSUMER, DEFAULT_SOCKET_HIGH_WATER_BYTES, SLOW_CONSUMER_POLICIES } from './outbound.js';
export type { DropReason, SlowConsumerPolicy } from './outbound.js';

/**
 * Turns a frame into what this session's connection expects (identity for
 * transparent sessions). `own` is true for frames meant for this session alone
 * (replies, acks), false for upstream messages shared with other sessions.
 */
export type FrameEncoder = (frame: Frame, upstream: string, topic: string | undefined, own: boolean) => Frame;

export interface SessionOptions {
  id: string;
  upstream: string;
  outbound: Outbound;
  group?: string | undefined;
  snapshot?: boolean;
  encode?: FrameEncoder;
  /** False for envelope sessions: they subscribe explicitly instead of receiving everything a transparent client would. @default true */
  transparent?: boolean;
  /** Told about this session's bad input and failed requests (envelope sessions answer with an `error` frame). */
  onError?: (error: WshubError) => void;
}

export interface SessionStats {
  id: string;
  upstream: string;
  group: string | undefined;
  topics: number;
  messagesIn: number;
  bytesIn: number;
  upstreamDrops: Record<string, number>;
}

export class Session {
  readonly id: string;
  readonly upstream: string;
  readonly group: string | undefined;
  readonly wantsSnapshot: boolean;
  readonly outbound: Outbound;
  /** The router this session is attached to (set by `Route.attach`); messages go to its adapter, never to a newer route of the same name. */
  route: Route | undefined;
  readonly transparent: boolean;
  readonly onError: ((error: WshubError) => void) | undefined;
  /** Topics (adapter-defined keys) this session is subscribed to. */
  readonly topics = new Set<string>();
  messagesIn = 0;
  bytesIn = 0;
  /** This session's messages to the upstream that were not sent, by reason (queue full, expired, …). */
  readonly upstreamDrops: Record<string, number> = {};
  readonly #encode: FrameEncoder | undefined;

  constructor(options: SessionOptions) {
    this.id = options.id;
    this.upstream = options.upstream;
    this.group = options.group;
    this.wantsSnapshot = options.snapshot ?? false;
    this.outbound = options.outbound;
    this.#encode = options.encode;
    this.transparent = options.transparent ?? true;
    this.onError = options.onError;
  }

  get ws(): WebSocket {
    return this.outbound.ws;
  }

  get closed(): boolean {
    return this.outbound.closed;
  }

  /** Bytes waiting for this session's connection; group members with less go first. */
  get backlogBytes(): number {
    return this.outbound.backlogBytes;
  }

  /** Deliver a frame (an upstream message of `topic`, or with `own` a reply for this session alone), encoded for its connection. */
  deliver(frame: Frame, topic?: string, own = false): void {
    this.outbound.deliver(this.#encode ? this.#encode(frame, this.upstream, topic, own) : frame, topic, this.upstream);
  }

  stats(): SessionStats {
    return {
      id: this.id,
      upstream: this.upstream,
      group: this.group,
      topics: this.topics.size,
      messagesIn: this.messagesIn,
      bytesIn: this.bytesIn,
      upstreamDrops: { ...this.upstreamDrops },
    };
  }
}
