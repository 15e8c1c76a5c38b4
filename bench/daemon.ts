/**
 * Daemon: the relay's throughput targets measured on the hub as a user runs
 * it — `wshub serve` from the packed package (`npm pack`, `npm install` of the
 * tarball into an empty project; bench/lib/daemon.ts), started through its
 * launcher with a config naming only the upstream, the socket and the status
 * listener (every hub option at its default), fed by the same free-running ws
 * source. The relay scenario measures the same `Hub` hosted in a bench
 * fixture; this one answers whether what a user installs and starts behaves
 * the same.
 *
 * Each cell of the relay's targets (1 × 1 KiB and 1 × 64 KiB against direct
 * ws, the latter with the byte pipe and the fed fan-out beside it; 16 × 1
 * KiB against the pre-framed ceiling and the fed fan-out, twice: with the
 * ws source on a CPU of its own, where the target is read against the faster
 * of the two, and on the same CPUs as the rest, reported) runs in rounds,
 * its systems back to back in an order rotating from round to round, and a
 * ratio is the median of the rounds' own ratios (bench/relay.ts says why).
 * Every process here starts cold — the daemon, the references and the
 * workers: the first run of any of them after a start cost the workers 1.3 to
 * 1.6 × their later CPU per message (alternating runs, 16 × 1 KiB), so
 * whichever system went first in the first round lost against the rest. Each
 * cell therefore begins with one uncounted round of all its systems; its
 * losses count. Each run's fan-out CPU seconds per million deliveries is kept
 * beside its rate: what the daemon itself costs per message, whatever the
 * rest of the machine did (round to round it moves as much as the rate:
 * daemon / fed ×1.35–1.77 in one run, while the rate ratio moved 0.83–1.02).
 * Losses are counted at the workers from sequence numbers, and the daemon's
 * own drop counters are read from its `/status` at the end.
 */
import { daemonStatus, installPacked, startDaemon, waitForDaemon, type Daemon } from './lib/daemon.js';
import { RelayLab, type System, type SystemName } from './lib/relay-lab.js';
import { throughput } from './lib/runs.js';
import { TARGETS, eachRoundRatio, vsFasterReference } from './relay.js';
import type { BenchResult, BenchScenario } from './scenario.js';

type Name = 'daemon' | SystemName;

interface Cell {
  workers: number;
  size: number;
  /** The daemon first; each ratio is the daemon against one of the others. */
  systems: Name[];
  /** The ws source on a CPU of its own, the rest on the others (RelayLab.isolateSource; relay.ts TARGETS says why). */
  sourceCpu?: boolean;
}

const FULL = { rounds: 7, warmMs: 500, measureMs: 2000, cells: [
  { workers: 1, size: 1024, systems: ['daemon', 'ws'] },
  // With the references that say what any extra hop keeps of direct here: the byte pipe, and a relay that only parses and re-frames.
  { workers: 1, size: 65536, systems: ['daemon', 'ws', 'pipe', 'fed'] },
  { workers: 16, size: 1024, systems: ['daemon', 'ceiling', 'fed'] },
  { workers: 16, size: 1024, systems: ['daemon', 'ceiling', 'fed'], sourceCpu: true },
] as Cell[] };
/** Quick mode: one round of one cell, the source apart — the code path (pack, install, serve, CPU placement), not a target. */
const QUICK = { rounds: 1, warmMs: 300, measureMs: 1000, cells: [{ workers: 4, size: 1024, systems: ['daemon', 'ceiling', 'fed'], sourceCpu: true }] as Cell[] };

interface Status {
  pid: number;
  upstreams: Array<{ client: { state: string } }>;
  connections: unknown[];
  dropped: Record<string, number>;
}

interface CellResult extends Cell {
  rounds: Array<Partial<Record<Name, number>>>;
  /** CPU seconds per million deliveries of each system's fan-out process (the daemon's own for the daemon), per round. */
  cpuPerM: Array<Partial<Record<Name, number>>>;
  lost: Partial<Record<Name, number>>;
  /** The daemon against each other system (`best`: the faster of the ceiling and fed, each round): the median of the rounds' ratios, and each round's. */
  ratios: Partial<Record<Name | 'best', { median?: number; each: Array<number | undefined> }>>;
}

function daemonSystem(lab: RelayLab, d: Daemon): System<Name> {
  return { name: 'daemon', fanoutPid: d.pid, source: lab.wsSource, target: 'hub', sourceClients: () => 1, connect: { kind: 'ws', url: `ws+unix://${d.socket}:/u/feed` } };
}

