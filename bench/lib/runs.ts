/**
 * One measured run against a system of the relay lab: a throughput run (as
 * fast as the pacing mode allows) or a latency run (a fixed rate), each ending
 * with the loss ledger — every worker's count of the run's messages it got,
 * from sequence numbers, after the system has delivered what it still held.
 * Losses are measured this way for every system alike; for the hub the drops
 * its own stats count are read beside them.
 */
import { windowFor } from '../fixtures/message.js';
import type { PaceMode, StopResult } from '../fixtures/pacer.js';
import { round } from '../scenario.js';
import { cpuSeconds, rssBytes, sleep, type Fixture } from './procs.js';
import type { HubCounters, RelayLab, System, SystemName } from './relay-lab.js';

export interface RunOptions {
  mode: PaceMode;
  /** `window` mode: workers whose acks pace the run (default: all). */
  consumers?: number[];
  /** Workers whose ledger carries on from an earlier run (not reset, not in this run's losses). */
  keep?: number[];
  /** Also report each counted worker's figures (`workerReceived`, `workerLost`, and its rate or latencies). */
  perWorker?: boolean;
  /** Latency runs: percentiles of these groups of workers too (by name, worker indices), e.g. per hub. */
  latencyGroups?: Record<string, number[]>;
}

/** What the workers' ledgers say about one run, summed over the workers counted. */
export interface Losses {
  /** Messages of the run a worker never got (sent − received, after the system settled). */
  lost: number;
  /** Workers that lost anything. */
  lostWorkers: number;
  /** Sequence gaps seen (a drop-oldest policy makes gaps; a lost tail makes none). */
  gaps: number;
  outOfOrder: number;
  /** How long after the source stopped the last messages still arrived. */
  settleMs: number;
  /** Hub only: drops its stats counted during the run. */
  hubDropped?: number;
  /** Hub only: its full (mark-compact) garbage collections during the run. */
  hubMajorGcs?: number;
  /** `perWorker`: each counted worker's messages of the run received, and lost, in worker order. */
  workerReceived?: number[];
  workerLost?: number[];
}

export interface ThroughputRun<N extends string = SystemName> extends Losses {
  system: N;
  mode: PaceMode;
  workers: number;
  size: number;
  /** Messages delivered per second, summed over workers. */
  deliveredPerSec: number;
  /** Messages per second summed over the consumers (all workers unless one is kept aside). */
  consumersDeliveredPerSec: number;
  /** Slowest worker's share: its rate × workers / total (1 = perfectly even). */
  evenness: number | undefined;
  /** CPU seconds of the fan-out process per million delivered messages. */
  fanoutCpuPerM: number | undefined;
  /** CPU seconds of the source process per million delivered messages. */
  sourceCpuPerM: number | undefined;
  /** CPU seconds of all worker processes together per million delivered messages. */
  workersCpuPerM: number | undefined;
  /** ws workers: average bytes per socket read (large = the sender batches). */
  workerAvgReadBytes?: number;
  fanoutRssMiB: number;
  sent: number;
  measureMs: number;
  /** When the run was repeated: every repetition's msg/s (the fields above are the median's; losses are summed). */
  repetitions?: number[];
  /** When the run was repeated: every repetition's losses, in the same order. */
  lostByRepetition?: number[];
  /** Workers that received nothing during the measurement (the system stalled). */
  stalledWorkers?: number;
  /** `perWorker`: each counted worker's messages per second during the measurement. */
  perWorkerPerSec?: number[];
}

/** Latency percentiles of a set of samples. */
export interface LatencyPercentiles {
  samples: number;
  p50Us: number | undefined;
  p99Us: number | undefined;
  p999Us: number | undefined;
  maxUs: number | undefined;
}

export interface LatencyRun<N extends string = SystemName> extends Losses {
  system: N;
  mode: PaceMode;
  workers: number;
  size: number;
  rate: number;
  /** Messages the source sent in the run. */
  sent: number;
  /** Messages per second one worker actually received. */
  achievedRatePerWorker: number;
  /** The system could not carry the rate (a worker got under 95% of it): its latency is that of a saturated system. */
  overloaded: boolean;
  samples: number;
  p50Us: number | undefined;
  p99Us: number | undefined;
  p999Us: number | undefined;
  maxUs: number | undefined;
  skipped: number;
  /** `latencyGroups`: the same percentiles per group of workers. */
  groups?: Record<string, LatencyPercentiles>;
}

interface WorkerLedger {
  received: number;
  lastSeq: number;
  missing: number;
  gaps: number;
  outOfOrder: number;
}

/** Workers ack four times per window (window mode); free-running runs take no acks. */
export function ackEveryFor(size: number, mode: PaceMode): number {
  return mode === 'window' ? Math.max(1, Math.floor(windowFor(size) / 4)) : 0;
}

interface Begun {
  workers: Fixture[];
  counted: number[];
  hub0: HubCounters | undefined;
}

