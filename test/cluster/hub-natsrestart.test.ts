/**
 * nats-server restarted under a running cluster (issue 14): three hubs as
 * separate daemons, the server stopped and started again on the same port
 * with the same JetStream store.
 *
 * - SIGTERM right after a renew and an immediate start: the holder keeps its
 *   lease (same epoch, no fence) — its client is back before the deadline
 *   and renews at once.
 * - SIGKILL and 2 × TTL down: every lease runs out; the holder keeps serving
 *   its own workers on its connection, the others' workers see the outage;
 *   after the start one holder is elected and any second connection is given
 *   back.
 *
 * Either way every worker receives again and no worker gets a tick twice or
 * out of order (the feed's per-topic seq, strictly increasing).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DemoFeed, demoUpstreamConfig } from '../../src/demo/feed.js';
import { eventually } from '../hub/helpers.js';
import { ConnectionCounter } from './fixtures/pinging-feed.js';
import { delay } from './helpers.js';
import { ClusterLab, TEST_TIMEOUT_MS, TTL, type HubProcess } from './hub-lab.js';
import { EnvelopeWorker, FeedWorker, assertIncreasing } from './hub-workers.js';

const TOPICS = ['btcusdt@trade', 'ethusdt@trade'];

interface Cluster {
  lab: ClusterLab;
  counter: ConnectionCounter;
  hubs: HubProcess[];
  /** Per hub, a transparent and an envelope worker on TOPICS. */
  workers: Array<{ hub: HubProcess; node: FeedWorker; env: EnvelopeWorker }>;
  all: Array<FeedWorker | EnvelopeWorker>;
}

/** Three hubs (h0, started first, holds), workers on each, all receiving; the feed ticks every `tickMs` per topic. */
async function cluster(t: { after: (fn: () => Promise<void>) => void }, tickMs = 40): Promise<Cluster> {
  const lab = await ClusterLab.start();
  t.after(() => lab.close());
  const feed = new DemoFeed({ tickMs });
  lab.defer(() => feed.close());
  await feed.ready();
  feed.start();
  const counter = new ConnectionCounter(feed);
  lab.defer(() => counter.stop());
  // `sequenceField`: a hub giving its own connection back to the holder hands over exactly (docs/cluster.md).
  const upstreams = { feed: { ...demoUpstreamConfig(feed.url), sequenceField: 'data.seq', onUpstreamLoss: 'hold', backoff: { minDelayMs: 50, maxDelayMs: 500 } } };
  const h0 = await lab.hub({ name: 'h0', upstreams });
  await lab.settled('feed');
  const hubs = [h0, ...await Promise.all(['h1', 'h2'].map((name) => lab.hub({ name, upstreams })))];
  assert.equal(await lab.settled('feed'), h0);
  const workers = [];
  for (const hub of hubs) {
    const node = new FeedWorker(hub.url('/u/feed'), `${hub.name}/node`);
    const env = new EnvelopeWorker(hub.url('/hub'), `${hub.name}/envelope`);
    lab.defer(() => { node.close(); env.close(); });
    await node.subscribe(TOPICS);
    await env.sub(TOPICS);
    workers.push({ hub, node, env });
  }
  const all = workers.flatMap((w) => [w.node, w.env]);
  await Promise.all(all.map((w) => w.receives(TOPICS, 5)));
  return { lab, counter, hubs, workers, all };
}

/** After the restart: one holder, every worker receiving, nothing twice, every transparent worker still attached, one upstream connection. */
async function recovered(c: Cluster, restartedAt: number): Promise<{ holder: HubProcess; skipped: number[] }> {
  const holder = await c.lab.settled('feed', 20_000);
  await Promise.all(c.all.map((w) => w.receives(TOPICS, 10, restartedAt, 15_000)));
  await eventually(() => c.counter.open === 1, 'one upstream connection open (any second one given back)', 10_000);
  const skipped = c.all.map((w) => assertIncreasing(w, TOPICS));
  for (const w of c.all) assert.equal(w.closed, undefined, `${w.label} stayed attached`);
  return { holder, skipped };
}

