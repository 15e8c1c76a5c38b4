/**
 * A limit-enforcing "exchange": a real ws server that behaves the way
 * Binance and KuCoin do, for tests of upstream pools (sharding, pacing,
 * failover).
 *
 * - `{"method":"SUBSCRIBE","params":["t1","t2"],"id":N}` and UNSUBSCRIBE are
 *   answered `{"result":null,"id":N}`; LIST_SUBSCRIPTIONS with the list;
 *   anything else `{"error":{"code":2,"msg":…},"id":…}` (counted).
 * - Per connection at most `maxSubscriptions` live topics, and at most
 *   `maxControlPerSecond` frames from the client (text, binary and, as
 *   Binance counts them, ping and pong) in any rolling `windowMs`. A
 *   violation closes that connection 1008 with a reason naming the limit,
 *   and is counted; the violating frame is not applied.
 * - At most `maxConnectionsPerSecond` new connections in any rolling window
 *   (all IPs): past it the upgrade is refused HTTP 429, as an exchange
 *   rate-limits connection attempts per IP.
 * - Ticks `{"stream":"<topic>","data":{"seq":N,"topic":"<topic>","t":<ms>}}`
 *   for every subscribed topic, from a {@link SharedFeed}: on demand
 *   (`tick(topic?)`) or on the feed's clock. Exchanges given the same feed
 *   (or, across processes, the same clock) publish the same seqs.
 *
 * Counted for the test: connections (per rolling window and per IP),
 * subscribes per topic over the instance's life (each topic subscribed
 * exactly once?), live subscriptions per connection, the most control frames
 * any connection sent in one window (the limit's headroom). `close()` says
 * goodbye (1001); `kill()` drops every socket without a close frame, as a
 * crash would; restart with `Exchange.start({ port: old.port, feed: old.feed })`
 * (or run it as a child process to SIGKILL: exchange-process.ts).
 */
import { EventEmitter, once } from 'node:events';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import { SharedFeed, type FeedSink } from './exchange-feed.js';

export { SharedFeed, type FeedClock, type SharedFeedOptions } from './exchange-feed.js';

export interface ExchangeLimits {
  /** Live subscriptions per connection; a SUBSCRIBE past it closes the connection 1008. @default Infinity */
  maxSubscriptions?: number;
  /** Frames from the client per connection in any rolling `windowMs`; one more closes it 1008. @default Infinity */
  maxControlPerSecond?: number;
  /** New connections (all IPs) in any rolling `windowMs`; past it the upgrade is refused 429. @default Infinity */
  maxConnectionsPerSecond?: number;
  /** The rolling window of both rates. @default 1000 */
  windowMs?: number;
  /** Whether the client's ping and pong frames count as control frames (Binance counts them). @default true */
  countPings?: boolean;
}

export interface ExchangeOptions extends ExchangeLimits {
  /** @default '127.0.0.1' */
  host?: string;
  /** 0 picks a free port; give the old one to restart in place. @default 0 */
  port?: number;
  /** The feed to serve; a manual feed of its own by default. */
  feed?: SharedFeed;
}

/** Which limit a connection broke. */
export type ExchangeLimit = 'maxSubscriptions' | 'maxControlPerSecond';

export interface ExchangeStats {
  /** Connections accepted over this instance's life. */
  connections: number;
  /** Open now. */
  open: number;
  /** When each connection was accepted (epoch ms), in order. */
  connectedAt: number[];
  /** Connections accepted per remote IP. */
  connectionsByIp: Record<string, number>;
  /** The most connections accepted within one rolling window. */
  maxConnectionsInWindow: number;
  /** Upgrades refused 429 by `maxConnectionsPerSecond`. */
  refusedConnections: number;
  /** Connections closed 1008 for breaking a limit, by limit. */
  limitCloses: Record<ExchangeLimit, number>;
  /** Frames received from clients, every connection (pings and pongs when counted). */
  controlFrames: number;
  /** The most frames one connection sent within one rolling window. */
  maxControlInWindow: number;
  /** SUBSCRIBE / UNSUBSCRIBE frames received (one may carry many topics). */
  subscribeFrames: number;
  unsubscribeFrames: number;
  /** Topics subscribed, per topic, over the instance's life (2 = subscribed twice, maybe on two connections). */
  subscribes: Record<string, number>;
  unsubscribes: Record<string, number>;
  /** Requests answered with an error (bad JSON, unknown method, bad params). */
  badRequests: number;
  /** Tick messages sent to clients. */
  published: number;
  /** Every open connection with its live subscriptions. */
  live: Array<{ id: number; ip: string; subscriptions: string[] }>;
}

