/**
 * Writes bench/REPORT.md and bench/report/*.svg from bench/results/*.json:
 * the targets with whether each was met, ratios against the baselines (these
 * machines are noisy, so ratios measured in one run are what to compare), the
 * machine's facts and the command that reproduces them. Charts are rendered
 * with vega-lite → vega → SVG in Node (no browser).
 *
 * Run by `npm run bench` after the scenarios; on its own: `node dist/bench/report.js [--quick]`.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as vega from 'vega';
import * as vegaLite from 'vega-lite';
import type { TopLevelSpec } from 'vega-lite';
import type { LatencyRun, ThroughputRun } from './lib/relay-lab.js';

const BENCH_DIR = fileURLToPath(new URL('../../bench/', import.meta.url));
const RESULTS_DIR = `${BENCH_DIR}results/`;
/** Quick-mode reports go under dist/ so a CI smoke run never overwrites the committed full report. */
const QUICK_DIR = fileURLToPath(new URL('./report-quick/', import.meta.url));

interface Recorded {
  scenario: string;
  quick: boolean;
  machine: Record<string, unknown> & { date?: string };
  durationMs: number;
  result?: Record<string, unknown> & { summary: string };
  error?: { message: string } | string;
}

function load(name: string): Recorded | undefined {
  const file = `${RESULTS_DIR}${name}.json`;
  if (!existsSync(file)) return undefined;
  return JSON.parse(readFileSync(file, 'utf8')) as Recorded;
}

/** A baseline run in which some workers got nothing: marked, with a footnote under the table. */
const stalled = (r: { stalledWorkers?: number } | undefined): string => (r?.stalledWorkers ? ` (stalled: ${r.stalledWorkers} workers got nothing)` : '');
const fmt = (v: number | undefined, digits = 0): string => (v === undefined || !Number.isFinite(v) ? '–' : v.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }));
const x = (v: number | undefined): string => (v === undefined ? '–' : `×${fmt(v, 2)}`);
const met = (ok: boolean | undefined): string => (ok === undefined ? 'not measured' : ok ? '**met**' : '**not met**');

/** Render a vega-lite spec to an SVG string. */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(vegaLite.compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

function relayChart(runs: ThroughputRun[], ceiling: number | undefined): TopLevelSpec {
  const data = runs.map((r) => ({ system: r.system === 'hub' ? 'wshub' : r.system, workers: r.workers, size: `${r.size} B messages`, sizeOrder: r.size, msgPerSec: r.deliveredPerSec }));
  const order = ['wshub', 'ws', 'socket.io', 'nats'];
  const bars: TopLevelSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: 'Delivered messages/s, one upstream → N workers (higher is better)', subtitle: ceiling ? `for scale: raw Unix-socket ceiling, 1 KiB, batched, one reader: ${fmt(ceiling)} msg/s` : '' },
    data: { values: data },
    facet: { column: { field: 'size', type: 'nominal', title: null, sort: { field: 'sizeOrder' } } },
    resolve: { scale: { y: 'independent' } },
    spec: {
      width: 230,
      height: 260,
      layer: [
        {
          mark: 'bar',
          encoding: {
            x: { field: 'workers', type: 'ordinal', title: 'workers (N)' },
            xOffset: { field: 'system', sort: order },
            y: { field: 'msgPerSec', type: 'quantitative', title: 'messages/s delivered (total)', axis: { format: '~s' } },
            color: { field: 'system', type: 'nominal', sort: order, scale: { range: ['#d62728', '#1f77b4', '#9467bd', '#2ca02c'] }, title: null },
            tooltip: [{ field: 'system' }, { field: 'workers' }, { field: 'msgPerSec', format: ',' }],
          },
        },
      ],
    },
  };
  return bars;
}

