/**
 * Upstream pools against a limit-enforcing exchange (test/support/exchange.ts)
 * run as a child process, as real exchanges behave: a connection past its
 * subscription cap or its control-frame rate is closed 1008, new connections
 * are rate-limited.
 *
 * - Sharding and pacing: 5 workers want 1,000 distinct topics (overlapping
 *   sets of 300); the exchange allows 200 topics and 5 frames a second per
 *   connection. The hub must never be closed for a limit, subscribe each
 *   topic exactly once, deliver every topic's message to each of its
 *   subscribers — and after the exchange is killed and restarted, replay
 *   all 1,000 topics without a limit close.
 * - Failover and failback across three endpoints serving the same clock
 *   feed: kill the preferred, then the second; restart the first: the pool
 *   ends on it after a probe, and a worker never sees a seq twice and misses
 *   none across the failback (make-before-break with `sequenceField`).
 */
import { strict as assert } from 'node:assert';
import { after, test } from 'node:test';
import WebSocket from 'ws';
import { ExchangeProcess } from '../support/exchange-process.js';
import { eventually, runCleanup, startTestHub, upstreamOf, type TestHub } from './helpers.js';

const SUBSCRIBE = '{"method":"SUBSCRIBE","params":["{topic}"],"id":{id}}';
const UNSUBSCRIBE = '{"method":"UNSUBSCRIBE","params":["{topic}"],"id":{id}}';
const cleanups: Array<() => unknown> = [];
after(() => runCleanup(cleanups));

/** A transparent worker: subscribes in frames of 50 topics, records every tick's seq per topic and every answer. */
class ExchangeWorker {
  readonly ws: WebSocket;
  readonly seqs = new Map<string, number[]>();
  readonly answers: Array<{ id: unknown; result?: unknown; error?: unknown }> = [];
  #nextId = 1;

  constructor(url: string) {
    this.ws = new WebSocket(url);
    this.ws.on('message', (raw) => {
      const m = JSON.parse((raw as Buffer).toString()) as { stream?: string; data?: { seq: number }; id?: unknown };
      if (typeof m.stream === 'string' && m.data) {
        let list = this.seqs.get(m.stream);
        if (!list) this.seqs.set(m.stream, (list = []));
        list.push(m.data.seq);
      } else this.answers.push(m as ExchangeWorker['answers'][number]);
    });
    cleanups.push(() => this.ws.terminate());
  }

  async open(): Promise<this> {
    if (this.ws.readyState !== WebSocket.OPEN) await new Promise((resolve, reject) => { this.ws.once('open', resolve); this.ws.once('error', reject); });
    return this;
  }

  /** Subscribe in frames of `perFrame` topics; resolves with the ids used. */
  subscribe(topics: readonly string[], perFrame = 50): number[] {
    const ids: number[] = [];
    for (let i = 0; i < topics.length; i += perFrame) {
      const id = this.#nextId++;
      ids.push(id);
      this.ws.send(JSON.stringify({ method: 'SUBSCRIBE', params: topics.slice(i, i + perFrame), id }));
    }
    return ids;
  }

  received(topic: string): number[] {
    return this.seqs.get(topic) ?? [];
  }
}

function topicsOf(worker: number): string[] {
  // Worker i wants 300 topics starting at 200·i: neighbours overlap by 100, and the five cover t0…t999.
  return Array.from({ length: 300 }, (_, k) => `t${(worker * 200 + k) % 1000}`);
}

