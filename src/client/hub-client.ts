/**
 * HubClient: a hub-aware worker's connection to wshub (envelope mode).
 *
 * ```ts
 * const hub = new HubClient({ socketPath: '/run/wshub/wshub.sock' });
 * hub.on('upstream', (s) => console.log(s.upstream, s.state, s.gap));
 * for await (const m of hub.subscribe('feed', 'btcusdt@trade')) console.log(m.data);
 * ```
 *
 * - Reconnects to a restarted hub with jittered backoff and re-subscribes
 *   everything. Re-subscriptions never ask for a snapshot, so a reconnect
 *   delivers nothing twice (what was missed during the gap is missed: the
 *   `upstream` and `hub` events say when).
 * - `subscribe()` returns an async iterator; `break` unsubscribes. Several
 *   local subscriptions of one topic share one subscription at the hub.
 * - Backpressure: `send()` returns false when the caller should wait for
 *   `drain`. A consumer that falls behind makes the client stop reading (past
 *   `maxBuffered` messages in a subscription); the hub's slow-consumer policy
 *   then applies and the client hears `lagged` — memory stays bounded.
 */
import { EventEmitter } from 'node:events';
import WebSocket from 'ws';
import { ERROR_CATALOG, WshubError, type ErrorCode } from '../errors.js';
import { backoffDelay } from '../upstream/backoff.js';
import { ENVELOPE_PROTOCOL, decodeBinary, encodeBinary, type HubFrame } from '../hub/envelope-codec.js';
import { Subscription } from './subscription.js';
import type { HubClientEvents, HubClientOptions, HubConnectionState, HubMessage } from './types.js';

export const DEFAULT_CLIENT_MAX_BUFFERED = 10_000;
export const DEFAULT_CLIENT_HIGH_WATER_MARK_BYTES = 1024 * 1024;
export const DEFAULT_CLIENT_MAX_QUEUED_SENDS = 1000;
export const DEFAULT_CLIENT_REQUEST_TIMEOUT_MS = 30_000;

interface PendingRequest {
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
  /** Written to a connection (else still queued, waiting for one). */
  written: boolean;
}

const subKey = (upstream: string, topic: string, group: string | undefined): string => `${upstream}\u0000${topic}\u0000${group ?? ''}`;

export class HubClient extends EventEmitter<HubClientEvents> {
  readonly url: string;
  readonly #options: Required<Omit<HubClientOptions, 'socketPath' | 'url' | 'token' | 'backoff'>> & { backoff: { minDelayMs: number; maxDelayMs: number; factor: number } };
  readonly #token: string | undefined;
  #ws: WebSocket | undefined;
  #state: HubConnectionState = 'connecting';
  #attempt = 0;
  #retryTimer: NodeJS.Timeout | undefined;
  /** Local subscriptions by hub subscription key. */
  readonly #subs = new Map<string, { upstream: string; topic: string; snapshot: boolean; sent: boolean; locals: Set<Subscription> }>();
  readonly #pending = new Map<string | number, PendingRequest>();
  #nextId = 1;
  /** Frames sent while disconnected; a `req` frame carries its id so a failed request is never sent later. */
  #queued: Array<{ payload: string | Buffer; reqId?: number }> = [];
  #paused = false;
  #needDrain = false;
  /** The last epoch and seq seen per upstream and topic. */
  readonly #streams = new Map<string, { epoch: number; seq: number }>();
  #welcome: Promise<void>;
  #resolveWelcome!: () => void;
  #rejectWelcome!: (err: Error) => void;