function latencyChart(latency: LatencyRun[]): TopLevelSpec {
  const data = latency.filter((l) => !l.overloaded).flatMap((l) =>
    (['p50Us', 'p99Us', 'p999Us'] as const).map((p) => ({ system: l.system === 'hub' ? 'wshub' : l.system, workers: `N=${l.workers}`, percentile: p.replace('Us', ''), micros: l[p] })),
  );
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: `Latency source → worker at a fixed rate, 1 KiB (lower is better)`, subtitle: 'systems that could not carry the rate are left out (see REPORT.md)' },
    data: { values: data },
    facet: { column: { field: 'workers', type: 'nominal', title: null } },
    spec: {
      width: 260,
      height: 220,
      mark: 'bar',
      encoding: {
        x: { field: 'percentile', type: 'nominal', sort: ['p50', 'p99', 'p999'], title: null },
        xOffset: { field: 'system', sort: ['wshub', 'ws', 'socket.io', 'nats'] },
        y: { field: 'micros', type: 'quantitative', scale: { type: 'log', domainMin: 10 }, title: 'µs (log scale)' },
        // A log scale has no zero: bars start at 10 µs.
        y2: { datum: 10 },
        color: { field: 'system', type: 'nominal', sort: ['wshub', 'ws', 'socket.io', 'nats'], scale: { range: ['#d62728', '#1f77b4', '#9467bd', '#2ca02c'] }, title: null },
      },
    },
  };
}

/**
 * Write the report from the results on disk: bench/REPORT.md and bench/report/*.svg
 * for a full run, dist/bench/report-quick/ for a quick one. Returns the markdown file.
 */
