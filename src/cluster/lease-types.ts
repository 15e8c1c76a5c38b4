/**
 * The public types of `Lease` (lease.ts) and the value of a lease key.
 */
import type { KvEntry } from './nats.js';
import type { ClusterStore } from './store.js';

/** `idle → campaigning ⇄ holding`, `→ closed` from anywhere. */
export type LeaseState = 'idle' | 'campaigning' | 'holding' | 'closed';

/** Why a holder stopped holding without fencing itself. */
export type LeaseLostReason = 'superseded' | 'released' | 'closed';

/** Who holds the upstream, as last seen in the KV (possibly this hub). */
export interface LeaseHolder {
  /** The holder's hub id. */
  holder: string;
  /** The holder's hub name. */
  hub: string;
  epoch: number;
  /** Wall-clock ms when the holder acquired. */
  startedAt: number;
  /** True when the holder is this Lease. */
  self: boolean;
}

export interface LeaseEvents {
  /** This hub now holds the upstream. `validUntil` is wall-clock ms. */
  acquired: [{ epoch: number; at: number; validUntil: number }];
  renewed: [{ epoch: number; revision: number; at: number; validUntil: number }];
  /** This hub stopped holding because someone else holds it, or it let go. */
  lost: [{ epoch: number; reason: LeaseLostReason; at: number }];
  /** This hub's lease ran out before a renew succeeded; it stopped holding at `validUntil` (wall-clock ms). */
  fenced: [{ epoch: number; at: number; validUntil: number; lateMs: number }];
  /** The holder seen in the KV changed (`undefined`: nobody, as far as known). */
  holder: [LeaseHolder | undefined];
}

export interface LeaseOptions {
  store: ClusterStore;
  upstream: string;
  /** This hub's id (unique per process; see `newHubId()`). */
  hubId: string;
  /** This hub's human name, shown to the others. */
  hubName: string;
  /** @default TTL / 3 */
  renewIntervalMs?: number;
  /** Stop holding this long before the key can expire. @default TTL / 5 */
  fenceMarginMs?: number;
  /** How often a non-holder tries `create`. @default TTL / 3 */
  campaignIntervalMs?: number;
}

/** Counters for the status page and metrics. */
export interface LeaseStats {
  acquisitions: number;
  renewals: number;
  renewFailures: number;
  fences: number;
  losses: number;
  campaignAttempts: number;
}

/** The key's value. `token` names one holding (kept across its renews); `attempt` names one acquiring write. */
export interface LeaseValue {
  holder: string;
  hub: string;
  token: string;
  attempt: string;
  startedAt: number;
  /** Set by renews only: an entry without it is an acquiring write. */
  epoch?: number;
}

/** The lease key's value, or `undefined` when it is not one (anything may be written to a KV key). */
export function parseLeaseValue(entry: KvEntry): LeaseValue | undefined {
  try {
    const v = entry.json<Partial<LeaseValue>>();
    if (typeof v.holder !== 'string' || typeof v.token !== 'string') return undefined;
    return { holder: v.holder, hub: typeof v.hub === 'string' ? v.hub : '', token: v.token, attempt: typeof v.attempt === 'string' ? v.attempt : '', startedAt: typeof v.startedAt === 'number' ? v.startedAt : 0, ...(typeof v.epoch === 'number' ? { epoch: v.epoch } : {}) };
  } catch {
    return undefined;
  }
}
