/**
 * Cluster (issue 14): one upstream → the hub holding it → NATS → 2 more hubs,
 * 16 workers on each of the 3 hubs (48; the holder carries its 16 like the
 * others, so every hub serves the same load), against the same 48 workers on
 * a single hub, in the same run, with the same message size and run lengths.
 * Every hub is a `wshub serve -c <file>` daemon with a raw upstream and every
 * option at its default (the cluster's lease TTL too); nats-server runs with
 * JetStream in a temp dir (lib/cluster-lab.ts).
 *
 * The source is the relay bench's free-running one: it writes as fast as the
 * holder's (or the single hub's) TCP connection takes the bytes and never
 * waits for acknowledgements. Measured per arm: messages/s delivered in total
 * and per worker (per hub in the cluster), CPU seconds per million deliveries
 * of every hub (and nats-server) together; at a fixed rate, latency from the
 * source's send stamp to the worker (both on this machine's clock), for all
 * workers and per hub. The cluster's figures are given as ratios to the
 * single hub's.
 *
 * At the end every message is accounted for, hop by hop, from each hub's
 * `/status` (lib/cluster-ledger.ts): a message lost without a count anywhere
 * fails the scenario. Nothing about speed is asserted.
 */
import { accountArm, type ArmAccount, type ArmRun } from './lib/cluster-ledger.js';
import { ClusterLab, type ClusterArm, type HubStatus } from './lib/cluster-lab.js';
import { combine, latency, throughput, type LatencyRun, type ThroughputRun } from './lib/runs.js';
import { round, type BenchResult, type BenchScenario } from './scenario.js';

/** Message size of every run, both arms. */
export const CLUSTER_SIZE = 1024;

interface Plan {
  hubs: number;
  workersPerHub: number;
  /** One untimed free-running run per arm before the measured ones. */
  warmUpMs: number;
  warmMs: number;
  measureMs: number;
  /**
   * Fixed rate of the latency runs, messages/s (every worker gets each): 1,000 × 48 workers is about the
   * deliveries of the relay's 4 × 10,000 runs; 10,000 × 48 is more than one hub delivers here at all.
   */
  latencyRate: number;
  latencyWarmMs: number;
  latencyMs: number;
  /** Throughput runs repeated this often, arms taking turns; the median counts. */
  repetitions: number;
}

const FULL: Plan = { hubs: 3, workersPerHub: 16, warmUpMs: 3000, warmMs: 500, measureMs: 3000, latencyRate: 1000, latencyWarmMs: 500, latencyMs: 3000, repetitions: 3 };
const QUICK: Plan = { hubs: 3, workersPerHub: 16, warmUpMs: 800, warmMs: 300, measureMs: 1000, latencyRate: 1000, latencyWarmMs: 300, latencyMs: 1000, repetitions: 1 };

const ARMS: readonly ClusterArm[] = ['single-hub', 'cluster'];

const ratio = (a: number | undefined, b: number | undefined): number | undefined => (a === undefined || b === undefined || b === 0 ? undefined : round(a / b, 2));
const signedUs = (v: number | undefined): string => (v === undefined ? '?' : `${v >= 0 ? '+' : '−'}${Math.abs(v)} µs`);
const mean = (v: readonly number[]): number | undefined => (v.length === 0 ? undefined : Math.round(v.reduce((a, b) => a + b, 0) / v.length));

/** Per-worker rates of a run, for all workers and per group of them. */
function perWorker(run: ThroughputRun<ClusterArm>, groups: Record<string, number[]>): Record<string, { meanPerSec?: number; minPerSec?: number; maxPerSec?: number }> {
  const rates = run.perWorkerPerSec ?? [];
  const of = (members: readonly number[]): { meanPerSec?: number; minPerSec?: number; maxPerSec?: number } => {
    const v = members.map((w) => rates[w]).filter((r): r is number => r !== undefined);
    return v.length === 0 ? {} : { meanPerSec: mean(v), minPerSec: Math.min(...v), maxPerSec: Math.max(...v) };
  };
  return { all: of(rates.map((_, i) => i)), ...Object.fromEntries(Object.entries(groups).map(([k, m]) => [k, of(m)])) };
}

function toArmRun(r: ThroughputRun<ClusterArm> | LatencyRun<ClusterArm>): ArmRun {
  if (!r.workerReceived || !r.workerLost) throw new Error(`${r.system}: a run without per-worker figures cannot be accounted for`);
  return { sent: r.sent, outOfOrder: r.outOfOrder, workerReceived: r.workerReceived, workerLost: r.workerLost };
}

const dropsOf = (s: HubStatus): number => Object.values(s.dropped).reduce((a, b) => a + b, 0);

