/**
 * Options of {@link HardenedServer}: every limit is an option with a safe
 * default, validated once with zod and frozen.
 */
import type { IncomingMessage } from 'node:http';
import { z } from '../zod.js';
import { parseOptions } from '../options.js';
import { silentLogger, type Logger } from '../observe/log.js';
import type { PeerInfo, Refusal } from './types.js';

/** @default '127.0.0.1' — TCP listeners are loopback unless told otherwise. */
export const DEFAULT_TCP_HOST = '127.0.0.1';
/** @default 10000 */
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;
/** @default 16 MiB */
export const DEFAULT_MAX_PAYLOAD = 16 * 1024 * 1024;
/** @default 10000 */
export const DEFAULT_MAX_CONNECTIONS = 10_000;
/** @default 1000 */
export const DEFAULT_MAX_PENDING_HANDSHAKES = 1000;
/** @default 0 (no per-session message rate limit) */
export const DEFAULT_MAX_MESSAGES_PER_SECOND = 0;
/** @default 15000 */
export const DEFAULT_PING_INTERVAL_MS = 15_000;
/** @default 60 (ws's own default for its automatic pongs) */
export const DEFAULT_MAX_PENDING_PONGS = 60;
/** @default 45000 */
export const DEFAULT_IDLE_TIMEOUT_MS = 45_000;
/** @default [] — every request that carries an Origin header is refused. */
export const DEFAULT_ALLOWED_ORIGINS: readonly string[] = Object.freeze([]);
/** @default false — the Unix socket relies on its file mode. */
export const DEFAULT_TOKEN_ON_UNIX = false;
/** @default 5000 */
export const DEFAULT_DRAIN_TIMEOUT_MS = 5000;
/** @default 1000 */
export const DEFAULT_EMFILE_BACKOFF_MS = 1000;
/** @default 0o660 */
export const DEFAULT_UNIX_SOCKET_MODE = 0o660;

export interface HardenedServerOptions {
  /** Unix socket path. Mode `unixSocketMode`; a stale file of a dead process is replaced, a live one is `ERR_LISTEN_ADDRESS_IN_USE`. */
  listen?: string;
  /** TCP listener. @default host '127.0.0.1' */
  tcp?: { host?: string; port: number };
  /** The request head must be complete within this time, else the socket is destroyed (`ERR_HANDSHAKE_TIMEOUT`). @default 10000 */
  handshakeTimeoutMs?: number;
  /** Largest message a peer may send; larger → close 1009 (`ERR_PAYLOAD_TOO_LARGE`). @default 16 MiB */
  maxPayload?: number;
  /** Open sessions cap; more → HTTP 503 (`ERR_TOO_MANY_CONNECTIONS`). @default 10000 */
  maxConnections?: number;
  /** Sockets accepted but not upgraded yet; more → 503 and close (`ERR_TOO_MANY_HANDSHAKES`). @default 1000 */
  maxPendingHandshakes?: number;
  /** Per-session token bucket (burst = one second's worth); exceeded → close 1008 (`ERR_RATE_LIMITED`). 0 disables. @default 0 */
  maxMessagesPerSecond?: number;
  /** Ping every session this often. 0 disables pings. @default 15000 */
  pingIntervalMs?: number;
  /**
   * Pongs owed to a session and not yet written: a burst of more pings than
   * this closes it 1008 (`ERR_PING_FLOOD`). 0 disables the limit. @default 60
   */
  maxPendingPongs?: number;
  /** No pong, ping or message for this long → terminate (`ERR_IDLE_TIMEOUT`). 0 disables. @default 45000 */
  idleTimeoutMs?: number;
  /** Origins allowed for requests that carry an Origin header (browsers); `'*'` allows any. Requests without Origin are allowed. @default [] */
  allowedOrigins?: string[];
  /** Bearer token: `Authorization: Bearer X` or subprotocol `bearer.X`; else 401 (`ERR_UNAUTHORIZED`). Applies to TCP listeners. */
  token?: string;
  /** Also require `token` on the Unix socket (which otherwise relies on its file mode). @default false */
  tokenOnUnix?: boolean;
  /** File mode of the Unix socket. @default 0o660 */
  unixSocketMode?: number;
  /** close(): how long sessions get to flush and answer the 1001 close before they are terminated. @default 5000 */
  drainTimeoutMs?: number;
  /** How often descriptor exhaustion is probed, and the pause before a failed listener is re-opened. @default 1000 */
  emfileBackoffMs?: number;
  /** @default a silent logger */
  logger?: Logger;
  /** Called before upgrade; return a refusal to answer with an HTTP status (e.g. 404 unknown upstream). */
  authorize?: (req: IncomingMessage, info: PeerInfo) => Refusal | undefined;
  /** Subprotocol selection, as ws's handleProtocols (`bearer.*` protocols are removed from the set first). */
  handleProtocols?: (protocols: Set<string>, req: IncomingMessage) => string | false;
}

