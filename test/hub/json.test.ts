/**
 * Transparent mode with the json adapter in front of the demo feed (an
 * exchange-style upstream): subscriptions deduplicated, acks with each
 * worker's own id, topics routed, SIGKILLed workers release what they held,
 * and an upstream restart re-subscribes everything with nothing lost silently.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { WebSocketServer } from 'ws';
import { DemoFeed, demoUpstreamConfig } from '../../src/demo/feed.js';
import { eventually, sleep, startTestHub, Worker, type TestHub, upstreamOf } from './helpers.js';

const workers: Worker[] = [];
let hub: TestHub | undefined;
let feed: DemoFeed | undefined;
after(async () => {
  for (const w of workers) w.kill('SIGKILL');
  await hub?.close();
  await feed?.close();
});

const sub = (topics: string[], id: number | string): string => JSON.stringify({ method: 'SUBSCRIBE', params: topics, id });
const unsub = (topics: string[], id: number | string): string => JSON.stringify({ method: 'UNSUBSCRIBE', params: topics, id });
const total = (m: Map<string, number>, topic: string): number => m.get(topic) ?? 0;

function upstreamConfig(url: string): Record<string, unknown> {
  return { ...demoUpstreamConfig(url), pingIntervalMs: 0, backoff: { minDelayMs: 50, maxDelayMs: 200 } };
}

test('json: 8 workers subscribe to one topic → one upstream subscribe; each gets its own ack and every tick', async () => {
  feed = new DemoFeed();
  await feed.ready();
  hub = await startTestHub({ feed: upstreamConfig(feed.url) });
  await eventually(() => feed!.connections === 1, 'the hub to connect upstream');

  for (let i = 0; i < 8; i++) workers.push(new Worker(hub.url('feed'), { protocol: 'feed-v1' }));
  const opens = await Promise.all(workers.map((w) => w.opened()));
  assert.ok(opens.every((o) => o.protocol === 'feed-v1'), 'the upstream subprotocol is given back');
  workers.forEach((w, i) => w.send(sub(['btcusdt@trade'], i % 2 ? 1 : `w${i}`)));

  for (const [i, w] of workers.entries()) {
    const r = await eventually(async () => {
      const rep = await w.report();
      return rep.responses.length === 1 ? rep : undefined;
    }, `worker ${i}'s ack`);
    assert.deepEqual(r.responses[0], { result: null, id: i % 2 ? 1 : `w${i}` }, 'the ack carries the worker\'s own id, type kept');
  }
  assert.equal(total(feed.subscribes, 'btcusdt@trade'), 1, 'exactly one upstream subscribe');

  for (let i = 0; i < 20; i++) feed.tick();
  for (const w of workers) {
    await eventually(async () => (await w.report()).byTopic['btcusdt@trade'] === 20, 'twenty ticks at every worker');
  }
  // A worker gets only the topics it subscribed to.
  workers[0]!.send(sub(['ethusdt@trade'], 99));
  await eventually(() => total(feed!.subscribes, 'ethusdt@trade') === 1, 'the second topic upstream');
  await eventually(async () => (await workers[0]!.report()).responses.length === 2, 'the second ack');
  feed.tick();
  await eventually(async () => (await workers[0]!.report()).byTopic['ethusdt@trade'] === 1, 'the eth tick at worker 0');
  assert.equal((await workers[1]!.report()).byTopic['ethusdt@trade'], undefined);
});

test('json: the last unsubscribe (or a SIGKILLed worker) unsubscribes upstream exactly once', async () => {
  assert.ok(hub && feed);
  // Workers 1..7 unsubscribe from btcusdt@trade; worker 0 is killed.
  for (let i = 1; i < 8; i++) workers[i]!.send(unsub(['btcusdt@trade'], 500 + i));
  for (let i = 1; i < 8; i++) await eventually(async () => (await workers[i]!.report()).responses.some((r) => r.id === 500 + i), `unsubscribe ack ${i}`);
  assert.equal(total(feed.unsubscribes, 'btcusdt@trade'), 0, 'worker 0 still holds the topic');
  workers[0]!.kill('SIGKILL');
  await eventually(() => total(feed!.unsubscribes, 'btcusdt@trade') === 1 && total(feed!.unsubscribes, 'ethusdt@trade') === 1, 'the dead worker\'s topics released upstream');
  await sleep(100);
  assert.equal(total(feed.unsubscribes, 'btcusdt@trade'), 1);
  assert.equal(total(feed.subscribes, 'btcusdt@trade'), 1);
  assert.deepEqual(upstreamOf(hub.hub, 'feed').topics.map((t) => t.topic), []);
});

test('json: an upstream killed and restarted — workers stay attached, topics re-subscribed, outage sends delivered in order', async () => {
  assert.ok(hub && feed);
  const w = new Worker(hub.url('feed'));
  workers.push(w);
  await w.opened();
  w.send(sub(['solusdt@trade'], 1));
  await eventually(async () => (await w.report()).responses.length === 1, 'the ack');
  const port = feed.port;
  await feed.close();
  await eventually(() => upstreamOf(hub!.hub, 'feed').client.state !== 'open', 'the hub to see the upstream go');

  // Sent while the upstream is down: queued in the upstream's outbox, flushed on reconnect, in order.
  w.send(JSON.stringify({ method: 'LIST_SUBSCRIPTIONS', id: 'a' }));
  w.send(JSON.stringify({ method: 'LIST_SUBSCRIPTIONS', id: 'b' }));
  feed = new DemoFeed({ port });
  await feed.ready();
  await eventually(() => upstreamOf(hub!.hub, 'feed').client.state === 'open', 'the reconnect', 15_000);
  await eventually(() => total(feed!.subscribes, 'solusdt@trade') === 1, 'the topic re-subscribed');
  const r = await eventually(async () => {
    const rep = await w.report();
    return rep.responses.length === 3 ? rep : undefined;
  }, 'answers to the outage sends');
  assert.deepEqual(r.responses.slice(1).map((x) => x.id), ['a', 'b']);
  feed.tick();
  await eventually(async () => (await w.report()).byTopic['solusdt@trade'] === 1, 'ticks flowing again');
  assert.equal(w.events.filter((e) => e.ev === 'close').length, 0, 'the worker never saw a close');
});

test('json: an answer whose asker left is dropped and counted, never delivered to another worker', async () => {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise((r) => wss.once('listening', r));
  // Answers every request 300 ms late.
  wss.on('connection', (ws) => ws.on('message', (d: Buffer) => {
    const { id } = JSON.parse(d.toString()) as { id: unknown };
    setTimeout(() => ws.send(JSON.stringify({ result: { secretOfTheAsker: 42 }, id })), 300);
  }));
  const h = await startTestHub({ slow: { ...upstreamConfig(`ws://127.0.0.1:${(wss.address() as { port: number }).port}/`) } });
  try {
    await eventually(() => upstreamOf(h.hub, 'slow').client.state === 'open', 'open');
    const asker = new Worker(h.url('slow'));
    const other = new Worker(h.url('slow'), { env: { WORKER_KEEP: '1' } });
    workers.push(asker, other);
    await Promise.all([asker.opened(), other.opened()]);
    asker.send('{"method":"BALANCE","id":1}');
    await sleep(50);
    asker.kill('SIGKILL');
    await eventually(() => h.hub.stats().upstreams[0]!.adapterStats.orphanAnswers === 1, 'the late answer counted as orphaned');
    await sleep(100);
    assert.equal((await other.report()).messages, 0, 'the other worker never saw it');
  } finally {
    await h.close();
    wss.close();
  }
});
