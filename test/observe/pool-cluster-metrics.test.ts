/**
 * The pool and cluster series of /metrics, read against what happened and
 * against /status (one snapshot feeds both):
 * - a pool of two endpoints whose preferred one dies: one failover, the
 *   second endpoint current, one shard;
 * - a hub alone in a cluster (a real nats-server): it holds the upstream,
 *   took the lease once, publishes every upstream message to NATS.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { DemoFeed, demoUpstreamConfig } from '../../src/demo/feed.js';
import type { Hub } from '../../src/hub/hub.js';
import { HubHttpServer } from '../../src/observe/http.js';
import type { ObservedStats } from '../../src/observe/snapshot.js';
import { NatsServer } from '../cluster/helpers.js';
import { eventually, runCleanup, startTestHub } from '../hub/helpers.js';
import { scrape } from './prom.js';

const cleanups: Array<() => unknown> = [];
after(() => runCleanup(cleanups));

async function serve(hub: Hub): Promise<string> {
  const http = new HubHttpServer(hub);
  const { port } = await http.listen('127.0.0.1', 0);
  cleanups.push(() => http.close());
  return `http://127.0.0.1:${port}`;
}

async function status(base: string): Promise<ObservedStats> {
  const res = await fetch(`${base}/status`, { signal: AbortSignal.timeout(5000) });
  return (await res.json()) as ObservedStats;
}

function subscriber(url: string): { ws: WebSocket; ticks: () => number } {
  let ticks = 0;
  const ws = new WebSocket(url, ['feed-v1']);
  ws.on('message', (raw) => { if ((JSON.parse((raw as Buffer).toString()) as { stream?: string }).stream) ticks++; });
  ws.once('open', () => ws.send(JSON.stringify({ method: 'SUBSCRIBE', params: ['btcusdt@trade'], id: 1 })));
  cleanups.push(() => ws.terminate());
  return { ws, ticks: () => ticks };
}

test('pool series: the preferred endpoint dies → failovers_total 1, the second endpoint current, one shard; equal to /status', async () => {
  const a = new DemoFeed({ tickMs: 3_600_000 });
  const b = new DemoFeed({ tickMs: 3_600_000 });
  await Promise.all([a.ready(), b.ready()]);
  cleanups.push(() => a.close(), () => b.close());
  const [urlA, urlB] = [a.url, b.url];
  const { url: _url, ...feed } = demoUpstreamConfig(urlA);
  const hub = await startTestHub({ feed: { ...feed, urls: [urlA, urlB], failoverAfter: 1, failbackProbeMs: 3_600_000, backoff: { minDelayMs: 50, maxDelayMs: 100 }, onUpstreamLoss: 'hold' } });
  cleanups.push(() => hub.close());
  const base = await serve(hub.hub);
  const worker = subscriber(hub.url('feed'));
  await eventually(() => a.subscribes.get('btcusdt@trade') === 1, 'the subscribe on the preferred endpoint');

  let m = await scrape(base);
  assert.equal(m.get('wshub_upstream_failovers_total', { upstream: 'feed' }), 0);
  assert.equal(m.get('wshub_upstream_endpoint_current', { upstream: 'feed', endpoint: urlA }), 1);
  assert.equal(m.get('wshub_upstream_endpoint_current', { upstream: 'feed', endpoint: urlB }), 0);

  await a.close();
  await eventually(() => b.subscribes.get('btcusdt@trade') === 1, 'the topic re-subscribed on the second endpoint');
  b.tick();
  await eventually(() => worker.ticks() === 1, 'a tick from the second endpoint');
  m = await scrape(base);
  const s = (await status(base)).upstreams.find((u) => u.name === 'feed')!;
  assert.equal(m.get('wshub_upstream_failovers_total', { upstream: 'feed' }), 1);
  assert.equal(s.pool.failovers, 1);
  assert.equal(m.get('wshub_upstream_failbacks_total', { upstream: 'feed' }), 0);
  assert.equal(m.get('wshub_upstream_endpoint_current', { upstream: 'feed', endpoint: urlB }), 1);
  assert.equal(m.get('wshub_upstream_endpoint_current', { upstream: 'feed', endpoint: urlA }), 0);
  assert.equal(m.get('wshub_upstream_shards', { upstream: 'feed' }), 1);
  assert.equal(m.get('wshub_upstream_paced_frames_total', { upstream: 'feed' }), s.pool.pacedFrames);
  assert.equal(m.types.get('wshub_upstream_failovers_total'), 'counter');
  assert.equal(m.types.get('wshub_upstream_shards'), 'gauge');
  // Without cluster: no cluster series at all.
  assert.equal(m.find('wshub_cluster_nats_connected').length, 0);
});

test('cluster series: a hub alone in a cluster holds the upstream, took the lease once, publishes every upstream message; equal to /status', async () => {
  const nats = await new NatsServer().start();
  cleanups.push(() => nats.dispose());
  const feed = new DemoFeed({ tickMs: 3_600_000 });
  await feed.ready();
  cleanups.push(() => feed.close());
  const hub = await startTestHub({ feed: demoUpstreamConfig(feed.url) }, { cluster: { nats: nats.url, name: 'metrics', leaseTtlMs: 1500, hubName: 'solo' } });
  cleanups.push(() => hub.close());
  const base = await serve(hub.hub);
  await eventually(() => hub.hub.cluster?.stats().upstreams[0]?.role === 'holder', 'the hub to take the lease');
  const worker = subscriber(hub.url('feed'));
  await eventually(() => feed.subscribes.get('btcusdt@trade') === 1, 'the subscribe upstream');
  for (let i = 0; i < 5; i++) feed.tick();
  await eventually(() => worker.ticks() === 5, 'five ticks at the worker');

  const m = await scrape(base);
  const s = (await status(base)).cluster!;
  assert.equal(s.hubName, 'solo');
  assert.equal(m.get('wshub_cluster_role', { upstream: 'feed', role: 'holder' }), 1);
  assert.equal(m.get('wshub_cluster_role', { upstream: 'feed', role: 'follower' }), 0);
  assert.equal(m.get('wshub_cluster_takeovers_total', { upstream: 'feed' }), 1);
  assert.equal(m.get('wshub_cluster_fences_total', { upstream: 'feed' }), 0);
  assert.equal(m.get('wshub_cluster_nats_connected', { cluster: 'metrics' }), 1);
  // The subscribe's answer is for the worker alone; the five ticks went to NATS.
  assert.equal(m.get('wshub_cluster_published_messages_total', { upstream: 'feed' }), 5);
  assert.equal(s.upstreams[0]!.bus.published, 5);
  assert.equal(m.get('wshub_cluster_epoch', { upstream: 'feed' }), s.upstreams[0]!.holder!.epoch);
  assert.equal(m.get('wshub_cluster_fenced_publishes_prevented_total', { upstream: 'feed' }), 0);
});
