/**
 * The public contract of the upstream client (`ResilientWebSocket`).
 * The hub and the docs are written against these types.
 */
import type { LookupFunction } from 'node:net';
import type { SecureContextOptions } from 'node:tls';
import type { WshubError } from '../errors.js';
import type { Logger } from '../observe/log.js';

/** `idle → connecting → open → (reconnecting → connecting …) → closed`. */
export type UpstreamState = 'idle' | 'connecting' | 'open' | 'reconnecting' | 'closed';

/** A state change, delivered as the `state` event. */
export interface StateChange {
  type: 'state';
  from: UpstreamState;
  to: UpstreamState;
  /** Why: a short human reason such as `ERR_PONG_TIMEOUT` or `server closed 1001 "going away"`. */
  reason: string;
  /** Consecutive failed attempts so far (0 once a connection has stayed up for minUptimeMs). */
  attempt: number;
  /** Only on `reconnecting`: how long until the next attempt. */
  delayMs?: number;
  /** The error behind the change, if there was one. */
  cause?: WshubError;
  /** True when the failure is past `concealFailures` and should be reported as an outage. */
  outage?: boolean;
  /** Epoch ms of the change. */
  at: number;
}

/** Facts about an open connection, delivered as the `open` event. */
export interface OpenInfo {
  type: 'open';
  /** The negotiated subprotocol ('' when none). */
  protocol: string;
  extensions: string;
  localAddress: string | undefined;
  localPort: number | undefined;
  remoteAddress: string | undefined;
  remotePort: number | undefined;
  family: 'IPv4' | 'IPv6' | undefined;
  /** 1-based count of successful opens over the client's life. */
  connection: number;
  /** How long each connect phase of this attempt took. */
  phases: ConnectPhases;
  at: number;
}

/**
 * The duration of each connect phase of one successful attempt, in ms
 * (fractional). `dnsMs` is absent for an IP literal (no lookup), `tlsMs` for
 * `ws:`. `tcpMs` is the whole Happy Eyeballs race, failed addresses included.
 * Time spent waiting at `connectGate` is not in any phase.
 */
export interface ConnectPhases {
  dnsMs?: number;
  tcpMs: number;
  tlsMs?: number;
  upgradeMs: number;
}

/** The connect phases, as histogram keys and metric labels. */
export type ConnectPhase = 'dns' | 'tcp' | 'tls' | 'upgrade';

/**
 * A cumulative histogram, shaped as Prometheus exposes one: `counts[i]` is
 * the number of observations `<= buckets[i]` ms; `count` (every observation,
 * the `+Inf` bucket) and `sum` (ms) complete it.
 */
export interface PhaseHistogram {
  /** Upper bounds in ms, ascending. */
  buckets: number[];
  /** Cumulative, one per bound. */
  counts: number[];
  sum: number;
  count: number;
}

/** One histogram per connect phase, over every successful attempt of the client's life. */
export type ConnectPhaseHistograms = Record<ConnectPhase, PhaseHistogram>;

/**
 * Awaited before every connection attempt (the first and every retry); the
 * attempt dials once it resolves. `signal` aborts when the attempt is
 * abandoned (close(), destroy(), reconnect()): a gate should then drop the
 * waiter (`RateGate.acquire({ signal })` does). A rejection fails the attempt
 * with `ERR_CONNECT_GATE` (retried with backoff).
 */
export type ConnectGate = (signal: AbortSignal) => Promise<void> | void;

/** A message that left the outbound queue without being sent. */
export interface DropNotice {
  type: 'drop';
  /** `ERR_QUEUE_FULL`, `ERR_QUEUE_EXPIRED`, `ERR_QUEUE_DISABLED`, `ERR_QUEUE_CLOSED`, or `ERR_CLOSED` for a send after the final close. */
  reason: WshubError['code'];
  bytes: number;
  /** The `tag` given to `send()`, so a caller can attribute the drop (e.g. to a session). */
  tag: unknown;
}

/** Options of `send()`. */
export interface SendOptions {
  /** Send as a binary frame. Default: binary for Buffers, text for strings. */
  binary?: boolean;
  /** Opaque value echoed in the `drop` event if this message is dropped. */
  tag?: unknown;
  /** How long this message may wait in the outbound queue. Default: `queue.ttlMs`. */
  ttlMs?: number;
}

/** What `send()` did with the message. */
export type SendResult =
  /** Written to the socket, or queued; `wait` true means buffered data passed the high-water mark: wait for `drain`. */
  | { ok: true; queued: boolean; wait: boolean }
  /** Not sent and not queued; a `drop` event was emitted too. */
  | { ok: false; error: WshubError };

/** One snapshot of everything the client counts; feeds /status and /metrics. */
export interface UpstreamStats {
  state: UpstreamState;
  url: string;
  attempt: number;
  /** Successful opens. */
  connections: number;
  /** Reconnections: opens after an earlier open (`connections - 1`); failed attempts are not counted here. */
  reconnects: number;
  /** Open connections that ended by a failure (not by close()/reconnect()). */
  disconnects: number;
  /** The same, by error code (`ERR_PONG_TIMEOUT`, `ERR_SERVER_CLOSED`, `ERR_CONNECTION_LOST`, …). */
  disconnectsByCause: Record<string, number>;
  /** Attempts that failed before opening (dial or upgrade). */
  failedAttempts: number;
  /** The same, by error code (`ERR_TCP_CONNECT`, `ERR_UPGRADE_REJECTED`, …). */
  failedAttemptsByCause: Record<string, number>;
  lastOpenAt: number | undefined;
  lastCloseAt: number | undefined;
  lastClose: { code: number | undefined; reason: string; errorCode: string | undefined; phase: string | undefined; address: string | undefined } | undefined;
  protocol: string;
  remoteAddress: string | undefined;
  family: string | undefined;
  messagesIn: number;
  messagesOut: number;
  bytesIn: number;
  bytesOut: number;
  lastRttMs: number | undefined;
  queue: { messages: number; bytes: number };
  dropped: Record<string, number>;
  /** Per-phase connect durations of every successful attempt (set by `ResilientWebSocket`; optional for aggregates built elsewhere). */
  connectPhases?: ConnectPhaseHistograms;
  /**
   * The account of every message given to `send()`: `accepted` = `sent`
   * (handed to the kernel) + `dropped` (by reason in `dropped`) + `held`
   * (still in the outage queue, waiting for room, or being written).
   */
  sends?: { accepted: number; sent: number; dropped: number; held: number; heldBytes: number };
}

