/**
 * The hub's HTTP side, loopback by default:
 *
 * - `/` — the live status page (plain HTML/JS, uPlot charts), fed by `/events`;
 * - `/events` — Server-Sent Events: the snapshot every second and at once on
 *   every upstream state change;
 * - `/status` — the snapshot as JSON;
 * - `/metrics` — Prometheus text exposition from the same snapshot;
 * - `/healthz` — 200 when ready (see {@link ReadyWhen}), 503 with the reasons
 *   otherwise; the body says why in both cases.
 *
 * Every one of them reads {@link observe}'s snapshot, so they never disagree.
 *
 * Access (see {@link HostGuard}): a request whose `Host` is not a name this
 * listener answers to is refused 421 `ERR_HOST_REFUSED` — a web page that
 * rebinds its own DNS name to 127.0.0.1 reaches the port, but with its own
 * name in `Host`. With a `token`, everything but `/healthz` and the page's
 * static files needs `Authorization: Bearer <token>` (the page's
 * EventSource, which cannot set headers, sends `?token=` on `/events`);
 * otherwise 401 `ERR_UNAUTHORIZED`.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tokenMatches } from '../server/handshake.js';
import { z } from '../zod.js';
import { WshubError, errnoOf } from '../errors.js';
import type { Hub } from '../hub/hub.js';
import { parseOptions } from '../options.js';
import { ASSETS, sendAsset } from './assets.js';
import { DEFAULT_EVENTS_INTERVAL_MS, DEFAULT_MAX_EVENT_CLIENTS, StatsEvents } from './events.js';
import { checkReadyWhen, DEFAULT_READY_WHEN, type ReadyWhen } from './health.js';
import { HostGuard } from './host-guard.js';
import { DEFAULT_HISTORY_SAMPLES, TrafficHistory } from './history.js';
import { EventLoopMonitor } from './loop.js';
import { DEFAULT_MAX_TOPIC_LABELS, HubMetrics } from './metrics.js';
import { Redactor } from '../redact.js';
import { observe, type ObservedStats } from './snapshot.js';

export { health, type Health, type ReadyWhen } from './health.js';

export type RouteHandler = (req: IncomingMessage, res: ServerResponse, url: URL) => void | Promise<void>;

/** Worker connections listed on the status page (the deepest queues first); /status lists all. @default 200 */
export const DEFAULT_PAGE_MAX_CONNECTIONS = 200;

export interface HubHttpOptions {
  /** Which upstreams must be open for /healthz to answer 200. @default 'all' */
  readyWhen?: ReadyWhen;
  /** Per-topic metric labels per upstream before the rest are summed under `_other`. @default 50 */
  maxTopicLabels?: number;
  /** Push interval of /events. @default 1000 */
  eventsIntervalMs?: number;
  /** Concurrent /events clients. @default 32 */
  maxEventClients?: number;
  /** @default 200 */
  pageMaxConnections?: number;
  /**
   * What keeps secrets out of every response. The daemon shares its own with
   * its logger (and grows it on reload). @default built from `hub.config.secrets`
   */
  redactor?: Redactor;
  /** Bearer token required on everything but /healthz and the page's static files. @default none */
  token?: string;
  /** Host names accepted besides the bound address (and `localhost` on loopback). @default [] */
  allowedHosts?: string[];
  /** Traffic samples (one per `eventsIntervalMs`) kept for the page's charts; 0 keeps none. @default 300 */
  historySamples?: number;
}

const httpOptionsSchema = z.strictObject({
  readyWhen: z.union([z.enum(['all', 'any', 'none']), z.array(z.string().min(1)).min(1).readonly()]).default(DEFAULT_READY_WHEN),
  maxTopicLabels: z.number().int().min(0).default(DEFAULT_MAX_TOPIC_LABELS),
  eventsIntervalMs: z.number().int().min(50).default(DEFAULT_EVENTS_INTERVAL_MS),
  maxEventClients: z.number().int().min(1).default(DEFAULT_MAX_EVENT_CLIENTS),
  pageMaxConnections: z.number().int().min(0).default(DEFAULT_PAGE_MAX_CONNECTIONS),
  redactor: z.instanceof(Redactor).optional(),
  token: z.string().min(1).optional(),
  allowedHosts: z.array(z.string().min(1)).default([]),
  historySamples: z.number().int().min(0).max(100_000).default(DEFAULT_HISTORY_SAMPLES),
});

