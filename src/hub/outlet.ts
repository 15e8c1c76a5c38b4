/**
 * The write side of one attached worker connection: its socket, its
 * {@link Backlog}, its place in the per-tick {@link TickWriter}, its part in
 * pacing the upstreams that feed it ({@link ReadPacer}), and its close.
 *
 * Frames go into this tick's batch while the socket keeps up (buffered bytes
 * under its high-water mark, {@link socketHighWaterFor}); past that they
 * wait in the backlog, where the slow-consumer policy applies. Earlier, at half that mark, the
 * connection is *behind*: it holds every upstream feeding it paused until it
 * has caught up (backlog empty, socket buffer under a quarter of the mark) —
 * or until it is found slow, after which it no longer paces anyone and only
 * its own backlog and policy deal with it. Pausing at half the mark leaves
 * the other half for what an upstream delivers after the pause (the rest of
 * the chunk being parsed), so a healthy connection never needs its backlog,
 * whatever its `maxQueueBytes`.
 *
 * States, one table (`MOVES`): `open` → `ending` (graceful: no new frames,
 * what is queued is written, then the close frame) → `closing` (close frame
 * sent, waiting for the peer) → `closed` (the socket is gone). One close
 * timer bounds whichever wait is running.
 *
 * Every frame given to `deliver` is accounted for: `offered` = `written`
 * (handed to the socket, hence to the kernel in order) + `dropped` (by
 * reason) + `queued` (batch and backlog).
 */
import type { Duplex } from 'node:stream';
import WebSocket from 'ws';
import { ERROR_CATALOG } from '../errors.js';
import { Backlog, type BacklogItem, type DropCode, type SlowConsumerPolicy } from './backlog.js';
import type { Frame } from './frame.js';
import type { PacedSink, ReadPacer } from './pacer.js';
import { CONCAT_LIMIT_BYTES, type Batched, type FrameLog, type TickWriter } from './writer.js';

/**
 * Bytes buffered in a connection's socket before frames wait in the backlog
 * instead (a connection holding half of it is *behind* and pauses its
 * upstreams): the connection's `maxQueueBytes`, kept between
 * {@link MIN_SOCKET_HIGH_WATER_BYTES} and {@link DEFAULT_SOCKET_HIGH_WATER_BYTES}
 * — 4 MiB with the default queue. Tied to the queue so a user who bounds a
 * session's memory bounds this too (a session holds at most twice its
 * `maxQueueBytes`, a little more below 256 KiB), and so a small queue's
 * slow-consumer policy acts after about that much, not after megabytes of
 * socket buffer in front of it.
 */
export function socketHighWaterFor(maxQueueBytes: number): number {
  return Math.min(DEFAULT_SOCKET_HIGH_WATER_BYTES, Math.max(MIN_SOCKET_HIGH_WATER_BYTES, maxQueueBytes));
}

/**
 * The socket high-water mark with the default queue.
 *
 * 4 MiB, not the fixed 256 KiB it was: at 256 KiB a healthy worker that was a
 * moment late paused the upstream after 128 KiB, so the pipeline to each
 * worker stayed shallow and was fed in small writes — measured with perf
 * (16 workers × 1 KiB, free-running source) the hub made 9.0 syscalls per
 * thousand deliveries against 6.7 for the pre-framed fan-out fed by the same
 * source, and the workers woke 1.45 × as often (epoll waits 14 against 9.5
 * per thousand) and spent 1.3 × its CPU per message. With 4 MiB — the lag at
 * which that fan-out makes its source wait — the workers' wakeups matched it;
 * in alternating runs hub / fed at 16 × 1 KiB went from 0.78–0.87 to
 * 0.89–0.95 and at 1 × 64 KiB from 0.77 to 1.13 (hub CPU per message 51–57
 * µs against 73–81), 1 MiB and 2 MiB lying between. The full bench before
 * and after (bench/REPORT.md) saw hub / fed 0.78 → 0.83 at 16 × 1 KiB, within
 * the machine's noise, and 0.82 → 1.04 at 1 × 64 KiB. What it costs is
 * mostly shared: a broadcast's frames are one buffer, referenced by every
 * connection's socket.
 * @default 4 MiB
 */
export const DEFAULT_SOCKET_HIGH_WATER_BYTES = 4 * 1024 * 1024;
/** The least socket high-water mark, whatever the queue: the fixed mark of earlier releases. @default 256 KiB */
export const MIN_SOCKET_HIGH_WATER_BYTES = 256 * 1024;

