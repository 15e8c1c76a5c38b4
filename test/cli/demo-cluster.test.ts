/**
 * `wshub demo --cluster`, as a user runs it: real processes — the demo (feed
 * and two hubs), the nats-server it starts, its example workers — and plain
 * ws workers of the test's own attached to each hub. A worker on either hub
 * receives; the feed has one connection; SIGTERM leaves no process and no
 * temp dir behind; without nats-server the demo says so in one line.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { natsServerBinary } from '../cluster/helpers.js';
import { eventually } from '../hub/helpers.js';
import { BIN, run } from './run.js';

const dir = mkdtempSync(join(tmpdir(), 'wshub-demo-cluster-test-'));
const children: ChildProcess[] = [];
const sockets: WebSocket[] = [];
/** What the demo started (and its temp dir), killed and removed here too when a failed test left them. */
const grandchildren: number[] = [];
const stores: string[] = [];
after(() => {
  for (const ws of sockets) ws.terminate();
  for (const c of children) c.kill('SIGKILL');
  for (const pid of grandchildren) if (alive(pid)) process.kill(pid, 'SIGKILL');
  for (const store of [dir, ...stores]) rmSync(store, { recursive: true, force: true });
});

/** Live processes whose parent is `pid`, with their command lines (from /proc). */
function childrenOf(pid: number): Array<{ pid: number; cmd: string }> {
  const out: Array<{ pid: number; cmd: string }> = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // The command name may hold spaces and parentheses: the fields after the last ')' are fixed.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push({ pid: Number(entry), cmd: readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').join(' ').trim() });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A plain ws worker on a hub's socket, subscribed to `topic`; collects the ticks it gets. */
async function worker(socket: string, topic: string): Promise<{ ticks: string[] }> {
  const ws = new WebSocket(`ws+unix://${socket}:/u/feed`, ['feed-v1']);
  sockets.push(ws);
  const got = { ticks: [] as string[] };
  ws.on('message', (data: Buffer) => {
    const msg = JSON.parse(data.toString()) as { stream?: string };
    if (msg.stream === topic) got.ticks.push(data.toString());
  });
  await once(ws, 'open');
  ws.send(JSON.stringify({ method: 'SUBSCRIBE', params: [topic], id: 1 }));
  return got;
}

test('demo --cluster: workers on both hubs receive, the feed has one connection, SIGTERM leaves nothing behind', async () => {
  natsServerBinary(); // fails naming nats-server when this machine has none
  const child = spawn(process.execPath, [BIN, 'demo', '--cluster', '--workers', '2', '--tcp', '127.0.0.1:0', '--http', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  await eventually(() => out.includes('Ctrl-C stops everything'), 'the demo banner', 30_000);

  const socketOf = (hub: string): string => {
    const m = new RegExp(`^ {2}${hub} .*\\n {4}socket +(\\S+)`, 'm').exec(out);
    assert.ok(m, `${hub}'s socket in the banner:\n${out}`);
    return m[1]!;
  };
  const statusOf = (hub: string): string => {
    const m = new RegExp(`^ {2}${hub} [\\s\\S]*?^ {4}status +(\\S+)`, 'm').exec(out);
    assert.ok(m, `${hub}'s status URL in the banner:\n${out}`);
    return m[1]!;
  };
  const store = /store in (\S+), removed at exit/.exec(out)?.[1];
  assert.ok(store && existsSync(store), `the demo's temp dir exists while it runs:\n${out}`);
  stores.push(store);
  const feedPort = Number(/demo upstream +ws:\/\/127\.0\.0\.1:(\d+)\//.exec(out)?.[1]);
  assert.ok(feedPort > 0, `the feed's port in the banner:\n${out}`);

  // hub-b's topic is one no worker of hub-a wants: the subscribe itself has to cross NATS to the holder.
  const [onA, onB] = await Promise.all([worker(socketOf('hub-a'), 'btcusdt@trade'), worker(socketOf('hub-b'), 'solusdt@ticker')]);
  await eventually(() => onA.ticks.length >= 2 && onB.ticks.length >= 2, `two ticks on each hub (hub-a ${onA.ticks.length}, hub-b ${onB.ticks.length})`, 15_000);

  // The demo's own example workers (worker-1 on hub-a, worker-2 on hub-b) and ours: 2 + 2, one feed connection.
  await eventually(() => /feed connections open: 1 \(opened since start: 1\) · hub-a \(holder\) 2 workers · hub-b \(follower\) 2 workers/.test(out), `the [demo] line with one feed connection and both hubs' workers:\n${out}`, 10_000);
  const statuses = await Promise.all(['hub-a', 'hub-b'].map(async (hub) => {
    const res = await fetch(`${statusOf(hub)}status`);
    return (await res.json()) as { upstreams: Array<{ client: { connections: number } }>; cluster: { upstreams: Array<{ role: string }> } };
  }));
  assert.deepEqual(statuses.map((s) => s.cluster.upstreams[0]?.role), ['holder', 'follower']);
  assert.deepEqual(statuses.map((s) => s.upstreams[0]?.client.connections), [1, 0], 'only the holder connects the feed');
  // And from the kernel's side: one established TCP connection to the feed's port.
  const ss = await run('ss', ['-Htn', 'state', 'established', `( dport = :${feedPort} )`]);
  assert.equal(ss.status, 0, `ss (iproute2) is needed to count the feed's connections: ${ss.stderr}`);
  assert.equal(ss.stdout.trim().split('\n').filter(Boolean).length, 1, `connections to the feed:\n${ss.stdout}`);

  const started = childrenOf(child.pid!);
  grandchildren.push(...started.map((p) => p.pid));
  assert.equal(started.filter((p) => /nats-server/.test(p.cmd)).length, 1, `one nats-server among the demo's children: ${JSON.stringify(started)}`);
  assert.equal(started.filter((p) => /transparent-worker/.test(p.cmd)).length, 2, `two example workers: ${JSON.stringify(started)}`);

  child.kill('SIGTERM');
  const [code] = (await once(child, 'exit')) as [number | null];
  assert.equal(code, 0, out);
  await eventually(() => started.every((p) => !alive(p.pid)), `every process the demo started to be gone: ${JSON.stringify(started.filter((p) => alive(p.pid)))}`, 5000);
  assert.ok(!existsSync(store), `${store} removed`);
});

test('demo --cluster without nats-server: one line saying to install it, non-zero exit, nothing left behind', async () => {
  const emptyPath = join(dir, 'empty-path');
  const tmp = join(dir, 'tmp');
  mkdirSync(emptyPath);
  mkdirSync(tmp);
  const r = await run(process.execPath, [BIN, 'demo', '--cluster'], { env: { PATH: emptyPath, NATS_SERVER: undefined, TMPDIR: tmp } });
  assert.notEqual(r.status, 0);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0]!, /^wshub: ERR_NATS_SERVER_MISSING: .*nats-server.*apt-get install nats-server/);
  assert.equal(r.stdout, '');
  assert.deepEqual(readdirSync(tmp), [], 'no temp dir left');
});
