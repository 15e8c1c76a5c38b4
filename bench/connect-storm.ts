/**
 * Connect storm: 100 `ResilientWebSocket`s started at once in one process —
 * 70 to live servers, 15 to closed ports (refused at once), 15 to a blackholed
 * address (only tcpTimeoutMs ends them) — inside network namespaces (needs root).
 *
 * Measured: time until all 70 are open, event-loop delay (p99, max) of the
 * storm process, worst ping lateness on the live connections as stamped by the
 * server, and when the blackholed attempts fail compared with the configured
 * tcpTimeoutMs. Baseline, measured in the same run on the same topology: the 70
 * live connections alone. The ratios storm/baseline are what to compare across
 * machines; absolute numbers depend on the machine (see `machine` in the JSON).
 */
import { createStormTopology, runStorm, type StormPlan, type StormRun } from '../test/netns/storm-lab.js';
import { percentile, round, type BenchResult, type BenchScenario } from './scenario.js';

const TCP_TIMEOUT_MS = 2000;
const PING_INTERVAL_MS = 500;

interface RunSummary {
  allOpenMs: number | undefined;
  liveOpened: number;
  eldP99Ms: number;
  eldMaxMs: number;
  worstPingLatenessMs: number | undefined;
  refusedFailMs: { min: number | undefined; max: number | undefined; codes: Record<string, number> };
  blackholedFailMs: { min: number | undefined; max: number | undefined; codes: Record<string, number> };
}

function summarize(run: StormRun): RunSummary {
  const failsOf = (kind: string): RunSummary['refusedFailMs'] => {
    const list = run.clients.filter((c) => c.kind === kind && c.firstFail);
    const ms = list.map((c) => c.firstFail!.ms);
    const codes: Record<string, number> = {};
    for (const c of list) codes[c.firstFail!.code ?? 'none'] = (codes[c.firstFail!.code ?? 'none'] ?? 0) + 1;
    return { min: round(ms.length ? Math.min(...ms) : undefined, 1), max: round(ms.length ? Math.max(...ms) : undefined, 1), codes };
  };
  const gaps = run.pings.map((p) => p.maxGapMs);
  return {
    allOpenMs: round(run.allOpenMs, 1),
    liveOpened: run.clients.filter((c) => c.kind === 'live' && c.opens > 0).length,
    eldP99Ms: run.eld.p99,
    eldMaxMs: run.eld.max,
    worstPingLatenessMs: gaps.length ? Math.max(0, Math.max(...gaps) - PING_INTERVAL_MS) : undefined,
    refusedFailMs: failsOf('refused'),
    blackholedFailMs: failsOf('blackholed'),
  };
}

/** Median of the defined values of one metric over the repetitions. */
function median(runs: RunSummary[], pick: (r: RunSummary) => number | undefined): number | undefined {
  return round(percentile(runs.map(pick).filter((v): v is number => v !== undefined), 50), 2);
}

function ratio(a: number | undefined, b: number | undefined): number | undefined {
  return a === undefined || b === undefined || b === 0 ? undefined : round(a / b, 2);
}

const scenario: BenchScenario = {
  name: 'connect-storm',
  description: '100 clients at once (70 live, 15 refused, 15 blackholed) vs the 70 live alone: open time, loop delay, ping lateness, timeout accuracy',
  async run({ quick }): Promise<BenchResult> {
    const repetitions = quick ? 1 : 5;
    // Long enough for every blackholed attempt to time out at least once (twice in full mode).
    const observeMs = quick ? TCP_TIMEOUT_MS + 2000 : 2 * TCP_TIMEOUT_MS + 3000;
    const storm: StormPlan = { live: 70, refused: 15, blackholed: 15, tcpTimeoutMs: TCP_TIMEOUT_MS, pingIntervalMs: PING_INTERVAL_MS, observeMs };
    const baseline: StormPlan = { ...storm, refused: 0, blackholed: 0 };
    const topology = await createStormTopology('bench');
    const stormRuns: RunSummary[] = [];
    const baselineRuns: RunSummary[] = [];
    try {
      // Discarded: the first run pays for cold caches and the server's JIT.
      await runStorm(topology, { ...baseline, observeMs: 1000 });
      // Alternate so a machine-wide slowdown hits both sides alike.
      for (let r = 0; r < repetitions; r++) {
        baselineRuns.push(summarize(await runStorm(topology, baseline)));
        stormRuns.push(summarize(await runStorm(topology, storm)));
      }
    } finally {
      await topology.lab.destroy();
    }
    const med = {
      storm: {
        allOpenMs: median(stormRuns, (r) => r.allOpenMs),
        eldP99Ms: median(stormRuns, (r) => r.eldP99Ms),
        eldMaxMs: median(stormRuns, (r) => r.eldMaxMs),
        worstPingLatenessMs: median(stormRuns, (r) => r.worstPingLatenessMs),
        blackholedFailMaxMs: median(stormRuns, (r) => r.blackholedFailMs.max),
      },
      baseline: {
        allOpenMs: median(baselineRuns, (r) => r.allOpenMs),
        eldP99Ms: median(baselineRuns, (r) => r.eldP99Ms),
        eldMaxMs: median(baselineRuns, (r) => r.eldMaxMs),
        worstPingLatenessMs: median(baselineRuns, (r) => r.worstPingLatenessMs),
      },
    };
    const ratios = {
      allOpen: ratio(med.storm.allOpenMs, med.baseline.allOpenMs),
      eldP99: ratio(med.storm.eldP99Ms, med.baseline.eldP99Ms),
      eldMax: ratio(med.storm.eldMaxMs, med.baseline.eldMaxMs),
    };
    const blackholeOvershoot = med.storm.blackholedFailMaxMs === undefined ? undefined : round(med.storm.blackholedFailMaxMs - TCP_TIMEOUT_MS, 1);
    return {
      summary: `70 open in ${med.storm.allOpenMs ?? '∞'} ms (alone ${med.baseline.allOpenMs ?? '∞'} ms, ×${ratios.allOpen ?? '?'}); `
        + `loop delay p99 ${med.storm.eldP99Ms} ms max ${med.storm.eldMaxMs} ms (alone ${med.baseline.eldP99Ms}/${med.baseline.eldMaxMs}); `
        + `worst ping lateness ${med.storm.worstPingLatenessMs ?? '?'} ms; blackholed fail at tcpTimeout+${blackholeOvershoot ?? '?'} ms`,
      config: { repetitions, observeMs, tcpTimeoutMs: TCP_TIMEOUT_MS, pingIntervalMs: PING_INTERVAL_MS, live: 70, refused: 15, blackholed: 15 },
      median: med,
      ratios,
      blackholedOvershootMs: blackholeOvershoot,
      runs: { storm: stormRuns, baseline: baselineRuns },
    };
  },
};

export default scenario;
