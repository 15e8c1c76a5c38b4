/**
 * A reload changes only what changed: a new connection target replaces that
 * upstream's connection — HubClient subscriptions are made again on it and
 * keep yielding, transparent sessions follow `onUpstreamLoss`; a policy or a
 * limit applies in place to every attached connection (envelope ones too);
 * nothing says "removed" unless it was; listener settings are reported as
 * needing a restart.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { HubClient } from '../../src/client/hub-client.js';
import { DemoFeed, demoUpstreamConfig } from '../../src/demo/feed.js';
import { resolveConfig } from '../../src/hub/config.js';
import { eventually, startTestHub, upstreamOf, Worker, type TestHub, runCleanup } from './helpers.js';

const cleanup: Array<() => unknown> = [];
after(() => runCleanup(cleanup));

async function feedOn(): Promise<DemoFeed> {
  const feed = new DemoFeed({ tickMs: 3_600_000 });
  await feed.ready();
  cleanup.push(() => feed.close());
  return feed;
}

test('reload: a changed url moves HubClient subscriptions to the new upstream (the for-await loop keeps yielding); transparent workers follow onUpstreamLoss', async () => {
  const [a, b] = [await feedOn(), await feedOn()];
  const upstreams = (url: string, extra: Record<string, unknown> = {}): Record<string, Record<string, unknown>> => ({ feed: { ...demoUpstreamConfig(url), pingIntervalMs: 0, ...extra } });
  const hub: TestHub = await startTestHub(upstreams(a.url));
  cleanup.push(() => hub.close());
  await eventually(() => a.connections === 1, 'connected to a');

  const client = new HubClient({ socketPath: hub.socketPath });
  cleanup.push(() => client.close());
  await client.ready();
  const got: number[] = [];
  const sub = client.subscribe('feed', 'btcusdt@trade');
  void (async () => {
    for await (const m of sub) got.push((m.data as { data: { seq: number } }).data.seq);
  })();
  await eventually(() => a.subscribes.get('btcusdt@trade') === 1, 'subscribed on a');
  a.tick();
  await eventually(() => got.length === 1, 'a message from a');

  const transparent = new Worker(hub.url('feed'), { protocol: 'feed-v1' });
  cleanup.push(() => transparent.kill('SIGKILL'));
  await transparent.opened();

  const plan = await hub.hub.reload(resolveConfig({ listen: hub.socketPath, logLevel: 'silent', upstreams: upstreams(b.url) }));
  assert.deepEqual(plan.replaced, ['feed']);
  assert.deepEqual(plan.removed, []);
  await eventually(() => b.subscribes.get('btcusdt@trade') === 1, 'the envelope subscription made again on b');
  b.tick();
  await eventually(() => got.length === 2, 'the for-await loop yields messages from b');
  const closed = await transparent.waitFor('close');
  assert.equal(closed.code, 1012, 'json upstream, onUpstreamLoss close: the transparent worker reconnects and resyncs');
  assert.doesNotMatch(String(closed.reason), /removed/);
  await eventually(() => a.connections === 1 && [...a.wss.clients].length === 0, 'the old connection closed');
});

test('reload: only the top-level slowConsumer and maxQueueBytes change → nothing is replaced or closed; attached connections, envelope ones too, take the new policy in place', async () => {
  const feed = await feedOn();
  const config = (slowConsumer: string, maxQueueBytes: number): Record<string, unknown> => ({
    listen: '', logLevel: 'silent', slowConsumer, maxQueueBytes, upstreams: { feed: { ...demoUpstreamConfig(feed.url), pingIntervalMs: 0, slowConsumer: undefined } },
  });
  const first = config('drop-oldest', 1024 * 1024);
  const hub: TestHub = await startTestHub(first.upstreams as Record<string, Record<string, unknown>>, { slowConsumer: 'drop-oldest', maxQueueBytes: 1024 * 1024 });
  cleanup.push(() => hub.close());
  await eventually(() => feed.connections === 1, 'connected');
  const w = new Worker(hub.url('feed'), { protocol: 'feed-v1' });
  cleanup.push(() => w.kill('SIGKILL'));
  await w.opened();
  const client = new HubClient({ socketPath: hub.socketPath });
  cleanup.push(() => client.close());
  await client.ready();
  await eventually(() => hub.hub.stats().connections.length === 2, 'two connections');
  assert.ok(hub.hub.stats().connections.every((c) => c.policy === 'drop-oldest'));

  const next = resolveConfig({ ...config('conflate', 2 * 1024 * 1024), listen: hub.socketPath });
  const plan = await hub.hub.reload(next);
  assert.deepEqual(plan.replaced, [], 'no upstream replaced');
  assert.deepEqual(plan.removed, []);
  assert.deepEqual(plan.tuned, ['feed']);
  assert.ok(hub.hub.stats().connections.every((c) => c.policy === 'conflate' && c.maxQueueBytes === 2 * 1024 * 1024), JSON.stringify(hub.hub.stats().connections.map((c) => [c.mode, c.policy, c.maxQueueBytes])));
  assert.equal(w.events.find((e) => e.ev === 'close'), undefined, 'the transparent worker is still attached');
  assert.equal(feed.connections, 1, 'the upstream connection was kept');
  assert.equal(upstreamOf(hub.hub, 'feed').client.connections, 1);

  const moved = await hub.hub.reload(resolveConfig({ ...config('conflate', 2 * 1024 * 1024), listen: hub.socketPath, tcp: '127.0.0.1:1', http: '127.0.0.1:2' }));
  assert.deepEqual(moved.restartNeeded.sort(), ['http', 'tcp'], 'listener changes are reported as needing a restart');
});