export interface ExchangeEvents {
  connection: [{ id: number; ip: string }];
  subscribe: [{ id: number; topics: string[] }];
  unsubscribe: [{ id: number; topics: string[] }];
  violation: [{ id: number; limit: ExchangeLimit; reason: string }];
  disconnect: [{ id: number; code: number }];
}

interface Conn {
  id: number;
  ip: string;
  ws: WebSocket;
  topics: Set<string>;
  /** Arrival times (performance.now()) of the frames inside the current window. */
  frames: number[];
  /** Closed for a violation: frames still in flight are ignored. */
  closing: boolean;
}

export class Exchange extends EventEmitter<ExchangeEvents> implements FeedSink {
  readonly feed: SharedFeed;
  readonly port: number;
  readonly host: string;
  readonly url: string;
  readonly #http: Server;
  readonly #wss: WebSocketServer;
  readonly #limits: Required<ExchangeLimits>;
  readonly #conns = new Set<Conn>();
  readonly #byTopic = new Map<string, Set<Conn>>();
  readonly #stats = {
    connections: 0, refusedConnections: 0, maxConnectionsInWindow: 0, controlFrames: 0, maxControlInWindow: 0,
    subscribeFrames: 0, unsubscribeFrames: 0, badRequests: 0, published: 0,
    connectedAt: [] as number[], connectionsByIp: {} as Record<string, number>,
    limitCloses: { maxSubscriptions: 0, maxControlPerSecond: 0 } as Record<ExchangeLimit, number>,
    subscribes: {} as Record<string, number>, unsubscribes: {} as Record<string, number>,
  };
  /** Accept times (performance.now()) inside the current window. */
  readonly #accepts: number[] = [];
  #nextId = 0;
  #stopped: Promise<void> | undefined;

  private constructor(http: Server, wss: WebSocketServer, options: ExchangeOptions) {
    super();
    this.#http = http;
    this.#wss = wss;
    this.host = options.host ?? '127.0.0.1';
    this.port = (http.address() as AddressInfo).port;
    this.url = `ws://${this.host.includes(':') ? `[${this.host}]` : this.host}:${this.port}/`;
    this.#limits = {
      maxSubscriptions: options.maxSubscriptions ?? Infinity,
      maxControlPerSecond: options.maxControlPerSecond ?? Infinity,
      maxConnectionsPerSecond: options.maxConnectionsPerSecond ?? Infinity,
      windowMs: options.windowMs ?? 1000,
      countPings: options.countPings ?? true,
    };
    this.feed = options.feed ?? new SharedFeed();
    http.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => this.#upgrade(req, socket, head));
    this.feed.attach(this);
  }

  /** Listen (on `port`, 0 for any) and serve `feed`. */
  static async start(options: ExchangeOptions = {}): Promise<Exchange> {
    const http = createServer((_req, res) => res.writeHead(426, { 'content-type': 'text/plain' }).end('websocket only\n'));
    const wss = new WebSocketServer({ noServer: true });
    http.listen(options.port ?? 0, options.host ?? '127.0.0.1');
    await once(http, 'listening');
    return new Exchange(http, wss, options);
  }

  /** Advance the feed (manual feeds) and publish on every exchange serving it; the seq published per topic. */
  tick(topic?: string | readonly string[]): Record<string, number> {
    return this.feed.tick(topic);
  }

  stats(): ExchangeStats {
    const s = this.#stats;
    return {
      ...s,
      open: this.#conns.size,
      connectedAt: [...s.connectedAt],
      connectionsByIp: { ...s.connectionsByIp },
      limitCloses: { ...s.limitCloses },
      subscribes: { ...s.subscribes },
      unsubscribes: { ...s.unsubscribes },
      live: [...this.#conns].map((c) => ({ id: c.id, ip: c.ip, subscriptions: [...c.topics] })),
    };
  }

  /** Close every connection with `code` (e.g. 1001 going away, 1013 try again later) and keep listening. */
  dropConnections(code = 1001, reason = 'going away'): void {
    for (const c of this.#conns) c.ws.close(code, reason);
  }

  /** Graceful stop: every connection gets 1001, then the listener closes. Idempotent. */
  close(): Promise<void> {
    this.#stopped ??= this.#stop(false);
    return this.#stopped;
  }

  /** A crash: every socket dropped without a close frame, the listener closed. Idempotent. */
  kill(): Promise<void> {
    this.#stopped ??= this.#stop(true);
    return this.#stopped;
  }

  // ── FeedSink ───────────────────────────────────────────────────────────

  liveTopics(): Iterable<string> {
    return this.#byTopic.keys();
  }

  publish(topic: string, seq: number): void {
    const conns = this.#byTopic.get(topic);
    if (!conns || conns.size === 0) return;
    const frame = JSON.stringify({ stream: topic, data: { seq, topic, t: Date.now() } });
    for (const c of conns) {
      if (c.closing) continue;
      c.ws.send(frame);
      this.#stats.published++;
    }
  }

  // ── connections ────────────────────────────────────────────────────────

  async #stop(crash: boolean): Promise<void> {
    this.feed.detach(this);
    for (const c of this.#conns) {
      if (crash) c.ws.terminate();
      else c.ws.close(1001, 'exchange shutting down');
    }
    if (!crash) {
      // A client that never answers the close frame is cut off after a second, as a server shutting down would.
      const waiting = [...this.#conns].map((c) => (c.ws.readyState === c.ws.CLOSED ? Promise.resolve() : once(c.ws, 'close')));
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([Promise.all(waiting), new Promise<void>((resolve) => (timer = setTimeout(resolve, 1000)))]);
      clearTimeout(timer);
      for (const c of this.#conns) c.ws.terminate();
    }
    this.#wss.close();
    this.#http.closeAllConnections();
    await new Promise<void>((resolve) => this.#http.close(() => resolve()));
  }

  #upgrade(req: IncomingMessage, socket: Socket, head: Buffer): void {
    if (this.#stopped) {
      socket.destroy();
      return;
    }
    const now = performance.now();
    this.#expire(this.#accepts, now);
    if (this.#accepts.length >= this.#limits.maxConnectionsPerSecond) {
      this.#stats.refusedConnections++;
      socket.end('HTTP/1.1 429 Too Many Requests\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
      return;
    }
    this.#accepts.push(now);
    this.#stats.maxConnectionsInWindow = Math.max(this.#stats.maxConnectionsInWindow, this.#accepts.length);
    this.#wss.handleUpgrade(req, socket, head, (ws) => this.#accept(ws, req.socket.remoteAddress ?? 'unknown'));
  }

  #accept(ws: WebSocket, ip: string): void {
    const conn: Conn = { id: ++this.#nextId, ip, ws, topics: new Set(), frames: [], closing: false };
    this.#conns.add(conn);
    const s = this.#stats;
    s.connections++;
    s.connectedAt.push(Date.now());
    s.connectionsByIp[ip] = (s.connectionsByIp[ip] ?? 0) + 1;
    ws.on('error', () => undefined);
    ws.on('message', (data, isBinary) => {
      if (this.#counted(conn)) this.#request(conn, data, isBinary);
    });
    if (this.#limits.countPings) {
      ws.on('ping', () => this.#counted(conn));
      ws.on('pong', () => this.#counted(conn));
    }
    ws.on('close', (code) => {
      this.#conns.delete(conn);
      for (const topic of conn.topics) this.#unindex(conn, topic);
      this.emit('disconnect', { id: conn.id, code });
    });
    this.emit('connection', { id: conn.id, ip });
  }

  /** Count one frame against the rolling window; false when it broke the limit (the connection is being closed). */
  #counted(conn: Conn): boolean {
    if (conn.closing) return false;
    this.#stats.controlFrames++;
    const now = performance.now();
    this.#expire(conn.frames, now);
    conn.frames.push(now);
    this.#stats.maxControlInWindow = Math.max(this.#stats.maxControlInWindow, conn.frames.length);
    const max = this.#limits.maxControlPerSecond;
    if (conn.frames.length <= max) return true;
    this.#violate(conn, 'maxControlPerSecond', `too many control frames: ${conn.frames.length} in ${this.#limits.windowMs} ms (maxControlPerSecond ${max})`);
    return false;
  }

  #violate(conn: Conn, limit: ExchangeLimit, reason: string): void {
    conn.closing = true;
    this.#stats.limitCloses[limit]++;
    this.emit('violation', { id: conn.id, limit, reason });
    conn.ws.close(1008, reason);
  }

  #request(conn: Conn, data: RawData, isBinary: boolean): void {
    let msg: unknown;
    try {
      msg = isBinary ? undefined : JSON.parse(rawText(data));
    } catch {
      msg = undefined;
    }
    const req = typeof msg === 'object' && msg !== null && !Array.isArray(msg) ? (msg as { method?: unknown; params?: unknown; id?: unknown }) : undefined;
    const id = req && (typeof req.id === 'number' || typeof req.id === 'string') ? req.id : null;
    const params = req?.params;
    const topics = Array.isArray(params) && params.every((p) => typeof p === 'string' && p !== '') ? (params as string[]) : undefined;
    switch (req?.method) {
      case 'SUBSCRIBE':
        if (!topics) return this.#error(conn, id, 'Invalid request: params must be a list of stream names');
        return this.#subscribe(conn, id, topics);
      case 'UNSUBSCRIBE':
        if (!topics) return this.#error(conn, id, 'Invalid request: params must be a list of stream names');
        return this.#unsubscribe(conn, id, topics);
      case 'LIST_SUBSCRIPTIONS':
        conn.ws.send(JSON.stringify({ result: [...conn.topics], id }));
        return;
      default:
        return this.#error(conn, id, req ? `Invalid request: unknown method ${JSON.stringify(req.method)}` : 'Invalid JSON');
    }
  }

  #subscribe(conn: Conn, id: number | string | null, topics: string[]): void {
    this.#stats.subscribeFrames++;
    const after = new Set([...conn.topics, ...topics]);
    const max = this.#limits.maxSubscriptions;
    if (after.size > max) {
      this.#violate(conn, 'maxSubscriptions', `too many subscriptions: ${after.size} (maxSubscriptions ${max})`);
      return;
    }
    for (const topic of topics) {
      this.#stats.subscribes[topic] = (this.#stats.subscribes[topic] ?? 0) + 1;
      if (conn.topics.has(topic)) continue;
      conn.topics.add(topic);
      let set = this.#byTopic.get(topic);
      if (!set) this.#byTopic.set(topic, (set = new Set()));
      set.add(conn);
      this.feed.know(topic);
    }
    conn.ws.send(JSON.stringify({ result: null, id }));
    this.emit('subscribe', { id: conn.id, topics });
  }

  #unsubscribe(conn: Conn, id: number | string | null, topics: string[]): void {
    this.#stats.unsubscribeFrames++;
    for (const topic of topics) {
      this.#stats.unsubscribes[topic] = (this.#stats.unsubscribes[topic] ?? 0) + 1;
      if (conn.topics.delete(topic)) this.#unindex(conn, topic);
    }
    conn.ws.send(JSON.stringify({ result: null, id }));
    this.emit('unsubscribe', { id: conn.id, topics });
  }

  #unindex(conn: Conn, topic: string): void {
    const set = this.#byTopic.get(topic);
    set?.delete(conn);
    if (set?.size === 0) this.#byTopic.delete(topic);
  }

  #error(conn: Conn, id: number | string | null, msg: string): void {
    this.#stats.badRequests++;
    conn.ws.send(JSON.stringify({ error: { code: 2, msg }, id }));
  }

  /** Drop times that left the rolling window ending at `now`. */
  #expire(times: number[], now: number): void {
    let gone = 0;
    while (gone < times.length && now - (times[gone] ?? now) >= this.#limits.windowMs) gone++;
    if (gone > 0) times.splice(0, gone);
  }
}

function rawText(data: RawData): string {
  if (Buffer.isBuffer(data)) return data.toString('utf8');
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  return Buffer.from(data).toString('utf8');
}
