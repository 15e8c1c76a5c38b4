/**
 * Envelope mode (`/hub`, subprotocol `wshub.v1`): one connection, any number
 * of upstreams and topics, with the hub's own notices — upstream `state` with
 * gap times, `lagged` when the slow-consumer policy dropped something, `error`
 * for bad frames. The frames are specified in docs/protocol.md.
 *
 * Each upstream (and group) a connection subscribes through gets its own
 * {@link Session} on that upstream's router; all of them share the
 * connection's queue. Upstream messages are wrapped once per message for every
 * envelope session (`Frame.envelope`), never per session.
 */
import { WshubError } from '../errors.js';
import type { Session as ServerSession } from '../server/types.js';
import type { StateChange } from '../upstream/types.js';
import { clientFrameSchema, decodeBinary, encodeBinary, encodeJsonMessage, encodeTextMessage, isJson, type ClientFrame, type HubFrame } from './envelope-codec.js';
import { frameMessage, type Frame } from './frame.js';
import type { Connection, Hub } from './hub.js';
import type { Outbound } from './outbound.js';
import { Session } from './session.js';

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

const sessionKey = (upstream: string, group: string | undefined): string => `${upstream}\u0000${group ?? ''}`;

function control(frame: HubFrame): Frame {
  return frameMessage(Buffer.from(JSON.stringify(frame)), false);
}

/** Wrap an upstream frame for envelope sessions; shared upstream frames are wrapped once. */
function wrap(frame: Frame, upstream: string, topic: string | undefined): Frame {
  if (frame.isBinary) return frameMessage(encodeBinary(upstream, topic ?? '', frame.payload), true);
  if (frame.json ?? isJson(frame.payload)) return frameMessage(encodeJsonMessage(upstream, topic, frame.payload), false);
  return frameMessage(encodeTextMessage(upstream, topic, frame.payload.toString('utf8')), false);
}

class EnvelopeConnection {
  readonly #hub: Hub;
  readonly #outbound: Outbound;
  readonly #connection: Connection;
  readonly #options: Required<EnvelopeOptions>;
  /** Requests in flight: upstream → the ids the worker gave them. */
  readonly #requests = new Map<string, Set<string | number>>();
  readonly #lagged = new Map<string, { upstream: string | undefined; topic: string | undefined; reason: string; count: number }>();
  #lagTimer: NodeJS.Timeout | undefined;
  /** The frame being handled: errors raised while handling it (synchronously) answer its id, and it gets no `ack`. */
  #current: { id: string | number | undefined; failed: boolean } | undefined;

