/**
 * `json`: upstreams that speak JSON with a topic field and subscribe /
 * unsubscribe messages (Binance-, OKX-, Coinbase-style feeds).
 *
 * - Upstream messages: the topic is read from the configured field path
 *   (`stream`, `arg.channel`); a message with a topic goes to that topic's
 *   subscribers; a message whose id is one the hub is waiting for is an
 *   answer and goes back to the session that asked, with the session's own
 *   id spliced in (every other byte as the upstream sent it); anything else
 *   (notices, non-JSON, binary) goes to every session.
 * - Session frames matching the subscribe/unsubscribe templates are
 *   deduplicated (topics.ts): one upstream subscribe per topic, each session
 *   answered with its own id, in the upstream's words. Other frames carrying
 *   an id are requests: the id (a string or a number, at most 256
 *   characters; anything else is refused at the door) is rewritten to a
 *   hub-unique one and the answer routed back. At most `maxInFlight` requests
 *   per session wait for answers. Frames without an id, non-JSON text and
 *   binary go upstream verbatim (transparent mode promises the upstream's own
 *   behaviour, errors included).
 * - A request whose answer cannot come (the upstream dropped after it was
 *   written, `requestTimeoutMs` passed, or it was refused before being sent)
 *   is answered with a session error (`ERR_UPSTREAM_UNAVAILABLE`,
 *   `ERR_REQUEST_TIMEOUT`, the refusal's code): envelope sessions get an
 *   `error` frame for their `req`; this adapter knows no error format of the
 *   upstream's to answer a transparent worker with, so there it is counted
 *   and logged. A request still queued when the upstream drops is sent on
 *   reconnect, not failed.
 */
import { WshubError } from '../errors.js';
import { objectMembers, spanText, splice } from './json-scan.js';
import { FrameTemplate, getPath } from './template.js';
import { TopicBook, type JsonTopicStats } from './topics.js';
import { merge } from './outcome.js';
import type { Adapter, AdapterHost, ControlIntent, Outcome, SessionHandle, UpstreamFrame } from './types.js';

export const DEFAULT_JSON_ACK = '{"result":null,"id":{id}}';
export const DEFAULT_JSON_ID_FIELD = 'id';
export const DEFAULT_JSON_ERROR_FIELD = 'error';
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
export const DEFAULT_JSON_MAX_IN_FLIGHT = 1024;
/** Longest request id accepted (in characters, as JSON text), like the envelope's. */
export const MAX_REQUEST_ID_CHARS = 256;
/** Hub ids of abandoned requests remembered, so their late answers are recognized and dropped. */
const RETIRED_IDS_KEPT = 10_000;

export interface JsonAdapterOptions {
  /** Field path of the topic in upstream messages, dotted (`arg.channel`). */
  topic: string;
  /** Subscribe frame template, e.g. `{"method":"SUBSCRIBE","params":["{topic}"],"id":{id}}`. */
  subscribe: string;
  /** Unsubscribe frame template. */
  unsubscribe: string;
  /** Acknowledgement the hub sends itself when no upstream answer applies (topic already live). @default '{"result":null,"id":{id}}' */
  ack?: string;
  /** Field of request ids. @default 'id' */
  idField?: string;
  /** An answer with this field present and not null/false is a refusal. @default 'error' */
  errorField?: string;
  /** @default 30000 */
  requestTimeoutMs?: number;
  /** Requests one session may have waiting for answers. @default 1024 */
  maxInFlight?: number;
  /** Dotted path of a per-topic sequence number in messages (lets a failback deduplicate exactly). */
  sequenceField?: string;
}

interface Request {
  readonly session: SessionHandle;
  /** The worker's id, exactly as it wrote it. */
  readonly idText: string;
  readonly deadline: number;
  /** Handed to the kernel: if the upstream drops now, the answer cannot come. */
  sent: boolean;
}

export class JsonAdapter implements Adapter {
  readonly kind = 'json' as const;
  readonly #host: AdapterHost;
  readonly #topicPath: string[];
  readonly #seqPath: string[] | undefined;
  readonly #idField: string;
  readonly #subscribe: FrameTemplate;
  readonly #unsubscribe: FrameTemplate;
  readonly #timeoutMs: number;
  readonly #maxInFlight: number;
  readonly #book: TopicBook;
  readonly #requests = new Map<number, Request>();
  readonly #inFlight = new Map<SessionHandle, number>();
  readonly #retired = new Set<number>();
  #sweeper: NodeJS.Timeout | undefined;
  #orphanAnswers = 0;

