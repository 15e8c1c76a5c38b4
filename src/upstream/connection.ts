/**
 * One open WebSocket of a `ResilientWebSocket`: the ws object, its socket, the
 * facts reported in the `open` event and its liveness. Created when the
 * upgrade succeeds, torn down exactly once; the client swaps in a new one on
 * every reconnect, so nothing here outlives its socket.
 */
import type { Socket } from 'node:net';
import WebSocket from 'ws';
import { formatAddress, type Dialed } from './dial.js';
import { Liveness } from './liveness.js';
import type { ConnectPhases, OpenInfo } from './types.js';

/** RFC 6455 limits a close reason to 123 bytes. */
const MAX_CLOSE_REASON_BYTES = 123;

export interface ConnectionHandlers {
  message: (data: Buffer, isBinary: boolean) => void;
  pong: (rttMs: number | undefined) => void;
  /** No proof of life within pongTimeoutMs of a ping. */
  dead: (sinceMs: number) => void;
  close: (code: number, reason: string) => void;
}

export interface ConnectionOptions {
  pingIntervalMs: number;
  pongTimeoutMs: number;
  liveness: 'ping' | 'app';
}

export class Connection {
  readonly ws: WebSocket;
  readonly socket: Socket;
  readonly info: OpenInfo;
  readonly liveness: Liveness;
  readonly openedAt: number;
  /** The peer as `host:port` / `[v6]:port`, for messages and logs. */
  readonly label: string;
  /** Resolves when the socket is fully closed. */
  readonly closed: Promise<void>;
  /** The last socket error, to explain a close without a close frame. */
  lastError: Error | undefined;
  probing = false;
  unwatch: (() => void) | undefined;

  constructor(ws: WebSocket, dialed: Dialed, phases: ConnectPhases, connection: number, options: ConnectionOptions, handlers: ConnectionHandlers) {
    const socket = dialed.socket;
    this.ws = ws;
    this.socket = socket;
    this.openedAt = Date.now();
    this.label = formatAddress(dialed.address, dialed.port);
    this.info = {
      type: 'open',
      protocol: ws.protocol,
      extensions: ws.extensions,
      localAddress: socket.localAddress,
      localPort: socket.localPort,
      remoteAddress: socket.remoteAddress ?? dialed.address,
      remotePort: socket.remotePort ?? dialed.port,
      family: dialed.family,
      connection,
      phases,
      at: this.openedAt,
    };
    this.closed = new Promise((resolve) => {
      if (ws.readyState === WebSocket.CLOSED) resolve();
      else ws.once('close', () => resolve());
    });
    this.liveness = new Liveness({
      pingIntervalMs: options.pingIntervalMs,
      pongTimeoutMs: options.pongTimeoutMs,
      mode: options.liveness,
      ping: (payload) => {
        if (ws.readyState !== WebSocket.OPEN) return false;
        ws.ping(payload);
        return true;
      },
      onDead: handlers.dead,
    });
    const onMessage = (data: WebSocket.RawData, isBinary: boolean): void => {
      const buf = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
      this.liveness.frame();
      handlers.message(buf, isBinary);
    };
    const onPing = (): void => this.liveness.frame();
    const onPong = (payload: Buffer): void => {
      this.liveness.pong(payload);
      handlers.pong(this.liveness.lastRttMs);
    };
    const onError = (err: Error): void => {
      this.lastError = err;
    };
    const onClose = (code: number, reason: Buffer): void => handlers.close(code, reason.toString());
    ws.on('message', onMessage);
    ws.on('ping', onPing);
    ws.on('pong', onPong);
    ws.on('error', onError);
    ws.on('close', onClose);
    this.#detach = () => {
      ws.off('message', onMessage);
      ws.off('ping', onPing);
      ws.off('pong', onPong);
      ws.off('error', onError);
      ws.off('close', onClose);
    };
  }

  readonly #detach: () => void;

  /**
   * Stop everything and let go of the socket: a close frame with `code` when
   * the socket is open and the code may be sent by a client (1000,
   * 3000-4999), answered within `closeTimeoutMs` or terminated; otherwise
   * terminated at once. Returns the socket while its close handshake is still
   * running, so `destroy()` can cut it short.
   */
  teardown(code: number, reason: string, closeTimeoutMs: number): WebSocket | undefined {
    this.liveness.stop();
    this.unwatch?.();
    this.unwatch = undefined;
    const ws = this.ws;
    // Only this connection's own listeners go: the 'error' listener installed by
    // upgrade() stays (an unheard 'error' would crash the process), and so does `closed`.
    this.#detach();
    if (ws.readyState === WebSocket.OPEN && (code === 1000 || (code >= 3000 && code <= 4999))) {
      ws.close(code, truncateReason(reason));
      const timer = setTimeout(() => ws.terminate(), closeTimeoutMs);
      ws.once('close', () => clearTimeout(timer));
      return ws;
    }
    if (ws.readyState !== WebSocket.CLOSED) ws.terminate();
    return undefined;
  }
}

function truncateReason(reason: string): string {
  let out = reason;
  while (Buffer.byteLength(out) > MAX_CLOSE_REASON_BYTES) out = out.slice(0, -1);
  return out;
}
