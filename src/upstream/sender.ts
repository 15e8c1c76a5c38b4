/**
 * The send path of an open connection, with explicit backpressure and an
 * exact account of every message.
 *
 * A message is handed to ws while ws's `bufferedAmount` is under
 * `highWaterMarkBytes`; past it, messages wait here (`pending`), in order,
 * and go to ws as the socket drains. Together both hold at most
 * `sendBufferBytes`: a message that would pass that bound is refused at once
 * (`ERR_SEND_BUFFER_FULL`), so memory for outbound data is bounded whatever
 * the callers do. `wait` tells a caller to stop until `drain`.
 *
 * Every message ends exactly one way, and is reported:
 * - `sent`: ws's write callback succeeded — the bytes were handed to the
 *   kernel (what "sent" means everywhere in wshub);
 * - `lost`: the connection died after the message was handed to ws but
 *   before its write completed (`ERR_CONNECTION_LOST`) — it may or may not
 *   have reached the upstream, so it is never re-sent (no duplicate order);
 * - taken back by `detach()`: messages still pending here never touched the
 *   socket, so the caller can safely queue them for the next connection.
 */
import type { Socket } from 'node:net';
import WebSocket from 'ws';
import { WshubError } from '../errors.js';

/** How often `bufferedAmount` is re-checked while someone waits, besides the socket's own 'drain' (ws may hold frames the socket has not seen yet, e.g. while compressing). */
export const DRAIN_POLL_MS = 50;

export interface SendItem {
  readonly data: Buffer | string;
  readonly binary: boolean;
  readonly bytes: number;
  readonly tag: unknown;
  /** When `send()` took it: an outage queue's TTL counts from here. */
  readonly acceptedAt: number;
  readonly ttlMs: number | undefined;
}

export interface SenderHandlers {
  sent(item: SendItem): void;
  lost(item: SendItem, error: WshubError): void;
  drain(): void;
}

export class Sender {
  readonly #highWaterMark: number;
  readonly #maxBytes: number;
  readonly #handlers: SenderHandlers;
  #ws: WebSocket | undefined;
  #socket: Socket | undefined;
  #label = '';
  #pending: SendItem[] = [];
  #pendingHead = 0;
  #pendingBytes = 0;
  #waiting = false;
  #poll: NodeJS.Timeout | undefined;
  readonly #onSocketDrain = (): void => this.#pump();

  constructor(options: { highWaterMarkBytes: number; sendBufferBytes: number }, handlers: SenderHandlers) {
    this.#highWaterMark = options.highWaterMarkBytes;
    this.#maxBytes = Math.max(options.sendBufferBytes, options.highWaterMarkBytes);
    this.#handlers = handlers;
  }

  /** Bytes held for the upstream: waiting here plus buffered in ws and its socket. */
  get bytes(): number {
    return this.#pendingBytes + (this.#ws?.bufferedAmount ?? 0);
  }

  /** Messages waiting here (not yet handed to ws). */
  get pendingMessages(): number {
    return this.#pending.length - this.#pendingHead;
  }

  /** True while a caller was told to wait and `drain` has not come yet. */
  get waiting(): boolean {
    return this.#waiting;
  }

  /** Start sending on a new open connection. */
  attach(ws: WebSocket, socket: Socket, label: string): void {
    this.#ws = ws;
    this.#socket = socket;
    this.#label = label;
    socket.on('drain', this.#onSocketDrain);
  }

  /**
   * The connection is gone: stop, and hand back what never touched the
   * socket, in order. What ws still held reports itself `lost` through its
   * write callbacks. A caller waiting for `drain` is released (its next sends
   * go to the outage queue instead).
   */
  detach(): SendItem[] {
    this.#socket?.off('drain', this.#onSocketDrain);
    this.#ws = undefined;
    this.#socket = undefined;
    clearInterval(this.#poll);
    this.#poll = undefined;
    const back = this.#pending.slice(this.#pendingHead);
    this.#pending = [];
    this.#pendingHead = 0;
    this.#pendingBytes = 0;
    if (this.#waiting) {
      this.#waiting = false;
      this.#handlers.drain();
    }
    return back;
  }

  /**
   * Send on the attached connection. Returns `wait` (stop until `drain`), or
   * the refusal when the message does not fit `sendBufferBytes` (the caller
   * reports it). A message alone is always taken: it is in memory already.
   */
  offer(item: SendItem): { wait: boolean } | WshubError {
    const ws = this.#ws;
    if (!ws) return new WshubError('ERR_INVALID_STATE', 'no open connection to send on');
    const held = this.bytes;
    if (held > 0 && held + item.bytes > this.#maxBytes) {
      return new WshubError('ERR_SEND_BUFFER_FULL', `ERR_SEND_BUFFER_FULL ${item.bytes} bytes do not fit: ${held} of sendBufferBytes=${this.#maxBytes} already held for ${this.#label}`,
        { details: { bytes: item.bytes, held } });
    }
    if (this.pendingMessages === 0 && ws.bufferedAmount < this.#highWaterMark) this.#write(ws, item);
    else {
      this.#pending.push(item);
      this.#pendingBytes += item.bytes;
    }
    const wait = this.bytes >= this.#highWaterMark;
    if (wait) this.#watch();
    return { wait };
  }

  #write(ws: WebSocket, item: SendItem): void {
    ws.send(item.data, { binary: item.binary }, (err) => {
      if (!err) this.#handlers.sent(item);
      else {
        this.#handlers.lost(item, new WshubError('ERR_CONNECTION_LOST',
          `ERR_CONNECTION_LOST ${this.#label || 'upstream'} closed before a message of ${item.bytes} bytes was written; it is not re-sent`,
          { cause: err, details: { bytes: item.bytes } }));
      }
    });
  }

  /** Hand waiting messages to ws while it is under the high-water mark; release a waiting caller once below it. */
  #pump(): void {
    const ws = this.#ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    while (this.#pendingHead < this.#pending.length && ws.bufferedAmount < this.#highWaterMark) {
      const item = this.#pending[this.#pendingHead]!;
      this.#pending[this.#pendingHead++] = undefined as unknown as SendItem;
      this.#pendingBytes -= item.bytes;
      this.#write(ws, item);
    }
    if (this.#pendingHead === this.#pending.length) {
      this.#pending = [];
      this.#pendingHead = 0;
    } else if (this.#pendingHead > 1024 && this.#pendingHead * 2 > this.#pending.length) {
      this.#pending = this.#pending.slice(this.#pendingHead);
      this.#pendingHead = 0;
    }
    if (this.#waiting && this.bytes < this.#highWaterMark) {
      this.#waiting = false;
      clearInterval(this.#poll);
      this.#poll = undefined;
      this.#handlers.drain();
    }
  }

  #watch(): void {
    if (this.#waiting) return;
    this.#waiting = true;
    this.#poll = setInterval(() => this.#pump(), DRAIN_POLL_MS);
    this.#poll.unref();
  }
}
