/**
 * `wshub serve` with a bad config: one line on stderr naming the problem, a
 * non-zero exit, and nothing started.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../../../bin/wshub.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'wshub-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function serve(configText: string | undefined, ext = 'yaml', extraArgs: string[] = [], env: Record<string, string> = {}): { status: number | null; stderr: string } {
  const file = join(dir, `c${Math.random().toString(36).slice(2)}.${ext}`);
  if (configText !== undefined) writeFileSync(file, configText);
  const res = spawnSync(process.execPath, [BIN, 'serve', '-c', file, ...extraArgs], { encoding: 'utf8', timeout: 15_000, env: { ...process.env, ...env } });
  return { status: res.status, stderr: res.stderr };
}

const good = (extra = '', upstreamExtra = ''): string => `listen: ${join(dir, 'h.sock')}\n${extra}upstreams:\n  feed:\n    url: ws://127.0.0.1:9/ws\n${upstreamExtra}`;

test('an unknown top-level key is named, with a hint', () => {
  const r = serve(good('listne: /tmp/x\n'));
  assert.equal(r.status, 2);
  assert.match(r.stderr.trim(), /^wshub: ERR_INVALID_OPTION: listne: unknown key \(did you mean "listen"\?\)$/);
});

test('an unknown key inside an upstream is named with its path', () => {
  const r = serve(good('', '    pingIntervalMS: 5\n'));
  assert.equal(r.status, 2);
  assert.match(r.stderr, /upstreams\.feed\.pingIntervalMS: unknown key \(did you mean "pingIntervalMs"\?\)/);
  assert.equal(r.stderr.trim().split('\n').length, 1);
});

test('a bad upstream URL is named', () => {
  const r = serve(good().replace('ws://127.0.0.1:9/ws', 'http://example.invalid/'));
  assert.equal(r.status, 2);
  assert.match(r.stderr, /^wshub: ERR_INVALID_OPTION: upstreams\.feed\.url: expected a ws:\/\/ or wss:\/\/ URL/);
});

test('a bad adapter value and a json adapter without its templates are named', () => {
  let r = serve(good('', '    adapter: jsn\n'));
  assert.equal(r.status, 2);
  assert.match(r.stderr, /upstreams\.feed\.adapter:/);
  r = serve(good('', '    adapter: json\n    topic: stream\n'));
  assert.equal(r.status, 2);
  assert.match(r.stderr, /upstreams\.feed\.subscribe: required by the json adapter/);
});

test('a missing file is named', () => {
  const r = serve(undefined);
  assert.equal(r.status, 2);
  assert.match(r.stderr.trim(), /^wshub: ERR_CONFIG_FILE: .*\.yaml: cannot read \(ENOENT\)$/);
});

test('invalid YAML and invalid JSON are named with the file', () => {
  let r = serve('listen: [unclosed\n');
  assert.equal(r.status, 2);
  assert.match(r.stderr, /ERR_CONFIG_FILE: .*\.yaml:\d+:\d+: not valid YAML/);
  r = serve('{"listen": ', 'json');
  assert.equal(r.status, 2);
  assert.match(r.stderr, /ERR_CONFIG_FILE: .*\.json:\d+:\d+: not valid JSON/);
});

test('a secret from an unset environment variable is named with its key', () => {
  const r = serve(good('', '    headers: { Authorization: "Bearer ${FEED_TOKEN_UNSET_FOR_TEST}" }\n'));
  assert.equal(r.status, 2);
  assert.match(r.stderr, /ERR_CONFIG_FILE: upstreams\.feed\.headers\.Authorization: environment variable FEED_TOKEN_UNSET_FOR_TEST is not set/);
});

test('--upstream without NAME=URL is refused', () => {
  const res = spawnSync(process.execPath, [BIN, 'serve', '--listen', join(dir, 'x.sock'), '--upstream', 'nourl'], { encoding: 'utf8', timeout: 15_000 });
  assert.equal(res.status, 2);
  assert.match(res.stderr, /--upstream: expected NAME=URL, got "nourl"/);
});

test('readyWhen in the config file is checked like --ready-when: an unknown upstream is refused', () => {
  const r = serve(good('http: 127.0.0.1:0\nreadyWhen: feed,nosuch\n'));
  assert.equal(r.status, 2);
  assert.match(r.stderr, /ERR_INVALID_OPTION: .*unknown upstream "nosuch"; configured: feed/);
});
