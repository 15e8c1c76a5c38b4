/**
 * Pacing what wshub itself sends to an upstream, so that a provider's limits
 * (Binance: 5 incoming messages a second per connection; connection attempts
 * per IP) are never tripped, however much work piles up at once (a replay of
 * 500 subscriptions after a reconnect, a pool opening its shards).
 *
 * - {@link TokenBucket}: `messages` tokens per `perMs`, refilled
 *   continuously, starting full. Smooth pacing with a burst.
 * - {@link SlidingWindow}: never more than `messages` in any window of
 *   `perMs` — the rule a server that counts frames over a rolling second
 *   enforces. A full token bucket can pass nearly twice its `messages` within
 *   one `perMs` (the burst, then the refill); a sliding window cannot.
 * - {@link RateGate}: the async side of either: `await gate.acquire()` in
 *   FIFO order, one unref'd timer for all waiters.
 *
 * Time comes from `performance.now()` (monotonic: a wall-clock jump neither
 * refills nor starves a limiter); tests may pass their own clock.
 */
import { performance } from 'node:perf_hooks';
import { WshubError } from '../errors.js';

/** `messages` per `perMs` (e.g. `{ messages: 5, perMs: 1000 }`). */
export interface RateLimit {
  /** A positive integer. */
  messages: number;
  /** A positive number of milliseconds. */
  perMs: number;
}

/** What a {@link RateGate} paces with. */
export interface RateLimiter {
  /** The most units one `take()` can ever get. */
  readonly capacity: number;
  /** Units available now (may be fractional for a token bucket). */
  readonly tokens: number;
  /** Take `n` units now if available; false (and nothing taken) otherwise. */
  take(n?: number): boolean;
  /** Milliseconds until `take(n)` can succeed: 0 when it can now, Infinity when `n` exceeds the capacity. */
  msUntil(n?: number): number;
}

/** Rounding slack: refill arithmetic in floating point must not make a due token wait one more timer. */
const EPSILON = 1e-9;

function checkLimit(limit: RateLimit, what: string): void {
  if (typeof limit !== 'object' || limit === null) {
    throw new WshubError('ERR_INVALID_OPTION', `${what}: expected { messages, perMs }`, { details: { path: what } });
  }
  if (!Number.isInteger(limit.messages) || limit.messages < 1) {
    throw new WshubError('ERR_INVALID_OPTION', `${what}.messages: expected a positive integer, got ${String(limit.messages)}`, { details: { path: `${what}.messages` } });
  }
  if (typeof limit.perMs !== 'number' || !Number.isFinite(limit.perMs) || limit.perMs <= 0) {
    throw new WshubError('ERR_INVALID_OPTION', `${what}.perMs: expected a positive number of ms, got ${String(limit.perMs)}`, { details: { path: `${what}.perMs` } });
  }
}

function unitsError(n: number): WshubError | undefined {
  return Number.isInteger(n) && n >= 1 ? undefined
    : new WshubError('ERR_INVALID_OPTION', `units: expected a positive integer, got ${String(n)}`, { details: { path: 'n' } });
}

function checkUnits(n: number): void {
  const error = unitsError(n);
  if (error) throw error;
}

/**
 * `messages` tokens per `perMs`, refilled continuously, at most `messages`
 * held. Starts full. Over any window of `T` ms it passes at most
 * `messages + messages * T / perMs` units: against a server enforcing a hard
 * count per rolling window use {@link SlidingWindow}, or a bucket with headroom.
 */
export class TokenBucket implements RateLimiter {
  readonly capacity: number;
  /** Tokens per millisecond. */
  readonly #rate: number;
  readonly #now: () => number;
  #tokens: number;
  #last: number;

  /** Throws `ERR_INVALID_OPTION` for a bad limit. `now` is a monotonic clock in ms (tests). */
  constructor(limit: RateLimit, now: () => number = () => performance.now()) {
    checkLimit(limit, 'rate');
    this.capacity = limit.messages;
    this.#rate = limit.messages / limit.perMs;
    this.#now = now;
    this.#tokens = limit.messages;
    this.#last = now();
  }

  get tokens(): number {
    this.#refill();
    return this.#tokens;
  }

  take(n = 1): boolean {
    checkUnits(n);
    this.#refill();
    if (this.#tokens + EPSILON < n) return false;
    this.#tokens = Math.max(0, this.#tokens - n);
    return true;
  }

  msUntil(n = 1): number {
    checkUnits(n);
    if (n > this.capacity) return Infinity;
    this.#refill();
    const missing = n - this.#tokens;
    return missing <= EPSILON ? 0 : missing / this.#rate;
  }

  #refill(): void {
    const now = this.#now();
    // A clock that goes backwards (a test's, never performance.now()) refills nothing.
    const elapsed = Math.max(0, now - this.#last);
    this.#last = Math.max(this.#last, now);
    this.#tokens = Math.min(this.capacity, this.#tokens + elapsed * this.#rate);
  }
}

/**
 * At most `messages` units in any window of `perMs` ms: a unit taken at `t`
 * counts until `t + perMs`. Exact, with memory for `messages` timestamps.
 */
export class SlidingWindow implements RateLimiter {
  readonly capacity: number;
  readonly #perMs: number;
  readonly #now: () => number;
  /** When each unit in the window was taken, oldest first. */
  readonly #taken: number[] = [];

  /** Throws `ERR_INVALID_OPTION` for a bad limit. `now` is a monotonic clock in ms (tests). */
  constructor(limit: RateLimit, now: () => number = () => performance.now()) {
    checkLimit(limit, 'rate');
    this.capacity = limit.messages;
    this.#perMs = limit.perMs;
    this.#now = now;
  }

