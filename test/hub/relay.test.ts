/**
 * The relay under the conditions users meet: a free-running upstream (it
 * writes as fast as TCP lets it and waits for no acknowledgement), the hub
 * with its default options, real worker processes reading as fast as they
 * can. Healthy workers lose nothing — the hub reads the upstream at their
 * pace instead of dropping the difference — and a stalled worker does not
 * hold the others back: its own queue and policy deal with it, and every
 * message is either delivered to it or counted as dropped.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { expectAll, freeSource } from './free-run.js';
import { connectionStats, eventually, startTestHub, Worker, type TestHub, runCleanup } from './helpers.js';

const cleanup: Array<() => unknown> = [];
after(() => runCleanup(cleanup));

async function hubOn(port: number): Promise<TestHub> {
  // Default options but for pings (a test run must not depend on their timing).
  const hub = await startTestHub({ feed: { url: `ws://127.0.0.1:${port}/`, pingIntervalMs: 0 } });
  cleanup.push(() => hub.close());
  await eventually(() => hub.hub.stats().upstreams[0]!.client.state === 'open', 'the hub to connect to the source');
  return hub;
}

async function workers(hub: TestHub, n: number, already = 0): Promise<Worker[]> {
  const list = Array.from({ length: n }, () => new Worker(hub.url('feed')));
  cleanup.push(() => list.forEach((w) => w.kill('SIGKILL')));
  await Promise.all(list.map((w) => w.opened()));
  await eventually(() => hub.hub.stats().upstreams[0]!.sessions === already + n, `${already + n} sessions at the hub`);
  return list;
}

for (const [workersN, count, size] of [[8, 10_000, 1024], [1, 400, 64 * 1024], [16, 20_000, 64]] as const) {
  test(`a free-running upstream, ${workersN} healthy worker(s) × ${count} × ${size} B: every worker gets every message in order, the hub drops nothing`, async () => {
    const source = await freeSource(count, size, cleanup);
    const hub = await hubOn(source.port);
    const list = await workers(hub, workersN);
    source.go();
    const { sent } = await source.done;
    assert.equal(sent, count);
    await expectAll(list, count, `${workersN} × ${size} B`);
    const stats = hub.hub.stats();
    assert.deepEqual(stats.dropped, {}, 'no drops anywhere');
    const ledger = stats.upstreams[0]!.ledger.in;
    assert.equal(ledger.received, count);
    assert.equal(ledger.routed + ledger.consumed + Object.values(ledger.unrouted).reduce((a, b) => a + b, 0), ledger.received, 'the ledger balances');
    assert.ok(stats.upstreams[0]!.pacing.pauses >= 0);
  });
}

test('a free-running upstream with one stalled worker: the healthy ones get everything, the stalled one delivered + dropped = sent, and reading resumes without it', async () => {
  const count = 10_000;
  const source = await freeSource(count, 1024, cleanup);
  const hub = await hubOn(source.port);
  const [stalled] = await workers(hub, 1);
  const stalledId = hub.hub.stats().connections[0]!.id;
  const healthy = await workers(hub, 4, 1);
  stalled!.command('pause');
  await stalled!.waitFor('paused');
  source.go();
  await source.done;
  await expectAll(healthy, count, 'healthy beside a stalled one');
  const pacing = hub.hub.stats().upstreams[0]!.pacing;
  assert.ok(pacing.slowSessions >= 1, `the stalled session was found slow: ${JSON.stringify(pacing)}`);
  const dropped = (): number => Object.values(connectionStats(hub.hub, stalledId)?.dropped ?? {}).reduce((a, b) => a + (b ?? 0), 0);
  assert.ok(dropped() > 0, 'the stalled worker lost messages to its policy');
  for (const c of hub.hub.stats().connections) {
    if (c.id !== stalledId) assert.deepEqual(c.dropped, {}, `healthy connection ${c.id} lost nothing`);
  }
  stalled!.command('resume');
  await eventually(async () => (await stalled!.report()).messages + dropped() === count, 'delivered + dropped = sent at the stalled worker', 30_000);
});
