/**
 * Options of `ResilientWebSocket`: defaults from defaults.ts, one
 * zod schema validated once in the constructor (unknown keys refused), the
 * result frozen. The TSDoc `@default`s of `types.ts` match these constants.
 */
import { isIP } from 'node:net';
import type { LookupFunction } from 'node:net';
import { z } from '../zod.js';
import { parseOptions } from '../options.js';
import type { Logger } from '../observe/log.js';
import type { ConnectGate, ResilientWebSocketOptions } from './types.js';
import {
  DEFAULT_REJECT_UNAUTHORIZED,
  DEFAULT_PER_MESSAGE_DEFLATE,
  DEFAULT_UPSTREAM_MAX_PAYLOAD,
  DEFAULT_HAPPY_EYEBALLS_DELAY_MS,
  DEFAULT_DNS_TIMEOUT_MS,
  DEFAULT_TCP_TIMEOUT_MS,
  DEFAULT_TLS_TIMEOUT_MS,
  DEFAULT_UPGRADE_TIMEOUT_MS,
  DEFAULT_BACKOFF_MIN_DELAY_MS,
  DEFAULT_BACKOFF_MAX_DELAY_MS,
  DEFAULT_BACKOFF_FACTOR,
  DEFAULT_BACKOFF_FLOOR_MS,
  DEFAULT_CONCEAL_FAILURES,
  DEFAULT_MIN_UPTIME_MS,
  DEFAULT_MAX_ATTEMPTS,
  DEFAULT_UPSTREAM_PING_INTERVAL_MS,
  DEFAULT_UPSTREAM_PONG_TIMEOUT_MS,
  DEFAULT_LIVENESS,
  DEFAULT_NETWATCH,
  DEFAULT_PROBE_TIMEOUT_MS,
  DEFAULT_FATAL_CLOSE_CODES,
  DEFAULT_FATAL_HTTP_STATUSES,
  DEFAULT_QUEUE_ENABLED,
  DEFAULT_QUEUE_MAX_MESSAGES,
  DEFAULT_QUEUE_MAX_BYTES,
  DEFAULT_QUEUE_TTL_MS,
  DEFAULT_HIGH_WATER_MARK_BYTES, DEFAULT_SEND_BUFFER_BYTES,
  DEFAULT_CLOSE_TIMEOUT_MS,
  DEFAULT_NETWATCH_INTERVAL_MS,
} from './defaults.js';

const ms = z.number().int().min(0);
const positiveMs = z.number().int().positive();
const closeCode = z.number().int().min(1000).max(4999);
const protocolToken = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const pem = z.union([z.string(), z.instanceof(Buffer)]);

const backoffSchema = z.strictObject({
  minDelayMs: ms.default(DEFAULT_BACKOFF_MIN_DELAY_MS),
  maxDelayMs: ms.default(DEFAULT_BACKOFF_MAX_DELAY_MS),
  factor: z.number().min(1).default(DEFAULT_BACKOFF_FACTOR),
  floorMs: ms.default(DEFAULT_BACKOFF_FLOOR_MS),
  concealFailures: z.number().int().min(0).default(DEFAULT_CONCEAL_FAILURES),
  minUptimeMs: ms.default(DEFAULT_MIN_UPTIME_MS),
  maxAttempts: z.union([z.number().int().positive(), z.literal(Infinity)]).default(DEFAULT_MAX_ATTEMPTS),
}).refine((b) => b.minDelayMs <= b.maxDelayMs, { message: 'minDelayMs must not exceed maxDelayMs', path: ['minDelayMs'] });

const queueSchema = z.strictObject({
  enabled: z.boolean().default(DEFAULT_QUEUE_ENABLED),
  maxMessages: z.number().int().min(0).default(DEFAULT_QUEUE_MAX_MESSAGES),
  maxBytes: z.number().int().min(0).default(DEFAULT_QUEUE_MAX_BYTES),
  ttlMs: positiveMs.default(DEFAULT_QUEUE_TTL_MS),
});

