/**
 * Every default of `ResilientWebSocket`, one exported constant each. The
 * TSDoc `@default`s in types.ts and the table in docs/upstream.md match these.
 */
import { DEFAULT_NETWATCH_INTERVAL_MS } from './netwatch.js';

export { DEFAULT_NETWATCH_INTERVAL_MS };

export const DEFAULT_REJECT_UNAUTHORIZED = true;
export const DEFAULT_PER_MESSAGE_DEFLATE = false;
/** 64 MiB. */
export const DEFAULT_UPSTREAM_MAX_PAYLOAD = 64 * 1024 * 1024;
/** RFC 8305 recommends 250 ms as the Connection Attempt Delay. */
export const DEFAULT_HAPPY_EYEBALLS_DELAY_MS = 250;
export const DEFAULT_DNS_TIMEOUT_MS = 5000;
export const DEFAULT_TCP_TIMEOUT_MS = 10_000;
export const DEFAULT_TLS_TIMEOUT_MS = 10_000;
export const DEFAULT_UPGRADE_TIMEOUT_MS = 10_000;
export const DEFAULT_BACKOFF_MIN_DELAY_MS = 250;
export const DEFAULT_BACKOFF_MAX_DELAY_MS = 30_000;
export const DEFAULT_BACKOFF_FACTOR = 2;
/** Full jitter may draw ~0 ms; this floor keeps a flapping server from being hammered. */
export const DEFAULT_BACKOFF_FLOOR_MS = 50;
export const DEFAULT_CONCEAL_FAILURES = 2;
export const DEFAULT_MIN_UPTIME_MS = 5000;
export const DEFAULT_MAX_ATTEMPTS = Infinity;
export const DEFAULT_UPSTREAM_PING_INTERVAL_MS = 15_000;
export const DEFAULT_UPSTREAM_PONG_TIMEOUT_MS = 5000;
export const DEFAULT_LIVENESS = 'ping' as const;
export const DEFAULT_NETWATCH = true;
export const DEFAULT_PROBE_TIMEOUT_MS = 2000;
export const DEFAULT_FATAL_CLOSE_CODES: ReadonlyArray<number | readonly [number, number]> = Object.freeze([1002, 1003, 1007, 1008]);
export const DEFAULT_FATAL_HTTP_STATUSES: readonly number[] = Object.freeze([400, 401, 403, 404]);
export const DEFAULT_QUEUE_ENABLED = true;
export const DEFAULT_QUEUE_MAX_MESSAGES = 1000;
/** 4 MiB. */
export const DEFAULT_QUEUE_MAX_BYTES = 4 * 1024 * 1024;
export const DEFAULT_QUEUE_TTL_MS = 30_000;
/** 1 MiB of data buffered in the socket before `send()` answers `wait: true`. */
export const DEFAULT_HIGH_WATER_MARK_BYTES = 1024 * 1024;
/** 4 MiB of data held for the upstream at most (socket buffer plus waiting); the hub's memory bound for worker → upstream data. */
export const DEFAULT_SEND_BUFFER_BYTES = 4 * 1024 * 1024;
/** How long `close()` waits for the server's close frame before terminating. */
export const DEFAULT_CLOSE_TIMEOUT_MS = 5000;

