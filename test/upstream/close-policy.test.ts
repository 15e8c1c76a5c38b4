import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type AddressInfo } from 'node:net';
import { ResilientWebSocket } from '../../src/upstream/resilient.js';
import type { ResilientWebSocketOptions } from '../../src/upstream/types.js';
import { delay, record, startWsServer, waitState } from './helpers.js';

const fastBackoff = { minDelayMs: 20, maxDelayMs: 40, floorMs: 10 };

/** A server that closes every connection right away with `code` and `reason`; counts connections. */
async function closingServer(code: number, reason: string): Promise<{ url: string; connections: () => number; close: () => Promise<void> }> {
  const server = await startWsServer('127.0.0.1');
  let connections = 0;
  server.wss.on('connection', (ws) => {
    connections++;
    ws.close(code, reason);
  });
  return { url: server.url, connections: () => connections, close: server.close };
}

test('server closes 1001 → ERR_SERVER_CLOSED, reconnects', async (t) => {
  const server = await closingServer(1001, 'going away');
  const client = new ResilientWebSocket({ url: server.url, backoff: fastBackoff });
  t.after(async () => {
    client.destroy();
    await server.close();
  });
  const first = waitState(client, 'reconnecting');
  client.connect();
  const change = await first;
  assert.equal(change.cause?.code, 'ERR_SERVER_CLOSED');
  assert.equal(change.reason, 'server closed 1001 "going away"');
  assert.equal(client.stats().lastClose?.code, 1001);
  await waitState(client, 'open', 3000);
  assert.ok(server.connections() >= 2);
});

for (const [code, options] of [
  [1008, {}],
  [4001, { fatalCloseCodes: [[4000, 4099]] }],
  [4500, { fatalCloseCodes: [1008, 4500] }],
] as Array<[number, Partial<ResilientWebSocketOptions>]>) {
  test(`server closes ${code} (fatal by ${options.fatalCloseCodes ? JSON.stringify(options.fatalCloseCodes) : 'default'}) → closed with ERR_FATAL_CLOSE_CODE, no retry`, async (t) => {
    const server = await closingServer(code, 'auth failed');
    const client = new ResilientWebSocket({ url: server.url, backoff: fastBackoff, ...options });
    t.after(async () => {
      client.destroy();
      await server.close();
    });
    const log = record(client);
    client.send('queued before connect', { tag: 'q1' });
    const closed = waitState(client, 'closed');
    client.connect();
    const change = await closed;
    assert.equal(change.cause?.code, 'ERR_FATAL_CLOSE_CODE');
    assert.match(change.cause?.message ?? '', new RegExp(`server closed ${code} "auth failed"`));
    assert.equal(change.cause?.details.closeCode, code);
    await delay(200);
    assert.equal(server.connections(), 1);
    assert.deepEqual(log.states.map((s) => s.to), ['connecting', 'open', 'closed']);
    assert.equal(client.stats().lastClose?.code, code);
    assert.equal(client.stats().lastClose?.reason, `server closed ${code} "auth failed"`);
    // The queued message was flushed on open, so nothing was dropped.
    assert.deepEqual(log.drops, []);
  });
}

test('a close code outside the fatal list (4001 with defaults) reconnects', async (t) => {
  const server = await closingServer(4001, 'later');
  const client = new ResilientWebSocket({ url: server.url, backoff: fastBackoff });
  t.after(async () => {
    client.destroy();
    await server.close();
  });
  const first = waitState(client, 'reconnecting');
  client.connect();
  assert.equal((await first).cause?.code, 'ERR_SERVER_CLOSED');
});

test('maxAttempts stops after exactly that many consecutive failures with ERR_MAX_ATTEMPTS', async (t) => {
  const probe = createServer();
  probe.listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const port = (probe.address() as AddressInfo).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  const client = new ResilientWebSocket({ url: `ws://127.0.0.1:${port}/`, backoff: { ...fastBackoff, maxAttempts: 3, concealFailures: 1 } });
  t.after(() => client.destroy());
  const log = record(client);
  client.send('a', { tag: 'A' });
  client.send('b', { tag: 'B' });
  const closed = waitState(client, 'closed', 5000);
  client.connect();
  const change = await closed;
  assert.equal(change.cause?.code, 'ERR_MAX_ATTEMPTS');
  assert.equal((change.cause?.cause as { code?: string } | undefined)?.code, 'ERR_TCP_CONNECT');
  assert.match(change.cause?.message ?? '', /^ERR_MAX_ATTEMPTS 3 consecutive attempts failed/);
  assert.equal(log.states.filter((s) => s.to === 'connecting').length, 3);
  const reconnecting = log.states.filter((s) => s.to === 'reconnecting');
  assert.deepEqual(reconnecting.map((s) => [s.attempt, s.outage]), [[1, false], [2, true]]);
  assert.deepEqual(log.drops.map((d) => [d.reason, d.tag]), [['ERR_QUEUE_CLOSED', 'A'], ['ERR_QUEUE_CLOSED', 'B']]);
  assert.equal(client.stats().dropped.ERR_QUEUE_CLOSED, 2);
  assert.throws(() => client.connect(), { code: 'ERR_CLOSED' });
});

