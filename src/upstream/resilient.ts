/**
 * `ResilientWebSocket`: one logical upstream connection that survives
 * everything that can be survived. One state machine (state.ts), one exit
 * for every teardown (`#disconnect`), each attempt through the caller's
 * connect gate and then phase by phase, timed (attempt.ts, dial.ts,
 * upgrade.ts), backoff with full jitter (backoff.ts), liveness by ping or
 * application heartbeat (liveness.ts, connection.ts), a bounded outbound
 * queue while not open (outbox.ts), explicit backpressure and an exact
 * account of every message sent (sender.ts), reading paced by the caller
 * (`pause()`/`resume()`), and close codes that decide whether to retry
 * (close-policy.ts).
 */
import { EventEmitter } from 'node:events';
import type WebSocket from 'ws';
import { WshubError, isWshubError } from '../errors.js';
import { redactUrl, silentLogger, type Logger } from '../observe/log.js';
import { attempt, type Attempted } from './attempt.js';
import { backoffDelay } from './backoff.js';
import { classifyClose, isFatalHttpStatus } from './close-policy.js';
import { Connection } from './connection.js';
import { Counters } from './counters.js';
import { NetWatcher, normalizeAddress, type AddressChange } from './netwatch.js';
import { resolveOptions, type ResolvedOptions } from './options.js';
import { Outbox } from './outbox.js';
import { Sender, type SendItem } from './sender.js';
import { canMove } from './state.js';
import type {
  ResilientWebSocketEvents, ResilientWebSocketOptions, SendOptions, SendResult, StateChange, UpstreamState, UpstreamStats,
} from './types.js';

/** How the next attempt is scheduled after a teardown. */
type Retry = 'backoff' | 'now' | false;

export class ResilientWebSocket extends EventEmitter<ResilientWebSocketEvents> {
  /** The validated, frozen options. */
  readonly options: Readonly<ResolvedOptions>;
  readonly #url: URL;
  readonly #safeUrl: string;
  readonly #log: Logger;
  readonly #outbox: Outbox;
  readonly #sender: Sender;
  /** Messages given to send() over the client's life: each ends sent, dropped (by reason) or still held. */
  #accepted = 0;
  /** Reading paused by the caller (`pause()`): applies to every connection until `resume()`. */
  #readPaused = false;
  readonly #counters = new Counters();

  #state: UpstreamState = 'idle';
  /** Consecutive failures; reset once a connection stays up for backoff.minUptimeMs. */
  #attempt = 0;
  #conn: Connection | undefined;
  #dialAbort: AbortController | undefined;
  #retryTimer: NodeJS.Timeout | undefined;
  #uptimeTimer: NodeJS.Timeout | undefined;
  #closing: Promise<void> | undefined;
  /** The socket of the last graceful close, until the server answers it (destroy() cuts it short). */
  #lingering: WebSocket | undefined;

