/**
 * /events: the first snapshot on connect, another at once when an upstream
 * changes state (not at the next interval), and a bounded number of clients.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { get } from 'node:http';
import { DemoFeed, demoUpstreamConfig } from '../../src/demo/feed.js';
import { HubHttpServer, type PageSnapshot } from '../../src/observe/http.js';
import { eventually, startTestHub } from '../hub/helpers.js';

const cleanups: Array<() => Promise<void> | void> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

/** Follow /events, parsing every stats event. */
function follow(base: string): { snapshots: PageSnapshot[]; status: Promise<number>; close: () => void } {
  const snapshots: PageSnapshot[] = [];
  let buffer = '';
  let resolveStatus!: (n: number) => void;
  const status = new Promise<number>((r) => (resolveStatus = r));
  const req = get(`${base}/events`, (res) => {
    resolveStatus(res.statusCode ?? 0);
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => {
      buffer += chunk;
      let end: number;
      while ((end = buffer.indexOf('\n\n')) !== -1) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = /^event: stats\ndata: (.*)$/m.exec(block);
        if (data) snapshots.push(JSON.parse(data[1]!) as PageSnapshot);
      }
    });
  });
  req.on('error', () => resolveStatus(-1));
  return { snapshots, status, close: () => req.destroy() };
}

test('/events pushes a snapshot on connect and at once on an upstream state change, not only every interval', async () => {
  const feed = new DemoFeed({ tickMs: 3_600_000 });
  await feed.ready();
  const hub = await startTestHub({ feed: { ...demoUpstreamConfig(feed.url), pingIntervalMs: 0, backoff: { minDelayMs: 60_000, maxDelayMs: 60_000 } } });
  cleanups.push(() => hub.close());
  await eventually(() => hub.hub.stats().upstreams[0]?.client.state === 'open', 'upstream open');
  // A one-minute interval: any push within the test's bounds came from the state change.
  const http = new HubHttpServer(hub.hub, { eventsIntervalMs: 60_000, maxEventClients: 1 });
  const { port } = await http.listen('127.0.0.1', 0);
  cleanups.push(() => http.close());
  const base = `http://127.0.0.1:${port}`;

  const stream = follow(base);
  cleanups.push(stream.close);
  assert.equal(await stream.status, 200);
  await eventually(() => stream.snapshots.length === 1, 'the snapshot on connect');
  assert.equal(stream.snapshots[0]!.upstreams[0]!.client.state, 'open');
  assert.equal(stream.snapshots[0]!.health.ok, true);
  assert.equal(stream.snapshots[0]!.connectionsTotal, 0);

  // One client at most: the next is refused, the first keeps its stream.
  const second = follow(base);
  cleanups.push(second.close);
  assert.equal(await second.status, 503);
  const head = await fetch(`${base}/events`, { method: 'HEAD', signal: AbortSignal.timeout(5000) });
  assert.equal(head.status, 200, 'HEAD answers without holding a stream open');

  await feed.close();
  const pushed = await eventually(() => stream.snapshots.find((s) => s.upstreams[0]!.client.state !== 'open'), 'a push showing the upstream down', 5000);
  assert.equal(pushed.health.ok, false);
  assert.match(pushed.health.reasons[0]!, /^upstream feed is reconnecting/);
  assert.ok(stream.snapshots.length <= 3, `state changes coalesced into few pushes: ${stream.snapshots.length}`);

  await http.close();
  await http.close();
});

test('a snapshot that throws inside the push timer costs that push only: counted, and the stream goes on', async () => {
  const hub = await startTestHub({});
  cleanups.push(() => hub.close());
  const http = new HubHttpServer(hub.hub, { eventsIntervalMs: 50 });
  let calls = 0;
  const real = http.pageSnapshot.bind(http);
  // Every other push fails, as a bug in a stats source would.
  http.pageSnapshot = () => {
    if (++calls % 2 === 0) throw new Error('stats source bug');
    return real();
  };
  const { port } = await http.listen('127.0.0.1', 0);
  cleanups.push(() => http.close());
  const stream = follow(`http://127.0.0.1:${port}`);
  cleanups.push(() => stream.close());
  assert.equal(await stream.status, 200);
  await eventually(() => stream.snapshots.length >= 3 && http.events.failed >= 2, 'pushes on both sides of failures');
  assert.equal((http.events.lastError as Error).message, 'stats source bug');
});