const scenario: BenchScenario = {
  name: 'daemon',
  description: 'the relay targets on `wshub serve` from the packed package (npm pack + npm install), every option at its default, free-running source: vs direct ws, the pre-framed ceiling and the fed fan-out, alternating rounds',
  async run({ quick }): Promise<BenchResult> {
    const plan = quick ? QUICK : FULL;
    const log = (s: string): void => console.error(`  daemon: ${s}`);
    const lab = new RelayLab();
    const cells: CellResult[] = [];
    try {
      await lab.start();
      const t0 = Date.now();
      const bin = installPacked(lab.dir);
      log(`packed and installed in ${Date.now() - t0} ms: ${bin}`);
      const daemon = await startDaemon(lab.group, lab.dir, 'daemon', { upstreams: { feed: { url: `ws://127.0.0.1:${lab.wsPort}/hub`, adapter: 'raw' } } }, bin);
      await waitForDaemon<Status>(daemon, (s) => s.upstreams[0]?.client.state === 'open', 'the daemon\'s upstream to open');
      await lab.ensureWorkers(Math.max(...plan.cells.map((c) => c.workers)));
      for (const cell of plan.cells) {
        const n = cell.workers;
        const systems = new Map<Name, System<Name>>();
        for (const name of cell.systems) {
          const system = name === 'daemon' ? daemonSystem(lab, daemon) : ((await lab.system(name)) as System<Name>);
          await lab.connect(system, n);
          systems.set(name, system);
        }
        const result: CellResult = { ...cell, rounds: [], cpuPerM: [], lost: {}, ratios: {} };
        if (cell.sourceCpu) lab.isolateSource([daemon.pid]);
        try {
          // Round 0 warms every process up: its rates are not counted, its losses are.
          for (let k = 0; k <= plan.rounds; k++) {
            const rates: Partial<Record<Name, number>> = {};
            const cpu: Partial<Record<Name, number>> = {};
            for (let j = 0; j < cell.systems.length; j++) {
              const name = cell.systems[(j + k) % cell.systems.length]!;
              const t = await throughput(lab, systems.get(name)!, n, cell.size, plan.warmMs, plan.measureMs, { mode: 'free' });
              rates[name] = t.deliveredPerSec;
              if (t.fanoutCpuPerM !== undefined) cpu[name] = t.fanoutCpuPerM;
              result.lost[name] = (result.lost[name] ?? 0) + t.lost;
            }
            const line = `N=${n} ${cell.size} B: ${Object.entries(rates).map(([s, v]) => `${s} ${v}`).join(', ')} msg/s`;
            if (k === 0) {
              log(`warm-up ${line}`);
              continue;
            }
            result.rounds.push(rates);
            result.cpuPerM.push(cpu);
            log(`round ${k}/${plan.rounds} ${line}${cell.sourceCpu ? ' (source on its own CPU)' : ''}`);
          }
        } finally {
          if (cell.sourceCpu) lab.shareCpus([daemon.pid]);
          await lab.disconnect(n);
        }
        for (const other of cell.systems.slice(1)) result.ratios[other] = eachRoundRatio(result.rounds, 'daemon', other);
        if (cell.sourceCpu) result.ratios.best = vsFasterReference(result.rounds, 'daemon');
        cells.push(result);
      }
      const status = await daemonStatus<Status>(daemon);
      return summarize(cells, status.dropped);
    } finally {
      await lab.destroy();
    }
  },
};

function summarize(cells: CellResult[], daemonDropped: Record<string, number>): BenchResult {
  const cell = (n: number, size: number, sourceCpu = false): CellResult | undefined => cells.find((c) => c.workers === n && c.size === size && (c.sourceCpu ?? false) === sourceCpu);
  const ratio = (n: number, size: number, other: Name | 'best', sourceCpu = false): number | undefined => cell(n, size, sourceCpu)?.ratios[other]?.median;
  // The daemon's CPU per delivery against the fed fan-out's (a relay that only parses and re-frames).
  const cpuVsFed = (sourceCpu: boolean): number | undefined => {
    const c = cell(16, 1024, sourceCpu);
    return c ? eachRoundRatio(c.cpuPerM, 'daemon', 'fed').median : undefined;
  };
  // What the extra hop alone keeps of direct at 1 × 64 KiB: the byte pipe against direct ws.
  const cell64 = cell(1, 65536);
  const pipeVsDirect = cell64 ? eachRoundRatio(cell64.rounds, 'pipe', 'ws').median : undefined;
  const targets = {
    // As the relay's: the source on a CPU of its own, against the faster of the ceiling and fed; the shared-CPU cell reported.
    daemonVsCeiling16x1k: {
      ratio: ratio(16, 1024, 'best', true) ?? ratio(16, 1024, 'ceiling'),
      target: TARGETS.hubVsCeiling16x1k,
      vsCeilingAlone: ratio(16, 1024, 'ceiling', true),
      daemonVsFed: ratio(16, 1024, 'fed', true),
      cpuVsFed: cpuVsFed(true),
      sharedCpus: { ratio: ratio(16, 1024, 'ceiling'), daemonVsFed: ratio(16, 1024, 'fed'), cpuVsFed: cpuVsFed(false) },
    },
    daemonVsDirect1x1k: { ratio: ratio(1, 1024, 'ws'), target: TARGETS.hubVsDirect1x1k },
    daemonVsDirect1x64k: { ratio: ratio(1, 65536, 'ws'), target: TARGETS.hubVsDirect1x64k, pipeVsDirect, daemonVsPipe: ratio(1, 65536, 'pipe'), daemonVsFed: ratio(1, 65536, 'fed') },
  };
  const lost = cells.reduce((a, c) => a + (c.lost.daemon ?? 0), 0);
  const dropped = Object.values(daemonDropped).reduce((a, b) => a + b, 0);
  const parts = cells.map((c) => `${c.workers} × ${c.size} B${c.sourceCpu ? ' (source apart)' : ''}: ${c.systems.slice(1).map((o) => `×${c.ratios[o]?.median ?? '?'} ${o}`).join(', ')}`);
  return {
    summary: `wshub serve from the packed package, medians of ${cells[0]?.rounds.length ?? 0} alternating rounds: ${parts.join('; ')}; lost ${lost}, daemon dropped ${dropped}`,
    cells,
    targets,
    lost,
    daemonDropped,
  };
}

export default scenario;
