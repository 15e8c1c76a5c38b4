/**
 * Flow control across hubs: a free-running upstream (it writes as fast as TCP
 * lets it, as real feeds do), a holder hub and a following hub on a real
 * nats-server. A worker on the follower stops reading for a while (well
 * under `slowAfterMs`, so it is behind, not slow): its hub tells the holder,
 * the holder stops reading the upstream until the worker caught up, and no
 * message is dropped anywhere — the same promise a single hub makes
 * (relay.test.ts), kept across NATS.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { NatsServer } from '../cluster/helpers.js';
import { eventually, runCleanup, startTestHub, upstreamOf, Worker, type TestHub } from './helpers.js';

const SOURCE = fileURLToPath(new URL('./fixtures/free-source.js', import.meta.url));
const cleanup: Array<() => unknown> = [];
after(() => runCleanup(cleanup));

async function freeSource(count: number, size: number): Promise<{ child: ChildProcess; port: number; go(): void; done: Promise<number> }> {
  const child = fork(SOURCE, [String(count), String(size)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  cleanup.push(() => child.kill('SIGKILL'));
  let resolveDone!: (sent: number) => void;
  const done = new Promise<number>((r) => (resolveDone = r));
  const port = await new Promise<number>((resolve, reject) => {
    child.on('message', (m: { ev: string; port?: number; sent?: number }) => {
      if (m.ev === 'listening') resolve(m.port!);
      if (m.ev === 'done') resolveDone(m.sent!);
    });
    child.once('exit', (code) => reject(new Error(`free source exited with ${code}`)));
  });
  return { child, port, go: () => child.send({ cmd: 'go' }), done };
}

async function expectAll(worker: Worker, count: number, what: string): Promise<void> {
  const report = await eventually(async () => {
    const r = await worker.report();
    return r.messages >= count ? r : undefined;
  }, `${what} to receive all ${count}`, 20_000);
  const seqs = report.seqs.t ?? [];
  assert.equal(seqs.length, count, `${what} got ${seqs.length} of ${count}`);
  for (let k = 0; k < seqs.length; k++) if (seqs[k] !== k) assert.fail(`${what} got seq ${seqs[k]} at position ${k}`);
}

test('a worker behind on a following hub holds the holder\'s reading: a free-running upstream, nothing dropped on either hub', { timeout: 120_000 }, async () => {
  const count = 60_000;
  const nats = await new NatsServer().start();
  cleanup.push(() => nats.dispose());
  const source = await freeSource(count, 1024);
  const cluster = (hubName: string): Record<string, unknown> => ({ cluster: { nats: nats.url, name: 'pace', leaseTtlMs: 1500, hubName } });
  // Default options but for pings (a run must not depend on their timing).
  const upstreams = { feed: { url: `ws://127.0.0.1:${source.port}/`, pingIntervalMs: 0 } };
  const holder: TestHub = await startTestHub(upstreams, cluster('holder'));
  cleanup.push(() => holder.close());
  await eventually(() => holder.hub.cluster?.stats().upstreams[0]?.role === 'holder' && holder.hub.stats().upstreams[0]!.client.state === 'open', 'the first hub to hold and connect the upstream');
  // Room for what is in flight between the follower's signal and the holder's pause on a loaded machine (one NATS
  // round trip of the stream: the cluster bench saw up to ~7k messages of it at one follower) — and still far less
  // than the 60 MB stream, so a follower the holder did not wait for drops most of it.
  const follower: TestHub = await startTestHub(upstreams, { ...cluster('follower'), maxQueueBytes: 16 * 1024 * 1024 });
  cleanup.push(() => follower.close());
  await eventually(() => upstreamOf(follower.hub, 'feed').history.at(-1)?.to === 'open', 'the second hub to follow the holder\'s stream');

  const here = new Worker(holder.url('feed'));
  const there = new Worker(follower.url('feed'));
  cleanup.push(() => { here.kill('SIGKILL'); there.kill('SIGKILL'); });
  await Promise.all([here.opened(), there.opened()]);
  await eventually(() => holder.hub.stats().upstreams[0]!.sessions === 1 && follower.hub.stats().upstreams[0]!.sessions === 1, 'one session on each hub');

  // Behind for 600 ms: past what its hub can queue for it at this rate (16 MiB here), short of slowAfterMs (1 s).
  there.command('pause');
  await there.waitFor('paused');
  source.go();
  setTimeout(() => there.command('resume'), 600).unref();
  assert.equal(await source.done, count);
  const why = (): string => JSON.stringify({
    follower: { dropped: follower.hub.stats().dropped, pacing: follower.hub.stats().upstreams[0]!.pacing },
    holder: { dropped: holder.hub.stats().dropped, pacing: holder.hub.stats().upstreams[0]!.pacing, remotePacing: holder.hub.cluster!.stats().upstreams[0]!.remotePacing },
  });
  await expectAll(there, count, 'the worker on the following hub').catch((err: Error) => assert.fail(`${err.message}; ${why()}`));
  await expectAll(here, count, 'the worker on the holder').catch((err: Error) => assert.fail(`${err.message}; ${why()}`));

  const f = follower.hub.stats();
  const h = holder.hub.stats();
  assert.deepEqual(f.dropped, {}, 'the following hub dropped nothing');
  assert.deepEqual(h.dropped, {}, 'the holder dropped nothing');
  const fBus = follower.hub.cluster!.stats().upstreams[0]!.bus;
  const hBus = holder.hub.cluster!.stats().upstreams[0]!.bus;
  assert.ok(fBus.paceSent >= 2, `the follower said it was behind and caught up (${fBus.paceSent} signals)`);
  assert.ok(hBus.paceReceived >= 1, `the holder heard it (${hBus.paceReceived})`);
  assert.ok(h.upstreams[0]!.pacing.pauses >= 1, 'the holder paused its reading');
  assert.equal(f.upstreams[0]!.pacing.slowSessions, 0, 'the worker was behind, never slow');
  await eventually(() => holder.hub.cluster!.stats().upstreams[0]!.remotePacing === 0, 'no hub holding the holder back once all caught up');
});