test('1,000 topics from 5 workers under a 200-topic, 5-frames/s exchange: sharded, paced, each topic subscribed once, every message delivered; a killed and restarted exchange gets the replay without a limit close', { timeout: 120_000 }, async () => {
  const limits = { maxSubscriptions: 200, maxControlPerSecond: 5, maxConnectionsPerSecond: 10 };
  let exchange = await ExchangeProcess.start(limits);
  cleanups.push(() => exchange.kill());
  const hub: TestHub = await startTestHub({
    feed: {
      url: exchange.url, adapter: 'json', topic: 'stream', subscribe: SUBSCRIBE, unsubscribe: UNSUBSCRIBE,
      maxTopicsPerConnection: 200,
      // Below the exchange's 5: the client's own pings count there too, as Binance counts them.
      controlRate: { messages: 4, perMs: 1000 },
      connectRate: { connections: 5, perMs: 1000 },
      onUpstreamLoss: 'hold',
      backoff: { minDelayMs: 100, maxDelayMs: 400, concealFailures: 20 },
    },
  });
  cleanups.push(() => hub.close());

  const workers = await Promise.all(Array.from({ length: 5 }, () => new ExchangeWorker(hub.url('feed')).open()));
  const started = Date.now();
  const ids = workers.map((w, i) => w.subscribe(topicsOf(i)));
  await eventually(async () => Object.keys((await exchange.stats()).subscribes).length === 1000, 'the exchange to have all 1,000 topics subscribed', 30_000, 100);
  const subscribeMs = Date.now() - started;
  // Every worker's every SUBSCRIBE frame is acknowledged with its own id.
  await eventually(() => workers.every((w, i) => ids[i]!.every((id) => w.answers.some((a) => a.id === id && a.error === undefined))), 'every worker to have its subscribes acknowledged');

  let stats = await exchange.stats();
  assert.deepEqual(stats.limitCloses, { maxSubscriptions: 0, maxControlPerSecond: 0 }, 'the exchange never closed the hub for a limit');
  assert.ok(Object.values(stats.subscribes).every((n) => n === 1), 'each topic subscribed exactly once');
  assert.equal(stats.live.length, 5, '1,000 topics at 200 per connection: five connections');
  assert.ok(stats.live.every((c) => c.subscriptions.length <= 200), 'no connection past the cap');
  assert.ok(stats.maxControlInWindow <= 5, `at most 5 frames per second on any connection (saw ${stats.maxControlInWindow})`);
  // Lower bound: each connection's 200 topics at 50 per frame and 4 frames a second ≈ 1 s (connections work in parallel).
  console.log(`subscribe storm: 1,000 topics on ${stats.live.length} connections in ${subscribeMs} ms; ${stats.subscribeFrames} SUBSCRIBE frames; most frames in one window ${stats.maxControlInWindow}`);

  const first = await exchange.tick();
  await eventually(() => workers.every((w, i) => topicsOf(i).every((t) => w.received(t).includes(first[t]!))), 'every worker to receive the first tick of each of its 300 topics');
  for (const [i, w] of workers.entries()) for (const t of topicsOf(i)) assert.deepEqual(w.received(t), [first[t]], `worker ${i} got ${t} once`);

  // A crash: no close frame. The restarted exchange continues the same seqs.
  const port = exchange.port;
  const seqs = { ...exchange.seqs };
  await exchange.kill();
  const replayStart = Date.now();
  exchange = await ExchangeProcess.start({ ...limits, port, start: seqs });
  await eventually(async () => Object.keys((await exchange.stats()).subscribes).length === 1000, 'the restarted exchange to get all 1,000 topics again', 60_000, 100);
  const replayMs = Date.now() - replayStart;
  stats = await exchange.stats();
  assert.deepEqual(stats.limitCloses, { maxSubscriptions: 0, maxControlPerSecond: 0 }, 'the replay broke no limit');
  assert.ok(Object.values(stats.subscribes).every((n) => n === 1), 'each topic replayed exactly once');
  assert.equal(stats.refusedConnections, 0, 'reconnects stayed under the connection rate');
  console.log(`replay after a restart: 1,000 topics in ${replayMs} ms on ${stats.live.length} connections, ${stats.subscribeFrames} frames`);

  const second = await exchange.tick();
  await eventually(() => workers.every((w, i) => topicsOf(i).every((t) => w.received(t).includes(second[t]!))), 'every worker to receive the tick after the restart');
  for (const [i, w] of workers.entries()) for (const t of topicsOf(i)) assert.deepEqual(w.received(t), [first[t], second[t]], `worker ${i}: ${t} once per tick`);
  assert.equal(upstreamOf(hub.hub, 'feed').pool.connections.length, 5);
});

