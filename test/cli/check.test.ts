/**
 * `wshub check -c FILE`: validates what `wshub serve` would run, `${VAR}`
 * references included, without binding or dialing anything; exit 0 when
 * valid, 2 with every problem on one line when not.
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DemoFeed } from '../../src/demo/feed.js';

const BIN = fileURLToPath(new URL('../../../bin/wshub.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'wshub-check-'));
let feed: DemoFeed;
before(async () => {
  feed = new DemoFeed();
  await feed.ready();
});
after(async () => {
  await feed.close();
  rmSync(dir, { recursive: true, force: true });
});

function check(text: string, env: Record<string, string | undefined> = {}): { status: number | null; stdout: string; stderr: string } {
  const file = join(dir, `c${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(file, text);
  const res = spawnSync(process.execPath, [BIN, 'check', '-c', file], { encoding: 'utf8', timeout: 15_000, env: { ...process.env, ...env } });
  return { status: res.status, stdout: res.stdout, stderr: res.stderr };
}

const socket = join(dir, 'hub.sock');
const config = (extra = ''): string =>
  `listen: ${socket}\nhttp: 127.0.0.1:0\nupstreams:\n  feed:\n    url: ${feed.url}\n    headers: { Authorization: "Bearer \${CHECK_TEST_TOKEN}" }\n${extra}`;

test('a valid config: exit 0, a one-line summary, nothing bound, nothing dialed', () => {
  const r = check(config(), { CHECK_TEST_TOKEN: 'x' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout.trim(), new RegExp(`\\.yaml: valid; listen ${socket.replace(/[.]/g, '\\.')}, http 127\\.0\\.0\\.1:0; upstreams: feed \\(raw\\)$`));
  assert.equal(r.stderr, '');
  assert.equal(existsSync(socket), false, 'no socket file was created');
  assert.equal(feed.connections, 0, 'the upstream was not dialed');
});

test('an unset ${VAR} is reported with its key; exit 2', () => {
  const r = check(config(), { CHECK_TEST_TOKEN: undefined });
  assert.equal(r.status, 2);
  assert.match(r.stderr.trim(), /^wshub: ERR_CONFIG_FILE: upstreams\.feed\.headers\.Authorization: environment variable CHECK_TEST_TOKEN is not set$/);
});

test('every problem at once; exit 2', () => {
  const r = check(config('    adapter: json\n    pingIntervalMs: soon\n'), { CHECK_TEST_TOKEN: 'x' });
  assert.equal(r.status, 2);
  const line = r.stderr.trim();
  assert.equal(line.split('\n').length, 1);
  assert.match(line, /upstreams\.feed\.pingIntervalMs: .*got "soon"/);
  assert.match(line, /upstreams\.feed\.topic: required by the json adapter/);
  assert.match(line, /upstreams\.feed\.subscribe: required by the json adapter/);
});

test('a readyWhen naming an unknown upstream, and a socket directory that does not exist: exit 2', () => {
  let r = check(`${config()}readyWhen: feed,nosuch\n`, { CHECK_TEST_TOKEN: 'x' });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /unknown upstream "nosuch"/);
  r = check(config().replace(socket, join(dir, 'missing', 'hub.sock')), { CHECK_TEST_TOKEN: 'x' });
  assert.equal(r.status, 2);
  assert.match(r.stderr.trim(), /^wshub: ERR_LISTEN_FAILED: .*the directory .*missing does not exist/);
});