  constructor(hub: Hub, s: ServerSession, outbound: Outbound, options: Required<EnvelopeOptions>) {
    this.#hub = hub;
    this.#outbound = outbound;
    this.#options = options;
    this.#connection = hub.registerConnection(outbound, 'envelope');
    s.ws.on('message', (data: Buffer, isBinary: boolean) => {
      outbound.messagesIn++;
      outbound.bytesIn += data.length;
      try {
        this.#onFrame(data, isBinary);
      } catch (err) {
        // Whatever one frame does (deep nesting, a bug), it costs that frame, never the process or other connections.
        this.#error('ERR_ENVELOPE_INVALID', `frame refused: ${(err as Error).message}`.slice(0, 200));
      } finally {
        this.#current = undefined;
      }
    });
    s.ws.once('close', () => clearTimeout(this.#lagTimer));
    this.send({
      op: 'welcome',
      v: 1,
      session: outbound.id,
      upstreams: [...hub.upstreams.values()].map((u) => ({ name: u.name, state: u.client.state, adapter: u.config.adapter })),
    });
  }

  get outbound(): Outbound {
    return this.#outbound;
  }

  send(frame: HubFrame): void {
    this.#outbound.deliverControl(control(frame));
  }

  sendFrame(frame: Frame): void {
    this.#outbound.deliverControl(frame);
  }

  /** Count a drop; `lagged` frames go out coalesced, at most every laggedIntervalMs. */
  lagged(reason: string, count: number, topic: string | undefined, upstream: string | undefined): void {
    if (reason === 'session-closed') return;
    const key = `${upstream ?? ''}\u0000${topic ?? ''}\u0000${reason}`;
    const entry = this.#lagged.get(key);
    if (entry) entry.count += count;
    else this.#lagged.set(key, { upstream, topic, reason, count });
    this.#lagTimer ??= setTimeout(() => this.#flushLagged(), this.#options.laggedIntervalMs);
  }

  #flushLagged(): void {
    this.#lagTimer = undefined;
    for (const e of this.#lagged.values()) {
      this.send({ op: 'lagged', ...(e.upstream ? { upstream: e.upstream } : {}), ...(e.topic ? { topic: e.topic } : {}), count: e.count, reason: e.reason, policy: this.#outbound.policy });
    }
    this.#lagged.clear();
  }

  #error(code: WshubError['code'], message: string, id?: string | number): void {
    this.send({ op: 'error', ...(id === undefined ? {} : { id }), code, message });
  }

  #onFrame(data: Buffer, isBinary: boolean): void {
    if (isBinary) {
      const env = decodeBinary(data);
      if (!env) return this.#error('ERR_ENVELOPE_INVALID', 'binary frame: expected [0x01][u8 upstream length][upstream][u16 topic length][topic][payload]');
      const session = this.#sessionFor(env.upstream, undefined);
      if (session instanceof WshubError) return this.#error(session.code, session.message);
      session.messagesIn++;
      session.bytesIn += env.payload.length;
      this.#hub.sessionMessage(session, env.payload, true);
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

  #handle(frame: ClientFrame): void {
    if (frame.op === 'ping') return this.send({ op: 'pong', ...(frame.id === undefined ? {} : { id: frame.id }) });
    const group = frame.op === 'sub' || frame.op === 'unsub' ? frame.group : undefined;
    if (frame.op === 'unsub' && !this.#connection.sessions.has(sessionKey(frame.upstream, group))) {
      // Nothing held there: nothing to undo, and no session is created for it.
      if (frame.id !== undefined) this.send({ op: 'ack', id: frame.id });
      return;
    }
    const session = this.#sessionFor(frame.upstream, group);
    if (session instanceof WshubError) return this.#error(session.code, session.message, frame.id);
    const up = this.#hub.upstreams.get(frame.upstream);
    if (!up || session.route !== up.route) return this.#error('ERR_UNKNOWN_UPSTREAM', `upstream ${JSON.stringify(frame.upstream)} is no longer configured`, frame.id);
    if (up.client.state === 'closed' && frame.op !== 'unsub') {
      return this.#error('ERR_UPSTREAM_UNAVAILABLE', `upstream ${frame.upstream} is closed: ${up.lastChange?.reason ?? ''}`, frame.id);
    }
    this.#current = { id: frame.id, failed: false };
    switch (frame.op) {
      case 'sub': {
        if (!up.adapter.subscribe) {
          return this.#error('ERR_BAD_MESSAGE', `upstream ${frame.upstream} (${up.config.adapter}) has no topics to subscribe to; use send/req`, frame.id);
        }
        const err = up.adapter.subscribe(session, frame.topic, frame.snapshot ?? false);
        if (err) return this.#error(err.code, err.message, frame.id);
        break;
      }
      case 'unsub':
        up.adapter.unsubscribe?.(session, frame.topic);
        break;
      case 'send': {
        const payload = Buffer.from(frame.text ?? JSON.stringify(frame.data));
        session.messagesIn++;
        session.bytesIn += payload.length;
        this.#hub.sessionMessage(session, payload, false);
        break;
      }
      case 'req': {
        const inFlight = this.#requests.get(frame.upstream) ?? new Set();
        this.#requests.set(frame.upstream, inFlight);
        if (inFlight.has(frame.id)) return this.#error('ERR_DUPLICATE_REQUEST', `request ${JSON.stringify(frame.id)} is still in flight on ${frame.upstream}`, frame.id);
        if (up.config.adapter === 'raw') return this.#error('ERR_BAD_MESSAGE', `upstream ${frame.upstream} (raw) has no request ids to match answers; use send`, frame.id);
        const idField = up.config.idField ?? 'id';
        const payload = Buffer.from(JSON.stringify({ ...frame.data, [idField]: frame.id }));
        inFlight.add(frame.id);
        session.messagesIn++;
        session.bytesIn += payload.length;
        this.#hub.sessionMessage(session, payload, false);
        if (this.#current.failed) inFlight.delete(frame.id);
        return; // answered by `res` (or `error`)
      }
    }
    // Refused while being handled (e.g. the upstream's queue is full): the `error` already answered this id.
    if (frame.id !== undefined && !this.#current.failed) this.send({ op: 'ack', id: frame.id });
  }

  /** The session of this connection on `upstream` (and `group`), created and attached on first use. */
  #sessionFor(upstream: string, group: string | undefined): Session | WshubError {
    const key = sessionKey(upstream, group);
    const existing = this.#connection.sessions.get(key);
    if (existing) return existing;
    const up = this.#hub.upstreams.get(upstream);
    if (!up) return new WshubError('ERR_UNKNOWN_UPSTREAM', `unknown upstream ${JSON.stringify(upstream)}; configured: ${[...this.#hub.upstreams.keys()].join(', ')}`);
    if (this.#connection.sessions.size >= this.#options.maxSessions) {
      return new WshubError('ERR_TOO_MANY_SUBSCRIPTIONS', `this connection already uses ${this.#options.maxSessions} upstream/group combinations`);
    }
    const idField = up.config.idField ?? 'id';
    const session: Session = new Session({
      id: `${this.#outbound.id}/${upstream}${group ? `/${group}` : ''}`,
      upstream,
      outbound: this.#outbound,
      group,
      transparent: false,
      encode: (frame, name, topic, own) => (own ? this.#encodeOwn(frame, name, idField) : (frame.envelope ??= wrap(frame, name, topic))),
      onError: (error) => this.#onSessionError(upstream, error),
    });
    this.#connection.sessions.set(key, session);
    this.#hub.join(session);
    return session;
  }

  /** A reply for this connection: a `res` when it answers a `req` in flight, else a plain `msg`. */
  #encodeOwn(frame: Frame, upstream: string, idField: string): Frame {
    const inFlight = this.#requests.get(upstream);
    if (inFlight?.size && !frame.isBinary) {
      let id: unknown;
      try {
        id = (JSON.parse(frame.payload.toString('utf8')) as Record<string, unknown>)[idField];
      } catch {
        id = undefined;
      }
      if ((typeof id === 'string' || typeof id === 'number') && inFlight.delete(id)) {
        const head = Buffer.from(`{"op":"res","id":${JSON.stringify(id)},"upstream":${JSON.stringify(upstream)},"data":`);
        return frameMessage(Buffer.concat([head, frame.payload, Buffer.from('}')]), false);
      }
    }
    return wrap(frame, upstream, undefined);
  }

  /** The adapter reported a problem with this connection's input or a request (timeout, upstream lost). */
  #onSessionError(upstream: string, error: WshubError): void {
    if (this.#current) {
      // Raised while handling a frame: answer that frame.
      this.#current.failed = true;
      return this.#error(error.code, error.message, this.#current.id);
    }
    const id = error.details.requestId;
    if ((typeof id === 'string' || typeof id === 'number') && this.#requests.get(upstream)?.delete(id)) {
      return this.#error(error.code, error.message, id);
    }
    this.#error(error.code, error.message);
  }
}

/** Serves `/hub` for a hub: attaches connections, forwards state changes and drops to them. */
export class EnvelopeServer {
  readonly #hub: Hub;
  readonly #options: Required<EnvelopeOptions>;
  readonly #connections = new Map<Outbound, EnvelopeConnection>();

  constructor(hub: Hub, options: EnvelopeOptions = {}) {
    this.#hub = hub;
    this.#options = {
      maxEnvelopeBytes: options.maxEnvelopeBytes ?? DEFAULT_MAX_ENVELOPE_BYTES,
      laggedIntervalMs: options.laggedIntervalMs ?? DEFAULT_LAGGED_INTERVAL_MS,
      maxSessions: options.maxSessions ?? DEFAULT_MAX_ENVELOPE_SESSIONS,
    };
    hub.envelope = this;
    hub.on('state', (upstream, change) => this.#onState(upstream, change));
    hub.on('drop', (outbound, reason, count, topic, upstream) => this.#connections.get(outbound)?.lagged(reason, count, topic, upstream));
  }

  attach(s: ServerSession, outbound: Outbound): void {
    const connection = new EnvelopeConnection(this.#hub, s, outbound, this.#options);
    this.#connections.set(outbound, connection);
    s.ws.once('close', () => this.#connections.delete(outbound));
  }

  #onState(upstream: string, change: StateChange): void {
    const up = this.#hub.upstreams.get(upstream);
    const gap = change.to === 'open' ? up?.lastGap && up.lastGap.end === change.at ? up.lastGap : undefined : up?.gapStart !== undefined ? { start: up.gapStart } : undefined;
    const frame: HubFrame = {
      op: 'state',
      upstream,
      state: change.to,
      reason: change.reason,
      ...(change.attempt ? { attempt: change.attempt } : {}),
      ...(change.delayMs === undefined ? {} : { delayMs: change.delayMs }),
      ...(change.cause ? { cause: { code: change.cause.code, message: change.cause.message } } : {}),
      ...(gap ? { gap } : {}),
      at: change.at,
    };
    if (this.#connections.size === 0) return;
    const bytes = control(frame);
    for (const c of this.#connections.values()) c.sendFrame(bytes);
  }
}