/**
 * A connection's batch this large is written as soon as the current callback
 * returns instead of at the end of the loop turn (writer.ts): a quarter of
 * its socket high-water mark — 1 MiB with the default queue, 64 KiB at the
 * least mark. One loop turn's reads (libuv reads up to 32 × 64 KiB per
 * readable event) then reach the worker while the rest is still being
 * parsed, and a batch never pushes a healthy connection past its mark, where
 * its deliveries would go to the backlog and its policy.
 *
 * Tied to the mark, not the fixed 128 KiB it was: with a 4 MiB mark, writing
 * every 128 KiB only made writes small. Alternating runs, free-running
 * source, 1 MiB against 128 KiB (two runs of 9 rounds each): 1 worker × 1
 * KiB, hub CPU 4.2–4.4 against 5.0–5.2 µs per message, the worker's 2.0–2.1
 * against 2.3–2.5, throughput ×1.10 and ×1.15; 16 × 1 KiB, hub 0.41–0.42
 * against 0.44–0.47 µs per delivery, the workers' 1.41–1.50 against
 * 1.54–1.57, throughput ×1.01 and ×1.09; 1 × 64 KiB no difference (one run,
 * ×0.98).
 */
export function earlyFlushFor(highWater: number): number {
  return Math.floor(highWater / 4);
}
/** Bytes waiting in a connection's backlog before its slow-consumer policy applies. @default 4 MiB */
export const DEFAULT_MAX_QUEUE_BYTES = 4 * 1024 * 1024;
/** How long a graceful end waits for queued frames and the peer's close answer. @default 5000 */
export const DEFAULT_END_TIMEOUT_MS = 5000;
/** How long a slow consumer closed with 1013 gets to answer before its socket is cut. @default 2000 */
export const SLOW_CLOSE_GRACE_MS = 2000;

export type OutletState = 'open' | 'ending' | 'closing' | 'closed';
const MOVES: Record<OutletState, readonly OutletState[]> = {
  open: ['ending', 'closing', 'closed'],
  ending: ['closing', 'closed'],
  closing: ['closed'],
  closed: [],
};

export interface OutletOptions {
  id: string;
  ws: WebSocket;
  socket: Duplex;
  writer: TickWriter;
  policy: SlowConsumerPolicy;
  maxQueueBytes?: number | undefined;
  /** Told about every drop (count may be > 1). */
  onDrop?: (reason: DropCode, count: number, topic: string | undefined, upstream: string | undefined) => void;
}

export interface OutletStats {
  state: OutletState;
  policy: SlowConsumerPolicy;
  maxQueueBytes: number;
  /** Frames given to the connection (the hub's own notices not included). */
  offered: number;
  messagesOut: number;
  bytesOut: number;
  queuedMessages: number;
  /** Bytes not yet handed to the kernel: backlog, batch and the socket's own buffer. */
  queuedBytes: number;
  dropped: Partial<Record<DropCode, number>>;
  /** Holding upstream reading paused right now. */
  behind: boolean;
  /** Found slow: not pacing the upstreams until it catches up. */
  slow: boolean;
}

export class Outlet implements Batched, PacedSink {
  readonly id: string;
  readonly ws: WebSocket;
  #state: OutletState = 'open';
  readonly #socket: Duplex;
  readonly #writer: TickWriter;
  /** {@link socketHighWaterFor} this connection's queue bound, kept so the hot path does not recompute it. */
  #highWater!: number;
  /** {@link earlyFlushFor} the mark. */
  #earlyFlush!: number;
  #maxQueueBytes!: number;
  readonly #onDrop: OutletOptions['onDrop'];
  #backlog: Backlog<Frame>;
  /**
   * This tick's frames: ranges of the writer's log — closed ones as start,
   * end pairs in `#ranges`, the growing one in `#start`..`#end` (-1: the
   * batch is empty).
   */
  #log: FrameLog | undefined;
  #ranges: number[] = [];
  #start = -1;
  #end = -1;
  #batchBytes = 0;
  #batchMessages = 0;
  #batchPayload = 0;
  #offered = 0;
  #messagesOut = 0;
  #bytesOut = 0;
  readonly #dropped: Partial<Record<DropCode, number>> = {};
  /** The upstreams this connection paces, and whether it is holding them now. */
  readonly #pacers = new Set<ReadPacer>();
  #behind = false;
  #slow = false;
  #closeTimer: NodeJS.Timeout | undefined;
  #ended: Promise<void> | undefined;
  #resolveEnded: (() => void) | undefined;
  #endCode = 1000;
  #endReason = '';