const positiveMs = z.number().int().positive().max(2 ** 31 - 1);
const optionalMs = z.number().int().min(0).max(2 ** 31 - 1);

const schema = z.strictObject({
  listen: z.string().min(1).max(107, 'Unix socket paths are limited to 107 bytes').optional(),
  tcp: z.strictObject({ host: z.string().min(1).default(DEFAULT_TCP_HOST), port: z.number().int().min(0).max(65535) }).optional(),
  handshakeTimeoutMs: positiveMs.default(DEFAULT_HANDSHAKE_TIMEOUT_MS),
  maxPayload: z.number().int().positive().default(DEFAULT_MAX_PAYLOAD),
  maxConnections: z.number().int().positive().default(DEFAULT_MAX_CONNECTIONS),
  maxPendingHandshakes: z.number().int().positive().default(DEFAULT_MAX_PENDING_HANDSHAKES),
  maxMessagesPerSecond: z.number().min(0).default(DEFAULT_MAX_MESSAGES_PER_SECOND),
  pingIntervalMs: optionalMs.default(DEFAULT_PING_INTERVAL_MS),
  maxPendingPongs: z.number().int().min(0).default(DEFAULT_MAX_PENDING_PONGS),
  idleTimeoutMs: optionalMs.default(DEFAULT_IDLE_TIMEOUT_MS),
  allowedOrigins: z.array(z.string().min(1)).default(() => [...DEFAULT_ALLOWED_ORIGINS]),
  token: z.string().min(1).optional(),
  tokenOnUnix: z.boolean().default(DEFAULT_TOKEN_ON_UNIX),
  unixSocketMode: z.number().int().min(0).max(0o777).default(DEFAULT_UNIX_SOCKET_MODE),
  drainTimeoutMs: optionalMs.default(DEFAULT_DRAIN_TIMEOUT_MS),
  emfileBackoffMs: positiveMs.default(DEFAULT_EMFILE_BACKOFF_MS),
  logger: z.custom<Logger>((v) => typeof v === 'object' && v !== null && typeof (v as Logger).child === 'function', 'expected a pino logger').default(silentLogger),
  authorize: z.custom<NonNullable<HardenedServerOptions['authorize']>>((v) => typeof v === 'function', 'expected a function').optional(),
  handleProtocols: z.custom<NonNullable<HardenedServerOptions['handleProtocols']>>((v) => typeof v === 'function', 'expected a function').optional(),
}).refine((o) => o.listen !== undefined || o.tcp !== undefined, { message: 'set listen (Unix socket path) or tcp (host and port), or both' });

/** The validated, frozen options with every default filled in. */
export type ResolvedServerOptions = Readonly<z.output<typeof schema>>;

/** Validate `input`; throws `ERR_INVALID_OPTION` naming the key. */
export function resolveServerOptions(input: HardenedServerOptions): ResolvedServerOptions {
  const resolved = parseOptions(schema, input, 'server');
  // Origins compare case-insensitively and without a trailing slash, as browsers send them.
  return Object.freeze({ ...resolved, allowedOrigins: Object.freeze(resolved.allowedOrigins.map(normalizeOrigin)) as string[] });
}

/** `HTTPS://Example.com/` → `https://example.com`. */
export function normalizeOrigin(origin: string): string {
  return origin.trim().toLowerCase().replace(/\/+$/, '');
}

