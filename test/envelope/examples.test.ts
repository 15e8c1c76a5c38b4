/**
 * The examples in examples/ run as the README shows, against a real hub and
 * the demo feed: a plain ws worker (transparent), a HubClient worker
 * (envelope) and a python3-websockets worker (transparent, Unix socket).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { DemoFeed, demoUpstreamConfig } from '../../src/demo/feed.js';
import { eventually, startTestHub, type TestHub } from '../hub/helpers.js';

const PYTHON = '/usr/bin/python3';
const example = (file: string): string => fileURLToPath(new URL(`../../examples/${file}`, import.meta.url));
const source = (file: string): string => fileURLToPath(new URL(`../../../examples/${file}`, import.meta.url));

let feed: DemoFeed;
let hub: TestHub;
const children: ChildProcess[] = [];
after(async () => {
  for (const c of children) c.kill('SIGKILL');
  await hub?.close();
  await feed?.close();
});

function run(cmd: string, args: string[]): { child: ChildProcess; lines: string[] } {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  const lines: string[] = [];
  let buf = '';
  const onData = (d: Buffer): void => {
    buf += d.toString();
    const parts = buf.split('\n');
    buf = parts.pop()!;
    lines.push(...parts);
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  return { child, lines };
}

test('examples: transparent ws worker, HubClient worker and python worker all receive the feed through one upstream connection', async () => {
  assert.ok(existsSync(PYTHON), `${PYTHON} is missing: install Debian's python3-websockets`);
  feed = new DemoFeed({ tickMs: 50 });
  await feed.ready();
  feed.start();
  hub = await startTestHub({ feed: { ...demoUpstreamConfig(feed.url), pingIntervalMs: 0 } });

  const ws = run(process.execPath, [example('transparent-worker.js'), hub.socketPath, 'feed', 'w1', 'btcusdt@trade']);
  const hc = run(process.execPath, [example('hubclient-worker.js'), hub.socketPath, 'feed', 'btcusdt@trade', 'hc']);
  const priced = (lines: string[]): number => lines.filter((l) => / btcusdt@trade +price \d/.test(l)).length;
  await eventually(() => priced(ws.lines) >= 3, 'ticks at the ws worker', 15_000);
  await eventually(() => priced(hc.lines) >= 3, 'ticks at the HubClient worker', 15_000);
  // Started last: it leaves after 3 ticks, and a last subscriber leaving would (rightly) unsubscribe upstream.
  const py = run(PYTHON, [source('python-worker.py'), hub.socketPath, 'feed', 'btcusdt@trade', '3']);
  await eventually(() => priced(py.lines) >= 3, 'ticks at the python worker', 15_000);
  assert.ok(hc.lines.some((l) => l.includes('request answered: {"result":[')), 'the HubClient request was answered');
  await eventually(() => py.child.exitCode === 0, 'the python worker to finish');
  assert.equal(feed.connections, 1, 'one upstream connection for all three');
  assert.equal(feed.subscribes.get('btcusdt@trade'), 1, `one upstream subscribe for all three: ${JSON.stringify([...feed.subscribes])} ${JSON.stringify(hub.hub.stats().upstreams[0]!.history.map((h) => h.to))}`);
});
