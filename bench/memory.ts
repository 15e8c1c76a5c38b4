/**
 * Memory: RSS per idle attached session, hub against a plain ws server (the
 * baseline: what holding the same connections costs with ws alone), at 1,000
 * and 10,000 sessions held by four client processes over a Unix socket.
 * Per session = (RSS after GC with the sessions − RSS after GC before them) /
 * sessions; both processes first attach and drop a few hundred sessions so
 * one-time costs (JIT, pools) are not charged to the sessions.
 */
import { round, type BenchResult, type BenchScenario } from './scenario.js';
import { SessionLab, type Target } from './lib/sessions.js';
import { sleep } from './lib/procs.js';

const HOLDERS = 4;
const CONCURRENCY = 100;
const WARMUP_SESSIONS = 400;
export const TARGET_BYTES_PER_SESSION = 16 * 1024;

interface MemoryPoint {
  target: Target;
  sessions: number;
  baseRssMiB: number;
  rssMiB: number;
  bytesPerSession: number;
  failures: Record<string, number>;
}

async function measure(target: Target, counts: number[]): Promise<MemoryPoint[]> {
  const lab = new SessionLab();
  const points: MemoryPoint[] = [];
  try {
    await lab.start(target, HOLDERS);
    await lab.open(WARMUP_SESSIONS, CONCURRENCY);
    await lab.closeAll();
    await sleep(300);
    const base = await lab.rssAfterGc();
    let held = 0;
    for (const count of counts) {
      const r = await lab.open(count - held, CONCURRENCY);
      held += r.opened;
      if (held !== count) throw new Error(`${target}: only ${held} of ${count} sessions opened (${JSON.stringify(r.failures)})`);
      await lab.waitConnections(count);
      await sleep(500);
      const rss = await lab.rssAfterGc();
      points.push({ target, sessions: count, baseRssMiB: round(base / 2 ** 20, 1)!, rssMiB: round(rss / 2 ** 20, 1)!, bytesPerSession: Math.round((rss - base) / count), failures: r.failures });
      console.error(`  memory: ${target} ${count} sessions: ${Math.round((rss - base) / count)} B each`);
    }
  } finally {
    await lab.destroy();
  }
  return points;
}

const scenario: BenchScenario = {
  name: 'memory',
  description: 'RSS per idle attached session at 1,000 and 10,000 sessions: hub vs a plain ws server holding the same connections',
  async run({ quick }): Promise<BenchResult> {
    const counts = quick ? [1000] : [1000, 10_000];
    const hub = await measure('hub', counts);
    const ws = await measure('ws', counts);
    const ratios = hub.map((h) => {
      const w = ws.find((x) => x.sessions === h.sessions);
      return { sessions: h.sessions, hubBytes: h.bytesPerSession, wsBytes: w?.bytesPerSession, ratio: w && w.bytesPerSession > 0 ? round(h.bytesPerSession / w.bytesPerSession, 2) : undefined };
    });
    const top = ratios[ratios.length - 1]!;
    return {
      summary: `${top.sessions} idle sessions: hub ${top.hubBytes} B each, plain ws ${top.wsBytes} B (×${top.ratio ?? '?'}); target < ${TARGET_BYTES_PER_SESSION} B`,
      holders: HOLDERS,
      points: [...hub, ...ws],
      ratios,
      target: { bytesPerSession: TARGET_BYTES_PER_SESSION, sessions: top.sessions, hubBytes: top.hubBytes, met: top.hubBytes < TARGET_BYTES_PER_SESSION },
    };
  },
};

export default scenario;
