/**
 * The router of one upstream: its sessions, topic → audience, snapshots, and
 * the one place where anything is delivered. The adapter translates; the
 * route applies what it decided ({@link Outcome}) in a fixed order —
 * memberships, frames upstream, replies, snapshots, errors — and counts each
 * stage once.
 *
 * The route does not know where messages come from or go to upstream: a
 * {@link RouteLink} sends frames (the upstream connection, or another hub
 * that holds it), and `fromUpstream` takes messages from any source.
 */
import type { Adapter, AdapterHost, ControlIntent, Membership, Outcome, Publish, Reply, SessionHandle, UpstreamFrame } from '../adapters/types.js';
import { WshubError, type ErrorCode } from '../errors.js';
import type { Logger } from '../observe/log.js';
import type { SendResult } from '../upstream/types.js';
import { Audience } from './audience.js';
import { UpstreamMessage } from './message.js';
import type { Session } from './session.js';

/** Where the route's upstream frames go. */
export interface RouteLink {
  /** Send a frame upstream; `tag` comes back with a later drop of it (`Route.sendDropped`). */
  send(frame: UpstreamFrame, tag: SendTag): SendResult;
  /** Subscribes and unsubscribes to place, pace and combine (the pool renders them through the adapter). */
  control(intents: readonly ControlIntent[]): void;
  isOpen(): boolean;
}

/** Who watches the route (cluster mode: upstream.ts). Called synchronously; a throw is logged, never propagated. */
export interface RouteObserver {
  /** An upstream message was routed: where it went (after a failback's hold). */
  routed?(data: Buffer, isBinary: boolean, publish: Publish | undefined): void;
  /** A topic got its first subscriber (`live`) or lost its last. */
  topic?(topic: string, live: boolean): void;
}

/** Whether an upstream publish goes out (undefined) or is held back, and why (a failback's overlap, handover.ts). */
export type Admit = (topic: string | undefined, seq: number | undefined) => ErrorCode | undefined;

/** What travels with a frame sent upstream, to account for it if it never arrives. */
export interface SendTag {
  readonly session: Session | undefined;
  readonly adapterTag: unknown;
  readonly origin: unknown;
}

/** The account of upstream messages: `received` = `routed` + `consumed` + every `unrouted` reason. */
export interface RouteCounters {
  received: number;
  /** Reached at least one session (published to an audience, or answered as replies). */
  routed: number;
  /** Answers to the hub's own frames (a replayed subscribe's acknowledgement), used by the hub and delivered to no one. */
  consumed: number;
  unrouted: Partial<Record<ErrorCode, number>>;
  /** Copies offered to sessions: one message to 16 sessions counts 16; per-session notifications and answers count one each. */
  deliveries: number;
  /** Frames made for one session: answers, acknowledgements, errors in the upstream's format. */
  replies: number;
  sessionErrors: Record<string, number>;
}

/** Cumulative traffic of one topic; kept after its last subscriber leaves so metrics never go backwards. */
export interface TopicTraffic {
  topic: string;
  /** Upstream messages of this topic (with or without subscribers). */
  messages: number;
  bytes: number;
  /** Copies delivered to sessions. */
  deliveries: number;
  deliveredBytes: number;
}

/** Topics counted on their own per upstream; later ones are summed under {@link OTHER_TOPIC} so memory stays bounded. */
export const DEFAULT_MAX_COUNTED_TOPICS = 1000;
/** The topic key that sums the traffic of topics past the per-topic limit. */
export const OTHER_TOPIC = '_other';

export interface RouteOptions {
  name: string;
  logger: Logger;
  link: RouteLink;
}

export class Route implements AdapterHost {
  readonly upstream: string;
  readonly sessions = new Set<Session>();
  readonly counters: RouteCounters = { received: 0, routed: 0, consumed: 0, unrouted: {}, deliveries: 0, replies: 0, sessionErrors: {} };
  #adapter!: Adapter;
  readonly #topics = new Map<string, Audience>();
  readonly #everyone = new Audience();
  readonly #traffic = new Map<string, TopicTraffic>();
  readonly #log: Logger;
  readonly #link: RouteLink;
  /** Set when the upstream was removed (reload): its sessions' frames are refused, not routed. */
  retired = false;
  observer: RouteObserver | undefined;

  constructor(options: RouteOptions) {
    this.upstream = options.name;
    this.#log = options.logger;
    this.#link = options.link;
  }

  /** Set once, right after construction (the adapter is built with this route as its host). */
  set adapter(adapter: Adapter) {
    this.#adapter = adapter;
  }

  get adapter(): Adapter {
    return this.#adapter;
  }