/** Backoff between attempts: exponential with full jitter. */
export interface BackoffOptions {
  /** @default 250 */
  minDelayMs?: number;
  /** @default 30000 */
  maxDelayMs?: number;
  /** @default 2 */
  factor?: number;
  /** Consecutive failures not reported as an outage (`outage: false` on state events). @default 2 */
  concealFailures?: number;
  /** A connection open at least this long resets the attempt count. @default 5000 */
  minUptimeMs?: number;
  /** Stop after this many consecutive failed attempts. @default Infinity */
  maxAttempts?: number;
  /** Smallest delay ever drawn, so full jitter near 0 does not hammer a flapping server. @default 50 */
  floorMs?: number;
}

/** The bounded outbound queue used while the upstream is not open. */
export interface QueueOptions {
  /** @default true */
  enabled?: boolean;
  /** @default 1000 */
  maxMessages?: number;
  /** @default 4 MiB */
  maxBytes?: number;
  /** @default 30000 */
  ttlMs?: number;
}

export interface ResilientWebSocketOptions {
  url: string;
  protocols?: string[];
  headers?: Record<string, string>;
  /** TLS: extra CA certificates (PEM). */
  ca?: SecureContextOptions['ca'];
  /** @default true */
  rejectUnauthorized?: boolean;
  /** @default false */
  perMessageDeflate?: boolean;
  /** Largest message accepted from the upstream. @default 64 MiB */
  maxPayload?: number;
  /** Custom resolver (same shape as dns.lookup with `all: true` support); tests use it for dual-stack names. */
  lookup?: LookupFunction;
  /** Awaited before every connection attempt, e.g. to rate-limit new connections (see {@link ConnectGate}). */
  connectGate?: ConnectGate;
  /** Bind the local side of the TCP connection to this IP address. */
  localAddress?: string;
  /** Happy Eyeballs: delay before racing the next address (RFC 8305). @default 250 */
  happyEyeballsDelayMs?: number;
  /** @default 5000 */
  dnsTimeoutMs?: number;
  /** Per address. @default 10000 */
  tcpTimeoutMs?: number;
  /** @default 10000 */
  tlsTimeoutMs?: number;
  /** @default 10000 */
  upgradeTimeoutMs?: number;
  backoff?: BackoffOptions;
  /** How long `close()` waits for the server's close frame before terminating. @default 5000 */
  closeTimeoutMs?: number;
  /** `send()` answers `wait: true` once the bytes held for the upstream pass this; past it messages wait in the client until the socket drains. @default 1 MiB */
  highWaterMarkBytes?: number;
  /** Most bytes held for the upstream while open (buffered in the socket plus waiting); a send past it is refused with `ERR_SEND_BUFFER_FULL`. @default 4 MiB */
  sendBufferBytes?: number;
  /** @default 15000; 0 disables pings */
  pingIntervalMs?: number;
  /** @default 5000 */
  pongTimeoutMs?: number;
  /**
   * `ping`: only a pong (or any frame from the peer) proves life.
   * `app`: the application calls `markAlive()` when the upstream's own heartbeat arrives;
   * pings are still sent but a missing pong alone does not kill the connection.
   * @default 'ping'
   */
  liveness?: 'ping' | 'app';
  /** Watch local interfaces and probe when a socket's local address disappears. @default true */
  netwatch?: boolean;
  /** Poll interval of the interface watcher. @default 1000 */
  netwatchIntervalMs?: number;
  /** Timeout of the probe ping after a local address disappeared. @default 2000 */
  probeTimeoutMs?: number;
  /** Server close codes that stop retrying. @default [1002, 1003, 1007, 1008] */
  fatalCloseCodes?: Array<number | [number, number]>;
  /** HTTP statuses of a rejected upgrade that stop retrying. @default [400, 401, 403, 404] */
  fatalHttpStatuses?: number[];
  queue?: QueueOptions;
  logger?: Logger;
  /** A name used in logs and metrics. @default the URL's host */
  name?: string;
}

/** The event map of `ResilientWebSocket`. */
export interface ResilientWebSocketEvents {
  state: [StateChange];
  open: [OpenInfo];
  message: [data: Buffer, isBinary: boolean];
  drop: [DropNotice];
  /** A message sent with a `tag` was handed to the kernel (its answer may come now). */
  sent: [tag: unknown];
  drain: [];
  /**
   * A probe after a local address change, with its outcome; logged either
   * way. `endedBy` (the error code, e.g. `ERR_PONG_TIMEOUT`) when the
   * connection was torn down for another reason while the probe waited.
   */
  probe: [{ type: 'probe'; trigger: string; ok: boolean; rttMs?: number; endedBy?: string }];
}