/** What the status page receives: the snapshot with the connection list trimmed to the deepest queues. */
export interface PageSnapshot extends ObservedStats {
  connectionsTotal: number;
}

export class HubHttpServer {
  readonly server: Server;
  readonly routes = new Map<string, RouteHandler>();
  readonly metrics: HubMetrics;
  readonly events: StatsEvents;
  readonly history: TrafficHistory;
  readonly options: Readonly<Required<Omit<HubHttpOptions, 'redactor' | 'token'>>>;
  readonly redactor: Redactor;
  /** Paths served without the token (the page's files carry no data). */
  readonly openPaths = new Set<string>(['/healthz', '/index.html', ...ASSETS.keys()]);
  readonly #token: string | undefined;
  readonly #hosts: HostGuard;
  readonly #hub: Hub;
  readonly #loop = new EventLoopMonitor();
  #closing: Promise<void> | undefined;

  constructor(hub: Hub, options: HubHttpOptions = {}) {
    this.#hub = hub;
    const { redactor, token, ...rest } = parseOptions(httpOptionsSchema, options, 'http');
    this.options = Object.freeze(rest);
    this.redactor = redactor ?? new Redactor(hub.config.secrets ?? []);
    this.redactor.add(token === undefined ? [] : [token]);
    this.#token = token;
    this.#hosts = new HostGuard(rest.allowedHosts);
    checkReadyWhen(this.options.readyWhen, hub.config.upstreams.map((u) => u.name));
    this.metrics = new HubMetrics(() => this.snapshot(), { maxTopicLabels: this.options.maxTopicLabels });
    this.history = new TrafficHistory({ hub, intervalMs: this.options.eventsIntervalMs, maxSamples: this.options.historySamples });
    this.events = new StatsEvents({
      hub,
      payload: () => this.pageSnapshot(),
      history: () => this.history.series(),
      intervalMs: this.options.eventsIntervalMs,
      maxClients: this.options.maxEventClients,
    });
    this.routes.set('/status', (_req, res) => sendJson(res, 200, this.snapshot()));
    this.routes.set('/healthz', (_req, res) => {
      const h = this.snapshot().health;
      sendJson(res, h.ok ? 200 : 503, h);
    });
    this.routes.set('/metrics', async (req, res) => {
      const text = await this.metrics.render(this.snapshot());
      res.writeHead(200, { 'content-type': this.metrics.contentType, 'cache-control': 'no-store', 'content-length': Buffer.byteLength(text) });
      res.end(req.method === 'HEAD' ? undefined : text);
    });
    this.routes.set('/events', (req, res) => this.events.handle(req, res));
    for (const path of ASSETS.keys()) this.routes.set(path, (req, res) => sendAsset(path, res, req.method === 'HEAD'));
    this.routes.set('/index.html', (req, res) => sendAsset('/', res, req.method === 'HEAD'));
    this.server = createServer((req, res) => this.#handle(req, res));
    // Keep-alive sockets must not hold a draining hub open.
    this.server.keepAliveTimeout = 5000;
  }

  /** The one snapshot every endpoint reads. */
  snapshot(): ObservedStats {
    // The hub's config may have been reloaded with new secrets since; adding known ones is a no-op.
    if (this.#hub.config.secrets) this.redactor.add(this.#hub.config.secrets);
    return observe({ hub: this.#hub, readyWhen: this.options.readyWhen, loop: this.#loop, redactor: this.redactor });
  }

  pageSnapshot(): PageSnapshot {
    const s = this.snapshot();
    const deepest = [...s.connections].sort((a, b) => b.queuedBytes - a.queuedBytes || a.attachedAt - b.attachedAt).slice(0, this.options.pageMaxConnections);
    return { ...s, connections: deepest, connectionsTotal: s.connections.length };
  }

  /** Rejects with ERR_LISTEN_ADDRESS_IN_USE or ERR_LISTEN_FAILED naming the address (`http 127.0.0.1:7071`) and what to do. */
  async listen(host: string, port: number): Promise<{ host: string; port: number }> {
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void => reject(httpListenError(err, host, port));
      this.server.once('error', onError);
      this.server.listen(port, host, () => {
        this.server.off('error', onError);
        resolve();
      });
    });
    // A listening server's 'error' (accept() failing when libuv's spare-descriptor trick cannot
    // help, e.g. ENFILE) would otherwise be an uncaught exception: the status side must never
    // take the hub down. Node keeps accepting once descriptors are free again.
    this.server.on('error', (err) => this.#hub.log.warn({ err, part: 'http' }, 'status listener error'));
    const a = this.server.address() as AddressInfo;
    this.#hosts.bound(a.address);
    return { host: a.address, port: a.port };
  }

  /** Ends /events streams, stops measuring, closes every HTTP connection. Idempotent. */
  async close(): Promise<void> {
    this.#closing ??= (async () => {
      this.events.close();
      this.history.close();
      this.#loop.stop();
      this.server.closeAllConnections();
      if (!this.server.listening) return;
      await new Promise<void>((resolve) => this.server.close(() => resolve()));
    })();
    return this.#closing;
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://localhost');
    } catch {
      sendJson(res, 400, { error: 'bad request target' });
      return;
    }
    const host = this.#hosts.check(req.headers.host);
    if (host) {
      sendError(res, 421, 'ERR_HOST_REFUSED', host);
      return;
    }
    if (this.#token !== undefined && !this.openPaths.has(url.pathname)) {
      const offered = bearer(req.headers.authorization) ?? (url.pathname === '/events' ? url.searchParams.get('token') ?? undefined : undefined);
      if (!tokenMatches(offered, this.#token)) {
        res.setHeader('www-authenticate', 'Bearer realm="wshub"');
        sendError(res, 401, 'ERR_UNAUTHORIZED', offered === undefined ? 'bearer token required' : 'bearer token refused');
        return;
      }
    }
    const handler = this.routes.get(url.pathname);
    if (!handler || (req.method !== 'GET' && req.method !== 'HEAD')) {
      sendJson(res, handler ? 405 : 404, { error: handler ? 'method not allowed' : 'not found' });
      return;
    }
    Promise.resolve()
      .then(() => handler(req, res, url))
      .catch((err: unknown) => {
        if (!res.headersSent) sendJson(res, 500, { error: this.redactor.text((err as Error).message) });
        else res.destroy();
      });
  }
}

/** A refusal: JSON `{error, message}` with the code also in `X-Wshub-Error`, as the worker listener does. */
function sendError(res: ServerResponse, status: number, code: string, message: string): void {
  res.setHeader('x-wshub-error', code);
  sendJson(res, status, { error: code, message });
}

function bearer(header: string | undefined): string | undefined {
  const m = header === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(header);
  return m ? m[1] : undefined;
}

function httpListenError(err: Error, host: string, port: number): WshubError {
  const errno = errnoOf(err);
  const address = `http ${host.includes(':') ? `[${host}]` : host}:${port}`;
  const details = { address, errno };
  if (errno === 'EADDRINUSE') {
    return new WshubError('ERR_LISTEN_ADDRESS_IN_USE', `${address} is in use (another wshub or another program listens there; choose another --http HOST:PORT)`, { cause: err, details });
  }
  const hint = errno === 'EACCES' ? ' (ports below 1024 need root or CAP_NET_BIND_SERVICE)' : errno === 'EADDRNOTAVAIL' ? ' (no local interface has this address)' : '';
  return new WshubError('ERR_LISTEN_FAILED', `${address}: cannot listen: ${errno ?? err.message}${hint}`, { cause: err, details });
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