  /** Validates `options` (throws `ERR_INVALID_OPTION` naming the key); stays idle until `connect()`. */
  constructor(options: ResilientWebSocketOptions) {
    super();
    this.options = resolveOptions(options);
    this.#url = new URL(this.options.url);
    this.#safeUrl = redactUrl(this.options.url);
    this.#log = (this.options.logger ?? silentLogger).child({ upstream: this.options.name ?? this.#url.host });
    this.#outbox = new Outbox(this.options.queue, (item, error) => this.#drop(error, item.bytes, item.tag));
    this.#sender = new Sender(this.options, {
      sent: (item) => {
        this.#counters.messagesOut++;
        this.#counters.bytesOut += item.bytes;
        if (item.tag !== undefined) this.#emit('sent', item.tag);
      },
      lost: (item, error) => this.#drop(error, item.bytes, item.tag),
      drain: () => this.#emit('drain'),
    });
  }

  get state(): UpstreamState {
    return this.#state;
  }

  /** The subprotocol the server chose on the current (or last) connection; '' when none. */
  get protocol(): string {
    return this.#counters.protocol;
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
   * Refused messages (`ok: false`) are also reported by a `drop` event and counted.
   */
  send(data: Buffer | string, opts: SendOptions = {}): SendResult {
    if (typeof data !== 'string' && !Buffer.isBuffer(data)) {
      throw new WshubError('ERR_INVALID_OPTION', `send(): data must be a string or a Buffer, got ${data === null ? 'null' : typeof data}`, { details: { path: 'data' } });
    }
    const binary = opts.binary ?? typeof data !== 'string';
    const bytes = typeof data === 'string' ? Buffer.byteLength(data) : data.length;
    this.#accepted++;
    if (this.#state === 'closed') {
      const error = new WshubError('ERR_CLOSED', `ERR_CLOSED send after the upstream ${this.#safeUrl} was closed`, { details: { bytes } });
      this.#drop(error, bytes, opts.tag);
      return { ok: false, error };
    }
    const item: SendItem = { data, binary, bytes, tag: opts.tag, acceptedAt: Date.now(), ttlMs: opts.ttlMs };
    if (this.#state === 'open' && this.#conn) {
      const taken = this.#sender.offer(item);
      if (taken instanceof WshubError) {
        this.#drop(taken, bytes, opts.tag);
        return { ok: false, error: taken };
      }
      return { ok: true, queued: false, wait: taken.wait };
    }
    const error = this.#outbox.push(item);
    if (error) {
      this.#drop(error, bytes, opts.tag);
      return { ok: false, error };
    }
    return { ok: true, queued: true, wait: false };
  }

  /**
   * Stop reading from the upstream (TCP backpressure reaches it, as it would
   * from any client that stops reading) until `resume()`. The pause holds
   * across reconnects. While paused, a missing pong is not held against the
   * connection: its answer may be sitting unread in the socket, so the
   * liveness wait restarts once reading resumes.
   */
  pause(): void {
    if (this.#readPaused) return;
    this.#readPaused = true;
    const conn = this.#conn;
    if (conn) {
      conn.liveness.hold();
      conn.ws.pause();
    }
  }

  /** Read again after `pause()`. */
  resume(): void {
    if (!this.#readPaused) return;
    this.#readPaused = false;
    const conn = this.#conn;
    if (conn) {
      conn.ws.resume();
      conn.liveness.unhold();
    }
  }

  /** Whether reading is paused by `pause()`. */
  get isPaused(): boolean {
    return this.#readPaused;
  }

  /** Bytes held for the upstream while open (written to ws but not to the kernel, or waiting for room). */
  get bufferedBytes(): number {
    return this.#sender.bytes;
  }

  /** `liveness: 'app'`: the upstream's own heartbeat arrived (also accepted in `ping` mode). */
  markAlive(): void {
    this.#conn?.liveness.markAlive();
  }

  /** Force a fresh connection now (no backoff, no failure counted). A no-op while idle or closed. */
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
    const snapshot = this.#counters.snapshot({
      state: this.#state,
      url: this.#safeUrl,
      attempt: this.#attempt,
      queue: { messages: this.#outbox.messages, bytes: this.#outbox.bytes },
    });
    const dropped = Object.values(snapshot.dropped).reduce((a, b) => a + b, 0);
    snapshot.sends = {
      accepted: this.#accepted,
      sent: snapshot.messagesOut,
      dropped,
      held: this.#accepted - snapshot.messagesOut - dropped,
      heldBytes: this.#sender.bytes + this.#outbox.bytes,
    };
    return snapshot;
  }

  /**
   * Every event is emitted from socket callbacks, timers or promise
   * continuations: a throwing listener must not escape to the process (one
   * bad listener would take every connection down) nor leave this client
   * half-way through a transition. It is logged with the event's name.
   */
  #emit<K extends keyof ResilientWebSocketEvents>(event: K, ...args: ResilientWebSocketEvents[K]): void {
    try {
      (this.emit as (event: K, ...args: ResilientWebSocketEvents[K]) => boolean)(event, ...args);
    } catch (err) {
      this.#log.error({ err, event }, 'an upstream event listener threw');
    }
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
    this.#emit('state', change);
  }

  #startAttempt(reason: string): void {
    this.#log.info({ event: 'connecting', url: this.#safeUrl, attempt: this.#attempt }, 'connecting');
    this.#setState('connecting', reason);
    // A 'state' listener may have closed the client already.
    if (this.#state !== 'connecting') return;
    const abort = new AbortController();
    this.#dialAbort = abort;
    attempt(this.#url, this.options, abort.signal).then(
      (attempted) => {
        if (abort.signal.aborted) {
          attempted.ws.terminate();
          return;
        }
        this.#dialAbort = undefined;
        this.#onOpen(attempted);
      },
      (err: unknown) => {
        if (abort.signal.aborted) return;
        this.#dialAbort = undefined;
        const cause = isWshubError(err) ? err
          : new WshubError('ERR_CONNECTION_LOST', `ERR_CONNECTION_LOST ${this.#safeUrl} (${(err as Error).message})`, { cause: err });
        this.#counters.countFailedAttempt(cause.code);
        const status = cause.details.status;
        const fatal = cause.code === 'ERR_UPGRADE_REJECTED' && typeof status === 'number' && isFatalHttpStatus(status, this.options.fatalHttpStatuses);
        this.#disconnect(1006, cause.message, fatal ? false : 'backoff', cause);
      },
    );
  }

  #onOpen({ ws, dialed, phases }: Attempted): void {
    const counters = this.#counters;
    counters.connections++;
    counters.phases.observe(phases);
    const conn: Connection = new Connection(ws, dialed, phases, counters.connections, this.options, {
      message: (data, isBinary) => {
        counters.messagesIn++;
        counters.bytesIn += data.length;
        this.#emit('message', data, isBinary);
      },
      pong: (rttMs) => {
        if (rttMs !== undefined) counters.lastRttMs = rttMs;
      },
      dead: (sinceMs) => {
        if (this.#conn !== conn) return;
        const proof = this.options.liveness === 'app' ? 'pong or markAlive()' : 'pong or frame';
        const cause = new WshubError('ERR_PONG_TIMEOUT', `ERR_PONG_TIMEOUT ${conn.label} (no ${proof} within ${sinceMs} ms of a ping)`,
          { details: { address: conn.label } });
        this.#disconnect(1006, cause.message, 'backoff', cause);
      },
      close: (code, reason) => {
        if (this.#conn !== conn) return;
        const { cause, retry, summary } = classifyClose(code, reason, conn.label, conn.lastError, this.options.fatalCloseCodes);
        this.#disconnect(code, code === 1006 ? cause.message : summary, retry ? 'backoff' : false, cause);
      },
    });
    const info = conn.info;
    this.#conn = conn;
    counters.protocol = info.protocol;
    counters.remoteAddress = info.remoteAddress;
    counters.family = info.family;
    counters.lastOpenAt = conn.openedAt;

    if (this.options.netwatch && info.localAddress) {
      conn.unwatch = NetWatcher.shared(this.options.netwatchIntervalMs).subscribe((change) => this.#onAddressChange(conn, change), {
        // EMFILE and the like: the watcher keeps its last view; the connection is not touched.
        failure: (err) => this.#log.warn({ event: 'netwatch', errorCode: err.code, errno: err.details.errno, err: err.message }, 'cannot read the local interfaces'),
        recovered: () => this.#log.info({ event: 'netwatch' }, 'local interfaces readable again'),
      });
    }
    this.#uptimeTimer = setTimeout(() => {
      this.#uptimeTimer = undefined;
      if (this.#conn === conn) this.#attempt = 0;
    }, this.options.backoff.minUptimeMs);
    this.#uptimeTimer.unref();

    this.#sender.attach(ws, conn.socket, conn.label);
    // Queued messages go first, before anything sent from a 'state' or 'open' listener.
    for (const item of this.#outbox.takeAll()) {
      const taken = this.#sender.offer(item);
      if (taken instanceof WshubError) this.#drop(taken, item.bytes, item.tag);
    }

    this.#log.info({
      event: 'open', url: this.#safeUrl, address: conn.label, family: info.family, localAddress: info.localAddress,
      protocol: info.protocol, tried: dialed.tried, connection: info.connection,
    }, 'open');
    this.#setState('open', `connected to ${conn.label}`);
    if (this.#conn === conn) this.#emit('open', info);
    // upgrade() paused reading so nothing arriving with the 101 was emitted before these listeners existed;
    // a caller that paused reading (pause()) keeps it paused on the new connection too.
    if (this.#conn !== conn) return;
    if (this.#readPaused) conn.liveness.hold();
    else ws.resume();
  }

  /**
   * The one exit. Tears down whatever exists (dial in progress, open socket,
   * timers, watchers), records and logs why, then retries (after backoff, or
   * at once) or closes for good. `code` goes in a close frame when the socket
   * is still open and a client may send it (1000, 3000-4999); otherwise the
   * socket is terminated.
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
    if (conn) {
      const lingering = conn.teardown(code, reason, this.options.closeTimeoutMs);
      if (lingering) {
        this.#lingering = lingering;
        lingering.once('close', () => {
          if (this.#lingering === lingering) this.#lingering = undefined;
        });
      }
    }
    // What never touched the socket waits for the next connection (or is dropped if there is none).
    const back = this.#sender.detach();

    const counters = this.#counters;
    // An open connection ended by a failure (close(), destroy() and reconnect() bring no cause).
    if (conn && cause) counters.countDisconnect(cause.code);
    counters.lastCloseAt = Date.now();
    counters.lastClose = {
      code: conn || cause?.details.closeCode !== undefined ? code : undefined,
      reason,
      errorCode: cause?.code,
      phase: cause?.details.phase,
      address: cause?.details.address ?? conn?.label,
    };
    this.#log[cause ? 'warn' : 'info']({
      event: 'close', url: this.#safeUrl, code: counters.lastClose.code, reason, errorCode: cause?.code,
      phase: cause?.details.phase, errno: cause?.details.errno, address: counters.lastClose.address,
      status: cause?.details.status, uptimeMs: conn ? Date.now() - conn.openedAt : undefined,
    }, 'close');

    for (const item of back) {
      const error = this.#outbox.push(item);
      if (error) this.#drop(error, item.bytes, item.tag);
    }
    this.#next(retry, reason, cause);
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
    this.#log.info({ event: 'reconnect', delayMs, attempt: this.#attempt, outage, cause: cause.code }, 'reconnect scheduled');
    this.#setState('reconnecting', reason, { delayMs, cause, outage });
    // A 'state' listener may have closed the client already: no timer may outlive that.
    if (this.#state !== 'reconnecting') return;
    // Ref'd on purpose: a client waiting to reconnect is live work, as an open socket is.
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      if (this.#state === 'reconnecting') this.#startAttempt(`retry ${this.#attempt} after ${delayMs} ms`);
    }, delayMs);
  }

  #final(reason: string, cause: WshubError | undefined): void {
    this.#setState('closed', reason, cause ? { cause } : {});
    this.#outbox.dropAll(`upstream ${this.#safeUrl} closed for good: ${reason}`);
  }

  // ── sending ──────────────────────────────────────────────────────────────

  #drop(error: WshubError, bytes: number, tag: unknown): void {
    this.#counters.countDrop(error.code);
    this.#emit('drop', { type: 'drop', reason: error.code, bytes, tag });
  }

  // ── network changes ──────────────────────────────────────────────────────

  /**
   * Only the disappearance of this socket's own local address matters, and
   * even then only the probe's answer decides: the path may well survive
   * (another route, the address comes back, loopback). Everything else is
   * logged at debug and ignored.
   */
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
      // The outcome is logged whatever came first: a pong timeout (or any other teardown) during the
      // probe ends it unanswered, and the line names what ended the connection instead.
      const endedBy = this.#conn === conn ? undefined : (this.#counters.lastClose?.errorCode ?? this.#state);
      this.#log[result.ok ? 'info' : 'warn']({ event: 'probe', trigger, ok: result.ok, rttMs: result.rttMs, endedBy },
        result.ok ? 'probe answered; staying open' : endedBy ? `probe ended: the connection was already closed (${endedBy})` : 'probe unanswered');
      this.#emit('probe', { type: 'probe', trigger, ok: result.ok, ...(result.rttMs === undefined ? {} : { rttMs: result.rttMs }), ...(endedBy ? { endedBy } : {}) });
      if (!result.ok && this.#conn === conn) {
        const cause = new WshubError('ERR_PROBE_FAILED',
          `ERR_PROBE_FAILED ${conn.label} (${trigger}; no answer to the probe within ${this.options.probeTimeoutMs} ms)`,
          { details: { address: conn.label, localAddress: local } });
        this.#disconnect(1006, cause.message, 'backoff', cause);
      }
    });
  }
}
