/**
 * Transparent mode with the raw adapter: every upstream message reaches every
 * session byte for byte (text as text, binary as binary), groups get each
 * message exactly once, snapshots give late joiners the last message, and
 * session sends reach the upstream verbatim. Workers are real processes: 8
 * forked Node workers and one python3-websockets worker, all over the hub's
 * Unix socket.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { WebSocketServer, type WebSocket } from 'ws';
import { eventually, startTestHub, Worker, type TestHub } from './helpers.js';

const PYTHON = '/usr/bin/python3';
const PY_WORKER = fileURLToPath(new URL('../../../test/hub/fixtures/py_worker.py', import.meta.url));

interface Upstream {
  wss: WebSocketServer;
  url: string;
  peers: Set<WebSocket>;
  received: Array<{ data: Buffer; isBinary: boolean }>;
}

async function rawUpstream(): Promise<Upstream> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise((r) => wss.once('listening', r));
  const up: Upstream = { wss, url: `ws://127.0.0.1:${(wss.address() as { port: number }).port}/`, peers: new Set(), received: [] };
  wss.on('connection', (ws) => {
    up.peers.add(ws);
    ws.on('close', () => up.peers.delete(ws));
    ws.on('message', (data: Buffer, isBinary: boolean) => up.received.push({ data, isBinary }));
  });
  return up;
}

function broadcast(up: Upstream, payloads: Array<string | Buffer>): void {
  for (const ws of up.peers) for (const p of payloads) ws.send(p, { binary: Buffer.isBuffer(p) });
}

function digestOf(payloads: Array<string | Buffer>): string {
  const h = createHash('sha256');
  for (const p of payloads) h.update(Buffer.isBuffer(p) ? 'b' : 't').update(p);
  return h.digest('hex');
}

const workers: Worker[] = [];
let hub: TestHub | undefined;
let upstream: Upstream | undefined;
after(async () => {
  for (const w of workers) w.kill('SIGKILL');
  await hub?.close();
  for (const ws of upstream?.peers ?? []) ws.terminate();
  upstream?.wss.close();
});

test('raw: 8 node workers and a python worker each get every message byte for byte; sends go upstream verbatim', async () => {
  assert.ok(existsSync(PYTHON), `${PYTHON} is missing: install Debian's python3-websockets`);
  upstream = await rawUpstream();
  hub = await startTestHub({ raw: { url: upstream.url, pingIntervalMs: 0 } });
  await eventually(() => upstream!.peers.size === 1, 'the hub to connect upstream');

  for (let i = 0; i < 8; i++) workers.push(new Worker(hub.url('raw')));
  await Promise.all(workers.map((w) => w.opened()));

  // A mix of text (including multi-byte UTF-8), binary with every byte value, an empty and a large message.
  const payloads: Array<string | Buffer> = [];
  for (let i = 0; i < 300; i++) {
    if (i % 3 === 0) payloads.push(randomBytes(1 + (i % 700)));
    else payloads.push(JSON.stringify({ seq: i, note: 'prix €, 価格, цена' }));
  }
  payloads.push(Buffer.from([...Array(256).keys()]), '', randomBytes(200_000));

  const py = spawn(PYTHON, [PY_WORKER, hub.socketPath, '/u/raw', String(payloads.length)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const pyLines = createInterface({ input: py.stdout });
  const pyEvents: Array<Record<string, unknown>> = [];
  pyLines.on('line', (line) => pyEvents.push(JSON.parse(line) as Record<string, unknown>));
  await eventually(() => pyEvents.some((e) => e.ev === 'open'), 'the python worker to attach', 15_000);
  await eventually(() => hub!.hub.connections.size === 9, 'nine sessions');

  broadcast(upstream, payloads);
  const expected = digestOf(payloads);
  for (const w of workers) {
    const r = await eventually(async () => {
      const rep = await w.report();
      return rep.messages >= payloads.length ? rep : undefined;
    }, 'every message at a node worker');
    assert.equal(r.messages, payloads.length);
    assert.equal(r.digest, expected, 'byte-exact, text stays text, binary stays binary');
  }
  const done = await eventually(() => pyEvents.find((e) => e.ev === 'done'), 'the python worker to finish', 20_000);
  assert.equal(done.messages, payloads.length);
  assert.equal(done.binary, payloads.filter((p) => Buffer.isBuffer(p)).length);
  assert.equal(done.digest, expected);

  workers[0]!.send(Buffer.from([0, 1, 2, 255]));
  workers[1]!.send('{"op":"hello"}');
  await eventually(() => upstream!.received.length >= 4, 'session sends at the upstream');
  const got = upstream.received.map((m) => `${m.isBinary ? 'b' : 't'}:${m.data.toString('hex')}`).sort();
  const want = [
    `b:${Buffer.from([0, 1, 2, 255]).toString('hex')}`,
    `t:${Buffer.from('{"op":"hello"}').toString('hex')}`,
    `b:${Buffer.from('py-hello').toString('hex')}`,
    `t:${Buffer.from('py-text').toString('hex')}`,
  ].sort();
  assert.deepEqual(got, want);
  const stats = hub.hub.stats();
  assert.equal(stats.upstreams[0]!.messagesIn, payloads.length);
  assert.deepEqual(stats.dropped, {});
});

test('raw: groups get each message exactly once; ungrouped sessions each get a copy', async () => {
  assert.ok(hub && upstream);
  const groupA = [0, 1, 2, 3].map(() => new Worker(hub!.url('raw', 'group=a')));
  const groupB = [0, 1].map(() => new Worker(hub!.url('raw', 'group=b')));
  const solo = [new Worker(hub.url('raw'))];
  const all = [...groupA, ...groupB, ...solo];
  workers.push(...all);
  await Promise.all(all.map((w) => w.opened()));
  // Earlier workers are still attached and ungrouped: 8 node + these.
  const before = await Promise.all(all.map((w) => w.report()));
  const N = 2000;
  broadcast(upstream, Array.from({ length: N }, (_, i) => `{"n":${i}}`));
  const sum = async (ws: Worker[]): Promise<number> => (await Promise.all(ws.map((w) => w.report()))).reduce((a, r) => a + r.messages, 0);
  const base = (ws: Worker[]): number => ws.reduce((a, w) => a + before[all.indexOf(w)]!.messages, 0);
  await eventually(async () => (await sum(groupA)) - base(groupA) === N && (await sum(groupB)) - base(groupB) === N && (await sum(solo)) - base(solo) === N, 'group deliveries');
  // Each group got every message exactly once: no more arrive later.
  await new Promise((r) => setTimeout(r, 200));
  assert.equal((await sum(groupA)) - base(groupA), N);
  assert.equal((await sum(groupB)) - base(groupB), N);
  const spread = (await Promise.all(groupA.map((w) => w.report()))).map((r, i) => r.messages - before[i]!.messages);
  assert.ok(spread.every((n) => n > 0), `every member of an idle group gets a share: ${spread.join(',')}`);
});

test('raw: snapshot=1 gives a late joiner the last message first', async () => {
  assert.ok(hub && upstream);
  broadcast(upstream, ['{"last":"one"}', '{"last":"two"}']);
  await new Promise((r) => setTimeout(r, 100));
  const late = new Worker(hub.url('raw', 'snapshot=1'), { env: { WORKER_KEEP: '1' } });
  const plain = new Worker(hub.url('raw'), { env: { WORKER_KEEP: '1' } });
  workers.push(late, plain);
  await Promise.all([late.opened(), plain.opened()]);
  const r = await eventually(async () => {
    const rep = await late.report();
    return rep.messages >= 1 ? rep : undefined;
  }, 'the snapshot');
  assert.equal(Buffer.from(r.bodies[0]!.hex, 'hex').toString(), '{"last":"two"}');
  await new Promise((res) => setTimeout(res, 100));
  assert.equal((await plain.report()).messages, 0, 'no snapshot without asking');
});
