/**
 * Logs: one structured line per connection event, secrets never written
 * (a token in the upstream URL's query, credential headers in any case), and
 * the same secrets absent from /status, /metrics and /events. pino-pretty is
 * used only when stdout is a terminal.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { DemoFeed, demoUpstreamConfig } from '../../src/demo/feed.js';
import { resolveConfig } from '../../src/hub/config.js';
import { Hub } from '../../src/hub/hub.js';
import { HubHttpServer } from '../../src/observe/http.js';
import { createLogger, redactHeaders, redactUrl } from '../../src/observe/log.js';
import { eventually, Worker } from '../hub/helpers.js';
import { readEvents } from './sse.js';

const cleanups: Array<() => Promise<void> | void> = [];
const workers: Worker[] = [];
after(async () => {
  for (const w of workers) w.kill('SIGKILL');
  for (const c of cleanups.reverse()) await c();
});

const SECRETS = ['s3cr3t-query-token', 'hunter2-header', 'k3y-header-value', 'p4ssw0rd'];

function capture(): { lines: Array<Record<string, unknown>>; text: () => string; stream: Writable } {
  const lines: Array<Record<string, unknown>> = [];
  const raw: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      raw.push(chunk.toString());
      for (const line of chunk.toString().split('\n')) if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { lines, text: () => raw.join(''), stream };
}

function assertNoSecret(where: string, text: string): void {
  for (const s of SECRETS) assert.ok(!text.includes(s), `${where} contains the secret "${s}"`);
}

test('connection events are logged one line each with the reason; URL tokens and credential headers never reach logs, /status, /metrics or /events', async () => {
  let feed = new DemoFeed({ tickMs: 3_600_000 });
  await feed.ready();
  const port = feed.port;
  cleanups.push(() => feed.close());
  const dir = mkdtempSync(join(tmpdir(), 'wshub-observe-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const out = capture();
  const logger = createLogger({ level: 'debug', destination: out.stream });
  const url = `ws://user:p4ssw0rd@127.0.0.1:${port}/ws?token=s3cr3t-query-token&symbol=btc`;
  const config = resolveConfig({
    listen: join(dir, 'hub.sock'),
    tcp: '127.0.0.1:0',
    upstreams: {
      feed: {
        ...demoUpstreamConfig(url),
        headers: { Authorization: 'Bearer hunter2-header', 'X-Api-Key': 'k3y-header-value' },
        pingIntervalMs: 0,
        backoff: { minDelayMs: 300, maxDelayMs: 300, floorMs: 300 },
      },
    },
  });
  const hub = new Hub({ config, logger });
  await hub.start();
  cleanups.push(async () => {
    hub.destroy();
    await hub.close();
  });
  const http = new HubHttpServer(hub);
  const { port: httpPort } = await http.listen('127.0.0.1', 0);
  cleanups.push(() => http.close());
  const base = `http://127.0.0.1:${httpPort}`;
  await eventually(() => feed.connections === 1, 'the hub connected upstream');

  const tcp = hub.server.addresses().tcp!;
  const worker = new Worker(`ws://127.0.0.1:${tcp.port}/u/feed`, { protocol: 'feed-v1' });
  workers.push(worker);
  await worker.opened();
  worker.send(JSON.stringify({ method: 'SUBSCRIBE', params: ['btcusdt@trade'], id: 1 }));
  await eventually(async () => (await worker.report()).responses.length === 1, 'the ack');

  // The upstream dies and comes back; then the worker leaves.
  await feed.close();
  feed = new DemoFeed({ tickMs: 3_600_000, port });
  await feed.ready();
  await eventually(() => feed.subscribes.get('btcusdt@trade') === 1, 'resubscribed after the restart', 10_000);
  worker.command('close');
  await worker.waitFor('close');
  await eventually(() => out.lines.some((l) => l.msg === 'session detached'), 'the detach line');

  // Ask every endpoint while the secrets are in the config.
  const bodies = await Promise.all(['/status', '/metrics', '/healthz'].map(async (p) => (await fetch(base + p)).text()));
  const events = await readEvents(base);
  assert.match(events, /event: stats\ndata: \{/);

  // Direct logging of a URL and a header map is redacted too, whatever the header's case.
  logger.info({ url: 'wss://user:p4ssw0rd@example.com/ws?api_key=s3cr3t-query-token', headers: { AUTHORIZATION: 'Bearer hunter2-header', 'x-api-key': 'k3y-header-value', accept: 'json' } }, 'direct');
  const direct = out.lines.find((l) => l.msg === 'direct')!;
  assert.equal(direct.url, 'wss://[REDACTED]:[REDACTED]@example.com/ws?api_key=[REDACTED]');
  assert.deepEqual(direct.headers, { AUTHORIZATION: '[REDACTED]', 'x-api-key': '[REDACTED]', accept: 'json' });

  assertNoSecret('the log', out.text());
  assertNoSecret('/status', bodies[0]!);
  assertNoSecret('/metrics', bodies[1]!);
  assertNoSecret('/healthz', bodies[2]!);
  assertNoSecret('/events', events);
  assert.ok(bodies[0]!.includes('token=[REDACTED]'), '/status shows the redacted URL');

  // One line per connection event, with the reason.
  const lifecycle = new Set(['connecting', 'open', 'close', 'reconnect']);
  const upstreamEvents = out.lines.filter((l) => l.upstream === 'feed' && lifecycle.has(l.event as string)).map((l) => l.event);
  assert.deepEqual(upstreamEvents, ['connecting', 'open', 'close', 'reconnect', 'connecting', 'open']);
  const close = out.lines.find((l) => l.upstream === 'feed' && l.event === 'close')!;
  assert.equal(close.code, 1006);
  assert.equal(close.errorCode, 'ERR_CONNECTION_LOST');
  assert.equal(close.address, `127.0.0.1:${port}`);
  const open = out.lines.find((l) => l.upstream === 'feed' && l.event === 'open')!;
  assert.equal(open.family, 'IPv4');
  const attached = out.lines.find((l) => l.msg === 'session attached')!;
  assert.equal(attached.transport, 'tcp');
  assert.equal(attached.remoteAddress, '127.0.0.1');
  assert.equal(attached.upstream, 'feed');
  const detached = out.lines.find((l) => l.msg === 'session detached')!;
  assert.equal(detached.session, attached.session);
  assert.equal(detached.code, 1000);
});

test('redactUrl and redactHeaders: user info, query values not on the public list and credential headers, nothing else', () => {
  assert.equal(redactUrl('wss://a:b@h.example/x?token=1&streams=2&signature=3'), 'wss://[REDACTED]:[REDACTED]@h.example/x?token=[REDACTED]&streams=2&signature=[REDACTED]');
  assert.equal(redactUrl('not a url?token=1'), 'not a url?[REDACTED]');
  assert.deepEqual(redactHeaders({ Cookie: 'c', 'Sec-WebSocket-Protocol': 'token-in-protocol', Origin: 'o' }), { Cookie: '[REDACTED]', 'Sec-WebSocket-Protocol': '[REDACTED]', Origin: 'o' });
});

const WSHUB = fileURLToPath(new URL('../../../bin/wshub.js', import.meta.url));
const SCRIPT = '/usr/bin/script';

/** Run `wshub serve` until it logs that it started; return what it wrote to stdout. */
async function serveOutput(tty: boolean, feedUrl: string, dir: string): Promise<string> {
  const argv = [process.execPath, WSHUB, 'serve', '--upstream', `feed=${feedUrl}`, '--listen', join(dir, `hub-${tty ? 'tty' : 'pipe'}.sock`), '--log-level', 'info'];
  // util-linux `script` gives the child a pseudo-terminal as stdout. The child runs in the terminal's own
  // session, out of reach of a process-group kill, so the shell prints its pid before exec'ing node.
  const child = tty
    ? spawn(SCRIPT, ['-qfec', `echo "PID:$$"; exec ${argv.map((a) => `'${a}'`).join(' ')}`, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] })
    : spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  let hubPid: number | undefined = tty ? undefined : child.pid;
  const kill = (): void => {
    for (const pid of [hubPid, child.pid]) {
      try {
        if (pid !== undefined) process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  };
  cleanups.push(kill);
  let out = '';
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    hubPid ??= Number(/PID:(\d+)/.exec(out)?.[1]) || undefined;
  });
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  await eventually(() => /hub started/.test(out) && /\bopen\b/.test(out.slice(out.indexOf('hub started'))), `wshub serve (tty=${tty}) to log "hub started" and the upstream open; stdout: ${out.slice(0, 500)} stderr: ${err.slice(0, 500)}`);
  kill();
  return out;
}

