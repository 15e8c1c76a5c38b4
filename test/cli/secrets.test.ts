/**
 * Secrets, structurally: every value `wshub serve` took from the environment
 * (`${VAR}`) is redacted wherever the daemon shows anything. Secrets are
 * planted in every place a config can carry them — the upstream URL's path (a
 * Binance-style listen key), its query (`jwt`, `bearer`) and user info,
 * headers, subprotocols, the worker token, the HTTP token, the socket path —
 * and the upstream echoes two of them back (it negotiates the secret
 * subprotocol and closes with a reason naming the listen key). None may
 * appear in the logs, /status, /events, /metrics, /healthz, the status page
 * in a real browser, `wshub status` (human and --json), or an error message.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { launchChromium } from '../support/chromium.js';
import { WebSocketServer, type WebSocket } from 'ws';
import { stringify } from 'yaml';
import type { HubStats } from '../../src/hub/hub.js';
import { eventually, Worker } from '../hub/helpers.js';
import { readEvents } from '../observe/sse.js';

const BIN = fileURLToPath(new URL('../../../bin/wshub.js', import.meta.url));

const dir = mkdtempSync(join(tmpdir(), 'wshub-secrets-'));
const cleanups: Array<() => unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
  rmSync(dir, { recursive: true, force: true });
});

const ENV = {
  LISTEN_KEY: 'pqia91ma19a5s61cv6a81va65sdf19v8a65a1a5s61cv6a81va65sdf19v8a65a1',
  FEED_JWT: 'eyJhbGciOiJIUzI1NiJ9.c2VjcmV0LWp3dA.sig-jwt-value',
  FEED_BEARER: 'bearer-query-secret-42',
  FEED_USER: 'feeduser-secret',
  FEED_PASS: 'feedpass-secret',
  FEED_TOKEN: 'authorization-header-secret',
  CUSTOM_HEADER: 'custom-header-secret',
  PROTOCOL_SECRET: 'proto.secret-subprotocol',
  HUB_TOKEN: 'worker-token-secret',
  HTTP_TOKEN: 'http-token-secret-value',
  SOCK_DIR: dir,
};
/** A literal query value in the file (not from the environment): secret by structure, its name not being public. */
const LITERAL_QUERY_SECRET = 'literal-apikey-value';
const SECRETS = [...Object.values(ENV), LITERAL_QUERY_SECRET];

function assertClean(where: string, text: string): void {
  for (const s of SECRETS) assert.ok(!text.includes(s) && !text.includes(encodeURIComponent(s)), `${where} shows the secret "${s}":\n${text.slice(0, 3000)}`);
}