test('naive workers, one SUBSCRIBE per topic, 1,000 topics: the hub combines and paces them under the exchange\'s 5 frames/s with no limit close, though frames are sent in bursts the exchange reads late', { timeout: 60_000 }, async () => {
  const exchange = await ExchangeProcess.start({ maxSubscriptions: 200, maxControlPerSecond: 5, maxConnectionsPerSecond: 10 });
  cleanups.push(() => exchange.kill());
  const hub: TestHub = await startTestHub({
    feed: {
      url: exchange.url, adapter: 'json', topic: 'stream', subscribe: SUBSCRIBE, unsubscribe: UNSUBSCRIBE,
      maxTopicsPerConnection: 200, controlRate: { messages: 4, perMs: 1000 }, connectRate: { connections: 5, perMs: 1000 },
    },
  });
  cleanups.push(() => hub.close());
  const workers = await Promise.all(Array.from({ length: 5 }, () => new ExchangeWorker(hub.url('feed')).open()));
  const ids = workers.map((w, i) => w.subscribe(topicsOf(i), 1));
  await eventually(async () => Object.keys((await exchange.stats()).subscribes).length === 1000, 'the exchange to have all 1,000 topics subscribed', 30_000, 100);
  await eventually(() => workers.every((w, i) => ids[i]!.every((id) => w.answers.some((a) => a.id === id && a.error === undefined))), 'every one of the 1,500 worker frames answered');
  const stats = await exchange.stats();
  assert.deepEqual(stats.limitCloses, { maxSubscriptions: 0, maxControlPerSecond: 0 }, 'the exchange never closed the hub for a limit');
  assert.ok(Object.values(stats.subscribes).every((n) => n === 1), 'each topic subscribed exactly once');
  assert.ok(stats.subscribeFrames < 100, `1,500 one-topic subscribes combined into few frames (saw ${stats.subscribeFrames})`);
  assert.equal(stats.unsubscribeFrames, 0, 'nothing unsubscribed');
});

test('three endpoints on one clock feed: kill the preferred → the second, kill it → the third; restart the first → back on it after a probe, no seq twice, none missed across the failback', { timeout: 90_000 }, async () => {
  const clock = { startMs: Date.now(), intervalMs: 25 };
  const endpoints = await Promise.all([0, 1, 2].map(() => ExchangeProcess.start({ clock })));
  cleanups.push(() => Promise.all(endpoints.map((e) => e.kill())));
  const hub = await startTestHub({
    feed: {
      urls: endpoints.map((e) => e.url), adapter: 'json', topic: 'stream', subscribe: SUBSCRIBE, unsubscribe: UNSUBSCRIBE,
      sequenceField: 'data.seq', failoverAfter: 2, failbackProbeMs: 300, onUpstreamLoss: 'hold',
      backoff: { minDelayMs: 50, maxDelayMs: 200, concealFailures: 20 },
    },
  });
  cleanups.push(() => hub.close());
  const topics = ['btc', 'eth', 'sol'];
  const worker = await new ExchangeWorker(hub.url('feed')).open();
  worker.subscribe(topics);
  const endpointOf = (): string => upstreamOf(hub.hub, 'feed').pool.endpoint;
  const flowing = async (what: string): Promise<void> => {
    const before = topics.map((t) => worker.received(t).length);
    await eventually(() => topics.every((t, i) => worker.received(t).length > before[i]! + 3), what, 15_000);
  };
  await flowing('ticks from the preferred endpoint');
  assert.equal(endpointOf(), endpoints[0]!.url);

  const killA = Date.now();
  await endpoints[0]!.kill();
  await eventually(() => endpointOf() === endpoints[1]!.url, 'failover to the second endpoint', 15_000);
  await flowing('ticks from the second endpoint');
  const toB = Date.now() - killA;

  await endpoints[1]!.kill();
  await eventually(() => endpointOf() === endpoints[2]!.url, 'failover to the third endpoint', 15_000);
  await flowing('ticks from the third endpoint');

  // From here on nothing may be missed: the failback is make-before-break.
  const mark = topics.map((t) => worker.received(t).length);
  endpoints[0] = await ExchangeProcess.start({ clock, port: endpoints[0]!.port });
  await eventually(() => endpointOf() === endpoints[0]!.url && !upstreamOf(hub.hub, 'feed').pool.handover, 'failback to the preferred endpoint', 20_000);
  await flowing('ticks after the failback');
  const pool = upstreamOf(hub.hub, 'feed').pool;
  assert.equal(pool.failovers, 2);
  assert.equal(pool.failbacks, 1);
  for (const [i, t] of topics.entries()) {
    const seqs = worker.received(t);
    for (let k = 1; k < seqs.length; k++) assert.ok(seqs[k]! > seqs[k - 1]!, `${t}: seq ${seqs[k]} after ${seqs[k - 1]} (a repeat or reorder)`);
    const tail = seqs.slice(mark[i]! - 1);
    for (let k = 1; k < tail.length; k++) assert.equal(tail[k], tail[k - 1]! + 1, `${t}: seq ${tail[k - 1]! + 1} missed around the failback`);
  }
  console.log(`failover kill→second endpoint streaming: ${toB} ms; failovers ${pool.failovers}, failbacks ${pool.failbacks}`);
});
