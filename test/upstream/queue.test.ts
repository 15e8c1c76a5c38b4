import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ResilientWebSocket } from '../../src/upstream/resilient.js';
import { delay, echo, record, startWsServer, waitFor, waitState } from './helpers.js';

/** A client that is never connected (idle): every send goes to the queue. */
function idleClient(queue: Record<string, unknown>): ResilientWebSocket {
  return new ResilientWebSocket({ url: 'ws://127.0.0.1:1/', queue });
}

test('queue overflow by count → ERR_QUEUE_FULL for each message that did not fit, with drop events counted exactly', async () => {
  const client = idleClient({ maxMessages: 3 });
  const log = record(client);
  const results = Array.from({ length: 5 }, (_, i) => client.send(`m${i}`, { tag: i }));
  assert.deepEqual(results.slice(0, 3), Array(3).fill({ ok: true, queued: true, wait: false }));
  for (const r of results.slice(3)) {
    assert.equal(r.ok, false);
    if (!r.ok) assert.equal(r.error.code, 'ERR_QUEUE_FULL');
  }
  assert.deepEqual(log.drops, [
    { type: 'drop', reason: 'ERR_QUEUE_FULL', bytes: 2, tag: 3 },
    { type: 'drop', reason: 'ERR_QUEUE_FULL', bytes: 2, tag: 4 },
  ]);
  assert.deepEqual(client.stats().dropped, { ERR_QUEUE_FULL: 2 });
  assert.deepEqual(client.stats().queue, { messages: 3, bytes: 6 });
  await client.close();
  assert.deepEqual(client.stats().dropped, { ERR_QUEUE_FULL: 2, ERR_QUEUE_CLOSED: 3 });
});

test('queue overflow by bytes → ERR_QUEUE_FULL; a smaller message that fits is still queued', () => {
  const client = idleClient({ maxBytes: 10 });
  const log = record(client);
  assert.equal(client.send('aaaa').ok, true);
  assert.equal(client.send(Buffer.alloc(4)).ok, true);
  const over = client.send('ccc');
  assert.equal(over.ok, false);
  if (!over.ok) {
    assert.equal(over.error.code, 'ERR_QUEUE_FULL');
    assert.equal(over.error.details.limit, 'maxBytes');
  }
  assert.equal(client.send('dd').ok, true);
  assert.deepEqual(log.drops.map((d) => [d.reason, d.bytes]), [['ERR_QUEUE_FULL', 3]]);
  assert.deepEqual(client.stats().queue, { messages: 3, bytes: 10 });
  client.destroy();
  assert.equal(client.stats().dropped.ERR_QUEUE_CLOSED, 3);
});

test('queued messages past their TTL expire by timer → ERR_QUEUE_EXPIRED, without any flush', async () => {
  const client = idleClient({ ttlMs: 100 });
  const log = record(client);
  client.send('old1', { tag: 'a' });
  client.send('old2', { tag: 'b' });
  client.send('long', { tag: 'c', ttlMs: 10_000 });
  await waitFor(client, 'drop', (d: { tag: unknown }) => d.tag === 'b', 2000);
  assert.deepEqual(log.drops.map((d) => [d.reason, d.tag]), [['ERR_QUEUE_EXPIRED', 'a'], ['ERR_QUEUE_EXPIRED', 'b']]);
  assert.deepEqual(client.stats().queue, { messages: 1, bytes: 4 });
  assert.equal(client.stats().dropped.ERR_QUEUE_EXPIRED, 2);
  await client.close();
  assert.deepEqual(log.drops.map((d) => [d.reason, d.tag]).at(-1), ['ERR_QUEUE_CLOSED', 'c']);
});

test('close() with queued messages → one ERR_QUEUE_CLOSED drop per message, in order, with its tag', async () => {
  const client = new ResilientWebSocket({ url: 'ws://127.0.0.1:1/', backoff: { minDelayMs: 5000, maxDelayMs: 5000 } });
  const log = record(client);
  client.connect();
  await waitState(client, 'reconnecting');
  for (let i = 0; i < 4; i++) client.send(`x${i}`, { tag: `t${i}` });
  await client.close();
  assert.deepEqual(log.drops.map((d) => [d.reason, d.tag]), [0, 1, 2, 3].map((i) => ['ERR_QUEUE_CLOSED', `t${i}`]));
  assert.deepEqual(client.stats().queue, { messages: 0, bytes: 0 });
  assert.equal(log.states.at(-1)?.to, 'closed');
});

