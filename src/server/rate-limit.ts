/**
 * A token bucket: `ratePerSecond` tokens refill continuously, up to a burst of
 * one second's worth. Time comes from `performance.now()` so wall-clock jumps
 * never refill or starve a bucket.
 */
import { performance } from 'node:perf_hooks';

export class TokenBucket {
  readonly #rate: number;
  readonly #capacity: number;
  #tokens: number;
  #last: number;

  constructor(ratePerSecond: number, now = performance.now()) {
    this.#rate = ratePerSecond;
    this.#capacity = Math.max(1, ratePerSecond);
    this.#tokens = this.#capacity;
    this.#last = now;
  }

  /** Take one token; false when the bucket is empty. */
  take(now = performance.now()): boolean {
    const elapsed = Math.max(0, now - this.#last);
    this.#last = now;
    this.#tokens = Math.min(this.#capacity, this.#tokens + (elapsed / 1000) * this.#rate);
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }
}
