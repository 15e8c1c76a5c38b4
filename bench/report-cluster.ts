/**
 * The cluster part of bench/REPORT.md (bench/cluster.ts): the cluster of hubs
 * against one hub as ratios measured in one run, latency per hub, and the
 * ledger across hubs.
 */
import type { ArmAccount } from './lib/cluster-ledger.js';
import type { ClusterArm } from './lib/cluster-lab.js';
import type { LatencyRun, ThroughputRun } from './lib/runs.js';
import { fmt, x } from './report-relay.js';

type Rates = { meanPerSec?: number; minPerSec?: number; maxPerSec?: number };

export interface ClusterResult {
  plan: { hubs: number; workersPerHub: number; measureMs: number; latencyRate: number; latencyMs: number; repetitions: number };
  leaseTtlMs?: number;
  size: number;
  workers: number;
  runs: ThroughputRun<ClusterArm>[];
  latency: LatencyRun<ClusterArm>[];
  workersPerSec: Record<ClusterArm, Record<string, Rates | undefined>>;
  ratios: { deliveredPerSec?: number; perWorkerMean?: number; fanoutCpuPerM?: number; p50?: number; p99?: number; addedP50Us?: number; addedP99Us?: number; comparable: boolean };
  upstreamConnections: Record<ClusterArm, number>;
  lease: Array<{ hub?: string; role?: string; lease?: { acquisitions?: number; fences?: number } }>;
  ledger: Record<ClusterArm, ArmAccount>;
}

