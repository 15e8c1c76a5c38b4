/**
 * What the hub knows about an upstream's protocol: adapters are translators.
 *
 * Given an upstream message, an adapter says what it is — for the
 * subscribers of topic T, for everyone, the answer to session S's request,
 * notifications for particular sessions, or nothing anyone wants (with the
 * reason). Given a worker's frame, it says what to send upstream (ids
 * rewritten, subscribes deduplicated), what to answer, and which topics the
 * session joins or leaves. The route alone delivers: an adapter never touches
 * a socket, a queue or another session's state, and it sees sessions only
 * through the narrow {@link SessionHandle}.
 *
 * Everything an adapter decides comes back as an {@link Outcome}, applied by
 * the route in a fixed order: memberships, then frames upstream, then
 * replies, then snapshots — so an acknowledgement always precedes the
 * snapshot it announces. Outcomes an adapter produces on its own clock (a
 * request's deadline) go through {@link AdapterHost.apply}.
 */
import type { ErrorCode, WshubError } from '../errors.js';

export type AdapterKind = 'raw' | 'json' | 'jsonrpc';

/** What an adapter may know of a session. */
export interface SessionHandle {
  readonly id: string;
  /** `?group=`: each message once per group. */
  readonly group: string | undefined;
  /** Attached at `/u/<upstream>` (false: an envelope session at `/hub`). */
  readonly transparent: boolean;
  /** `?snapshot=1`: a late joiner first gets each topic's last message. */
  readonly wantsSnapshot: boolean;
  /** Left, or being closed: nothing more reaches it. */
  readonly closed: boolean;
  /** Bytes waiting for it; picks the least loaded member of a group. */
  readonly backlogBytes: number;
}

/** A frame for one session. */
export interface Reply {
  readonly session: SessionHandle;
  readonly data: Buffer | string;
  readonly isBinary?: boolean;
  /** Conflation key and drop report: what the frame is about. */
  readonly topic?: string | undefined;
  /**
   * The id text (as the worker wrote it) of the request this answers. An
   * answer is never dropped by the slow-consumer policy, and envelope
   * sessions get it as `res`.
   */
  readonly answers?: string | undefined;
  /** A notification rewritten for this session: counted as a delivery of this topic (e.g. a JSON-RPC subscription), not as a reply. */
  readonly countAs?: string | undefined;
}

/** A frame for the upstream. `tag` comes back in {@link Adapter.refused} if the frame never gets there. */
export interface UpstreamFrame {
  readonly data: Buffer | string;
  readonly isBinary: boolean;
  /** Who caused it (drop attribution); undefined for the hub's own frames (subscribes, replays). */
  readonly session?: SessionHandle | undefined;
  readonly tag?: unknown;
}

/**
 * A subscribe or unsubscribe the adapter wants made (json): the pool decides
 * which connection carries each topic, paces it with the connection's control
 * rate, combines waiting ones into one frame, and asks the adapter to render
 * the frame when it can go ({@link Adapter.renderControl}).
 */
export interface ControlIntent {
  readonly kind: 'subscribe' | 'unsubscribe';
  readonly topics: readonly string[];
  /** The adapter's own bookkeeping; comes back with the topics it was split into. */
  readonly ref?: unknown;
}

export interface Membership {
  readonly session: SessionHandle;
  readonly topic: string;
}

/** Where an upstream message goes. */
export type Publish =
  /** To the subscribers of `topic` (one per group), kept as its snapshot. `also`: another audience that gets it too (each session once). */
  | { readonly to: 'topic'; readonly topic: string; readonly also?: string | undefined; readonly seq?: number | undefined }
  /** To every session of the upstream (one per group). */
  | { readonly to: 'everyone' }
  /** To no one: counted under `reason`. */
  | { readonly to: 'none'; readonly reason: ErrorCode }
  /** Consumed by the hub itself (the answer to one of its own subscribes); `replies` may still tell sessions. */
  | { readonly to: 'hub' };