  get tokens(): number {
    this.#expire(this.#now());
    return this.capacity - this.#taken.length;
  }

  take(n = 1): boolean {
    checkUnits(n);
    const now = this.#now();
    this.#expire(now);
    if (this.#taken.length + n > this.capacity) return false;
    for (let i = 0; i < n; i++) this.#taken.push(now);
    return true;
  }

  msUntil(n = 1): number {
    checkUnits(n);
    if (n > this.capacity) return Infinity;
    const now = this.#now();
    this.#expire(now);
    const mustLeave = this.#taken.length + n - this.capacity;
    if (mustLeave <= 0) return 0;
    // The mustLeave-th oldest unit leaves the window at its time + perMs.
    const leaves = (this.#taken[mustLeave - 1] ?? now) + this.#perMs;
    return Math.max(0, leaves - now);
  }

  #expire(now: number): void {
    let gone = 0;
    while (gone < this.#taken.length && (this.#taken[gone] ?? Infinity) + this.#perMs <= now) gone++;
    if (gone > 0) this.#taken.splice(0, gone);
  }
}

interface Waiter {
  n: number;
  resolve: () => void;
  reject: (err: unknown) => void;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

/** Options of {@link RateGate.acquire}. */
export interface AcquireOptions {
  /** Units to take at once (e.g. one frame carrying many subscriptions is still 1). @default 1 */
  n?: number;
  /** Leave the queue when aborted: the promise rejects with the signal's reason and takes nothing. */
  signal?: AbortSignal;
}

/**
 * FIFO admission through a {@link RateLimiter}. Waiters are served strictly
 * in order (a large request is not overtaken by small ones), woken by one
 * unref'd timer set for when the head of the queue can pass: a gate keeps no
 * process alive by itself and costs one timer however many wait.
 */
export class RateGate {
  readonly limiter: RateLimiter;
  readonly #queue: Waiter[] = [];
  #timer: NodeJS.Timeout | undefined;
  #closed: WshubError | undefined;

  /** Paces with `limiter`, or with a new {@link TokenBucket} of `limit`. */
  constructor(limiter: RateLimiter | RateLimit) {
    this.limiter = 'take' in limiter ? limiter : new TokenBucket(limiter);
  }

  /** Waiters in the queue. */
  get pending(): number {
    return this.#queue.length;
  }

  /** Whether `close()` was called. */
  get closed(): boolean {
    return this.#closed !== undefined;
  }

  /**
   * Resolves once `n` units were taken for this caller, after every earlier
   * caller. Rejects with `ERR_CLOSED` after (or on) `close()`, with
   * `ERR_INVALID_OPTION` when `n` exceeds the limiter's capacity (it could
   * never pass), with the signal's reason when `signal` aborts first.
   */
  acquire(options: AcquireOptions = {}): Promise<void> {
    const n = options.n ?? 1;
    const signal = options.signal;
    if (this.#closed) return Promise.reject(this.#closed);
    const badUnits = unitsError(n);
    if (badUnits) return Promise.reject(badUnits);
    if (n > this.limiter.capacity) {
      return Promise.reject(new WshubError('ERR_INVALID_OPTION', `acquire(${n}): more than the limit's ${this.limiter.capacity} units could never pass`, { details: { path: 'n' } }));
    }
    if (signal?.aborted) return Promise.reject(abortReason(signal));
    // Nobody waiting and room now: no promise tick is spent in a queue.
    if (this.#queue.length === 0 && this.limiter.take(n)) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = { n, resolve, reject, signal, onAbort: undefined };
      if (signal) {
        waiter.onAbort = () => {
          const i = this.#queue.indexOf(waiter);
          if (i < 0) return;
          this.#queue.splice(i, 1);
          reject(abortReason(signal));
          // The head may have changed: the next waiter's wait may be shorter.
          if (i === 0) this.#pump();
        };
        signal.addEventListener('abort', waiter.onAbort, { once: true });
      }
      this.#queue.push(waiter);
      if (this.#queue.length === 1) this.#pump();
    });
  }

  /** Reject every waiter and every later `acquire()` with `ERR_CLOSED`. Idempotent. */
  close(reason = 'rate gate closed'): void {
    if (this.#closed) return;
    this.#closed = new WshubError('ERR_CLOSED', `ERR_CLOSED ${reason}`);
    clearTimeout(this.#timer);
    this.#timer = undefined;
    for (const waiter of this.#queue.splice(0)) this.#settle(waiter, this.#closed);
  }

  /** Let through every waiter that can pass now, in order; then arm the timer for the new head. */
  #pump(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    for (;;) {
      const head = this.#queue[0];
      if (!head) return;
      if (!this.limiter.take(head.n)) break;
      this.#queue.shift();
      this.#settle(head, undefined);
    }
    const head = this.#queue[0];
    if (!head) return;
    // At least 1 ms: a timer may fire a fraction early, and then the loop above simply re-arms.
    const wait = Math.max(1, Math.ceil(this.limiter.msUntil(head.n)));
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#pump();
    }, wait);
    this.#timer.unref();
  }

  #settle(waiter: Waiter, error: WshubError | undefined): void {
    if (waiter.onAbort) waiter.signal?.removeEventListener('abort', waiter.onAbort);
    if (error) waiter.reject(error);
    else waiter.resolve();
  }
}

function abortReason(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  return reason instanceof Error ? reason : new WshubError('ERR_CLOSED', 'ERR_CLOSED acquire aborted', { cause: reason });
}
