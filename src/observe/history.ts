/**
 * The last few minutes of traffic per upstream, kept by the hub so a status
 * page opened now starts with a chart of what just happened instead of an
 * empty one (and a page reconnecting after a network blip gets its gap
 * filled). A bounded ring of samples: `maxSamples` × upstreams × two
 * counters, taken every `intervalMs` whether or not a page is open, from the
 * routers' counters only (cheap: no snapshot of sessions).
 */
import type { Hub } from '../hub/hub.js';

/** Samples kept: five minutes at the default one-second interval. @default 300 */
export const DEFAULT_HISTORY_SAMPLES = 300;

interface Sample {
  at: number;
  /** upstream name → [messagesIn, deliveries] (cumulative). */
  counters: Map<string, readonly [number, number]>;
}

/** Per upstream, rates between consecutive samples: the chart's series. */
export interface UpstreamHistory {
  /** Seconds since the epoch of each point (the later sample of each pair). */
  t: number[];
  /** Upstream messages per second. */
  in: number[];
  /** Deliveries to workers per second. */
  delivered: number[];
  /** The newest sample's cumulative counters, so the page continues the rates from there. */
  last: { at: number; messagesIn: number; deliveries: number } | undefined;
}

export interface TrafficHistoryOptions {
  hub: Hub;
  intervalMs: number;
  maxSamples: number;
}

export class TrafficHistory {
  readonly #options: TrafficHistoryOptions;
  readonly #ring: Array<Sample | undefined>;
  #next = 0;
  #size = 0;
  readonly #timer: NodeJS.Timeout | undefined;

  constructor(options: TrafficHistoryOptions) {
    this.#options = options;
    this.#ring = new Array<Sample | undefined>(options.maxSamples);
    if (options.maxSamples > 0) {
      this.sample();
      this.#timer = setInterval(() => this.sample(), options.intervalMs);
      this.#timer.unref();
    }
  }

  /** Take one sample now (the timer calls this every `intervalMs`). */
  sample(now = Date.now()): void {
    if (this.#ring.length === 0) return;
    const counters = new Map<string, readonly [number, number]>();
    for (const [name, up] of this.#options.hub.upstreams) counters.set(name, [up.route.counters.received, up.route.counters.deliveries]);
    this.#ring[this.#next] = { at: now, counters };
    this.#next = (this.#next + 1) % this.#ring.length;
    this.#size = Math.min(this.#size + 1, this.#ring.length);
  }

  /** Samples held (at most `maxSamples`). */
  get size(): number {
    return this.#size;
  }

  /** The rates of every upstream over the kept window, oldest first. */
  series(): { intervalMs: number; upstreams: Record<string, UpstreamHistory> } {
    const samples: Sample[] = [];
    for (let i = 0; i < this.#size; i++) {
      const s = this.#ring[(this.#next - this.#size + i + this.#ring.length) % this.#ring.length];
      if (s) samples.push(s);
    }
    const upstreams: Record<string, UpstreamHistory> = {};
    for (const name of this.#options.hub.upstreams.keys()) {
      const h: UpstreamHistory = { t: [], in: [], delivered: [], last: undefined };
      let prev: Sample | undefined;
      for (const s of samples) {
        const now = s.counters.get(name);
        const before = prev?.counters.get(name);
        if (now && before && prev && s.at > prev.at) {
          const dt = (s.at - prev.at) / 1000;
          h.t.push(s.at / 1000);
          // A counter going down means the upstream was replaced (reload): no negative rates.
          h.in.push(Math.max(0, (now[0] - before[0]) / dt));
          h.delivered.push(Math.max(0, (now[1] - before[1]) / dt));
        }
        if (now) h.last = { at: s.at, messagesIn: now[0], deliveries: now[1] };
        prev = s;
      }
      upstreams[name] = h;
    }
    return { intervalMs: this.#options.intervalMs, upstreams };
  }

  /** Stop sampling. Idempotent. */
  close(): void {
    clearInterval(this.#timer);
  }
}
