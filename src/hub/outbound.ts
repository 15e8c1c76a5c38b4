/**
 * The outbound side of one attached worker connection: its socket, its
 * bounded queue and the slow-consumer policy that decides what happens when it
 * falls behind. A transparent connection has one {@link Session} on it; an
 * envelope connection has one per upstream (and group) it uses, all sharing
 * this queue.
 *
 * Writes go straight to the socket while the kernel keeps up (socket buffered
 * bytes under `socketHighWaterBytes`). Past that, frames wait in the session's
 * own queue, bounded in bytes by `maxQueueBytes`, where the policy applies:
 *
 * - `drop-oldest`: the oldest waiting frames are dropped to make room.
 * - `conflate`: a waiting frame is replaced by a newer one of the same
 *   upstream and topic (a price feed only needs the latest price); if the
 *   queue is still over its bound, the oldest frames are dropped.
 * - `disconnect`: the session is closed with 1013 "slow consumer".
 *
 * Every frame that is not delivered is counted per reason and reported through
 * `onDrop`, so the hub can tell the session (`lagged`) and the metrics.
 * Memory follows the byte bound: dropped frames are released at once and the
 * queue's array is compacted as it goes.
 *
 * Writes are batched per tick: frames delivered during one tick are
 * collected, and one microtask writes each connection's batch with a single
 * `socket.write`. Connections that got the same frames in the same tick (a
 * broadcast) share one concatenated buffer, so a burst costs one copy and one
 * write call per connection, not one per frame per connection.
 */
import type { Duplex } from 'node:stream';
import WebSocket from 'ws';
import type { Frame } from './frame.js';

export type SlowConsumerPolicy = 'drop-oldest' | 'conflate' | 'disconnect';
export const SLOW_CONSUMER_POLICIES: readonly SlowConsumerPolicy[] = ['drop-oldest', 'conflate', 'disconnect'];

/** @default 'drop-oldest' */
export const DEFAULT_SLOW_CONSUMER: SlowConsumerPolicy = 'drop-oldest';
/** Bytes waiting in a session's own queue before the policy applies. @default 4 MiB */
export const DEFAULT_MAX_QUEUE_BYTES = 4 * 1024 * 1024;
/** Bytes buffered in the socket before frames wait in the session queue instead. @default 256 KiB */
export const DEFAULT_SOCKET_HIGH_WATER_BYTES = 256 * 1024;
/** How long `end()` waits for queued frames to be written and the peer to answer the close. @default 5000 */
export const DEFAULT_END_TIMEOUT_MS = 5000;

/** Why a frame was not delivered to a session. */
export type DropReason = 'drop-oldest' | 'conflate' | 'slow-consumer' | 'session-closed';

export interface OutboundOptions {
  id: string;
  ws: WebSocket;
  socket: Duplex;
  peer: { transport: 'unix' | 'tcp'; remoteAddress?: string | undefined; remotePort?: number | undefined };
  policy?: SlowConsumerPolicy;
  maxQueueBytes?: number;
  socketHighWaterBytes?: number;
  /** Told about every drop (count may be > 1 for a batch). */
  onDrop?: (outbound: Outbound, reason: DropReason, count: number, topic: string | undefined, upstream: string | undefined) => void;
}

export interface OutboundStats {
  id: string;
  transport: 'unix' | 'tcp';
  remoteAddress: string | undefined;
  attachedAt: number;
  messagesOut: number;
  bytesOut: number;
  messagesIn: number;
  bytesIn: number;
  queuedMessages: number;
  queuedBytes: number;
  dropped: Partial<Record<DropReason, number>>;
}

interface Pending {
  /** Released (undefined) as soon as the entry is dropped. */
  frame: Frame | undefined;
  /** Conflation key: upstream + topic. */
  key: string | undefined;
  topic: string | undefined;
  upstream: string | undefined;
}

// One microtask writes every connection's batch of this tick.
const batching = new Set<Outbound>();
let flushScheduled = false;
/** A batch larger than this is written part by part (one writev, no copy) instead of concatenated. */
const CONCAT_LIMIT_BYTES = 64 * 1024;

