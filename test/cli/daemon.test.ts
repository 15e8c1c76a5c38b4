/**
 * The daemon as an operator runs it: `wshub serve` with a config file,
 * `wshub status`, `wshub tail`, SIGHUP reload (an upstream added, one removed
 * with its sessions told 1001) and SIGTERM drain (sessions closed 1001, exit 0).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { DemoFeed, demoUpstreamConfig } from '../../src/demo/feed.js';
import type { HubStats } from '../../src/hub/hub.js';
import { eventually, Worker } from '../hub/helpers.js';

const BIN = fileURLToPath(new URL('../../../bin/wshub.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'wshub-daemon-'));
const socketPath = join(dir, 'hub.sock');
const configFile = join(dir, 'wshub.yaml');
const feeds: DemoFeed[] = [];
const children: ChildProcess[] = [];
const workers: Worker[] = [];
after(async () => {
  for (const w of workers) w.kill('SIGKILL');
  for (const c of children) c.kill('SIGKILL');
  for (const f of feeds) await f.close();
  rmSync(dir, { recursive: true, force: true });
});

function writeConfig(upstreams: Record<string, DemoFeed>): void {
  writeFileSync(
    configFile,
    stringify({
      listen: socketPath,
      http: '127.0.0.1:0',
      logLevel: 'info',
      upstreams: Object.fromEntries(Object.entries(upstreams).map(([name, f]) => [name, { ...demoUpstreamConfig(f.url), pingIntervalMs: 0 }])),
    }),
  );
}

test('serve, status, tail, SIGHUP reload, SIGTERM drain', async () => {
  const a = new DemoFeed({ tickMs: 50 });
  const b = new DemoFeed({ tickMs: 50 });
  feeds.push(a, b);
  await Promise.all([a.ready(), b.ready()]);
  a.start();
  b.start();
  writeConfig({ a });

  const hub = spawn(process.execPath, [BIN, 'serve', '-c', configFile], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(hub);
  const logs: Array<Record<string, unknown>> = [];
  createInterface({ input: hub.stdout }).on('line', (line) => logs.push(JSON.parse(line) as Record<string, unknown>));
  const listening = await eventually(() => logs.find((l) => l.msg === 'status and metrics listening'), 'the HTTP listener');
  const http = String(listening.http).replace(/^http:\/\//, '').replace(/\/$/, '');
  const status = async (): Promise<HubStats> => (await (await fetch(`http://${http}/status`)).json()) as HubStats;
  await eventually(async () => (await status()).upstreams[0]?.client.state === 'open', 'upstream a open');

  // wshub status, human and JSON.
  let out = spawnSync(process.execPath, [BIN, 'status', '--http', http], { encoding: 'utf8', timeout: 10_000 });
  assert.equal(out.status, 0, out.stderr);
  assert.match(out.stdout, /^a +open /m);
  out = spawnSync(process.execPath, [BIN, 'status', '--http', http, '--json'], { encoding: 'utf8', timeout: 10_000 });
  assert.equal((JSON.parse(out.stdout) as HubStats).upstreams[0]!.name, 'a');

  // wshub tail attaches like a worker and prints messages.
  const tail = spawn(process.execPath, [BIN, 'tail', 'a', '--listen', socketPath, '-s', '{"method":"SUBSCRIBE","params":["btcusdt@trade"],"id":1}'], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(tail);
  const tailLines: string[] = [];
  createInterface({ input: tail.stdout }).on('line', (l) => tailLines.push(l));
  await eventually(() => tailLines.filter((l) => l.includes('"stream":"btcusdt@trade"')).length >= 2, 'tail output');
  assert.equal(tailLines[0], '{"result":null,"id":1}');
  tail.kill();

  // SIGHUP: upstream b added, a removed; a's session is told 1001.
  const onA = new Worker(`ws+unix://${socketPath}:/u/a`);
  workers.push(onA);
  await onA.opened();
  writeConfig({ b });
  hub.kill('SIGHUP');
  const closed = await onA.waitFor('close', 10_000);
  assert.equal(closed.code, 1001);
  await eventually(async () => {
    const s = await status();
    return s.upstreams.length === 1 && s.upstreams[0]!.name === 'b' && s.upstreams[0]!.client.state === 'open';
  }, 'the reloaded upstream set');
  assert.ok(logs.some((l) => l.msg === 'config reloaded' && JSON.stringify(l.added) === '["b"]' && JSON.stringify(l.removed) === '["a"]'));

  // SIGTERM: sessions get 1001 after what was queued for them, the process exits 0.
  const onB = new Worker(`ws+unix://${socketPath}:/u/b`);
  workers.push(onB);
  await onB.opened();
  onB.send('{"method":"SUBSCRIBE","params":["ethusdt@trade"],"id":7}');
  await eventually(async () => ((await onB.report()).byTopic['ethusdt@trade'] ?? 0) >= 1, 'ticks on b');
  const exited = new Promise<number | null>((resolve) => hub.once('exit', (code) => resolve(code)));
  hub.kill('SIGTERM');
  const drained = await onB.waitFor('close', 10_000);
  assert.equal(drained.code, 1001);
  assert.equal(await exited, 0);
  assert.ok(logs.some((l) => l.msg === 'drained, exiting'));
});
