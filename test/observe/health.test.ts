/**
 * /healthz: 200 when ready, 503 with the reasons otherwise, under each
 * `--ready-when` rule; and the flag itself, through the real `wshub serve`.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { DemoFeed, demoUpstreamConfig } from '../../src/demo/feed.js';
import { isWshubError } from '../../src/errors.js';
import { HubHttpServer } from '../../src/observe/http.js';
import type { Health } from '../../src/observe/health.js';
import { eventually, startTestHub, type TestHub } from '../hub/helpers.js';

const cleanups: Array<() => Promise<void> | void> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function healthz(base: string): Promise<{ status: number; body: Health }> {
  const res = await fetch(`${base}/healthz`, { signal: AbortSignal.timeout(5000) });
  return { status: res.status, body: (await res.json()) as Health };
}

/** A loopback port nothing listens on (bound, then released). */
async function deadPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as { port: number };
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

async function serveHttp(hub: TestHub, options: ConstructorParameters<typeof HubHttpServer>[1] = {}): Promise<string> {
  const http = new HubHttpServer(hub.hub, options);
  const { port } = await http.listen('127.0.0.1', 0);
  cleanups.push(() => http.close());
  return `http://127.0.0.1:${port}`;
}

test('/healthz: 200 while the upstream is open, 503 with the reason while it is down, 200 again once it is back', async () => {
  let feed = new DemoFeed({ tickMs: 3_600_000 });
  await feed.ready();
  const port = feed.port;
  cleanups.push(() => feed.close());
  const hub = await startTestHub({ feed: { ...demoUpstreamConfig(feed.url), pingIntervalMs: 0, backoff: { minDelayMs: 300, maxDelayMs: 300, floorMs: 300 } } });
  cleanups.push(() => hub.close());
  const base = await serveHttp(hub);

  const up = await eventually(async () => {
    const h = await healthz(base);
    return h.status === 200 ? h : undefined;
  }, '/healthz 200');
  assert.deepEqual(up.body.reasons, []);
  assert.equal(up.body.ok, true);
  assert.equal(up.body.readyWhen, 'all');
  assert.deepEqual(up.body.upstreams.map((u) => [u.name, u.state, u.required]), [['feed', 'open', true]]);

  await feed.close();
  const down = await eventually(async () => {
    const h = await healthz(base);
    return h.status === 503 ? h : undefined;
  }, '/healthz 503', 5000, 10);
  assert.equal(down.body.ok, false);
  assert.equal(down.body.reasons.length, 1);
  assert.match(down.body.reasons[0]!, /^upstream feed is (reconnecting|connecting): /);
  const feedHealth = down.body.upstreams[0]!;
  assert.equal(feedHealth.cause, 'ERR_CONNECTION_LOST', 'the reason names the error code of the loss');

  feed = new DemoFeed({ tickMs: 3_600_000, port });
  await feed.ready();
  const back = await eventually(async () => {
    const h = await healthz(base);
    return h.status === 200 ? h : undefined;
  }, '/healthz 200 again', 10_000);
  assert.deepEqual(back.body.reasons, []);
});