  constructor(options: OutletOptions) {
    this.id = options.id;
    this.ws = options.ws;
    this.#socket = options.socket;
    this.#writer = options.writer;
    this.#bound(options.maxQueueBytes);
    this.#onDrop = options.onDrop;
    this.#backlog = this.#newBacklog(options.policy);
    this.#socket.on('drain', () => this.refill());
    this.ws.once('close', () => this.#closed());
  }

  get state(): OutletState {
    return this.#state;
  }

  get policy(): SlowConsumerPolicy {
    return this.#backlog.policy;
  }

  /** No more frames are taken (ending, closing or closed). */
  get closed(): boolean {
    return this.#state !== 'open';
  }

  /** Bytes not yet handed to the kernel. Picks the least loaded group member. */
  get backlogBytes(): number {
    return this.#backlog.bytes + this.#batchBytes + this.#socket.writableLength;
  }

  /** A new policy and bound (config reload) for what is delivered from now on; what waits keeps its place. */
  reconfigure(policy: SlowConsumerPolicy, maxQueueBytes: number | undefined): void {
    if (policy === this.#backlog.policy && (maxQueueBytes ?? DEFAULT_MAX_QUEUE_BYTES) === this.#maxQueueBytes) return;
    const waiting = this.#backlog.clear();
    this.#bound(maxQueueBytes);
    this.#backlog = this.#newBacklog(policy);
    for (const item of waiting) this.#enqueue(item);
  }

  /** Start pacing `pacer` (a session of this connection is fed by its upstream). */
  pace(pacer: ReadPacer): void {
    this.#pacers.add(pacer);
    if (this.#behind) pacer.hold(this);
  }

  /** Stop pacing `pacer` (the session left, or its upstream is gone). */
  unpace(pacer: ReadPacer): void {
    if (this.#pacers.delete(pacer)) pacer.release(this);
  }

  /**
   * Deliver one frame under the slow-consumer policy: `topic` and `upstream`
   * say what it is (for conflation, drop reports and the ledger); `keep`
   * marks an answer, never dropped by the policy.
   */
  deliver(frame: Frame, topic?: string, upstream?: string, keep?: boolean): void {
    this.#offered++;
    if (this.#state !== 'open' || this.ws.readyState !== WebSocket.OPEN) {
      this.#drop('ERR_SESSION_CLOSED', 1, topic, upstream);
      return;
    }
    if (this.#backlog.count === 0 && this.#socket.writableLength + this.#batchBytes < this.#highWater) {
      this.#toBatch(frame, true);
      return;
    }
    const key = topic === undefined ? undefined : `${upstream ?? ''}\u0000${topic}`;
    this.#enqueue({ frame, bytes: frame.size, key, topic, upstream, keep, counted: true });
  }

  /**
   * A frame of the hub's own (envelope `welcome`, `state`, `lagged`, `ack`,
   * `error`): written at once, ahead of waiting data, never subject to the
   * policy — a notice that frames were dropped must not itself be dropped. A
   * peer that sends requests and never reads the answers could still pile
   * them up: far past the high-water mark it is disconnected as slow.
   */
  control(frame: Frame): void {
    if (this.#state === 'closing' || this.#state === 'closed' || this.ws.readyState !== WebSocket.OPEN) return;
    if (this.#socket.writableLength + this.#batchBytes > this.#highWater + this.#maxQueueBytes) {
      this.#disconnectSlow(undefined, undefined);
      return;
    }
    this.#toBatch(frame, false);
  }

  /**
   * Graceful end: take nothing more, write what waits, then close with
   * `code`. What still waits after `timeoutMs` is dropped (`ERR_SESSION_CLOSED`)
   * and the close goes out anyway; a peer that never answers the close is cut
   * off after another `timeoutMs`. Idempotent: later calls get the same promise.
   */
  end(code: number, reason: string, timeoutMs = DEFAULT_END_TIMEOUT_MS): Promise<void> {
    if (this.#ended) return this.#ended;
    this.#ended = new Promise((resolve) => (this.#resolveEnded = resolve));
    if (this.#state === 'closed' || this.ws.readyState === WebSocket.CLOSED) {
      this.#closed();
      return this.#ended;
    }
    if (this.#state !== 'open') return this.#ended;
    this.#endCode = code;
    this.#endReason = reason;
    this.#move('ending');
    this.#armClose(timeoutMs, () => this.#sendClose(timeoutMs));
    if (this.#backlog.count === 0) this.#sendClose(timeoutMs);
    return this.#ended;
  }

  /** Cut the connection now. */
  destroy(): void {
    this.ws.terminate();
  }

  /** Called by a pacer: this connection held an upstream paused too long. */
  markSlow(): void {
    if (!this.#behind) return;
    this.#slow = true;
    this.#behind = false;
    for (const pacer of this.#pacers) pacer.release(this);
  }

  stats(): OutletStats {
    return {
      state: this.#state,
      policy: this.#backlog.policy,
      maxQueueBytes: this.#maxQueueBytes,
      offered: this.#offered,
      messagesOut: this.#messagesOut,
      bytesOut: this.#bytesOut,
      queuedMessages: this.#backlog.count + this.#batchMessages,
      queuedBytes: this.backlogBytes,
      dropped: { ...this.#dropped },
      behind: this.#behind,
      slow: this.#slow,
    };
  }

  // ── Batched (driven by the TickWriter) ─────────────────────────────────

  flushBatch(): void {
    if (this.#start === -1) return;
    const log = this.#log!;
    const ranges = this.#ranges;
    const start = this.#start;
    const end = this.#end;
    const bytes = this.#batchBytes;
    const messages = this.#batchMessages;
    const payload = this.#batchPayload;
    this.#clearBatch();
    const socket = this.#socket;
    if (this.ws.readyState !== WebSocket.OPEN || socket.destroyed) {
      if (messages > 0) this.#drop('ERR_SESSION_CLOSED', messages, undefined, undefined);
      return;
    }
    let frames = end - start;
    for (let i = 0; i < ranges.length; i += 2) frames += ranges[i + 1]! - ranges[i]!;
    // One frame, or large ones: handing the kernel an iovec per part costs less than copying them again (writer.ts).
    const partByPart = frames === 1 || bytes > CONCAT_LIMIT_BYTES * frames;
    if (!partByPart && ranges.length === 0) {
      // The common case, one run of small frames: joined once for every connection that got the same run.
      socket.write(log.join(start, end));
    } else {
      const parts: Buffer[] = [];
      for (let i = 0; i < ranges.length; i += 2) log.parts(ranges[i]!, ranges[i + 1]!, parts);
      log.parts(start, end, parts);
      if (partByPart) {
        socket.cork();
        for (const part of parts) socket.write(part);
        socket.uncork();
      } else socket.write(Buffer.concat(parts, bytes));
    }
    this.#messagesOut += messages;
    this.#bytesOut += payload;
    this.#afterWrite();
  }

  refill(): void {
    if (this.#state === 'closing' || this.#state === 'closed') return;
    const socket = this.#socket;
    while (this.#backlog.count > 0 && socket.writableLength + this.#batchBytes < this.#highWater) {
      const item = this.#backlog.shift()!;
      this.#toBatch(item.frame, item.counted !== false);
    }
    if (this.#backlog.count === 0) {
      if (this.#state === 'ending') this.#sendClose(DEFAULT_END_TIMEOUT_MS);
      else this.#checkCaughtUp();
    }
  }

  // ── internals ──────────────────────────────────────────────────────────

  /** The queue bound, and the marks that follow from it. */
  #bound(maxQueueBytes: number | undefined): void {
    this.#maxQueueBytes = maxQueueBytes ?? DEFAULT_MAX_QUEUE_BYTES;
    this.#highWater = socketHighWaterFor(this.#maxQueueBytes);
    this.#earlyFlush = earlyFlushFor(this.#highWater);
  }

  #toBatch(frame: Frame, counted: boolean): void {
    const log = this.#writer.log;
    if (this.#start !== -1 && this.#log !== log) {
      // A flush began after this batch did and this connection was not written yet (a frame delivered from inside
      // the flush): what waits goes out now, ahead of the new frame, rather than mixing two logs in one batch.
      this.flushBatch();
    }
    if (this.#start === -1) {
      this.#writer.flushSoon(this);
      this.#log = log;
    }
    const i = log.add(frame);
    if (i === this.#end) this.#end++;
    else {
      if (this.#start !== -1) this.#ranges.push(this.#start, this.#end);
      this.#start = i;
      this.#end = i + 1;
    }
    this.#batchBytes += frame.size;
    if (this.#batchBytes >= this.#earlyFlush) this.#writer.flushEarly();
    if (!counted) return;
    this.#batchMessages++;
    this.#batchPayload += frame.payloadBytes;
  }

  #enqueue(item: BacklogItem<Frame>): void {
    if (this.#backlog.push(item) === 'overflow') {
      this.#disconnectSlow(item.topic, item.upstream, item.counted !== false ? 1 : 0);
      return;
    }
    if (!this.#behind && !this.#slow) this.#hold();
  }

  #hold(): void {
    this.#behind = true;
    for (const pacer of this.#pacers) pacer.hold(this);
  }

  /**
   * After a write: frames still waiting are refilled next loop turn while the
   * socket has room; a socket the kernel did not empty past half the mark
   * holds the upstreams (what arrives meanwhile fits in the other half).
   */
  #afterWrite(): void {
    const buffered = this.#socket.writableLength;
    if (this.#backlog.count > 0 && buffered < this.#highWater) this.#writer.refillSoon(this);
    if (this.#backlog.count > 0 || buffered >= this.#highWater / 2) {
      if (!this.#behind && !this.#slow) this.#hold();
    } else this.#checkCaughtUp();
  }

  #checkCaughtUp(): void {
    if (this.#backlog.count > 0 || this.#socket.writableLength + this.#batchBytes > this.#highWater / 4) return;
    this.#slow = false;
    if (!this.#behind) return;
    this.#behind = false;
    for (const pacer of this.#pacers) pacer.release(this);
  }

  /** Close 1013 (the catalog's code for ERR_SLOW_CONSUMER): what waits, plus `extra` frames being delivered now, is dropped. */
  #disconnectSlow(topic: string | undefined, upstream: string | undefined, extra = 0): void {
    const lost = this.#backlog.clear().filter((i) => i.counted !== false).length + extra;
    if (lost > 0) this.#drop('ERR_SLOW_CONSUMER', lost, topic, upstream);
    this.#move('closing');
    if (this.ws.readyState === WebSocket.OPEN) this.ws.close(ERROR_CATALOG.ERR_SLOW_CONSUMER.closeCode, 'slow consumer');
    // A consumer too slow to read our close frame must not hold the socket forever.
    this.#armClose(SLOW_CLOSE_GRACE_MS, () => this.ws.terminate());
  }

  /** Ending: the backlog is written (or its time is up): send the close frame and wait for the answer. */
  #sendClose(timeoutMs: number): void {
    if (this.#state !== 'ending') return;
    const lost = this.#backlog.clear().filter((i) => i.counted !== false).length;
    if (lost > 0) this.#drop('ERR_SESSION_CLOSED', lost, undefined, undefined);
    this.#move('closing');
    // What this tick collected goes out before the close frame.
    this.flushBatch();
    if (this.ws.readyState === WebSocket.OPEN) this.ws.close(this.#endCode, this.#endReason);
    this.#armClose(timeoutMs, () => this.ws.terminate());
  }

  /** The socket is gone: whatever still waits is dropped, pacing ends. */
  #closed(): void {
    if (this.#state !== 'closed') this.#move('closed');
    clearTimeout(this.#closeTimer);
    this.#closeTimer = undefined;
    const lost = this.#backlog.clear().filter((i) => i.counted !== false).length + this.#batchMessages;
    this.#clearBatch();
    if (lost > 0) this.#drop('ERR_SESSION_CLOSED', lost, undefined, undefined);
    this.#behind = false;
    for (const pacer of this.#pacers) pacer.release(this);
    this.#pacers.clear();
    this.#resolveEnded?.();
  }

  #clearBatch(): void {
    this.#log = undefined;
    if (this.#ranges.length > 0) this.#ranges = [];
    this.#start = -1;
    this.#end = -1;
    this.#batchBytes = 0;
    this.#batchMessages = 0;
    this.#batchPayload = 0;
  }

  /** The one close timer: each wait replaces the previous one. */
  #armClose(ms: number, onExpire: () => void): void {
    clearTimeout(this.#closeTimer);
    this.#closeTimer = setTimeout(() => {
      this.#closeTimer = undefined;
      onExpire();
    }, ms);
    this.#closeTimer.unref();
  }

  #move(to: OutletState): void {
    if (this.#state === to) return;
    if (!MOVES[this.#state].includes(to)) throw new Error(`outlet ${this.id}: cannot move from ${this.#state} to ${to}`);
    this.#state = to;
  }

  #newBacklog(policy: SlowConsumerPolicy): Backlog<Frame> {
    return new Backlog<Frame>({
      policy,
      maxBytes: this.#maxQueueBytes,
      onDrop: (item, reason) => {
        if (item.counted !== false) this.#drop(reason, 1, item.topic, item.upstream);
      },
    });
  }

  #drop(reason: DropCode, count: number, topic: string | undefined, upstream: string | undefined): void {
    this.#dropped[reason] = (this.#dropped[reason] ?? 0) + count;
    this.#onDrop?.(reason, count, topic, upstream);
  }
}
