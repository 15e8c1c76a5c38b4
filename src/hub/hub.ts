/**
 * The hub: holds every configured upstream and shares each with the sessions
 * attached through the hardened listener.
 *
 * Paths:
 * - `/u/<upstream>` — transparent mode: the session sees the upstream as if it
 *   were connected itself. Query: `group=<name>` (each message once per group),
 *   `snapshot=1` (last message of each topic on subscribe), `slowConsumer=`
 *   (`drop-oldest` | `conflate` | `disconnect`, overriding the upstream's).
 * - `/hub` — envelope mode (see docs/protocol.md).
 *
 * Subprotocols: a session that asks for subprotocols gets the upstream's
 * negotiated one back if it offered it; before the upstream's first open,
 * the first configured `protocols` entry it offered.
 *
 * An upstream closed for good (a fatal close code, an auth failure) closes
 * its sessions with 1011 and the reason, and refuses new ones with 503: a
 * worker must not wait forever on a feed that will not come back.
 */
import { EventEmitter } from 'node:events';
import type { IncomingMessage } from 'node:http';
import { WshubError } from '../errors.js';
import { silentLogger, type Logger } from '../observe/log.js';
import { HardenedServer } from '../server/server.js';
import type { PeerInfo, Refusal, Session as ServerSession, ServerStats } from '../server/types.js';
import type { StateChange, UpstreamStats } from '../upstream/types.js';
import type { HubConfig, UpstreamConfig } from './config.js';
import { DEFAULT_END_TIMEOUT_MS, Outbound, type OutboundStats } from './outbound.js';
import { Session, type SessionStats, type SlowConsumerPolicy, SLOW_CONSUMER_POLICIES } from './session.js';
import { HubUpstream } from './upstream.js';
import { EnvelopeServer } from './envelope.js';
import { ENVELOPE_PROTOCOL } from './envelope-codec.js';

export const TRANSPARENT_PREFIX = '/u/';
export const ENVELOPE_PATH = '/hub';

export interface HubUpstreamStats {
  name: string;
  adapter: string;
  required: boolean;
  client: UpstreamStats;
  sessions: number;
  messagesIn: number;
  bytesIn: number;
  deliveries: number;
  unrouted: number;
  sessionErrors: Record<string, number>;
  topics: Array<{ topic: string; subscribers: number; groups: number }>;
  adapterStats: Record<string, unknown>;
  history: StateChange[];
  gapStart: number | undefined;
}

/** One attached worker connection: its queue and its sessions (one per upstream it uses). */
export interface Connection {
  mode: 'transparent' | 'envelope';
  outbound: Outbound;
  sessions: Map<string, Session>;
}

export interface ConnectionStats extends OutboundStats {
  mode: 'transparent' | 'envelope';
  sessions: SessionStats[];
}

/** The one stats snapshot that feeds /status, /metrics and the status page. */
export interface HubStats {
  startedAt: number;
  now: number;
  pid: number;
  upstreams: HubUpstreamStats[];
  connections: ConnectionStats[];
  server: ServerStats;
  dropped: Record<string, number>;
}

export interface HubEvents {
  state: [upstream: string, change: StateChange];
  connection: [Connection];
  /** Frames a connection's slow-consumer policy dropped (the envelope module turns these into `lagged`). */
  drop: [outbound: Outbound, reason: string, count: number, topic: string | undefined, upstream: string | undefined];
}

export interface HubOptions {
  config: HubConfig;
  logger?: Logger;
}

export class Hub extends EventEmitter<HubEvents> {
  readonly startedAt = Date.now();
  readonly upstreams = new Map<string, HubUpstream>();
  /** Attached worker connections by id. */
  readonly connections = new Map<string, Connection>();
  readonly server: HardenedServer;
  readonly log: Logger;
  #config: HubConfig;
  /** Drops summed over sessions that already left, so totals never go backwards. */
  readonly #retiredDrops: Record<string, number> = {};
  #closing = false;
  #reloading: Promise<unknown> = Promise.resolve();

