/**
 * Test support for the listener tests: real servers on port 0 / temp-dir
 * Unix sockets, a healthy peer that proves the server still serves, and raw
 * net.Socket helpers that deliberately send malformed bytes.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocket, type ClientOptions } from 'ws';
import { HardenedServer } from '../../src/server/server.js';
import type { HardenedServerOptions } from '../../src/server/options.js';

export function tempDir(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'wshub-server-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Reject after `ms` naming `what`, so no wait can hang a test. */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export async function waitFor(predicate: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Start a server whose sessions echo every message (text stays text, binary stays binary). */
export async function startEchoServer(options: HardenedServerOptions): Promise<HardenedServer> {
  const server = new HardenedServer(options);
  server.on('session', ({ ws }) => {
    ws.on('message', (data, isBinary) => ws.send(data as Buffer, { binary: isBinary }));
  });
  await server.listen();
  return server;
}

export function tcpUrl(server: HardenedServer, path = '/'): string {
  const tcp = server.addresses().tcp;
  assert.ok(tcp, 'server has a TCP listener');
  return `ws://127.0.0.1:${tcp.port}${path}`;
}

export function tcpPort(server: HardenedServer): number {
  const tcp = server.addresses().tcp;
  assert.ok(tcp, 'server has a TCP listener');
  return tcp.port;
}

/** Open a ws client; resolves when open, rejects with the HTTP status (`err.status`) if the upgrade is refused. */
export function openClient(url: string, protocols: string[] = [], options: ClientOptions = {}): Promise<WebSocket> {
  return withTimeout(new Promise<WebSocket>((resolve, reject) => {
    const ws = new WebSocket(url, protocols, options);
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (_req, res) => {
      reject(Object.assign(new Error(`upgrade refused ${res.statusCode}`), { status: res.statusCode, code: res.headers['x-wshub-error'] }));
      ws.terminate();
    });
    ws.once('error', reject);
  }), 5000, `open ${url}`);
}

/** The status and error header of a refused upgrade. */
export async function refusedWith(url: string, protocols: string[] = [], options: ClientOptions = {}): Promise<{ status: number; code: string }> {
  try {
    const ws = await openClient(url, protocols, options);
    ws.terminate();
  } catch (err) {
    const e = err as { status?: number; code?: string };
    if (e.status !== undefined) return { status: e.status, code: String(e.code) };
    throw err;
  }
  throw new Error(`expected ${url} to be refused, but it opened`);
}

export function closed(ws: WebSocket, ms = 5000): Promise<{ code: number; reason: string }> {
  if (ws.readyState === WebSocket.CLOSED) return Promise.resolve({ code: -1, reason: 'already closed' });
  return withTimeout(new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() }))), ms, 'close');
}

/** A session opened before the abuse begins; `check()` proves it still exchanges messages. */
export class HealthyPeer {
  #n = 0;
  private constructor(readonly ws: WebSocket) {}

  static async open(url: string, options: ClientOptions = {}): Promise<HealthyPeer> {
    return new HealthyPeer(await openClient(url, [], options));
  }

  async check(): Promise<void> {
    assert.equal(this.ws.readyState, WebSocket.OPEN, 'healthy session still open');
    const text = `ping-${++this.#n}`;
    const binary = randomBytes(64);
    const got: Array<{ data: Buffer; isBinary: boolean }> = [];
    const done = new Promise<void>((resolve) => {
      const onMessage = (data: Buffer, isBinary: boolean): void => {
        got.push({ data, isBinary });
        if (got.length === 2) {
          this.ws.off('message', onMessage);
          resolve();
        }
      };
      this.ws.on('message', onMessage);
    });
    this.ws.send(text);
    this.ws.send(binary);
    await withTimeout(done, 5000, 'healthy echo');
    assert.equal(got[0]!.isBinary, false);
    assert.equal(got[0]!.data.toString(), text);
    assert.equal(got[1]!.isBinary, true);
    assert.deepEqual(got[1]!.data, binary);
  }

  close(): void {
    this.ws.terminate();
  }
}

// ── raw sockets ─────────────────────────────────────────────────────────────

export function rawConnect(target: number | string): Promise<Socket> {
  return withTimeout(new Promise<Socket>((resolve, reject) => {
    const socket = typeof target === 'number' ? connect(target, '127.0.0.1') : connect(target);
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  }), 5000, 'raw connect');
}

/** Everything the server sends until it closes the socket. */
export function readAll(socket: Socket, ms = 5000): Promise<Buffer> {
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  socket.on('error', () => undefined);
  return withTimeout(new Promise<Buffer>((resolve) => socket.once('close', () => resolve(Buffer.concat(chunks)))), ms, 'server to close the socket');
}

export function httpStatus(response: Buffer): number {
  const match = /^HTTP\/1\.1 (\d{3})/.exec(response.toString('latin1'));
  assert.ok(match, `an HTTP status line, got ${JSON.stringify(response.toString('latin1').slice(0, 80))}`);
  return Number(match[1]);
}

export const VALID_KEY = 'dGhlIHNhbXBsZSBub25jZQ==';

export function upgradeRequest(headers: Record<string, string | undefined> = {}, path = '/'): string {
  const all: Record<string, string | undefined> = {
    Host: 'localhost',
    Upgrade: 'websocket',
    Connection: 'Upgrade',
    'Sec-WebSocket-Key': VALID_KEY,
    'Sec-WebSocket-Version': '13',
    ...headers,
  };
  const lines = Object.entries(all).filter(([, v]) => v !== undefined).map(([k, v]) => `${k}: ${v}`);
  return `GET ${path} HTTP/1.1\r\n${lines.join('\r\n')}\r\n\r\n`;
}