test('nats-server restarted at once (SIGTERM) right after a renew: the holder keeps its lease; nothing delivered twice', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const c = await cluster(t);
  const before = await c.hubs[0]!.upstream('feed');

  // Right after a renew the holder has TTL − margin (1200 ms) before its deadline; the hubs' NATS clients are back
  // after their reconnect wait (500 ms + jitter), and the holder renews at once then.
  await c.lab.nextLeaseWrite('feed');
  const stopAt = Date.now();
  await c.lab.nats.restart('SIGTERM');
  const restartedAt = Date.now();
  const { holder, skipped } = await recovered(c, restartedAt);
  const after = await holder.upstream('feed');
  const fences = (await Promise.all(c.hubs.map((h) => h.upstream('feed')))).reduce((n, u) => n + u.lease.fences, 0);
  assert.equal(holder, c.hubs[0], 'h0 still holds');
  assert.equal(fences, 0, 'no hub fenced');
  assert.equal(after.epoch, before.epoch, 'the same holding (epoch)');
  assert.equal(after.lease.acquisitions, 1, 'acquired once');

  console.log(`# nats-server SIGTERM + start: down ${restartedAt - stopAt} ms (fence deadline TTL − TTL/5 = ${TTL - TTL / 5} ms); ` +
    `holder ${holder.name}, epoch ${before.epoch} → ${after.epoch}, fences ${fences}; every worker receiving again, ticks skipped per worker ${skipped.join(',')}, none twice; ` +
    `max upstream connections ${c.counter.max}`);
});

test('nats-server SIGKILLed and down for 2 × TTL: the holder serves its own workers meanwhile; after the start one holder, one connection, nothing twice', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  // Fast ticks: when h0 gives its connection back to the new holder, a tick its own connection delivered and the
  // new holder's stream then delivered again would show as a repeated seq.
  const c = await cluster(t, 5);
  const [own, ...followers] = c.workers;

  const killedAt = Date.now();
  await c.lab.nats.stop('SIGKILL');
  // The followers' workers are told; the holder's keep receiving from its own connection.
  await Promise.all(followers.map((f) => eventually(() => f.env.statesSince(killedAt).includes('reconnecting'), `${f.env.label} told of the NATS loss`, 5000)));
  await Promise.all([own!.node, own!.env].map((w) => w.receives(TOPICS, 5, killedAt + 200, 5000)));
  await eventually(async () => (await own!.hub.upstream('feed')).role === 'local', 'h0 keeping its connection as a local one after its fence', TTL + 2000);
  // The scenario: the server stays away for two lease TTLs.
  await delay(Math.max(0, killedAt + 2 * TTL - Date.now()));
  const downAt = Date.now();
  await c.lab.nats.start();
  const restartedAt = Date.now();

  const { holder, skipped } = await recovered(c, restartedAt);
  for (const f of followers) {
    const states = f.env.states.filter((s) => s.at >= killedAt);
    const open = states.find((s) => s.state === 'open');
    assert.ok(open?.gap?.start !== undefined && open.gap.end !== undefined, `${f.env.label}: open again with the gap (${JSON.stringify(states)})`);
  }
  const ownDuring = own!.env.ticks.filter((x) => x.T > killedAt + 200 && x.T < downAt).length;

  console.log(`# nats-server SIGKILL, down ${restartedAt - killedAt} ms: h0's envelope worker got ${ownDuring} ticks meanwhile from h0's own connection; ` +
    `after the start holder ${holder.name}; every worker receiving again, ticks skipped per worker ${skipped.join(',')}, none twice; ` +
    `upstream connections max ${c.counter.max}, now ${c.counter.open} (changes ${JSON.stringify(c.counter.changes.map((x) => x.open))})`);
});