const schema = z.strictObject({
  url: z.string().refine((value) => {
    try {
      const u = new URL(value);
      return (u.protocol === 'ws:' || u.protocol === 'wss:') && u.hostname !== '' && u.hash === '';
    } catch {
      return false;
    }
  }, { message: 'expected a ws:// or wss:// URL without a fragment' }),
  protocols: z.array(z.string().regex(protocolToken, 'expected an HTTP token')).default([])
    .refine((list) => new Set(list).size === list.length, { message: 'duplicate subprotocol' }),
  headers: z.record(z.string(), z.string()).default({}),
  ca: z.union([pem, z.array(pem)]).optional(),
  rejectUnauthorized: z.boolean().default(DEFAULT_REJECT_UNAUTHORIZED),
  perMessageDeflate: z.boolean().default(DEFAULT_PER_MESSAGE_DEFLATE),
  maxPayload: z.number().int().positive().default(DEFAULT_UPSTREAM_MAX_PAYLOAD),
  lookup: z.custom<LookupFunction>((v) => typeof v === 'function', { message: 'expected a function like dns.lookup' }).optional(),
  connectGate: z.custom<ConnectGate>((v) => typeof v === 'function', { message: 'expected a function returning a promise (awaited before every connection attempt)' }).optional(),
  localAddress: z.string().refine((v) => isIP(v) !== 0, { message: 'expected an IP address' }).optional(),
  happyEyeballsDelayMs: ms.default(DEFAULT_HAPPY_EYEBALLS_DELAY_MS),
  dnsTimeoutMs: positiveMs.default(DEFAULT_DNS_TIMEOUT_MS),
  tcpTimeoutMs: positiveMs.default(DEFAULT_TCP_TIMEOUT_MS),
  tlsTimeoutMs: positiveMs.default(DEFAULT_TLS_TIMEOUT_MS),
  upgradeTimeoutMs: positiveMs.default(DEFAULT_UPGRADE_TIMEOUT_MS),
  closeTimeoutMs: positiveMs.default(DEFAULT_CLOSE_TIMEOUT_MS),
  // .default() (not .prefault()) so the shared option parser can see inside for "did you mean" hints.
  backoff: backoffSchema.default(() => backoffSchema.parse({})),
  pingIntervalMs: ms.default(DEFAULT_UPSTREAM_PING_INTERVAL_MS),
  pongTimeoutMs: positiveMs.default(DEFAULT_UPSTREAM_PONG_TIMEOUT_MS),
  liveness: z.enum(['ping', 'app']).default(DEFAULT_LIVENESS),
  netwatch: z.boolean().default(DEFAULT_NETWATCH),
  netwatchIntervalMs: positiveMs.default(DEFAULT_NETWATCH_INTERVAL_MS),
  probeTimeoutMs: positiveMs.default(DEFAULT_PROBE_TIMEOUT_MS),
  fatalCloseCodes: z.array(z.union([closeCode, z.tuple([closeCode, closeCode])]))
    .default(() => DEFAULT_FATAL_CLOSE_CODES.map((c) => (typeof c === 'number' ? c : [c[0], c[1]] as [number, number]))),
  fatalHttpStatuses: z.array(z.number().int().min(100).max(599)).default(() => [...DEFAULT_FATAL_HTTP_STATUSES]),
  highWaterMarkBytes: positiveMs.default(DEFAULT_HIGH_WATER_MARK_BYTES),
  sendBufferBytes: z.number().int().positive().default(DEFAULT_SEND_BUFFER_BYTES),
  queue: queueSchema.default(() => queueSchema.parse({})),
  logger: z.custom<Logger>((v) => typeof v === 'object' && v !== null && typeof (v as { info?: unknown }).info === 'function'
    && typeof (v as { child?: unknown }).child === 'function', { message: 'expected a pino logger' }).optional(),
  name: z.string().min(1).optional(),
});

/** The validated, defaulted, frozen options. */
export type ResolvedOptions = z.output<typeof schema>;

/** Validate once; throws `ERR_INVALID_OPTION` naming the key. */
export function resolveOptions(input: ResilientWebSocketOptions): Readonly<ResolvedOptions> {
  const parsed = parseOptions(schema, input, 'upstream');
  Object.freeze(parsed.backoff);
  Object.freeze(parsed.queue);
  Object.freeze(parsed.headers);
  Object.freeze(parsed.protocols);
  Object.freeze(parsed.fatalCloseCodes);
  Object.freeze(parsed.fatalHttpStatuses);
  return parsed;
}
