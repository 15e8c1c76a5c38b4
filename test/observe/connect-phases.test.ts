/**
 * `wshub_upstream_connect_phase_seconds{upstream,phase}`: the connect-phase
 * histograms of each upstream, read from the one stats snapshot. A hub with
 * a ws upstream on an IP literal (no DNS, no TLS) and a wss upstream on a
 * name (every phase) is scraped over HTTP; the parsed histogram must be well
 * formed and equal /status, and grow by exactly one observation per phase
 * when the ws upstream reconnects.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { DemoFeed, demoUpstreamConfig } from '../../src/demo/feed.js';
import { HubHttpServer } from '../../src/observe/http.js';
import type { ObservedStats } from '../../src/observe/snapshot.js';
import { CONNECT_PHASE_BUCKETS_MS } from '../../src/upstream/phases.js';
import type { ConnectPhase } from '../../src/upstream/types.js';
import { eventually, startTestHub } from '../hub/helpers.js';
import { makeCert, startWssServer } from '../upstream/helpers.js';
import { scrape, type Exposition } from './prom.js';

const METRIC = 'wshub_upstream_connect_phase_seconds';
const PHASES: ConnectPhase[] = ['dns', 'tcp', 'tls', 'upgrade'];

const cleanups: Array<() => Promise<void> | void> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function status(base: string): Promise<ObservedStats> {
  const res = await fetch(`${base}/status`, { signal: AbortSignal.timeout(5000) });
  assert.equal(res.status, 200);
  return (await res.json()) as ObservedStats;
}

/** The histogram of one upstream and phase as exposed, checked for shape: every bound, cumulative, +Inf = count. */
function histogram(exp: Exposition, upstream: string, phase: ConnectPhase): { buckets: number[]; inf: number; sum: number; count: number } {
  const labels = { upstream, phase };
  const samples = exp.find(`${METRIC}_bucket`, labels);
  const bounds = samples.map((s) => s.labels.le);
  assert.deepEqual(bounds, [...CONNECT_PHASE_BUCKETS_MS.map((ms) => String(ms / 1000)), '+Inf'], `${upstream}/${phase} bounds in seconds`);
  const buckets = samples.slice(0, -1).map((s) => s.value);
  const inf = samples.at(-1)?.value ?? NaN;
  for (let i = 1; i < buckets.length; i++) assert.ok((buckets[i] ?? 0) >= (buckets[i - 1] ?? 0), `${upstream}/${phase} cumulative`);
  const count = exp.get(`${METRIC}_count`, labels);
  const sum = exp.get(`${METRIC}_sum`, labels);
  assert.ok(count !== undefined && sum !== undefined, `${upstream}/${phase} has _sum and _count`);
  assert.equal(inf, count, `${upstream}/${phase}: the +Inf bucket is the count`);
  assert.ok((buckets.at(-1) ?? 0) <= inf);
  return { buckets, inf, sum, count };
}

/** Every phase of every upstream equals the /status snapshot: counts, cumulative buckets, sum in seconds. */
function assertEqualsStatus(exp: Exposition, s: ObservedStats): void {
  for (const u of s.upstreams) {
    const phases = u.client.connectPhases;
    assert.ok(phases, `${u.name} has connectPhases in /status`);
    for (const phase of PHASES) {
      const h = histogram(exp, u.name, phase);
      assert.equal(h.count, phases[phase].count, `${u.name}/${phase} count`);
      assert.deepEqual(h.buckets, phases[phase].counts, `${u.name}/${phase} buckets`);
      assert.equal(h.sum, phases[phase].sum / 1000, `${u.name}/${phase} sum`);
    }
  }
}

test('connect phases are exposed as Prometheus histograms per upstream and phase, equal to the snapshot', async () => {
  const cert = makeCert();
  cleanups.push(() => cert.cleanup());
  let feed = new DemoFeed({ tickMs: 3_600_000 });
  await feed.ready();
  const feedPort = feed.port;
  cleanups.push(() => feed.close());
  const secure = await startWssServer(cert);
  cleanups.push(() => secure.close());

  const hub = await startTestHub({
    feed: { ...demoUpstreamConfig(feed.url), pingIntervalMs: 0, backoff: { minDelayMs: 100, maxDelayMs: 100, floorMs: 100 } },
    // A name, resolved by the system resolver (localhost is in every hosts file): all four phases.
    secure: { url: `wss://localhost:${secure.port}/`, caFile: join(cert.dir, 'cert.pem'), pingIntervalMs: 0 },
  });
  cleanups.push(() => hub.close());
  const http = new HubHttpServer(hub.hub);
  const { port } = await http.listen('127.0.0.1', 0);
  cleanups.push(() => http.close());
  const base = `http://127.0.0.1:${port}`;
  await eventually(() => hub.hub.stats().upstreams.every((u) => u.client.state === 'open'), 'both upstreams open');

  const exp = await scrape(base);
  assert.equal(exp.types.get(METRIC), 'histogram');
  assert.ok(exp.help.get(METRIC)?.includes('connect phase'));
  const counts = (upstream: string): number[] => PHASES.map((phase) => histogram(exp, upstream, phase).count);
  assert.deepEqual(counts('feed'), [0, 1, 0, 1], 'ws on an IP literal: tcp and upgrade only');
  assert.deepEqual(counts('secure'), [1, 1, 1, 1], 'wss on a name: every phase');
  for (const phase of ['tcp', 'upgrade'] as const) assert.ok(histogram(exp, 'feed', phase).sum > 0, `feed ${phase} took some time`);
  assertEqualsStatus(exp, await status(base));

  // The feed restarts on the same port: one more observation of each of its phases, the other upstream unchanged.
  await feed.close();
  await eventually(() => hub.hub.stats().upstreams.find((u) => u.name === 'feed')?.client.state !== 'open', 'the hub saw the feed go');
  feed = new DemoFeed({ tickMs: 3_600_000, port: feedPort });
  await feed.ready();
  await eventually(() => hub.hub.stats().upstreams.find((u) => u.name === 'feed')?.client.connections === 2, 'the feed reconnected');
  const again = await scrape(base);
  const countsAgain = (upstream: string): number[] => PHASES.map((phase) => histogram(again, upstream, phase).count);
  assert.deepEqual(countsAgain('feed'), [0, 2, 0, 2]);
  assert.deepEqual(countsAgain('secure'), [1, 1, 1, 1]);
  assert.ok(histogram(again, 'feed', 'tcp').sum >= histogram(exp, 'feed', 'tcp').sum);
  assertEqualsStatus(again, await status(base));
});
