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
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { z } from '../zod.js';
import { WshubError, errnoOf } from '../errors.js';
import type { Hub } from '../hub/hub.js';
import { parseOptions } from '../options.js';
import { ASSETS, sendAsset } from './assets.js';
import { DEFAULT_EVENTS_INTERVAL_MS, DEFAULT_MAX_EVENT_CLIENTS, StatsEvents } from './events.js';
import { checkReadyWhen, DEFAULT_READY_WHEN, type ReadyWhen } from './health.js';
import { DEFAULT_HISTORY_SAMPLES, TrafficHistory } from './history.js';
import { EventLoopMonitor } from './loop.js';
import { DEFAULT_MAX_TOPIC_LABELS, HubMetrics } from './metrics.js';
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
  /** Traffic samples (one per `eventsIntervalMs`) kept for the page's charts; 0 keeps none. @default 300 */
  historySamples?: number;
}

const httpOptionsSchema = z.strictObject({
  readyWhen: z.union([z.enum(['all', 'any', 'none']), z.array(z.string().min(1)).min(1).readonly()]).default(DEFAULT_READY_WHEN),
  maxTopicLabels: z.number().int().min(0).default(DEFAULT_MAX_TOPIC_LABELS),
  eventsIntervalMs: z.number().int().min(50).default(DEFAULT_EVENTS_INTERVAL_MS),
  maxEventClients: z.number().int().min(1).default(DEFAULT_MAX_EVENT_CLIENTS),
  pageMaxConnections: z.number().int().min(0).default(DEFAULT_PAGE_MAX_CONNECTIONS),
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
  readonly options: Readonly<Required<HubHttpOptions>>;
  readonly #hub: Hub;
  readonly #loop = new EventLoopMonitor();
  #closing: Promise<void> | undefined;

  constructor(hub: Hub, options: HubHttpOptions = {}) {
    this.#hub = hub;
    this.options = parseOptions(httpOptionsSchema, options, 'http');
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
    return observe({ hub: this.#hub, readyWhen: this.options.readyWhen, loop: this.#loop });
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
    const a = this.server.address() as AddressInfo;
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
    const handler = this.routes.get(url.pathname);
    if (!handler || (req.method !== 'GET' && req.method !== 'HEAD')) {
      sendJson(res, handler ? 405 : 404, { error: handler ? 'method not allowed' : 'not found' });
      return;
    }
    Promise.resolve()
      .then(() => handler(req, res, url))
      .catch((err: unknown) => {
        if (!res.headersSent) sendJson(res, 500, { error: (err as Error).message });
        else res.destroy();
      });
  }
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
