/**
 * The observed snapshot: `Hub.stats()` plus what only the observe side adds
 * (per-topic traffic, event-loop delay, readiness), taken in one synchronous
 * step. `/status`, `/healthz`, `/metrics`, `/events` and the status page all
 * read this one object, so they can never disagree (STYLE.md item 12) — and
 * it is redacted here, once, so none of them can show a secret (redact.ts).
 */
import type { Hub, HubStats, HubUpstreamStats } from '../hub/hub.js';
import type { TopicTraffic } from '../hub/route.js';
import { health, type Health, type ReadyWhen } from './health.js';
import type { EventLoopMonitor, EventLoopStats } from './loop.js';
import type { Redactor } from '../redact.js';

export type { TopicTraffic };

export interface ObservedUpstream extends HubUpstreamStats {
  /** Cumulative per-topic traffic (bounded: late topics are summed under `_other`). */
  traffic: TopicTraffic[];
}

export interface ObservedStats extends Omit<HubStats, 'upstreams'> {
  upstreams: ObservedUpstream[];
  eventLoop: EventLoopStats | undefined;
  health: Health;
}

export interface SnapshotSource {
  hub: Hub;
  readyWhen: ReadyWhen;
  loop: EventLoopMonitor | undefined;
  /** The secrets to keep out of the snapshot; none when absent. */
  redactor?: Redactor | undefined;
}

export function observe({ hub, readyWhen, loop, redactor }: SnapshotSource): ObservedStats {
  const stats = hub.stats();
  const upstreams = stats.upstreams.map((u): ObservedUpstream => ({ ...u, traffic: hub.upstreams.get(u.name)?.route.topicTraffic() ?? [] }));
  const observed: ObservedStats = { ...stats, upstreams, eventLoop: loop?.stats(), health: health(stats, readyWhen) };
  // URLs are already redacted by structure at their source; only secret values need the deep walk.
  return redactor && redactor.size > 0 ? redactor.value(observed) : observed;
}