export interface Outcome {
  /** Inbound only: where the upstream message itself goes. Absent: it was consumed (e.g. an answer turned into `replies`). */
  publish?: Publish;
  /** Inbound only: the adapter parsed the message and it is (true) or is not (false) JSON text — saves envelope sessions a parse. */
  json?: boolean;
  join?: Membership[];
  leave?: Membership[];
  upstream?: UpstreamFrame[];
  /** Subscribes and unsubscribes for the pool to place, pace and combine. */
  control?: ControlIntent[];
  replies?: Reply[];
  /** After the replies: each session gets the topic's last message (the snapshot it asked for). */
  snapshots?: Membership[];
  /** A session's bad input or failed request: counted, logged, told to the session (envelope `error`). */
  errors?: Array<{ session: SessionHandle; error: WshubError }>;
  /** Inbound only: parts of the upstream message (members of a batch that are none of the adapter's) for everyone. */
  broadcast?: Buffer[];
}

/** The hub's side of the contract: read-only views, and the door for outcomes on the adapter's own clock. */
export interface AdapterHost {
  /** Upstream name, for messages. */
  readonly upstream: string;
  /** Sessions subscribed to `topic` (0 when none). */
  subscribers(topic: string): number;
  /** Whether `session` is subscribed to `topic`. */
  isSubscribed(session: SessionHandle, topic: string): boolean;
  /** Topics with at least one subscriber. */
  liveTopics(): Iterable<string>;
  /** How many topics have subscribers. */
  topicCount(): number;
  /** Whether the upstream connection is open right now. */
  upstreamOpen(): boolean;
  /** Apply an outcome decided outside a call from the route (a timer). */
  apply(outcome: Outcome): void;
}

/** One adapter instance per upstream. */
export interface Adapter {
  readonly kind: AdapterKind;
  /** A session attached (transparent sessions may join implicit topics). */
  attached?(session: SessionHandle): Outcome | undefined;
  /** A frame from a worker. */
  fromSession(session: SessionHandle, data: Buffer, isBinary: boolean): Outcome;
  /** A session left; the route removes its memberships afterwards and reports topics left without subscribers to `abandoned`. */
  detached(session: SessionHandle): Outcome | undefined;
  /** Topics that lost their last subscriber because a session left: unsubscribe upstream. */
  abandoned(topics: readonly string[]): Outcome | undefined;
  /** A message from the upstream. */
  fromUpstream(data: Buffer, isBinary: boolean): Outcome;
  /**
   * A connection (re)opened: replay its subscriptions. `reconnect` is false
   * for the first open; `topics`, when given, are the topics that connection
   * carries (the pool shards topics over connections), else all.
   */
  opened(reconnect: boolean, topics?: readonly string[]): Outcome | undefined;
  /**
   * A connection went down (will retry, or closed for good when `final`).
   * `scope.primary`: it carried the requests — answer those in flight;
   * `scope.topics`: its topics wait for its next open (all when undefined).
   */
  down(cause: WshubError | undefined, final: boolean, scope?: { primary: boolean; topics?: readonly string[] }): Outcome | undefined;
  /** Render the frame for control intents (split or combined by the pool) now that their connection can take it; undefined when nothing is left to send. */
  renderControl?(kind: ControlIntent['kind'], parts: readonly ControlIntent[]): UpstreamFrame | undefined;
  /** Topics one control frame can carry (the pool combines at most this many). */
  readonly topicsPerFrame?: number;
  /** Control intents the pool dropped unsent (their connection went down or opened anew and replays instead). */
  controlDropped?(parts: readonly ControlIntent[]): Outcome | undefined;
  /** Subscriptions asked of the upstream and not answered yet (a failback switches once none are left). */
  pendingSubscriptions?(): number;
  /** A failback opened a new connection: make every subscription again on it (the old one keeps streaming meanwhile). */
  migrate?(): Outcome | undefined;
  /** The failback switched to the new connection: what only the old one needed can go. */
  migrated?(): void;
  /** A frame of this adapter's was handed to the kernel (its answer may come now; if the connection drops, it will not). */
  sent?(tag: unknown): void;
  /** A frame of this adapter's never reached the upstream (refused, expired, lost with its connection). */
  refused?(tag: unknown, error: WshubError): Outcome | undefined;
  /**
   * Envelope `sub`: join `topic` and, when the adapter knows how, subscribe
   * upstream. An `errors` entry refuses it (the envelope answers `error`).
   */
  subscribe?(session: SessionHandle, topic: string, snapshot: boolean): Outcome;
  unsubscribe?(session: SessionHandle, topic: string): Outcome;
  /** Adapter-specific figures for /status. */
  stats?(): Record<string, unknown>;
}