test('reconnect(reason) forces a fresh connection at once, without counting a failure', async (t) => {
  const server = await startWsServer('127.0.0.1');
  const closes: number[] = [];
  server.wss.on('connection', (ws) => ws.on('close', (code) => closes.push(code)));
  const client = new ResilientWebSocket({ url: server.url });
  t.after(async () => {
    client.destroy();
    await server.close();
  });
  const opened = waitState(client, 'open');
  client.connect();
  await opened;
  const again = waitState(client, 'open', 3000);
  const log = record(client);
  client.reconnect('hub asked');
  await again;
  assert.deepEqual(log.states.map((s) => [s.to, s.delayMs]), [['reconnecting', 0], ['connecting', undefined], ['open', undefined]]);
  assert.equal(log.states[0]?.reason, 'reconnect(): hub asked');
  assert.equal(client.stats().connections, 2);
  assert.equal(client.stats().attempt, 0);
  await delay(100);
  assert.deepEqual(closes, [1000], 'the old connection got a proper close frame');
});

test('close() is graceful, final and idempotent; destroy() after it is a no-op', async (t) => {
  const server = await startWsServer('127.0.0.1');
  const closes: Array<[number, string]> = [];
  server.wss.on('connection', (ws) => ws.on('close', (code, reason) => closes.push([code, reason.toString()])));
  const client = new ResilientWebSocket({ url: server.url });
  t.after(() => server.close());
  const opened = waitState(client, 'open');
  client.connect();
  await opened;
  const p1 = client.close(4000, 'bye');
  const p2 = client.close();
  assert.equal(p1, p2);
  assert.equal(client.state, 'closed');
  await p1;
  client.destroy();
  await delay(50);
  assert.deepEqual(closes, [[4000, 'bye']]);
  const result = client.send('late');
  assert.equal(result.ok, false);
  if (!result.ok) assert.equal(result.error.code, 'ERR_CLOSED');
  assert.equal(client.stats().dropped.ERR_CLOSED, 1);
});

test('close() with an invalid code rejects with ERR_INVALID_OPTION and changes nothing', async () => {
  const client = new ResilientWebSocket({ url: 'ws://127.0.0.1:1/' });
  await assert.rejects(client.close(1006), { code: 'ERR_INVALID_OPTION' });
  assert.equal(client.state, 'idle');
  await client.close();
  assert.equal(client.state, 'closed');
});

test('a protocol violation by the server (invalid UTF-8 in a text frame) → ERR_PROTOCOL and a retry, never a fatal 1007', async (t) => {
  const server = await startWsServer('127.0.0.1');
  let connections = 0;
  server.wss.on('connection', (ws) => {
    // ws does not validate what it sends: this is a text frame carrying bytes that are not UTF-8.
    if (++connections === 1) ws.send(Buffer.from([0x68, 0xff, 0xfe]), { binary: false });
  });
  const client = new ResilientWebSocket({ url: server.url, backoff: fastBackoff });
  t.after(async () => {
    client.destroy();
    await server.close();
  });
  const lost = waitState(client, 'reconnecting');
  client.connect();
  const change = await lost;
  assert.equal(change.cause?.code, 'ERR_PROTOCOL');
  assert.equal(change.cause?.details.errno, 'WS_ERR_INVALID_UTF8');
  assert.match(change.cause?.message ?? '', /^ERR_PROTOCOL 127\.0\.0\.1:\d+ \(upstream violated the protocol \(WS_ERR_INVALID_UTF8/);
  await waitState(client, 'open', 3000);
  assert.equal(client.stats().connections, 2);
});

test('a message larger than maxPayload → ERR_PAYLOAD_TOO_LARGE and a retry', async (t) => {
  const server = await startWsServer('127.0.0.1');
  let connections = 0;
  server.wss.on('connection', (ws) => {
    if (++connections === 1) ws.send(Buffer.alloc(2048));
  });
  const client = new ResilientWebSocket({ url: server.url, maxPayload: 1024, backoff: fastBackoff });
  t.after(async () => {
    client.destroy();
    await server.close();
  });
  const messages: number[] = [];
  client.on('message', (data) => messages.push(data.length));
  const lost = waitState(client, 'reconnecting');
  client.connect();
  const change = await lost;
  assert.equal(change.cause?.code, 'ERR_PAYLOAD_TOO_LARGE');
  assert.equal(change.cause?.details.errno, 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH');
  await waitState(client, 'open', 3000);
  assert.deepEqual(messages, [], 'the oversized message was never delivered');
});

test('attempt grows while connections flap and resets once one stays up for minUptimeMs', async (t) => {
  const server = await startWsServer('127.0.0.1');
  let connections = 0;
  server.wss.on('connection', (ws) => {
    connections++;
    // Three short-lived connections, then one that lives 400 ms (> minUptimeMs), then another short one.
    if (connections <= 3 || connections === 5) ws.close(1012, 'restart');
    else if (connections === 4) setTimeout(() => ws.close(1012, 'restart'), 400);
  });
  const client = new ResilientWebSocket({ url: server.url, backoff: { ...fastBackoff, minUptimeMs: 200, concealFailures: 2 } });
  t.after(async () => {
    client.destroy();
    await server.close();
  });
  const log = record(client);
  client.connect();
  await waitState(client, 'open', 5000, () => connections === 6);
  const retries = log.states.filter((s) => s.to === 'reconnecting').map((s) => [s.attempt, s.outage]);
  assert.deepEqual(retries, [[1, false], [2, false], [3, true], [1, false], [2, false]]);
});