/** Batches already concatenated in this flush, by their first frame: identical batches share one buffer. */
let shared = new Map<Buffer, Array<{ parts: Buffer[]; joined: Buffer }>>();
function flushAll(): void {
  flushScheduled = false;
  for (const outbound of batching) outbound.flushBatch();
  batching.clear();
  shared = new Map();
}

function join(parts: Buffer[]): Buffer {
  const candidates = shared.get(parts[0]!);
  if (candidates) {
    outer: for (const c of candidates) {
      if (c.parts.length !== parts.length) continue;
      for (let i = 1; i < parts.length; i++) if (c.parts[i] !== parts[i]) continue outer;
      return c.joined;
    }
  }
  const joined = Buffer.concat(parts);
  if (candidates) candidates.push({ parts, joined });
  else shared.set(parts[0]!, [{ parts, joined }]);
  return joined;
}

export class Outbound {
  readonly id: string;
  readonly peer: OutboundOptions['peer'];
  readonly ws: WebSocket;
  readonly attachedAt = Date.now();

  readonly #socket: Duplex;
  readonly #policy: SlowConsumerPolicy;
  readonly #maxQueueBytes: number;
  readonly #highWater: number;
  readonly #onDrop: OutboundOptions['onDrop'];
  /** Waiting frames, oldest first from #head; dropped entries keep their slot (frame released) until compaction. */
  #queue: Array<Pending | undefined> = [];
  #head = 0;
  #dead = 0;
  #queuedBytes = 0;
  #queuedCount = 0;
  readonly #latestByKey = new Map<string, Pending>();
  /** Frames of this tick, written by the batcher's microtask. */
  #batch: Buffer[] | undefined;
  #batchBytes = 0;
  #batchMessages = 0;
  #batchPayload = 0;
  #flushPending = false;
  /** No more deliveries: closed, closing, or ending after a flush. */
  #closed = false;
  #ending: Promise<void> | undefined;
  #onFlushed: (() => void) | undefined;
  #messagesOut = 0;
  #bytesOut = 0;
  messagesIn = 0;
  bytesIn = 0;
  readonly #dropped: Partial<Record<DropReason, number>> = {};

  constructor(options: OutboundOptions) {
    this.id = options.id;
    this.peer = options.peer;
    this.ws = options.ws;
    this.#socket = options.socket;
    this.#policy = options.policy ?? DEFAULT_SLOW_CONSUMER;
    this.#maxQueueBytes = options.maxQueueBytes ?? DEFAULT_MAX_QUEUE_BYTES;
    this.#highWater = options.socketHighWaterBytes ?? DEFAULT_SOCKET_HIGH_WATER_BYTES;
    this.#onDrop = options.onDrop;
    this.#socket.on('drain', () => this.#flush());
  }

  get policy(): SlowConsumerPolicy {
    return this.#policy;
  }

  /** True once no more frames are accepted (closed, or ending). */
  get closed(): boolean {
    return this.#closed || this.#ending !== undefined;
  }

  /** Bytes not yet handed to the kernel: the session queue plus the socket's buffer. Used to pick group members. */
  get backlogBytes(): number {
    return this.#queuedBytes + this.#batchBytes + this.#socket.writableLength;
  }

  /** Deliver one frame, subject to the slow-consumer policy. `topic` and `upstream` name what it is, for conflation and drop reports. */
  deliver(frame: Frame, topic?: string, upstream?: string): void {
    if (this.closed || this.ws.readyState !== WebSocket.OPEN) {
      this.#drop('session-closed', 1, topic, upstream);
      return;
    }
    if (this.#queuedCount === 0 && this.#socket.writableLength + this.#batchBytes < this.#highWater) {
      this.#write(frame);
      return;
    }
    this.#enqueue(frame, topic, upstream);
  }

