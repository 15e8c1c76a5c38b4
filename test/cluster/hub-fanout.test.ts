/**
 * Cluster mode end to end (issue 14, first test): three hubs as separate
 * daemons, a real nats-server, one upstream (the demo feed), workers on every
 * hub — transparent Node clients, envelope Node clients and python3-websockets
 * processes. The upstream sees exactly one connection and one SUBSCRIBE per
 * topic; every worker receives every tick of its topics once, in order;
 * the last worker anywhere leaving a topic unsubscribes it upstream, once.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { demoUpstreamConfig } from '../../src/demo/feed.js';
import { eventually } from '../hub/helpers.js';
import { TEST_TIMEOUT_MS, labWithFeed, type HubProcess } from './hub-lab.js';
import { EnvelopeWorker, FeedWorker, PyWorker, assertContiguous, type SeqWorker } from './hub-workers.js';

test('three hubs share one upstream connection: one SUBSCRIBE per topic, every tick to every worker once, in order', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const { lab, feed, counter } = await labWithFeed(t, 40);
  const upstreams = { feed: { ...demoUpstreamConfig(feed.url), onUpstreamLoss: 'hold' } };

  const hubs = await Promise.all(['h0', 'h1', 'h2'].map((name) => lab.hub({ name, upstreams })));
  const holder = await lab.settled('feed');

  // On every hub: a shared topic, one only its own workers want, and one shared by some.
  const workers: Array<{ w: SeqWorker; topics: string[]; hub: HubProcess }> = [];
  for (const [i, hub] of hubs.entries()) {
    const own = `h${i}usdt@trade`;
    const node = new FeedWorker(hub.url('/u/feed'), `${hub.name}/node`);
    const env = new EnvelopeWorker(hub.url('/hub'), `${hub.name}/envelope`);
    const py = new PyWorker(hub.socketPath, '/u/feed', ['btcusdt@trade', 'solusdt@trade'], `${hub.name}/python`);
    lab.defer(() => { node.close(); env.close(); py.close(); });
    workers.push({ w: node, topics: ['btcusdt@trade', 'ethusdt@trade', own], hub }, { w: env, topics: ['btcusdt@trade', own], hub }, { w: py, topics: ['btcusdt@trade', 'solusdt@trade'], hub });
    await node.subscribe(['btcusdt@trade', 'ethusdt@trade', own]);
    await env.sub(['btcusdt@trade', own]);
    await py.opened();
  }
  const topics = new Set(workers.flatMap((x) => x.topics));
  // A good stretch of ticks everywhere, then the feed stops: what each worker got is final.
  const from = Date.now();
  await Promise.all(workers.map(({ w, topics: ts }) => w.receives(ts, 25, from, 15_000)));
  const connections = feed.connections;
  const subscribes = Object.fromEntries(feed.subscribes);
  const maxOpen = counter.max;

  // The last worker anywhere leaving a topic unsubscribes it upstream, once; topics other hubs still want stay.
  const leaving = hubs.find((h) => h !== holder)!;
  const own = `${leaving.name}usdt@trade`;
  const gone = workers.filter(({ hub, topics: ts }) => hub === leaving && ts.includes(own));
  for (const { w } of gone) {
    assertContiguous(w, workers.find((x) => x.w === w)!.topics);
    (w as FeedWorker | EnvelopeWorker).close();
    workers.splice(workers.findIndex((x) => x.w === w), 1);
  }
  await eventually(() => feed.unsubscribes.get(own) === 1, `the UNSUBSCRIBE of ${own} once ${leaving.name}'s workers left`, 10_000);
  await feed.close();

  // Every worker ends at the last tick any worker saw of that topic (the feed's last), with nothing missing in between.
  // Read again at every look: ticks the feed sent just before closing may still be on their way through NATS.
  const last = new Map<string, number>();
  const allAtLast = (): boolean => {
    last.clear();
    for (const { w, topics: ts } of workers) for (const topic of ts) last.set(topic, Math.max(last.get(topic) ?? 0, ...w.seqs(topic)));
    return workers.every(({ w, topics: ts }) => ts.every((topic) => w.seqs(topic).at(-1) === last.get(topic)));
  };
  await eventually(allAtLast, 'every worker at the last tick of each of its topics', 5000)
    .catch((err: Error) => {
      const behind = workers.flatMap(({ w, topics: ts }) => ts.filter((topic) => w.seqs(topic).at(-1) !== last.get(topic)).map((topic) => `${w.label} ${topic}: ${w.seqs(topic).at(-1)} of ${last.get(topic)}`));
      throw new Error(`${err.message}; behind: ${behind.join('; ')}`);
    });
  for (const { w, topics: ts } of workers) assertContiguous(w, ts);

  assert.equal(connections, 1, 'the upstream saw exactly one connection');
  assert.equal(maxOpen, 1, 'never more than one upstream connection open');
  for (const topic of topics) assert.equal(subscribes[topic], 1, `exactly one SUBSCRIBE of ${topic} (saw ${JSON.stringify(subscribes)})`);
  assert.deepEqual(Object.keys(subscribes).sort(), [...topics].sort(), 'nothing else subscribed');
  assert.deepEqual(Object.fromEntries(feed.unsubscribes), { [own]: 1 }, `only ${own} unsubscribed, once`);
  // The followers got their ticks from NATS, the holder from its own connection.
  for (const hub of hubs) {
    const u = await hub.upstream('feed');
    assert.equal(u.role, hub === holder ? 'holder' : 'follower', `${hub.name}'s role`);
    if (hub !== holder) assert.ok(u.bus.received > 0, `${hub.name} received from NATS`);
  }

  // python3-websockets workers on the hubs that do not hold the upstream: served from NATS.
  const pyFollowers = workers.filter(({ w, hub }) => w instanceof PyWorker && hub !== holder);
  assert.equal(pyFollowers.length, 2, 'a python worker on each non-holding hub');
  for (const { w } of pyFollowers) assert.ok(w.seqs('solusdt@trade').length >= 25, `${w.label} received from a non-holding hub`);

  const received = workers.map(({ w }) => w.ticks.length);
  console.log(`# fan-out: holder ${holder.name}; upstream connections ${connections} (max open ${maxOpen}); ` +
    `SUBSCRIBE per topic ${JSON.stringify(subscribes)}; ${own} unsubscribed once when ${leaving.name}'s workers left; ${workers.length} workers received ${received.reduce((a, b) => a + b, 0)} ticks (${Math.min(...received)}–${Math.max(...received)} each), none missed or repeated`);
});
