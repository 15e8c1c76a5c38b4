/**
 * `json`: upstreams that speak JSON with a topic field and subscribe /
 * unsubscribe messages (Binance-, OKX-, Coinbase-style feeds).
 *
 * - Upstream messages: the topic is read from the configured field path
 *   (`stream`, `arg.channel`); a message with a topic goes to that topic's
 *   subscribers; a message whose id is one the hub is waiting for is a
 *   response and goes back to the session that asked, with the session's own
 *   id; anything else (notices, non-JSON, binary) goes to every session.
 * - Session messages matching the subscribe/unsubscribe templates are
 *   deduplicated: the first subscriber of a topic makes the hub subscribe
 *   upstream, the last one leaving (or exiting) unsubscribes; every session
 *   gets its acknowledgement with its own id. Other messages carrying an id are
 *   requests: the id is rewritten to a hub-unique one and the answer routed
 *   back. Messages without an id, non-JSON text and binary go upstream verbatim
 *   (transparent mode promises the upstream's own behaviour, errors included).
 * - After a reconnect every live topic is subscribed again; those acks are
 *   the hub's own and go to no one (except sessions still waiting for theirs).
 * - A request whose answer never comes (the upstream dropped, or
 *   `requestTimeoutMs` passed) is counted as a session error
 *   (`ERR_UPSTREAM_UNAVAILABLE`, `ERR_REQUEST_TIMEOUT`): this adapter knows no
 *   error format of the upstream's to answer with.
 */
import { WshubError } from '../errors.js';
import type { Session } from '../hub/session.js';
import { FrameTemplate, getPath, type JsonId } from './template.js';
import type { Adapter, AdapterContext } from './types.js';

export const DEFAULT_JSON_ACK = '{"result":null,"id":{id}}';
export const DEFAULT_JSON_ID_FIELD = 'id';
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
/** Hub ids of abandoned requests remembered, so their late answers are recognized and dropped. */
const RETIRED_IDS_KEPT = 10_000;

export interface JsonAdapterOptions {
  /** Field path of the topic in upstream messages, dotted (`arg.channel`). */
  topic: string;
  /** Subscribe frame template, e.g. `{"method":"SUBSCRIBE","params":["{topic}"],"id":{id}}`. */
  subscribe: string;
  /** Unsubscribe frame template. */
  unsubscribe: string;
  /** Acknowledgement the hub sends itself when no upstream answer applies (topic already subscribed). @default '{"result":null,"id":{id}}' */
  ack?: string;
  /** Field of request ids. @default 'id' */
  idField?: string;
  /** @default 30000 */
  requestTimeoutMs?: number;
}

/** A session's subscribe/unsubscribe frame waiting for upstream acks before it is answered. */
interface Join {
  session: Session;
  id: JsonId | null | undefined;
  remaining: number;
  answer: Record<string, unknown> | undefined;
}

interface TopicState {
  acked: boolean;
  hubId: number | undefined;
  waiting: Join[];
}

interface PendingRequest {
  kind: 'subscribe' | 'unsubscribe' | 'request';
  topics: string[];
  join: Join | undefined;
  deadline: number;
}

export class JsonAdapter implements Adapter {
  readonly kind = 'json' as const;
  readonly #ctx: AdapterContext;
  readonly #topicPath: string[];
  readonly #idField: string;
  readonly #subscribe: FrameTemplate;
  readonly #unsubscribe: FrameTemplate;
  readonly #ackTemplate: string;
  readonly #timeoutMs: number;
  readonly #topics = new Map<string, TopicState>();
  readonly #pending = new Map<number, PendingRequest>();
  #nextId = 1;
  #sweeper: NodeJS.Timeout | undefined;
  #upstreamSubscribes = 0;
  readonly #retired = new Set<number>();
  #orphanAnswers = 0;
  #upstreamUnsubscribes = 0;

