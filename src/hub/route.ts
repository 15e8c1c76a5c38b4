/**
 * The router of one upstream: its sessions, topic → subscribers, groups,
 * snapshots, and the fan-out that frames each message once.
 *
 * Audience of a message: every ungrouped subscriber gets a copy; every group
 * gets exactly one copy, delivered to the member with the smallest backlog
 * (round-robin among equals, so an idle group spreads evenly).
 */
import type { Adapter, AdapterContext } from '../adapters/types.js';
import type { WshubError } from '../errors.js';
import type { Logger } from '../observe/log.js';
import type { SendResult } from '../upstream/types.js';
import { frameMessage, type Frame } from './frame.js';
import type { Session } from './session.js';

class Audience {
  readonly solo = new Set<Session>();
  readonly groups = new Map<string, { members: Session[]; next: number }>();
  last: Frame | undefined;

  get size(): number {
    let n = this.solo.size;
    for (const g of this.groups.values()) n += g.members.length;
    return n;
  }

  add(session: Session): boolean {
    if (session.group === undefined) {
      if (this.solo.has(session)) return false;
      this.solo.add(session);
      return true;
    }
    let group = this.groups.get(session.group);
    if (!group) {
      group = { members: [], next: 0 };
      this.groups.set(session.group, group);
    }
    if (group.members.includes(session)) return false;
    group.members.push(session);
    return true;
  }

  remove(session: Session): boolean {
    if (session.group === undefined) return this.solo.delete(session);
    const group = this.groups.get(session.group);
    if (!group) return false;
    const i = group.members.indexOf(session);
    if (i === -1) return false;
    group.members.splice(i, 1);
    if (group.members.length === 0) this.groups.delete(session.group);
    return true;
  }

  /** Deliver to every solo member and one member per group; returns the number of deliveries. */
  deliver(frame: Frame, topic: string | undefined): number {
    let n = 0;
    for (const session of this.solo) {
      session.deliver(frame, topic);
      n++;
    }
    for (const group of this.groups.values()) {
      const pick = pickMember(group);
      if (pick) {
        pick.deliver(frame, topic);
        n++;
      }
    }
    return n;
  }
}

function pickMember(group: { members: Session[]; next: number }): Session | undefined {
  const { members } = group;
  const count = members.length;
  if (count === 0) return undefined;
  let best: Session | undefined;
  let bestBacklog = Infinity;
  let bestIndex = 0;
  for (let k = 0; k < count; k++) {
    const i = (group.next + k) % count;
    const member = members[i]!;
    const backlog = member.backlogBytes;
    if (backlog < bestBacklog) {
      best = member;
      bestBacklog = backlog;
      bestIndex = i;
      if (backlog === 0) break;
    }
  }
  group.next = (bestIndex + 1) % count;
  return best;
}

export interface RouteCounters {
  messagesIn: number;
  bytesIn: number;
  /** Frame deliveries to sessions (one message to 16 sessions counts 16). */
  deliveries: number;
  /** Upstream messages no session was subscribed to. */
  unrouted: number;
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
  send: (data: Buffer | string, isBinary: boolean, session: Session | undefined) => SendResult;
  isOpen: () => boolean;
}

/** Routing state of one upstream; implements the primitives adapters use. */
export class Route implements AdapterContext {
  readonly upstream: string;
  readonly sessions = new Set<Session>();
  adapter!: Adapter;
  readonly counters: RouteCounters = { messagesIn: 0, bytesIn: 0, deliveries: 0, unrouted: 0, sessionErrors: {} };
  readonly #topics = new Map<string, Audience>();
  readonly #traffic = new Map<string, TopicTraffic>();
  readonly #everyone = new Audience();
  readonly #log: Logger;
  readonly #send: RouteOptions['send'];
  readonly #isOpen: RouteOptions['isOpen'];

  constructor(options: RouteOptions) {
    this.upstream = options.name;
    this.#log = options.logger;
    this.#send = options.send;
    this.#isOpen = options.isOpen;
  }

  /** Set when the upstream was removed (reload): its sessions' messages are refused, not routed. */
  retired = false;

  attach(session: Session): void {
    session.route = this;
    this.sessions.add(session);
    this.#everyone.add(session);
    this.adapter.onSessionOpen?.(session);
  }

