/**
 * The feed behind one or more test exchanges (exchange.ts): where each
 * topic's sequence numbers come from. Exchanges serving the same feed
 * publish the same `seq` for the same tick, so a test of failover between
 * two of them can tell a lost message (a gap) from a duplicate (a repeat).
 *
 * Two ways to tick:
 * - **manual** (default): `tick(topic?)` advances the topic(s) by one and
 *   every attached exchange publishes the new seq to its subscribers. Known
 *   topics (ever subscribed, ticked or given in `start`) advance even while
 *   nobody is subscribed anywhere, as a real stream runs on during an outage.
 * - **clock** (`clock: {startMs, intervalMs}`): tick k happens at
 *   `startMs + k * intervalMs` with `seq = k` for every topic. The clock is
 *   plain data, so exchanges in other processes (exchange-main.ts) given the
 *   same clock publish the same seqs at the same moments, across restarts.
 */

/** A feed clock: tick `k` is due at `startMs + k * intervalMs` (epoch ms) and carries `seq = k`. */
export interface FeedClock {
  startMs: number;
  intervalMs: number;
}

export interface SharedFeedOptions {
  /** Manual mode: the last seq already published, for every topic or per topic (the first tick publishes start + 1). @default 0 */
  start?: number | Record<string, number>;
  /** Clock mode instead of manual ticks. */
  clock?: FeedClock;
}

/** What the feed publishes through: an exchange. */
export interface FeedSink {
  /** Topics with at least one subscriber on this sink now. */
  liveTopics(): Iterable<string>;
  /** Send tick `seq` of `topic` to this sink's subscribers. */
  publish(topic: string, seq: number): void;
}

export class SharedFeed {
  readonly clock: FeedClock | undefined;
  readonly #sinks = new Set<FeedSink>();
  readonly #seq = new Map<string, number>();
  readonly #defaultStart: number;
  /** Clock mode: the last tick published, and the timer for the next. */
  #clockTick = -1;
  #timer: NodeJS.Timeout | undefined;

  constructor(options: SharedFeedOptions = {}) {
    if (options.clock && !(options.clock.intervalMs > 0 && Number.isFinite(options.clock.startMs))) {
      throw new RangeError(`SharedFeed: bad clock ${JSON.stringify(options.clock)}`);
    }
    this.clock = options.clock;
    const start = options.start ?? 0;
    this.#defaultStart = typeof start === 'number' ? start : 0;
    if (typeof start === 'object') for (const [topic, seq] of Object.entries(start)) this.#seq.set(topic, seq);
  }

  /** The last seq published for `topic` (the start value before any tick). */
  seq(topic: string): number {
    if (this.clock) return this.#clockTick;
    return this.#seq.get(topic) ?? this.#defaultStart;
  }

  /** Every topic's last seq (manual mode), e.g. to start a restarted child where this one stopped. */
  seqs(): Record<string, number> {
    return Object.fromEntries(this.#seq);
  }

  /** A topic the feed should know from now on (an exchange saw it subscribed). */
  know(topic: string): void {
    if (!this.#seq.has(topic)) this.#seq.set(topic, this.#defaultStart);
  }

  /**
   * Manual mode: advance `topic` (or each of a list; or every known topic)
   * by one and publish it on every attached exchange. Returns the seq
   * published per topic. Throws in clock mode (the clock ticks).
   */
  tick(topic?: string | readonly string[]): Record<string, number> {
    if (this.clock) throw new Error('SharedFeed: a clock feed ticks by itself; tick() is for manual feeds');
    const topics = topic === undefined ? [...this.#knownTopics()] : typeof topic === 'string' ? [topic] : [...topic];
    const out: Record<string, number> = {};
    for (const t of topics) {
      const seq = (this.#seq.get(t) ?? this.#defaultStart) + 1;
      this.#seq.set(t, seq);
      out[t] = seq;
      for (const sink of this.#sinks) sink.publish(t, seq);
    }
    return out;
  }

  /** An exchange starts serving this feed (a clock feed starts ticking with the first). */
  attach(sink: FeedSink): void {
    this.#sinks.add(sink);
    if (this.clock && this.#timer === undefined) {
      this.#clockTick = Math.floor((Date.now() - this.clock.startMs) / this.clock.intervalMs);
      this.#armClock();
    }
  }

  /** An exchange stops (a clock feed stops ticking with the last: no timer outlives the exchanges). */
  detach(sink: FeedSink): void {
    this.#sinks.delete(sink);
    if (this.#sinks.size === 0) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
  }

  #knownTopics(): Set<string> {
    const topics = new Set(this.#seq.keys());
    for (const sink of this.#sinks) for (const t of sink.liveTopics()) topics.add(t);
    return topics;
  }

  #armClock(): void {
    const clock = this.clock;
    if (!clock) return;
    const due = clock.startMs + (this.#clockTick + 1) * clock.intervalMs;
    this.#timer = setTimeout(() => {
      // Every tick that fell due is published, in order, even after a stall: a late tick is not a lost one.
      const now = Math.floor((Date.now() - clock.startMs) / clock.intervalMs);
      while (this.#clockTick < now) {
        this.#clockTick++;
        for (const sink of this.#sinks) for (const t of [...sink.liveTopics()]) sink.publish(t, this.#clockTick);
      }
      this.#armClock();
    }, Math.max(0, due - Date.now()));
  }
}
