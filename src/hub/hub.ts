/**
 * The hub: holds every configured upstream and shares each with the sessions
 * attached through the hardened listener.
 *
 * Paths:
 * - `/u/<upstream>` — transparent mode: the session sees the upstream as if it
 *   were connected itself. Query: `group=<name>` (each message once per group),
 *   `snapshot=1` (last message of each topic on subscribe), `slowConsumer=`
 *   (`drop-oldest` | `conflate` | `disconnect`, overriding the upstream's).
 *   Any other query parameter is refused (400, `ERR_UNKNOWN_QUERY`): a typo
 *   such as `?grup=` must not silently mean "no group".
 * - `/hub` — envelope mode (see docs/protocol.md).
 *
 * Subprotocols: a session that asks for subprotocols gets the upstream's
 * negotiated one back if it offered it; before the upstream's first open,
 * the first configured `protocols` entry it offered. A session that offers
 * only others is refused (400, `ERR_SUBPROTOCOL_UNAVAILABLE`) naming the
 * configured ones, rather than completing a handshake its client would then
 * reject.
 *
 * Upstream loss, for transparent sessions (`onUpstreamLoss`, per upstream):
 * `close` (the default) ends them with 1012 once the outage is reported
 * (after `concealFailures` failed attempts) and refuses new ones until the
 * upstream is back, so a worker's own reconnect-and-resync code runs exactly
 * as it would against the upstream itself; `hold` keeps them attached through
 * the outage. An upstream closed for good (a fatal close code, an auth
 * failure) closes its sessions with 1011 and refuses new ones with 503.
 * Envelope sessions always stay and get `state` frames.
 */
import { EventEmitter } from 'node:events';
import type { IncomingMessage } from 'node:http';
import { ERROR_CATALOG, type ErrorCode } from '../errors.js';
import { silentLogger, type Logger } from '../observe/log.js';
import { HardenedServer } from '../server/server.js';
import type { PeerInfo, Refusal, Session as ServerSession, ServerStats } from '../server/types.js';
import type { StateChange } from '../upstream/types.js';
import { SLOW_CONSUMER_POLICIES, type DropCode, type SlowConsumerPolicy } from './backlog.js';
import type { HubConfig, UpstreamConfig } from './config.js';
import { HubCluster, type HubClusterStats } from './cluster-node.js';
import { Connection, type ConnectionMode, type ConnectionStats } from './connection.js';
import { EnvelopeServer } from './envelope.js';
import { frame } from './frame.js';
import { ENVELOPE_PROTOCOL } from './envelope-codec.js';
import { planReload, type ReloadPlan } from './reload.js';
import { Outlet, DEFAULT_END_TIMEOUT_MS } from './outlet.js';
import { Session } from './session.js';
import { upstreamStats, type HubUpstreamStats } from './stats.js';
import { HubUpstream } from './upstream.js';
import { TickWriter } from './writer.js';

export const TRANSPARENT_PREFIX = '/u/';
export const ENVELOPE_PATH = '/hub';
/** Query parameters a transparent attach understands. */
export const TRANSPARENT_QUERY = ['group', 'snapshot', 'slowConsumer'] as const;
/** Query parameters an envelope attach understands. */
export const ENVELOPE_QUERY = ['slowConsumer'] as const;
/** The key of a transparent connection's one session. */
const TRANSPARENT_KEY = '';

export type { HubUpstreamStats, ConnectionStats };

/** The one stats snapshot that feeds /status, /metrics and the status page. */
export interface HubStats {
  startedAt: number;
  now: number;
  pid: number;
  upstreams: HubUpstreamStats[];
  connections: ConnectionStats[];
  server: ServerStats;
  /** Messages not delivered to sessions, by reason, since start (sessions that left included). */
  dropped: Partial<Record<DropCode, number>>;
  /** Cluster mode: this hub, NATS, and who holds each upstream. */
  cluster?: HubClusterStats;
}

export interface HubEvents {
  state: [upstream: string, change: StateChange];
  connection: [Connection];
}

export interface HubOptions {
  config: HubConfig;
  logger?: Logger;
}