const scenario: BenchScenario = {
  name: 'cluster',
  description: 'one upstream → holder hub → NATS → 2 more hubs, 16 workers on each (48), vs the same 48 workers on one hub: msg/s total and per worker, latency p50/p99 at a fixed rate, every message accounted for across hubs',
  async run({ quick }): Promise<BenchResult> {
    const plan = quick ? QUICK : FULL;
    const lab = new ClusterLab({ hubs: plan.hubs, perHub: plan.workersPerHub });
    const t0 = performance.now();
    const log = (s: string): void => console.error(`  cluster [${((performance.now() - t0) / 1000).toFixed(1)} s]: ${s}`);
    const n = lab.workers;
    const groups: Record<string, number[]> = Object.fromEntries(Array.from({ length: plan.hubs }, (_, h) => [`hub-${h}${h === 0 ? ' (holder)' : ''}`, lab.workersOf(h)]));
    const followers = Array.from({ length: plan.hubs - 1 }, (_, h) => lab.workersOf(h + 1)).flat();
    const rawRuns: Record<ClusterArm, ArmRun[]> = { 'single-hub': [], cluster: [] };
    const tries: Record<ClusterArm, ThroughputRun<ClusterArm>[]> = { 'single-hub': [], cluster: [] };
    const lat: LatencyRun<ClusterArm>[] = [];
    const accounts = {} as Record<ClusterArm, ArmAccount>;
    const finalStatus = {} as Record<ClusterArm, HubStatus[]>;
    const armDrops = async (arm: ClusterArm): Promise<number> => (await Promise.all(lab.hubsOf(arm).map((h) => lab.status(h)))).reduce((a, s) => a + dropsOf(s), 0);
    try {
      await lab.start(log);
      // Untimed first (its messages still go into the ledger): 48 fresh worker processes, the hubs and NATS
      // run their code cold, and a first measured run would be several times slower than the next ones.
      for (const arm of ARMS) {
        const r = await throughput(lab.relay, lab.system(arm), n, CLUSTER_SIZE, 0, plan.warmUpMs, { mode: 'free', perWorker: true });
        rawRuns[arm].push(toArmRun(r));
        log(`warm-up ${arm}: ${r.deliveredPerSec} msg/s`);
      }
      // Arms take turns in a rotating order and the median counts: a slowdown of the whole machine hits both alike.
      for (let rep = 0; rep < plan.repetitions; rep++) {
        for (let k = 0; k < ARMS.length; k++) {
          const arm = ARMS[(k + rep) % ARMS.length]!;
          const d0 = await armDrops(arm);
          const r = await throughput(lab.relay, lab.system(arm), n, CLUSTER_SIZE, plan.warmMs, plan.measureMs, { mode: 'free', perWorker: true });
          r.hubDropped = (await armDrops(arm)) - d0;
          tries[arm].push(r);
          rawRuns[arm].push(toArmRun(r));
          log(`free ${arm} N=${n} ${CLUSTER_SIZE} B: ${r.deliveredPerSec} msg/s, fan-out ${r.fanoutCpuPerM ?? '?'} CPU s/M, lost ${r.lost} (hubs dropped ${r.hubDropped})`);
        }
      }
      for (const arm of ARMS) {
        const d0 = await armDrops(arm);
        const l = await latency(lab.relay, lab.system(arm), n, CLUSTER_SIZE, plan.latencyRate, plan.latencyWarmMs, plan.latencyMs, { mode: 'free', perWorker: true, ...(arm === 'cluster' ? { latencyGroups: { ...groups, followers } } : {}) });
        l.hubDropped = (await armDrops(arm)) - d0;
        lat.push(l);
        rawRuns[arm].push(toArmRun(l));
        log(`${arm} latency @${plan.latencyRate}/s: p50 ${l.p50Us} µs p99 ${l.p99Us} µs, lost ${l.lost}${l.overloaded ? ` (overloaded: ${l.achievedRatePerWorker}/s per worker)` : ''}`);
      }
      for (const arm of ARMS) {
        const hubs = lab.hubsOf(arm);
        finalStatus[arm] = await Promise.all(hubs.map((h) => lab.status(h)));
        const workersOf = arm === 'single-hub' ? [Array.from({ length: n }, (_, i) => i)] : hubs.map((_, h) => lab.workersOf(h));
        accounts[arm] = accountArm(hubs.map((h) => h.name), finalStatus[arm], workersOf, rawRuns[arm]);
      }
      const upstreamConnections = await Promise.all(ARMS.map((arm) => lab.relay.wsSource.call<number>('clients', `/${lab.system(arm).target!}`)));
      return summarize(plan, n, groups, tries, lat, accounts, finalStatus, upstreamConnections, log);
    } finally {
      await lab.destroy();
    }
  },
};

