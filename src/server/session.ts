/**
 * Per-session guards: liveness (ping, idle timeout), the message rate limit,
 * and the translation of ws's protocol errors into stable codes.
 */
import { performance } from 'node:perf_hooks';
import { WebSocket } from 'ws';
import { ERROR_CATALOG, type ErrorCode } from '../errors.js';
import type { Logger } from '../observe/log.js';
import { TokenBucket } from './rate-limit.js';
import type { Counters } from './stats.js';

/**
 * ws's WebSocket with a gate in front of `message` events: a message the gate
 * refuses reaches no listener. The server installs it before the hub sees the
 * socket, so a session over its rate limit cannot push one more message
 * through while its close handshake is in flight. Used through ws's own
 * `WebSocket` server option; framing stays entirely ws's.
 */
export class GatedWebSocket extends WebSocket {
  #gate: (() => boolean) | undefined;

  /** @internal Install the gate; `gate()` false drops the message. */
  setMessageGate(gate: () => boolean): void {
    this.#gate = gate;
  }

  override emit(event: string | symbol, ...args: unknown[]): boolean {
    if (event === 'message' && this.#gate !== undefined && !this.#gate()) return false;
    return super.emit(event, ...args);
  }
}

export interface SessionGuardOptions {
  maxMessagesPerSecond: number;
  pingIntervalMs: number;
  idleTimeoutMs: number;
  /** Pongs owed and not yet written before a session is ended with `ERR_PING_FLOOD`; 0: no limit. */
  maxPendingPongs: number;
  /** After we send a close frame, how long the peer gets to answer before the socket is terminated. */
  closeGraceMs: number;
  counters: Counters;
  logger: Logger;
}

/** The close code ws sends for a protocol error, read from the error ws raised. */
function wsStatusCode(err: Error): number | undefined {
  const symbol = Object.getOwnPropertySymbols(err).find((s) => s.description === 'status-code');
  const value: unknown = symbol === undefined ? undefined : (err as unknown as Record<symbol, unknown>)[symbol];
  return typeof value === 'number' ? value : undefined;
}

/** Map an error ws emitted on a session to our code and the close code ws sent for it. */
export function classifySessionError(err: Error): { code: ErrorCode; closeCode: number | undefined } {
  const closeCode = wsStatusCode(err);
  const wsCode = (err as { code?: unknown }).code;
  if (closeCode === 1009) return { code: 'ERR_PAYLOAD_TOO_LARGE', closeCode };
  if (typeof wsCode === 'string' && wsCode.startsWith('WS_ERR_')) return { code: 'ERR_PROTOCOL', closeCode };
  return { code: 'ERR_SESSION_LOST', closeCode };
}

export class SessionGuard {
  readonly id: string;
  readonly ws: GatedWebSocket;
  /** The first error that ended (or is ending) the session. */
  errorCode: ErrorCode | undefined;
  #lastSeen = performance.now();
  #lastPing = performance.now();
  #bucket: TokenBucket | undefined;
  #closeTimer: NodeJS.Timeout | undefined;
  #pendingPongs = 0;
  readonly #options: SessionGuardOptions;

