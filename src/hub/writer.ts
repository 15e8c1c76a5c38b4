/**
 * The hub's per-tick writer: one instance per hub, no module-level state.
 *
 * Frames delivered during one loop turn are collected once, in a
 * {@link FrameLog}, each connection keeping the ranges of it that are its
 * batch, and a `setImmediate` at the end of the turn (after every read of
 * its poll phase) writes each connection's batch with a single
 * `socket.write` (or one writev for large frames); a batch that reaches its
 * connection's early-flush size (`earlyFlushFor` in outlet.ts) is written as
 * soon as the current callback returns. Connections that got the same
 * frames — a broadcast — share one concatenated buffer, so a burst costs one
 * copy in all and one write call per connection, not one per frame per
 * connection.
 *
 * Why the end of the turn and not a microtask after each upstream read: at
 * 64 KiB messages each read holds about one message, so writing after each
 * read sent every 65,546-byte frame alone, and the worker read 64 KiB then
 * 10 bytes (40 KB per read on average). Written per turn, it read 46 KB; the
 * hub spent 72–73 µs per message against 77–86 and its worker 44–47 against
 * 49–57 (alternating runs, 1 worker × 64 KiB, free-running source). At
 * 16 workers × 1 KiB reads grew from 44 to 55 KB with no throughput change
 * beyond noise (hub / fed fan-out 0.67–0.71 against 0.63–0.70).
 *
 * Connections whose backlog waits for room are refilled every loop turn (a
 * `setImmediate` that runs while any has room and frames waiting), not only
 * when their socket reports 'drain'.
 *
 * A flush takes its set before writing, so a connection that gets a frame
 * during the flush (a write callback, an error handler) is never stranded: it
 * is in the next set, and its frames in the next log.
 */
import type { Frame } from './frame.js';

/** What the writer drives; implemented by a connection's outlet. */
export interface Batched {
  /** Write this tick's frames. */
  flushBatch(): void;
  /** Move waiting frames into the batch while the socket has room. */
  refill(): void;
}

/**
 * A batch whose frames average more than this is written part by part (one
 * writev, no copy) instead of concatenated. Small frames are always joined,
 * however large the batch: Node's writev costs a lookup and a type check per
 * part, and a refill batch of 256 KiB in 1 KiB frames is 500 frames — in a
 * profile at 16 workers × 1 KiB that per-part work outweighed the copy it
 * saved (hub CPU per million deliveries 0.43–0.48 s joined against 0.53–0.63
 * s part by part, alternating runs).
 */
export const CONCAT_LIMIT_BYTES = 16 * 1024;

/**
 * The frames batched between two flushes, in the order they were delivered,
 * each once: a connection's batch is a list of index ranges into it, so a
 * delivery costs a comparison or two, not a push of each frame's buffers
 * into every connection's own array. A frame delivered to 16 connections in
 * a row is appended once (the next connection finds it at the end) and each
 * connection's range grows by one; connections that got the same range — a
 * broadcast — share one concatenated buffer.
 *
 * Frames only ever join the end, so a range, once delivered, never changes:
 * its joined buffer can be kept for the rest of the flush.
 */
export class FrameLog {
  readonly #frames: Frame[] = [];
  /** Bytes of frames 0..i, inclusive. */
  readonly #ends: number[] = [];
  /** Joined ranges, by start: identical batches share one buffer. */
  #joined: Map<number, Array<{ end: number; buffer: Buffer }>> | undefined;

  /** The index of `frame` in the log: the last entry when it is the same frame, else a new one. */
  add(frame: Frame): number {
    const n = this.#frames.length;
    if (n > 0 && this.#frames[n - 1] === frame) return n - 1;
    this.#frames.push(frame);
    this.#ends.push(n > 0 ? this.#ends[n - 1]! + frame.size : frame.size);
    return n;
  }

  /** Framed bytes of entries `start` to `end` (exclusive). */
  bytes(start: number, end: number): number {
    return this.#ends[end - 1]! - (start > 0 ? this.#ends[start - 1]! : 0);
  }

  /** Push the buffers of entries `start` to `end` (exclusive) onto `parts`. */
  parts(start: number, end: number, parts: Buffer[]): void {
    for (let i = start; i < end; i++) for (const part of this.#frames[i]!.parts) parts.push(part);
  }

  /** Entries `start` to `end` (exclusive) as one buffer, built once per range and flush. */
  join(start: number, end: number): Buffer {
    this.#joined ??= new Map();
    let list = this.#joined.get(start);
    const found = list?.find((j) => j.end === end);
    if (found) return found.buffer;
    const parts: Buffer[] = [];
    this.parts(start, end, parts);
    const buffer = Buffer.concat(parts, this.bytes(start, end));
    if (list) list.push({ end, buffer });
    else this.#joined.set(start, (list = [{ end, buffer }]));
    return buffer;
  }
}

export class TickWriter {
  #log = new FrameLog();
  #flushing = new Set<Batched>();
  #flushScheduled = false;
  #refilling = new Set<Batched>();
  #refillScheduled = false;
  #immediateScheduled = false;
  readonly #flushImmediate = (): void => {
    this.#immediateScheduled = false;
    this.#flush();
  };

  readonly #flush = (): void => {
    this.#flushScheduled = false;
    const set = this.#flushing;
    this.#flushing = new Set();
    // Frames delivered from here on (a write callback, an error handler) start the next log.
    this.#log = new FrameLog();
    for (const out of set) out.flushBatch();
  };

  readonly #refill = (): void => {
    this.#refillScheduled = false;
    const set = this.#refilling;
    this.#refilling = new Set();
    for (const out of set) out.refill();
  };

  /** The log this tick's frames join. */
  get log(): FrameLog {
    return this.#log;
  }

  /** `out` has frames in its batch: write them at the end of this loop turn. */
  flushSoon(out: Batched): void {
    this.#flushing.add(out);
    if (this.#flushScheduled || this.#immediateScheduled) return;
    this.#immediateScheduled = true;
    setImmediate(this.#flushImmediate);
  }

  /** A batch reached its early-flush size: write every batch as soon as the current callback returns. */
  flushEarly(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    queueMicrotask(this.#flush);
  }

  /** `out` has frames waiting and room in its socket: refill it on the next loop turn. */
  refillSoon(out: Batched): void {
    this.#refilling.add(out);
    if (this.#refillScheduled) return;
    this.#refillScheduled = true;
    setImmediate(this.#refill);
  }
}