  constructor(host: AdapterHost, options: JsonAdapterOptions) {
    this.#host = host;
    this.#topicPath = options.topic.split('.');
    this.#seqPath = options.sequenceField?.split('.');
    this.#idField = options.idField ?? DEFAULT_JSON_ID_FIELD;
    this.#subscribe = new FrameTemplate(options.subscribe, `upstreams.${host.upstream}.subscribe`);
    this.#unsubscribe = new FrameTemplate(options.unsubscribe, `upstreams.${host.upstream}.unsubscribe`);
    this.#timeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.#maxInFlight = options.maxInFlight ?? DEFAULT_JSON_MAX_IN_FLIGHT;
    this.#book = new TopicBook(host, {
      subscribe: this.#subscribe,
      unsubscribe: this.#unsubscribe,
      ack: options.ack ?? DEFAULT_JSON_ACK,
      idField: this.#idField,
      errorField: options.errorField ?? DEFAULT_JSON_ERROR_FIELD,
      timeoutMs: this.#timeoutMs,
      newId: () => this.#newId(),
      armSweeper: () => this.#ensureSweeper(),
    });
  }

  fromSession(session: SessionHandle, data: Buffer, isBinary: boolean): Outcome {
    const message = isBinary ? undefined : parseJson(data);
    if (message === undefined || typeof message !== 'object' || message === null || Array.isArray(message)) {
      return verbatim(session, data, isBinary);
    }
    const sub = this.#subscribe.match(message);
    if (sub) return this.#book.sessionSubscribe(session, sub.topics, idTextOf(sub.id));
    const unsub = this.#unsubscribe.match(message);
    if (unsub) return this.#book.sessionUnsubscribe(session, unsub.topics, idTextOf(unsub.id));
    const id = (message as Record<string, unknown>)[this.#idField];
    if (id === undefined || id === null) return verbatim(session, data, false);
    const span = objectMembers(data)?.get(this.#idField);
    if ((typeof id !== 'string' && typeof id !== 'number') || !span || span[1] - span[0] > MAX_REQUEST_ID_CHARS) {
      return refuse(session, new WshubError('ERR_BAD_MESSAGE', `request ${this.#idField} must be a string or a number of at most ${MAX_REQUEST_ID_CHARS} characters; frame not sent`));
    }
    const waiting = this.#inFlight.get(session) ?? 0;
    if (waiting >= this.#maxInFlight) {
      return refuse(session, new WshubError('ERR_TOO_MANY_REQUESTS', `${waiting} requests of this session already wait for answers from ${this.#host.upstream} (maxInFlight=${this.#maxInFlight})`));
    }
    const hubId = this.#newId();
    this.#requests.set(hubId, { session, idText: spanText(data, span), deadline: Date.now() + this.#timeoutMs, sent: false });
    this.#inFlight.set(session, waiting + 1);
    this.#ensureSweeper();
    return { upstream: [{ data: splice(data, span, String(hubId)), isBinary: false, session, tag: hubId }] };
  }

  fromUpstream(data: Buffer, isBinary: boolean): Outcome {
    const message = isBinary ? undefined : parseJson(data);
    if (message === undefined || message === null || typeof message !== 'object') return { publish: { to: 'everyone' }, json: false };
    const topic = getPath(message, this.#topicPath);
    if (typeof topic === 'string' || typeof topic === 'number') {
      const seq = this.#seqPath ? getPath(message, this.#seqPath) : undefined;
      return { publish: { to: 'topic', topic: String(topic), ...(typeof seq === 'number' ? { seq } : {}) }, json: true };
    }
    const id = (message as Record<string, unknown>)[this.#idField];
    if (typeof id === 'number') {
      const request = this.#requests.get(id);
      if (request) return this.#answer(id, request, data);
      const answered = this.#book.upstreamAnswer(id, data, message as Record<string, unknown>);
      if (answered) return answered;
      if (this.#retired.has(id)) {
        // An answer nobody waits for any more (asker left, timed out): never to other sessions.
        this.#orphanAnswers++;
        return { publish: { to: 'none', reason: 'ERR_ORPHAN_ANSWER' } };
      }
    }
    return { publish: { to: 'everyone' }, json: true };
  }

  detached(session: SessionHandle): undefined {
    for (const [hubId, request] of this.#requests) if (request.session === session) this.#finish(hubId, request);
    this.#book.forget(session);
    return undefined;
  }

  abandoned(topics: readonly string[]): Outcome | undefined {
    return this.#book.abandoned(topics);
  }

  opened(_reconnect: boolean, topics?: readonly string[]): Outcome | undefined {
    return this.#book.replay(topics);
  }

  down(_cause: WshubError | undefined, final: boolean, scope?: { primary: boolean; topics?: readonly string[] }): Outcome | undefined {
    const outcome: Outcome = { errors: [] };
    if (scope && !scope.primary) return this.#book.down(scope.topics);
    for (const [hubId, request] of this.#requests) {
      // A request still waiting to be written goes out on the next connection; one already written cannot be answered.
      if (!request.sent && !final) continue;
      this.#finish(hubId, request);
      outcome.errors!.push({
        session: request.session,
        error: new WshubError('ERR_UPSTREAM_UNAVAILABLE', `upstream ${this.#host.upstream} ${final ? 'closed' : 'dropped'} with request ${request.idText} in flight`, { details: { requestId: request.idText } }),
      });
    }
    return merge(outcome, this.#book.down(scope?.topics));
  }

  renderControl(kind: ControlIntent['kind'], parts: readonly ControlIntent[]): UpstreamFrame | undefined {
    return this.#book.render(kind, parts);
  }

  get topicsPerFrame(): number {
    return this.#book.topicsPerFrame;
  }

  controlDropped(parts: readonly ControlIntent[]): Outcome | undefined {
    return this.#book.dropped(parts);
  }

  pendingSubscriptions(): number {
    return this.#book.pendingSubscribes();
  }

  /** A failback's new connection: every topic is subscribed on it too (replies to the old one's subscribes came long ago). */
  migrate(): Outcome | undefined {
    return this.#book.replay();
  }

  sent(tag: unknown): void {
    const request = typeof tag === 'number' ? this.#requests.get(tag) : undefined;
    if (request) request.sent = true;
  }

  refused(tag: unknown, error: WshubError): Outcome | undefined {
    if (typeof tag !== 'number') return undefined;
    const request = this.#requests.get(tag);
    if (request) {
      this.#finish(tag, request);
      return { errors: [{ session: request.session, error }] };
    }
    return this.#book.refused(tag);
  }

  /** Envelope `sub`: the same dedup as a session's own subscribe frame, acknowledged by the envelope layer. */
  subscribe(session: SessionHandle, topic: string, snapshot: boolean): Outcome {
    return this.#book.envelopeSubscribe(session, topic, snapshot);
  }

  unsubscribe(session: SessionHandle, topic: string): Outcome {
    return this.#book.sessionUnsubscribe(session, [topic], undefined);
  }

  stats(): Record<string, unknown> {
    const book: JsonTopicStats = this.#book.stats();
    return { pendingRequests: this.#requests.size, ...book, orphanAnswers: this.#orphanAnswers };
  }

  #answer(hubId: number, request: Request, data: Buffer): Outcome {
    this.#finish(hubId, request);
    const span = objectMembers(data)?.get(this.#idField);
    if (request.session.closed || !span) {
      this.#orphanAnswers++;
      return { publish: { to: 'none', reason: 'ERR_ORPHAN_ANSWER' } };
    }
    return { replies: [{ session: request.session, data: splice(data, span, request.idText), answers: request.idText }] };
  }

  /** The request is over (answered, failed, or its session left): its id is retired so a late answer is recognized. */
  #finish(hubId: number, request: Request): void {
    if (!this.#requests.delete(hubId)) return;
    const left = (this.#inFlight.get(request.session) ?? 1) - 1;
    if (left > 0) this.#inFlight.set(request.session, left);
    else this.#inFlight.delete(request.session);
    this.#retired.add(hubId);
    if (this.#retired.size > RETIRED_IDS_KEPT) {
      const oldest = this.#retired.values().next().value;
      if (oldest !== undefined) this.#retired.delete(oldest);
    }
  }

  #newId(): number {
    return this.#book.nextId();
  }

  #ensureSweeper(): void {
    if (this.#sweeper) return;
    this.#sweeper = setInterval(() => this.#sweep(), Math.min(1000, Math.max(20, Math.floor(this.#timeoutMs / 4))));
    this.#sweeper.unref();
  }

  #sweep(): void {
    const now = Date.now();
    const outcome: Outcome = { errors: [] };
    for (const [hubId, request] of this.#requests) {
      if (request.deadline > now) continue;
      this.#finish(hubId, request);
      outcome.errors!.push({
        session: request.session,
        error: new WshubError('ERR_REQUEST_TIMEOUT', `upstream ${this.#host.upstream} did not answer request ${request.idText} within ${this.#timeoutMs} ms`, { details: { requestId: request.idText } }),
      });
    }
    const expired = this.#book.sweep(now);
    if (expired) Object.assign(outcome, { ...expired, errors: [...outcome.errors!, ...(expired.errors ?? [])] });
    if (outcome.errors!.length > 0 || expired) this.#host.apply(outcome);
    if (this.#requests.size === 0 && !this.#book.waiting && this.#sweeper) {
      clearInterval(this.#sweeper);
      this.#sweeper = undefined;
    }
  }
}

function verbatim(session: SessionHandle, data: Buffer, isBinary: boolean): Outcome {
  return { upstream: [{ data, isBinary, session }] };
}

function refuse(session: SessionHandle, error: WshubError): Outcome {
  return { errors: [{ session, error }] };
}

function idTextOf(id: string | number | null | undefined): string | undefined {
  return id === undefined ? undefined : JSON.stringify(id);
}

/** JSON objects and arrays only (a cheap first-byte check spares a parse of everything else). */
export function parseJson(data: Buffer): unknown {
  let i = 0;
  while (i < data.length && (data[i] === 0x20 || data[i] === 0x0a || data[i] === 0x0d || data[i] === 0x09)) i++;
  if (data[i] !== 0x7b && data[i] !== 0x5b) return undefined;
  try {
    return JSON.parse(data.toString('utf8')) as unknown;
  } catch {
    return undefined;
  }
}
