/**
 * Descriptor exhaustion for real: the server runs under `ulimit -n 64` and is
 * flooded with clients. It stays up, surplus peers are refused, existing
 * sessions keep echoing, exhaustion is counted (ERR_FD_EXHAUSTED), and once
 * clients leave a new peer is served.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { WebSocket } from 'ws';
import type { ServerStats } from '../../src/server/types.js';
import { HealthyPeer, waitFor, withTimeout } from './helpers.js';

const FIXTURE = fileURLToPath(new URL('./fixtures/emfile-server.js', import.meta.url));
// The limit DESIGN.md names. (It once could not even start: zod's ESM entry opened its ~250
// locale modules at once; src/zod.ts now loads zod through require(), one file at a time.)
const FD_LIMIT = 64;
const FLOOD = 250;

function ask(child: ChildProcess): Promise<ServerStats> {
  return withTimeout(new Promise<ServerStats>((resolve) => {
    const onMessage = (m: { type: string; stats?: ServerStats }): void => {
      if (m.type !== 'stats') return;
      child.off('message', onMessage);
      resolve(m.stats!);
    };
    child.on('message', onMessage);
    child.send({ type: 'stats' });
  }), 5000, 'stats over IPC');
}

async function pollStats(child: ChildProcess, pred: (s: ServerStats) => boolean, what: string, ms = 10_000): Promise<ServerStats> {
  const deadline = Date.now() + ms;
  for (;;) {
    const stats = await ask(child);
    if (pred(stats)) return stats;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last stats ${JSON.stringify(stats)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test(`under ulimit -n ${FD_LIMIT} the server stays up, refuses surplus peers, keeps sessions and serves again after`, async (t) => {
  const child = spawn('/bin/bash', ['-c', `ulimit -n ${FD_LIMIT} && exec "$0" "$1"`, process.execPath, FIXTURE], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  t.after(() => child.kill('SIGKILL'));
  let exited = false;
  child.once('exit', () => (exited = true));
  const port = await withTimeout(new Promise<number>((resolve, reject) => {
    child.on('message', (m: { type: string; port?: number }) => {
      if (m.type === 'ready') resolve(m.port!);
    });
    child.once('exit', (code) => reject(new Error(`fixture exited ${code} before ready (bash ulimit failed?)`)));
  }), 10_000, 'emfile server ready');
  const url = `ws://127.0.0.1:${port}/`;

  const healthy = await Promise.all(Array.from({ length: 3 }, () => HealthyPeer.open(url)));
  t.after(() => healthy.forEach((h) => h.close()));
  for (const h of healthy) await h.check();

  const flood: WebSocket[] = [];
  t.after(() => flood.forEach((ws) => ws.terminate()));
  const outcomes = await withTimeout(Promise.all(Array.from({ length: FLOOD }, () => new Promise<string>((resolve) => {
    const ws = new WebSocket(url, { handshakeTimeout: 5000 });
    flood.push(ws);
    ws.once('open', () => resolve('open'));
    ws.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  }))), 20_000, 'flood outcomes');
  const opened = outcomes.filter((o) => o === 'open').length;
  const refused = outcomes.length - opened;
  t.diagnostic(`flood: ${opened} opened, ${refused} refused (${[...new Set(outcomes.filter((o) => o !== 'open'))].join(', ')})`);
  assert.ok(opened > 0, 'some flood clients got in');
  assert.ok(refused > 0, `with ${FD_LIMIT} descriptors not all ${FLOOD} can be served`);

  const exhausted = await pollStats(child, (s) => (s.errors.ERR_FD_EXHAUSTED ?? 0) >= 1, 'ERR_FD_EXHAUSTED counted');
  assert.equal(exhausted.fdExhausted, true);
  assert.equal(exited, false, 'the server process is still up');
  for (const h of healthy) await h.check();

  for (const ws of flood) ws.terminate();
  const recovered = await pollStats(child, (s) => !s.fdExhausted && s.open === healthy.length && s.handshaking === 0, 'descriptors freed');
  assert.equal(recovered.errors.ERR_FD_EXHAUSTED, exhausted.errors.ERR_FD_EXHAUSTED, 'one exhaustion episode, counted once');
  const late = await HealthyPeer.open(url);
  t.after(() => late.close());
  await late.check();
  for (const h of healthy) await h.check();
  await waitFor(() => !exited, 10, 'still running');
});
