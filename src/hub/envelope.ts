/**
 * Envelope mode (`/hub`, subprotocol `wshub.v1`): one connection, any number
 * of upstreams and topics, with the hub's own notices — upstream `state` with
 * gap times, `lagged` when the slow-consumer policy dropped something, `error`
 * for bad frames. The frames are specified in docs/protocol.md.
 *
 * Each upstream (and group) a connection subscribes through gets its own
 * {@link Session} on that upstream's route; all of them share the
 * connection's outlet. Upstream messages are wrapped once per message for
 * every envelope session (message.ts), never per session.
 *
 * What an `ack` promises: for `sub`/`unsub`, the membership is in place (for
 * a json upstream the upstream's own answer may still come: a refusal is
 * then told as an `error` naming the topic); for `send`, the hub took the
 * message — it was handed to the upstream client, which writes it or holds
 * it within its bounds, and any later loss (expired in the outage queue,
 * lost with a dying connection) comes back as an `error` with the same id.
 * A refusal at the door is an `error` instead of the `ack`, never both.
 */
import { WshubError, type ErrorCode } from '../errors.js';
import type { Logger } from '../observe/log.js';
import type { Session as ServerSession } from '../server/types.js';
import type { StateChange } from '../upstream/types.js';
import type { Connection } from './connection.js';
import { decodeBinary, isJson, type ClientFrame, type HubFrame } from './envelope-codec.js';
import { clientFrameSchema } from './envelope-schema.js';
import { frame, textFrame, type Frame } from './frame.js';
import { wrapEnvelope } from './message.js';
import { Session } from './session.js';
import type { HubUpstream } from './upstream.js';

/** Largest envelope text frame accepted; a larger one is answered `ERR_ENVELOPE_TOO_LARGE` and ignored. @default 1 MiB */
export const DEFAULT_MAX_ENVELOPE_BYTES = 1024 * 1024;
/** `lagged` notices are coalesced per connection and sent at most this often. @default 250 */
export const DEFAULT_LAGGED_INTERVAL_MS = 250;
/** Sessions (upstream × group) one envelope connection may hold; more → `ERR_TOO_MANY_SUBSCRIPTIONS`. @default 256 */
export const DEFAULT_MAX_ENVELOPE_SESSIONS = 256;

export interface EnvelopeOptions {
  maxEnvelopeBytes?: number;
  laggedIntervalMs?: number;
  maxSessions?: number;
}

/** What the envelope server needs from the hub, given once at construction. */
export interface EnvelopeHost {
  upstream(name: string): HubUpstream | undefined;
  upstreamNames(): string[];
  /** Register an accepted `/hub` session as a connection of the hub. */
  open(s: ServerSession): Connection;
  log: Logger;
}

const sessionKey = (upstream: string, group: string | undefined): string => `${upstream}\u0000${group ?? ''}`;

class EnvelopeConnection {
  readonly connection: Connection;
  readonly #host: EnvelopeHost;
  readonly #options: Required<EnvelopeOptions>;
  /** The upstream each session is on (a replaced upstream is a different object). */
  readonly #upstreamOf = new Map<Session, HubUpstream>();
  /** Requests in flight: upstream → the ids (as JSON text) the worker gave them. */
  readonly #requests = new Map<string, Set<string>>();
  readonly #lagged = new Map<string, { upstream: string | undefined; topic: string | undefined; reason: string; count: number }>();
  #lagTimer: NodeJS.Timeout | undefined;
  /** The frame being handled: errors raised while handling it answer its id, and it gets no `ack`. */
  #current: { id: string | number | undefined; failed: boolean } | undefined;