  constructor(id: string, ws: GatedWebSocket, options: SessionGuardOptions) {
    this.id = id;
    this.ws = ws;
    this.#options = options;
    if (options.maxMessagesPerSecond > 0) this.#bucket = new TokenBucket(options.maxMessagesPerSecond);
    const alive = (): void => {
      this.#lastSeen = performance.now();
    };
    ws.on('pong', alive);
    ws.on('ping', (data: Buffer) => {
      alive();
      this.#onPing(data);
    });
    ws.setMessageGate(() => this.#admit());
    ws.on('error', (err) => this.#onError(err));
    ws.on('close', () => clearTimeout(this.#closeTimer));
  }

  /** Called by the server's liveness timer. */
  tick(now: number, tickMs: number): void {
    if (this.ws.readyState !== WebSocket.OPEN) return;
    const { idleTimeoutMs, pingIntervalMs } = this.#options;
    if (idleTimeoutMs > 0 && now - this.#lastSeen >= idleTimeoutMs) {
      this.end('ERR_IDLE_TIMEOUT');
      return;
    }
    if (pingIntervalMs > 0 && now - this.#lastPing >= pingIntervalMs - tickMs / 2) {
      this.#lastPing = now;
      // A ping on a socket that just failed throws nothing useful to us: the close event follows.
      try {
        this.ws.ping();
      } catch {
        /* closing already */
      }
    }
  }

  /**
   * End the session for `code`: with a close frame carrying the catalog's
   * close code for it, when it has one (and terminate if the peer does not
   * answer within the grace), else at once.
   */
  end(code: ErrorCode, reason: string = code): void {
    const closeCode = (ERROR_CATALOG[code] as { closeCode?: number }).closeCode;
    if (this.errorCode === undefined) {
      this.errorCode = code;
      if (code !== 'ERR_SHUTTING_DOWN') this.#options.counters.error(code);
      // One line per session the server ends, with why (draining is logged once for all of them).
      this.#options.logger[code === 'ERR_SHUTTING_DOWN' ? 'debug' : 'info']({ session: this.id, errorCode: code, closeCode }, 'session ended by server');
    }
    if (closeCode === undefined) {
      this.ws.terminate();
      return;
    }
    if (this.ws.readyState === WebSocket.OPEN) this.ws.close(closeCode, reason);
    // While draining, the server's drain timer bounds the wait instead.
    if (code !== 'ERR_SHUTTING_DOWN') this.#armCloseTimer();
  }

  #armCloseTimer(): void {
    if (this.#closeTimer !== undefined || this.ws.readyState === WebSocket.CLOSED) return;
    this.#closeTimer = setTimeout(() => this.ws.terminate(), this.#options.closeGraceMs);
    this.#closeTimer.unref();
  }

  /** Terminate now (destroy, drain timeout). */
  terminate(): void {
    clearTimeout(this.#closeTimer);
    this.ws.terminate();
  }

  /**
   * Answer a ping (ws's autoPong is off). The limit is ws's own defence
   * against ping floods — a peer that pings faster than its pongs can be
   * written — but ended with a close frame and a code of its own, so it is
   * never mistaken for a lost socket.
   */
  #onPing(data: Buffer): void {
    if (this.ws.readyState !== WebSocket.OPEN) return;
    const max = this.#options.maxPendingPongs;
    if (max > 0 && this.#pendingPongs >= max) {
      this.end('ERR_PING_FLOOD', 'too many pings');
      return;
    }
    this.#pendingPongs++;
    this.ws.pong(data, false, () => this.#pendingPongs--);
  }

  #admit(): boolean {
    this.#lastSeen = performance.now();
    if (this.errorCode === 'ERR_RATE_LIMITED') {
      this.#options.counters.drop('ERR_RATE_LIMITED');
      return false;
    }
    if (this.#bucket && !this.#bucket.take()) {
      this.#options.counters.drop('ERR_RATE_LIMITED');
      this.end('ERR_RATE_LIMITED');
      return false;
    }
    return true;
  }

  #onError(err: Error): void {
    const { code, closeCode } = classifySessionError(err);
    if (this.errorCode === undefined) {
      this.errorCode = code;
      this.#options.counters.error(code);
    }
    // ws answers a protocol error with a close frame and would wait 30 s for the
    // reply; a peer that broke the protocol gets the shorter grace.
    this.#armCloseTimer();
    this.#options.logger.debug({ session: this.id, code, closeCode, wsCode: (err as { code?: unknown }).code, err: err.message }, 'session error');
  }
}

/**
 * One timer for every session (not one per session): pings, and terminates
 * the silent. Fine enough that an idle session is found within
 * idleTimeoutMs + one tick. Undefined when both are disabled.
 */
export function startLiveness(
  sessions: () => Iterable<SessionGuard>,
  options: { pingIntervalMs: number; idleTimeoutMs: number },
  logger: Logger,
): NodeJS.Timeout | undefined {
  const { pingIntervalMs, idleTimeoutMs } = options;
  if (pingIntervalMs === 0 && idleTimeoutMs === 0) return undefined;
  const tickMs = Math.max(10, Math.min(pingIntervalMs || Infinity, idleTimeoutMs ? idleTimeoutMs / 2 : Infinity));
  const timer = setInterval(() => {
    const now = performance.now();
    for (const guard of sessions()) {
      try {
        guard.tick(now, tickMs);
      } catch (err) {
        logger.error({ err, session: guard.id }, 'liveness check threw');
      }
    }
  }, tickMs);
  timer.unref();
  return timer;
}