/** Send a raw request and return the server's whole answer (it closes after refusing). */
export async function rawRequest(port: number, request: string | Buffer): Promise<Buffer> {
  const socket = await rawConnect(port);
  const all = readAll(socket);
  socket.write(request);
  return all;
}

/** A raw socket past a valid handshake, with whatever followed the 101 head. */
export async function rawUpgraded(target: number | string): Promise<{ socket: Socket; rest: Buffer }> {
  const socket = await rawConnect(target);
  socket.write(upgradeRequest());
  return withTimeout(new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      buf = Buffer.concat([buf, chunk]);
      const end = buf.indexOf('\r\n\r\n');
      if (end === -1) return;
      socket.off('data', onData);
      if (httpStatus(buf) !== 101) reject(new Error(`expected 101, got ${buf.toString('latin1')}`));
      else resolve({ socket, rest: buf.subarray(end + 4) });
    };
    socket.on('data', onData);
    socket.once('close', () => reject(new Error('closed before 101')));
  }), 5000, 'raw upgrade');
}

export interface FrameSpec {
  fin?: boolean;
  rsv?: number;
  opcode: number;
  payload?: Buffer;
  mask?: boolean;
}

/** A client frame, built by hand on purpose: these tests send what ws would never produce. */
export function frame({ fin = true, rsv = 0, opcode, payload = Buffer.alloc(0), mask = true }: FrameSpec): Buffer {
  const len = payload.length;
  const head: number[] = [(fin ? 0x80 : 0) | ((rsv & 7) << 4) | (opcode & 0x0f)];
  const maskBit = mask ? 0x80 : 0;
  let ext = Buffer.alloc(0);
  if (len < 126) head.push(maskBit | len);
  else if (len < 65536) {
    head.push(maskBit | 126);
    ext = Buffer.alloc(2);
    ext.writeUInt16BE(len);
  } else {
    head.push(maskBit | 127);
    ext = Buffer.alloc(8);
    ext.writeBigUInt64BE(BigInt(len));
  }
  if (!mask) return Buffer.concat([Buffer.from(head), ext, payload]);
  const key = randomBytes(4);
  const masked = Buffer.from(payload);
  for (let i = 0; i < masked.length; i++) masked[i]! ^= key[i % 4]!;
  return Buffer.concat([Buffer.from(head), ext, key, masked]);
}

/** The close code of the first close frame in a server's byte stream (server frames are unmasked). */
export function serverCloseCode(stream: Buffer): number | undefined {
  let at = 0;
  while (at + 2 <= stream.length) {
    const opcode = stream[at]! & 0x0f;
    let len = stream[at + 1]! & 0x7f;
    let offset = at + 2;
    if (len === 126) {
      len = stream.readUInt16BE(offset);
      offset += 2;
    } else if (len === 127) {
      len = Number(stream.readBigUInt64BE(offset));
      offset += 8;
    }
    if (opcode === 0x8) return len >= 2 ? stream.readUInt16BE(offset) : 1005;
    at = offset + len;
  }
  return undefined;
}

/** Send bytes after a valid handshake; return the close code the server answered with (undefined: closed without one). */
export async function closeCodeFor(port: number, bytes: Buffer | Buffer[]): Promise<number | undefined> {
  const { socket, rest } = await rawUpgraded(port);
  let stream = rest;
  const code = new Promise<number | undefined>((resolve) => {
    const check = (): void => {
      const found = serverCloseCode(stream);
      if (found !== undefined) resolve(found);
    };
    socket.on('data', (chunk: Buffer) => {
      stream = Buffer.concat([stream, chunk]);
      check();
    });
    socket.on('error', () => undefined);
    socket.once('close', () => resolve(serverCloseCode(stream)));
    check();
  });
  for (const b of Array.isArray(bytes) ? bytes : [bytes]) socket.write(b);
  try {
    return await withTimeout(code, 5000, 'a close frame from the server');
  } finally {
    socket.destroy();
  }
}

/** Counter delta helper: `after[code] - before[code]`. */
export function delta(before: Record<string, number>, after: Record<string, number>, code: string): number {
  return (after[code] ?? 0) - (before[code] ?? 0);
}

/**
 * A second healthy session that keeps talking the whole time: a numbered
 * message every `everyMs`, each echo checked in order. `stop()` waits for the
 * last echoes and reports the counts.
 */
export class Chatter {
  #sent = 0;
  #received = 0;
  #outOfOrder = 0;
  #timer: NodeJS.Timeout | undefined;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer) => {
      if (Number(data.toString()) !== this.#received) this.#outOfOrder++;
      this.#received++;
    });
  }

  static async start(url: string, everyMs = 20): Promise<Chatter> {
    const chatter = new Chatter(await openClient(url));
    chatter.#timer = setInterval(() => {
      if (chatter.ws.readyState === WebSocket.OPEN) chatter.ws.send(String(chatter.#sent++));
    }, everyMs);
    return chatter;
  }

  async stop(): Promise<{ sent: number; received: number; outOfOrder: number; open: boolean }> {
    clearInterval(this.#timer);
    const open = this.ws.readyState === WebSocket.OPEN;
    await waitFor(() => this.#received >= this.#sent, 5000, 'the last echoes').catch(() => undefined);
    this.ws.terminate();
    return { sent: this.#sent, received: this.#received, outOfOrder: this.#outOfOrder, open };
  }
}