  constructor(options: HubOptions) {
    super();
    this.#config = options.config;
    this.log = options.logger ?? silentLogger;
    const c = options.config;
    this.server = new HardenedServer({
      ...(c.listen === undefined ? {} : { listen: c.listen }),
      ...(c.tcp === undefined ? {} : { tcp: c.tcp }),
      ...(c.token === undefined ? {} : { token: c.token }),
      ...(c.allowedOrigins === undefined ? {} : { allowedOrigins: c.allowedOrigins }),
      ...stripUndefined(c.server),
      logger: this.log.child({ part: 'server' }),
      authorize: (req, peer) => this.#authorize(req, peer),
      handleProtocols: (protocols, req) => this.#selectProtocol(protocols, req),
    });
    this.server.on('session', (s) => this.#attach(s));
    for (const upstream of c.upstreams) this.#addUpstream(upstream);
    new EnvelopeServer(this);
  }

  get config(): HubConfig {
    return this.#config;
  }

  /** Bind the listeners and connect every upstream. */
  async start(): Promise<void> {
    await this.server.listen();
    for (const up of this.upstreams.values()) up.start();
    this.log.info({ addresses: this.server.addresses(), upstreams: [...this.upstreams.keys()] }, 'hub started');
  }

  /**
   * Apply a new config (SIGHUP): upstreams added are connected, removed ones
   * drained (sessions closed 1001), changed ones replaced. Listener settings
   * need a restart and are left as they are (logged).
   */
  async reload(next: HubConfig): Promise<{ added: string[]; removed: string[]; changed: string[] }> {
    // One reload at a time: two SIGHUPs in a row must not both replace the same upstream.
    const run = this.#reloading.then(() => this.#reload(next));
    this.#reloading = run.catch(() => undefined);
    return run;
  }

  async #reload(next: HubConfig): Promise<{ added: string[]; removed: string[]; changed: string[] }> {
    const before = new Map(this.#config.upstreams.map((u) => [u.name, JSON.stringify(u)]));
    const after = new Map(next.upstreams.map((u) => [u.name, u]));
    const added: string[] = [];
    const removed: string[] = [];
    const changed: string[] = [];
    for (const name of before.keys()) {
      if (!after.has(name)) removed.push(name);
      else if (before.get(name) !== JSON.stringify(after.get(name))) changed.push(name);
    }
    for (const name of after.keys()) if (!before.has(name)) added.push(name);
    await Promise.all([...removed, ...changed].map((name) => this.#removeUpstream(name, 'upstream removed by config reload', 1001)));
    for (const name of [...changed, ...added]) {
      const up = this.#addUpstream(after.get(name)!);
      up.start();
    }
    this.#config = { ...this.#config, upstreams: next.upstreams };
    this.log.info({ added, removed, changed }, 'config reloaded');
    return { added, removed, changed };
  }

  stats(): HubStats {
    const dropped: Record<string, number> = { ...this.#retiredDrops };
    const connections = [...this.connections.values()].map((c): ConnectionStats => {
      const st = c.outbound.stats();
      for (const [reason, n] of Object.entries(st.dropped)) dropped[reason] = (dropped[reason] ?? 0) + n;
      return { ...st, mode: c.mode, sessions: [...c.sessions.values()].map((x) => x.stats()) };
    });
    return {
      startedAt: this.startedAt,
      now: Date.now(),
      pid: process.pid,
      upstreams: [...this.upstreams.values()].map((up) => ({
        name: up.name,
        adapter: up.config.adapter,
        required: up.config.required,
        client: up.stats(),
        sessions: up.route.sessions.size,
        messagesIn: up.route.counters.messagesIn,
        bytesIn: up.route.counters.bytesIn,
        deliveries: up.route.counters.deliveries,
        unrouted: up.route.counters.unrouted,
        sessionErrors: { ...up.route.counters.sessionErrors },
        topics: up.route.topicStats(),
        adapterStats: up.adapter.stats?.() ?? {},
        history: [...up.history],
        gapStart: up.gapStart,
      })),
      connections,
      server: this.server.stats(),
      dropped,
    };
  }

  /** Graceful: stop accepting, close sessions 1001 after flushing, close upstreams. Idempotent. */
  async close(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    // Every connection gets what is queued for it, then 1001; new ones are refused meanwhile (authorize).
    const timeoutMs = this.#config.server.drainTimeoutMs ?? DEFAULT_END_TIMEOUT_MS;
    await Promise.all([...this.connections.values()].map((c) => c.outbound.end(1001, 'hub shutting down', timeoutMs)));
    await this.server.close();
    await Promise.all([...this.upstreams.values()].map((up) => up.client.close(1000, 'hub shutting down')));
  }

  /** Immediate. Idempotent. */
  destroy(): void {
    this.#closing = true;
    this.server.destroy();
    for (const up of this.upstreams.values()) up.client.destroy();
  }

  #addUpstream(config: UpstreamConfig): HubUpstream {
    const existing = this.upstreams.get(config.name);
    if (existing) void this.#removeUpstream(config.name, 'upstream replaced', 1001);
    const up = new HubUpstream(config, this.log);
    up.on('state', (change) => {
      this.emit('state', up.name, change);
      if (change.to === 'closed' && !this.#closing && this.upstreams.get(up.name) === up) {
        this.#releaseSessions(up, 1011, `upstream closed: ${change.cause?.code ?? change.reason}`);
      }
    });
    this.upstreams.set(config.name, up);
    return up;
  }

  /**
   * An upstream is gone (removed, or closed for good): transparent sessions end
   * (after what is queued for them) with `code`; envelope sessions only leave
   * that upstream — their connection serves others, and the `state` frame tells them.
   */
  #releaseSessions(up: HubUpstream, code: number, reason: string): void {
    const text = reason.slice(0, 120);
    for (const session of [...up.route.sessions]) {
      if (session.transparent) {
        void session.outbound.end(code, text, this.#config.server.drainTimeoutMs ?? DEFAULT_END_TIMEOUT_MS);
      } else {
        up.route.detach(session);
        this.connections.get(session.outbound.id)?.sessions.forEach((s, key, map) => {
          if (s === session) map.delete(key);
        });
      }
    }
  }

  async #removeUpstream(name: string, reason: string, code: number): Promise<void> {
    const up = this.upstreams.get(name);
    if (!up) return;
    this.upstreams.delete(name);
    up.route.retired = true;
    this.#releaseSessions(up, code, reason);
    await up.client.close(1000, reason);
  }

  #upstreamOf(path: string): HubUpstream | undefined {
    if (!path.startsWith(TRANSPARENT_PREFIX)) return undefined;
    let name: string;
    try {
      name = decodeURIComponent(path.slice(TRANSPARENT_PREFIX.length));
    } catch {
      return undefined;
    }
    return this.upstreams.get(name);
  }

  #authorize(_req: IncomingMessage, peer: PeerInfo): Refusal | undefined {
    if (this.#closing) return { status: 503, code: 'ERR_SHUTTING_DOWN', message: 'hub is shutting down' };
    const policy = peer.query.get('slowConsumer');
    if (policy !== null && !SLOW_CONSUMER_POLICIES.includes(policy as SlowConsumerPolicy)) {
      return { status: 400, code: 'ERR_INVALID_OPTION', message: `slowConsumer must be one of ${SLOW_CONSUMER_POLICIES.join(', ')}` };
    }
    if (peer.path === ENVELOPE_PATH) return undefined;
    if (!peer.path.startsWith(TRANSPARENT_PREFIX)) {
      return { status: 404, code: 'ERR_NOT_FOUND', message: `no route for ${peer.path}; attach to ${TRANSPARENT_PREFIX}<upstream> or ${ENVELOPE_PATH}` };
    }
    const up = this.#upstreamOf(peer.path);
    if (!up) return { status: 404, code: 'ERR_UNKNOWN_UPSTREAM', message: `unknown upstream in ${peer.path}; configured: ${[...this.upstreams.keys()].join(', ')}` };
    if (up.client.state === 'closed') return { status: 503, code: 'ERR_UPSTREAM_UNAVAILABLE', message: `upstream ${up.name} is closed: ${up.lastChange?.reason ?? ''}` };
    return undefined;
  }

  #selectProtocol(protocols: Set<string>, req: IncomingMessage): string | false {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    if (path === ENVELOPE_PATH) return protocols.has(ENVELOPE_PROTOCOL) ? ENVELOPE_PROTOCOL : false;
    const up = this.#upstreamOf(path);
    if (!up) return false;
    const negotiated = up.client.protocol;
    if (negotiated && protocols.has(negotiated)) return negotiated;
    for (const p of (up.config.client.protocols as string[] | undefined) ?? []) if (protocols.has(p)) return p;
    return false;
  }