  constructor(options: HubClientOptions) {
    super();
    if (!options.url && !options.socketPath) throw new WshubError('ERR_INVALID_OPTION', 'HubClient: give socketPath or url');
    this.url = options.url ?? `ws+unix://${options.socketPath}:/hub`;
    this.#token = options.token;
    this.#options = {
      maxBuffered: options.maxBuffered ?? DEFAULT_CLIENT_MAX_BUFFERED,
      highWaterMarkBytes: options.highWaterMarkBytes ?? DEFAULT_CLIENT_HIGH_WATER_MARK_BYTES,
      maxQueuedSends: options.maxQueuedSends ?? DEFAULT_CLIENT_MAX_QUEUED_SENDS,
      requestTimeoutMs: options.requestTimeoutMs ?? DEFAULT_CLIENT_REQUEST_TIMEOUT_MS,
      backoff: { minDelayMs: options.backoff?.minDelayMs ?? 100, maxDelayMs: options.backoff?.maxDelayMs ?? 5000, factor: options.backoff?.factor ?? 2 },
    };
    this.#welcome = new Promise((resolve, reject) => {
      this.#resolveWelcome = resolve;
      this.#rejectWelcome = reject;
    });
    // Nobody may be waiting on ready(): a close before the welcome must not be an unhandled rejection.
    this.#welcome.catch(() => undefined);
    this.#connect();
  }

  get state(): HubConnectionState {
    return this.#state;
  }

  /** Resolves once the hub has welcomed this client (the first time); rejects with `ERR_CLOSED` if the client is closed first. */
  ready(): Promise<void> {
    return this.#welcome;
  }

  /** Iterate over the messages of `topic` on `upstream`. `break` unsubscribes. */
  subscribe(upstream: string, topic: string, options: { group?: string; snapshot?: boolean } = {}): Subscription {
    if (this.#state === 'closed') throw new WshubError('ERR_CLOSED', 'HubClient is closed');
    const key = subKey(upstream, topic, options.group);
    let entry = this.#subs.get(key);
    const sub = new Subscription(upstream, topic, options.group, (s) => this.#release(key, s), () => this.#maybeResume());
    if (!entry) {
      entry = { upstream, topic, snapshot: options.snapshot ?? false, sent: false, locals: new Set() };
      this.#subs.set(key, entry);
      if (this.#state === 'open') this.#sendSub(key, entry);
    }
    entry.locals.add(sub);
    return sub;
  }

  /**
   * Send `data` to the upstream verbatim: a string as text, a Buffer as
   * binary, anything else as JSON. Returns false when the caller should wait
   * for `drain` (or, while disconnected, when the message was queued).
   */
  send(upstream: string, data: unknown): boolean {
    if (Buffer.isBuffer(data)) return this.#sendRaw(encodeBinary(upstream, '', data));
    return this.#sendRaw(JSON.stringify(typeof data === 'string' ? { op: 'send', upstream, text: data } : { op: 'send', upstream, data }));
  }

  /**
   * A request to a json/jsonrpc upstream: the hub gives `data` a unique id,
   * and the answer comes back to this call. Rejects with the hub's error
   * (`ERR_REQUEST_TIMEOUT`, `ERR_UPSTREAM_UNAVAILABLE`, …) or after `timeoutMs`.
   */
  request(upstream: string, data: Record<string, unknown>, options: { timeoutMs?: number } = {}): Promise<unknown> {
    if (this.#state === 'closed') return Promise.reject(new WshubError('ERR_CLOSED', 'HubClient is closed'));
    const id = this.#nextId++;
    const timeoutMs = options.timeoutMs ?? this.#options.requestTimeoutMs;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        this.#unqueue(id);
        reject(new WshubError('ERR_REQUEST_TIMEOUT', `request ${id} to ${upstream}: no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      const pending: PendingRequest = { resolve, reject, timer, written: false };
      this.#pending.set(id, pending);
      try {
        pending.written = this.#state === 'open' && this.#ws !== undefined;
        this.#sendRaw(JSON.stringify({ op: 'req', id, upstream, data }), id);
      } catch (err) {
        clearTimeout(timer);
        this.#pending.delete(id);
        reject(err instanceof Error ? err : new Error(String(err)));
      }
    });
  }

  /** Close for good: subscriptions end, pending requests fail with ERR_CLOSED, then a close frame. Idempotent. */
  async close(): Promise<void> {
    if (this.#state === 'closed') return;
    this.#shutdown('closed by the application');
    const ws = this.#ws;
    if (!ws || ws.readyState === WebSocket.CLOSED) return;
    await new Promise<void>((resolve) => {
      ws.once('close', () => resolve());
      ws.close(1000);
      setTimeout(() => ws.terminate(), 2000).unref();
    });
  }

  /** Close for good at once: like `close()`, but the socket is cut without a close handshake. Idempotent. */
  destroy(): void {
    if (this.#state !== 'closed') this.#shutdown('destroyed by the application');
    this.#ws?.terminate();
  }

  #shutdown(reason: string): void {
    this.#setState('closed', reason);
    clearTimeout(this.#retryTimer);
    const closed = new WshubError('ERR_CLOSED', 'HubClient closed');
    this.#rejectWelcome(closed);
    this.#failAll(closed, true);
    this.#queued = [];
    for (const entry of this.#subs.values()) for (const s of entry.locals) s.end();
    this.#subs.clear();
  }

  #connect(): void {
    const headers = this.#token ? { authorization: `Bearer ${this.#token}` } : undefined;
    const ws = new WebSocket(this.url, [ENVELOPE_PROTOCOL], { ...(headers ? { headers } : {}), perMessageDeflate: false });
    this.#ws = ws;
    ws.on('message', (data: Buffer, isBinary: boolean) => this.#onMessage(data, isBinary));
    ws.on('error', () => {}); // every failure also closes; handled there
    ws.on('close', (code, reason) => this.#onClose(code, reason.toString()));
  }

  #onClose(code: number, reason: string): void {
    this.#ws = undefined;
    this.#paused = false;
    if (this.#state === 'closed') return;
    this.#failAll(new WshubError('ERR_CONNECTION_LOST', `connection to the hub lost (${code} ${reason})`));
    this.#attempt++;
    const delayMs = backoffDelay({ ...this.#options.backoff, floorMs: 50 }, this.#attempt);
    this.#setState('reconnecting', `closed ${code}${reason ? ` ${reason}` : ''}`, delayMs);
    this.#retryTimer = setTimeout(() => {
      this.#setState('connecting', 'retrying');
      this.#connect();
    }, delayMs);
  }

  #onMessage(data: Buffer, isBinary: boolean): void {
    if (isBinary) {
      const env = decodeBinary(data);
      if (env) this.#dispatch({ upstream: env.upstream, topic: env.topic || undefined, binary: Buffer.from(env.payload), ...(env.epoch === undefined ? {} : { epoch: env.epoch, seq: env.seq! }) });
      return;
    }
    let frame: HubFrame;
    try {
      frame = JSON.parse(data.toString('utf8')) as HubFrame;
    } catch {
      return; // not from a wshub hub; nothing to do with it
    }
    switch (frame.op) {
      case 'welcome':
        // A new connection to the hub (maybe a restarted hub): its numbering is compared with nothing before.
        this.#streams.clear();
        this.#attempt = 0;
        this.#setState('open', `welcomed as ${frame.session}`);
        this.#resubscribe();
        this.#flushQueued();
        this.emit('welcome', frame);
        this.#resolveWelcome();
        break;
      case 'msg':
        this.#dispatch({
          upstream: frame.upstream,
          topic: frame.topic,
          ...(frame.epoch === undefined ? {} : { epoch: frame.epoch, seq: frame.seq! }),
          ...(frame.text === undefined ? { data: frame.data } : { text: frame.text }),
        });
        break;
      case 'res': {
        const p = this.#pending.get(frame.id);
        if (p) {
          this.#pending.delete(frame.id);
          clearTimeout(p.timer);
          p.resolve(frame.data);
        }
        break;
      }
      case 'error': {
        const p = frame.id === undefined ? undefined : this.#pending.get(frame.id);
        if (p && frame.id !== undefined) {
          this.#pending.delete(frame.id);
          clearTimeout(p.timer);
          p.reject(hubError(frame.code, frame.message));
        } else this.emit('hubError', frame);
        break;
      }
      case 'state':
        this.emit('upstream', frame);
        break;
      case 'lagged':
        this.emit('lagged', frame);
        break;
      default:
        break;
    }
  }

  #dispatch(message: HubMessage): void {
    if (message.epoch !== undefined && message.seq !== undefined) this.#checkStream(message, message.epoch, message.seq);
    for (const entry of this.#subs.values()) {
      if (entry.upstream !== message.upstream || (entry.topic !== message.topic && entry.topic !== '*')) continue;
      for (const s of entry.locals) {
        s.push(message);
        if (s.buffered > this.#options.maxBuffered && !this.#paused && this.#ws) {
          this.#paused = true;
          this.#ws.pause();
        }
      }
    }
  }

  /** Per upstream and topic: a new epoch or a jump in seq is a gap the worker should know of before the message. */
  #checkStream(message: HubMessage, epoch: number, seq: number): void {
    const key = `${message.upstream}\u0000${message.topic ?? ''}`;
    const last = this.#streams.get(key);
    this.#streams.set(key, { epoch, seq });
    if (!last) return;
    if (last.epoch !== epoch) this.emit('gap', { type: 'gap', upstream: message.upstream, topic: message.topic, reason: 'epoch', epoch, seq });
    else if (seq > last.seq + 1 && !this.#grouped(message)) {
      // A group member sees a share of the topic's numbers by design; only a solo subscriber can tell a drop.
      this.emit('gap', { type: 'gap', upstream: message.upstream, topic: message.topic, reason: 'seq', missed: seq - last.seq - 1, epoch, seq });
    }
  }

  #grouped(message: HubMessage): boolean {
    for (const [key, entry] of this.#subs) if (entry.upstream === message.upstream && (entry.topic === message.topic || entry.topic === '*') && key.split('\u0000')[2]) return true;
    return false;
  }

  #maybeResume(): void {
    if (!this.#paused) return;
    for (const entry of this.#subs.values()) for (const s of entry.locals) if (s.buffered > this.#options.maxBuffered / 2) return;
    this.#paused = false;
    this.#ws?.resume();
  }

  #release(key: string, sub: Subscription): void {
    const entry = this.#subs.get(key);
    if (!entry?.locals.delete(sub) || entry.locals.size > 0) {
      this.#maybeResume();
      return;
    }
    this.#subs.delete(key);
    if (this.#state !== 'closed') this.#sendFrame({ op: 'unsub', upstream: sub.upstream, topic: sub.topic, ...(sub.group ? { group: sub.group } : {}) });
    this.#maybeResume();
  }

  #resubscribe(): void {
    for (const [key, entry] of this.#subs) this.#sendSub(key, entry);
  }

  /** A snapshot is asked for only on the first `sub`: after a reconnect it would repeat a message already delivered. */
  #sendSub(key: string, entry: { snapshot: boolean; sent: boolean }): void {
    const [upstream, topic, group] = key.split('\u0000') as [string, string, string];
    this.#ws?.send(JSON.stringify({ op: 'sub', upstream, topic, ...(group ? { group } : {}), ...(entry.snapshot && !entry.sent ? { snapshot: true } : {}) }));
    entry.sent = true;
  }

  #sendFrame(frame: Record<string, unknown>): void {
    // Subscriptions are (re)sent on every welcome; only send now if connected.
    if (this.#state === 'open') this.#ws?.send(JSON.stringify(frame));
  }

  #sendRaw(payload: string | Buffer, reqId?: number): boolean {
    if (this.#state === 'closed') throw new WshubError('ERR_CLOSED', 'HubClient is closed');
    const ws = this.#ws;
    if (this.#state !== 'open' || !ws) {
      if (this.#queued.length >= this.#options.maxQueuedSends) throw new WshubError('ERR_QUEUE_FULL', `HubClient: ${this.#queued.length} sends already queued while disconnected`);
      this.#queued.push(reqId === undefined ? { payload } : { payload, reqId });
      return false;
    }
    ws.send(payload, { binary: Buffer.isBuffer(payload) });
    if (ws.bufferedAmount > this.#options.highWaterMarkBytes) {
      if (!this.#needDrain) {
        this.#needDrain = true;
        this.#pollDrain(ws);
      }
      return false;
    }
    return true;
  }

  #pollDrain(ws: WebSocket): void {
    // ws has no drain event of its own; its bufferedAmount falls as the socket writes.
    const timer = setInterval(() => {
      if (ws.readyState !== WebSocket.OPEN || ws.bufferedAmount <= this.#options.highWaterMarkBytes / 2) {
        clearInterval(timer);
        this.#needDrain = false;
        this.emit('drain');
      }
    }, 5);
  }

  #flushQueued(): void {
    const queued = this.#queued;
    this.#queued = [];
    for (const { payload, reqId } of queued) {
      this.#ws?.send(payload, { binary: Buffer.isBuffer(payload) });
      const pending = reqId === undefined ? undefined : this.#pending.get(reqId);
      if (pending) pending.written = true;
    }
  }

  #unqueue(reqId: number): void {
    this.#queued = this.#queued.filter((q) => q.reqId !== reqId);
  }

  /**
   * The connection was lost: requests written to it fail (their answer can't
   * come). Requests still queued stay queued for the next connection, until
   * their own timeout; a failed or timed-out request is taken out of the queue,
   * so it is never sent after its caller heard it failed. With `all`, queued
   * ones fail too (the client is closing).
   */
  #failAll(err: Error, all = false): void {
    for (const [id, p] of this.#pending) {
      if (!p.written && !all) continue;
      clearTimeout(p.timer);
      this.#pending.delete(id);
      if (typeof id === 'number') this.#unqueue(id);
      p.reject(err);
    }
  }

  #setState(to: HubConnectionState, reason: string, delayMs?: number): void {
    const from = this.#state;
    if (from === to) return;
    this.#state = to;
    this.emit('hub', { type: 'hub', from, to, reason, attempt: this.#attempt, ...(delayMs === undefined ? {} : { delayMs }) });
  }
}

/** The hub's error as a WshubError; a code this client does not know (a newer hub) becomes ERR_UNKNOWN_CODE with the hub's code in details. */
function hubError(code: string, message: string): WshubError {
  if (Object.hasOwn(ERROR_CATALOG, code)) return new WshubError(code as ErrorCode, message);
  return new WshubError('ERR_UNKNOWN_CODE', `${code}: ${message}`, { details: { code } });
}
