/**
 * The hub's HTTP side: `/status` (JSON), `/healthz`, and whatever else the
 * observe module mounts (metrics, the status page). Loopback by default.
 *
 * `/healthz` is 200 when every required upstream is open, 503 otherwise, and
 * says why in both cases.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Hub, HubStats } from '../hub/hub.js';

export type RouteHandler = (req: IncomingMessage, res: ServerResponse, url: URL) => void | Promise<void>;

export interface Health {
  ok: boolean;
  upstreams: Array<{ name: string; state: string; required: boolean; reason: string | undefined }>;
}

/** Health from one stats snapshot: ok when every required upstream is open. */
export function health(stats: HubStats): Health {
  const upstreams = stats.upstreams.map((u) => ({
    name: u.name,
    state: u.client.state,
    required: u.required,
    reason: u.client.state === 'open' ? undefined : (u.history.at(-1)?.reason ?? u.client.state),
  }));
  return { ok: upstreams.every((u) => !u.required || u.state === 'open'), upstreams };
}

export class HubHttpServer {
  readonly server: Server;
  readonly routes = new Map<string, RouteHandler>();
  readonly #hub: Hub;

  constructor(hub: Hub) {
    this.#hub = hub;
    this.routes.set('/status', (_req, res) => sendJson(res, 200, this.#hub.stats()));
    this.routes.set('/healthz', (_req, res) => {
      const h = health(this.#hub.stats());
      sendJson(res, h.ok ? 200 : 503, h);
    });
    this.server = createServer((req, res) => this.#handle(req, res));
    // Keep-alive sockets must not hold a draining hub open.
    this.server.keepAliveTimeout = 5000;
  }

  async listen(host: string, port: number): Promise<{ host: string; port: number }> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    const a = this.server.address() as AddressInfo;
    return { host: a.address, port: a.port };
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://localhost');
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

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
