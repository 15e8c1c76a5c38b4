/**
 * The relay part of bench/REPORT.md: the hub's targets (issue 11) as ratios
 * measured in one run, the free-running and ack-paced tables with every
 * system's losses, latency against the byte pipe, the slow-consumer and flood
 * scenarios. Charts are vega-lite specs rendered by report.ts.
 */
import type { TopLevelSpec } from 'vega-lite';
import type { PaceMode } from './fixtures/pacer.js';
import type { SystemName } from './lib/relay-lab.js';
import type { LatencyRun, ThroughputRun } from './lib/runs.js';
import type { LatencyPair } from './relay.js';

export interface RelayResult {
  latencyRate: number;
  runs: ThroughputRun[];
  latency: LatencyRun[];
  added: Array<{ workers: number; p50Us?: number; p99Ratio?: number; p999Ratio?: number; comparable: boolean }>;
  /** Hub and byte-pipe latency runs back to back, in alternating order (relay.ts `latencyPairs`). */
  latencyPairs?: LatencyPair[];
  targets: {
    /** `ratio.free` is the median of `rounds` (each round's ratio) when the cell had rounds (relay.ts `targetRounds`). */
    /** Read with the source on a CPU of its own; `sharedCpus`: the same cell with the source beside the systems (relay.ts TARGETS). */
    hubVsCeiling16x1k: {
      ratio: { free?: number; window?: number };
      rounds?: Array<number | undefined>;
      target: number;
      fedVsCeiling?: number;
      hubVsFed?: number;
      /** With the source apart `ratio` is against the faster of the ceiling and fed in each round; this, against the ceiling alone. */
      vsCeilingAlone?: number;
      sharedCpus?: { ratio?: number; rounds?: Array<number | undefined>; fedVsCeiling?: number; hubVsFed?: number };
    };
    hubVsDirect1x1k: { ratio: { free?: number; window?: number }; rounds?: Array<number | undefined>; target: number };
    hubVsDirect1x64k: { ratio: { free?: number; window?: number }; rounds?: Array<number | undefined>; target: number; pipeVsDirect?: number; fedVsDirect?: number; hubVsPipe?: number; hubVsFed?: number; hubMajorGcs?: number };
    zeroDrops: { cells: Array<{ workers: number; size: number; lost: number; hubDropped: number }>; met?: boolean };
    /** From the median of `pairs` alternating hub/pipe runs when there were any (`p99Ratios`: each pair's). */
    addedLatency: { workers?: number; p50Us?: number; p99Ratio?: number; p99Ratios?: Array<number | undefined>; pairs?: number; targetP50Us: number; targetP99Ratio: number };
    hubCpuPerM16x1k?: number;
  };
  drops: Record<string, { free: number; window: number; hubDropped?: number }>;
}

export interface SlowResult {
  workers: number;
  healthy: { tp: ThroughputRun; lat: LatencyRun };
  /** The all-healthy run's msg/s of the workers that stay healthy (absent in results from before it was measured). */
  othersHealthyPerSec?: number;
  withStalled: { tp: ThroughputRun; lat: LatencyRun };
  ratios: { throughput: number; p99?: number; hubCpuPerDelivery?: number };
  healthyLost: number;
  stalledLost: number;
  hubDropped: number;
  accounted: boolean;
}

export interface FloodResult {
  floodMs: number;
  rss: { baselineMiB: number; peakMiB: number; atFloodEndMiB: number; growthMiB: number };
  flooder: { sent: number; perSec: number };
  upstream: { received: number; missing: number; outOfOrder: number; connections: number; drainMs: number; inOrder: boolean };
  relay: { without: ThroughputRun; during: ThroughputRun; ratio?: number };
}

export const fmt = (v: number | undefined, digits = 0): string => (v === undefined || !Number.isFinite(v) ? '–' : v.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }));
export const x = (v: number | undefined): string => (v === undefined ? '–' : `×${fmt(v, 2)}`);
export const met = (ok: boolean | undefined): string => (ok === undefined ? 'not measured' : ok ? '**met**' : '**not met**');
const label = (s: SystemName): string => ({ hub: 'wshub', ceiling: 'pre-framed', fed: 'pre-framed, fed', pipe: 'byte pipe', ws: 'direct ws', 'socket.io': 'Socket.IO', nats: 'NATS' })[s];
const ORDER: SystemName[] = ['hub', 'ceiling', 'fed', 'pipe', 'ws', 'socket.io', 'nats'];
const COLORS = ['#d62728', '#7f7f7f', '#c7c7c7', '#bcbd22', '#1f77b4', '#9467bd', '#2ca02c'];
const stalled = (r: { stalledWorkers?: number } | undefined): string => (r?.stalledWorkers ? ` (${r.stalledWorkers} got nothing)` : '');
const size = (b: number): string => (b >= 1024 ? `${b / 1024} KiB` : `${b} B`);