test('--ready-when: all, any, none and a list of names decide /healthz; unknown names are refused', async () => {
  const feed = new DemoFeed({ tickMs: 3_600_000 });
  await feed.ready();
  cleanups.push(() => feed.close());
  const dead = `ws://127.0.0.1:${await deadPort()}/`;
  const backoff = { minDelayMs: 200, maxDelayMs: 1000 };
  const hub = await startTestHub({
    live: { ...demoUpstreamConfig(feed.url), pingIntervalMs: 0, backoff },
    dead: { url: dead, pingIntervalMs: 0, backoff },
    optional: { url: dead, pingIntervalMs: 0, backoff, required: false },
  });
  cleanups.push(() => hub.close());
  await eventually(() => hub.hub.stats().upstreams.find((u) => u.name === 'live')?.client.state === 'open', 'live open');
  await eventually(() => hub.hub.stats().upstreams.every((u) => u.name === 'live' || u.client.failedAttempts > 0), 'the dead upstreams failed once');

  const all = await healthz(await serveHttp(hub));
  assert.equal(all.status, 503);
  assert.equal(all.body.reasons.length, 1, `only the required dead upstream counts: ${JSON.stringify(all.body.reasons)}`);
  assert.match(all.body.reasons[0]!, /^upstream dead is /);
  assert.equal(all.body.upstreams.find((u) => u.name === 'dead')?.cause, 'ERR_TCP_CONNECT');
  assert.equal(all.body.upstreams.find((u) => u.name === 'optional')?.required, false);

  const any = await healthz(await serveHttp(hub, { readyWhen: 'any' }));
  assert.equal(any.status, 200);
  assert.equal(any.body.readyWhen, 'any');
  const none = await healthz(await serveHttp(hub, { readyWhen: 'none' }));
  assert.equal(none.status, 200);
  const listedLive = await healthz(await serveHttp(hub, { readyWhen: ['live'] }));
  assert.equal(listedLive.status, 200);
  assert.equal(listedLive.body.readyWhen, 'live');
  const listedOptional = await healthz(await serveHttp(hub, { readyWhen: ['live', 'optional'] }));
  assert.equal(listedOptional.status, 503, 'a listed upstream counts even when required: false');
  assert.match(listedOptional.body.reasons[0]!, /^upstream optional is /);

  assert.throws(() => new HubHttpServer(hub.hub, { readyWhen: ['live', 'typo'] }), (err: unknown) => {
    assert.ok(isWshubError(err, 'ERR_INVALID_OPTION'));
    assert.match(err.message, /unknown upstream "typo"/);
    return true;
  });
  assert.throws(() => new HubHttpServer(hub.hub, { readyWhen: 'most' as 'all' }), (err: unknown) => isWshubError(err, 'ERR_INVALID_OPTION'));
});

const WSHUB = fileURLToPath(new URL('../../../bin/wshub.js', import.meta.url));

test('wshub serve --ready-when any: the flag reaches /healthz; a bad value exits 2 naming the option', async () => {
  const feed = new DemoFeed({ tickMs: 3_600_000 });
  await feed.ready();
  cleanups.push(() => feed.close());
  const dir = mkdtempSync(join(tmpdir(), 'wshub-observe-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const dead = `ws://127.0.0.1:${await deadPort()}/`;
  const args = ['serve', '--upstream', `live=${feed.url}`, '--upstream', `dead=${dead}`, '--listen', join(dir, 'hub.sock'), '--http', '127.0.0.1:0'];

  const child = spawn(process.execPath, [WSHUB, ...args, '--ready-when', 'any'], { stdio: ['ignore', 'pipe', 'pipe'] });
  cleanups.push(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const lines: Array<Record<string, unknown>> = [];
  createInterface({ input: child.stdout }).on('line', (line) => lines.push(JSON.parse(line) as Record<string, unknown>));
  const listening = await eventually(() => lines.find((l) => l.msg === 'status and metrics listening'), `the HTTP listener log line (stderr: ${stderr})`);
  const base = String(listening.http).replace(/\/$/, '');
  const h = await eventually(async () => {
    const r = await healthz(base);
    return r.body.upstreams.find((u) => u.name === 'live')?.state === 'open' ? r : undefined;
  }, 'live open');
  assert.equal(h.status, 200, JSON.stringify(h.body));
  assert.equal(h.body.readyWhen, 'any');
  assert.notEqual(h.body.upstreams.find((u) => u.name === 'dead')?.state, 'open');
  child.kill('SIGTERM');
  const code = await new Promise<number | null>((r) => child.once('exit', r));
  assert.equal(code, 0, 'drains and exits 0');

  const bad = spawn(process.execPath, [WSHUB, ...args, '--ready-when', 'live,nope'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let badErr = '';
  bad.stderr.on('data', (d: Buffer) => (badErr += d.toString()));
  const badCode = await new Promise<number | null>((r) => bad.once('exit', r));
  assert.equal(badCode, 2);
  assert.match(badErr, /ERR_INVALID_OPTION: --ready-when: unknown upstream "nope"/);
});
