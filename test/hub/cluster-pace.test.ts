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
import { NatsServer } from '../cluster/helpers.js';
import { expectAll, freeSource } from './free-run.js';
import { eventually, runCleanup, startTestHub, upstreamOf, Worker, type TestHub } from './helpers.js';

const cleanup: Array<() => unknown> = [];
after(() => runCleanup(cleanup));

test('a worker behind on a following hub holds the holder\'s reading: a free-running upstream, nothing dropped on either hub', { timeout: 120_000 }, async () => {
  const count = 60_000;
  const nats = await new NatsServer().start();
  cleanup.push(() => nats.dispose());
  const source = await freeSource(count, 1024, cleanup);
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
  assert.equal((await source.done).sent, count);
  const why = (): string => JSON.stringify({
    follower: { dropped: follower.hub.stats().dropped, pacing: follower.hub.stats().upstreams[0]!.pacing },
    holder: { dropped: holder.hub.stats().dropped, pacing: holder.hub.stats().upstreams[0]!.pacing, remotePacing: holder.hub.cluster!.stats().upstreams[0]!.remotePacing },
  });
  await expectAll([there], count, 'the following hub', 20_000).catch((err: Error) => assert.fail(`${err.message}; ${why()}`));
  await expectAll([here], count, 'the holder', 20_000).catch((err: Error) => assert.fail(`${err.message}; ${why()}`));

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