  constructor(host: EnvelopeHost, s: ServerSession, options: Required<EnvelopeOptions>) {
    this.#host = host;
    this.#options = options;
    this.connection = host.open(s);
    s.ws.on('message', (data: Buffer, isBinary: boolean) => {
      this.connection.messagesIn++;
      this.connection.bytesIn += data.length;
      try {
        this.#onFrame(data, isBinary);
      } catch (err) {
        // Whatever one frame does (deep nesting, a bug), it costs that frame, never the process or other connections.
        this.#error('ERR_ENVELOPE_INVALID', `frame refused: ${(err as Error).message}`.slice(0, 200), this.#current?.id);
      } finally {
        this.#current = undefined;
      }
    });
    s.ws.once('close', () => clearTimeout(this.#lagTimer));
    this.send({
      op: 'welcome',
      v: 1,
      session: this.connection.id,
      upstreams: host.upstreamNames().map((name) => {
        const up = host.upstream(name)!;
        return { name, state: up.state, adapter: up.config.adapter };
      }),
    });
  }

  send(f: HubFrame): void {
    this.connection.outlet.control(textFrame(JSON.stringify(f)));
  }

  sendFrame(f: Frame): void {
    this.connection.outlet.control(f);
  }

  /** Count a drop; `lagged` frames go out coalesced, at most every laggedIntervalMs. */
  lagged(reason: string, count: number, topic: string | undefined, upstream: string | undefined): void {
    if (reason === 'ERR_SESSION_CLOSED') return;
    const key = `${upstream ?? ''}\u0000${topic ?? ''}\u0000${reason}`;
    const entry = this.#lagged.get(key);
    if (entry) entry.count += count;
    else this.#lagged.set(key, { upstream, topic, reason, count });
    this.#lagTimer ??= setTimeout(() => this.#flushLagged(), this.#options.laggedIntervalMs);
  }

  /** `old` was replaced by `next` (a reload changed its connection target): sessions move, their topics are subscribed there. */
  move(old: HubUpstream, next: HubUpstream): void {
    for (const [key, session] of [...this.connection.sessions]) {
      if (this.#upstreamOf.get(session) !== old) continue;
      const topics = [...session.topics];
      this.connection.leave(key);
      this.#upstreamOf.delete(session);
      const moved = this.#sessionFor(next.name, session.group);
      if (moved instanceof WshubError) continue;
      for (const topic of topics) next.route.subscribe(moved, topic, false, undefined, () => undefined);
    }
  }

  #flushLagged(): void {
    this.#lagTimer = undefined;
    for (const e of this.#lagged.values()) {
      this.send({ op: 'lagged', ...(e.upstream ? { upstream: e.upstream } : {}), ...(e.topic ? { topic: e.topic } : {}), count: e.count, reason: e.reason, policy: this.connection.outlet.policy });
    }
    this.#lagged.clear();
  }

  #error(code: ErrorCode, message: string, id?: string | number): void {
    this.send({ op: 'error', ...(id === undefined ? {} : { id }), code, message });
  }

  #onFrame(data: Buffer, isBinary: boolean): void {
    if (isBinary) {
      const env = decodeBinary(data);
      if (!env) return this.#error('ERR_ENVELOPE_INVALID', 'binary frame: expected [0x01][u8 upstream length][upstream][u16 topic length][topic][payload]');
      const session = this.#live(env.upstream, undefined);
      if (session instanceof WshubError) return this.#error(session.code, session.message);
      session.messagesIn++;
      session.bytesIn += env.payload.length;
      this.#upstreamOf.get(session)!.route.fromSession(session, env.payload, true);
      return;
    }
    if (data.length > this.#options.maxEnvelopeBytes) {
      return this.#error('ERR_ENVELOPE_TOO_LARGE', `frame of ${data.length} bytes exceeds ${this.#options.maxEnvelopeBytes}`);
    }
    let raw: unknown;
    try {
      raw = JSON.parse(data.toString('utf8'));
    } catch (err) {
      return this.#error('ERR_ENVELOPE_JSON', `not JSON: ${(err as Error).message}`);
    }
    const op = (raw as { op?: unknown } | null)?.op;
    const id = (raw as { id?: unknown } | null)?.id;
    const replyId = typeof id === 'string' || typeof id === 'number' ? id : undefined;
    if (typeof op !== 'string' || !['sub', 'unsub', 'send', 'req', 'ping'].includes(op)) {
      const shown = typeof op === 'string' ? JSON.stringify(op.slice(0, 64)) : typeof op === 'undefined' ? 'missing' : `of type ${typeof op}`;
      return this.#error('ERR_ENVELOPE_UNKNOWN_OP', `op ${shown}; expected sub, unsub, send, req or ping`, replyId);
    }
    const parsed = clientFrameSchema.safeParse(raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      return this.#error('ERR_ENVELOPE_INVALID', `${op}: ${issue ? `${issue.path.join('.') || 'frame'}: ${issue.message}` : 'invalid'}`, replyId);
    }
    this.#handle(parsed.data);
  }

