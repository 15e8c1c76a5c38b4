/**
 * Flow control from workers to the upstream: a worker that sends as fast as
 * it can to an upstream that reads slowly is slowed down by TCP
 * backpressure (the hub stops reading its socket while the upstream is over
 * its high-water mark), the hub's memory for outbound data stays within
 * `sendBufferBytes`, every frame arrives upstream in order, and other
 * workers' relay goes on. Frames still in the hub's hands when the upstream
 * dies are accounted for: sent, dropped with a reason (and the sender told),
 * or still held for the next connection.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { ENVELOPE_PROTOCOL } from '../../src/hub/envelope-codec.js';
import { eventually, startTestHub, upstreamOf, Worker, type TestHub, runCleanup } from './helpers.js';

const SLOW = fileURLToPath(new URL('./fixtures/slow-upstream.js', import.meta.url));
const FLOODER = fileURLToPath(new URL('./fixtures/flooder.js', import.meta.url));

const cleanup: Array<() => unknown> = [];
after(() => runCleanup(cleanup));

interface Child {
  child: ChildProcess;
  events: Array<Record<string, unknown>>;
  next(ev: string, timeoutMs?: number): Promise<Record<string, unknown>>;
}

function spawnChild(file: string, args: string[]): Child {
  const child = fork(file, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  cleanup.push(() => child.kill('SIGKILL'));
  const events: Array<Record<string, unknown>> = [];
  child.on('message', (m: Record<string, unknown>) => events.push(m));
  return {
    child,
    events,
    next: async (ev, timeoutMs = 30_000) => eventually(() => events.find((e) => e.ev === ev), `${file.split('/').pop()}: ${ev}`, timeoutMs),
  };
}

async function slowUpstream(bytesPerTick: number): Promise<Child & { port: number; report(): Promise<{ received: number; outOfOrder: number; last: number }> }> {
  // Reads `bytesPerTick` every 20 ms: 64 KiB → 3.2 MB/s, far below what a flooding worker sends.
  const up = spawnChild(SLOW, ['20', String(bytesPerTick)]);
  const { port } = (await up.next('listening')) as { port: number };
  return {
    ...up,
    port,
    report: async () => {
      const n = up.events.length;
      up.child.send({ cmd: 'report' });
      return (await eventually(() => up.events.slice(n).find((e) => e.ev === 'report'), 'upstream report')) as { received: number; outOfOrder: number; last: number };
    },
  };
}

const SEND_BUFFER = 4 * 1024 * 1024;

test('a worker flooding 1 KiB sends at a slow upstream is slowed by backpressure: hub held bytes stay within sendBufferBytes, every frame arrives in order, a bystander keeps receiving', async () => {
  const up = await slowUpstream(64 * 1024);
  const hub: TestHub = await startTestHub({ feed: { url: `ws://127.0.0.1:${up.port}/`, pingIntervalMs: 0 } });
  cleanup.push(() => hub.close());
  await eventually(() => upstreamOf(hub.hub, 'feed').client.state === 'open', 'the hub to connect');
  const bystander = new Worker(hub.url('feed'));
  cleanup.push(() => bystander.kill('SIGKILL'));
  await bystander.opened();
  up.child.send({ cmd: 'tick', every: 10 });

  let maxHeld = 0;
  let maxPending = 0;
  const sampler = setInterval(() => {
    const u = upstreamOf(hub.hub, 'feed');
    maxHeld = Math.max(maxHeld, u.ledger.out.heldBytes);
    maxPending = Math.max(maxPending, u.client.queue.bytes);
  }, 10);
  cleanup.push(() => clearInterval(sampler));

  const flooder = spawnChild(FLOODER, [`ws+unix://${hub.socketPath}:/u/feed`, '3000', '1024']);
  await flooder.next('open');
  const before = (await bystander.report()).seqs.t?.length ?? 0;
  const { sent } = (await flooder.next('done', 30_000)) as { sent: number };
  const during = ((await bystander.report()).seqs.t?.length ?? 0) - before;
  assert.ok(during > 50, `the bystander kept receiving during the flood (${during} messages in ~3 s at 100/s)`);
  assert.ok(sent > 1000, `the flooder sent ${sent}`);

  await eventually(async () => (await up.report()).received === sent, `all ${sent} frames at the upstream`, 120_000);
  const final = await up.report();
  assert.equal(final.outOfOrder, 0, 'in order, no gap');
  assert.equal(final.last, sent - 1);
  clearInterval(sampler);
  assert.ok(maxHeld <= SEND_BUFFER + 64 * 1024, `the hub held at most ${maxHeld} bytes for the upstream (bound ${SEND_BUFFER})`);
  assert.ok(maxHeld > 0, 'the hub held something: the upstream really was slow');
  const ledger = upstreamOf(hub.hub, 'feed').ledger.out;
  assert.equal(ledger.dropped, 0, 'nothing refused: backpressure, not drops');
  assert.equal(ledger.accepted, ledger.sent + ledger.dropped + ledger.held, `the ledger balances: ${JSON.stringify(ledger)}`);
  const seqs = (await bystander.report()).seqs.t ?? [];
  assert.ok(seqs.every((s, i) => i === 0 || s === seqs[i - 1]! + 1), 'the bystander got its messages in order, none lost');
});

test('envelope sends held by the hub when the upstream is SIGKILLed: each is sent, or comes back as an error with its id, or goes out on the next connection', async () => {
  const up = await slowUpstream(16 * 1024);
  const port = up.port;
  const hub: TestHub = await startTestHub({ feed: { url: `ws://127.0.0.1:${port}/`, pingIntervalMs: 0, backoff: { minDelayMs: 100, maxDelayMs: 200 } } });
  cleanup.push(() => hub.close());
  await eventually(() => upstreamOf(hub.hub, 'feed').client.state === 'open', 'the hub to connect');

  const ws = new WebSocket(`ws+unix://${hub.socketPath}:/hub`, [ENVELOPE_PROTOCOL]);
  cleanup.push(() => ws.terminate());
  const acks = new Set<number>();
  const errors = new Map<number, string>();
  ws.on('message', (data: Buffer) => {
    const f = JSON.parse(data.toString()) as { op: string; id?: number; code?: string };
    if (f.op === 'ack' && typeof f.id === 'number') acks.add(f.id);
    if (f.op === 'error' && typeof f.id === 'number') errors.set(f.id, f.code!);
  });
  await new Promise((r) => ws.once('open', r));
  const N = 30_000;
  const pad = 'y'.repeat(1000);
  for (let i = 0; i < N; i++) ws.send(JSON.stringify({ op: 'send', id: i, upstream: 'feed', text: `${i}:${pad}` }));
  // Once the kernel's buffers are full the hub holds frames itself: kill the upstream with frames in its hands.
  await eventually(() => upstreamOf(hub.hub, 'feed').ledger.out.heldBytes > 1024 * 1024, 'the hub to hold frames for the slow upstream', 60_000);
  assert.ok(upstreamOf(hub.hub, 'feed').ledger.out.held > 0, 'frames held at the kill');
  up.child.kill('SIGKILL');
  await eventually(() => upstreamOf(hub.hub, 'feed').client.state !== 'open', 'the hub to see the upstream go');
  // Every send gets exactly one answer: an ack, or an error with its id (refused at the door).
  await eventually(() => acks.size + [...errors.keys()].filter((id) => !acks.has(id)).length === N, 'every send answered', 60_000);

  // A new upstream on the same port takes what the hub still holds.
  const restarted = await slowUpstreamOn(port);
  await eventually(() => upstreamOf(hub.hub, 'feed').ledger.out.held === 0, 'nothing held any more', 60_000);
  const ledger = upstreamOf(hub.hub, 'feed').ledger.out;
  assert.equal(ledger.accepted, ledger.sent + ledger.dropped + ledger.held, `the ledger balances: ${JSON.stringify(ledger)}`);
  const lost = [...errors.entries()].filter(([id]) => acks.has(id));
  assert.equal(lost.length, ledger.dropped - [...errors.keys()].filter((id) => !acks.has(id)).length,
    `every acknowledged send the hub lost came back as an error with its id (${lost.length} errors, ${ledger.dropped} dropped)`);
  assert.ok(lost.every(([, code]) => ['ERR_CONNECTION_LOST', 'ERR_QUEUE_FULL', 'ERR_QUEUE_EXPIRED'].includes(code)), JSON.stringify(lost.slice(0, 5)));
  await eventually(async () => (await restarted.report()).received > 0, 'frames held through the outage went out on the next connection');
});

/** A slow upstream on a given port (the restarted one). */
async function slowUpstreamOn(port: number): Promise<{ report(): Promise<{ received: number }> }> {
  const { WebSocketServer } = await import('ws');
  const wss = new WebSocketServer({ host: '127.0.0.1', port });
  cleanup.push(() => {
    for (const c of wss.clients) c.terminate();
    return new Promise((r) => wss.close(r));
  });
  let received = 0;
  wss.on('connection', (c) => c.on('message', () => received++));
  await new Promise((r) => wss.once('listening', r));
  return { report: () => Promise.resolve({ received }) };
}
