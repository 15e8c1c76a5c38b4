/**
 * Drain on SIGTERM in a real child process: every queued message arrives
 * before the 1001 close, and the process exits 0.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { WebSocket } from 'ws';
import { withTimeout } from './helpers.js';

const FIXTURE = fileURLToPath(new URL('./fixtures/drain-server.js', import.meta.url));
const COUNT = 500;
const SESSIONS = 3;

interface Collected {
  indexes: number[];
  close?: { code: number; reason: string; afterLast: boolean };
}

test('SIGTERM with sessions open and messages queued: all delivered, then close 1001, then exit code 0', async (t) => {
  const child = fork(FIXTURE, [], { env: { ...process.env, DRAIN_COUNT: String(COUNT) }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  t.after(() => child.kill('SIGKILL'));
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const messages: Array<{ type: string; port?: number; bufferedAmount?: number }> = [];
  child.on('message', (m) => messages.push(m as (typeof messages)[number]));
  const waitMessages = (pred: () => boolean, what: string): Promise<void> => withTimeout(new Promise<void>((resolve) => {
    const check = (): void => {
      if (pred()) {
        child.off('message', check);
        resolve();
      }
    };
    child.on('message', check);
    check();
  }), 10_000, what);

  await waitMessages(() => messages.some((m) => m.type === 'ready'), 'drain server ready');
  const port = messages.find((m) => m.type === 'ready')!.port!;

  const clients: WebSocket[] = [];
  const collected: Collected[] = [];
  for (let s = 0; s < SESSIONS; s++) {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
    const c: Collected = { indexes: [] };
    collected.push(c);
    ws.on('message', (data) => c.indexes.push((JSON.parse((data as Buffer).toString()) as { i: number }).i));
    ws.on('close', (code, reason) => (c.close = { code, reason: reason.toString(), afterLast: c.indexes.length === COUNT }));
    await withTimeout(new Promise((r) => ws.once('open', r)), 5000, 'client open');
    // Stop reading, so the server's messages stay queued until after the signal.
    ws.pause();
    ws.send('flood');
    clients.push(ws);
  }
  await waitMessages(() => messages.filter((m) => m.type === 'queued').length === SESSIONS, 'all sessions flooded');
  for (const m of messages.filter((q) => q.type === 'queued')) assert.ok(m.bufferedAmount! > 0, 'messages were still queued in ws when the signal came');

  child.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 200));
  for (const ws of clients) ws.resume();

  const { code, signal } = await withTimeout(exited, 30_000, 'drain server exit');
  await withTimeout(Promise.all(clients.map((ws) => (ws.readyState === WebSocket.CLOSED ? Promise.resolve() : new Promise<void>((r) => ws.once('close', () => r()))))), 5000, 'clients closed');
  assert.equal(signal, null);
  assert.equal(code, 0);
  for (const c of collected) {
    assert.deepEqual(c.indexes, Array.from({ length: COUNT }, (_, i) => i), 'every queued message, in order');
    assert.equal(c.close?.code, 1001);
    assert.equal(c.close?.afterLast, true, 'the close came after the last message');
  }
});

test('a second signal while draining destroys at once and exits 1', async (t) => {
  const child = fork(FIXTURE, [], { env: { ...process.env, DRAIN_COUNT: String(COUNT) }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  t.after(() => child.kill('SIGKILL'));
  const exited = new Promise<{ code: number | null }>((resolve) => child.once('exit', (code) => resolve({ code })));
  const port = await withTimeout(new Promise<number>((resolve) => child.on('message', (m: { type: string; port?: number }) => {
    if (m.type === 'ready') resolve(m.port!);
  })), 10_000, 'drain server ready');
  const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
  t.after(() => ws.terminate());
  await withTimeout(new Promise((r) => ws.once('open', r)), 5000, 'client open');
  ws.pause(); // never reads: the drain cannot finish by itself
  ws.send('flood');
  await withTimeout(new Promise<void>((resolve) => child.on('message', (m: { type: string }) => {
    if (m.type === 'queued') resolve();
  })), 10_000, 'flooded');
  child.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 200));
  child.kill('SIGINT');
  const { code } = await withTimeout(exited, 10_000, 'exit after second signal');
  assert.equal(code, 1);
});
