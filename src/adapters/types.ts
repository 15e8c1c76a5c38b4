/**
 * What the hub knows about an upstream's protocol.
 *
 * An adapter sits between the sessions of one upstream and that upstream. It
 * decides what a session's message means (a subscribe, a request, something to
 * forward verbatim), which topic an upstream message belongs to, which frames
 * to send upstream when the first subscriber of a topic arrives or the last one
 * leaves, how request ids are rewritten so workers never collide, and what to
 * replay after a reconnect. The hub gives it routing primitives through
 * {@link AdapterContext}; the adapter never touches sockets.
 */
import type { WshubError } from '../errors.js';
import type { SendResult } from '../upstream/types.js';
import type { Session } from '../hub/session.js';

export type AdapterKind = 'raw' | 'json' | 'jsonrpc';

/** The routing primitives the hub offers an adapter. */
export interface AdapterContext {
  /** Upstream name, for logs. */
  readonly upstream: string;
  /**
   * Send to the upstream (queued while it is down); `session` is who caused it,
   * for drop attribution. A refusal (queue full or disabled, upstream closed)
   * is returned here and also told to the session (`Session.onError`), as is a
   * later expiry in the queue.
   */
  sendUpstream(data: Buffer | string, isBinary: boolean, session: Session | undefined): SendResult;
  /** Send to one session (a reply, an ack, an error, a notification rewritten for it); `topic` lets conflation apply. */
  reply(session: Session, data: Buffer | string, isBinary?: boolean, topic?: string): void;
  /**
   * Fan a message out to the subscribers of `topic` (one per group),
   * remembering it as the topic's snapshot. `json`: the adapter already knows
   * whether the text is JSON (saves envelope sessions a parse).
   */
  publish(topic: string, data: Buffer, isBinary: boolean, json?: boolean): void;
  /** Fan a message out to every session of the upstream (one per group). */
  broadcast(data: Buffer, isBinary: boolean, json?: boolean): void;
  /**
   * Add `session` to `topic`; returns true when it is the topic's first subscriber
   * (the adapter then subscribes upstream). Delivers the topic's snapshot (its
   * last message) to the session first when `snapshot` (default: the session's
   * `?snapshot=1`).
   */
  addSubscriber(topic: string, session: Session, snapshot?: boolean): boolean;
  /** Remove `session` from `topic`; returns true when it was the last subscriber. */
  removeSubscriber(topic: string, session: Session): boolean;
  /** Topics with at least one subscriber. */
  liveTopics(): Iterable<string>;
  /** Whether `topic` has at least one subscriber. */
  hasSubscribers(topic: string): boolean;
  /** How many topics have subscribers. */
  topicCount(): number;
  /** Whether the upstream is open right now. */
  upstreamOpen(): boolean;
  /** Report a session's bad input: counted, logged; the adapter also replies in the protocol's own way. */
  sessionError(session: Session, error: WshubError): void;
}

/** One adapter instance per upstream. */
export interface Adapter {
  readonly kind: AdapterKind;
  /** A session attached. */
  onSessionOpen?(session: Session): void;
  /** A message from a session. */
  onSessionMessage(session: Session, data: Buffer, isBinary: boolean): void;
  /** A session left: release what it held (the hub removes its topics afterwards). */
  onSessionClose(session: Session): void;
  /** A message from the upstream. */
  onUpstreamMessage(data: Buffer, isBinary: boolean): void;
  /** The upstream (re)opened: replay live subscriptions. `reconnect` is false for the first open. */
  onUpstreamOpen(reconnect: boolean): void;
  /** The upstream went down (will retry, or is closed for good when `final`): fail what is in flight. */
  onUpstreamDown(cause: WshubError | undefined, final: boolean): void;
  /** A topic lost its last subscriber because a session left; unsubscribe upstream. */
  onTopicAbandoned(topic: string): void;
  /**
   * Explicit subscribe from the envelope protocol: add the session to `topic`
   * and, when the adapter knows how, subscribe upstream. Returns an error when
   * the topic is not valid for this adapter.
   */
  subscribe?(session: Session, topic: string, snapshot: boolean): WshubError | undefined;
  unsubscribe?(session: Session, topic: string): void;
  /** Adapter-specific figures for /status. */
  stats?(): Record<string, unknown>;
}