  detach(session: Session): void {
    if (session.route === this) session.route = undefined;
    if (!this.sessions.delete(session)) return;
    this.#everyone.remove(session);
    this.adapter.onSessionClose(session);
    for (const topic of [...session.topics]) {
      // A retired upstream is closing: nothing to unsubscribe from.
      if (this.removeSubscriber(topic, session) && !this.retired) this.adapter.onTopicAbandoned(topic);
    }
  }

  /** Called for every upstream message. */
  fromUpstream(data: Buffer, isBinary: boolean): void {
    this.counters.messagesIn++;
    this.counters.bytesIn += data.length;
    this.adapter.onUpstreamMessage(data, isBinary);
  }

  // ── AdapterContext ─────────────────────────────────────────────────────
  sendUpstream(data: Buffer | string, isBinary: boolean, session: Session | undefined): SendResult {
    return this.#send(data, isBinary, session);
  }

  reply(session: Session, data: Buffer | string, isBinary = false, topic?: string): void {
    const payload = typeof data === 'string' ? Buffer.from(data) : data;
    session.deliver(frameMessage(payload, isBinary), topic, true);
  }

  publish(topic: string, data: Buffer, isBinary: boolean): void {
    const audience = this.#topics.get(topic);
    const traffic = this.#trafficOf(topic);
    traffic.messages++;
    traffic.bytes += data.length;
    if (!audience) {
      this.counters.unrouted++;
      return;
    }
    const frame = frameMessage(data, isBinary);
    audience.last = frame;
    const n = audience.deliver(frame, topic);
    this.counters.deliveries += n;
    traffic.deliveries += n;
    traffic.deliveredBytes += n * data.length;
    if (n === 0) this.counters.unrouted++;
  }

  /** Per-topic traffic since start: the first {@link DEFAULT_MAX_COUNTED_TOPICS} topics seen, the rest under `_other`. */
  topicTraffic(): TopicTraffic[] {
    return [...this.#traffic.values()].map((t) => ({ ...t }));
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

  broadcast(data: Buffer, isBinary: boolean, json?: boolean): void {
    const frame = frameMessage(data, isBinary);
    if (json !== undefined) frame.json = json;
    const n = this.#everyone.deliver(frame, undefined);
    this.counters.deliveries += n;
    if (n === 0) this.counters.unrouted++;
  }

  addSubscriber(topic: string, session: Session, snapshot = session.wantsSnapshot): boolean {
    let audience = this.#topics.get(topic);
    const first = audience === undefined || audience.size === 0;
    if (!audience) {
      audience = new Audience();
      this.#topics.set(topic, audience);
    }
    if (audience.add(session)) {
      session.topics.add(topic);
      if (snapshot && audience.last) session.deliver(audience.last, topic);
    }
    return first;
  }

  removeSubscriber(topic: string, session: Session): boolean {
    const audience = this.#topics.get(topic);
    if (!audience) return false;
    session.topics.delete(topic);
    if (!audience.remove(session)) return false;
    if (audience.size > 0) return false;
    // Keep the entry (and its snapshot) only while someone listens: topics are unbounded otherwise.
    this.#topics.delete(topic);
    return true;
  }

  liveTopics(): Iterable<string> {
    return this.#topics.keys();
  }

  subscriberCount(topic: string): number {
    return this.#topics.get(topic)?.size ?? 0;
  }

  upstreamOpen(): boolean {
    return this.#isOpen();
  }

  topicCount(): number {
    return this.#topics.size;
  }

  hasSubscribers(topic: string): boolean {
    return (this.#topics.get(topic)?.size ?? 0) > 0;
  }

  sessionError(session: Session, error: WshubError): void {
    this.counters.sessionErrors[error.code] = (this.counters.sessionErrors[error.code] ?? 0) + 1;
    session.onError?.(error);
    this.#log.warn({ upstream: this.upstream, session: session.id, err: error.toJSON() }, 'session sent bad input');
  }

  topicStats(): Array<{ topic: string; subscribers: number; groups: number }> {
    return [...this.#topics].map(([topic, a]) => ({ topic, subscribers: a.size, groups: a.groups.size }));
  }
}