  constructor(ctx: AdapterContext, options: JsonAdapterOptions) {
    this.#ctx = ctx;
    this.#topicPath = options.topic.split('.');
    this.#idField = options.idField ?? DEFAULT_JSON_ID_FIELD;
    this.#subscribe = new FrameTemplate(options.subscribe, `upstreams.${ctx.upstream}.subscribe`);
    this.#unsubscribe = new FrameTemplate(options.unsubscribe, `upstreams.${ctx.upstream}.unsubscribe`);
    this.#ackTemplate = options.ack ?? DEFAULT_JSON_ACK;
    this.#timeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  }

  onSessionMessage(session: Session, data: Buffer, isBinary: boolean): void {
    const message = isBinary ? undefined : parseJson(data);
    if (message === undefined || typeof message !== 'object' || message === null || Array.isArray(message)) {
      this.#ctx.sendUpstream(data, isBinary, session);
      return;
    }
    const sub = this.#subscribe.match(message);
    if (sub) return this.#sessionSubscribe(session, sub.topics, sub.id);
    const unsub = this.#unsubscribe.match(message);
    if (unsub) return this.#sessionUnsubscribe(session, unsub.topics, unsub.id);
    const record = message as Record<string, unknown>;
    const id = record[this.#idField];
    if (id === undefined || id === null) {
      this.#ctx.sendUpstream(data, false, session);
      return;
    }
    const hubId = this.#newId();
    const join: Join = { session, id: id as JsonId, remaining: 1, answer: undefined };
    this.#pending.set(hubId, { kind: 'request', topics: [], join, deadline: Date.now() + this.#timeoutMs });
    this.#ensureSweeper();
    record[this.#idField] = hubId;
    this.#ctx.sendUpstream(JSON.stringify(record), false, session);
  }

  onSessionClose(session: Session): void {
    for (const [hubId, pending] of this.#pending) {
      if (pending.join?.session === session && pending.kind === 'request') {
        this.#pending.delete(hubId);
        this.#retire(hubId);
      }
    }
    for (const state of this.#topics.values()) {
      if (state.waiting.length > 0) state.waiting = state.waiting.filter((j) => j.session !== session);
    }
  }

  onTopicAbandoned(topic: string): void {
    this.#topics.delete(topic);
    if (this.#ctx.upstreamOpen()) this.#sendFrames(this.#unsubscribe, 'unsubscribe', [topic], undefined);
  }

  onUpstreamMessage(data: Buffer, isBinary: boolean): void {
    const message = isBinary ? undefined : parseJson(data);
    if (message === undefined || message === null || typeof message !== 'object') {
      this.#ctx.broadcast(data, isBinary);
      return;
    }
    const topic = getPath(message, this.#topicPath);
    if (typeof topic === 'string' || typeof topic === 'number') {
      this.#ctx.publish(String(topic), data, isBinary, true);
      return;
    }
    const id = (message as Record<string, unknown>)[this.#idField];
    if (typeof id === 'number') {
      const pending = this.#pending.get(id);
      if (pending) {
        this.#pending.delete(id);
        this.#retire(id);
        this.#answer(pending, message as Record<string, unknown>);
        return;
      }
      if (this.#retired.has(id)) {
        // An answer nobody waits for any more (asker left, timed out, reconnect replay): never to other sessions.
        this.#orphanAnswers++;
        return;
      }
    }
    this.#ctx.broadcast(data, isBinary, true);
  }

  onUpstreamOpen(): void {
    const live = [...this.#ctx.liveTopics()];
    if (live.length === 0) return;
    for (const topic of live) {
      const state = this.#topics.get(topic) ?? { acked: false, hubId: undefined, waiting: [] };
      state.acked = false;
      this.#topics.set(topic, state);
    }
    this.#sendFrames(this.#subscribe, 'subscribe', live, undefined);
  }

  onUpstreamDown(): void {
    for (const [hubId, pending] of this.#pending) {
      this.#pending.delete(hubId);
      this.#retire(hubId);
      if (pending.kind === 'request' && pending.join) {
        this.#ctx.sessionError(pending.join.session, new WshubError('ERR_UPSTREAM_UNAVAILABLE', `upstream ${this.#ctx.upstream} dropped with request ${String(pending.join.id)} in flight`, { details: { requestId: pending.join.id } }));
      } else if (pending.kind === 'unsubscribe' && pending.join) {
        // The upstream forgets subscriptions when the connection goes; the unsubscribe is done.
        this.#complete(pending.join, undefined);
      }
    }
    for (const state of this.#topics.values()) {
      state.acked = false;
      state.hubId = undefined;
    }
  }

  /** Envelope `sub`: the same dedup as a session's own subscribe frame, acknowledged by the envelope layer. */
  subscribe(session: Session, topic: string, snapshot: boolean): WshubError | undefined {
    const first = this.#ctx.addSubscriber(topic, session, snapshot);
    if (first || !this.#topics.has(topic)) {
      this.#topics.set(topic, { acked: false, hubId: undefined, waiting: [] });
      if (this.#ctx.upstreamOpen()) this.#sendFrames(this.#subscribe, 'subscribe', [topic], undefined);
    }
    return undefined;
  }

  unsubscribe(session: Session, topic: string): void {
    if (this.#ctx.removeSubscriber(topic, session)) this.onTopicAbandoned(topic);
  }

  stats(): Record<string, unknown> {
    return {
      pendingRequests: this.#pending.size,
      upstreamTopics: this.#topics.size,
      upstreamSubscribes: this.#upstreamSubscribes,
      upstreamUnsubscribes: this.#upstreamUnsubscribes,
      orphanAnswers: this.#orphanAnswers,
    };
  }

  #sessionSubscribe(session: Session, topics: string[], id: JsonId | null | undefined): void {
    const join: Join = { session, id, remaining: 0, answer: undefined };
    const fresh: string[] = [];
    for (const topic of topics) {
      const first = this.#ctx.addSubscriber(topic, session);
      const state = this.#topics.get(topic);
      if (first || !state) {
        fresh.push(topic);
        this.#topics.set(topic, { acked: false, hubId: undefined, waiting: [join] });
        join.remaining++;
      } else if (!state.acked) {
        state.waiting.push(join);
        join.remaining++;
      }
    }
    if (fresh.length > 0 && this.#ctx.upstreamOpen()) this.#sendFrames(this.#subscribe, 'subscribe', fresh, undefined);
    if (join.remaining === 0) this.#complete(join, undefined);
  }

  #sessionUnsubscribe(session: Session, topics: string[], id: JsonId | null | undefined): void {
    const last: string[] = [];
    for (const topic of topics) {
      if (this.#ctx.removeSubscriber(topic, session)) {
        last.push(topic);
        this.#topics.delete(topic);
      }
    }
    const join: Join = { session, id, remaining: 0, answer: undefined };
    if (last.length > 0 && this.#ctx.upstreamOpen()) {
      join.remaining = this.#sendFrames(this.#unsubscribe, 'unsubscribe', last, join);
    }
    if (join.remaining === 0) this.#complete(join, undefined);
  }

  /** Send subscribe/unsubscribe frames for `topics`; returns how many frames (acks to wait for) were sent. */
  #sendFrames(template: FrameTemplate, kind: 'subscribe' | 'unsubscribe', topics: string[], join: Join | undefined): number {
    const batches = template.multiTopic ? [topics] : topics.map((t) => [t]);
    for (const batch of batches) {
      const hubId = this.#newId();
      this.#pending.set(hubId, { kind, topics: batch, join, deadline: Date.now() + this.#timeoutMs });
      if (kind === 'subscribe') {
        for (const topic of batch) {
          const state = this.#topics.get(topic);
          if (state) state.hubId = hubId;
        }
        this.#upstreamSubscribes++;
      } else this.#upstreamUnsubscribes++;
      this.#ctx.sendUpstream(template.render(batch, hubId), false, undefined);
    }
    this.#ensureSweeper();
    return batches.length;
  }

  #answer(pending: PendingRequest, message: Record<string, unknown>): void {
    if (pending.kind === 'subscribe') {
      for (const topic of pending.topics) {
        const state = this.#topics.get(topic);
        if (!state) continue;
        state.acked = true;
        const waiting = state.waiting;
        state.waiting = [];
        for (const join of waiting) {
          join.remaining--;
          join.answer = message;
          if (join.remaining === 0) this.#complete(join, message);
        }
      }
      return;
    }
    if (pending.join) {
      pending.join.remaining--;
      if (pending.join.remaining === 0) this.#complete(pending.join, message);
    }
  }

  /** Answer a session's frame with its own id: the upstream's answer when there is one, else the ack template. */
  #complete(join: Join, answer: Record<string, unknown> | undefined): void {
    if (join.id === undefined || join.session.closed) return;
    const source = answer ?? join.answer;
    const text = source
      ? JSON.stringify({ ...source, [this.#idField]: join.id })
      : this.#ackTemplate.replace('{id}', JSON.stringify(join.id));
    this.#ctx.reply(join.session, text);
  }

  /** Remember a hub id whose answer, if it still comes, belongs to no one (bounded: the oldest are forgotten). */
  #retire(hubId: number): void {
    this.#retired.add(hubId);
    if (this.#retired.size > RETIRED_IDS_KEPT) {
      const oldest = this.#retired.values().next().value;
      if (oldest !== undefined) this.#retired.delete(oldest);
    }
  }

  #newId(): number {
    const id = this.#nextId;
    this.#nextId = this.#nextId >= Number.MAX_SAFE_INTEGER ? 1 : this.#nextId + 1;
    return id;
  }

  #ensureSweeper(): void {
    if (this.#sweeper) return;
    this.#sweeper = setInterval(() => this.#sweep(), Math.min(1000, this.#timeoutMs));
    this.#sweeper.unref();
  }

  #sweep(): void {
    const now = Date.now();
    for (const [hubId, pending] of this.#pending) {
      if (pending.deadline > now) continue;
      this.#pending.delete(hubId);
      this.#retire(hubId);
      if (pending.join && pending.kind === 'request') {
        this.#ctx.sessionError(pending.join.session, new WshubError('ERR_REQUEST_TIMEOUT', `upstream ${this.#ctx.upstream} did not answer request ${String(pending.join.id)} within ${this.#timeoutMs} ms`, { details: { requestId: pending.join.id } }));
      }
    }
    if (this.#pending.size === 0 && this.#sweeper) {
      clearInterval(this.#sweeper);
      this.#sweeper = undefined;
    }
  }
}

function parseJson(data: Buffer): unknown {
  // Cheap pre-check: only objects and arrays are worth parsing.
  let i = 0;
  while (i < data.length && (data[i] === 0x20 || data[i] === 0x0a || data[i] === 0x0d || data[i] === 0x09)) i++;
  if (data[i] !== 0x7b && data[i] !== 0x5b) return undefined;
  try {
    return JSON.parse(data.toString('utf8')) as unknown;
  } catch {
    return undefined;
  }
}