function summarize(
  plan: Plan, n: number, groups: Record<string, number[]>, tries: Record<ClusterArm, ThroughputRun<ClusterArm>[]>, lat: LatencyRun<ClusterArm>[],
  accounts: Record<ClusterArm, ArmAccount>, finalStatus: Record<ClusterArm, HubStatus[]>, upstreamConnections: number[], log: (s: string) => void,
): BenchResult {
  const runs = ARMS.map((arm) => combine(tries[arm]));
  const [single, cluster] = runs as [ThroughputRun<ClusterArm>, ThroughputRun<ClusterArm>];
  const [lSingle, lCluster] = ARMS.map((arm) => lat.find((l) => l.system === arm)) as [LatencyRun<ClusterArm> | undefined, LatencyRun<ClusterArm> | undefined];
  const diff = (a?: number, b?: number): number | undefined => (a === undefined || b === undefined ? undefined : a - b);
  const workersPerSec = { 'single-hub': perWorker(single, {}), cluster: perWorker(cluster, { ...groups, followers: Array.from({ length: n - plan.workersPerHub }, (_, i) => plan.workersPerHub + i) }) };
  const ratios = {
    deliveredPerSec: ratio(cluster.deliveredPerSec, single.deliveredPerSec),
    perWorkerMean: ratio(workersPerSec.cluster.all?.meanPerSec, workersPerSec['single-hub'].all?.meanPerSec),
    fanoutCpuPerM: ratio(cluster.fanoutCpuPerM, single.fanoutCpuPerM),
    p50: ratio(lCluster?.p50Us, lSingle?.p50Us),
    p99: ratio(lCluster?.p99Us, lSingle?.p99Us),
    addedP50Us: diff(lCluster?.p50Us, lSingle?.p50Us),
    addedP99Us: diff(lCluster?.p99Us, lSingle?.p99Us),
    comparable: lSingle !== undefined && lCluster !== undefined && !lSingle.overloaded && !lCluster.overloaded,
  };
  const problems = ARMS.flatMap((arm) => accounts[arm].problems.map((p) => `${arm}: ${p}`));
  if (upstreamConnections[1] !== 1) problems.push(`cluster: the source saw ${upstreamConnections[1]} upstream connections at the end, expected 1 (the holder's)`);
  const lease = finalStatus.cluster.map((s) => ({ hub: s.cluster?.hubName, role: s.cluster?.upstreams[0]?.role, holder: s.cluster?.upstreams[0]?.holder?.hub, epoch: s.cluster?.upstreams[0]?.holder?.epoch, lease: s.cluster?.upstreams[0]?.lease }));
  for (const arm of ARMS) {
    log(`${arm} ledger: workers lost ${accounts[arm].workersLost}, counted ${accounts[arm].countedLost} ${JSON.stringify(accounts[arm].droppedByReason)}`);
    for (const [h, s] of finalStatus[arm].entries()) {
      const pacing = s.upstreams[0]?.pacing;
      const bus = s.cluster?.upstreams[0]?.bus;
      log(`  ${accounts[arm].hubs[h]?.hub ?? h} pacing: ${pacing?.pauses ?? '?'} pauses, ${pacing?.pausedMs ?? '?'} ms paused, ${pacing?.slowSessions ?? '?'} found slow${bus ? `; pace signals sent ${bus.paceSent ?? 0}, received ${bus.paceReceived ?? 0}` : ''}`);
    }
    for (const a of accounts[arm].hubs) log(`  ${a.hub} (${a.role}): in ${a.hubIn}${a.published === undefined ? '' : `, published ${a.published}`}${a.fromNats ? `, from NATS ${a.fromNats.received}` : ''}; offered ${a.offered}, handed ${a.handed}, queued ${a.queued}, dropped ${JSON.stringify(a.dropped)}; workers got ${a.workersGot}, lost ${a.workersLost}, unaccounted ${a.unaccounted}`);
  }
  for (const p of problems) log(`UNACCOUNTED: ${p}`);
  const ledger = Object.fromEntries(ARMS.map((arm) => [arm, accounts[arm]]));
  if (problems.length > 0) throw new Error(`cluster: ${problems.length} problem(s) in the ledger: ${problems.join('; ')}`);
  const pw = workersPerSec.cluster;
  return {
    summary: `${n} workers (${plan.hubs} hubs × ${plan.workersPerHub}) vs one hub, ${CLUSTER_SIZE} B free-running: ×${ratios.deliveredPerSec ?? '?'} msg/s (${cluster.deliveredPerSec} vs ${single.deliveredPerSec}; per worker: holder's ${pw['hub-0 (holder)']?.meanPerSec ?? '?'}, followers' ${pw.followers?.meanPerSec ?? '?'} vs ${workersPerSec['single-hub'].all?.meanPerSec ?? '?'}); latency @${plan.latencyRate}/s p50 ×${ratios.p50 ?? '?'} (${signedUs(ratios.addedP50Us)}), p99 ×${ratios.p99 ?? '?'}; lost: cluster ${accounts.cluster.workersLost} ${JSON.stringify(accounts.cluster.droppedByReason)}, one hub ${accounts['single-hub'].workersLost} — every one counted by a hub`,
    plan,
    size: CLUSTER_SIZE,
    workers: n,
    runs,
    repetitions: tries,
    latency: lat,
    workersPerSec,
    ratios,
    upstreamConnections: Object.fromEntries(ARMS.map((arm, i) => [arm, upstreamConnections[i]])),
    // Read back from the hubs: the config leaves it at its default.
    leaseTtlMs: finalStatus.cluster[0]?.cluster?.leaseTtlMs,
    lease,
    ledger,
  };
}

export default scenario;
