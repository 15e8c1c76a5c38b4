/**
 * `ResilientWebSocket`: one logical upstream connection that survives
 * everything that can be survived. One state machine (state.ts), one exit
 * for every teardown (`#disconnect`), dialing phase by phase (dial.ts,
 * upgrade.ts), backoff with full jitter (backoff.ts), liveness by ping or
 * application heartbeat (liveness.ts), a bounded outbound queue while not
 * open (outbox.ts), and close codes that decide whether to retry
 * (close-policy.ts).
 */
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import WebSocket from 'ws';
import { WshubError, errnoOf, isWshubError } from '../errors.js';
import { redactUrl, silentLogger, type Logger } from '../observe/log.js';
import { backoffDelay } from './backoff.js';
import { isFatalCloseCode, isFatalHttpStatus } from './close-policy.js';
import { dial, formatAddress, type Dialed } from './dial.js';
import { Liveness } from './liveness.js';
import { NetWatcher, normalizeAddress, type AddressChange } from './netwatch.js';
import { resolveOptions, type ResolvedOptions } from './options.js';
import { Outbox, type OutboxItem } from './outbox.js';
import { canMove } from './state.js';
import type {
  DropNotice, OpenInfo, ResilientWebSocketEvents, ResilientWebSocketOptions, SendOptions, SendResult,
  StateChange, UpstreamState, UpstreamStats,
} from './types.js';
import { upgrade } from './upgrade.js';

/** How often `bufferedAmount` is re-checked while a caller waits for `drain`, besides the socket's own 'drain'. */
const DRAIN_POLL_MS = 50;
/** RFC 6455 limits a close reason to 123 bytes. */
const MAX_CLOSE_REASON_BYTES = 123;

/** How the next attempt is scheduled after a teardown. */
type Retry = 'backoff' | 'now' | false;

interface Connection {
  ws: WebSocket;
  socket: Socket;
  info: OpenInfo;
  liveness: Liveness;
  openedAt: number;
  /** Resolves when the socket is fully closed. */
  closed: Promise<void>;
  lastError: Error | undefined;
  probing: boolean;
  unwatch: (() => void) | undefined;
}

export class ResilientWebSocket extends EventEmitter<ResilientWebSocketEvents> {
  /** The validated, frozen options. */
  readonly options: Readonly<ResolvedOptions>;
  readonly #url: URL;
  readonly #safeUrl: string;
  readonly #log: Logger;
  readonly #outbox: Outbox;

  #state: UpstreamState = 'idle';
  #attempt = 0;
  #conn: Connection | undefined;
  #dialAbort: AbortController | undefined;
  #retryTimer: NodeJS.Timeout | undefined;
  #uptimeTimer: NodeJS.Timeout | undefined;
  #drainTimer: NodeJS.Timeout | undefined;
  #needDrain = false;
  #drainCleanup: (() => void) | undefined;
  #closing: Promise<void> | undefined;
  /** The socket of the last graceful close, until the server answers it (destroy() cuts it short). */
  #lingering: WebSocket | undefined;

  #connections = 0;
  #reconnects = 0;
  readonly #reconnectsByCause: Record<string, number> = {};
  readonly #dropped: Record<string, number> = {};
  #lastOpenAt: number | undefined;
  #lastCloseAt: number | undefined;
  #lastClose: UpstreamStats['lastClose'];
  #protocol = '';
  #remoteAddress: string | undefined;
  #family: string | undefined;
  #messagesIn = 0;
  #messagesOut = 0;
  #bytesIn = 0;
  #bytesOut = 0;
  #lastRttMs: number | undefined;

  /** Validates `options` (throws `ERR_INVALID_OPTION` naming the key); stays idle until `connect()`. */
  constructor(options: ResilientWebSocketOptions) {
    super();
    this.options = resolveOptions(options);
    this.#url = new URL(this.options.url);
    this.#safeUrl = redactUrl(this.options.url);
    this.#log = (this.options.logger ?? silentLogger).child({ upstream: this.options.name ?? this.#url.host });
    this.#outbox = new Outbox(this.options.queue, (item, error) => this.#drop(error, item.bytes, item.tag));
  }

  get state(): UpstreamState {
    return this.#state;
  }

  /** The subprotocol the server chose on the current (or last) connection; '' when none. */
  get protocol(): string {
    return this.#protocol;
  }