export class Hub extends EventEmitter<HubEvents> {
  readonly startedAt = Date.now();
  readonly #upstreams = new Map<string, HubUpstream>();
  readonly #connections = new Map<string, Connection>();
  readonly server: HardenedServer;
  readonly log: Logger;
  readonly #writer = new TickWriter();
  readonly #envelope: EnvelopeServer;
  #config: HubConfig;
  /** Drops summed over connections that already left, so totals never go backwards. */
  readonly #retiredDrops: Partial<Record<DropCode, number>> = {};
  #closing: Promise<void> | undefined;
  #cluster: HubCluster | undefined;
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
    this.#envelope = new EnvelopeServer({
      upstream: (name) => this.#upstreams.get(name),
      upstreamNames: () => [...this.#upstreams.keys()],
      open: (s) => this.#register(s, 'envelope', this.#policyOf(s, undefined), this.#config.maxQueueBytes),
      log: this.log,
    });
    for (const upstream of c.upstreams) this.#addUpstream(upstream);
  }

  get config(): HubConfig {
    return this.#config;
  }

  /** The configured upstreams by name (read-only view). */
  get upstreams(): ReadonlyMap<string, HubUpstream> {
    return this.#upstreams;
  }

  /** Attached worker connections by id (read-only view). */
  get connections(): ReadonlyMap<string, Connection> {
    return this.#connections;
  }

  /** The cluster this hub takes part in (after `start()`, when the config has `cluster:`). */
  get cluster(): HubCluster | undefined {
    return this.#cluster;
  }

  /**
   * Join the cluster (with `cluster:`), bind the listeners and connect every
   * upstream — in cluster mode, campaign for each; the holder connects.
   */
  async start(): Promise<void> {
    if (this.#config.cluster) {
      this.#cluster = await HubCluster.connect(this.#config.cluster, this.log);
      for (const up of this.#upstreams.values()) this.#cluster.attach(up);
    }
    try {
      await this.server.listen();
    } catch (err) {
      await this.#cluster?.close();
      throw err;
    }
    for (const up of this.#upstreams.values()) up.start();
    this.log.info({ addresses: this.server.addresses(), upstreams: [...this.#upstreams.keys()] }, 'hub started');
  }

  /**
   * Apply a new config (SIGHUP), key by key: upstreams added are connected,
   * removed ones drained (their transparent sessions closed 1001); an
   * upstream whose connection target changed (url, headers, protocols, …) is
   * replaced — envelope sessions move to the new connection with their
   * subscriptions, transparent ones follow `onUpstreamLoss`; policies and
   * limits apply in place. Listener addresses need a restart: the plan says
   * so and it is logged.
   */
  async reload(next: HubConfig): Promise<ReloadPlan> {
    // One reload at a time: two SIGHUPs in a row must not both replace the same upstream.
    const run = this.#reloading.then(() => this.#reload(next));
    this.#reloading = run.catch(() => undefined);
    return run;
  }

  async #reload(next: HubConfig): Promise<ReloadPlan> {
    const plan = planReload(this.#config, next);
    // Secrets the new config brings are redacted from then on (the HTTP side re-reads them on every snapshot).
    const secrets = new Set([...(this.#config.secrets ?? []), ...(next.secrets ?? [])]);
    this.#config = { ...this.#config, upstreams: next.upstreams, slowConsumer: next.slowConsumer, maxQueueBytes: next.maxQueueBytes, logLevel: next.logLevel, secrets };
    await Promise.all(plan.removed.map((name) => this.#removeUpstream(name, 'ERR_UPSTREAM_REMOVED', 'upstream removed by config reload')));
    for (const name of plan.replaced) {
      const old = this.#upstreams.get(name);
      // The old one's lease goes first: the replacement campaigns under the same name.
      await this.#cluster?.detach(name);
      const up = this.#addUpstream(next.upstreams.find((u) => u.name === name)!);
      if (old) {
        // Nothing is unsubscribed on a connection that is going away; envelope sessions move with their topics.
        old.route.retired = true;
        this.#envelope.moved(old, up);
        this.#retire(old, up.config.onUpstreamLoss === 'hold' ? undefined : 'ERR_UPSTREAM_LOST', 'upstream connection target changed by config reload', up);
        void old.close(1000, 'replaced by config reload');
      }
      up.start();
    }
    for (const name of plan.added) this.#addUpstream(next.upstreams.find((u) => u.name === name)!).start();
    for (const name of plan.tuned) {
      const up = this.#upstreams.get(name);
      if (up) up.config = next.upstreams.find((u) => u.name === name)!;
    }
    if (next.logLevel !== this.log.level) this.log.level = next.logLevel;
    // Policies and bounds apply to attached connections in place.
    for (const connection of this.#connections.values()) {
      const first = [...connection.sessions.values()][0];
      const upstream = connection.mode === 'transparent' && first ? this.#upstreams.get(first.upstream)?.config : undefined;
      connection.outlet.reconfigure(connection.policyOverride ?? upstream?.slowConsumer ?? this.#config.slowConsumer, upstream?.maxQueueBytes ?? this.#config.maxQueueBytes);
    }
    if (plan.restartNeeded.length > 0) this.log.warn({ keys: plan.restartNeeded }, 'config reload: these keys need a restart to take effect');
    this.log.info({ added: plan.added, removed: plan.removed, changed: plan.replaced, tuned: plan.tuned }, 'config reloaded');
    return plan;
  }

  stats(): HubStats {
    const dropped: Partial<Record<DropCode, number>> = { ...this.#retiredDrops };
    const connections = [...this.#connections.values()].map((c) => {
      const st = c.stats();
      for (const [reason, n] of Object.entries(st.dropped) as Array<[DropCode, number]>) dropped[reason] = (dropped[reason] ?? 0) + n;
      return st;
    });
    return {
      startedAt: this.startedAt,
      now: Date.now(),
      pid: process.pid,
      upstreams: [...this.#upstreams.values()].map(upstreamStats),
      connections,
      server: this.server.stats(),
      dropped,
      ...(this.#cluster ? { cluster: this.#cluster.stats() } : {}),
    };
  }

  /** Graceful: stop accepting, close sessions 1001 after flushing, close upstreams. Idempotent: a second call waits for the first. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      // Every connection gets what is queued for it, then 1001; new ones are refused meanwhile (authorize).
      const timeoutMs = this.#config.server.drainTimeoutMs ?? DEFAULT_END_TIMEOUT_MS;
      const code = ERROR_CATALOG.ERR_SHUTTING_DOWN.closeCode;
      await Promise.all([...this.#connections.values()].map((c) => c.outlet.end(code, 'hub shutting down', timeoutMs)));
      await this.server.close();
      // Leases released before the upstreams close: another hub takes over in milliseconds.
      await this.#cluster?.close();
      await Promise.all([...this.#upstreams.values()].map((up) => up.close(1000, 'hub shutting down')));
    })();
    return this.#closing;
  }

  /** Immediate. Idempotent. */
  destroy(): void {
    this.#closing ??= Promise.resolve();
    this.server.destroy();
    void this.#cluster?.close();
    for (const up of this.#upstreams.values()) up.destroy();
  }

  #addUpstream(config: UpstreamConfig): HubUpstream {
    const up = new HubUpstream(config, {
      logger: this.log,
      slowAfterMs: this.#config.slowAfterMs,
      readerOf: (session) => this.#connections.get(session.outlet.id),
    });
    up.on('state', (change) => this.#onState(up, change));
    this.#upstreams.set(config.name, up);
    this.#cluster?.attach(up);
    return up;
  }

  #onState(up: HubUpstream, change: StateChange): void {
    this.emit('state', up.name, change);
    this.#envelope.state(up, change);
    if (this.#closing || this.#upstreams.get(up.name) !== up) return;
    if (change.to === 'closed') {
      this.#releaseTransparent(up, 'ERR_UPSTREAM_UNAVAILABLE', `upstream closed: ${change.cause?.code ?? change.reason}`);
    } else if (change.to === 'reconnecting' && change.outage && up.config.onUpstreamLoss === 'close') {
      this.#releaseTransparent(up, 'ERR_UPSTREAM_LOST', `upstream lost: ${change.cause?.code ?? change.reason}`);
    }
  }

  /** End an upstream's transparent sessions (after what is queued for them) with the close code of `code`. */
  #releaseTransparent(up: HubUpstream, code: ErrorCode, reason: string): void {
    const closeCode = (ERROR_CATALOG[code] as { closeCode?: number }).closeCode ?? 1011;
    const text = reason.slice(0, 120);
    for (const session of [...up.route.sessions]) {
      if (session.transparent) void session.outlet.end(closeCode, text, this.#config.server.drainTimeoutMs ?? DEFAULT_END_TIMEOUT_MS);
    }
  }

  /**
   * An upstream leaves the hub (removed, or replaced by `next`): transparent
   * sessions end with `code`, or — `hold`, on a replacement — move to `next`;
   * envelope sessions only leave that upstream (their connection serves
   * others, and moved already when there is a `next`).
   */
  #retire(up: HubUpstream, code: ErrorCode | undefined, reason: string, next?: HubUpstream): void {
    up.route.retired = true;
    if (code) this.#releaseTransparent(up, code, reason);
    for (const connection of this.#connections.values()) {
      for (const [key, session] of [...connection.sessions]) {
        if (!up.route.sessions.has(session)) continue;
        if (session.transparent && code) continue;
        const topics = [...session.topics];
        connection.leave(key);
        if (!session.transparent || !next) continue;
        // `hold`: the worker stays, and what it subscribed to is subscribed on the new connection (json topics;
        // a jsonrpc subscription's ids belong to the old node and end with it).
        const moved = this.#joinTransparent(connection, next, session.group, session.wantsSnapshot);
        for (const topic of topics) if (!moved.topics.has(topic)) next.route.subscribe(moved, topic, false, undefined, () => undefined);
      }
    }
  }

  async #removeUpstream(name: string, code: ErrorCode, reason: string): Promise<void> {
    const up = this.#upstreams.get(name);
    if (!up) return;
    this.#upstreams.delete(name);
    this.#retire(up, code, reason);
    await this.#cluster?.detach(name);
    await up.close(1000, reason);
  }

  #upstreamOf(path: string): HubUpstream | undefined {
    if (!path.startsWith(TRANSPARENT_PREFIX)) return undefined;
    let name: string;
    try {
      name = decodeURIComponent(path.slice(TRANSPARENT_PREFIX.length));
    } catch {
      return undefined;
    }
    return this.#upstreams.get(name);
  }

  #authorize(req: IncomingMessage, peer: PeerInfo): Refusal | undefined {
    if (this.#closing) return { status: 503, code: 'ERR_SHUTTING_DOWN', message: 'hub is shutting down' };
    const envelope = peer.path === ENVELOPE_PATH;
    const known: readonly string[] = envelope ? ENVELOPE_QUERY : TRANSPARENT_QUERY;
    for (const key of peer.query.keys()) {
      if (!known.includes(key)) {
        return { status: 400, code: 'ERR_UNKNOWN_QUERY', message: `unknown query parameter ${JSON.stringify(key.slice(0, 64))}; known: ${known.join(', ')}` };
      }
    }
    const policy = peer.query.get('slowConsumer');
    if (policy !== null && !SLOW_CONSUMER_POLICIES.includes(policy as SlowConsumerPolicy)) {
      return { status: 400, code: 'ERR_INVALID_OPTION', message: `slowConsumer must be one of ${SLOW_CONSUMER_POLICIES.join(', ')}` };
    }
    if (envelope) return undefined;
    if (!peer.path.startsWith(TRANSPARENT_PREFIX)) {
      return { status: 404, code: 'ERR_NOT_FOUND', message: `no route for ${peer.path}; attach to ${TRANSPARENT_PREFIX}<upstream> or ${ENVELOPE_PATH}` };
    }
    const up = this.#upstreamOf(peer.path);
    if (!up) return { status: 404, code: 'ERR_UNKNOWN_UPSTREAM', message: `unknown upstream in ${peer.path}; configured: ${[...this.#upstreams.keys()].join(', ')}` };
    if (up.state === 'closed') return { status: 503, code: 'ERR_UPSTREAM_UNAVAILABLE', message: `upstream ${up.name} is closed: ${up.lastChange?.reason ?? ''}` };
    if (up.config.onUpstreamLoss === 'close' && up.state !== 'open' && up.lastChange?.outage) {
      return { status: 503, code: 'ERR_UPSTREAM_LOST', message: `upstream ${up.name} is down: ${up.lastChange.cause?.code ?? up.lastChange.reason}` };
    }
    const offered = parseProtocols(req.headers['sec-websocket-protocol']);
    if (offered.length > 0 && this.#pickProtocol(up, new Set(offered)) === false) {
      const configured = (up.config.client.protocols as string[] | undefined) ?? [];
      return {
        status: 400,
        code: 'ERR_SUBPROTOCOL_UNAVAILABLE',
        message: `upstream ${up.name} is opened with ${configured.length > 0 ? `protocols ${configured.join(', ')}` : 'no subprotocol'}; the worker asked for ${offered.join(', ')}`.slice(0, 300),
      };
    }
    return undefined;
  }

  #selectProtocol(protocols: Set<string>, req: IncomingMessage): string | false {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    if (path === ENVELOPE_PATH) return protocols.has(ENVELOPE_PROTOCOL) ? ENVELOPE_PROTOCOL : false;
    const up = this.#upstreamOf(path);
    return up ? this.#pickProtocol(up, protocols) : false;
  }

  #pickProtocol(up: HubUpstream, protocols: Set<string>): string | false {
    const negotiated = up.client.protocol;
    if (negotiated && protocols.has(negotiated)) return negotiated;
    for (const p of (up.config.client.protocols as string[] | undefined) ?? []) if (protocols.has(p)) return p;
    return false;
  }

  #policyOf(s: ServerSession, up: UpstreamConfig | undefined): SlowConsumerPolicy {
    return (s.peer.query.get('slowConsumer') as SlowConsumerPolicy | null) ?? up?.slowConsumer ?? this.#config.slowConsumer;
  }

  #attach(s: ServerSession): void {
    if (s.peer.path === ENVELOPE_PATH) {
      this.#envelope.attach(s);
      return;
    }
    const up = this.#upstreamOf(s.peer.path);
    if (!up) {
      // authorize() refused unknown paths already; an upstream removed between the two is gone for good.
      s.ws.close(ERROR_CATALOG.ERR_UPSTREAM_REMOVED.closeCode, 'no such upstream');
      return;
    }
    const query = s.peer.query;
    const snapshot = query.get('snapshot');
    const connection = this.#register(s, 'transparent', this.#policyOf(s, up.config), up.config.maxQueueBytes ?? this.#config.maxQueueBytes);
    const session = this.#joinTransparent(connection, up, query.get('group') || undefined, snapshot === '1' || snapshot === 'true');
    this.log.info({ session: s.id, mode: 'transparent', upstream: up.name, transport: s.peer.transport, remoteAddress: s.peer.remoteAddress, group: session.group }, 'session attached');
    s.ws.on('message', (data: Buffer, isBinary: boolean) => {
      connection.messagesIn++;
      connection.bytesIn += data.length;
      const current = connection.sessions.get(TRANSPARENT_KEY);
      if (!current) return;
      current.messagesIn++;
      current.bytesIn += data.length;
      this.#upstreams.get(current.upstream)?.route.fromSession(current, data, isBinary);
    });
  }

  /** The one session of a transparent connection, on `up`. */
  #joinTransparent(connection: Connection, up: HubUpstream, group: string | undefined, snapshot: boolean): Session {
    const session = new Session({
      id: connection.id,
      upstream: up.name,
      outlet: connection.outlet,
      group,
      snapshot,
      encoder: { message: (m) => m.frame, own: (data, isBinary) => frame(data, isBinary) },
    });
    connection.join(TRANSPARENT_KEY, up, session);
    return session;
  }

  /** Track a connection until its socket closes; then detach every session it had from its upstream. */
  #register(s: ServerSession, mode: ConnectionMode, policy: SlowConsumerPolicy, maxQueueBytes: number | undefined): Connection {
    // The outlet reports drops through the connection it belongs to, which exists once the outlet does.
    const owner: { connection?: Connection } = {};
    const outlet = new Outlet({
      id: s.id,
      ws: s.ws,
      socket: s.socket,
      writer: this.#writer,
      policy,
      maxQueueBytes,
      onDrop: (reason, count, topic, upstream) => {
        if (this.log.isLevelEnabled('debug')) this.log.debug({ session: s.id, upstream, reason, count, topic }, 'dropped for slow consumer');
        if (owner.connection && mode === 'envelope') this.#envelope.dropped(owner.connection, reason, count, topic, upstream);
      },
    });
    const registered = new Connection({ id: s.id, mode, ws: s.ws, outlet, peer: { transport: s.peer.transport, remoteAddress: s.peer.remoteAddress } });
    owner.connection = registered;
    if (s.peer.query.get('slowConsumer') !== null) registered.policyOverride = policy;
    this.#connections.set(s.id, registered);
    const peer = { transport: s.peer.transport, remoteAddress: s.peer.remoteAddress };
    if (mode === 'envelope') this.log.info({ session: s.id, mode, ...peer }, 'session attached');
    s.ws.once('close', (code: number, reason: Buffer) => {
      for (const key of [...registered.sessions.keys()]) registered.leave(key);
      const st = registered.outlet.stats();
      this.log.info(
        { session: s.id, mode, ...peer, code, reason: reason.toString(), messagesOut: st.messagesOut, dropped: st.dropped },
        'session detached',
      );
      this.#connections.delete(s.id);
      for (const [r, n] of Object.entries(st.dropped) as Array<[DropCode, number]>) this.#retiredDrops[r] = (this.#retiredDrops[r] ?? 0) + n;
    });
    this.emit('connection', registered);
    return registered;
  }
}

function parseProtocols(header: string | string[] | undefined): string[] {
  const text = Array.isArray(header) ? header.join(',') : header ?? '';
  return text.split(',').map((p) => p.trim()).filter((p) => p.length > 0);
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