function find(runs: readonly ThroughputRun[], mode: PaceMode, s: SystemName, n: number, sz: number): ThroughputRun | undefined {
  return runs.find((r) => r.mode === mode && r.system === s && r.workers === n && r.size === sz);
}

const ratioOf = (a?: number, b?: number): number | undefined => (a === undefined || b === undefined || b === 0 ? undefined : a / b);
/** Lost messages of a run: the workers' count, and for the hub its own drop counter beside it. */
const lostCell = (r: ThroughputRun | LatencyRun | undefined): string => (r === undefined ? '–' : r.hubDropped !== undefined && r.hubDropped !== r.lost ? `${fmt(r.lost)} (hub: ${fmt(r.hubDropped)})` : fmt(r.lost));

export function relayChart(runs: ThroughputRun[]): TopLevelSpec {
  const data = runs.filter((r) => r.mode === 'free').map((r) => ({ system: label(r.system), workers: r.workers, size: size(r.size), sizeOrder: r.size, msgPerSec: r.deliveredPerSec }));
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: 'Delivered messages/s, free-running source → N workers (higher is better)', subtitle: 'pre-framed = the ceiling for any WebSocket relay; byte pipe = the hop alone, one upstream connection per worker' },
    data: { values: data },
    facet: { column: { field: 'size', type: 'nominal', title: null, sort: { field: 'sizeOrder' } } },
    resolve: { scale: { y: 'independent' } },
    spec: {
      width: 260,
      height: 260,
      mark: 'bar',
      encoding: {
        x: { field: 'workers', type: 'ordinal', title: 'workers (N)' },
        xOffset: { field: 'system', sort: ORDER.map(label) },
        y: { field: 'msgPerSec', type: 'quantitative', title: 'messages/s delivered (total)', axis: { format: '~s' } },
        color: { field: 'system', type: 'nominal', sort: ORDER.map(label), scale: { range: COLORS }, title: null },
      },
    },
  };
}

export function latencyChart(latency: LatencyRun[]): TopLevelSpec {
  const data = latency.filter((l) => !l.overloaded).flatMap((l) =>
    (['p50Us', 'p99Us', 'p999Us'] as const).map((p) => ({ system: label(l.system), workers: `N=${l.workers}`, percentile: p.replace('Us', ''), micros: l[p] })),
  );
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: 'Latency source → worker at a fixed rate, 1 KiB (lower is better)', subtitle: 'systems that could not carry the rate are left out (see REPORT.md)' },
    data: { values: data },
    facet: { column: { field: 'workers', type: 'nominal', title: null } },
    spec: {
      width: 280,
      height: 220,
      mark: 'bar',
      encoding: {
        x: { field: 'percentile', type: 'nominal', sort: ['p50', 'p99', 'p999'], title: null },
        xOffset: { field: 'system', sort: ORDER.map(label) },
        y: { field: 'micros', type: 'quantitative', scale: { type: 'log', domainMin: 10 }, title: 'µs (log scale)' },
        // A log scale has no zero: bars start at 10 µs.
        y2: { datum: 10 },
        color: { field: 'system', type: 'nominal', sort: ORDER.map(label), scale: { range: COLORS }, title: null },
      },
    },
  };
}