  // ── AdapterHost ────────────────────────────────────────────────────────
  subscribers(topic: string): number {
    return this.#topics.get(topic)?.size ?? 0;
  }

  isSubscribed(session: SessionHandle, topic: string): boolean {
    return (session as Session).topics?.has(topic) ?? false;
  }

  liveTopics(): Iterable<string> {
    return this.#topics.keys();
  }

  topicCount(): number {
    return this.#topics.size;
  }

  upstreamOpen(): boolean {
    return this.#link.isOpen();
  }

  apply(outcome: Outcome, origin?: unknown, from?: Session): void {
    this.#apply(outcome, origin, from);
  }

  // ── sessions ───────────────────────────────────────────────────────────
  attach(session: Session): void {
    this.sessions.add(session);
    this.#everyone.add(session);
    this.#applyFrom('attached', () => this.#adapter.attached?.(session));
  }

  /** A session left: its memberships go, and topics left without subscribers are handed to the adapter. */
  detach(session: Session): void {
    if (!this.sessions.delete(session)) return;
    session.detached = true;
    this.#everyone.remove(session);
    // What the adapter decides for a session that left (unsubscribes of its jsonrpc subscriptions) still goes upstream.
    this.#applyFrom('detached', () => this.#adapter.detached(session));
    const abandoned: string[] = [];
    for (const topic of [...session.topics]) if (this.#leave(session, topic)) abandoned.push(topic);
    // A retired upstream is closing: nothing to unsubscribe from.
    if (abandoned.length > 0 && !this.retired) this.#applyFrom('abandoned', () => this.#adapter.abandoned(abandoned));
  }

  /** A frame from a worker; `origin` (an envelope id) comes back with any error about it. */
  fromSession(session: Session, data: Buffer, isBinary: boolean, origin?: unknown): void {
    session.ledger.received++;
    if (this.retired || session.detached) {
      // The session's upstream was removed while its frame was in flight: refused and counted, never routed elsewhere.
      this.#refuse(session, new WshubError('ERR_UPSTREAM_UNAVAILABLE', `upstream ${this.upstream} is no longer configured; message not sent`), origin);
      return;
    }
    let outcome: Outcome;
    try {
      outcome = this.#adapter.fromSession(session, data, isBinary);
    } catch (err) {
      const error = err instanceof WshubError ? err : new WshubError('ERR_BAD_MESSAGE', `adapter failed on a session message: ${(err as Error).message}`, { cause: err });
      this.#refuse(session, error, origin);
      return;
    }
    this.#apply(outcome, origin, session);
  }

  /**
   * An envelope `sub`: refused (the error is returned, nothing changed), or
   * `accepted()` is called — the caller's acknowledgement goes out — before
   * the outcome (and the snapshot it may carry) is applied.
   */
  subscribe(session: Session, topic: string, snapshot: boolean, origin: unknown, accepted: () => void): WshubError | undefined {
    const adapter = this.#adapter;
    if (!adapter.subscribe) {
      return new WshubError('ERR_BAD_MESSAGE', `upstream ${this.upstream} (${adapter.kind}) has no topics to subscribe to; use send/req`);
    }
    const outcome = adapter.subscribe(session, topic, snapshot);
    const refused = outcome.errors?.find((e) => e.session === session);
    if (refused) return refused.error;
    accepted();
    this.#apply(outcome, origin, undefined);
    return undefined;
  }

  unsubscribe(session: Session, topic: string, origin: unknown): void {
    const outcome = this.#adapter.unsubscribe?.(session, topic);
    if (outcome) this.#apply(outcome, origin, undefined);
  }

  // ── upstream ───────────────────────────────────────────────────────────
  /** A message from the upstream (or from whatever source stands in for it); `admit` may hold its publish back. */
  fromUpstream(data: Buffer, isBinary: boolean, admit?: Admit, epoch = 0): void {
    this.counters.received++;
    let outcome: Outcome;
    try {
      outcome = this.#adapter.fromUpstream(data, isBinary);
    } catch (err) {
      // A routing bug must cost one message, never the process or the upstream connection.
      this.#count('ERR_ROUTING_FAILED');
      this.#log.error({ err }, 'routing an upstream message failed; message dropped');
      return;
    }
    let publish = outcome.publish;
    if (admit && (publish?.to === 'topic' || publish?.to === 'everyone')) {
      const held = admit(publish.to === 'topic' ? publish.topic : undefined, publish.to === 'topic' ? publish.seq : undefined);
      if (held) publish = { to: 'none', reason: held };
    }
    if (this.observer?.routed) this.#guard('observer', () => this.observer!.routed!(data, isBinary, publish));
    let delivered = this.#apply(outcome, undefined, undefined);
    for (const part of outcome.broadcast ?? []) delivered += this.#publish({ to: 'everyone' }, new UpstreamMessage(this.upstream, part, false, true, epoch));
    if (publish?.to === 'topic' || publish?.to === 'everyone') delivered += this.#publish(publish, new UpstreamMessage(this.upstream, data, isBinary, outcome.json, epoch));
    if (delivered > 0) this.counters.routed++;
    else if (publish?.to === 'hub') this.counters.consumed++;
    else this.#count(publish?.to === 'none' ? publish.reason : 'ERR_UNROUTED');
  }

  /** A frame sent upstream was dropped later (expired, lost with its connection, queue closed). */
  sendDropped(tag: SendTag, error: WshubError): void {
    const session = tag.session;
    if (session) session.ledger.lostUpstream[error.code] = (session.ledger.lostUpstream[error.code] ?? 0) + 1;
    const outcome = tag.adapterTag === undefined ? undefined : this.#guard('refused', () => this.#adapter.refused?.(tag.adapterTag, error));
    if (outcome) this.#apply(outcome, tag.origin, undefined);
    else if (session && !session.detached) this.#tell(session, error, tag.origin);
  }

  /** A frame sent upstream was handed to the kernel. */
  sendSent(tag: SendTag): void {
    if (tag.adapterTag !== undefined) this.#guard('sent', () => this.#adapter.sent?.(tag.adapterTag));
  }

  /** A connection (re)opened; `only`: the topics it carries. */
  opened(reconnect: boolean, only?: readonly string[]): void {
    this.#applyFrom('opened', () => this.#adapter.opened(reconnect, only));
  }

  /** A connection went down; `scope`: whether it carried the requests, and its topics. */
  down(cause: WshubError | undefined, final: boolean, scope?: { primary: boolean; topics?: readonly string[] }): void {
    this.#applyFrom('down', () => this.#adapter.down(cause, final, scope));
  }

  /** A failback's new connection opened: subscriptions are made again on it. */
  migrate(): void {
    this.#applyFrom('migrate', () => this.#adapter.migrate?.());
  }

  // ── stats ──────────────────────────────────────────────────────────────
  topicStats(): Array<{ topic: string; subscribers: number; groups: number }> {
    return [...this.#topics].map(([topic, a]) => ({ topic, subscribers: a.size, groups: a.groups.size }));
  }

  /** Per-topic traffic since start: the first {@link DEFAULT_MAX_COUNTED_TOPICS} topics seen, the rest under `_other`. */
  topicTraffic(): TopicTraffic[] {
    return [...this.#traffic.values()].map((t) => ({ ...t }));
  }

  // ── internals ──────────────────────────────────────────────────────────
  #publish(publish: Extract<Publish, { to: 'topic' | 'everyone' }>, message: UpstreamMessage): number {
    if (publish.to === 'everyone') return this.#delivered(undefined, message, this.#everyone.deliver(message, undefined));
    const audience = this.#topics.get(publish.topic);
    const also = publish.also === undefined ? undefined : this.#topics.get(publish.also);
    const traffic = this.#trafficOf(publish.topic);
    traffic.messages++;
    traffic.bytes += message.data.length;
    const got = also ? new Set<Session>() : undefined;
    let n = 0;
    if (audience) {
      audience.last = message;
      n = audience.deliver(message, publish.topic, undefined, got);
    }
    if (also) {
      also.last = message;
      n += also.deliver(message, publish.also, got);
    }
    return this.#delivered(traffic, message, n);
  }

  #delivered(traffic: TopicTraffic | undefined, message: UpstreamMessage, n: number): number {
    this.counters.deliveries += n;
    if (traffic) {
      traffic.deliveries += n;
      traffic.deliveredBytes += n * message.data.length;
    }
    return n;
  }

  /** Apply an adapter's decision; returns how many replies went out. */
  #apply(outcome: Outcome, origin: unknown, from: Session | undefined): number {
    for (const m of outcome.join ?? []) this.#join(m.session as Session, m.topic);
    for (const m of outcome.leave ?? []) this.#leave(m.session as Session, m.topic);
    if (outcome.control && outcome.control.length > 0) this.#link.control(outcome.control);
    if (outcome.upstream && outcome.upstream.length > 0) this.#sendUpstream(outcome.upstream, origin, from);
    else if (from && outcome.control && outcome.control.length > 0) from.ledger.forwarded++;
    else if (from) {
      const refusal = outcome.errors?.find((e) => e.session === from)?.error;
      if (refusal) from.ledger.refused[refusal.code] = (from.ledger.refused[refusal.code] ?? 0) + 1;
      else from.ledger.answeredByHub++;
    }
    let replies = 0;
    for (const reply of outcome.replies ?? []) if (this.#reply(reply)) replies++;
    for (const m of outcome.snapshots ?? []) {
      const last = this.#topics.get(m.topic)?.last;
      const session = m.session as Session;
      if (last && !session.closed) {
        session.deliver(last, m.topic);
        this.counters.deliveries++;
      }
    }
    for (const { session, error } of outcome.errors ?? []) this.sessionError(session as Session, error, origin);
    return replies;
  }

  #sendUpstream(frames: readonly UpstreamFrame[], origin: unknown, from: Session | undefined): void {
    let forwarded = false;
    let refusal: WshubError | undefined;
    for (const frame of frames) {
      const session = frame.session as Session | undefined;
      const result = this.#link.send(frame, { session, adapterTag: frame.tag, origin });
      if (result.ok) {
        forwarded = true;
        continue;
      }
      refusal ??= result.error;
      const outcome = frame.tag === undefined ? undefined : this.#guard('refused', () => this.#adapter.refused?.(frame.tag, result.error));
      if (outcome) this.#apply(outcome, origin, undefined);
      else if (session) this.#tell(session, result.error, origin);
    }
    if (!from) return;
    if (forwarded) from.ledger.forwarded++;
    else if (refusal) from.ledger.refused[refusal.code] = (from.ledger.refused[refusal.code] ?? 0) + 1;
  }