const rates = (r: Rates | undefined): string => (r?.meanPerSec === undefined ? '–' : `${fmt(r.meanPerSec)} (${fmt(r.minPerSec)}–${fmt(r.maxPerSec)})`);
const reasons = (d: Record<string, number>): string => Object.entries(d).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${fmt(n)}`).join(', ') || 'none';
const signed = (v: number | undefined): string => (v === undefined ? '–' : `${v >= 0 ? '+' : '−'}${fmt(Math.abs(v))} µs`);

/** The section's lines (its `##` heading included). */
export function clusterSection(c: ClusterResult): string[] {
  const single = c.runs.find((r) => r.system === 'single-hub');
  const cluster = c.runs.find((r) => r.system === 'cluster');
  const lSingle = c.latency.find((l) => l.system === 'single-hub');
  const lCluster = c.latency.find((l) => l.system === 'cluster');
  const followers = c.workers - c.plan.workersPerHub;
  const holderKey = Object.keys(c.workersPerSec.cluster).find((k) => k.includes('holder'));
  const lost = (arm: ClusterArm): string => `${fmt(c.ledger[arm].workersLost)} / ${fmt(c.ledger[arm].countedLost)}`;
  const lines = [
    `## Cluster: ${c.plan.hubs} hubs sharing one upstream through NATS, against one hub`,
    '',
    `One free-running upstream → the hub holding it → NATS (nats-server, JetStream) → ${c.plan.hubs - 1} more hubs; ${c.plan.workersPerHub} workers on each of the ${c.plan.hubs} hubs (${c.workers}), against the same ${c.workers} workers on one hub, in the same run: ${fmt(c.size)} B messages, ${fmt(c.plan.measureMs / 1000, 1)} s windows, median of ${c.plan.repetitions} repetition(s) with the arms taking turns. Every hub is a \`wshub serve\` daemon with a raw upstream and default options (lease TTL ${fmt(c.leaseTtlMs)} ms). All of it shares this machine's cores: the cluster's extra hops cost CPU here that separate machines would not share.`,
    '',
    '| | one hub | cluster | cluster / one hub |',
    '|---|---|---|---|',
    `| delivered msg/s, all ${c.workers} workers | ${fmt(single?.deliveredPerSec)} | ${fmt(cluster?.deliveredPerSec)} | ${x(c.ratios.deliveredPerSec)} |`,
    `| per worker, mean (min–max) | ${rates(c.workersPerSec['single-hub'].all)} | ${rates(c.workersPerSec.cluster.all)} | ${x(c.ratios.perWorkerMean)} |`,
    `| — the holder's ${c.plan.workersPerHub} workers | | ${rates(holderKey ? c.workersPerSec.cluster[holderKey] : undefined)} | |`,
    `| — the followers' ${followers} workers | | ${rates(c.workersPerSec.cluster.followers)} | |`,
    `| CPU s per million deliveries (every hub, and nats-server) | ${fmt(single?.fanoutCpuPerM, 2)} | ${fmt(cluster?.fanoutCpuPerM, 2)} | ${x(c.ratios.fanoutCpuPerM)} |`,
    `| latency p50 at ${fmt(c.plan.latencyRate)} msg/s | ${fmt(lSingle?.p50Us)} µs | ${fmt(lCluster?.p50Us)} µs | ${x(c.ratios.p50)} (${signed(c.ratios.addedP50Us)}) |`,
    `| latency p99 | ${fmt(lSingle?.p99Us)} µs | ${fmt(lCluster?.p99Us)} µs | ${x(c.ratios.p99)} (${signed(c.ratios.addedP99Us)}) |`,
    `| lost (workers' sequence numbers) / counted by the hubs | ${lost('single-hub')} | ${lost('cluster')} | |`,
    `| upstream connections | ${fmt(c.upstreamConnections['single-hub'])} | ${fmt(c.upstreamConnections.cluster)} | |`,
    '',
  ];
  lines.push(
    `The latency runs send ${fmt(c.plan.latencyRate)} msg/s to each of the ${fmt(c.workers)} workers (${fmt(c.plan.latencyRate * c.workers)} deliveries/s, about the load of the relay's 4 × 10,000 msg/s latency runs; 10,000 msg/s to 48 workers is more than one hub delivers on this machine at all). With ${fmt(c.workers)} worker processes on these cores, waking them is most of the latency: read the ratio, not the microseconds.`,
    '',
  );
  const followerDrops = c.ledger.cluster.hubs.filter((a) => a.role === 'follower').reduce((n, a) => n + Object.values(a.dropped).reduce((x, y) => x + y, 0), 0);
  if (followerDrops > 0) {
    lines.push(`The followers dropped ${fmt(followerDrops)} messages (counted, per hub below): the holder reads the upstream at the pace of its own workers, and a follower cannot slow it (one slow hub must not slow the others, docs/cluster.md), so a follower that falls behind a free-running source sheds load by its sessions' slow-consumer policy (\`drop-oldest\` by default).`, '');
  }
  if (!c.ratios.comparable) lines.push(`A latency run could not carry ${fmt(c.plan.latencyRate)} msg/s per worker (overloaded): its percentiles are those of a saturated system.`, '');
  if (lCluster?.groups) {
    lines.push('Latency per hub of the cluster (source send stamp → worker, one machine clock):', '', '| workers | p50 µs | p99 µs | p99.9 µs |', '|---|---|---|---|');
    for (const [name, g] of Object.entries(lCluster.groups)) lines.push(`| ${name === 'followers' ? `all ${followers} on followers` : name} | ${fmt(g.p50Us)} | ${fmt(g.p99Us)} | ${fmt(g.p999Us)} |`);
    lines.push('');
  }
  lines.push(
    '**Ledger** (every run of the arm): each hub\'s `/status`, hop by hop. *In* is what the hub\'s route took in (from the upstream, or from NATS); *offered* is what it gave its workers\' connections; every message a worker missed is a drop some hub counted with a reason, or the scenario fails.',
    '',
    '| hub | role | in | to / from NATS | offered | handed | dropped (reason) | workers got | workers lost | unaccounted |',
    '|---|---|---|---|---|---|---|---|---|---|',
  );
  for (const arm of ['single-hub', 'cluster'] as const) {
    for (const a of c.ledger[arm].hubs) {
      const nats = a.published !== undefined ? `published ${fmt(a.published)}` : a.fromNats ? `received ${fmt(a.fromNats.received)}` : '–';
      const drops = { ...a.dropped, ...Object.fromEntries(Object.entries(a.upstreamSideDropped).map(([k, v]) => [`${k} × ${a.workers}`, v])) };
      lines.push(`| ${a.hub} | ${a.role} | ${fmt(a.hubIn)} | ${nats} | ${fmt(a.offered)} | ${fmt(a.handed)} | ${reasons(drops)} | ${fmt(a.workersGot)} | ${fmt(a.workersLost)} | ${fmt(a.unaccounted)} |`);
    }
  }
  const leases = c.lease.map((l) => `${l.hub ?? '?'} ${l.role ?? '?'} (acquisitions ${fmt(l.lease?.acquisitions)}, fences ${fmt(l.lease?.fences)})`).join('; ');
  lines.push('', `Leases at the end: ${leases}.`, '');
  return lines;
}