/** Rows of the targets table for the relay, slow-consumer and flood scenarios. */
export function targetRows(relay: RelayResult | undefined, slow: SlowResult | undefined, flood: FloodResult | undefined): string[] {
  const rows: string[] = [];
  const t = relay?.targets;
  const both = (r: { free?: number; window?: number } | undefined): string => `${x(r?.free)} (ack-paced ${x(r?.window)})`;
  const atLeast = (v: number | undefined, target: number): boolean | undefined => (v === undefined ? undefined : v >= target);
  // Read from alternating rounds (relay.ts `targetRounds`) when there were any; else from the cells' medians. The
  // ack-paced ratio always comes from the table.
  const how = (r: Array<number | undefined> | undefined): string => (r && r.length > 0 ? ` — median of ${r.length} alternating rounds (each: ${r.map((v) => x(v)).join(', ')})` : '');
  const measured = (ratio: { free?: number; window?: number } | undefined, r: Array<number | undefined> | undefined): string =>
    r && r.length > 0 ? `${x(ratio?.free)}${how(r)}; ack-paced ${x(ratio?.window)} (table)` : both(ratio);
  const runs = relay?.runs ?? [];
  const h16 = find(runs, 'free', 'hub', 16, 1024);
  const c16 = find(runs, 'free', 'ceiling', 16, 1024);
  const r16 = t?.hubVsCeiling16x1k.rounds;
  const cells16 = r16 && r16.length > 0 ? '' : `${fmt(h16?.deliveredPerSec)} vs ${fmt(c16?.deliveredPerSec)} msg/s: `;
  const shared = t?.hubVsCeiling16x1k.sharedCpus;
  const apart = shared ? ', the ws source on a CPU of its own' : '';
  const what = shared ? 'the faster of the pre-framed ceiling and fed in each round' : 'pre-framed ceiling';
  rows.push(`| hub ≥ ${t?.hubVsCeiling16x1k.target ?? 0.8} × ${what}, 16 workers × 1 KiB${apart} | ${cells16}${measured(t?.hubVsCeiling16x1k.ratio, r16)} | ${met(atLeast(t?.hubVsCeiling16x1k.ratio.free, t?.hubVsCeiling16x1k.target ?? 0.8))} |`);
  const alone = t?.hubVsCeiling16x1k.vsCeilingAlone === undefined ? '' : `; hub ${x(t.hubVsCeiling16x1k.vsCeilingAlone)} of the ceiling alone`;
  rows.push(`| … the ceiling fed by the same source (a relay that only parses and re-frames), and the hub against each${apart} | fed ${x(t?.hubVsCeiling16x1k.fedVsCeiling)} of the ceiling; hub ${x(t?.hubVsCeiling16x1k.hubVsFed)} of fed${alone} | reported |`);
  if (shared) {
    rows.push(`| … the same cell with the ws source on the same CPUs as the systems (the ceiling has no source to share them with) | hub ${x(shared.ratio)} of the ceiling${how(shared.rounds)}; fed ${x(shared.fedVsCeiling)} of the ceiling, hub ${x(shared.hubVsFed)} of fed | reported |`);
  }
  rows.push(`| hub ≥ ${t?.hubVsDirect1x1k.target ?? 1} × direct ws, 1 worker × 1 KiB | ${measured(t?.hubVsDirect1x1k.ratio, t?.hubVsDirect1x1k.rounds)} | ${met(atLeast(t?.hubVsDirect1x1k.ratio.free, t?.hubVsDirect1x1k.target ?? 1))} |`);
  rows.push(`| hub ≥ ${t?.hubVsDirect1x64k.target ?? 0.9} × direct ws, 1 worker × 64 KiB | ${measured(t?.hubVsDirect1x64k.ratio, t?.hubVsDirect1x64k.rounds)} | ${met(atLeast(t?.hubVsDirect1x64k.ratio.free, t?.hubVsDirect1x64k.target ?? 0.9))} |`);
  const fed64 = t?.hubVsDirect1x64k.fedVsDirect === undefined ? '' : `; a relay that only parses and re-frames (fed) ${x(t.hubVsDirect1x64k.fedVsDirect)} of direct, the hub ${x(t.hubVsDirect1x64k.hubVsFed)} of it`;
  rows.push(`| … the byte pipe (the extra hop alone) against direct, and the hub against the pipe | pipe ${x(t?.hubVsDirect1x64k.pipeVsDirect)} of direct; hub ${x(t?.hubVsDirect1x64k.hubVsPipe)} of the pipe${fed64}; hub full GCs in its table runs: ${fmt(t?.hubVsDirect1x64k.hubMajorGcs)} | reported |`);
  const bad = t?.zeroDrops.cells.filter((c) => c.lost > 0 || c.hubDropped > 0) ?? [];
  const cells = t?.zeroDrops.cells.length ?? 0;
  rows.push(`| 0 drops to healthy workers, free-running, 1/16/64 workers × 64 B/1 KiB/64 KiB | ${cells === 0 ? '–' : bad.length === 0 ? `0 lost in ${cells} cells` : `lost in ${bad.length} of ${cells} cells: ${bad.map((c) => `${c.workers}×${size(c.size)} ${fmt(c.lost)}`).join(', ')}`} | ${met(t?.zeroDrops.met)} |`);
  const a = t?.addedLatency;
  const howPairs = a?.pairs ? ` — median of ${a.pairs} alternating hub/pipe pairs` : '';
  rows.push(`| added latency p50 ≤ ${a?.targetP50Us ?? 100} µs over the byte pipe at ${fmt(relay?.latencyRate)} msg/s (${a?.workers === undefined ? '–' : `${a.workers} worker${a.workers > 1 ? 's' : ''}`}) | ${a?.p50Us === undefined ? '–' : `${a.p50Us >= 0 ? '+' : ''}${fmt(a.p50Us)} µs`}${howPairs} | ${met(a?.p50Us === undefined ? undefined : a.p50Us <= a.targetP50Us)} |`);
  rows.push(`| p99 ≤ ${a?.targetP99Ratio ?? 1.2} × the byte pipe's p99, same rate | ${x(a?.p99Ratio)}${howPairs}${a?.p99Ratios ? ` (each pair: ${a.p99Ratios.map((r) => x(r)).join(', ')})` : ''} | ${met(a?.p99Ratio === undefined ? undefined : a.p99Ratio <= a.targetP99Ratio)} |`);
  rows.push(`| hub CPU s per million deliveries, 16 × 1 KiB (lower is better; no target) | ${fmt(t?.hubCpuPerM16x1k, 2)} | reported |`);
  if (slow) {
    rows.push(`| slow consumer: the other ${slow.workers - 1} unaffected (lose nothing) | lost ${fmt(slow.healthyLost)}; throughput ${x(slow.ratios.throughput)}, p99 ${x(slow.ratios.p99)} of all-healthy${slow.ratios.hubCpuPerDelivery === undefined ? '' : `; the hub's CPU per delivery ${x(slow.ratios.hubCpuPerDelivery)}`} | ${met(slow.healthyLost === 0)} |`);
    rows.push(`| slow consumer: every drop counted | stalled worker missed ${fmt(slow.stalledLost)}, others ${fmt(slow.healthyLost)}; hub counted ${fmt(slow.hubDropped)} | ${met(slow.accounted)} |`);
  }
  if (flood) {
    rows.push(`| flood: hub RSS bounded by its worker→upstream buffer option + baseline | +${fmt(flood.rss.growthMiB, 1)} MiB (peak ${fmt(flood.rss.peakMiB, 1)} MiB) | reported |`);
    rows.push(`| flood: every frame the worker sent arrives upstream, in order | ${fmt(flood.upstream.received)} of ${fmt(flood.flooder.sent)}${flood.upstream.inOrder ? ', in order' : `, ${fmt(flood.upstream.missing)} in gaps, ${fmt(flood.upstream.outOfOrder)} out of order`}, upstream connections ${flood.upstream.connections} | ${met(flood.upstream.inOrder)} |`);
    rows.push(`| flood: other workers' relay unaffected | ${x(flood.relay.ratio)} of without the flood, lost ${fmt(flood.relay.during.lost)} | reported |`);
  }
  return rows;
}

/** The relay section: both tables, latency, added latency. */
export function relaySection(relay: RelayResult, charts: { relay: boolean; latency: boolean }): string[] {
  const lines: string[] = ['## Relay: one upstream → N workers', ''];
  lines.push(
    '**Free-running** (the default, what users meet): the source writes while its socket buffer is under 64 KiB and resumes on drain; it waits for no one. **Ack-paced**: the source waits for the slowest worker’s acks (a window of up to 4,096 messages / 16 MiB), as earlier reports measured. The hub runs with every option at its default. **Pre-framed, fed** is the same fan-out reading the same ws source over TCP, as the hub does (free-running only): what any relay reading this source reaches here, where the source takes its share of the two cores. wshub and both pre-framed fan-outs serve workers over a Unix socket; the byte pipe too (each worker’s connection piped to the upstream); direct ws, Socket.IO and NATS over loopback TCP. **Lost** = messages a worker never got, from sequence numbers, summed over workers and repetitions; for the hub its own drop counter is shown when it differs. CPU s/M = CPU seconds per million delivered messages of the process doing the fan-out (hub / pre-framed / pipe / ws source / Socket.IO server / nats-server).',
    '',
  );
  if (charts.relay) lines.push('![delivered messages per second](report/relay.svg)', '');
  const runs = relay.runs;
  const cells = [...new Map(runs.filter((r) => r.system === 'hub').map((r) => [`${r.workers}|${r.size}`, r])).values()];
  lines.push('### Free-running source', '');
  lines.push('| N | size | wshub | pre-framed | pre-framed, fed | byte pipe | direct ws | Socket.IO | NATS | hub/ceiling | hub/fed | hub/ws | hub/NATS | CPU s/M hub · pre-framed · fed · ws | lost: hub · pre-framed · fed · pipe · ws · sio · nats |', '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const c of cells) {
    const g = (s: SystemName): ThroughputRun | undefined => find(runs, 'free', s, c.workers, c.size);
    const h = g('hub');
    if (!h) continue;
    lines.push(
      `| ${c.workers} | ${size(c.size)} | ${fmt(h.deliveredPerSec)}${stalled(h)} | ${fmt(g('ceiling')?.deliveredPerSec)} | ${fmt(g('fed')?.deliveredPerSec)}${stalled(g('fed'))} | ${fmt(g('pipe')?.deliveredPerSec)}${stalled(g('pipe'))} | ${fmt(g('ws')?.deliveredPerSec)}${stalled(g('ws'))} | ${fmt(g('socket.io')?.deliveredPerSec)}${stalled(g('socket.io'))} | ${fmt(g('nats')?.deliveredPerSec)}${stalled(g('nats'))} | ${x(ratioOf(h.deliveredPerSec, g('ceiling')?.deliveredPerSec))} | ${x(ratioOf(h.deliveredPerSec, g('fed')?.deliveredPerSec))} | ${x(ratioOf(h.deliveredPerSec, g('ws')?.deliveredPerSec))} | ${x(ratioOf(h.deliveredPerSec, g('nats')?.deliveredPerSec))} | ${fmt(h.fanoutCpuPerM, 2)} · ${fmt(g('ceiling')?.fanoutCpuPerM, 2)} · ${fmt(g('fed')?.fanoutCpuPerM, 2)} · ${fmt(g('ws')?.fanoutCpuPerM, 2)} | ${ORDER.map((s) => lostCell(g(s))).join(' · ')} |`,
    );
  }
  lines.push('', '### Ack-paced source (window), for comparison', '');
  lines.push('| N | size | wshub | pre-framed | direct ws | hub/ceiling | hub/ws | CPU s/M hub | lost: hub · pre-framed · ws |', '|---|---|---|---|---|---|---|---|---|');
  for (const c of cells) {
    const g = (s: SystemName): ThroughputRun | undefined => find(runs, 'window', s, c.workers, c.size);
    const h = g('hub');
    if (!h) continue;
    lines.push(`| ${c.workers} | ${size(c.size)} | ${fmt(h.deliveredPerSec)} | ${fmt(g('ceiling')?.deliveredPerSec)} | ${fmt(g('ws')?.deliveredPerSec)}${stalled(g('ws'))} | ${x(ratioOf(h.deliveredPerSec, g('ceiling')?.deliveredPerSec))} | ${x(ratioOf(h.deliveredPerSec, g('ws')?.deliveredPerSec))} | ${fmt(h.fanoutCpuPerM, 2)} | ${(['hub', 'ceiling', 'ws'] as const).map((s) => lostCell(g(s))).join(' · ')} |`);
  }
  const reps = runs.filter((r) => r.repetitions && r.repetitions.length > 1).map((r) => (Math.max(...r.repetitions!) - Math.min(...r.repetitions!)) / Math.max(1, r.deliveredPerSec));
  if (reps.length) {
    reps.sort((a, b) => a - b);
    lines.push('', `Noise: the spread (max − min) of a cell’s repetitions is ${fmt(100 * reps[Math.floor(reps.length / 2)]!)} % of its median in the typical cell, up to ${fmt(100 * reps[reps.length - 1]!)} % (every repetition in bench/results/relay.json).`);
  }
  lines.push('', `Hub RSS during the runs: up to ${fmt(Math.max(0, ...runs.filter((r) => r.system === 'hub').map((r) => r.fanoutRssMiB)))} MiB.`, '');
  if (relay.latency.length) {
    lines.push(`### Latency at a fixed ${fmt(relay.latencyRate)} msg/s, 1 KiB (free-running pacing)`, '');
    if (charts.latency) lines.push('![latency](report/latency.svg)', '');
    lines.push('| N | system | p50 µs | p99 µs | p99.9 µs | received msg/s per worker | lost |', '|---|---|---|---|---|---|---|');
    for (const l of relay.latency) lines.push(`| ${l.workers} | ${label(l.system)} | ${fmt(l.p50Us)} | ${fmt(l.p99Us)} | ${fmt(l.p999Us)} | ${fmt(l.achievedRatePerWorker)}${l.overloaded ? ' — **overloaded**: could not carry the rate' : ''} | ${lostCell(l)} |`);
    lines.push('', '**Added by the hub over the byte pipe** (the hop alone; same source and worker processes):', '');
    for (const a of relay.added) lines.push(`- N=${a.workers}: p50 ${a.p50Us === undefined ? '–' : `${a.p50Us >= 0 ? '+' : ''}${fmt(a.p50Us)}`} µs, p99 ${x(a.p99Ratio)}, p99.9 ${x(a.p999Ratio)}${a.comparable ? '' : ' (not comparable: a side could not carry the rate)'}`);
    lines.push('');
    const pairs = relay.latencyPairs ?? [];
    if (pairs.length > 0) {
      lines.push(`Alternating pairs at N=${pairs[0]!.workers} (hub and pipe back to back, the order swapped each pair; the targets above are their medians):`, '');
      lines.push('| pair | hub p50 / p99 µs | pipe p50 / p99 µs | hub p99 / pipe p99 |', '|---|---|---|---|');
      pairs.forEach((p, i) => lines.push(`| ${i + 1} | ${fmt(p.hub.p50Us)} / ${fmt(p.hub.p99Us)} | ${fmt(p.pipe.p50Us)} / ${fmt(p.pipe.p99Us)} | ${x(p.p99Ratio)}${p.comparable ? '' : ' (a side could not carry the rate)'} |`));
      lines.push('');
    }
  }
  return lines;
}

export function slowSection(slow: SlowResult): string[] {
  return [
    '| run | the others’ msg/s | the others lost | p50 µs | p99 µs |', '|---|---|---|---|---|',
    `| all healthy | ${fmt(slow.othersHealthyPerSec ?? slow.healthy.tp.consumersDeliveredPerSec)} | ${fmt(slow.healthy.tp.lost + slow.healthy.lat.lost)} | ${fmt(slow.healthy.lat.p50Us)} | ${fmt(slow.healthy.lat.p99Us)} |`,
    `| one stalled | ${fmt(slow.withStalled.tp.consumersDeliveredPerSec)} | ${fmt(slow.healthyLost)} | ${fmt(slow.withStalled.lat.p50Us)} | ${fmt(slow.withStalled.lat.p99Us)} |`,
    '',
    `The stalled worker missed ${fmt(slow.stalledLost)} messages (counted from its sequence numbers once it read again); the hub counted ${fmt(slow.hubDropped)} drops in that phase: ${slow.accounted ? 'every loss accounted for' : '**the counts disagree**'}. Both rows count the same ${slow.workers - 1} workers. The stalled phase is measured from the end of the run's warm-up after the pause (700 ms; 300 ms in quick mode), so its start falls inside the hub's \`slowAfterMs\` (1 s by default), while the stalled session still holds the upstream's reading; after that the stalled session no longer paces the upstream, and the others share the two cores with one fewer reader.`,
    '',
  ];
}

export function floodSection(flood: FloodResult): string[] {
  return [
    '| | without the flood | during the flood |', '|---|---|---|',
    `| 4 workers' relay msg/s (free-running feed) | ${fmt(flood.relay.without.deliveredPerSec)} | ${fmt(flood.relay.during.deliveredPerSec)} (${x(flood.relay.ratio)}) |`,
    `| their losses | ${fmt(flood.relay.without.lost)} | ${fmt(flood.relay.during.lost)} |`,
    `| hub RSS, peak | ${fmt(flood.rss.baselineMiB, 1)} MiB | ${fmt(flood.rss.peakMiB, 1)} MiB (+${fmt(flood.rss.growthMiB, 1)} MiB) |`,
    '',
    `The flooding worker handed ${fmt(flood.flooder.sent)} frames to its socket in ${fmt(flood.floodMs / 1000)} s (${fmt(flood.flooder.perSec)}/s); the upstream, reading at full speed once the flood ended, had ${fmt(flood.upstream.received)} after ${fmt(flood.upstream.drainMs)} ms${flood.upstream.inOrder ? ', all in order' : ` — ${fmt(flood.upstream.missing)} missing in gaps, ${fmt(flood.upstream.outOfOrder)} out of order`}, over ${flood.upstream.connections} upstream connection(s).`,
    '',
  ];
}

/** What bench/daemon.ts returns (the parts the report reads). */
export interface DaemonResult {
  cells: Array<{ workers: number; size: number; sourceCpu?: boolean; ratios: Record<string, { median?: number; each: Array<number | undefined> } | undefined> }>;
  targets: Record<'daemonVsCeiling16x1k' | 'daemonVsDirect1x1k' | 'daemonVsDirect1x64k', {
    ratio?: number;
    target: number;
    daemonVsFed?: number;
    cpuVsFed?: number;
    pipeVsDirect?: number;
    daemonVsPipe?: number;
    /** 16 × 1 KiB, source apart: `ratio` is against the faster of the ceiling and fed; this, the ceiling alone. */
    vsCeilingAlone?: number;
    sharedCpus?: { ratio?: number; daemonVsFed?: number; cpuVsFed?: number };
  }>;
  lost: number;
  daemonDropped: Record<string, number>;
}

/** The throughput targets again, on the daemon a user installs and starts (bench/daemon.ts). */
export function daemonRows(d: DaemonResult | undefined): string[] {
  if (!d) return [];
  const row = (label: string, n: number, size: number, other: string, t: { ratio?: number; target: number }, extra = '', sourceCpu = false): string => {
    const each = d.cells.find((c) => c.workers === n && c.size === size && (c.sourceCpu ?? false) === sourceCpu)?.ratios[other]?.each ?? [];
    const how = each.length > 0 ? ` — median of ${each.length} alternating rounds (each: ${each.map((v) => x(v)).join(', ')})` : '';
    return `| \`wshub serve\` from the packed package ≥ ${t.target} × ${label} | ${x(t.ratio)}${how}${extra} | ${met(t.ratio === undefined ? undefined : t.ratio >= t.target)} |`;
  };
  const t = d.targets;
  const dropped = Object.values(d.daemonDropped).reduce((a, b) => a + b, 0);
  const c16 = t.daemonVsCeiling16x1k;
  const apart = c16.sharedCpus !== undefined;
  const rows16 = apart
    ? [
        row('the faster of the pre-framed ceiling and fed in each round, 16 workers × 1 KiB, the ws source on a CPU of its own', 16, 1024, 'best', c16, `; the ceiling alone ${x(c16.vsCeilingAlone)}, fed ${x(c16.daemonVsFed)}; the daemon's CPU per delivery ${x(c16.cpuVsFed)} of fed's`, true),
        `| … the same cell with the ws source on the same CPUs as the rest | the ceiling ${x(c16.sharedCpus?.ratio)}, fed ${x(c16.sharedCpus?.daemonVsFed)}; the daemon's CPU per delivery ${x(c16.sharedCpus?.cpuVsFed)} of fed's | reported |`,
      ]
    : [row('pre-framed ceiling, 16 workers × 1 KiB', 16, 1024, 'ceiling', c16, `; fed ${x(c16.daemonVsFed)}; the daemon's CPU per delivery ${x(c16.cpuVsFed)} of fed's`)];
  return [
    ...rows16,
    row('direct ws, 1 worker × 1 KiB', 1, 1024, 'ws', t.daemonVsDirect1x1k),
    row('direct ws, 1 worker × 64 KiB', 1, 65536, 'ws', t.daemonVsDirect1x64k, t.daemonVsDirect1x64k.pipeVsDirect === undefined ? '' : `; the byte pipe (the extra hop alone) ${x(t.daemonVsDirect1x64k.pipeVsDirect)} of direct, the daemon ${x(t.daemonVsDirect1x64k.daemonVsPipe)} of the pipe and ${x(t.daemonVsDirect1x64k.daemonVsFed)} of fed`),
    `| … its losses in those runs (workers' sequence numbers; its own drop counters) | lost ${fmt(d.lost)}, dropped ${fmt(dropped)} | ${met(d.lost === 0 && dropped === 0)} |`,
  ];
}
