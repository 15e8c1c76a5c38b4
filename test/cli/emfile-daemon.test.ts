/**
 * Descriptor exhaustion against the whole daemon, as an operator runs it:
 * `wshub serve` under `ulimit -n 64` with an upstream configured and the
 * interface watcher on (the default), flooded with 200 connections. Every
 * timer that touches the OS then fails with EMFILE (the interface watcher's
 * `os.networkInterfaces()` first of all); the process must stay up,
 * bystander workers keep receiving, and once the flood is gone a new worker
 * is accepted and served.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { WebSocket } from 'ws';
import { stringify } from 'yaml';
import { DemoFeed, demoUpstreamConfig } from '../../src/demo/feed.js';
import type { HubStats } from '../../src/hub/hub.js';
import { eventually, sleep, Worker } from '../hub/helpers.js';

const BIN = fileURLToPath(new URL('../../../bin/wshub.js', import.meta.url));
const FD_LIMIT = 64;
const FLOOD = 200;
const SUBSCRIBE = '{"method":"SUBSCRIBE","params":["btcusdt@trade"],"id":1}';

const dir = mkdtempSync(join(tmpdir(), 'wshub-emfile-'));
const socketPath = join(dir, 'hub.sock');
const cleanups: Array<() => unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
  rmSync(dir, { recursive: true, force: true });
});

test(`wshub serve under ulimit -n ${FD_LIMIT} with an upstream and netwatch on survives ${FLOOD} connections`, async (t) => {
  const feed = new DemoFeed({ tickMs: 20 });
  cleanups.push(() => feed.close());
  await feed.ready();
  feed.start();
  const configFile = join(dir, 'wshub.yaml');
  // netwatch is left at its default (on), polling every 200 ms so exhaustion meets many polls.
  writeFileSync(configFile, stringify({
    listen: socketPath,
    http: '127.0.0.1:0',
    logLevel: 'info',
    // hold: the bystanders stay attached while the upstream cannot be redialed (close would end them with 1012).
    upstreams: { feed: { ...demoUpstreamConfig(feed.url), netwatchIntervalMs: 200, onUpstreamLoss: 'hold' } },
  }));

  const hub: ChildProcess = spawn('/bin/sh', ['-c', `ulimit -n ${FD_LIMIT} && exec "$0" "$@"`, process.execPath, BIN, 'serve', '-c', configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  cleanups.push(() => hub.kill('SIGKILL'));
  let exit: string | undefined;
  hub.once('exit', (code, signal) => (exit = `exit ${code} ${signal ?? ''}`));
  let stderr = '';
  hub.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const logs: Array<Record<string, unknown>> = [];
  createInterface({ input: hub.stdout! }).on('line', (line) => {
    try {
      logs.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      logs.push({ msg: line });
    }
  });
  const alive = (): void => assert.equal(exit, undefined, `the daemon died (${exit}); stderr: ${stderr.slice(-2000)}`);

  const listening = await eventually(() => logs.find((l) => l.msg === 'status and metrics listening') ?? (exit ? Promise.reject(new Error(stderr)) : undefined), 'the HTTP listener', 15_000);
  const http = String(listening.http).replace(/\/$/, '');
  const status = async (): Promise<HubStats> => (await (await fetch(`${http}/status`)).json()) as HubStats;
  await eventually(async () => (await status()).upstreams[0]?.client.state === 'open', 'upstream open', 15_000);

  const bystanders = Array.from({ length: 3 }, () => new Worker(`ws+unix://${socketPath}:/u/feed`));
  cleanups.push(() => bystanders.forEach((w) => w.kill('SIGKILL')));
  await Promise.all(bystanders.map((w) => w.opened()));
  for (const w of bystanders) w.send(SUBSCRIBE);
  await eventually(async () => (await Promise.all(bystanders.map((w) => w.report()))).every((r) => (r.byTopic['btcusdt@trade'] ?? 0) >= 5), 'bystanders receiving');

  const flood: WebSocket[] = [];
  cleanups.push(() => flood.forEach((ws) => ws.terminate()));
  const attach = (): Promise<string> => new Promise<string>((resolve) => {
    const ws = new WebSocket(`ws+unix://${socketPath}:/u/feed`, { handshakeTimeout: 5000 });
    flood.push(ws);
    ws.once('open', () => resolve('open'));
    ws.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
  const outcomes = await Promise.all(Array.from({ length: FLOOD }, attach));
  const opened = outcomes.filter((o) => o === 'open').length;
  t.diagnostic(`flood: ${opened} opened, ${FLOOD - opened} refused (${[...new Set(outcomes.filter((o) => o !== 'open'))].join(', ')})`);
  assert.ok(opened < FLOOD, `with ${FD_LIMIT} descriptors not all ${FLOOD} can be served`);

  // Hold the descriptors long enough for several watcher polls and server timers to meet EMFILE.
  const before = await Promise.all(bystanders.map((w) => w.report()));
  // The HTTP side is knocked on too: it may fail to answer, it must not fall over.
  await Promise.allSettled(['/status', '/', '/metrics'].map((p) => fetch(`${http}${p}`, { signal: AbortSignal.timeout(1000) })));
  await sleep(2000);
  alive();
  const during = await Promise.all(bystanders.map((w) => w.report()));
  during.forEach((r, i) => assert.ok((r.byTopic['btcusdt@trade'] ?? 0) > (before[i]!.byTopic['btcusdt@trade'] ?? 0), `bystander ${i} kept receiving under exhaustion`));
  assert.ok(logs.some((l) => l.errorCode === 'ERR_NETWATCH_FAILED' && l.errno === 'EMFILE'), 'the failed interface poll is logged with its code');

  // The upstream drops while no descriptor is free: redialing fails with EMFILE, and must only be retried.
  // New peers keep arriving meanwhile, so the descriptor the lost upstream socket frees is taken at once.
  const pressure = setInterval(() => {
    for (let i = 0; i < 5; i++) void attach();
  }, 20);
  cleanups.push(() => clearInterval(pressure));
  const mark = logs.length;
  for (const ws of feed.wss.clients) ws.terminate();
  await eventually(() => logs.slice(mark).some((l) => l.event === 'close' && l.errno === 'EMFILE'), 'a redial failing with EMFILE', 10_000);
  await sleep(500);
  clearInterval(pressure);
  alive();
  t.diagnostic(`under exhaustion: ${logs.slice(mark).filter((l) => l.event === 'close').map((l) => `${String(l.errorCode)} ${JSON.stringify(l.errno ?? '')}`).join(', ')}`);

  for (const ws of flood) ws.terminate();
  await eventually(async () => {
    const s = await status();
    return s.connections.length === bystanders.length && !s.server.fdExhausted;
  }, 'descriptors freed', 15_000);
  alive();
  const late = new Worker(`ws+unix://${socketPath}:/u/feed`);
  cleanups.push(() => late.kill('SIGKILL'));
  await late.opened();
  late.send(SUBSCRIBE);
  await eventually(async () => ((await late.report()).byTopic['btcusdt@trade'] ?? 0) >= 5, 'the late worker receiving');
  const s = await status();
  assert.equal(s.upstreams[0]!.client.state, 'open');
  assert.equal(s.upstreams[0]!.client.connections, 2, 'one reconnection, after the descriptors were freed');
  for (const w of bystanders) {
    const r = await w.report();
    const seqs = r.seqs['btcusdt@trade'] ?? [];
    assert.ok(seqs.length > 0 && r.byTopic['btcusdt@trade'] === seqs.length, 'bystanders still attached and counted');
  }
  await eventually(async () => (await Promise.all(bystanders.map((w) => w.report()))).every((r, i) => (r.byTopic['btcusdt@trade'] ?? 0) > (during[i]!.byTopic['btcusdt@trade'] ?? 0) + 5), 'bystanders receiving after the reconnect');
  alive();
});
