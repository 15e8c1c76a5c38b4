/**
 * Helpers shared by the upstream tests: real servers on port 0, waits that
 * always time out instead of hanging, and a throwaway self-signed certificate.
 */
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import type { EventEmitter } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocketServer, type ServerOptions } from 'ws';
import type { ResilientWebSocket } from '../../src/upstream/resilient.js';
import type { DropNotice, StateChange, UpstreamState } from '../../src/upstream/types.js';

/** Resolve with the first `event` whose args pass `filter`; reject after `timeoutMs` naming what was awaited. */
export function waitFor<T extends unknown[]>(
  emitter: EventEmitter, event: string, filter: (...args: T) => boolean = () => true, timeoutMs = 5000,
): Promise<T> {
  return new Promise((resolve, reject) => {
    const listener = (...args: unknown[]): void => {
      if (!filter(...(args as T))) return;
      clearTimeout(timer);
      emitter.off(event, listener);
      resolve(args as T);
    };
    const timer = setTimeout(() => {
      emitter.off(event, listener);
      reject(new Error(`timed out after ${timeoutMs} ms waiting for '${event}'`));
    }, timeoutMs);
    emitter.on(event, listener);
  });
}

/** The next state change into `to` (optionally matching `filter`). */
export async function waitState(
  client: ResilientWebSocket, to: UpstreamState, timeoutMs = 5000, filter: (s: StateChange) => boolean = () => true,
): Promise<StateChange> {
  const [change] = await waitFor<[StateChange]>(client, 'state', (s) => s.to === to && filter(s), timeoutMs);
  return change;
}

/** Every state change and drop of a client, in order. */
export function record(client: ResilientWebSocket): { states: StateChange[]; drops: DropNotice[] } {
  const out = { states: [] as StateChange[], drops: [] as DropNotice[] };
  client.on('state', (s) => out.states.push(s));
  client.on('drop', (d) => out.drops.push(d));
  return out;
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export interface TestWsServer {
  wss: WebSocketServer;
  http: HttpServer;
  port: number;
  host: string;
  /** `ws://host:port` with IPv6 hosts bracketed. */
  url: string;
  close: () => Promise<void>;
}

/** A real ws server on `host`, port 0 unless given, with the given ws server options. */
export async function startWsServer(
  host = '127.0.0.1', options: Omit<ServerOptions, 'server' | 'port' | 'host'> = {}, listenPort = 0,
): Promise<TestWsServer> {
  const http = createHttpServer();
  const wss = new WebSocketServer({ ...options, server: http });
  http.listen(listenPort, host);
  await once(http, 'listening');
  const port = (http.address() as AddressInfo).port;
  return {
    wss, http, port, host,
    url: `ws://${host.includes(':') ? `[${host}]` : host}:${port}`,
    close: () => closeServer(http, wss),
  };
}

export async function closeServer(http: HttpServer, wss?: WebSocketServer): Promise<void> {
  for (const client of wss?.clients ?? []) client.terminate();
  wss?.close();
  http.closeAllConnections();
  if (http.listening) await new Promise<void>((resolve) => http.close(() => resolve()));
}

export interface TestCert {
  key: Buffer;
  cert: Buffer;
  dir: string;
  cleanup: () => void;
}

/**
 * A self-signed certificate for localhost, 127.0.0.1 and ::1, made now with
 * the openssl CLI. Throws (failing the test) with a clear message if openssl is missing.
 */
export function makeCert(): TestCert {
  const dir = mkdtempSync(join(tmpdir(), 'wshub-u1-tls-'));
  try {
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '2', '-subj', '/CN=localhost',
      '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1',
    ], { stdio: 'pipe' });
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`the openssl CLI is needed to make a test certificate and failed: ${(err as Error).message}`);
  }
  return {
    key: readFileSync(join(dir, 'key.pem')),
    cert: readFileSync(join(dir, 'cert.pem')),
    dir,
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** A wss server with `cert` on `host`, port 0, echoing every message with its type. */
export async function startWssServer(cert: TestCert, host = '127.0.0.1'): Promise<TestWsServer> {
  const http = createHttpsServer({ key: cert.key, cert: cert.cert });
  const wss = new WebSocketServer({ server: http });
  wss.on('connection', (ws) => ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary })));
  http.listen(0, host);
  await once(http, 'listening');
  const port = (http.address() as AddressInfo).port;
  return {
    wss, http: http as unknown as HttpServer, port, host,
    url: `wss://${host.includes(':') ? `[${host}]` : host}:${port}`,
    close: () => closeServer(http, wss),
  };
}

/** Echo every message back with its type: text stays text, binary stays binary. */
export function echo(server: TestWsServer): void {
  server.wss.on('connection', (ws) => ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary })));
}
