/**
 * What a worker meets when it attaches and when its upstream goes away:
 * unknown query parameters and unavailable subprotocols are refused with a
 * clear reason instead of silently meaning something else; transparent
 * sessions follow `onUpstreamLoss` — `close` ends them with 1012 once the
 * outage is reported (after concealFailures) and refuses new ones until the
 * upstream is back, `hold` keeps them attached.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket, { WebSocketServer } from 'ws';
import { eventually, freePort, startTestHub, upstreamOf, Worker, type TestHub, runCleanup } from './helpers.js';

const cleanup: Array<() => unknown> = [];
after(() => runCleanup(cleanup));

async function upstreamOn(port: number): Promise<WebSocketServer> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port, handleProtocols: (p) => (p.has('feed-v1') ? 'feed-v1' : false) });
  await new Promise((r) => wss.once('listening', r));
  return wss;
}

async function stop(wss: WebSocketServer): Promise<void> {
  for (const c of wss.clients) c.terminate();
  await new Promise((r) => wss.close(r));
}

/** The refusal of an upgrade: HTTP status and body. */
function refusal(url: string, protocols: string[] = []): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols);
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    ws.on('open', () => reject(new Error(`${url} was accepted`)));
    ws.on('error', () => undefined);
  });
}

test('attach: an unknown query parameter is refused 400 naming the known ones; a subprotocol the upstream was not opened with is refused naming the configured ones', async () => {
  const port = await freePort();
  const wss = await upstreamOn(port);
  cleanup.push(() => stop(wss));
  const hub: TestHub = await startTestHub({ feed: { url: `ws://127.0.0.1:${port}/`, protocols: ['feed-v1'], pingIntervalMs: 0 } });
  cleanup.push(() => hub.close());
  await eventually(() => upstreamOf(hub.hub, 'feed').client.state === 'open', 'open');

  const typo = await refusal(hub.url('feed', 'grup=pricers'));
  assert.equal(typo.status, 400);
  assert.match(typo.body, /ERR_UNKNOWN_QUERY/);
  assert.match(typo.body, /"grup"/);
  assert.match(typo.body, /group, snapshot, slowConsumer/);

  const proto = await refusal(hub.url('feed'), ['feed-v2']);
  assert.equal(proto.status, 400);
  assert.match(proto.body, /ERR_SUBPROTOCOL_UNAVAILABLE/);
  assert.match(proto.body, /protocols feed-v1/);
  assert.match(proto.body, /asked for feed-v2/);

  // The known parameters and the right subprotocol still attach.
  const ok = new Worker(hub.url('feed', 'group=pricers&snapshot=1'), { protocol: 'feed-v1' });
  cleanup.push(() => ok.kill('SIGKILL'));
  assert.equal((await ok.opened()).protocol, 'feed-v1');
  assert.equal(hub.hub.stats().server.rejected.ERR_UNKNOWN_QUERY, 1);
});

for (const policy of ['close', 'hold'] as const) {
  test(`onUpstreamLoss: ${policy} — transparent workers ${policy === 'close' ? 'are closed with 1012 once the outage is reported, and refused until the upstream is back' : 'stay attached through the outage and receive again after it'}`, async () => {
    const port = await freePort();
    let wss = await upstreamOn(port);
    const hub: TestHub = await startTestHub({
      feed: { url: `ws://127.0.0.1:${port}/`, pingIntervalMs: 0, onUpstreamLoss: policy, backoff: { minDelayMs: 50, maxDelayMs: 100, concealFailures: 2 } },
    });
    cleanup.push(() => hub.close());
    await eventually(() => upstreamOf(hub.hub, 'feed').client.state === 'open', 'open');
    const w = new Worker(hub.url('feed'));
    cleanup.push(() => w.kill('SIGKILL'));
    await w.opened();
    await stop(wss);
    if (policy === 'close') {
      const closed = await w.waitFor('close', 10_000);
      assert.equal(closed.code, 1012);
      assert.match(String(closed.reason), /upstream lost/);
      const history = upstreamOf(hub.hub, 'feed').history;
      assert.ok(history.some((h) => h.outage), 'closed only once the outage was reported');
      const refused = await refusal(hub.url('feed'));
      assert.equal(refused.status, 503);
      assert.match(refused.body, /ERR_UPSTREAM_LOST/);
    } else {
      await eventually(() => upstreamOf(hub.hub, 'feed').history.some((h) => h.outage), 'the outage reported');
      assert.equal(w.events.find((e) => e.ev === 'close'), undefined, 'still attached');
    }
    wss = await upstreamOn(port);
    cleanup.push(() => stop(wss));
    await eventually(() => upstreamOf(hub.hub, 'feed').client.state === 'open', 'open again', 10_000);
    const next = policy === 'close' ? new Worker(hub.url('feed')) : w;
    if (next !== w) cleanup.push(() => next.kill('SIGKILL'));
    await next.opened();
    await eventually(() => wss.clients.size === 1, 'the hub reconnected');
    for (const c of wss.clients) c.send('{"topic":"t","seq":0}');
    await eventually(async () => (await next.report()).messages >= 1, 'a message after the outage');
  });
}
