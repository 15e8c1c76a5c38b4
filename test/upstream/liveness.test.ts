import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ResilientWebSocket } from '../../src/upstream/resilient.js';
import { delay, record, startWsServer, waitState } from './helpers.js';

const PING_MS = 200;
const PONG_MS = 300;

test('a server that stops answering pings is detected within pingInterval+pongTimeout → ERR_PONG_TIMEOUT, then reconnects', async (t) => {
  const server = await startWsServer('127.0.0.1', { autoPong: false });
  let pingsSeen = 0;
  server.wss.on('connection', (ws) => ws.on('ping', () => pingsSeen++));
  const client = new ResilientWebSocket({
    url: server.url, pingIntervalMs: PING_MS, pongTimeoutMs: PONG_MS, backoff: { minDelayMs: 20, maxDelayMs: 50, floorMs: 10 },
  });
  t.after(async () => {
    client.destroy();
    await server.close();
  });
  const opened = waitState(client, 'open');
  client.connect();
  const open = await opened;
  const lost = await waitState(client, 'reconnecting', PING_MS + PONG_MS + 1000);
  const detectedAfter = lost.at - open.at;
  assert.equal(lost.cause?.code, 'ERR_PONG_TIMEOUT');
  assert.match(lost.reason, /^ERR_PONG_TIMEOUT 127\.0\.0\.1:\d+ \(no pong or frame within \d+ ms of a ping\)$/);
  assert.ok(detectedAfter >= PING_MS + PONG_MS - 20, `detected after ${detectedAfter} ms: not before the pong timeout`);
  assert.ok(pingsSeen >= 1, 'the server saw the ping');
  await waitState(client, 'open', 3000);
  assert.equal(client.stats().connections, 2);
  assert.deepEqual(client.stats().disconnectsByCause, { ERR_PONG_TIMEOUT: 1 });
  assert.equal(client.stats().reconnects, 1);
  assert.equal(client.stats().lastClose?.errorCode, 'ERR_PONG_TIMEOUT');
});

test('ping mode: any frame from the peer proves life even when pongs never come', async (t) => {
  const server = await startWsServer('127.0.0.1', { autoPong: false });
  server.wss.on('connection', (ws) => {
    const timer = setInterval(() => ws.send('data'), 50);
    ws.on('close', () => clearInterval(timer));
  });
  const client = new ResilientWebSocket({ url: server.url, pingIntervalMs: PING_MS, pongTimeoutMs: PONG_MS });
  t.after(async () => {
    client.destroy();
    await server.close();
  });
  const log = record(client);
  const opened = waitState(client, 'open');
  client.connect();
  await opened;
  await delay(3 * (PING_MS + PONG_MS));
  assert.equal(client.state, 'open');
  assert.deepEqual(log.states.map((s) => s.to), ['connecting', 'open']);
});

test("liveness 'app': stays open while markAlive() is called on the upstream's heartbeat; data alone does not count", async (t) => {
  const server = await startWsServer('127.0.0.1', { autoPong: false });
  server.wss.on('connection', (ws) => {
    let n = 0;
    const timer = setInterval(() => ws.send(JSON.stringify({ heartbeat: ++n })), 50);
    ws.on('close', () => clearInterval(timer));
  });
  const client = new ResilientWebSocket({ url: server.url, liveness: 'app', pingIntervalMs: PING_MS, pongTimeoutMs: PONG_MS, backoff: { minDelayMs: 5000, maxDelayMs: 5000 } });
  t.after(async () => {
    client.destroy();
    await server.close();
  });
  let alive = true;
  client.on('message', (data) => {
    if (alive && (JSON.parse(data.toString()) as { heartbeat?: number }).heartbeat !== undefined) client.markAlive();
  });
  const log = record(client);
  const opened = waitState(client, 'open');
  client.connect();
  await opened;
  await delay(3 * (PING_MS + PONG_MS));
  assert.equal(client.state, 'open', 'markAlive() kept it open although the server never answers pings');
  assert.deepEqual(log.states.map((s) => s.to), ['connecting', 'open']);

  // The heartbeat's meaning is gone (the app stops vouching) while data keeps flowing: in app mode that is dead.
  alive = false;
  const lost = await waitState(client, 'reconnecting', PING_MS + PONG_MS + 1000);
  assert.equal(lost.cause?.code, 'ERR_PONG_TIMEOUT');
  assert.match(lost.reason, /no pong or markAlive\(\) within/);
});

test('pongs are answered on a healthy server: the connection stays open and the RTT is recorded', async (t) => {
  const server = await startWsServer('127.0.0.1');
  const client = new ResilientWebSocket({ url: server.url, pingIntervalMs: 100, pongTimeoutMs: 300 });
  t.after(async () => {
    client.destroy();
    await server.close();
  });
  const log = record(client);
  const opened = waitState(client, 'open');
  client.connect();
  await opened;
  await delay(1000);
  assert.equal(client.state, 'open');
  assert.deepEqual(log.states.map((s) => s.to), ['connecting', 'open']);
  const rtt = client.stats().lastRttMs;
  assert.ok(typeof rtt === 'number' && rtt >= 0, `lastRttMs ${rtt}`);
});