export async function writeReport(quickRun: boolean): Promise<string> {
  const outDir = quickRun ? QUICK_DIR : BENCH_DIR;
  const CHART_DIR = `${outDir}report/`;
  const lines: string[] = [];
  const limits = load('limits');
  const relay = load('relay');
  const slow = load('slow-consumer');
  const storm = load('attach-storm');
  const memory = load('memory');
  const connect = load('connect-storm');
  const all = [limits, relay, slow, connect, storm, memory].filter((r): r is Recorded => r !== undefined);
  const machine: Recorded['machine'] = (relay ?? all[0])?.machine ?? {};
  const quick = all.some((r) => r.quick);
  lines.push('# wshub benchmark report', '');
  lines.push(`Generated by \`npm run bench${quick ? ' -- --quick' : ''}\` (${quick ? '**quick mode: smoke numbers only**' : 'full mode'}) on ${String(machine.date ?? '?').slice(0, 16).replace('T', ' ')} UTC.`);
  lines.push(`Machine: ${String(machine.cpus)} × ${String(machine.cpuModel)}, ${fmt(Number(machine.totalMemMiB))} MiB RAM, Linux ${String(machine.kernel)}, Node ${String(machine.node)}. Every process (source, hub or broker, workers) shares these cores, and other jobs may run at the same time: compare the **ratios**, measured in the same run, not the absolute numbers.`);
  lines.push('', '| scenario | mode | run at (UTC) | took |', '|---|---|---|---|');
  for (const r of all) lines.push(`| ${r.scenario} | ${r.quick ? 'quick' : 'full'} | ${String(r.machine.date ?? '').slice(0, 19).replace('T', ' ')} | ${fmt(r.durationMs / 1000, 1)} s |`);
  lines.push('', 'Reproduce: `npm run bench` (full, about 12 minutes) or `npm run bench -- --quick` (CI smoke, under 2 minutes); one scenario: `npm run bench -- relay`. Method: docs/bench.md. Raw data: bench/results/*.json.', '');

  const relayResult = relay?.result as (Record<string, unknown> & { runs: ThroughputRun[]; latency: LatencyRun[]; added: Array<{ workers: number; p50Us?: number; p99Us?: number; p999Us?: number; comparable: boolean }> }) | undefined;
  const limitsResult = limits?.result as { unixBatched1k?: number; runs: Array<{ transport: string; writes: string; size: number; messagesPerSec: number; mibPerSec: number }> } | undefined;
  const memResult = memory?.result as { ratios: Array<{ sessions: number; hubBytes: number; wsBytes?: number; ratio?: number }>; target: { met: boolean; hubBytes: number; sessions: number } } | undefined;

  // ── Targets ──
  const runs = relayResult?.runs ?? [];
  const get = (s: string, n: number, size: number): ThroughputRun | undefined => runs.find((r) => r.system === s && r.workers === n && r.size === size);
  const ratioOf = (a?: number, b?: number): number | undefined => (a === undefined || b === undefined || b === 0 ? undefined : a / b);
  const hub1 = get('hub', 1, 1024);
  const ws1 = get('ws', 1, 1024);
  const hub16 = get('hub', 16, 1024);
  const ws16 = get('ws', 16, 1024);
  const nats16 = get('nats', 16, 1024);
  const ceiling = limitsResult?.unixBatched1k;
  const addedKey = relayResult?.added.find((a) => a.workers === 1 && a.comparable) ?? relayResult?.added.find((a) => a.comparable);
  lines.push('## Targets', '', '| target | measured | result |', '|---|---|---|');
  const r1 = ratioOf(hub1?.deliveredPerSec, ws1?.deliveredPerSec);
  lines.push(`| hub → 1 worker ≥ direct ws to 1 client (1 KiB) | ${fmt(hub1?.deliveredPerSec)} vs ${fmt(ws1?.deliveredPerSec)} msg/s, ${x(r1)} | ${met(r1 === undefined ? undefined : r1 >= 1)} |`);
  const r16 = ratioOf(hub16?.deliveredPerSec, ws16?.deliveredPerSec);
  lines.push(`| hub → 16 workers ≥ 3 × direct ws 16-connection total (1 KiB) | ${fmt(hub16?.deliveredPerSec)} vs ${fmt(ws16?.deliveredPerSec)} msg/s, ${x(r16)} | ${met(r16 === undefined ? undefined : r16 >= 3)} |`);
  const rn = ratioOf(hub16?.deliveredPerSec, nats16?.deliveredPerSec);
  lines.push(`| hub → 16 workers ≥ NATS fan-out to 16 (1 KiB) | ${fmt(hub16?.deliveredPerSec)} vs ${fmt(nats16?.deliveredPerSec)} msg/s, ${x(rn)} | ${met(rn === undefined ? undefined : rn >= 1)} |`);
  const rc = ratioOf(hub16?.deliveredPerSec, ceiling);
  lines.push(`| hub → 16 workers ≥ ½ batched raw Unix-socket ceiling (1 KiB) | ${fmt(hub16?.deliveredPerSec)} vs ${fmt(ceiling)} msg/s, ${x(rc)} | ${met(rc === undefined ? undefined : rc >= 0.5)} |`);
  lines.push(`| added latency p50 < 200 µs at ${fmt(relayResult?.latencyRate as number | undefined)} msg/s (${addedKey ? `${addedKey.workers} worker${addedKey.workers > 1 ? 's' : ''}` : '–'}) | ${fmt(addedKey?.p50Us)} µs (p99 ${fmt(addedKey?.p99Us)} µs) | ${met(addedKey?.p50Us === undefined ? undefined : addedKey.p50Us < 200)} |`);
  const memTop = memResult?.ratios.find((r) => r.sessions === 10_000);
  lines.push(`| idle session < 16 KiB at 10,000 sessions | ${fmt(memTop?.hubBytes)} B (plain ws ${fmt(memTop?.wsBytes)} B, ${x(memTop?.ratio)}) | ${met(memTop === undefined ? undefined : memTop.hubBytes < 16 * 1024)} |`);
  lines.push('');
  if (quick) lines.push('Quick mode runs 4 workers only, so the 1- and 16-worker targets read "not measured"; run the full mode for them.', '');

  // ── Relay ──
  if (relayResult) {
    let svg: string | undefined;
    try {
      svg = await renderSvg(relayChart(runs, ceiling));
      mkdirSync(CHART_DIR, { recursive: true });
      writeFileSync(`${CHART_DIR}relay.svg`, svg);
      if (relayResult.latency.length) writeFileSync(`${CHART_DIR}latency.svg`, await renderSvg(latencyChart(relayResult.latency)));
    } catch (err) {
      lines.push(`(chart failed: ${(err as Error).message})`, '');
    }
    lines.push('## Relay: one upstream → N workers', '');
    lines.push('The source sends as fast as the slowest worker acknowledges (window: up to 16 MiB or 4,096 messages per consumer); wshub workers attach over its Unix socket, the others over loopback TCP. CPU s/M = CPU seconds per million delivered messages of the process doing the fan-out (hub / ws source / Socket.IO server / nats-server).', '');
    if (svg) lines.push('![delivered messages per second](report/relay.svg)', '');
    lines.push('| N | size | wshub msg/s | ws | Socket.IO | NATS | hub/ws | hub/Socket.IO | hub/NATS | CPU s/M hub · ws · sio · nats | hub drops |', '|---|---|---|---|---|---|---|---|---|---|---|');
    for (const h of runs.filter((r) => r.system === 'hub')) {
      const w = get('ws', h.workers, h.size);
      const s = get('socket.io', h.workers, h.size);
      const n = get('nats', h.workers, h.size);
      lines.push(
        `| ${h.workers} | ${h.size} B | ${fmt(h.deliveredPerSec)} | ${fmt(w?.deliveredPerSec)}${stalled(w)} | ${fmt(s?.deliveredPerSec)}${stalled(s)} | ${fmt(n?.deliveredPerSec)}${stalled(n)} | ${x(ratioOf(h.deliveredPerSec, w?.deliveredPerSec))} | ${x(ratioOf(h.deliveredPerSec, s?.deliveredPerSec))} | ${x(ratioOf(h.deliveredPerSec, n?.deliveredPerSec))} | ${fmt(h.fanoutCpuPerM, 2)} · ${fmt(w?.fanoutCpuPerM, 2)} · ${fmt(s?.fanoutCpuPerM, 2)} · ${fmt(n?.fanoutCpuPerM, 2)} | ${fmt(h.hubDropped)} |`,
      );
    }
    lines.push('', `Hub RSS during the runs: up to ${fmt(Math.max(...runs.filter((r) => r.system === 'hub').map((r) => r.fanoutRssMiB)), 0)} MiB. Frames dropped by the hub over all relay runs: ${fmt(relayResult.hubDropped as number)}.`, '');
    if (relayResult.latency.length) {
      lines.push(`### Latency at a fixed ${fmt(relayResult.latencyRate as number)} msg/s, 1 KiB`, '');
      if (existsSync(`${CHART_DIR}latency.svg`)) lines.push('![latency](report/latency.svg)', '');
      lines.push('| N | system | p50 µs | p99 µs | p99.9 µs | received msg/s per worker |', '|---|---|---|---|---|---|');
      for (const l of relayResult.latency) lines.push(`| ${l.workers} | ${l.system} | ${fmt(l.p50Us)} | ${fmt(l.p99Us)} | ${fmt(l.p999Us)} | ${fmt(l.achievedRatePerWorker)}${l.overloaded ? ' — **overloaded**: could not carry the rate' : ''} |`);
      lines.push('', '**Added by the hub** (hub − direct ws, same source and worker processes):', '');
      for (const a of relayResult.added) lines.push(`- N=${a.workers}: p50 ${fmt(a.p50Us)} µs, p99 ${fmt(a.p99Us)} µs, p99.9 ${fmt(a.p999Us)} µs${a.comparable ? '' : ' (not comparable: a side could not carry the rate)'}`);
      lines.push('');
    }
  } else if (relay?.error) lines.push(`## Relay\n\nFAILED: ${typeof relay.error === 'string' ? relay.error : relay.error.message}\n`);

  if (limitsResult) {
    lines.push('## Physical limits: raw length-prefixed messages, process to process', '');
    lines.push('| transport | size | batched msg/s | one write each msg/s | batched MiB/s |', '|---|---|---|---|---|');
    const keys = [...new Set(limitsResult.runs.map((r) => `${r.transport}|${r.size}`))];
    for (const k of keys) {
      const [t, s] = k.split('|');
      const b = limitsResult.runs.find((r) => r.transport === t && String(r.size) === s && r.writes === 'batched');
      const o = limitsResult.runs.find((r) => r.transport === t && String(r.size) === s && r.writes === 'single');
      lines.push(`| ${t} | ${s} B | ${fmt(b?.messagesPerSec)} | ${fmt(o?.messagesPerSec)} | ${fmt(b?.mibPerSec)} |`);
    }
    lines.push('');
  }

  const section = (title: string, rec: Recorded | undefined, extra: string[] = []): void => {
    if (!rec) return;
    lines.push(`## ${title}`, '');
    if (rec.result) lines.push(rec.result.summary, '', ...extra);
    else lines.push(`FAILED: ${typeof rec.error === 'string' ? rec.error : rec.error?.message}`, '');
  };
  const slowR = slow?.result as { healthy: { tp: ThroughputRun; lat: LatencyRun }; withStalled: { tp: ThroughputRun; lat: LatencyRun }; stalledDrops: number } | undefined;
  section('Slow consumer: one of 16 workers stops reading', slow, slowR ? [
    '| run | the others’ msg/s | p50 µs | p99 µs |', '|---|---|---|---|',
    `| all healthy | ${fmt(slowR.healthy.tp.consumersDeliveredPerSec)} | ${fmt(slowR.healthy.lat.p50Us)} | ${fmt(slowR.healthy.lat.p99Us)} |`,
    `| one stalled | ${fmt(slowR.withStalled.tp.consumersDeliveredPerSec)} | ${fmt(slowR.withStalled.lat.p50Us)} | ${fmt(slowR.withStalled.lat.p99Us)} |`,
    '', 'With one worker stalled, the machine\'s two cores are shared by one fewer reader, so the others can be faster than in the healthy run: the point is that they are not slower, and that the stalled session\'s losses are counted (`drop-oldest`), not hidden.', '',
  ] : []);
  const stormR = storm?.result as { runs: Record<'hub' | 'ws', Array<{ opened: number; allOpenMs: number; failures: Record<string, number> }>>; median: { hubAllOpenMs?: number; wsAllOpenMs?: number } } | undefined;
  const failuresOf = (runs: Array<{ failures: Record<string, number> }>): string => {
    const sum: Record<string, number> = {};
    for (const r of runs) for (const [k, v] of Object.entries(r.failures)) sum[k] = (sum[k] ?? 0) + v;
    const parts = Object.entries(sum).map(([k, v]) => `${v} ${k}`);
    return parts.length ? parts.join(', ') : 'none';
  };
  section('Attach storm: 1,000 workers at once', storm, stormR ? [
    '| server | median time to all open | storms | not opened, by reason (all storms) |', '|---|---|---|---|',
    `| wshub | ${fmt(stormR.median.hubAllOpenMs, 1)} ms | ${stormR.runs.hub.length} | ${failuresOf(stormR.runs.hub)} |`,
    `| plain ws | ${fmt(stormR.median.wsAllOpenMs, 1)} ms | ${stormR.runs.ws.length} | ${failuresOf(stormR.runs.ws)} |`,
    '', 'EAGAIN on a Unix-socket connect means the listen backlog was full (Node\'s default backlog is 511; a Unix connect is not retried by the kernel the way a TCP SYN is). The time is to the last session that did open.', '',
  ] : []);
  section('Memory per idle session', memory, memResult ? ['| sessions | hub B/session | plain ws B/session | ratio |', '|---|---|---|---|', ...memResult.ratios.map((r) => `| ${fmt(r.sessions)} | ${fmt(r.hubBytes)} | ${fmt(r.wsBytes)} | ${x(r.ratio)} |`), ''] : []);
  section('Connect storm (upstream side)', connect);
  const text = lines.join('\n') + '\n';
  mkdirSync(outDir, { recursive: true });
  writeFileSync(`${outDir}REPORT.md`, text);
  return `${outDir}REPORT.md`;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  writeReport(process.argv.includes('--quick')).then(
    (file) => console.log(`report → ${file}`),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
