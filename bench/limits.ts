/**
 * Physical limits: length-prefixed messages between two processes over a Unix
 * socket and over loopback TCP, no WebSocket framing, no fan-out — the
 * ceiling for any relay on this machine. Two writers: one `write()` per
 * message, and batches of {@link BATCH} messages per cork/uncork (one
 * writev), which is how the hub writes.
 */
import { join } from 'node:path';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { ProcessGroup, sleep } from './lib/procs.js';
import { round, type BenchResult, type BenchScenario } from './scenario.js';

export const BATCH = 64;

interface LimitRun {
  transport: 'unix' | 'tcp';
  writes: 'batched' | 'single';
  size: number;
  /** Median over the repetitions. */
  messagesPerSec: number;
  mibPerSec: number;
  samples: number[];
}

const scenario: BenchScenario = {
  name: 'limits',
  description: `raw length-prefixed messages, process to process, over a Unix socket and loopback TCP, batched (${BATCH}/writev) and one write each: the ceiling for any relay`,
  async run({ quick }): Promise<BenchResult> {
    const sizes = quick ? [1024] : [64, 1024, 65536];
    const warmMs = quick ? 300 : 500;
    const measureMs = quick ? 1000 : 1500;
    // Loopback throughput swings with whatever else the machine runs: the median of three.
    const repetitions = quick ? 1 : 3;
    const group = new ProcessGroup();
    const dir = mkdtempSync(join(tmpdir(), 'wshub-bench-limits-'));
    const runs: LimitRun[] = [];
    try {
      const writer = await group.fork('raw-pipe', {}, 'raw writer');
      let n = 0;
      for (const transport of ['unix', 'tcp'] as const) {
        for (const size of sizes) {
          for (const writes of ['batched', 'single'] as const) {
            const rates: Array<{ messages: number; bytes: number }> = [];
            for (let rep = 0; rep < repetitions; rep++) {
              // A fresh reader per run: its counters and socket start clean.
              const path = join(dir, `r${n++}.sock`);
              const reader = await group.fork('raw-pipe', { role: 'reader', transport, path }, 'raw reader');
              const port = (reader.info as { port?: number }).port;
              await writer.call('start', { transport, path, port, size, batch: writes === 'batched' ? BATCH : 1 });
              await sleep(warmMs);
              const c0 = await reader.call<{ messages: number; bytes: number }>('count');
              const t0 = performance.now();
              await sleep(measureMs);
              const c1 = await reader.call<{ messages: number; bytes: number }>('count');
              const seconds = (performance.now() - t0) / 1000;
              await writer.call('stop');
              await group.kill(reader.proc);
              rates.push({ messages: (c1.messages - c0.messages) / seconds, bytes: (c1.bytes - c0.bytes) / seconds });
            }
            rates.sort((a, b) => a.messages - b.messages);
            const mid = rates[Math.floor(rates.length / 2)]!;
            const run: LimitRun = {
              transport,
              writes,
              size,
              messagesPerSec: Math.round(mid.messages),
              mibPerSec: round(mid.bytes / 2 ** 20, 1)!,
              samples: rates.map((r) => Math.round(r.messages)),
            };
            runs.push(run);
            console.error(`  limits: ${transport} ${size} B ${writes}: ${run.messagesPerSec} msg/s (${run.mibPerSec} MiB/s)`);
          }
        }
      }
    } finally {
      await group.killAll();
      rmSync(dir, { recursive: true, force: true });
    }
    const get = (t: string, w: string, s: number): number | undefined => runs.find((r) => r.transport === t && r.writes === w && r.size === s)?.messagesPerSec;
    const unixBatched1k = get('unix', 'batched', 1024);
    return {
      summary: `1 KiB: unix batched ${unixBatched1k} msg/s, unix single ${get('unix', 'single', 1024)}, tcp batched ${get('tcp', 'batched', 1024)}, tcp single ${get('tcp', 'single', 1024)}`,
      batch: BATCH,
      repetitions,
      runs,
      unixBatched1k,
    };
  },
};

export default scenario;
