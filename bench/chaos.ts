/**
 * Chaos (issue 12): 16 workers on the hub's transparent `/u/feed` (a `raw`
 * upstream sending 2,000 msg/s), the upstream SIGKILLed 50 times (quick: 5)
 * and restarted on the same port, waves of worker SIGKILLs (4 at a time,
 * replaced), and a worker flooding sends while the upstream is being killed.
 * At the end, with the upstream up again and everything settled, the hub's
 * ledger (stats.ledger, read and checked in lib/ledger.ts) is printed per
 * upstream and per session, and the scenario fails when anything is
 * unaccounted. Beside it, what can be checked from outside: surviving workers
 * got no duplicate and nothing out of order; what the hub says it handed to
 * them is what they got; every frame the flooder sent was read by the hub.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EPOCH_SIZE } from './fixtures/message.js';
import { checkLedger } from './lib/ledger.js';
import { ProcessGroup, sleep, type Fixture } from './lib/procs.js';
import type { BenchResult, BenchScenario } from './scenario.js';

const WORKERS = 16;
const WAVE = 4;
const RATE = 2000;
const SIZE = 512;
const FLOOD_SIZE = 1024;

interface Plan {
  kills: number;
  /** Time the upstream stays up between kills. */
  upMs: number;
  /** A wave of worker kills every this many upstream kills. */
  waveEvery: number;
  /** A flood runs across every this-many-th upstream kill. */
  floodEvery: number;
  floodMs: number;
}

const FULL: Plan = { kills: 50, upMs: 400, waveEvery: 10, floodEvery: 10, floodMs: 1500 };
const QUICK: Plan = { kills: 5, upMs: 300, waveEvery: 3, floodEvery: 2, floodMs: 800 };

interface WorkerLedger {
  received: number;
  outOfOrder: number;
  missing: number;
  gaps: number;
  epochs: number;
  stray: number;
}

interface UpstreamCount {
  sent: number;
  received: number;
  outOfOrder: number;
}

interface ConnectionStats {
  id: string;
  messagesOut: number;
  messagesIn: number;
  dropped: Record<string, number>;
}

