/**
 * The per-upstream part of the hub's one stats snapshot, and its ledger:
 * every upstream message is accounted for (`received` = `routed` +
 * `consumed` + every `unrouted` reason), and every message sent upstream too
 * (`accepted` = `sent` + `dropped` + `held`, from the client).
 */
import type { ErrorCode } from '../errors.js';
import type { StateChange, UpstreamStats } from '../upstream/types.js';
import type { PacerStats } from './pacer.js';
import type { PoolStats } from './pool.js';
import type { RouteCounters } from './route.js';
import type { HubUpstream } from './upstream.js';

export interface HubUpstreamStats {
  name: string;
  adapter: string;
  required: boolean;
  onUpstreamLoss: 'hold' | 'close';
  client: UpstreamStats;
  sessions: number;
  /** Upstream messages handed to the route (the client's `messagesIn`, counted once there). */
  messagesIn: number;
  bytesIn: number;
  /** Copies delivered to sessions. */
  deliveries: number;
  /** Upstream messages no session wanted (all reasons). */
  unrouted: number;
  sessionErrors: Record<string, number>;
  topics: Array<{ topic: string; subscribers: number; groups: number }>;
  adapterStats: Record<string, unknown>;
  history: StateChange[];
  gapStart: number | undefined;
  /** Reading paced by the sessions: paused now, how often, for how long. */
  pacing: PacerStats;
  /** Endpoints, connections (shards), failovers, failbacks, paced frames. */
  pool: PoolStats;
  ledger: UpstreamLedger;
}

/** Both directions of one upstream, each side summing to its total. */
export interface UpstreamLedger {
  /** Upstream → hub: `received` = `routed` + `consumed` + Σ `unrouted`. */
  in: { received: number; routed: number; consumed: number; unrouted: Partial<Record<ErrorCode, number>>; replies: number; deliveries: number };
  /** Hub → upstream: `accepted` = `sent` + `dropped` + `held`; `dropped` by reason in `client.dropped`. */
  out: { accepted: number; sent: number; dropped: number; held: number; heldBytes: number; droppedByReason?: Record<string, number> };
}

export function upstreamStats(up: HubUpstream): HubUpstreamStats {
  const client = up.stats();
  const c: RouteCounters = up.route.counters;
  const unrouted = Object.values(c.unrouted).reduce((a, b) => a + b, 0);
  return {
    name: up.name,
    adapter: up.config.adapter,
    required: up.config.required,
    onUpstreamLoss: up.config.onUpstreamLoss,
    client,
    sessions: up.route.sessions.size,
    messagesIn: client.messagesIn,
    bytesIn: client.bytesIn,
    deliveries: c.deliveries,
    unrouted,
    sessionErrors: { ...c.sessionErrors },
    topics: up.route.topicStats(),
    adapterStats: up.adapter.stats?.() ?? {},
    history: [...up.history],
    gapStart: up.gapStart,
    pacing: up.pacerStats(),
    pool: up.poolStats(),
    ledger: {
      in: { received: c.received, routed: c.routed, consumed: c.consumed, unrouted: { ...c.unrouted }, replies: c.replies, deliveries: c.deliveries },
      out: client.sends ?? { accepted: 0, sent: 0, dropped: 0, held: 0, heldBytes: 0 },
    },
  };
}
