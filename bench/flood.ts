/**
 * Flood: one worker sends 1 KiB frames through the hub (transparent
 * `/u/sink`, a `raw` upstream) as fast as its socket takes them, for 10 s, to
 * an upstream that reads slowly (its socket paused, resumed in short bursts
 * worth 2 MiB/s). Meanwhile four other workers receive a free-running feed
 * through the same hub (`/u/feed`).
 *
 * Reported, not asserted: the hub's RSS growth over its baseline (the peak
 * during the flood minus the peak during the same relay load without it; the
 * target is the hub's worker→upstream buffer option plus baseline); whether
 * every frame the worker sent arrived upstream, in order (the upstream
 * checks sequence numbers, then reads at full speed until it has them all or
 * nothing more comes); the four workers' relay rate during the flood against
 * without it, and their losses.
 */
import { rssBytes, sleep, type Fixture } from './lib/procs.js';
import { RelayLab } from './lib/relay-lab.js';
import { throughput, type ThroughputRun } from './lib/runs.js';
import { round, type BenchResult, type BenchScenario } from './scenario.js';

const FLOOD_SIZE = 1024;
/** How fast the slow upstream reads: far below what a worker can send. */
const SINK_BYTES_PER_SEC = 2 * 1024 * 1024;
const RELAY_WORKERS = 4;

interface SinkCount {
  received: number;
  lastSeq: number;
  missing: number;
  outOfOrder: number;
  bytes: number;
  connections: number;
  open: number;
}

/** Peak RSS of a process, sampled every 100 ms until stopped. */
function rssSampler(pid: number): { stop(): number } {
  let peak = rssBytes(pid);
  const timer = setInterval(() => {
    peak = Math.max(peak, rssBytes(pid));
  }, 100);
  return {
    stop() {
      clearInterval(timer);
      return Math.max(peak, rssBytes(pid));
    },
  };
}

const mib = (bytes: number): number => round(bytes / 2 ** 20, 1)!;

const scenario: BenchScenario = {
  name: 'flood',
  description: 'one worker floods 1 KiB sends through the hub to a slowly reading upstream: hub RSS growth, every frame upstream in order, 4 other workers’ relay rate vs without the flood',
  async run({ quick }): Promise<BenchResult> {
    const floodMs = quick ? 2000 : 10_000;
    const warmMs = quick ? 300 : 500;
    const drainLimitMs = quick ? 20_000 : 120_000;
    const lab = new RelayLab();
    try {
      await lab.start();
      const sink: Fixture = await lab.group.fork('sink', { bytesPerSec: SINK_BYTES_PER_SEC }, 'slow upstream');
      const sinkPort = (sink.info as { port: number }).port;
      const hub = await lab.startHub({
        upstreams: {
          feed: { url: `ws://127.0.0.1:${lab.wsPort}/hub`, adapter: 'raw' },
          sink: { url: `ws://127.0.0.1:${sinkPort}/`, adapter: 'raw' },
        },
      });
      await lab.ensureWorkers(RELAY_WORKERS + 1);
      const system = lab.hubSystem();
      await lab.connect(system, RELAY_WORKERS);
      const flooder = lab.workers[RELAY_WORKERS]!;
      await flooder.call('connect', { name: 'sink', kind: 'ws', url: `ws+unix://${lab.hubSocket}:/u/sink` });

      // Without the flood: the relay's rate, and the hub's RSS under that load (the baseline).
      let sampler = rssSampler(hub.pid);
      const quiet: ThroughputRun = await throughput(lab, system, RELAY_WORKERS, FLOOD_SIZE, warmMs, floodMs - warmMs - 500, { mode: 'free' });
      const baselineRss = sampler.stop();

      // The flood, and the same relay run beside it.
      sampler = rssSampler(hub.pid);
      const flooding = flooder.call<{ sent: number; elapsedMs: number; waits: number; bufferedAtEnd: number; open: boolean }>('flood', { name: 'sink', size: FLOOD_SIZE, durationMs: floodMs }, floodMs + 60_000);
      const during: ThroughputRun = await throughput(lab, system, RELAY_WORKERS, FLOOD_SIZE, warmMs, floodMs - warmMs - 500, { mode: 'free' });
      const flood = await flooding;
      const peakRss = sampler.stop();
      const rssAtEnd = rssBytes(hub.pid);
      const hubAtEnd = await lab.hubCounters();

      // Then the upstream reads at full speed until it has every frame or nothing more comes for 3 s.
      await sink.call('unthrottle');
      const drainStart = performance.now();
      let count: SinkCount;
      let lastBytes = -1;
      let quietSince = performance.now();
      for (;;) {
        count = await sink.call<SinkCount>('count');
        if (count.received >= flood.sent) break;
        if (count.bytes !== lastBytes) quietSince = performance.now();
        lastBytes = count.bytes;
        if (performance.now() - quietSince > 3000 || performance.now() - drainStart > drainLimitMs) break;
        await sleep(100);
      }
      const drainMs = Math.round(performance.now() - drainStart);
      const hubAfter = await lab.hubCounters();
      const sinkUp = hubAfter.upstreams.find((u) => u.name === 'sink');
      const inOrder = count.received === flood.sent && count.missing === 0 && count.outOfOrder === 0;
      const relayRatio = quiet.deliveredPerSec > 0 ? round(during.deliveredPerSec / quiet.deliveredPerSec, 2) : undefined;
      const growth = mib(peakRss - baselineRss);
      console.error(`  flood: worker sent ${flood.sent} in ${flood.elapsedMs} ms; upstream got ${count.received} (missing ${count.missing}, out of order ${count.outOfOrder}, ${count.connections} connection(s)) after ${drainMs} ms drain; hub RSS +${growth} MiB; relay ×${relayRatio}`);
      return {
        summary: `hub RSS +${growth} MiB over baseline during the flood (peak ${mib(peakRss)} MiB); worker sent ${flood.sent} frames, upstream got ${count.received} ${inOrder ? 'all, in order' : `(missing ${flood.sent - count.received}, gaps ${count.missing}, out of order ${count.outOfOrder})`}; other workers' relay ×${relayRatio ?? '?'} of without the flood, lost ${during.lost}`,
        floodMs,
        frameBytes: FLOOD_SIZE,
        sinkBytesPerSec: SINK_BYTES_PER_SEC,
        rss: { baselineMiB: mib(baselineRss), peakMiB: mib(peakRss), atFloodEndMiB: mib(rssAtEnd), growthMiB: growth, bound: 'the hub’s worker→upstream buffer option + baseline (reported, not asserted)' },
        flooder: { ...flood, perSec: Math.round(flood.sent / (flood.elapsedMs / 1000)) },
        upstream: { ...count, drainMs, inOrder },
        hubSinkUpstream: { atFloodEnd: hubAtEnd.upstreams.find((u) => u.name === 'sink'), afterDrain: sinkUp },
        relay: { without: quiet, during, ratio: relayRatio },
      };
    } finally {
      await lab.destroy();
    }
  },
};

export default scenario;