  #attach(s: ServerSession): void {
    const up = this.#upstreamOf(s.peer.path);
    if (!up) {
      if (s.peer.path === ENVELOPE_PATH && this.envelope) {
        this.envelope.attach(s, this.#newOutbound(s, (s.peer.query.get('slowConsumer') as SlowConsumerPolicy | null) ?? this.#config.slowConsumer));
        return;
      }
      s.ws.close(1008, 'no such route');
      return;
    }
    const query = s.peer.query;
    const snapshot = query.get('snapshot');
    const outbound = this.#newOutbound(s, (query.get('slowConsumer') as SlowConsumerPolicy | null) ?? up.config.slowConsumer ?? this.#config.slowConsumer, up.config.maxQueueBytes);
    const session = new Session({ id: s.id, upstream: up.name, outbound, group: query.get('group') || undefined, snapshot: snapshot === '1' || snapshot === 'true' });
    const connection = this.#register(outbound, 'transparent');
    connection.sessions.set(up.name, session);
    up.route.attach(session);
    this.log.info({ session: s.id, mode: 'transparent', upstream: up.name, transport: s.peer.transport, remoteAddress: s.peer.remoteAddress, group: session.group }, 'session attached');
    s.ws.on('message', (data: Buffer, isBinary: boolean) => {
      session.messagesIn++;
      session.bytesIn += data.length;
      outbound.messagesIn++;
      outbound.bytesIn += data.length;
      this.sessionMessage(session, data, isBinary);
    });
  }

