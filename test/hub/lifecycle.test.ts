/**
 * The hub's lifecycle under load: a graceful close delivers what is queued
 * before 1001; reloads run one at a time; removing an upstream ends its
 * transparent sessions with 1001 while envelope connections only leave it.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket, { WebSocketServer } from 'ws';
import { resolveConfig } from '../../src/hub/config.js';
import { ENVELOPE_PROTOCOL, type HubFrame } from '../../src/hub/envelope-codec.js';
import { eventually, sleep, startTestHub, Worker, connectionStats, upstreamOf } from './helpers.js';

const cleanup: Array<() => unknown> = [];
after(async () => {
  for (const fn of cleanup.reverse()) await fn();
});

async function rawServer(): Promise<{ wss: WebSocketServer; url: string; peers: Set<WebSocket> }> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise((r) => wss.once('listening', r));
  const peers = new Set<WebSocket>();
  wss.on('connection', (ws) => {
    peers.add(ws);
    ws.on('close', () => peers.delete(ws));
  });
  cleanup.push(() => {
    for (const p of peers) p.terminate();
    wss.close();
  });
  return { wss, url: `ws://127.0.0.1:${(wss.address() as { port: number }).port}/`, peers };
}

test('graceful close: a worker that was behind gets everything queued for it, then 1001', async () => {
  const up = await rawServer();
  const hub = await startTestHub({ raw: { url: up.url, pingIntervalMs: 0, maxQueueBytes: 64 * 1024 * 1024 } }, { server: { drainTimeoutMs: 10_000 } });
  cleanup.push(() => hub.close());
  await eventually(() => up.peers.size === 1, 'upstream connection');
  const w = new Worker(hub.url('raw'));
  cleanup.push(() => w.kill('SIGKILL'));
  await w.opened();
  w.command('pause');
  await w.waitFor('paused');
  // More than the socket's high-water mark (4 MiB with this queue) and the kernel's buffers hold, so some wait in the backlog.
  const N = 8000;
  const [peer] = up.peers;
  for (let i = 0; i < N; i++) peer!.send(`{"seq":${i},"pad":"${'x'.repeat(1000)}"}`);
  const id = await eventually(() => hub.hub.stats().connections[0]?.id, 'the connection');
  await eventually(() => hub.hub.stats().upstreams[0]!.messagesIn === N, 'all messages at the hub');
  assert.ok(connectionStats(hub.hub, id)!.queuedMessages > 0, 'frames waiting in the hub');
  const closing = hub.hub.close();
  await sleep(200);
  w.command('resume');
  const closed = await w.waitFor('close', 15_000);
  await closing;
  assert.equal(closed.code, 1001);
  assert.equal(closed.messages, N, 'every queued message arrived before the close');
  assert.deepEqual(hub.hub.stats().dropped, {});
});

test('reloads run one at a time: two in a row leave exactly one upstream connection', async () => {
  const up = await rawServer();
  const hub = await startTestHub({ raw: { url: up.url, pingIntervalMs: 0 } });
  cleanup.push(() => hub.close());
  await eventually(() => up.peers.size === 1, 'upstream connection');
  const changed = (n: number) => resolveConfig({ listen: hub.socketPath, upstreams: { raw: { url: up.url, pingIntervalMs: 0, pongTimeoutMs: 1000 + n } } });
  await Promise.all([hub.hub.reload(changed(1)), hub.hub.reload(changed(2))]);
  await eventually(() => upstreamOf(hub.hub, 'raw').client.state === 'open', 'the replaced upstream open');
  await sleep(300);
  assert.equal(up.peers.size, 1, 'no orphaned upstream connection');
  assert.equal(hub.hub.upstreams.size, 1);
});

test('removing an upstream: its transparent sessions get 1001; an envelope connection stays for the others and is told', async () => {
  const a = await rawServer();
  const b = await rawServer();
  const cfg = { a: { url: a.url, pingIntervalMs: 0 }, b: { url: b.url, pingIntervalMs: 0 } };
  const hub = await startTestHub(cfg);
  cleanup.push(() => hub.close());
  await eventually(() => a.peers.size === 1 && b.peers.size === 1, 'both upstreams');
  const onA = new Worker(hub.url('a'));
  cleanup.push(() => onA.kill('SIGKILL'));
  await onA.opened();
  const env = new WebSocket(`ws+unix://${hub.socketPath}:/hub`, [ENVELOPE_PROTOCOL]);
  cleanup.push(() => env.terminate());
  const frames: HubFrame[] = [];
  env.on('message', (d: Buffer) => frames.push(JSON.parse(d.toString()) as HubFrame));
  await new Promise((r) => env.once('open', r));
  env.send(JSON.stringify({ op: 'sub', id: 1, upstream: 'a', topic: '*' }));
  env.send(JSON.stringify({ op: 'sub', id: 2, upstream: 'b', topic: '*' }));
  await eventually(() => frames.filter((f) => f.op === 'ack').length === 2, 'acks');

  await hub.hub.reload(resolveConfig({ listen: hub.socketPath, upstreams: { b: cfg.b } }));
  const closed = await onA.waitFor('close');
  assert.equal(closed.code, 1001);
  await eventually(() => frames.some((f) => f.op === 'state' && f.upstream === 'a' && f.state === 'closed'), 'state closed for a');
  assert.equal(env.readyState, WebSocket.OPEN, 'the envelope connection stays');
  env.send(JSON.stringify({ op: 'sub', id: 3, upstream: 'a', topic: '*' }));
  await eventually(() => frames.find((f) => f.op === 'error' && f.id === 3), 'an error for the removed upstream');
  assert.equal((frames.find((f) => f.op === 'error' && f.id === 3) as { code: string }).code, 'ERR_UNKNOWN_UPSTREAM');
  for (const p of b.peers) p.send('{"still":"here"}');
  await eventually(() => frames.some((f) => f.op === 'msg' && f.upstream === 'b'), 'messages from b still arrive');
});