const scenario: BenchScenario = {
  name: 'chaos',
  description: '16 workers; the upstream SIGKILLed 50 times, waves of worker SIGKILLs, a worker flooding sends meanwhile: the hub’s ledger per upstream and per session must account for every message',
  async run({ quick }): Promise<BenchResult> {
    const plan = quick ? QUICK : FULL;
    const group = new ProcessGroup();
    const dir = mkdtempSync(join(tmpdir(), 'wshub-chaos-'));
    const hubSocket = join(dir, 'hub.sock');
    const log = (s: string): void => console.error(`  chaos: ${s}`);
    const problems: string[] = [];
    try {
      let epoch = 1;
      let upstream = await group.fork('chaos-upstream', { port: 0, epoch, rate: RATE, size: SIZE }, 'upstream 1');
      const port = (upstream.info as { port: number }).port;
      const hub = await group.forkHub(
        {
          listen: hubSocket,
          logLevel: 'silent',
          // Quick reconnects, so 50 kills take a minute, not the default backoff's growing waits.
          // `hold`, not the raw adapter's default `close`: the ledgers checked here are those of sessions that
          // live across many upstream deaths. Under `close` each reported outage would end every session (1012)
          // and refuse the wave's replacements with 503 — that policy has its own tests (test/hub/attach.test.ts, reload.test.ts).
          upstreams: {
            feed: { url: `ws://127.0.0.1:${port}/`, adapter: 'raw', onUpstreamLoss: 'hold', backoff: { minDelayMs: 20, maxDelayMs: 200, minUptimeMs: 100 } },
          },
        },
      );
      const url = `ws+unix://${hubSocket}:/u/feed`;
      let next = 0;
      const spawn = async (): Promise<Fixture> => {
        const w = await group.fork('worker', { index: next }, `worker ${next++}`);
        // The ledger first, so the first message is counted.
        await w.call('reset', { system: 'hub', firstSeq: 1, ackEvery: 0, epochSize: EPOCH_SIZE });
        await w.call('connect', { name: 'hub', kind: 'ws', url });
        return w;
      };
      const workers = await Promise.all(Array.from({ length: WORKERS }, spawn));
      const flooder = workers[WORKERS - 1]!;
      let floodSent = 0;
      let flooding: Promise<void> | undefined;
      // What each incarnation received from the flood, from its last poll before it died (a lower bound).
      let upstreamReceived = 0;
      let last: UpstreamCount = { sent: 0, received: 0, outOfOrder: 0 };
      let upstreamSent = 0;
      let upstreamOutOfOrder = 0;
      const poll = setInterval(() => {
        upstream.call<UpstreamCount>('count', undefined, 1000).then((c) => (last = c), () => undefined);
      }, 100);
      const waitOpen = async (): Promise<void> => {
        const deadline = Date.now() + 15_000;
        for (;;) {
          const s = await hub.call<{ upstreams: Array<{ state: string }> }>('stats');
          if (s.upstreams.every((u) => u.state === 'open')) return;
          if (Date.now() > deadline) throw new Error(`the hub did not reopen the upstream within 15 s after kill ${epoch - 1}`);
          await sleep(10);
        }
      };
      let workerKills = 0;
      try {
        for (let k = 1; k <= plan.kills; k++) {
          if (k % plan.floodEvery === 0 && !flooding) {
            flooding = flooder.call<{ sent: number }>('flood', { name: 'hub', size: FLOOD_SIZE, durationMs: plan.floodMs }, plan.floodMs + 30_000).then((r) => {
              floodSent += r.sent;
              flooding = undefined;
            });
          }
          await sleep(plan.upMs);
          // The upstream dies with whatever it had in its buffers.
          last = await upstream.call<UpstreamCount>('count', undefined, 1000).catch(() => last);
          await group.kill(upstream.proc);
          upstreamReceived += last.received;
          upstreamSent += last.sent;
          upstreamOutOfOrder += last.outOfOrder;
          last = { sent: 0, received: 0, outOfOrder: 0 };
          if (k % plan.waveEvery === 0) {
            const victims = [...workers.keys()].filter((i) => workers[i] !== flooder).sort(() => Math.random() - 0.5).slice(0, WAVE);
            await Promise.all(victims.map((i) => group.kill(workers[i]!.proc)));
            workerKills += victims.length;
            const fresh = await Promise.all(victims.map(() => spawn()));
            victims.forEach((i, j) => (workers[i] = fresh[j]!));
          }
          await sleep(Math.random() * 200);
          epoch++;
          upstream = await group.fork('chaos-upstream', { port, epoch, rate: RATE, size: SIZE }, `upstream ${epoch}`);
          await waitOpen();
          if (k % 10 === 0 || quick) log(`kill ${k}/${plan.kills} done`);
        }
        // A flood may still be running: it ends; the feed stops (its last incarnation stays up to read what
        // the hub still sends it); then the hub settles — nothing more handed out, read or queued.
        while (flooding) await flooding;
        await upstream.call('stopFeed');
        let prev = '';
        for (let quiet = 0; quiet < 5; ) {
          await sleep(200);
          const s = await hub.call<{ queuedBytes: number; messagesOut: number; upstreams: Array<{ messagesOut: number; queue: { messages: number } }> }>('stats');
          const now = JSON.stringify([s.messagesOut, s.queuedBytes, s.upstreams.map((u) => [u.messagesOut, u.queue.messages])]);
          quiet = now === prev && s.queuedBytes === 0 ? quiet + 1 : 0;
          prev = now;
        }
      } finally {
        clearInterval(poll);
      }
      last = await upstream.call<UpstreamCount>('count', undefined, 1000).catch(() => last);
      upstreamReceived += last.received;
      upstreamSent += last.sent;
      upstreamOutOfOrder += last.outOfOrder;

      const snapshot = await hub.call<{ connections: ConnectionStats[]; dropped: Record<string, number> }>('snapshot');
      // The worker → upstream side as the hub's upstream client counts it today (before any ledger).
      const feed = (await hub.call<{ upstreams: Array<{ messagesOut: number; dropped: Record<string, number>; queue: { messages: number }; connections: number }> }>('stats')).upstreams[0];
      const ledgers = await Promise.all(workers.map((w) => w.call<WorkerLedger>('ledger')));
      const received = ledgers.reduce((a, l) => a + l.received, 0);
      const outOfOrder = ledgers.reduce((a, l) => a + l.outOfOrder, 0);
      const gaps = ledgers.reduce((a, l) => a + l.missing, 0);
      const handed = snapshot.connections.reduce((a, c) => a + c.messagesOut, 0);
      const readFromWorkers = snapshot.connections.reduce((a, c) => a + c.messagesIn, 0);
      if (outOfOrder > 0) problems.push(`workers got ${outOfOrder} messages duplicated or out of order`);
      if (handed !== received) problems.push(`the hub says it handed ${handed} messages to the ${workers.length} attached workers; they got ${received}`);
      if (readFromWorkers !== floodSent) problems.push(`the flooder sent ${floodSent} frames; the hub read ${readFromWorkers}`);
      if (upstreamOutOfOrder > 0) problems.push(`the upstreams got ${upstreamOutOfOrder} flood frames out of order`);

      const check = checkLedger(snapshot);
      problems.push(...check.problems);
      log(`ledger (stats.ledger):${check.lines.length ? '' : ' none'}`);
      for (const line of check.lines) console.error(`    ${line}`);
      log(`${plan.kills} upstream kills, ${workerKills} worker kills; upstreams sent ${upstreamSent}, workers got ${received} (gaps ${gaps}), hub dropped ${JSON.stringify(snapshot.dropped)}; flooder sent ${floodSent}, the hub read ${readFromWorkers}, its upstream client sent ${feed?.messagesOut} (dropped ${JSON.stringify(feed?.dropped)}, queued ${feed?.queue.messages}) over ${feed?.connections} connections, upstreams got ≥ ${upstreamReceived}`);
      for (const p of problems) log(`UNACCOUNTED: ${p}`);
      const result: BenchResult = {
        summary: `${plan.kills} upstream kills, ${workerKills} worker kills, flood of ${floodSent} frames: ${problems.length === 0 ? 'every message accounted for' : `${problems.length} problem(s): ${problems[0]}`}`,
        plan,
        upstreamKills: plan.kills,
        workerKills,
        upstreamSent,
        workersReceived: received,
        workersGaps: gaps,
        hubHanded: handed,
        hubDropped: snapshot.dropped,
        flood: { sent: floodSent, readByHub: readFromWorkers, hubUpstreamClient: feed, upstreamsReceivedAtLeast: upstreamReceived },
        ledger: { ok: check.ok, totals: check.totals, inFlight: check.inFlight, lines: check.lines },
        problems,
      };
      if (problems.length > 0) throw new Error(`chaos: ${problems.length} thing(s) unaccounted: ${problems.join('; ')}`);
      return result;
    } finally {
      await group.killAll();
      rmSync(dir, { recursive: true, force: true });
    }
  },
};

export default scenario;