async function begin(lab: RelayLab, system: System<string>, n: number, size: number, opts: RunOptions, rate?: number): Promise<Begun> {
  const all = [...Array(n).keys()];
  const consumers = opts.consumers ?? all;
  const keep = new Set(opts.keep ?? []);
  const counted = all.filter((i) => !keep.has(i));
  const workers = lab.workers.slice(0, n);
  // Nothing is running: the next sequence number is the run's first.
  const firstSeq = (await system.source.call<number>('seq')) + 1;
  await Promise.all(counted.map((i) => workers[i]!.call('reset', { system: system.name, firstSeq, ackEvery: ackEveryFor(size, opts.mode) })));
  const hub0 = system.hub ? await lab.hubCounters() : undefined;
  await system.source.call('run', { size, mode: opts.mode, target: system.target, consumers, window: windowFor(size), ...(rate ? { rate } : {}) });
  return { workers, counted, hub0 };
}

/** After the source stopped: wait until every counted worker has the last message or nothing moves for a second; then the ledger. */
async function settle(lab: RelayLab, system: System<string>, b: Begun, stop: StopResult, perWorker = false): Promise<Losses> {
  const started = performance.now();
  let ledgers: WorkerLedger[] = [];
  let lastTotal = -1;
  let quietSince = performance.now();
  for (;;) {
    ledgers = await Promise.all(b.counted.map((i) => b.workers[i]!.call<WorkerLedger>('ledger')));
    if (ledgers.every((l) => l.lastSeq >= stop.lastSeq)) break;
    const total = ledgers.reduce((a, l) => a + l.received, 0);
    if (total !== lastTotal) quietSince = performance.now();
    lastTotal = total;
    if (performance.now() - quietSince > 1000 || performance.now() - started > 15_000) break;
    await sleep(50);
  }
  const settleMs = Math.round(performance.now() - started);
  const lost = ledgers.map((l) => Math.max(0, stop.sent - l.received));
  const hub1 = system.hub ? await lab.hubCounters() : undefined;
  return {
    ...(perWorker ? { workerReceived: ledgers.map((l) => l.received), workerLost: lost } : {}),
    lost: lost.reduce((a, b) => a + b, 0),
    lostWorkers: lost.filter((v) => v > 0).length,
    gaps: ledgers.reduce((a, l) => a + l.gaps, 0),
    outOfOrder: ledgers.reduce((a, l) => a + l.outOfOrder, 0),
    settleMs,
    ...(b.hub0 && hub1 ? { hubDropped: hub1.dropped - b.hub0.dropped, hubMajorGcs: hub1.majorGcs - b.hub0.majorGcs } : {}),
  };
}

async function counts(workers: Fixture[]): Promise<Array<{ messages: number; reads: number; readBytes: number }>> {
  return Promise.all(workers.map((w) => w.call<{ messages: number; reads: number; readBytes: number }>('count')));
}

/** As fast as the mode allows, measured after `warmMs` for `measureMs`, then the ledger. */
export async function throughput<N extends string>(lab: RelayLab, system: System<N>, n: number, size: number, warmMs: number, measureMs: number, opts: RunOptions): Promise<ThroughputRun<N>> {
  const b = await begin(lab, system, n, size, opts);
  const { workers, counted } = b;
  let stop: StopResult | undefined;
  try {
    await sleep(warmMs);
    const c0 = await counts(workers);
    const t0 = performance.now();
    const fanoutCpu = (): number => [system.fanoutPid, ...(system.moreFanoutPids ?? [])].reduce((a, pid) => a + cpuSeconds(pid), 0);
    const f0 = fanoutCpu();
    const s0 = cpuSeconds(system.source.pid);
    const w0 = workers.reduce((a, w) => a + cpuSeconds(w.pid), 0);
    await sleep(measureMs);
    const c1 = await counts(workers);
    const t1 = performance.now();
    const f1 = fanoutCpu();
    const s1 = cpuSeconds(system.source.pid);
    const w1 = workers.reduce((a, w) => a + cpuSeconds(w.pid), 0);
    const rss = rssBytes(system.fanoutPid);
    stop = await system.source.call<StopResult>('stop');
    const per = c1.map((v, i) => v.messages - c0[i]!.messages);
    const reads = c1.reduce((a, v, i) => a + v.reads - c0[i]!.reads, 0);
    const readBytes = c1.reduce((a, v, i) => a + v.readBytes - c0[i]!.readBytes, 0);
    const seconds = (t1 - t0) / 1000;
    const rates = counted.map((i) => per[i]!);
    const starved = counted.filter((i) => per[i] === 0);
    // Ack-paced, a worker that got nothing stalls the whole run: for the hub that is a failure of the thing under
    // test (this is how a lost-'drain' stall was found). Free-running it is a result (recorded), as for baselines.
    if (starved.length > 0 && system.hub && opts.mode === 'window') {
      throw new Error(`hub: worker(s) ${starved.join(', ')} received nothing for ${Math.round(t1 - t0)} ms while the source waited on their acks (sent ${stop.sent}); hub connections: ${JSON.stringify(await system.hub.call('connections'))}`);
    }
    const delivered = per.reduce((a, v) => a + v, 0);
    const consumerTotal = rates.reduce((a, v) => a + v, 0);
    const millions = delivered / 1e6;
    const losses = await settle(lab, system, b, stop, opts.perWorker);
    return {
      system: system.name,
      mode: opts.mode,
      workers: n,
      size,
      ...(opts.perWorker ? { perWorkerPerSec: rates.map((r) => Math.round(r / seconds)) } : {}),
      deliveredPerSec: Math.round(delivered / seconds),
      consumersDeliveredPerSec: Math.round(consumerTotal / seconds),
      evenness: consumerTotal > 0 ? round((Math.min(...rates) * rates.length) / consumerTotal, 3) : undefined,
      fanoutCpuPerM: millions > 0 ? round((f1 - f0) / millions, 3) : undefined,
      sourceCpuPerM: millions > 0 ? round((s1 - s0) / millions, 3) : undefined,
      workersCpuPerM: millions > 0 ? round((w1 - w0) / millions, 3) : undefined,
      ...(reads > 0 ? { workerAvgReadBytes: Math.round(readBytes / reads) } : {}),
      fanoutRssMiB: round(rss / 2 ** 20, 1)!,
      ...(starved.length > 0 ? { stalledWorkers: starved.length } : {}),
      sent: stop.sent,
      measureMs: Math.round(t1 - t0),
      ...losses,
    };
  } finally {
    if (!stop) await system.source.call('stop').catch(() => undefined);
    await sleep(100);
  }
}