  #reply(reply: Reply): boolean {
    const session = reply.session as Session;
    if (session.closed) return false;
    const data = typeof reply.data === 'string' ? Buffer.from(reply.data) : reply.data;
    session.reply(data, reply.isBinary ?? false, reply.answers, reply.topic);
    if (reply.countAs !== undefined) {
      const traffic = this.#trafficOf(reply.countAs);
      traffic.deliveries++;
      traffic.deliveredBytes += data.length;
      this.counters.deliveries++;
    } else this.counters.replies++;
    return true;
  }

  #join(session: Session, topic: string): void {
    if (session.detached) return;
    let audience = this.#topics.get(topic);
    if (!audience) {
      this.#topics.set(topic, (audience = new Audience()));
      if (this.observer?.topic) this.#guard('observer', () => this.observer!.topic!(topic, true));
    }
    if (audience.add(session)) session.topics.add(topic);
  }

  /** True when `topic` lost its last subscriber. */
  #leave(session: Session, topic: string): boolean {
    const audience = this.#topics.get(topic);
    session.topics.delete(topic);
    if (!audience || !audience.remove(session) || audience.size > 0) return false;
    // Keep the entry (and its snapshot) only while someone listens: topics are unbounded otherwise.
    this.#topics.delete(topic);
    if (this.observer?.topic) this.#guard('observer', () => this.observer!.topic!(topic, false));
    return true;
  }

  /** Counted, logged, told to the session. */
  sessionError(session: Session, error: WshubError, origin?: unknown): void {
    this.counters.sessionErrors[error.code] = (this.counters.sessionErrors[error.code] ?? 0) + 1;
    this.#log.warn({ session: session.id, err: error }, 'session sent bad input');
    this.#tell(session, error, origin);
  }

  #refuse(session: Session, error: WshubError, origin: unknown): void {
    session.ledger.refused[error.code] = (session.ledger.refused[error.code] ?? 0) + 1;
    this.sessionError(session, error, origin);
  }

  #tell(session: Session, error: WshubError, origin: unknown): void {
    try {
      session.onError?.(error, origin);
    } catch (err) {
      this.#log.error({ err, session: session.id }, 'a session error handler threw');
    }
  }

  #count(reason: ErrorCode): void {
    this.counters.unrouted[reason] = (this.counters.unrouted[reason] ?? 0) + 1;
  }

  #applyFrom(what: string, decide: () => Outcome | undefined): void {
    const outcome = this.#guard(what, decide);
    if (outcome) this.#apply(outcome, undefined, undefined);
  }

  /** An adapter that throws costs the call, never the process. */
  #guard<T>(what: string, run: () => T): T | undefined {
    try {
      return run();
    } catch (err) {
      this.#log.error({ err, call: what }, 'adapter call threw');
      return undefined;
    }
  }

  #trafficOf(topic: string): TopicTraffic {
    let traffic = this.#traffic.get(topic);
    if (traffic) return traffic;
    const key = this.#traffic.size < DEFAULT_MAX_COUNTED_TOPICS && topic !== OTHER_TOPIC ? topic : OTHER_TOPIC;
    traffic = this.#traffic.get(key);
    if (!traffic) {
      traffic = { topic: key, messages: 0, bytes: 0, deliveries: 0, deliveredBytes: 0 };
      this.#traffic.set(key, traffic);
    }
    return traffic;
  }
}

export type { Membership };