test('every ${VAR} value and every non-public query value is redacted on every surface of the daemon', async (t) => {
  // The upstream: negotiates the secret subprotocol, closes the first connection naming the listen key.
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, handleProtocols: (offered) => (offered.has(ENV.PROTOCOL_SECRET) ? ENV.PROTOCOL_SECRET : false) });
  await new Promise((resolve) => wss.once('listening', resolve));
  cleanups.push(() => new Promise((resolve) => wss.close(resolve)));
  const port = (wss.address() as { port: number }).port;
  let connections = 0;
  const paths: string[] = [];
  const ticker = new Set<WebSocket>();
  wss.on('connection', (ws, req) => {
    connections++;
    paths.push(req.url ?? '');
    ws.on('error', () => {});
    if (connections === 1) setTimeout(() => ws.close(4000, `listenKey ${ENV.LISTEN_KEY} expired`), 300);
    else ticker.add(ws);
    ws.on('close', () => ticker.delete(ws));
  });
  const timer = setInterval(() => ticker.forEach((ws) => ws.send('{"e":"tick"}')), 50);
  cleanups.push(() => clearInterval(timer));

  const configFile = join(dir, 'wshub.yaml');
  writeFileSync(configFile, stringify({
    listen: '${SOCK_DIR}/hub.sock',
    tcp: '127.0.0.1:0',
    http: '127.0.0.1:0',
    token: '${HUB_TOKEN}',
    httpToken: '${HTTP_TOKEN}',
    logLevel: 'debug',
    upstreams: {
      feed: {
        url: `ws://\${FEED_USER}:\${FEED_PASS}@127.0.0.1:${port}/ws/\${LISTEN_KEY}?jwt=\${FEED_JWT}&bearer=\${FEED_BEARER}&apikey=${LITERAL_QUERY_SECRET}&streams=visible@trade`,
        headers: { Authorization: 'Bearer ${FEED_TOKEN}', 'X-Custom': '${CUSTOM_HEADER}' },
        protocols: ['${PROTOCOL_SECRET}'],
        adapter: 'raw',
        backoff: { minDelayMs: 1500, maxDelayMs: 1500, floorMs: 1500 },
      },
    },
  }));

  const hub = spawn(process.execPath, [BIN, 'serve', '-c', configFile], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...ENV } });
  cleanups.push(() => hub.kill('SIGKILL'));
  let logText = '';
  let stderr = '';
  hub.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const logs: Array<Record<string, unknown>> = [];
  createInterface({ input: hub.stdout }).on('line', (line) => {
    logText += `${line}\n`;
    logs.push(JSON.parse(line) as Record<string, unknown>);
  });
  const listening = await eventually(() => logs.find((l) => l.msg === 'status and metrics listening'), `the HTTP listener (stderr: ${stderr})`);
  const base = String(listening.http).replace(/\/$/, '');
  const auth = { headers: { authorization: `Bearer ${ENV.HTTP_TOKEN}` } };
  const get = async (path: string): Promise<{ status: number; text: string }> => {
    const res = await fetch(`${base}${path}`, auth);
    return { status: res.status, text: await res.text() };
  };

  // The upstream really got the secrets (so the test can fail): the listen key in its path.
  await eventually(() => connections >= 1, 'the first upstream connection');
  assert.equal(paths[0]!.startsWith(`/ws/${ENV.LISTEN_KEY}?`), true);
  // During the outage /healthz explains why, with the server's reason.
  const unhealthy = await eventually(async () => {
    const h = await get('/healthz');
    return h.status === 503 ? h : undefined;
  }, 'a 503 from /healthz during the outage');
  assert.match(unhealthy.text, /listenKey \[REDACTED\] expired/);
  await eventually(async () => connections >= 2 && (JSON.parse((await get('/status')).text) as HubStats).upstreams[0]?.client.state === 'open', 'reconnected');

  const worker = new Worker(`ws+unix://${join(dir, 'hub.sock')}:/u/feed`);
  cleanups.push(() => worker.kill('SIGKILL'));
  await worker.opened();
  await eventually(async () => (await worker.report()).messages > 2, 'ticks at the worker');

  const status = await get('/status');
  const stats = JSON.parse(status.text) as HubStats;
  const client = stats.upstreams[0]!.client;
  assert.equal(client.url, `ws://[REDACTED]:[REDACTED]@127.0.0.1:${port}/ws/[REDACTED]?jwt=[REDACTED]&bearer=[REDACTED]&apikey=[REDACTED]&streams=visible@trade`);
  assert.equal(client.protocol, '[REDACTED]', 'the negotiated (secret) subprotocol');
  assert.ok(stats.upstreams[0]!.history.some((h) => /listenKey \[REDACTED\] expired/.test(h.reason)), 'the close reason, redacted');
  assertClean('/status', status.text);
  assertClean('/metrics', (await get('/metrics')).text);
  assertClean('/healthz', unhealthy.text + (await get('/healthz')).text);
  const events = await readEvents(base, 1, 10_000, ENV.HTTP_TOKEN);
  assert.match(events, /"protocol":"\[REDACTED\]"/);
  assertClean('/events', events);

  const http = base.replace(/^http:\/\//, '');
  const cliEnv = { ...process.env, WSHUB_TOKEN: ENV.HTTP_TOKEN };
  const json = spawnSync(process.execPath, [BIN, 'status', '--http', http, '--json'], { encoding: 'utf8', timeout: 10_000, env: cliEnv });
  assert.equal(json.status, 0, json.stderr);
  assert.equal((JSON.parse(json.stdout) as HubStats).upstreams[0]!.client.protocol, '[REDACTED]');
  assertClean('wshub status --json', json.stdout + json.stderr);
  const human = spawnSync(process.execPath, [BIN, 'status', '--http', http], { encoding: 'utf8', timeout: 10_000, env: cliEnv });
  assert.equal(human.status, 0, human.stderr);
  assert.match(human.stdout, /^feed +open /m);
  assertClean('wshub status', human.stdout + human.stderr);

  // The status page in a real browser: what it renders comes from /events, and the token rides in the fragment.
  const browser = await launchChromium();
  cleanups.push(() => browser.close());
  const page = await browser.newPage();
  await page.goto(`${base}/#token=${ENV.HTTP_TOKEN}`, { waitUntil: 'load', timeout: 15_000 });
  const card = page.locator('[data-upstream="feed"]');
  await card.and(page.locator('[data-state="open"]')).waitFor({ timeout: 10_000 });
  assert.match((await card.locator('[data-role="url"]').textContent()) ?? '', /\/ws\/\[REDACTED\]\?jwt=\[REDACTED\]/);
  const rendered = await page.content();
  assertClean('the status page', `${rendered}\n${page.url()}`);

  hub.kill('SIGTERM');
  await new Promise((resolve) => hub.once('exit', resolve));
  assert.ok(logs.some((l) => l.event === 'close' && /listenKey \[REDACTED\] expired/.test(String(l.reason))), 'the close is logged with its reason, redacted');
  assert.ok(logs.some((l) => l.event === 'open' && l.protocol === '[REDACTED]'));
  assertClean('the log', logText + stderr);
  t.diagnostic(`${logs.length} log lines, ${status.text.length} bytes of /status checked`);
});

test('an error message naming a ${VAR} value is redacted before it is printed', () => {
  const secretDir = join(dir, 'no-such-dir-f00dfeedbeef');
  const configFile = join(dir, 'bad.yaml');
  writeFileSync(configFile, stringify({ listen: '${SOCK_DIR}/hub.sock', upstreams: { feed: { url: 'ws://127.0.0.1:9/ws' } } }));
  const res = spawnSync(process.execPath, [BIN, 'serve', '-c', configFile], { encoding: 'utf8', timeout: 15_000, env: { ...process.env, SOCK_DIR: secretDir } });
  assert.notEqual(res.status, 0);
  assert.match(res.stderr, /ERR_LISTEN_FAILED/);
  assert.match(res.stderr, /\[REDACTED\]\/hub\.sock/);
  assert.ok(!res.stderr.includes(secretDir) && !res.stdout.includes(secretDir), `the secret path was printed: ${res.stderr}`);
});
