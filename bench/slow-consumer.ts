/**
 * Slow consumer: 16 workers on the hub, then one of them stops reading its
 * socket. The hub runs its default slow-consumer policy (drop-oldest, 4 MiB
 * per session), so the stalled session's frames are dropped and counted
 * while the other 15 go on. Measured for the 15: delivered msg/s (source
 * paced by their acks only) and latency p50/p99 at 10k msg/s, against the
 * all-healthy run just before; and the stalled session's drop count.
 */
import { LATENCY_RATE, LATENCY_SIZE } from './relay.js';
import { RelayLab, type LatencyRun, type ThroughputRun } from './lib/relay-lab.js';
import { round, type BenchResult, type BenchScenario } from './scenario.js';

const scenario: BenchScenario = {
  name: 'slow-consumer',
  description: 'one of 16 hub workers stops reading: the other 15’s throughput and p99 latency vs the all-healthy run; the stalled one’s drops counted',
  async run({ quick }): Promise<BenchResult> {
    const n = quick ? 4 : 16;
    const warmMs = quick ? 300 : 700;
    const measureMs = quick ? 1000 : 2500;
    const latencyMs = quick ? 1000 : 3000;
    const stalled = n - 1;
    const healthy = [...Array(n - 1).keys()];
    const lab = new RelayLab();
    let healthyRun: { tp: ThroughputRun; lat: LatencyRun };
    let stalledRun: { tp: ThroughputRun; lat: LatencyRun };
    let droppedByReason: Record<string, number> = {};
    let stalledDrops = 0;
    try {
      await lab.start();
      // The hub's defaults for the queue and policy: what a user gets.
      await lab.startHub({ slowConsumer: 'drop-oldest', maxQueueBytes: undefined });
      await lab.ensureWorkers(n);
      const system = lab.hubSystem();
      await lab.connect(system, n, LATENCY_SIZE);
      // Paced by the same 15 in both runs, so the only difference is the 16th reading or not.
      healthyRun = {
        tp: await lab.throughput(system, n, LATENCY_SIZE, warmMs, measureMs, healthy),
        lat: await lab.latency(system, n, LATENCY_SIZE, LATENCY_RATE, warmMs, latencyMs, healthy),
      };
      const before = await lab.hubCounters();
      await lab.workers[stalled]!.call('pause');
      stalledRun = {
        tp: await lab.throughput(system, n, LATENCY_SIZE, warmMs, measureMs, healthy),
        lat: await lab.latency(system, n, LATENCY_SIZE, LATENCY_RATE, warmMs, latencyMs, healthy),
      };
      const after = await lab.hubCounters();
      stalledDrops = after.dropped - before.dropped;
      droppedByReason = after.droppedByReason;
      await lab.workers[stalled]!.call('resume');
      await lab.disconnect(n);
    } finally {
      await lab.destroy();
    }
    const tpRatio = round(stalledRun.tp.consumersDeliveredPerSec / healthyRun.tp.consumersDeliveredPerSec, 2);
    const p99Ratio = stalledRun.lat.p99Us && healthyRun.lat.p99Us ? round(stalledRun.lat.p99Us / healthyRun.lat.p99Us, 2) : undefined;
    console.error(`  slow-consumer: healthy ${healthyRun.tp.consumersDeliveredPerSec} msg/s p99 ${healthyRun.lat.p99Us} µs; stalled ${stalledRun.tp.consumersDeliveredPerSec} msg/s p99 ${stalledRun.lat.p99Us} µs; drops ${stalledDrops}`);
    return {
      summary: `${n - 1} healthy of ${n} with one stalled: throughput ×${tpRatio}, p99 ×${p99Ratio ?? '?'} of all-healthy; stalled session dropped ${stalledDrops} (counted)`,
      workers: n,
      policy: 'drop-oldest',
      maxQueueBytes: 'default (4 MiB)',
      healthy: healthyRun,
      withStalled: stalledRun,
      ratios: { throughput: tpRatio, p99: p99Ratio },
      stalledDrops,
      droppedByReason,
    };
  },
};

export default scenario;