  #handle(f: ClientFrame): void {
    if (f.op === 'ping') return this.send({ op: 'pong', ...(f.id === undefined ? {} : { id: f.id }) });
    const group = f.op === 'sub' || f.op === 'unsub' ? f.group : undefined;
    if (f.op === 'unsub' && !this.connection.sessions.has(sessionKey(f.upstream, group))) {
      // Nothing held there: nothing to undo, and no session is created for it.
      if (f.id !== undefined) this.send({ op: 'ack', id: f.id });
      return;
    }
    const session = this.#live(f.upstream, group);
    if (session instanceof WshubError) return this.#error(session.code, session.message, f.id);
    const up = this.#upstreamOf.get(session)!;
    if (up.state === 'closed' && f.op !== 'unsub') {
      return this.#error('ERR_UPSTREAM_UNAVAILABLE', `upstream ${f.upstream} is closed: ${up.lastChange?.reason ?? ''}`, f.id);
    }
    this.#current = { id: f.id, failed: false };
    const ack = (): void => {
      if (f.id !== undefined) this.send({ op: 'ack', id: f.id });
    };
    switch (f.op) {
      case 'sub': {
        // The ack goes out before the snapshot it announces.
        const refused = up.route.subscribe(session, f.topic, f.snapshot ?? false, f.id, ack);
        if (refused) this.#error(refused.code, refused.message, f.id);
        return;
      }
      case 'unsub':
        up.route.unsubscribe(session, f.topic, f.id);
        return ack();
      case 'send': {
        const payload = Buffer.from(f.text ?? JSON.stringify(f.data));
        session.messagesIn++;
        session.bytesIn += payload.length;
        up.route.fromSession(session, payload, false, f.id);
        // Refused while being handled (e.g. the upstream's bounds are full): the `error` already answered this id.
        if (!this.#current.failed) ack();
        return;
      }
      case 'req': {
        const idText = JSON.stringify(f.id);
        const inFlight = this.#requests.get(f.upstream) ?? new Set<string>();
        this.#requests.set(f.upstream, inFlight);
        if (inFlight.has(idText)) return this.#error('ERR_DUPLICATE_REQUEST', `request ${idText} is still in flight on ${f.upstream}`, f.id);
        if (up.config.adapter === 'raw') return this.#error('ERR_BAD_MESSAGE', `upstream ${f.upstream} (raw) has no request ids to match answers; use send`, f.id);
        const idField = up.config.idField ?? 'id';
        const payload = Buffer.from(JSON.stringify({ ...f.data, [idField]: f.id }));
        inFlight.add(idText);
        session.messagesIn++;
        session.bytesIn += payload.length;
        up.route.fromSession(session, payload, false, f.id);
        if (this.#current.failed) inFlight.delete(idText);
        return; // answered by `res` (or `error`)
      }
    }
  }

  /** The session of this connection on `upstream` (and `group`), created and attached on first use; moved if its upstream was replaced. */
  #live(upstream: string, group: string | undefined): Session | WshubError {
    const existing = this.connection.sessions.get(sessionKey(upstream, group));
    if (existing) {
      if (this.#upstreamOf.get(existing) === this.#host.upstream(upstream)) return existing;
      return new WshubError('ERR_UNKNOWN_UPSTREAM', `upstream ${JSON.stringify(upstream)} is no longer configured`);
    }
    return this.#sessionFor(upstream, group);
  }

  #sessionFor(upstream: string, group: string | undefined): Session | WshubError {
    const up = this.#host.upstream(upstream);
    if (!up) return new WshubError('ERR_UNKNOWN_UPSTREAM', `unknown upstream ${JSON.stringify(upstream)}; configured: ${this.#host.upstreamNames().join(', ')}`);
    if (this.connection.sessions.size >= this.#options.maxSessions) {
      return new WshubError('ERR_TOO_MANY_SUBSCRIPTIONS', `this connection already uses ${this.#options.maxSessions} upstream/group combinations`);
    }
    const session: Session = new Session({
      id: `${this.connection.id}/${upstream}${group ? `/${group}` : ''}`,
      upstream,
      outlet: this.connection.outlet,
      group,
      transparent: false,
      encoder: {
        message: (m, topic) => m.envelope(topic),
        own: (data, isBinary, answers, topic) => this.#own(upstream, data, isBinary, answers, topic),
      },
      onError: (error, origin) => this.#onSessionError(upstream, error, origin),
    });
    this.#upstreamOf.set(session, up);
    this.connection.join(sessionKey(upstream, group), up, session);
    return session;
  }

