/**
 * Delay before the next connection attempt: exponential with full jitter
 * (AWS Architecture Blog, "Exponential Backoff and Jitter"), so a fleet of
 * clients that lost the same server spreads its reconnects instead of
 * arriving in one wave. A floor keeps a jitter draw near zero from turning a
 * flapping server into a tight reconnect loop.
 */
export interface BackoffPolicy {
  minDelayMs: number;
  maxDelayMs: number;
  factor: number;
  floorMs: number;
}

/**
 * The delay before retry number `attempt` (1 = first retry after a failure):
 * `max(floor, random(0, min(max, min * factor^(attempt-1))))`, never above `maxDelayMs`.
 * `random` is injectable only so the bounds can be tested deterministically.
 */
export function backoffDelay(policy: BackoffPolicy, attempt: number, random: () => number = Math.random): number {
  const exponent = Math.max(0, attempt - 1);
  // Cap the exponent: factor^exponent overflows to Infinity long before it matters.
  const ceiling = Math.min(policy.maxDelayMs, policy.minDelayMs * Math.pow(policy.factor, Math.min(exponent, 64)));
  const drawn = Math.floor(random() * ceiling);
  return Math.min(policy.maxDelayMs, Math.max(policy.floorMs, drawn));
}