  /** The envelope module, when loaded; serves `/hub`. */
  envelope: { attach(s: ServerSession, outbound: Outbound): void } | undefined;

  /** Hand a session's message to its upstream's adapter; a failure costs that message only. */
  sessionMessage(session: Session, data: Buffer, isBinary: boolean): void {
    const route = session.route;
    if (!route || route.retired) {
      // The session's upstream was removed while its message was in flight: refused and counted, never routed elsewhere.
      const error = new WshubError('ERR_UPSTREAM_UNAVAILABLE', `upstream ${session.upstream} is no longer configured; message not sent`);
      session.upstreamDrops[error.code] = (session.upstreamDrops[error.code] ?? 0) + 1;
      session.onError?.(error);
      return;
    }
    try {
      route.adapter.onSessionMessage(session, data, isBinary);
    } catch (err) {
      const error = err instanceof WshubError ? err : new WshubError('ERR_BAD_MESSAGE', `adapter failed on a session message: ${(err as Error).message}`, { cause: err });
      route.sessionError(session, error);
    }
  }

  /** Attach a session to its upstream's router (envelope sessions are created on their first `sub`). */
  join(session: Session): boolean {
    const up = this.upstreams.get(session.upstream);
    if (!up) return false;
    up.route.attach(session);
    return true;
  }

  #newOutbound(s: ServerSession, policy: SlowConsumerPolicy, maxQueueBytes = this.#config.maxQueueBytes): Outbound {
    return new Outbound({
      id: s.id,
      ws: s.ws,
      socket: s.socket,
      peer: { transport: s.peer.transport, remoteAddress: s.peer.remoteAddress, remotePort: s.peer.remotePort },
      policy,
      ...(maxQueueBytes === undefined ? {} : { maxQueueBytes }),
      onDrop: (o, reason, count, topic, upstream) => {
        if (this.log.isLevelEnabled('debug')) this.log.debug({ session: o.id, upstream, reason, count, topic }, 'dropped for slow consumer');
        this.emit('drop', o, reason, count, topic, upstream);
      },
    });
  }

  /** Track a connection until its socket closes; then detach every session it had from its upstream. */
  #register(outbound: Outbound, mode: Connection['mode']): Connection {
    const connection: Connection = { mode, outbound, sessions: new Map() };
    this.connections.set(outbound.id, connection);
    const peer = { transport: outbound.peer.transport, remoteAddress: outbound.peer.remoteAddress };
    if (mode === 'envelope') this.log.info({ session: outbound.id, mode, ...peer }, 'session attached');
    outbound.ws.once('close', (code: number, reason: Buffer) => {
      const st = outbound.stats();
      this.log.info(
        { session: outbound.id, mode, ...peer, upstreams: [...connection.sessions.values()].map((x) => x.upstream), code, reason: reason.toString(), messagesOut: st.messagesOut, dropped: st.dropped },
        'session detached',
      );
      for (const session of connection.sessions.values()) session.route?.detach(session);
      outbound.markClosed();
      this.connections.delete(outbound.id);
      for (const [r, n] of Object.entries(outbound.stats().dropped)) this.#retiredDrops[r] = (this.#retiredDrops[r] ?? 0) + n;
    });
    this.emit('connection', connection);
    return connection;
  }

  /** For the envelope module: register a connection it serves. */
  registerConnection(outbound: Outbound, mode: Connection['mode']): Connection {
    return this.#register(outbound, mode);
  }
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
