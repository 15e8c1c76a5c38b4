/**
 * /metrics after a scripted scenario, checked against exact counts: workers
 * attach and subscribe, the feed ticks a known number of times, the upstream
 * is killed and restarted on the same port, a worker stops reading. Every
 * counter must equal what the scenario produced and what Hub.stats() (and
 * /status) say, because all of them are read from the same snapshot.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket, { WebSocketServer } from 'ws';
import { DemoFeed, demoUpstreamConfig } from '../../src/demo/feed.js';
import { HubHttpServer } from '../../src/observe/http.js';
import type { ObservedStats } from '../../src/observe/snapshot.js';
import { eventually, sleep, startTestHub, Worker, type TestHub } from '../hub/helpers.js';
import { parseExposition, scrape } from './prom.js';

const BTC = 'btcusdt@trade';
const ETH = 'ethusdt@trade';
const sub = (topic: string, id: number): string => JSON.stringify({ method: 'SUBSCRIBE', params: [topic], id });

const workers: Worker[] = [];
const cleanups: Array<() => Promise<void> | void> = [];
after(async () => {
  for (const w of workers) w.kill('SIGKILL');
  for (const c of cleanups.reverse()) await c();
});

async function status(base: string): Promise<ObservedStats> {
  const res = await fetch(`${base}/status`, { signal: AbortSignal.timeout(5000) });
  assert.equal(res.status, 200);
  return (await res.json()) as ObservedStats;
}

test('metrics equal the scenario and the stats snapshot: ticks, deliveries, an upstream restart, a slow consumer, a refused handshake', async () => {
  // ── upstreams: the demo feed (json adapter) and a raw bulk feed for the slow consumer
  let feed = new DemoFeed({ tickMs: 3_600_000 });
  await feed.ready();
  const feedPort = feed.port;
  // Every SUBSCRIBE message the feeds get is answered with one ack (an upstream message the hub counts).
  let subscribeMessages = 0;
  feed.on('subscribe', () => subscribeMessages++);
  cleanups.push(() => feed.close());
  const bulk = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise((r) => bulk.once('listening', r));
  let bulkPeer: WebSocket | undefined;
  bulk.on('connection', (ws) => (bulkPeer = ws));
  cleanups.push(() => new Promise<void>((r) => {
    for (const c of bulk.clients) c.terminate();
    bulk.close(() => r());
  }));

  // A fixed 300 ms backoff: the restarted feed is listening long before the hub dials again,
  // so the scenario produces exactly one reconnect.
  const backoff = { minDelayMs: 300, maxDelayMs: 300, floorMs: 300 };
  const hub: TestHub = await startTestHub({
    feed: { ...demoUpstreamConfig(feed.url), pingIntervalMs: 0, backoff },
    bulk: { url: `ws://127.0.0.1:${(bulk.address() as { port: number }).port}/`, pingIntervalMs: 0, maxQueueBytes: 64 * 1024, slowConsumer: 'drop-oldest', backoff },
  });
  cleanups.push(() => hub.close());
  const http = new HubHttpServer(hub.hub);
  const { port } = await http.listen('127.0.0.1', 0);
  cleanups.push(() => http.close());
  const base = `http://127.0.0.1:${port}`;
  await eventually(() => feed.connections === 1 && bulkPeer !== undefined, 'both upstreams connected');
  await eventually(() => hub.hub.stats().upstreams.every((u) => u.client.state === 'open'), 'both upstreams open');

  // ── two workers on the feed: A takes btc and eth, B takes btc
  const a = new Worker(hub.url('feed'), { protocol: 'feed-v1' });
  const b = new Worker(hub.url('feed'), { protocol: 'feed-v1' });
  workers.push(a, b);
  await Promise.all([a.opened(), b.opened()]);
  a.send(sub(BTC, 1));
  a.send(sub(ETH, 2));
  b.send(sub(BTC, 1));
  await eventually(async () => (await a.report()).responses.length === 2 && (await b.report()).responses.length === 1, 'every ack');
  assert.equal(feed.subscribes.get(BTC), 1, 'btc subscribed upstream once');
  assert.equal(feed.subscribes.get(ETH), 1);

  const N1 = 10;
  for (let i = 0; i < N1; i++) feed.tick();
  await eventually(async () => (await a.report()).byTopic[ETH] === N1 && (await b.report()).byTopic[BTC] === N1, `${N1} ticks at the workers`);

  // ── kill the upstream and bring it back on the same port
  await feed.close();
  feed = new DemoFeed({ tickMs: 3_600_000, port: feedPort });
  feed.on('subscribe', () => subscribeMessages++);
  await feed.ready();
  await eventually(() => feed.subscribes.get(BTC) === 1 && feed.subscribes.get(ETH) === 1, 'the hub re-subscribed both topics on the new feed', 10_000);
  await eventually(() => hub.hub.stats().upstreams.find((u) => u.name === 'feed')?.client.state === 'open', 'feed open again');
  const N2 = 5;
  for (let i = 0; i < N2; i++) feed.tick();
  const N = N1 + N2;
  await eventually(async () => {
    const [ra, rb] = [await a.report(), await b.report()];
    return ra.byTopic[BTC] === N && ra.byTopic[ETH] === N && rb.byTopic[BTC] === N;
  }, `${N} ticks per topic at the workers`);

  // ── a slow consumer on the bulk upstream: C stops reading, D keeps up
  const c = new Worker(hub.url('bulk'));
  const d = new Worker(hub.url('bulk'));
  workers.push(c, d);
  await Promise.all([c.opened(), d.opened()]);
  await eventually(() => hub.hub.stats().upstreams.find((u) => u.name === 'bulk')?.sessions === 2, 'two bulk sessions');
  c.command('pause');
  await c.waitFor('paused');
  const M = 3000;
  const pad = 'x'.repeat(1000);
  for (let i = 0; i < M; i++) {
    bulkPeer!.send(`{"seq":${i},"pad":"${pad}"}`);
    if (i % 50 === 49) await sleep(2);
  }
  await eventually(async () => (await d.report()).messages === M, `all ${M} at the healthy bulk worker`, 20_000);
  await eventually(() => (hub.hub.stats().dropped.ERR_DROP_OLDEST ?? 0) > 0, 'drops at the stalled worker');
  c.command('resume');
  let lastC = 0;
  await eventually(async () => {
    lastC = (await c.report()).messages;
    return lastC + (hub.hub.stats().dropped.ERR_DROP_OLDEST ?? 0) === M;
  }, 'delivered + dropped = sent at the stalled worker', 20_000);

  // ── a refused handshake: an upstream that does not exist
  const refused = new WebSocket(`ws+unix://${hub.socketPath}:/u/nope`);
  const status404 = await new Promise<number>((resolve) => {
    refused.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
    refused.on('error', () => resolve(-1));
  });
  assert.equal(status404, 404);

  // ── now everything is quiet: /metrics, /status and Hub.stats() must agree with the scenario
  await sleep(50);
  const m = await scrape(base);
  const st = await status(base);
  const live = hub.hub.stats();
  const feedStats = st.upstreams.find((u) => u.name === 'feed')!;
  const bulkStats = st.upstreams.find((u) => u.name === 'bulk')!;
  assert.equal(bulkStats.client.messagesIn, M);

  // Types and naming.
  assert.equal(m.types.get('wshub_topic_messages_total'), 'counter');
  assert.equal(m.types.get('wshub_upstream_state'), 'gauge');
  for (const name of m.types.keys()) assert.match(name, /^wshub_/, 'every metric has the wshub_ prefix');
  for (const [name, type] of m.types) if (type === 'counter') assert.match(name, /_total$/, `${name}: counters end in _total`);

  // Per-topic traffic: exactly what the feed sent, delivered once per subscriber.
  assert.equal(m.get('wshub_topic_messages_total', { upstream: 'feed', topic: BTC }), N);
  assert.equal(m.get('wshub_topic_messages_total', { upstream: 'feed', topic: ETH }), N);
  assert.equal(m.get('wshub_topic_deliveries_total', { upstream: 'feed', topic: BTC }), 2 * N, 'btc: two subscribers');
  assert.equal(m.get('wshub_topic_deliveries_total', { upstream: 'feed', topic: ETH }), N, 'eth: one subscriber');
  const btcBytes = m.get('wshub_topic_received_bytes_total', { upstream: 'feed', topic: BTC })!;
  assert.ok(btcBytes > 0);
  assert.equal(m.get('wshub_topic_delivered_bytes_total', { upstream: 'feed', topic: BTC }), 2 * btcBytes);
  assert.equal(m.get('wshub_topic_subscribers', { upstream: 'feed', topic: BTC }), 2);
  assert.equal(m.get('wshub_topic_subscribers', { upstream: 'feed', topic: ETH }), 1);

  // Per-upstream totals equal the snapshot; the feed got 2N ticks plus one ack per upstream SUBSCRIBE message.
  assert.ok(subscribeMessages >= 3, 'two subscribes, then at least one replaying both topics');
  assert.equal(feedStats.messagesIn, 2 * N + subscribeMessages);
  assert.equal(m.get('wshub_routed_messages_total', { upstream: 'feed' }), feedStats.messagesIn);
  assert.equal(m.get('wshub_upstream_received_messages_total', { upstream: 'feed' }), feedStats.client.messagesIn);
  assert.equal(feedStats.client.messagesIn, 2 * N + subscribeMessages);
  assert.equal(m.get('wshub_upstream_received_bytes_total', { upstream: 'feed' }), feedStats.client.bytesIn);
  assert.equal(m.get('wshub_upstream_sent_messages_total', { upstream: 'feed' }), subscribeMessages, 'the hub sent nothing but subscribes');
  assert.equal(m.get('wshub_upstream_sent_bytes_total', { upstream: 'feed' }), feedStats.client.bytesOut);
  assert.equal(m.get('wshub_deliveries_total', { upstream: 'feed' }), feedStats.deliveries);
  assert.equal(m.get('wshub_deliveries_total', { upstream: 'bulk' }), 2 * M, 'bulk: every message to both sessions (dropped ones included: they were handed to the queue)');
  assert.equal(m.get('wshub_routed_messages_total', { upstream: 'bulk' }), M);
  assert.equal(m.get('wshub_sessions', { upstream: 'feed' }), 2);
  assert.equal(m.get('wshub_sessions', { upstream: 'bulk' }), 2);
  assert.equal(m.get('wshub_connections', { mode: 'transparent', transport: 'unix' }), 4);

  // The restart: one connection lost, one reconnection, and nothing else; failed attempts apart.
  assert.deepEqual(feedStats.client.disconnectsByCause, { ERR_CONNECTION_LOST: 1 });
  assert.deepEqual(m.find('wshub_upstream_disconnects_total', { upstream: 'feed' }).map((s) => [s.labels.cause, s.value]), [['ERR_CONNECTION_LOST', 1]]);
  assert.equal(m.get('wshub_upstream_reconnects_total', { upstream: 'feed' }), 1);
  assert.equal(m.get('wshub_upstream_reconnects_total', { upstream: 'bulk' }), 0);
  assert.equal(m.find('wshub_upstream_disconnects_total', { upstream: 'bulk' }).length, 0);
  assert.equal(m.sum('wshub_upstream_failed_attempts_total', { upstream: 'feed' }), feedStats.client.failedAttempts);
  assert.equal(m.get('wshub_upstream_connections_total', { upstream: 'feed' }), 2);
  assert.equal(m.get('wshub_upstream_state', { upstream: 'feed', state: 'open' }), 1);
  assert.equal(m.sum('wshub_upstream_state', { upstream: 'feed' }), 1, 'exactly one state is current');
  const sinceOpen = m.get('wshub_upstream_seconds_since_open', { upstream: 'feed' })!;
  assert.ok(sinceOpen >= 0 && sinceOpen < 60, `seconds since open: ${sinceOpen}`);

  // Drops: what the stalled worker did not get, by reason, equal in metrics, /status and Hub.stats().
  const dropped = live.dropped.ERR_DROP_OLDEST!;
  assert.equal(lastC + dropped, M);
  assert.equal(m.get('wshub_dropped_messages_total', { reason: 'ERR_DROP_OLDEST' }), dropped);
  assert.equal(st.dropped.ERR_DROP_OLDEST, dropped);
  assert.deepEqual(Object.keys(live.dropped), ['ERR_DROP_OLDEST'], 'no other drop reason');
  assert.equal(m.get('wshub_queue_bytes'), 0, 'every queue drained');

  // Listener: four sessions accepted, one handshake refused with its code.
  assert.equal(m.get('wshub_server_accepted_total'), 4);
  assert.equal(m.get('wshub_handshakes_rejected_total', { reason: 'ERR_UNKNOWN_UPSTREAM' }), 1);
  assert.equal(m.get('wshub_server_sessions'), 4);
  assert.equal(m.get('wshub_ready'), 1);
  assert.equal(m.find('wshub_event_loop_delay_seconds').length, 4);
  for (const s of m.find('wshub_event_loop_delay_seconds')) assert.ok(s.value >= 0 && Number.isFinite(s.value));
});

test('per-topic labels are capped: topics past maxTopicLabels are summed under topic="_other", and nothing is lost', async () => {
  const feed = new DemoFeed({ tickMs: 3_600_000 });
  await feed.ready();
  cleanups.push(() => feed.close());
  const hub = await startTestHub({ feed: { ...demoUpstreamConfig(feed.url), pingIntervalMs: 0 } });
  cleanups.push(() => hub.close());
  const http = new HubHttpServer(hub.hub, { maxTopicLabels: 1 });
  const { port } = await http.listen('127.0.0.1', 0);
  cleanups.push(() => http.close());
  const w = new Worker(hub.url('feed'));
  workers.push(w);
  await w.opened();
  const topics = [BTC, ETH, 'solusdt@trade'];
  topics.forEach((t, i) => w.send(sub(t, i + 1)));
  await eventually(async () => (await w.report()).responses.length === 3, 'three acks');
  for (let i = 0; i < 7; i++) feed.tick();
  await eventually(async () => Object.values((await w.report()).byTopic).reduce((x, y) => x + y, 0) === 21, '21 messages');

  const m = await scrape(`http://127.0.0.1:${port}`);
  const series = m.find('wshub_topic_messages_total', { upstream: 'feed' });
  assert.equal(series.length, 2, `one labelled topic and _other: ${JSON.stringify(series)}`);
  const other = series.find((s) => s.labels.topic === '_other');
  assert.equal(other?.value, 14, 'two topics × 7 ticks summed under _other');
  assert.equal(m.sum('wshub_topic_messages_total', { upstream: 'feed' }), 21);
  assert.equal(m.sum('wshub_topic_deliveries_total', { upstream: 'feed' }), 21);
  assert.equal(m.find('wshub_topic_subscribers', { upstream: 'feed' }).length, 2);
  assert.equal(m.get('wshub_topic_subscribers', { upstream: 'feed', topic: '_other' }), 2);
});

test('the exposition parser reads escaped label values', () => {
  const e = parseExposition('# TYPE x_total counter\nx_total{a="q\\"uote",b="back\\\\slash",c="new\\nline"} 3\ny NaN\n');
  assert.deepEqual(e.samples[0]!.labels, { a: 'q"uote', b: 'back\\slash', c: 'new\nline' });
  assert.equal(e.get('x_total'), 3);
  assert.ok(Number.isNaN(e.get('y')!));
});
