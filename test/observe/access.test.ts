/**
 * The HTTP side answers only to its own names, and only with the token when
 * one is set: DNS-rebinding style requests (`Host: evil.example`) are refused
 * 421 ERR_HOST_REFUSED on every path; /status, /events and /metrics need the
 * bearer token (the page's EventSource may send `?token=` on /events only);
 * /healthz and the page's static files stay open. `wshub status` sends the
 * token from --token or WSHUB_TOKEN and names the refusal when it has none.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { request } from 'node:http';
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import { HubHttpServer } from '../../src/observe/http.js';
import { startTestHub, type TestHub } from '../hub/helpers.js';

const BIN = fileURLToPath(new URL('../../../bin/wshub.js', import.meta.url));
const TOKEN = 'status-token-0123456789';

const cleanups: Array<() => unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

interface Answer {
  status: number;
  code: string | undefined;
  body: string;
  headers: Record<string, string | string[] | undefined>;
}

/** One request with exactly the Host (and other headers) given; reads at most a little of a stream. */
function ask(port: number, path: string, headers: Record<string, string>, method = 'GET'): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, headers, setHost: false, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
        if (res.headers['content-type']?.startsWith('text/event-stream')) req.destroy();
      });
      const done = (): void => resolve({ status: res.statusCode ?? 0, code: res.headers['x-wshub-error'] as string | undefined, body, headers: res.headers });
      res.on('end', done);
      res.on('close', done);
    });
    req.on('error', reject);
    req.end();
  });
}

async function hubWith(options: ConstructorParameters<typeof HubHttpServer>[1], host = '127.0.0.1'): Promise<{ hub: TestHub; port: number }> {
  const hub = await startTestHub({});
  cleanups.push(() => hub.close());
  const http = new HubHttpServer(hub.hub, options);
  const { port } = await http.listen(host, 0);
  cleanups.push(() => http.close());
  return { hub, port };
}

test('a request naming another host is refused 421 on every path; the bound address, localhost and configured names are served', async () => {
  const { port } = await hubWith({ allowedHosts: ['hub.example.internal'] });
  for (const path of ['/status', '/events', '/metrics', '/healthz', '/', '/app.js']) {
    for (const host of [`evil.example:${port}`, 'evil.example', `127.0.0.1.evil.example:${port}`, `localhost.evil.example:${port}`, `[::1]:${port}`]) {
      const a = await ask(port, path, { host });
      assert.equal(a.status, 421, `${path} with Host ${host}`);
      assert.equal(a.code, 'ERR_HOST_REFUSED');
      assert.equal((JSON.parse(a.body) as { error: string }).error, 'ERR_HOST_REFUSED');
    }
  }
  for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, 'LOCALHOST', 'hub.example.internal', `hub.example.internal:${port}`]) {
    const a = await ask(port, '/status', { host });
    assert.equal(a.status, 200, `Host ${host}`);
  }
  // HTTP/1.0 without a Host header at all.
  const raw = await new Promise<string>((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.end('GET /status HTTP/1.0\r\n\r\n'));
    let text = '';
    socket.on('data', (d: Buffer) => (text += d.toString()));
    socket.on('end', () => resolve(text));
    socket.on('error', reject);
  });
  assert.match(raw, /^HTTP\/1\.1 421 /);
  assert.match(raw, /x-wshub-error: ERR_HOST_REFUSED/i);
});

test('bound to a wildcard address: IP literals and localhost are served, names are not', async () => {
  const { port } = await hubWith({}, '0.0.0.0');
  assert.equal((await ask(port, '/healthz', { host: `127.0.0.1:${port}` })).status, 200);
  assert.equal((await ask(port, '/healthz', { host: `192.0.2.7:${port}` })).status, 200);
  assert.equal((await ask(port, '/healthz', { host: `localhost:${port}` })).status, 200);
  assert.equal((await ask(port, '/healthz', { host: `evil.example:${port}` })).status, 421);
});

test('with a token: /status, /events and /metrics need it; /healthz and the page files do not; ?token= only on /events', async () => {
  const { port } = await hubWith({ token: TOKEN });
  const host = `127.0.0.1:${port}`;
  for (const path of ['/status', '/events', '/metrics']) {
    const none = await ask(port, path, { host });
    assert.equal(none.status, 401, `${path} without the token`);
    assert.equal(none.code, 'ERR_UNAUTHORIZED');
    assert.equal(none.headers['www-authenticate'], 'Bearer realm="wshub"');
    assert.ok(!none.body.includes('"upstreams"'));
    assert.equal((await ask(port, path, { host, authorization: 'Bearer wrong-token' })).status, 401, `${path} with a wrong token`);
    assert.equal((await ask(port, path, { host, authorization: `Bearer ${TOKEN}` })).status, 200, `${path} with the token`);
  }
  assert.equal((await ask(port, `/events?token=${TOKEN}`, { host })).status, 200, 'the page\'s EventSource');
  assert.equal((await ask(port, `/status?token=${TOKEN}`, { host })).status, 401, 'a query token is for /events only');
  for (const path of ['/healthz', '/', '/index.html', '/app.js', '/style.css', '/vendor/uplot.js']) {
    assert.equal((await ask(port, path, { host })).status, 200, `${path} stays open`);
  }
  // The Host check comes first: a rebinding page never learns whether a token is set.
  assert.equal((await ask(port, '/status', { host: 'evil.example', authorization: `Bearer ${TOKEN}` })).status, 421);
});

function cli(args: string[], env: Record<string, string> = {}): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const { WSHUB_TOKEN: _drop, ...base } = process.env;
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...base, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

test('wshub status sends the token from --token or WSHUB_TOKEN, and names the refusal without it', async () => {
  const { port } = await hubWith({ token: TOKEN });
  const http = `127.0.0.1:${port}`;
  const without = await cli(['status', '--http', http, '--json']);
  assert.equal(without.status, 1);
  assert.match(without.stderr, /^wshub: ERR_UNAUTHORIZED: .*answered 401: the hub requires its httpToken: pass --token or set WSHUB_TOKEN/);
  const flag = await cli(['status', '--http', http, '--json', '--token', TOKEN]);
  assert.equal(flag.status, 0, flag.stderr);
  assert.ok(Array.isArray((JSON.parse(flag.stdout) as { upstreams: unknown }).upstreams));
  const env = await cli(['status', '--http', http], { WSHUB_TOKEN: TOKEN });
  assert.equal(env.status, 0, env.stderr);
  assert.match(env.stdout, /^hub pid \d+/);
  const wrong = await cli(['status', '--http', http, '--token', 'nope']);
  assert.match(wrong.stderr, /ERR_UNAUTHORIZED: .*the token was refused/);
  const byName = await cli(['status', '--http', `http://localhost:${port}`, '--token', TOKEN]);
  assert.equal(byName.status, 0, byName.stderr);
});
