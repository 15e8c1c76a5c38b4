/**
 * The socket high-water mark follows the session's queue bound, within
 * 256 KiB–4 MiB: the default queue gets the deep pipeline the relay needs,
 * a small queue keeps its memory bound and a policy that acts early. A batch
 * is written before the end of its loop turn once it holds a quarter of the
 * mark (real sockets: a ws server and client on loopback).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { AddressInfo, Socket } from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';
import { frame } from '../../src/hub/frame.js';
import { DEFAULT_MAX_QUEUE_BYTES, DEFAULT_SOCKET_HIGH_WATER_BYTES, MIN_SOCKET_HIGH_WATER_BYTES, Outlet, earlyFlushFor, socketHighWaterFor } from '../../src/hub/outlet.js';
import { TickWriter } from '../../src/hub/writer.js';
import { defaults } from '../../src/defaults.js';
import { eventually } from './helpers.js';

test('the socket high-water mark is the queue bound, kept within 256 KiB–4 MiB', () => {
  assert.equal(socketHighWaterFor(DEFAULT_MAX_QUEUE_BYTES), 4 * 1024 * 1024);
  assert.equal(socketHighWaterFor(DEFAULT_MAX_QUEUE_BYTES), DEFAULT_SOCKET_HIGH_WATER_BYTES);
  assert.equal(defaults.hub.socketHighWaterBytes, socketHighWaterFor(defaults.hub.maxQueueBytes));
  assert.equal(socketHighWaterFor(64 * 1024), MIN_SOCKET_HIGH_WATER_BYTES);
  assert.equal(socketHighWaterFor(0), 256 * 1024);
  assert.equal(socketHighWaterFor(1024 * 1024), 1024 * 1024);
  assert.equal(socketHighWaterFor(64 * 1024 * 1024), 4 * 1024 * 1024);
});

test('a batch is written as soon as it holds a quarter of the mark, else at the end of the loop turn', async (t) => {
  assert.equal(earlyFlushFor(socketHighWaterFor(DEFAULT_MAX_QUEUE_BYTES)), 1024 * 1024);
  const maxQueueBytes = 256 * 1024;
  const early = earlyFlushFor(socketHighWaterFor(maxQueueBytes));
  assert.equal(early, 64 * 1024);

  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  t.after(() => wss.close());
  await once(wss, 'listening');
  const accepted = once(wss, 'connection') as Promise<[WebSocket, { socket: Socket }]>;
  const client = new WebSocket(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}`);
  t.after(() => client.terminate());
  let received = 0;
  client.on('message', () => received++);
  await once(client, 'open');
  const [ws, req] = await accepted;
  const outlet = new Outlet({ id: 't', ws, socket: req.socket, writer: new TickWriter(), policy: 'drop-oldest', maxQueueBytes });
  const f = frame(Buffer.alloc(1000, 0x78), false);

  // Below a quarter of the mark: nothing is written until the end of the loop turn.
  const below = Math.floor((early - 1) / f.size);
  const start = req.socket.bytesWritten;
  for (let i = 0; i < below; i++) outlet.deliver(f);
  await Promise.resolve();
  assert.equal(req.socket.bytesWritten, start, 'a small batch waits for the end of the loop turn');
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(req.socket.bytesWritten, start + below * f.size, 'written at the end of the turn');

  // A quarter of the mark: written once the current callback returns, before the turn ends.
  const atEarly = Math.ceil(early / f.size);
  const second = req.socket.bytesWritten;
  for (let i = 0; i < atEarly; i++) outlet.deliver(f);
  await Promise.resolve();
  assert.equal(req.socket.bytesWritten, second + atEarly * f.size, 'written early');

  const total = below + atEarly;
  await eventually(() => received === total, `all ${total} frames at the client`);
  assert.equal(outlet.stats().messagesOut, total);
  assert.deepEqual(outlet.stats().dropped, {});
});