test('queue disabled → ERR_QUEUE_DISABLED while not open', () => {
  const client = idleClient({ enabled: false });
  const log = record(client);
  const result = client.send('nope', { tag: 7 });
  assert.equal(result.ok, false);
  if (!result.ok) assert.equal(result.error.code, 'ERR_QUEUE_DISABLED');
  assert.deepEqual(log.drops, [{ type: 'drop', reason: 'ERR_QUEUE_DISABLED', bytes: 4, tag: 7 }]);
  client.destroy();
});

test('text stays text, binary stays binary, byte-exact, queued ones first and in order', async (t) => {
  const server = await startWsServer('127.0.0.1');
  echo(server);
  const client = new ResilientWebSocket({ url: server.url });
  t.after(async () => {
    client.destroy();
    await server.close();
  });
  const everyByte = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
  const sent: Array<[Buffer | string, boolean]> = [
    ['queued text ünïcødé 🚀', false],
    [everyByte, true],
    ['', false],
    [Buffer.alloc(0), true],
  ];
  for (const [data] of sent) assert.equal(client.send(data).ok, true);
  const later: Array<[Buffer | string, boolean]> = [
    ['sent when open', false],
    [Buffer.from('binary from string'), true],
    [Buffer.from('text from a Buffer'), false],
  ];
  const received: Array<[Buffer, boolean]> = [];
  client.on('message', (data, isBinary) => received.push([data, isBinary]));
  const opened = waitState(client, 'open');
  client.connect();
  await opened;
  client.send(later[0]![0]);
  client.send('binary from string', { binary: true });
  client.send(Buffer.from('text from a Buffer'), { binary: false });
  const deadline = Date.now() + 5000;
  while (received.length < 7 && Date.now() < deadline) await delay(10);
  assert.equal(received.length, 7);
  const expected = [...sent, ...later];
  received.forEach(([data, isBinary], i) => {
    const [want, wantBinary] = expected[i]!;
    assert.equal(isBinary, wantBinary, `message ${i} type`);
    assert.deepEqual(data, Buffer.isBuffer(want) ? want : Buffer.from(want), `message ${i} bytes`);
  });
  assert.equal(client.stats().messagesIn, 7);
  assert.equal(client.stats().messagesOut, 7);
});

test('backpressure: send() answers wait:true past highWaterMarkBytes, then drain fires', async (t) => {
  const server = await startWsServer('127.0.0.1');
  let got = 0;
  server.wss.on('connection', (ws) => ws.on('message', () => got++));
  const client = new ResilientWebSocket({ url: server.url, highWaterMarkBytes: 64 * 1024 });
  t.after(async () => {
    client.destroy();
    await server.close();
  });
  const opened = waitState(client, 'open');
  client.connect();
  await opened;
  const big = Buffer.alloc(8 * 1024 * 1024, 7);
  const result = client.send(big);
  assert.deepEqual(result, { ok: true, queued: false, wait: true });
  await waitFor(client, 'drain', () => true, 10_000);
  const deadline = Date.now() + 5000;
  while (got < 1 && Date.now() < deadline) await delay(10);
  assert.equal(got, 1);
  assert.deepEqual(client.send('small'), { ok: true, queued: false, wait: false });
});

test('messages the server sends the instant the connection opens are delivered, after the open event', async (t) => {
  const server = await startWsServer('127.0.0.1');
  server.wss.on('connection', (ws) => {
    for (let i = 0; i < 5; i++) ws.send(`early ${i}`);
  });
  const client = new ResilientWebSocket({ url: server.url });
  t.after(async () => {
    client.destroy();
    await server.close();
  });
  const seen: string[] = [];
  client.on('open', () => seen.push('open'));
  client.on('message', (data) => seen.push(data.toString()));
  client.connect();
  const deadline = Date.now() + 5000;
  while (seen.length < 6 && Date.now() < deadline) await delay(10);
  assert.deepEqual(seen, ['open', 'early 0', 'early 1', 'early 2', 'early 3', 'early 4']);
});

test('send() of something that is neither a string nor a Buffer throws ERR_INVALID_OPTION and changes nothing', () => {
  const client = idleClient({});
  const log = record(client);
  assert.throws(() => client.send(42 as unknown as string), { code: 'ERR_INVALID_OPTION' });
  assert.throws(() => client.send(null as unknown as string), { code: 'ERR_INVALID_OPTION' });
  assert.deepEqual(client.stats().queue, { messages: 0, bytes: 0 });
  assert.deepEqual(log.drops, []);
  client.destroy();
});
