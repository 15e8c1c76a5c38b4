/**
 * One envelope peer misbehaving never costs the process or anyone else:
 * deeply nested frames, a flood of requests whose answers are never read, and
 * sends the upstream's queue refuses (answered with `error`, not `ack`).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket, { WebSocketServer } from 'ws';
import { ENVELOPE_PROTOCOL, type HubFrame } from '../../src/hub/envelope-codec.js';
import { eventually, freePort, sleep, startTestHub, type TestHub } from '../hub/helpers.js';

const cleanup: Array<() => unknown> = [];
after(async () => {
  for (const fn of cleanup.reverse()) await fn();
});

let hub: TestHub;
let peer: WebSocket | undefined;

async function setup(): Promise<void> {
  if (hub) return;
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise((r) => wss.once('listening', r));
  wss.on('connection', (ws) => (peer = ws));
  const downPort = await freePort();
  hub = await startTestHub(
    {
      up: { url: `ws://127.0.0.1:${(wss.address() as { port: number }).port}/`, pingIntervalMs: 0 },
      down: { url: `ws://127.0.0.1:${downPort}/`, pingIntervalMs: 0, queue: { maxMessages: 2 }, backoff: { minDelayMs: 1000, maxDelayMs: 2000 } },
    },
    { maxQueueBytes: 64 * 1024 },
  );
  cleanup.push(() => hub.close(), () => {
    peer?.terminate();
    wss.close();
  });
  await eventually(() => peer, 'upstream connection');
}

function client(): { ws: WebSocket; frames: HubFrame[]; open: Promise<unknown> } {
  const ws = new WebSocket(`ws+unix://${hub.socketPath}:/hub`, [ENVELOPE_PROTOCOL]);
  cleanup.push(() => ws.terminate());
  const frames: HubFrame[] = [];
  ws.on('message', (d: Buffer, isBinary: boolean) => {
    if (!isBinary) frames.push(JSON.parse(d.toString()) as HubFrame);
  });
  ws.on('error', () => {});
  return { ws, frames, open: new Promise((r) => ws.once('open', r)) };
}

test('a frame nested 200,000 deep is refused with ERR_ENVELOPE_INVALID; the session and the hub carry on', async () => {
  await setup();
  const c = client();
  await c.open;
  c.ws.send(JSON.stringify({ op: 'sub', id: 1, upstream: 'up', topic: '*' }));
  const deep = `${'['.repeat(200_000)}${']'.repeat(200_000)}`;
  c.ws.send(`{"op":"send","id":2,"upstream":"up","data":${deep}}`);
  c.ws.send(`{"op":${deep}}`);
  await eventually(() => c.frames.filter((f) => f.op === 'error').length === 2, 'two errors');
  assert.deepEqual(c.frames.filter((f) => f.op === 'error').map((f) => (f as { code: string }).code), ['ERR_ENVELOPE_INVALID', 'ERR_ENVELOPE_UNKNOWN_OP']);
  peer!.send('{"after":"deep"}');
  await eventually(() => c.frames.some((f) => f.op === 'msg'), 'messages still flow');
  c.ws.close();
});

test('a peer that floods requests and never reads the answers is disconnected; others are untouched', async () => {
  await setup();
  const bystander = client();
  await bystander.open;
  bystander.ws.send(JSON.stringify({ op: 'sub', id: 1, upstream: 'up', topic: '*' }));
  await eventually(() => bystander.frames.some((f) => f.op === 'ack'), 'bystander ack');

  const flooder = client();
  await flooder.open;
  const closed = new Promise<number>((resolve) => flooder.ws.once('close', (code) => resolve(code)));
  flooder.ws.pause();
  const ping = JSON.stringify({ op: 'ping', id: 'x'.repeat(200) });
  for (let i = 0; i < 4000 && flooder.ws.readyState === WebSocket.OPEN; i++) {
    flooder.ws.send(ping);
    if (i % 200 === 199) await sleep(5);
  }
  const dropped = await eventually(() => hub.hub.stats().connections.length === 1 || undefined, 'the flooder gone from the hub', 15_000);
  assert.ok(dropped);
  flooder.ws.resume();
  // 1013 if it reads the close frame in time; the hub terminates a peer that doesn't within 2 s (1006).
  assert.ok([1013, 1006].includes(await closed));
  peer!.send('{"after":"flood"}');
  await eventually(() => bystander.frames.some((f) => f.op === 'msg'), 'the bystander still receives');
  bystander.ws.close();
});

test('a send the upstream queue refuses is answered with error (same id), not ack', async () => {
  await setup();
  const c = client();
  await c.open;
  for (let i = 1; i <= 3; i++) c.ws.send(JSON.stringify({ op: 'send', id: i, upstream: 'down', text: `m${i}` }));
  await eventually(() => c.frames.filter((f) => f.op === 'ack' || f.op === 'error').length === 3, 'three answers');
  const answers = c.frames.filter((f) => f.op === 'ack' || f.op === 'error').map((f) => `${f.op}:${String((f as { id?: unknown }).id)}:${(f as { code?: string }).code ?? ''}`);
  assert.deepEqual(answers, ['ack:1:', 'ack:2:', 'error:3:ERR_QUEUE_FULL']);
  c.ws.close();
});
