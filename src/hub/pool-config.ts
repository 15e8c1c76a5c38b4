/**
 * The config keys of an upstream pool (../shared/DESIGN.md, "Upstream pools"):
 *
 * ```yaml
 * upstreams:
 *   feed:
 *     urls: [wss://a.example/ws, wss://b.example/ws]   # instead of url: order is preference
 *     failoverAfter: 2              # consecutive failures of one endpoint before the next is tried
 *     failbackProbeMs: 30000        # how often a more preferred endpoint is probed while on a fallback
 *     maxTopicsPerConnection: 200   # json: open as many connections as the topics need
 *     controlRate: { messages: 5, perMs: 1000 }      # per connection: every frame the hub sends
 *     connectRate: { connections: 10, perMs: 60000 } # per upstream: new connections opened
 * ```
 *
 * `url: X` stays valid and means `urls: [X]`.
 */
import { WshubError } from '../errors.js';
import { z } from '../zod.js';

/** Consecutive failures of the current endpoint before the next one is dialled. @default 2 */
export const DEFAULT_FAILOVER_AFTER = 2;
/** How often a more preferred endpoint is probed while the pool runs on a fallback. @default 30000 */
export const DEFAULT_FAILBACK_PROBE_MS = 30_000;
/** Topics one subscribe frame carries at most when waiting subscribes are combined. @default 50 */
export const DEFAULT_MAX_TOPICS_PER_FRAME = 50;
/** An extra connection that carries no topic for this long is closed. @default 30000 */
export const DEFAULT_IDLE_SHARD_MS = 30_000;
/** How long a failback may keep both endpoints open while the new one subscribes. @default 10000 */
export const DEFAULT_FAILBACK_OVERLAP_MS = 10_000;

const controlRate = z.strictObject({ messages: z.number().int().positive(), perMs: z.number().int().positive() });
const connectRate = z.strictObject({ connections: z.number().int().positive(), perMs: z.number().int().positive() });

/** Keys of an upstream entry that configure its pool (validated with the hub's other keys). */
export const poolKeys = {
  urls: z.array(z.string().min(1)).min(1).optional(),
  failoverAfter: z.number().int().positive().optional(),
  failbackProbeMs: z.number().int().positive().optional(),
  maxTopicsPerConnection: z.number().int().positive().optional(),
  maxTopicsPerFrame: z.number().int().positive().optional(),
  idleShardMs: z.number().int().positive().optional(),
  controlRate: controlRate.optional(),
  connectRate: connectRate.optional(),
  /** json: path of a per-topic sequence number in messages. */
  sequenceField: z.string().min(1).optional(),
  /** jsonrpc: methods resent on another connection when theirs dies mid-request. */
  idempotentMethods: z.array(z.string().min(1)).optional(),
};

export interface PoolConfig {
  /** In order of preference. */
  urls: string[];
  failoverAfter: number;
  failbackProbeMs: number;
  /** Undefined: one connection carries every topic. */
  maxTopicsPerConnection: number | undefined;
  maxTopicsPerFrame: number;
  idleShardMs: number;
  failbackOverlapMs: number;
  controlRate: { messages: number; perMs: number } | undefined;
  connectRate: { connections: number; perMs: number } | undefined;
}

type PoolEntry = { [K in keyof typeof poolKeys]?: z.output<(typeof poolKeys)[K]> } & { adapter: string };

/** The pool of an upstream entry; `client` is its ResilientWebSocket options (its `url` is set to the first endpoint). */
export function resolvePool(entry: PoolEntry, client: Record<string, unknown>, where: string): PoolConfig {
  // A url of the wrong type is kept: the client's own validation names it with its value.
  const single = client.url === undefined ? undefined : (client.url as string);
  if (entry.urls && single !== undefined) {
    throw new WshubError('ERR_INVALID_OPTION', `${where}: give url or urls, not both (url: X means urls: [X])`);
  }
  const urls = entry.urls ?? (single === undefined ? [] : [single]);
  if (urls.length === 0) throw new WshubError('ERR_INVALID_OPTION', `${where}.url: required (or urls: a list in order of preference)`);
  if (entry.maxTopicsPerConnection !== undefined && entry.adapter !== 'json') {
    throw new WshubError('ERR_INVALID_OPTION', `${where}.maxTopicsPerConnection: only the json adapter shards topics over connections`);
  }
  client.url = urls[0];
  return {
    urls,
    failoverAfter: entry.failoverAfter ?? DEFAULT_FAILOVER_AFTER,
    failbackProbeMs: entry.failbackProbeMs ?? DEFAULT_FAILBACK_PROBE_MS,
    maxTopicsPerConnection: entry.maxTopicsPerConnection,
    maxTopicsPerFrame: entry.maxTopicsPerFrame ?? DEFAULT_MAX_TOPICS_PER_FRAME,
    idleShardMs: entry.idleShardMs ?? DEFAULT_IDLE_SHARD_MS,
    failbackOverlapMs: DEFAULT_FAILBACK_OVERLAP_MS,
    controlRate: entry.controlRate,
    connectRate: entry.connectRate,
  };
}
