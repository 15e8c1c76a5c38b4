/**
 * Slow consumer: 16 workers on the hub (every option at its default: the
 * drop-oldest policy, the default queue), the source free-running; then one
 * worker stops reading its socket. Measured for the other 15: delivered msg/s
 * and their losses, and latency p50/p99 at 10k msg/s, against the all-healthy
 * run just before (the same 15 workers' msg/s there: a total over all 16 would
 * make the others look ×15/16 slower when nothing changed for them). The
 * stalled phase's measurement starts 700 ms after the pause, inside the hub's
 * `slowAfterMs` (1 s by default, src/hub/pacer.ts), during which the stalled
 * session still holds the upstream's reading: part of what the others meet.
 * For the stalled one: what it never got (from its sequence numbers, once it
 * reads again) against what the hub counted as dropped — every drop must be
 * counted.
 */
import { LATENCY_RATE, LATENCY_SIZE } from './relay.js';
import { sleep } from './lib/procs.js';
import { RelayLab } from './lib/relay-lab.js';
import { latency, throughput, type LatencyRun, type ThroughputRun } from './lib/runs.js';
import { round, type BenchResult, type BenchScenario } from './scenario.js';

interface Ledger {
  received: number;
  lastSeq: number;
  gaps: number;
}

const scenario: BenchScenario = {
  name: 'slow-consumer',
  description: 'one of 16 hub workers stops reading (free-running source, hub defaults): the other 15’s throughput, losses and p99 vs the all-healthy run; the stalled one’s losses against the hub’s drop count',
  async run({ quick }): Promise<BenchResult> {
    const n = quick ? 4 : 16;
    const warmMs = quick ? 300 : 700;
    const measureMs = quick ? 1000 : 2500;
    const latencyMs = quick ? 1000 : 3000;
    const stalled = n - 1;
    const lab = new RelayLab();
    let healthyRun: { tp: ThroughputRun; lat: LatencyRun };
    let stalledRun: { tp: ThroughputRun; lat: LatencyRun };
    let hubDropped = 0;
    let droppedByReason: Record<string, number> = {};
    let stalledLost = 0;
    let stalledGaps = 0;
    /** The all-healthy run's msg/s of the workers that stay healthy (the stalled one's left out). */
    let othersHealthyPerSec = 0;
    try {
      await lab.start();
      await lab.startHub();
      await lab.ensureWorkers(n);
      const system = lab.hubSystem();
      await lab.connect(system, n);
      healthyRun = {
        tp: await throughput(lab, system, n, LATENCY_SIZE, warmMs, measureMs, { mode: 'free', perWorker: true }),
        lat: await latency(lab, system, n, LATENCY_SIZE, LATENCY_RATE, warmMs, latencyMs, { mode: 'free' }),
      };
      othersHealthyPerSec = healthyRun.tp.perWorkerPerSec!.reduce((a, r, i) => (i === stalled ? a : a + r), 0);
      // The stalled worker keeps one ledger over both runs: from here to the last message of the second.
      const firstSeq = (await lab.wsSource.call<number>('seq')) + 1;
      await lab.workers[stalled]!.call('reset', { system: 'hub', firstSeq, ackEvery: 0 });
      const before = await lab.hubCounters();
      await lab.workers[stalled]!.call('pause');
      const keep = { mode: 'free' as const, keep: [stalled] };
      stalledRun = {
        tp: await throughput(lab, system, n, LATENCY_SIZE, warmMs, measureMs, keep),
        lat: await latency(lab, system, n, LATENCY_SIZE, LATENCY_RATE, warmMs, latencyMs, keep),
      };
      const lastSeq = await lab.wsSource.call<number>('seq');
      await lab.workers[stalled]!.call('resume');
      // It reads what its socket and the hub still hold for it.
      let ledger: Ledger;
      let last = -1;
      for (;;) {
        ledger = await lab.workers[stalled]!.call<Ledger>('ledger');
        if (ledger.lastSeq >= lastSeq || ledger.received === last) break;
        last = ledger.received;
        await sleep(500);
      }
      stalledLost = lastSeq - firstSeq + 1 - ledger.received;
      stalledGaps = ledger.gaps;
      const after = await lab.hubCounters();
      hubDropped = after.dropped - before.dropped;
      droppedByReason = after.droppedByReason;
      await lab.disconnect(n);
    } finally {
      await lab.destroy();
    }
    const healthyLost = stalledRun.tp.lost + stalledRun.lat.lost;
    const tpRatio = round(stalledRun.tp.consumersDeliveredPerSec / othersHealthyPerSec, 2);
    // The hub's CPU per delivery: a stalled session's backlog drops one message per message that arrives, which must
    // stay cheap (a head left behind in the backlog once made it cost ×1.9 the all-healthy CPU per delivery).
    const h = healthyRun.tp.fanoutCpuPerM;
    const st = stalledRun.tp.fanoutCpuPerM;
    const cpuRatio = h && st ? round(st / h, 2) : undefined;
    const p99Ratio = stalledRun.lat.p99Us && healthyRun.lat.p99Us ? round(stalledRun.lat.p99Us / healthyRun.lat.p99Us, 2) : undefined;
    // Every message a worker missed is one the hub counted as dropped (the others' losses included, if any).
    const accounted = stalledLost + healthyLost === hubDropped;
    console.error(`  slow-consumer: healthy ${othersHealthyPerSec} msg/s (the ${n - 1} others) p99 ${healthyRun.lat.p99Us} µs; with one stalled ${stalledRun.tp.consumersDeliveredPerSec} msg/s p99 ${stalledRun.lat.p99Us} µs, the others lost ${healthyLost}; stalled lost ${stalledLost}, hub dropped ${hubDropped}`);
    return {
      summary: `${n - 1} healthy of ${n} with one stalled: throughput ×${tpRatio}, p99 ×${p99Ratio ?? '?'}, hub CPU per delivery ×${cpuRatio ?? '?'} of all-healthy, the others lost ${healthyLost} (all-healthy run: ${healthyRun.tp.lost + healthyRun.lat.lost}); stalled worker missed ${stalledLost}, hub counted ${hubDropped} dropped (${accounted ? 'all accounted' : 'NOT accounted'})`,
      workers: n,
      source: 'free-running',
      policy: 'default (drop-oldest)',
      maxQueueBytes: 'default',
      healthy: healthyRun,
      othersHealthyPerSec,
      withStalled: stalledRun,
      ratios: { throughput: tpRatio, p99: p99Ratio, hubCpuPerDelivery: cpuRatio },
      healthyLost,
      stalledLost,
      stalledGaps,
      hubDropped,
      accounted,
      droppedByReason,
    };
  },
};

export default scenario;
