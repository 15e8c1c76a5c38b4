/**
 * Event-loop delay, measured by Node's own histogram
 * (`perf_hooks.monitorEventLoopDelay`) and reported per window: a lifetime
 * maximum would say nothing once the first GC pause happened.
 */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';

/** Length of one measuring window. @default 5000 */
export const DEFAULT_EVENT_LOOP_WINDOW_MS = 5000;
/** Sampling resolution of the histogram. @default 20 */
export const DEFAULT_EVENT_LOOP_RESOLUTION_MS = 20;

export interface EventLoopStats {
  /** Delays over the last complete window (the current one until the first completes), in seconds. */
  meanSeconds: number;
  p50Seconds: number;
  p99Seconds: number;
  maxSeconds: number;
  windowMs: number;
}

const NS = 1e9;

export class EventLoopMonitor {
  readonly #histogram: IntervalHistogram;
  readonly #windowMs: number;
  readonly #resolutionNs: number;
  readonly #timer: NodeJS.Timeout;
  #last: EventLoopStats | undefined;

  constructor(options: { windowMs?: number; resolutionMs?: number } = {}) {
    this.#windowMs = options.windowMs ?? DEFAULT_EVENT_LOOP_WINDOW_MS;
    const resolutionMs = options.resolutionMs ?? DEFAULT_EVENT_LOOP_RESOLUTION_MS;
    this.#resolutionNs = resolutionMs * 1e6;
    this.#histogram = monitorEventLoopDelay({ resolution: resolutionMs });
    this.#histogram.enable();
    this.#timer = setInterval(() => {
      this.#last = this.#read();
      this.#histogram.reset();
    }, this.#windowMs);
    // Measuring must never keep a hub's process alive.
    this.#timer.unref();
  }

  stats(): EventLoopStats {
    return this.#last ?? this.#read();
  }

  /** Idempotent. */
  stop(): void {
    clearInterval(this.#timer);
    this.#histogram.disable();
  }

  #read(): EventLoopStats {
    const h = this.#histogram;
    // An empty histogram reports NaN mean and a huge min: say 0 instead.
    const empty = h.count === 0;
    // The histogram records the time between its timer's runs, resolution included: the delay is what exceeds it.
    const delay = (ns: number): number => (empty || Number.isNaN(ns) ? 0 : Math.max(0, ns - this.#resolutionNs) / NS);
    return {
      meanSeconds: delay(h.mean),
      p50Seconds: delay(h.percentile(50)),
      p99Seconds: delay(h.percentile(99)),
      maxSeconds: delay(h.max),
      windowMs: this.#windowMs,
    };
  }
}
