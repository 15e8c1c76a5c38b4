/**
 * Worker sends while the upstream is down: queued in the upstream's bounded
 * outbox and flushed in order on reconnect; what overflows is counted against
 * the session that sent it and reported — never lost silently.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { WebSocketServer } from 'ws';
import { eventually, freePort, startTestHub, Worker, type TestHub } from './helpers.js';

let hub: TestHub | undefined;
let wss: WebSocketServer | undefined;
const workers: Worker[] = [];
after(async () => {
  for (const w of workers) w.kill('SIGKILL');
  await hub?.close();
  wss?.close();
});


test('sends during an outage: 5 queued and flushed in order, 3 over the limit counted as ERR_QUEUE_FULL on their session', async () => {
  const port = await freePort();
  hub = await startTestHub({
    // hold: the workers stay attached through the outage (the default, close, would refuse them while it lasts).
    down: { url: `ws://127.0.0.1:${port}/`, pingIntervalMs: 0, queue: { maxMessages: 5 }, backoff: { minDelayMs: 50, maxDelayMs: 100 }, onUpstreamLoss: 'hold' },
  });
  const sender = new Worker(hub.url('down'));
  const bystander = new Worker(hub.url('down'));
  workers.push(sender, bystander);
  await Promise.all([sender.opened(), bystander.opened()]);
  for (let i = 0; i < 8; i++) sender.send(`m${i}`);
  const connection = await eventually(() => hub!.hub.stats().connections.find((c) => (c.sessions[0]?.upstreamDrops.ERR_QUEUE_FULL ?? 0) === 3), 'three drops counted');
  const bystanderConnection = hub.hub.stats().connections.find((c) => c.id !== connection.id)!;
  assert.deepEqual(bystanderConnection.sessions[0]!.upstreamDrops, {}, 'drops are attributed to the sender only');
  assert.equal(hub.hub.stats().upstreams[0]!.client.queue.messages, 5);

  const received: string[] = [];
  wss = new WebSocketServer({ host: '127.0.0.1', port });
  wss.on('connection', (ws) => ws.on('message', (d: Buffer) => received.push(d.toString())));
  await eventually(() => received.length === 5, 'the queued five after reconnect', 15_000);
  assert.deepEqual(received, ['m0', 'm1', 'm2', 'm3', 'm4']);
  const stats = hub.hub.stats();
  assert.equal(stats.upstreams[0]!.client.dropped.ERR_QUEUE_FULL, 3);
  assert.equal(stats.connections.find((c) => c.id === connection.id)!.sessions[0]!.upstreamDrops.ERR_QUEUE_FULL, 3);
});
