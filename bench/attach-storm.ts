/**
 * Attach storm: 1,000 workers attaching to the hub at once (four processes
 * opening 250 sessions each, every handshake in flight together), with the
 * hub's default listener limits, against the same storm on a plain ws server.
 * Measured: time from the first attempt to the last session open, and every
 * refusal by reason (none is expected: 1,000 is the default
 * maxPendingHandshakes).
 */
import { percentile, round, type BenchResult, type BenchScenario } from './scenario.js';
import { SessionLab, type OpenResult, type Target } from './lib/sessions.js';

const HOLDERS = 4;
export const STORM_SESSIONS = 1000;

async function storms(target: Target, repetitions: number): Promise<OpenResult[]> {
  const lab = new SessionLab();
  const out: OpenResult[] = [];
  try {
    // The hub with its default listener limits: the storm meets what users get.
    await lab.start(target, HOLDERS, { server: {} });
    // Discarded: the first storm pays for cold code paths on both sides.
    await lab.open(100, 100);
    await lab.closeAll();
    for (let r = 0; r < repetitions; r++) {
      const res = await lab.open(STORM_SESSIONS, STORM_SESSIONS);
      out.push(res);
      console.error(`  attach-storm: ${target}: ${res.opened} open in ${res.allOpenMs} ms ${JSON.stringify(res.failures)}`);
      await lab.closeAll();
    }
  } finally {
    await lab.destroy();
  }
  return out;
}

const scenario: BenchScenario = {
  name: 'attach-storm',
  description: `${STORM_SESSIONS} workers attaching at once over the Unix socket: hub (default limits) vs a plain ws server`,
  async run({ quick }): Promise<BenchResult> {
    const repetitions = quick ? 1 : 5;
    const hub = await storms('hub', repetitions);
    const ws = await storms('ws', repetitions);
    const med = (runs: OpenResult[]): number | undefined => round(percentile(runs.map((r) => r.allOpenMs), 50), 1);
    const hubMs = med(hub);
    const wsMs = med(ws);
    const failed = (runs: OpenResult[]): number => runs.reduce((a, r) => a + STORM_SESSIONS - r.opened, 0);
    const ratio = hubMs !== undefined && wsMs ? round(hubMs / wsMs, 2) : undefined;
    return {
      summary: `${STORM_SESSIONS} at once: hub all open in ${hubMs} ms, plain ws ${wsMs} ms (×${ratio ?? '?'}); not opened: hub ${failed(hub)}, ws ${failed(ws)}`,
      repetitions,
      median: { hubAllOpenMs: hubMs, wsAllOpenMs: wsMs },
      ratio,
      notOpened: { hub: failed(hub), ws: failed(ws) },
      runs: { hub, ws },
    };
  },
};

export default scenario;