  /** Start connecting. A no-op unless idle; throws `ERR_CLOSED` after close. */
  connect(): void {
    if (this.#state === 'closed') throw new WshubError('ERR_CLOSED', `ERR_CLOSED ${this.#safeUrl} was closed; create a new client`);
    if (this.#state !== 'idle') return;
    this.#startAttempt('connect() called');
  }

  /**
   * Send now when open, else queue (bounded, with a TTL) until the next open.
   * Strings go as text frames and Buffers as binary unless `binary` says otherwise.
   * `wait: true` means the socket's buffer passed `highWaterMarkBytes`: wait for `drain`.
   */
  send(data: Buffer | string, opts: SendOptions = {}): SendResult {
    const binary = opts.binary ?? typeof data !== 'string';
    const bytes = typeof data === 'string' ? Buffer.byteLength(data) : data.length;
    if (this.#state === 'closed') {
      const error = new WshubError('ERR_CLOSED', `ERR_CLOSED send after the upstream ${this.#safeUrl} was closed`, { details: { bytes } });
      this.#drop(error, bytes, opts.tag);
      return { ok: false, error };
    }
    const conn = this.#conn;
    if (this.#state === 'open' && conn && conn.ws.readyState === WebSocket.OPEN) {
      this.#write(conn, data, binary, bytes);
      const wait = conn.ws.bufferedAmount > this.options.highWaterMarkBytes;
      if (wait) this.#awaitDrain(conn);
      return { ok: true, queued: false, wait };
    }
    const error = this.#outbox.push(data, binary, bytes, opts.tag, opts.ttlMs);
    if (error) {
      this.#drop(error, bytes, opts.tag);
      return { ok: false, error };
    }
    return { ok: true, queued: true, wait: false };
  }

  /** `liveness: 'app'`: the upstream's own heartbeat arrived (also accepted in `ping` mode). */
  markAlive(): void {
    this.#conn?.liveness.markAlive();
  }

  /** Force a fresh connection now (no backoff). A no-op while idle or closed. */
  reconnect(reason: string): void {
    switch (this.#state) {
      case 'idle':
      case 'closed':
        this.#log.debug({ event: 'reconnect-ignored', state: this.#state, reason }, 'reconnect ignored');
        return;
      case 'reconnecting':
        clearTimeout(this.#retryTimer);
        this.#retryTimer = undefined;
        this.#startAttempt(`reconnect(): ${reason}`);
        return;
      case 'connecting':
      case 'open':
        this.#disconnect(1000, `reconnect(): ${reason}`, 'now', undefined);
        return;
    }
  }

  /**
   * Graceful and final: send a close frame (default 1000) when open and wait
   * for the server's answer (at most `closeTimeoutMs`), stop retrying, drop
   * queued messages with `ERR_QUEUE_CLOSED`. Idempotent: every call returns the same promise.
   */
  close(code = 1000, reason = ''): Promise<void> {
    if (this.#closing) return this.#closing;
    if (code !== 1000 && (code < 3000 || code > 4999 || !Number.isInteger(code))) {
      return Promise.reject(new WshubError('ERR_INVALID_OPTION', `close code ${code}: expected 1000 or 3000-4999`, { details: { path: 'code' } }));
    }
    const conn = this.#conn;
    this.#disconnect(code, reason || 'close() called', false, undefined);
    this.#closing = conn ? conn.closed : Promise.resolve();
    return this.#closing;
  }

  /** Immediate and final: terminate the socket without a close handshake. Idempotent. */
  destroy(err?: Error): void {
    if (this.#state === 'closed') {
      // A graceful close still waiting for the server's close frame ends now.
      this.#lingering?.terminate();
      return;
    }
    const cause = err === undefined ? undefined
      : isWshubError(err) ? err : new WshubError('ERR_CLOSED', `ERR_CLOSED destroyed: ${err.message}`, { cause: err });
    const conn = this.#conn;
    this.#disconnect(1006, err ? `destroy(): ${err.message}` : 'destroy() called', false, cause);
    this.#closing ??= conn ? conn.closed : Promise.resolve();
  }

  /** One snapshot of everything counted; feeds /status and /metrics. */
  stats(): UpstreamStats {
    return {
      state: this.#state,
      url: this.#safeUrl,
      attempt: this.#attempt,
      connections: this.#connections,
      reconnects: this.#reconnects,
      reconnectsByCause: { ...this.#reconnectsByCause },
      lastOpenAt: this.#lastOpenAt,
      lastCloseAt: this.#lastCloseAt,
      lastClose: this.#lastClose ? { ...this.#lastClose } : undefined,
      protocol: this.#protocol,
      remoteAddress: this.#remoteAddress,
      family: this.#family,
      messagesIn: this.#messagesIn,
      messagesOut: this.#messagesOut,
      bytesIn: this.#bytesIn,
      bytesOut: this.#bytesOut,
      lastRttMs: this.#lastRttMs,
      queue: { messages: this.#outbox.messages, bytes: this.#outbox.bytes },
      dropped: { ...this.#dropped },
    };
  }


  // ── state machine ────────────────────────────────────────────────────────

  #setState(to: UpstreamState, reason: string, extra: Pick<StateChange, 'cause' | 'delayMs' | 'outage'> = {}): void {
    const from = this.#state;
    if (from === to) return;
    if (!canMove(from, to)) {
      throw new WshubError('ERR_INVALID_STATE', `ERR_INVALID_STATE upstream cannot move from ${from} to ${to} (${reason})`);
    }
    this.#state = to;
    const change: StateChange = { type: 'state', from, to, reason, attempt: this.#attempt, at: Date.now() };
    if (extra.delayMs !== undefined) change.delayMs = extra.delayMs;
    if (extra.cause !== undefined) change.cause = extra.cause;
    if (extra.outage !== undefined) change.outage = extra.outage;
    this.emit('state', change);
  }

  #startAttempt(reason: string): void {
    this.#log.info({ event: 'connecting', url: this.#safeUrl, attempt: this.#attempt }, 'connecting');
    this.#setState('connecting', reason);
    // A 'state' listener may have closed the client already.
    if (this.#state !== 'connecting') return;
    const abort = new AbortController();
    this.#dialAbort = abort;
    this.#dialAndUpgrade(abort.signal).then(
      ({ ws, dialed }) => {
        if (abort.signal.aborted) {
          ws.terminate();
          return;
        }
        this.#dialAbort = undefined;
        this.#onOpen(ws, dialed);
      },
      (err: unknown) => {
        if (abort.signal.aborted) return;
        this.#dialAbort = undefined;
        const cause = isWshubError(err) ? err
          : new WshubError('ERR_CONNECTION_LOST', `ERR_CONNECTION_LOST ${this.#safeUrl} (${(err as Error).message})`, { cause: err });
        const status = cause.details.status;
        const fatal = cause.code === 'ERR_UPGRADE_REJECTED' && typeof status === 'number' && isFatalHttpStatus(status, this.options.fatalHttpStatuses);
        this.#disconnect(1006, cause.message, fatal ? false : 'backoff', cause);
      },
    );
  }

  async #dialAndUpgrade(signal: AbortSignal): Promise<{ ws: WebSocket; dialed: Dialed }> {
    const o = this.options;
    const secure = this.#url.protocol === 'wss:';
    const host = this.#url.hostname.startsWith('[') ? this.#url.hostname.slice(1, -1) : this.#url.hostname;
    const port = this.#url.port ? Number(this.#url.port) : secure ? 443 : 80;
    const dialed = await dial({
      host, port, secure, signal,
      lookup: o.lookup,
      localAddress: o.localAddress,
      happyEyeballsDelayMs: o.happyEyeballsDelayMs,
      dnsTimeoutMs: o.dnsTimeoutMs,
      tcpTimeoutMs: o.tcpTimeoutMs,
      tlsTimeoutMs: o.tlsTimeoutMs,
      ca: o.ca,
      rejectUnauthorized: o.rejectUnauthorized,
    });
    const ws = await upgrade({
      url: o.url,
      socket: dialed.socket,
      label: formatAddress(dialed.address, dialed.port),
      protocols: o.protocols,
      headers: o.headers,
      perMessageDeflate: o.perMessageDeflate,
      maxPayload: o.maxPayload,
      upgradeTimeoutMs: o.upgradeTimeoutMs,
      signal,
    });
    return { ws, dialed };
  }

  #onOpen(ws: WebSocket, dialed: Dialed): void {
    const socket = dialed.socket;
    const now = Date.now();
    this.#connections++;
    const info: OpenInfo = {
      type: 'open',
      protocol: ws.protocol,
      extensions: ws.extensions,
      localAddress: socket.localAddress,
      localPort: socket.localPort,
      remoteAddress: socket.remoteAddress ?? dialed.address,
      remotePort: socket.remotePort ?? dialed.port,
      family: dialed.family,
      connection: this.#connections,
      at: now,
    };
    const conn: Connection = {
      ws, socket, info, openedAt: now, lastError: undefined, probing: false, unwatch: undefined,
      closed: new Promise((resolve) => {
        if (ws.readyState === WebSocket.CLOSED) resolve();
        else ws.once('close', () => resolve());
      }),
      liveness: new Liveness({
        pingIntervalMs: this.options.pingIntervalMs,
        pongTimeoutMs: this.options.pongTimeoutMs,
        mode: this.options.liveness,
        ping: (payload) => {
          if (ws.readyState !== WebSocket.OPEN) return false;
          ws.ping(payload);
          return true;
        },
        onDead: (sinceMs) => {
          if (this.#conn !== conn) return;
          const cause = new WshubError('ERR_PONG_TIMEOUT',
            `ERR_PONG_TIMEOUT ${formatAddress(dialed.address, dialed.port)} (no ${this.options.liveness === 'app' ? 'pong or markAlive()' : 'pong or frame'} within ${sinceMs} ms of a ping)`,
            { details: { address: formatAddress(dialed.address, dialed.port) } });
          this.#disconnect(1006, cause.message, 'backoff', cause);
        },
      }),
    };
    this.#conn = conn;
    this.#protocol = info.protocol;
    this.#remoteAddress = info.remoteAddress;
    this.#family = info.family;
    this.#lastOpenAt = now;

    ws.on('message', (data, isBinary) => {
      const buf = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
      this.#messagesIn++;
      this.#bytesIn += buf.length;
      conn.liveness.frame();
      this.emit('message', buf, isBinary);
    });
    ws.on('ping', () => conn.liveness.frame());
    ws.on('pong', (payload) => {
      conn.liveness.pong(payload);
      this.#lastRttMs = conn.liveness.lastRttMs;
    });
    ws.on('error', (err) => {
      conn.lastError = err;
    });
    ws.on('close', (code, reasonBuf) => this.#onSocketClose(conn, code, reasonBuf.toString()));

    if (this.options.netwatch && info.localAddress) {
      conn.unwatch = NetWatcher.shared(this.options.netwatchIntervalMs).subscribe((change) => this.#onAddressChange(conn, change));
    }
    this.#uptimeTimer = setTimeout(() => {
      this.#uptimeTimer = undefined;
      if (this.#conn === conn) this.#attempt = 0;
    }, this.options.backoff.minUptimeMs);
    this.#uptimeTimer.unref();

    // Queued messages go first, before anything sent from a 'state' or 'open' listener.
    for (const item of this.#outbox.takeAll()) this.#write(conn, item.data, item.binary, item.bytes);

    this.#log.info({
      event: 'open', url: this.#safeUrl, address: formatAddress(dialed.address, dialed.port), family: info.family,
      localAddress: info.localAddress, protocol: info.protocol, tried: dialed.tried, connection: info.connection,
    }, 'open');
    this.#setState('open', `connected to ${formatAddress(dialed.address, dialed.port)}`);
    if (this.#conn === conn) this.emit('open', info);
  }

  #onSocketClose(conn: Connection, code: number, reason: string): void {
    if (this.#conn !== conn) return;
    const address = formatAddress(conn.info.remoteAddress ?? '', conn.info.remotePort ?? 0);
    if (code === 1006) {
      const err = conn.lastError;
      const errno = errnoOf(err);
      const cause = new WshubError('ERR_CONNECTION_LOST',
        `ERR_CONNECTION_LOST ${address} (closed without a close frame${err ? `: ${errno ?? err.message}` : ''})`,
        { cause: err, details: { address, errno } });
      this.#disconnect(1006, cause.message, 'backoff', cause);
      return;
    }
    const quoted = `server closed ${code}${reason ? ` "${reason}"` : ''}`;
    if (isFatalCloseCode(code, this.options.fatalCloseCodes)) {
      const cause = new WshubError('ERR_FATAL_CLOSE_CODE', `ERR_FATAL_CLOSE_CODE ${address} (${quoted}; configured as final, not retrying)`,
        { details: { address, closeCode: code, closeReason: reason } });
      this.#disconnect(code, quoted, false, cause);
      return;
    }
    const cause = new WshubError('ERR_SERVER_CLOSED', `ERR_SERVER_CLOSED ${address} (${quoted})`, { details: { address, closeCode: code, closeReason: reason } });
    this.#disconnect(code, quoted, 'backoff', cause);
  }

  /**
   * The one exit. Tears down whatever exists (dial in progress, open socket,
   * timers, watchers), records why, then either schedules the next attempt or
   * closes for good. `code` is sent in a close frame when the socket is still
   * open and the code may be sent (1000, 3000-4999); otherwise the socket is terminated.
   */
  #disconnect(code: number, reason: string, retry: Retry, cause: WshubError | undefined): void {
    if (this.#state === 'closed') return;
    clearTimeout(this.#retryTimer);
    clearTimeout(this.#uptimeTimer);
    this.#retryTimer = undefined;
    this.#uptimeTimer = undefined;
    this.#dialAbort?.abort(cause ?? new WshubError('ERR_CLOSED', `dial aborted: ${reason}`));
    this.#dialAbort = undefined;

    const conn = this.#conn;
    this.#conn = undefined;
    if (conn) this.#teardown(conn, code, reason);
    const wasWaiting = this.#stopDrainWatch();

    this.#lastCloseAt = Date.now();
    this.#lastClose = {
      code: conn || cause?.details.closeCode !== undefined ? code : undefined,
      reason,
      errorCode: cause?.code,
      phase: cause?.details.phase,
      address: cause?.details.address ?? (conn ? formatAddress(conn.info.remoteAddress ?? '', conn.info.remotePort ?? 0) : undefined),
    };
    this.#log[cause ? 'warn' : 'info']({
      event: 'close', url: this.#safeUrl, code: this.#lastClose.code, reason, errorCode: cause?.code,
      phase: cause?.details.phase, errno: cause?.details.errno, address: this.#lastClose.address,
      status: cause?.details.status, uptimeMs: conn ? Date.now() - conn.openedAt : undefined,
    }, 'close');

    this.#next(retry, reason, cause);
    // A sender waiting for 'drain' is released: its next sends are queued (or refused), not blocked.
    if (wasWaiting) this.emit('drain');
  }

  /** After a teardown: retry now, retry after backoff, or close for good. */
  #next(retry: Retry, reason: string, cause: WshubError | undefined): void {
    if (retry === false) {
      this.#final(reason, cause);
      return;
    }
    if (retry === 'now') {
      this.#scheduleRetry(0, reason, cause ?? new WshubError('ERR_CLOSED', reason), false);
      return;
    }
    this.#attempt++;
    const failure = cause ?? new WshubError('ERR_CONNECTION_LOST', reason);
    if (this.#attempt >= this.options.backoff.maxAttempts) {
      const final = new WshubError('ERR_MAX_ATTEMPTS',
        `ERR_MAX_ATTEMPTS ${this.#attempt} consecutive attempts failed (backoff.maxAttempts=${this.options.backoff.maxAttempts}); last: ${failure.message}`,
        { cause: failure, details: { ...failure.details } });
      this.#final(final.message, final);
      return;
    }
    const delayMs = backoffDelay(this.options.backoff, this.#attempt);
    this.#scheduleRetry(delayMs, reason, failure, this.#attempt > this.options.backoff.concealFailures);
  }

  #scheduleRetry(delayMs: number, reason: string, cause: WshubError, outage: boolean): void {
    this.#reconnects++;
    this.#reconnectsByCause[cause.code] = (this.#reconnectsByCause[cause.code] ?? 0) + 1;
    this.#log.info({ event: 'reconnect', delayMs, attempt: this.#attempt, outage, cause: cause.code }, 'reconnect scheduled');
    this.#setState('reconnecting', reason, { delayMs, cause, outage });
    if (this.#state !== 'reconnecting') return;
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      if (this.#state === 'reconnecting') this.#startAttempt(`retry ${this.#attempt} after ${delayMs} ms`);
    }, delayMs);
  }

  #final(reason: string, cause: WshubError | undefined): void {
    this.#setState('closed', reason, cause ? { cause } : {});
    this.#outbox.dropAll(`upstream ${this.#safeUrl} closed for good: ${reason}`);
  }

  #teardown(conn: Connection, code: number, reason: string): void {
    conn.liveness.stop();
    conn.unwatch?.();
    conn.unwatch = undefined;
    const ws = conn.ws;
    ws.removeAllListeners('message');
    ws.removeAllListeners('ping');
    ws.removeAllListeners('pong');
    // The 'error' listener installed by upgrade() stays: an unheard 'error' would crash the process.
    if (ws.readyState === WebSocket.OPEN && (code === 1000 || (code >= 3000 && code <= 4999))) {
      ws.close(code, truncateReason(reason));
      const timer = setTimeout(() => ws.terminate(), this.options.closeTimeoutMs);
      this.#lingering = ws;
      ws.once('close', () => {
        clearTimeout(timer);
        if (this.#lingering === ws) this.#lingering = undefined;
      });
    } else if (ws.readyState !== WebSocket.CLOSED) {
      ws.terminate();
    }
  }

  // ── sending ──────────────────────────────────────────────────────────────

  #write(conn: Connection, data: Buffer | string, binary: boolean, bytes: number): void {
    conn.ws.send(data, { binary });
    this.#messagesOut++;
    this.#bytesOut += bytes;
  }

  #drop(error: WshubError, bytes: number, tag: unknown): void {
    this.#dropped[error.code] = (this.#dropped[error.code] ?? 0) + 1;
    const notice: DropNotice = { type: 'drop', reason: error.code, bytes, tag };
    this.emit('drop', notice);
  }

  /**
   * Backpressure: ws reports `bufferedAmount` but emits no drain of its own,
   * so it is re-checked on the socket's 'drain' and, because ws may hold
   * frames of its own that the socket never saw, on a short timer too.
   */
  #awaitDrain(conn: Connection): void {
    if (this.#needDrain) return;
    this.#needDrain = true;
    const check = (): void => {
      if (this.#conn !== conn) return;
      if (conn.ws.bufferedAmount <= this.options.highWaterMarkBytes && this.#stopDrainWatch()) this.emit('drain');
    };
    conn.socket.on('drain', check);
    this.#drainTimer = setInterval(check, DRAIN_POLL_MS);
    this.#drainTimer.unref();
    this.#drainCleanup = () => conn.socket.off('drain', check);
  }


  /** Stop watching for drain; true when a sender was waiting (the caller then emits `drain`). */
  #stopDrainWatch(): boolean {
    if (!this.#needDrain) return false;
    this.#needDrain = false;
    clearInterval(this.#drainTimer);
    this.#drainTimer = undefined;
    this.#drainCleanup?.();
    this.#drainCleanup = undefined;
    return true;
  }

  // ── network changes ──────────────────────────────────────────────────────

  #onAddressChange(conn: Connection, change: AddressChange): void {
    if (this.#conn !== conn) return;
    const local = conn.info.localAddress;
    if (change.type !== 'removed' || !local || normalizeAddress(change.address) !== normalizeAddress(local)) {
      this.#log.debug({ event: 'netchange', change: change.type, address: change.address, iface: change.iface }, 'address change ignored');
      return;
    }
    if (conn.probing) return;
    conn.probing = true;
    const trigger = `local address ${change.address} removed from ${change.iface}`;
    this.#log.info({ event: 'probe-start', trigger, timeoutMs: this.options.probeTimeoutMs }, 'probing');
    void conn.liveness.probe(this.options.probeTimeoutMs).then((result) => {
      conn.probing = false;
      if (this.#conn !== conn) return;
      this.#log[result.ok ? 'info' : 'warn']({ event: 'probe', trigger, ok: result.ok, rttMs: result.rttMs }, result.ok ? 'probe answered; staying open' : 'probe unanswered');
      this.emit('probe', { type: 'probe', trigger, ok: result.ok, ...(result.rttMs === undefined ? {} : { rttMs: result.rttMs }) });
      if (!result.ok && this.#conn === conn) {
        const address = formatAddress(conn.info.remoteAddress ?? '', conn.info.remotePort ?? 0);
        const cause = new WshubError('ERR_PROBE_FAILED',
          `ERR_PROBE_FAILED ${address} (${trigger}; no answer to the probe within ${this.options.probeTimeoutMs} ms)`,
          { details: { address, localAddress: local } });
        this.#disconnect(1006, cause.message, 'backoff', cause);
      }
    });
  }
}

function truncateReason(reason: string): string {
  if (Buffer.byteLength(reason) <= MAX_CLOSE_REASON_BYTES) return reason;
  let out = reason;
  while (Buffer.byteLength(out) > MAX_CLOSE_REASON_BYTES) out = out.slice(0, -1);
  return out;
}

export type { OutboxItem };