  /**
   * A control frame of the hub's own (envelope `state`, `lagged`, `ack`,
   * `error`): written at once, ahead of queued data, never subject to the
   * policy — a notice that frames were dropped must not itself be dropped.
   * Such frames are small, but a peer that sends requests and never reads the
   * answers could still pile them up: past `maxQueueBytes` buffered in its
   * socket beyond the high-water mark, it is disconnected as a slow consumer.
   */
  deliverControl(frame: Frame): void {
    if (this.#closed || this.ws.readyState !== WebSocket.OPEN) return;
    // Data stops at the high-water mark, so anything far beyond it is control frames piling up.
    if (this.#socket.writableLength + this.#batchBytes > this.#highWater + this.#maxQueueBytes) {
      this.#disconnectSlow(undefined, undefined, 0);
      return;
    }
    this.#write(frame, false);
  }

  /**
   * Graceful end: accept nothing more, write what is queued, then close with
   * `code`. Frames still queued after `timeoutMs` are counted as dropped
   * (`session-closed`) and the close goes out anyway. Idempotent.
   */
  end(code: number, reason: string, timeoutMs = DEFAULT_END_TIMEOUT_MS): Promise<void> {
    this.#ending ??= new Promise<void>((resolve) => {
      const ws = this.ws;
      if (ws.readyState === WebSocket.CLOSED) {
        this.markClosed();
        resolve();
        return;
      }
      let timer: NodeJS.Timeout | undefined;
      const close = (): void => {
        clearTimeout(timer);
        this.#onFlushed = undefined;
        // What this tick collected goes out before the close frame.
        this.flushBatch();
        this.markClosed();
        ws.once('close', () => {
          clearTimeout(timer);
          resolve();
        });
        if (ws.readyState === WebSocket.OPEN) ws.close(code, reason);
        // A peer that never answers the close must not hold the drain.
        timer = setTimeout(() => {
          ws.terminate();
          resolve();
        }, timeoutMs);
        timer.unref();
      };
      if (this.#queuedCount === 0) {
        close();
        return;
      }
      this.#onFlushed = close;
      timer = setTimeout(close, timeoutMs);
      timer.unref();
    });
    return this.#ending;
  }

  /** Mark the connection closed: later deliveries are counted as dropped, queued frames too. */
  markClosed(): void {
    if (this.#closed) return;
    this.#closed = true;
    const lost = this.#queuedCount;
    this.#clearQueue();
    if (lost > 0) this.#drop('session-closed', lost, undefined, undefined);
  }

  /**
   * Write this tick's frames with one `socket.write` (called by the batcher).
   * If the session was closed meanwhile (the server ended it), they are
   * counted as dropped, not as delivered.
   */
  flushBatch(): void {
    const parts = this.#batch;
    if (!parts) return;
    const bytes = this.#batchBytes;
    const messages = this.#batchMessages;
    const payload = this.#batchPayload;
    this.#batch = undefined;
    this.#batchBytes = 0;
    this.#batchMessages = 0;
    this.#batchPayload = 0;
    if (this.ws.readyState !== WebSocket.OPEN || this.#socket.destroyed) {
      if (messages > 0) this.#drop('session-closed', messages, undefined, undefined);
      return;
    }
    let ok: boolean;
    if (parts.length === 1) ok = this.#socket.write(parts[0]!);
    else if (bytes > CONCAT_LIMIT_BYTES) {
      // Large frames: copying them again costs more than handing the kernel an iovec per part.
      this.#socket.cork();
      for (const part of parts) ok = this.#socket.write(part);
      this.#socket.uncork();
      ok = this.#socket.writableLength < this.#socket.writableHighWaterMark;
    } else ok = this.#socket.write(join(parts));
    this.#messagesOut += messages;
    this.#bytesOut += payload;
    // Frames may have queued behind this batch while it was being collected. If the socket took it
    // without reaching its own high-water mark, no 'drain' will come to release them: flush from here.
    if (ok && this.#queuedCount > 0 && !this.#flushPending) {
      this.#flushPending = true;
      setImmediate(() => {
        this.#flushPending = false;
        this.#flush();
      });
    }
  }

  stats(): OutboundStats {
    return {
      id: this.id,
      transport: this.peer.transport,
      remoteAddress: this.peer.remoteAddress,
      attachedAt: this.attachedAt,
      messagesOut: this.#messagesOut,
      bytesOut: this.#bytesOut,
      messagesIn: this.messagesIn,
      bytesIn: this.bytesIn,
      queuedMessages: this.#queuedCount,
      queuedBytes: this.backlogBytes,
      dropped: { ...this.#dropped },
    };
  }

  #write(frame: Frame, count = true): void {
    if (!this.#batch) {
      this.#batch = [];
      batching.add(this);
      if (!flushScheduled) {
        flushScheduled = true;
        queueMicrotask(flushAll);
      }
    }
    for (const part of frame.parts) this.#batch.push(part);
    this.#batchBytes += frame.size;
    if (!count) return;
    this.#batchMessages++;
    this.#batchPayload += frame.payloadBytes;
  }

  #enqueue(frame: Frame, topic: string | undefined, upstream: string | undefined): void {
    const size = frame.size;
    const key = this.#policy === 'conflate' && topic !== undefined ? `${upstream ?? ''}\u0000${topic}` : undefined;
    if (key !== undefined) {
      const older = this.#latestByKey.get(key);
      if (older) this.#kill(older, 'conflate');
    }
    if (this.#queuedBytes + size > this.#maxQueueBytes) {
      if (this.#policy === 'disconnect') {
        this.#disconnectSlow(topic, upstream, 1);
        return;
      }
      while (this.#queuedBytes + size > this.#maxQueueBytes && this.#queuedCount > 0) {
        this.#kill(this.#oldest()!, 'drop-oldest');
      }
      if (size > this.#maxQueueBytes) {
        this.#drop('drop-oldest', 1, topic, upstream);
        return;
      }
    }
    const entry: Pending = { frame, key, topic, upstream };
    this.#queue.push(entry);
    this.#queuedBytes += size;
    this.#queuedCount++;
    if (key !== undefined) this.#latestByKey.set(key, entry);
    this.#compact();
  }

  /** Close 1013: what is queued (plus `extra` frames being delivered now) is counted as dropped. */
  #disconnectSlow(topic: string | undefined, upstream: string | undefined, extra: number): void {
    const lost = this.#queuedCount + extra;
    this.#clearQueue();
    this.#closed = true;
    if (lost > 0) this.#drop('slow-consumer', lost, topic, upstream);
    this.ws.close(1013, 'slow consumer');
    // A consumer too slow to read our close frame must not hold the socket forever.
    setTimeout(() => this.ws.terminate(), 2000).unref();
  }

  /** The oldest live entry; dead slots passed on the way are released. */
  #oldest(): Pending | undefined {
    while (this.#head < this.#queue.length) {
      const entry = this.#queue[this.#head];
      if (entry?.frame) return entry;
      this.#queue[this.#head++] = undefined;
      if (entry) this.#dead--;
    }
    return undefined;
  }

  #release(entry: Pending): void {
    this.#queuedBytes -= entry.frame!.size;
    this.#queuedCount--;
    entry.frame = undefined;
    if (entry.key !== undefined && this.#latestByKey.get(entry.key) === entry) this.#latestByKey.delete(entry.key);
  }

  #kill(entry: Pending, reason: DropReason): void {
    this.#release(entry);
    this.#dead++;
    this.#drop(reason, 1, entry.topic, entry.upstream);
  }

  #flush(): void {
    while (this.#queuedCount > 0 && this.#socket.writableLength + this.#batchBytes < this.#highWater) {
      const entry = this.#oldest()!;
      const frame = entry.frame!;
      this.#release(entry);
      this.#queue[this.#head++] = undefined;
      this.#write(frame);
    }
    if (this.#queuedCount === 0) {
      this.#clearQueue();
      this.#onFlushed?.();
    } else this.#compact();
  }

  /** Keep the array proportional to what is live: drop consumed and dead slots once they dominate. */
  #compact(): void {
    if (this.#head + this.#dead < 1024 || (this.#head + this.#dead) * 2 < this.#queue.length) return;
    this.#queue = this.#queue.slice(this.#head).filter((e) => e?.frame !== undefined);
    this.#head = 0;
    this.#dead = 0;
  }

  #clearQueue(): void {
    this.#queue = [];
    this.#head = 0;
    this.#dead = 0;
    this.#queuedBytes = 0;
    this.#queuedCount = 0;
    this.#latestByKey.clear();
  }

  #drop(reason: DropReason, count: number, topic: string | undefined, upstream: string | undefined): void {
    this.#dropped[reason] = (this.#dropped[reason] ?? 0) + count;
    this.#onDrop?.(this, reason, count, topic, upstream);
  }
}
