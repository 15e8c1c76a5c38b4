/**
 * `wshub tail` as an operator uses it, as a child process: a token from
 * --token or WSHUB_TOKEN, the hub's own refusal reason (not ERR_PEER_GONE
 * for everything), an unreachable hub named as such, `| head` ending it
 * quietly, Ctrl-C sending a close frame, `--binary` sending bytes, and the
 * exit codes of docs/cli.md.
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { WebSocketServer } from 'ws';
import { DemoFeed, demoUpstreamConfig } from '../../src/demo/feed.js';
import { eventually, startTestHub, type TestHub } from '../hub/helpers.js';
import { BIN, run, wshub, type CliResult } from './run.js';

const TOKEN = 'tail-test-token-0123456789';
const SUBSCRIBE = '{"method":"SUBSCRIBE","params":["btcusdt@trade"],"id":1}';

let feed: DemoFeed;
let hub: TestHub;
let tcp: string;
const children: ChildProcess[] = [];

before(async () => {
  feed = new DemoFeed({ tickMs: 20 });
  await feed.ready();
  feed.start();
  hub = await startTestHub({ feed: { ...demoUpstreamConfig(feed.url), pingIntervalMs: 0 } }, { tcp: '127.0.0.1:0', token: TOKEN });
  const a = hub.hub.server.addresses().tcp!;
  tcp = `${a.host}:${a.port}`;
});
after(async () => {
  for (const c of children) c.kill('SIGKILL');
  await hub?.close();
  await feed?.close();
});

function tailRun(args: string[], env: Record<string, string | undefined> = {}): Promise<CliResult> {
  return wshub(['tail', ...args], { env: { WSHUB_TOKEN: undefined, ...env } });
}

/** A running tail: its stdout lines, its exit code. */
function tailChild(args: string[], env: Record<string, string | undefined> = {}): { child: ChildProcess; lines: string[]; exited: Promise<number | null>; stderr: () => string } {
  const child = spawn(process.execPath, [BIN, 'tail', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, WSHUB_TOKEN: undefined, ...env } });
  children.push(child);
  const lines: string[] = [];
  let stderr = '';
  createInterface({ input: child.stdout }).on('line', (l) => lines.push(l));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  return { child, lines, exited, stderr: () => stderr };
}

test('without a token the hub\'s refusal is printed with its code and reason; exit 1', async () => {
  const r = await tailRun(['feed', '--tcp', tcp]);
  assert.equal(r.status, 1);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.match(r.stderr.trim(), /^wshub: ERR_UNAUTHORIZED: tail ws:\/\/127\.0\.0\.1:\d+\/u\/feed: the hub refused: HTTP 401 Unauthorized — bearer token required$/);
});

test('an unknown upstream: the hub\'s 404 reason, not ERR_PEER_GONE', async () => {
  const r = await tailRun(['nosuch', '--listen', hub.socketPath]);
  assert.equal(r.status, 1);
  const line = r.stderr.trim();
  assert.doesNotMatch(line, /ERR_PEER_GONE/);
  assert.match(line, /^wshub: ERR_[A-Z_]+: tail ws\+unix:.*\/u\/nosuch: the hub refused: HTTP 404 Not Found — .*nosuch/);
});

test('no hub at the socket path: ERR_HUB_UNREACHABLE naming ENOENT', async () => {
  const r = await tailRun(['feed', '--listen', join(hub.dir, 'not-there.sock')]);
  assert.equal(r.status, 1);
  assert.match(r.stderr.trim(), /^wshub: ERR_HUB_UNREACHABLE: tail ws\+unix:.*not-there\.sock:\/u\/feed: cannot reach the hub: ENOENT \(no socket file there/);
});

for (const via of ['--token', 'WSHUB_TOKEN'] as const) {
  test(`with ${via} it attaches, sends the subscribe and prints messages; Ctrl-C exits 0`, async () => {
    const args = ['feed', '--tcp', tcp, '-s', SUBSCRIBE, ...(via === '--token' ? ['--token', TOKEN] : [])];
    const t = tailChild(args, via === 'WSHUB_TOKEN' ? { WSHUB_TOKEN: TOKEN } : {});
    await eventually(() => t.lines.filter((l) => l.includes('"stream":"btcusdt@trade"')).length >= 2, 'messages', 10_000);
    assert.equal(t.lines[0], '{"result":null,"id":1}');
    t.child.kill('SIGINT');
    assert.equal(await t.exited, 0, t.stderr());
    assert.equal(t.stderr(), '');
  });
}

test('| head: a closed stdout ends tail quietly with exit 0, no EPIPE crash', async () => {
  const script = `"$0" "$@" | head -n 3 >/dev/null; echo "tail-exit=\${PIPESTATUS[0]}" >&2`;
  const res = await run('/bin/bash', ['-c', script, process.execPath, BIN, 'tail', 'feed', '--listen', hub.socketPath, '-s', SUBSCRIBE]);
  assert.match(res.stderr, /tail-exit=0\s*$/);
  assert.doesNotMatch(res.stderr, /EPIPE|\n\s+at /);
});

test('Ctrl-C sends a close frame (1000); --binary sends the hex frames as binary messages; text frames stay text', async () => {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await once(wss, 'listening');
  const port = (wss.address() as { port: number }).port;
  const received: Array<{ data: Buffer; isBinary: boolean }> = [];
  const closes: number[] = [];
  wss.on('connection', (ws) => {
    ws.on('message', (data: Buffer, isBinary) => received.push({ data, isBinary }));
    ws.on('close', (code) => closes.push(code));
  });
  try {
    const bin = tailChild([`ws://127.0.0.1:${port}/`, '--binary', '-s', '00ff0a80', '-s', 'de ad']);
    await eventually(() => received.length === 2, 'two binary frames');
    assert.deepEqual(received.map((r) => [r.isBinary, r.data.toString('hex')]), [[true, '00ff0a80'], [true, 'dead']]);
    bin.child.kill('SIGINT');
    assert.equal(await bin.exited, 0);
    await eventually(() => closes.length === 1, 'the close frame');
    assert.deepEqual(closes, [1000], 'a close frame, not a dropped connection (1006)');

    const text = tailChild([`ws://127.0.0.1:${port}/`, '-s', 'hello']);
    await eventually(() => received.length === 3, 'the text frame');
    assert.deepEqual([received[2]!.isBinary, received[2]!.data.toString()], [false, 'hello']);
    text.child.kill('SIGTERM');
    assert.equal(await text.exited, 0);

    const bad = await tailRun([`ws://127.0.0.1:${port}/`, '--binary', '-s', 'xyz']);
    assert.equal(bad.status, 2, 'bad hex is a usage error');
    assert.match(bad.stderr, /^wshub: ERR_INVALID_OPTION: --send #1: --binary frames are hex/);
  } finally {
    for (const c of wss.clients) c.terminate();
    await new Promise((resolve) => wss.close(resolve));
  }
});

test('a session the hub ends abnormally exits 1; closed 1000 by the peer exits 0', async () => {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await once(wss, 'listening');
  const port = (wss.address() as { port: number }).port;
  let closeWith = 1000;
  wss.on('connection', (ws) => setTimeout(() => ws.close(closeWith, 'bye'), 50));
  try {
    let r = await tailRun([`ws://127.0.0.1:${port}/`]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /-- closed 1000 bye/);
    closeWith = 1013;
    r = await tailRun([`ws://127.0.0.1:${port}/`]);
    assert.equal(r.status, 1);
    assert.match(r.stdout, /-- closed 1013 bye/);
  } finally {
    await new Promise((resolve) => wss.close(resolve));
  }
});
