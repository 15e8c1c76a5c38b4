/**
 * Reading an upstream at the pace its healthy sessions take.
 *
 * Real upstreams do not wait for acknowledgements: they write as fast as TCP
 * lets them. A relay that reads faster than it can write piles the
 * difference up in its queues and its slow-consumer policy throws it away,
 * even though every worker is reading as fast as it can. So the hub does what
 * a direct client does: while a session it feeds is behind (frames waiting in
 * the hub because its socket is full), it stops reading the upstream, and TCP
 * backpressure reaches the upstream exactly as it would from the worker
 * itself; when the writes catch up, reading resumes.
 *
 * One stalled session must not hold the others back: a session still behind
 * `slowAfterMs` after the pause began (while the upstream was paused for it,
 * every healthy session had time to catch up) is slow. It stops pacing the
 * upstream, its own queue and slow-consumer policy deal with it, and drops
 * happen to it alone. It paces again once it has caught up.
 *
 * One pacer per message source (an upstream connection, later any source
 * that can pause); one timer per pacer, armed only while it is paused.
 */
import { performance } from 'node:perf_hooks';

/** How long a session may hold an upstream's reading paused before it counts as slow. @default 1000 */
export const DEFAULT_SLOW_AFTER_MS = 1000;

/** Something that can stop and resume delivering messages. */
export interface PausableSource {
  pause(): void;
  resume(): void;
}

/** A session's connection, as the pacer sees it. */
export interface PacedSink {
  /** Called when it held the source paused for `slowAfterMs`: from now on it is slow and does not pace. */
  markSlow(): void;
}

export interface PacerStats {
  paused: boolean;
  /** Times reading was paused. */
  pauses: number;
  /** Total time reading was paused. */
  pausedMs: number;
  /** Sessions that were found slow (held the source past slowAfterMs). */
  slowSessions: number;
}

export class ReadPacer {
  readonly #source: PausableSource;
  readonly #slowAfterMs: number;
  /** Sinks holding the source paused, with when each started. */
  readonly #holders = new Map<PacedSink, number>();
  #timer: NodeJS.Timeout | undefined;
  #pausedAt: number | undefined;
  #pauses = 0;
  #pausedMs = 0;
  #slowSessions = 0;

  constructor(source: PausableSource, slowAfterMs = DEFAULT_SLOW_AFTER_MS) {
    this.#source = source;
    this.#slowAfterMs = slowAfterMs;
  }

  get paused(): boolean {
    return this.#holders.size > 0;
  }

  /** `sink` is behind: pause the source until it catches up (or turns out slow). */
  hold(sink: PacedSink): void {
    if (this.#holders.has(sink)) return;
    const now = performance.now();
    this.#holders.set(sink, now);
    if (this.#holders.size === 1) {
      this.#pausedAt = now;
      this.#pauses++;
      this.#source.pause();
      this.#arm(this.#slowAfterMs);
    }
  }

  /** `sink` caught up, left, or is slow. */
  release(sink: PacedSink): void {
    if (!this.#holders.delete(sink) || this.#holders.size > 0) return;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#pausedAt !== undefined) this.#pausedMs += performance.now() - this.#pausedAt;
    this.#pausedAt = undefined;
    this.#source.resume();
  }

  stats(): PacerStats {
    const pausedNow = this.#pausedAt === undefined ? 0 : performance.now() - this.#pausedAt;
    return { paused: this.paused, pauses: this.#pauses, pausedMs: Math.round(this.#pausedMs + pausedNow), slowSessions: this.#slowSessions };
  }

  /** Stop for good (the source is gone): no timer outlives it. */
  close(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#holders.clear();
  }

  #arm(delayMs: number): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#expire(), Math.max(1, Math.ceil(delayMs)));
    this.#timer.unref();
  }

  #expire(): void {
    this.#timer = undefined;
    const now = performance.now();
    let next = Infinity;
    for (const [sink, since] of [...this.#holders]) {
      if (now - since >= this.#slowAfterMs) {
        this.#slowSessions++;
        // markSlow() releases the sink from every pacer holding it, this one included.
        sink.markSlow();
        this.release(sink);
      } else next = Math.min(next, since + this.#slowAfterMs - now);
    }
    if (this.#holders.size > 0 && next !== Infinity) this.#arm(next);
  }
}