  /** A frame for this connection alone: a `res` when it answers a `req` in flight, else a plain `msg`. */
  #own(upstream: string, data: Buffer, isBinary: boolean, answers: string | undefined, topic: string | undefined): Frame {
    if (answers !== undefined && !isBinary && this.#requests.get(upstream)?.delete(answers)) {
      const head = `{"op":"res","id":${answers},"upstream":${JSON.stringify(upstream)},"data":`;
      const body = isJson(data) ? data : Buffer.from(JSON.stringify(data.toString('utf8')));
      return frame(Buffer.concat([Buffer.from(head), body, Buffer.from('}')]), false);
    }
    return wrapEnvelope(upstream, topic, data, isBinary, !isBinary && isJson(data));
  }

  /** A problem with this connection's input or one of its requests (timeout, upstream lost, refused). */
  #onSessionError(upstream: string, error: WshubError, origin: unknown): void {
    const current = this.#current;
    if (current && origin === current.id) {
      // Raised while handling a frame: answer that frame.
      current.failed = true;
      return this.#error(error.code, error.message, current.id);
    }
    const requestId = error.details.requestId;
    if (typeof requestId === 'string' && this.#requests.get(upstream)?.delete(requestId)) {
      return this.#error(error.code, error.message, JSON.parse(requestId) as string | number);
    }
    if (typeof origin === 'string' || typeof origin === 'number') {
      this.#requests.get(upstream)?.delete(JSON.stringify(origin));
      return this.#error(error.code, error.message, origin);
    }
    this.#error(error.code, error.message);
  }
}

/** Serves `/hub` for a hub: attaches connections, forwards state changes and drops to them. */
export class EnvelopeServer {
  readonly #host: EnvelopeHost;
  readonly #options: Required<EnvelopeOptions>;
  readonly #connections = new Map<Connection, EnvelopeConnection>();

  constructor(host: EnvelopeHost, options: EnvelopeOptions = {}) {
    this.#host = host;
    this.#options = {
      maxEnvelopeBytes: options.maxEnvelopeBytes ?? DEFAULT_MAX_ENVELOPE_BYTES,
      laggedIntervalMs: options.laggedIntervalMs ?? DEFAULT_LAGGED_INTERVAL_MS,
      maxSessions: options.maxSessions ?? DEFAULT_MAX_ENVELOPE_SESSIONS,
    };
  }

  attach(s: ServerSession): void {
    const envelope = new EnvelopeConnection(this.#host, s, this.#options);
    this.#connections.set(envelope.connection, envelope);
    s.ws.once('close', () => this.#connections.delete(envelope.connection));
  }

  /** Messages a connection's slow-consumer policy dropped: told as `lagged`. */
  dropped(connection: Connection, reason: string, count: number, topic: string | undefined, upstream: string | undefined): void {
    this.#connections.get(connection)?.lagged(reason, count, topic, upstream);
  }

  /** An upstream was replaced by a reload: envelope sessions follow it. */
  moved(old: HubUpstream, next: HubUpstream): void {
    for (const c of this.#connections.values()) c.move(old, next);
  }

  /** An upstream changed state: every envelope connection hears it (with the gap). */
  state(up: HubUpstream, change: StateChange): void {
    if (this.#connections.size === 0) return;
    const gap = change.to === 'open'
      ? up.lastGap && up.lastGap.end === change.at ? up.lastGap : undefined
      : up.gapStart !== undefined ? { start: up.gapStart } : undefined;
    const f: HubFrame = {
      op: 'state',
      upstream: up.name,
      state: change.to,
      reason: change.reason,
      ...(change.attempt ? { attempt: change.attempt } : {}),
      ...(change.delayMs === undefined ? {} : { delayMs: change.delayMs }),
      ...(change.cause ? { cause: { code: change.cause.code, message: change.cause.message } } : {}),
      ...(change.endpoint === undefined ? {} : { endpoint: change.endpoint }),
      ...(gap ? { gap } : {}),
      at: change.at,
    };
    const bytes = textFrame(JSON.stringify(f));
    for (const c of this.#connections.values()) c.sendFrame(bytes);
  }
}
