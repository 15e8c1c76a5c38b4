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
 * - `conflate`: an older waiting frame of the same topic is replaced by the
 *   newer one (a price feed only needs the latest price); if that is not
 *   enough, the oldest frames are dropped.
 * - `disconnect`: the session is closed with 1013 "slow consumer".
 *
 * Every frame that is not delivered is counted per reason and reported through
 * `onDrop`, so the hub can tell the session (`lagged`) and the metrics.
 *
 * Writes are batched: the first write of a tick corks the socket and one
 * microtask uncorks every corked socket, so a burst of frames leaves in one
 * writev per session.
 */
import type { Duplex } from 'node:stream';
import type WebSocket from 'ws';
import type { Frame } from './frame.js';

export type SlowConsumerPolicy = 'drop-oldest' | 'conflate' | 'disconnect';
export const SLOW_CONSUMER_POLICIES: readonly SlowConsumerPolicy[] = ['drop-oldest', 'conflate', 'disconnect'];

/** @default 'drop-oldest' */
export const DEFAULT_SLOW_CONSUMER: SlowConsumerPolicy = 'drop-oldest';
/** Bytes waiting in a session's own queue before the policy applies. @default 4 MiB */
export const DEFAULT_MAX_QUEUE_BYTES = 4 * 1024 * 1024;
/** Bytes buffered in the socket before frames wait in the session queue instead. @default 256 KiB */
export const DEFAULT_SOCKET_HIGH_WATER_BYTES = 256 * 1024;

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
  frame: Frame;
  /** Conflation key: upstream + topic. */
  key: string | undefined;
  topic: string | undefined;
  upstream: string | undefined;
  live: boolean;
}

// One microtask uncorks every socket corked during this tick.
const corked = new Set<Outbound>();
let uncorkScheduled = false;
function uncorkAll(): void {
  uncorkScheduled = false;
  for (const session of corked) session.uncork();
  corked.clear();
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
  #queue: Array<Pending | undefined> = [];
  #head = 0;
  #queuedBytes = 0;
  #queuedCount = 0;
  #latestByTopic = new Map<string, Pending>();
  #corked = false;
  #closed = false;
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

  get closed(): boolean {
    return this.#closed;
  }

  /** Bytes not yet handed to the kernel: the session queue plus the socket's buffer. Used to pick group members. */
  get backlogBytes(): number {
    return this.#queuedBytes + this.#socket.writableLength;
  }

  /** Deliver one frame, subject to the slow-consumer policy. `topic` and `upstream` name what it is, for conflation and drop reports. */
  deliver(frame: Frame, topic?: string, upstream?: string): void {
    if (this.#closed) {
      this.#drop('session-closed', 1, topic, upstream);
      return;
    }
    if (this.#queuedCount === 0 && this.#socket.writableLength < this.#highWater) {
      this.#write(frame);
      return;
    }
    this.#enqueue(frame, topic, upstream);
  }

  /**
   * A control frame of the hub's own (envelope `state`, `lagged`, `ack`,
   * `error`): written at once, ahead of queued data, never subject to the
   * policy — a notice that frames were dropped must not itself be dropped, and
   * such frames are small and rate-limited by their senders.
   */
  deliverControl(frame: Frame): void {
    if (this.#closed) return;
    this.#write(frame, false);
  }

  /** Mark the session closed: later deliveries are counted as dropped, queued frames too. */
  markClosed(): void {
    if (this.#closed) return;
    this.#closed = true;
    const lost = this.#queuedCount;
    this.#clearQueue();
    if (lost > 0) this.#drop('session-closed', lost, undefined, undefined);
  }

  /** Called by the batcher at the end of a tick. */
  uncork(): void {
    if (!this.#corked) return;
    this.#corked = false;
    this.#socket.uncork();
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
    if (!this.#corked) {
      this.#corked = true;
      this.#socket.cork();
      corked.add(this);
      if (!uncorkScheduled) {
        uncorkScheduled = true;
        queueMicrotask(uncorkAll);
      }
    }
    this.#socket.write(frame.bytes);
    if (!count) return;
    this.#messagesOut++;
    this.#bytesOut += frame.payloadBytes;
  }

  #enqueue(frame: Frame, topic: string | undefined, upstream: string | undefined): void {
    const size = frame.bytes.length;
    const key = this.#policy === 'conflate' && topic !== undefined ? `${upstream ?? ''}\u0000${topic}` : undefined;
    if (this.#queuedBytes + size > this.#maxQueueBytes) {
      if (this.#policy === 'disconnect') {
        this.#disconnectSlow(topic, upstream);
        return;
      }
      if (key !== undefined) {
        const older = this.#latestByTopic.get(key);
        if (older?.live) this.#kill(older, 'conflate');
      }
      while (this.#queuedBytes + size > this.#maxQueueBytes && this.#queuedCount > 0) {
        this.#kill(this.#oldest()!, 'drop-oldest');
      }
      if (size > this.#maxQueueBytes) {
        this.#drop('drop-oldest', 1, topic, upstream);
        return;
      }
    }
    const entry: Pending = { frame, key, topic, upstream, live: true };
    this.#queue.push(entry);
    this.#queuedBytes += size;
    this.#queuedCount++;
    if (key !== undefined) this.#latestByTopic.set(key, entry);
  }

  #disconnectSlow(topic: string | undefined, upstream: string | undefined): void {
    const lost = this.#queuedCount + 1;
    this.#clearQueue();
    this.#closed = true;
    this.#drop('slow-consumer', lost, topic, upstream);
    this.ws.close(1013, 'slow consumer');
    // A consumer too slow to read our close frame must not hold the socket forever.
    setTimeout(() => this.ws.terminate(), 2000).unref();
  }

  #oldest(): Pending | undefined {
    while (this.#head < this.#queue.length) {
      const entry = this.#queue[this.#head];
      if (entry?.live) return entry;
      this.#head++;
    }
    return undefined;
  }

  #kill(entry: Pending, reason: DropReason): void {
    entry.live = false;
    this.#queuedBytes -= entry.frame.bytes.length;
    this.#queuedCount--;
    if (entry.key !== undefined && this.#latestByTopic.get(entry.key) === entry) this.#latestByTopic.delete(entry.key);
    this.#drop(reason, 1, entry.topic, entry.upstream);
  }

  #flush(): void {
    while (this.#queuedCount > 0 && this.#socket.writableLength < this.#highWater) {
      const entry = this.#oldest()!;
      entry.live = false;
      this.#head++;
      this.#queuedBytes -= entry.frame.bytes.length;
      this.#queuedCount--;
      if (entry.key !== undefined && this.#latestByTopic.get(entry.key) === entry) this.#latestByTopic.delete(entry.key);
      this.#write(entry.frame);
    }
    if (this.#queuedCount === 0) this.#clearQueue();
    else if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
      this.#queue = this.#queue.slice(this.#head);
      this.#head = 0;
    }
  }

  #clearQueue(): void {
    this.#queue = [];
    this.#head = 0;
    this.#queuedBytes = 0;
    this.#queuedCount = 0;
    this.#latestByTopic.clear();
  }

  #drop(reason: DropReason, count: number, topic: string | undefined, upstream: string | undefined): void {
    this.#dropped[reason] = (this.#dropped[reason] ?? 0) + count;
    this.#onDrop?.(this, reason, count, topic, upstream);
  }
}
