import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { ResilientWebSocket } from '../../src/upstream/resilient.js';
import { startWsServer, waitFor, waitState } from './helpers.js';

const serverScript = new URL('./fixtures/stream-server.js', import.meta.url);

interface Child {
  proc: ChildProcess;
  port: number;
  received: Array<{ text: string; binary: boolean }>;
}

async function startChild(host: string, port: number): Promise<Child> {
  const proc = fork(serverScript, [host, String(port)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const child: Child = { proc, port: 0, received: [] };
  proc.on('message', (msg: { type: string; data?: string; binary?: boolean }) => {
    if (msg.type === 'received') child.received.push({ text: Buffer.from(msg.data ?? '', 'base64').toString(), binary: msg.binary === true });
  });
  const [msg] = await waitFor<[{ type: string; port: number; message?: string }]>(proc, 'message', (m) => m.type === 'listening' || m.type === 'error', 10_000);
  if (msg.type !== 'listening') throw new Error(`server child failed: ${msg.message}`);
  child.port = msg.port;
  return child;
}

async function kill(child: Child): Promise<void> {
  if (child.proc.exitCode !== null || child.proc.signalCode !== null) return;
  const exited = once(child.proc, 'exit');
  child.proc.kill('SIGKILL');
  await exited;
}

async function until(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

for (const host of ['127.0.0.1', '::1']) {
  test(`server SIGKILLed mid-stream and restarted on the same port (${host}): reconnects with backoff, outage sends arrive once, in order`, async (t) => {
    const first = await startChild(host, 0);
    const restarted: Child[] = [];
    const url = `ws://${host.includes(':') ? `[${host}]` : host}:${first.port}/stream`;
    const client = new ResilientWebSocket({ url, backoff: { minDelayMs: 50, maxDelayMs: 200, floorMs: 20 }, pingIntervalMs: 0 });
    t.after(async () => {
      client.destroy();
      await kill(first);
      for (const child of restarted) await kill(child);
    });
    const states: Array<{ to: string; delayMs?: number; cause?: string }> = [];
    client.on('state', (s) => states.push({ to: s.to, delayMs: s.delayMs, cause: s.cause?.code }));
    let ticks = 0;
    client.on('message', (data) => {
      if (data.toString().startsWith('tick ')) ticks++;
    });
    const opened = waitState(client, 'open');
    client.connect();
    await opened;
    for (let i = 1; i <= 5; i++) assert.deepEqual(client.send(`m${i}`), { ok: true, queued: false, wait: false });
    await until(() => first.received.length === 5, 5000, 'the first server to get m1..m5');
    await until(() => ticks >= 3, 5000, 'ticks streaming from the server');

    const lost = waitState(client, 'reconnecting');
    await kill(first);
    const change = await lost;
    assert.equal(change.cause?.code, 'ERR_CONNECTION_LOST');
    assert.ok((change.delayMs ?? -1) >= 20 && (change.delayMs ?? Infinity) <= 200, `delay ${change.delayMs}`);

    // Sent during the outage: queued, then flushed in order before anything else.
    for (let i = 6; i <= 15; i++) {
      const result = client.send(i % 2 === 0 ? `m${i}` : Buffer.from(`m${i}`));
      assert.deepEqual(result, { ok: true, queued: true, wait: false });
    }
    assert.deepEqual(client.stats().queue, { messages: 10, bytes: 4 * 2 + 6 * 3 }); // m6..m9, m10..m15

    const reopened = waitState(client, 'open', 10_000);
    const second = await startChild(host, first.port);
    restarted.push(second);
    await reopened;
    await until(() => second.received.length >= 10, 5000, 'the restarted server to get m6..m15');
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.deepEqual(second.received, Array.from({ length: 10 }, (_, k) => ({ text: `m${k + 6}`, binary: (k + 6) % 2 === 1 })));
    assert.equal(first.received.length, 5);

    const stats = client.stats();
    assert.equal(stats.connections, 2);
    assert.equal(stats.messagesOut, 15);
    assert.equal(stats.queue.messages, 0);
    assert.deepEqual(stats.dropped, {});
    // One reconnection (an open after an open); the refused dials in between are failed attempts, not reconnects.
    assert.deepEqual(stats.disconnectsByCause, { ERR_CONNECTION_LOST: 1 });
    assert.equal(stats.disconnects, 1);
    assert.equal(stats.reconnects, 1);
    assert.equal(stats.failedAttempts, states.filter((s) => s.to === 'reconnecting').length - 1);
    assert.equal(stats.failedAttemptsByCause.ERR_TCP_CONNECT ?? 0, stats.failedAttempts);
    // Between the loss and the reopen only refused attempts (the port was briefly closed), each after a backoff delay.
    const between = states.slice(states.findIndex((s) => s.to === 'reconnecting'));
    assert.equal(between.at(-1)?.to, 'open');
    for (const s of between.filter((x) => x.to === 'reconnecting').slice(1)) assert.equal(s.cause, 'ERR_TCP_CONNECT');
    const ticksBefore = ticks;
    await until(() => ticks > ticksBefore, 5000, 'ticks from the restarted server');
  });
}

test('reconnects count reconnections only: 5 kills with refused dials in between are 5 reconnects, the dials failed attempts', async (t) => {
  let server = await startWsServer('127.0.0.1');
  const port = server.port;
  const client = new ResilientWebSocket({ url: server.url, backoff: { minDelayMs: 20, maxDelayMs: 40, floorMs: 10 }, pingIntervalMs: 0 });
  t.after(async () => {
    client.destroy();
    await server.close();
  });
  const opened = waitState(client, 'open');
  client.connect();
  await opened;
  const KILLS = 5;
  for (let i = 0; i < KILLS; i++) {
    const failedBefore = client.stats().failedAttempts;
    await server.close();
    // Keep the port closed until at least two dials have been refused.
    await until(() => client.stats().failedAttempts >= failedBefore + 2, 5000, 'two refused dials');
    const reopened = waitState(client, 'open', 5000);
    server = await startWsServer('127.0.0.1', {}, port);
    await reopened;
  }
  const stats = client.stats();
  assert.equal(stats.connections, KILLS + 1);
  assert.equal(stats.reconnects, KILLS);
  assert.deepEqual(stats.disconnectsByCause, { ERR_CONNECTION_LOST: KILLS });
  assert.ok(stats.failedAttempts >= 2 * KILLS, `${stats.failedAttempts} failed attempts`);
  assert.deepEqual(stats.failedAttemptsByCause, { ERR_TCP_CONNECT: stats.failedAttempts });
});