test('pino-pretty only when stdout is a terminal: JSON lines into a pipe, readable lines on a TTY', async () => {
  const { existsSync } = await import('node:fs');
  assert.ok(existsSync(SCRIPT), `${SCRIPT} (util-linux) is missing: it is needed to give wshub a terminal`);
  const feed = new DemoFeed({ tickMs: 3_600_000 });
  await feed.ready();
  cleanups.push(() => feed.close());
  const dir = mkdtempSync(join(tmpdir(), 'wshub-observe-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const secretUrl = `${feed.url}?token=s3cr3t-query-token`;

  const piped = await serveOutput(false, secretUrl, dir);
  const lines = piped.split('\n').filter(Boolean);
  assert.ok(lines.length >= 3);
  for (const line of lines) {
    const parsed = JSON.parse(line) as { level: number; msg: string };
    assert.equal(typeof parsed.level, 'number', 'JSON line with a numeric level');
  }
  assertNoSecret('piped output', piped);

  const tty = await serveOutput(true, secretUrl, dir);
  // eslint-disable-next-line no-control-regex
  const plain = tty.replace(/\x1b\[[0-9;]*m/g, '');
  assert.match(plain, /INFO.*hub started/);
  assert.ok(!plain.includes('"level":'), 'no JSON on a terminal');
  // One line per event (docs/observe.md): nested fields such as "hub started"'s addresses stay on its line.
  const complete = plain.split(/\r?\n/).slice(0, -1).filter((l) => l.trim() !== '' && !l.startsWith('PID:'));
  assert.ok(complete.length >= 3, plain);
  for (const line of complete) assert.match(line, /^\[\d\d:\d\d:\d\d\.\d{3}\] [A-Z]+: /, `every line is an event of its own:\n${plain}`);
  assert.match(complete.find((l) => l.includes('hub started')) ?? '', /hub started .*"addresses":\{"unix":/);
  assertNoSecret('terminal output', tty);
});