/** The median repetition's rates; the losses of every repetition added up (a loss in any of them counts). */
export function combine<N extends string>(list: ThroughputRun<N>[]): ThroughputRun<N> {
  const sorted = [...list].sort((a, b) => a.deliveredPerSec - b.deliveredPerSec);
  const med = sorted[Math.floor(sorted.length / 2)]!;
  const sum = (f: (t: ThroughputRun<N>) => number | undefined): number => list.reduce((a, t) => a + (f(t) ?? 0), 0);
  return {
    ...med,
    lost: sum((t) => t.lost),
    lostWorkers: Math.max(...list.map((t) => t.lostWorkers)),
    gaps: sum((t) => t.gaps),
    outOfOrder: sum((t) => t.outOfOrder),
    ...(med.hubDropped !== undefined ? { hubDropped: sum((t) => t.hubDropped) } : {}),
    ...(med.hubMajorGcs !== undefined ? { hubMajorGcs: sum((t) => t.hubMajorGcs) } : {}),
    ...(list.length > 1 ? { repetitions: list.map((t) => t.deliveredPerSec), lostByRepetition: list.map((t) => t.lost) } : {}),
  };
}

/** A fixed rate: every message's latency from source to worker over `measureMs` after `warmMs`, then the ledger. */
export async function latency<N extends string>(lab: RelayLab, system: System<N>, n: number, size: number, rate: number, warmMs: number, measureMs: number, opts: RunOptions): Promise<LatencyRun<N>> {
  const b = await begin(lab, system, n, size, opts, rate);
  let stop: StopResult | undefined;
  try {
    await sleep(warmMs);
    await Promise.all(b.counted.map((i) => b.workers[i]!.call('record')));
    const t0 = performance.now();
    await sleep(measureMs);
    const reports = await Promise.all(b.counted.map((i) => b.workers[i]!.call<{ recorded: number; latencyMicros: number[] }>('latency', undefined, 60_000)));
    const seconds = (performance.now() - t0) / 1000;
    stop = await system.source.call<StopResult>('stop');
    const all: number[] = [];
    let recorded = 0;
    for (const r of reports) {
      recorded += r.recorded;
      for (const v of r.latencyMicros) all.push(v);
    }
    all.sort((a, c) => a - c);
    const perWorker = recorded / b.counted.length / seconds;
    const groups: Record<string, LatencyPercentiles> = {};
    for (const [name, members] of Object.entries(opts.latencyGroups ?? {})) {
      const list = members.flatMap((w) => {
        const k = b.counted.indexOf(w);
        return k < 0 ? [] : reports[k]!.latencyMicros;
      });
      groups[name] = percentiles(list.sort((a, c) => a - c));
    }
    const losses = await settle(lab, system, b, stop, opts.perWorker);
    return {
      system: system.name,
      mode: opts.mode,
      workers: n,
      size,
      rate,
      sent: stop.sent,
      achievedRatePerWorker: Math.round(perWorker),
      overloaded: perWorker < 0.95 * rate,
      ...percentiles(all),
      skipped: stop.skipped,
      ...(opts.latencyGroups ? { groups } : {}),
      ...losses,
    };
  } finally {
    if (!stop) await system.source.call('stop').catch(() => undefined);
    await sleep(100);
  }
}

function percentiles(sorted: readonly number[]): LatencyPercentiles {
  return { samples: sorted.length, p50Us: sortedPercentile(sorted, 50), p99Us: sortedPercentile(sorted, 99), p999Us: sortedPercentile(sorted, 99.9), maxUs: sorted[sorted.length - 1] };
}

/** Percentile of an already sorted array (nearest rank). */
function sortedPercentile(sorted: readonly number[], p: number): number | undefined {
  if (sorted.length === 0) return undefined;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank];
}
