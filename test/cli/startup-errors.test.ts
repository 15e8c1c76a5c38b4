/**
 * A start-up that cannot succeed says why and what to do in one line on
 * stderr — `wshub: CODE: …` — before any log line, never with a stack trace,
 * and exits 1 (could not start) or 2 (usage or config). Every config problem
 * is reported at once.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../../../bin/wshub.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'wshub-start-'));
const servers: Server[] = [];
after(() => {
  for (const s of servers) s.close();
  rmSync(dir, { recursive: true, force: true });
});

interface Run { status: number | null; stdout: string; stderr: string; merged: string }

/** Run the CLI with stdout and stderr merged into one pipe (as a terminal shows them), and apart. */
function wshub(args: string[], env: Record<string, string> = {}): Run {
  // SIGKILL on timeout, and `exec`: a daemon that does not exit must not keep the pipe (and the test) open.
  const opts = { encoding: 'utf8' as const, timeout: 15_000, killSignal: 'SIGKILL' as const, env: { ...process.env, ...env } };
  const apart = spawnSync(process.execPath, [BIN, ...args], opts);
  const merged = spawnSync('/bin/sh', ['-c', 'exec "$0" "$@" 2>&1', process.execPath, BIN, ...args], opts);
  return { status: apart.status, stdout: apart.stdout, stderr: apart.stderr, merged: merged.stdout };
}

/** The one-line contract: stderr is exactly one `wshub: CODE: …` line, the first line of all output, no stack. */
function assertOneLine(r: Run, code: string): string {
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one line on stderr, got:\n${r.stderr}`);
  assert.match(lines[0]!, new RegExp(`^wshub: ${code}: `));
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  assert.equal(r.merged.split('\n')[0], lines[0], `the message comes before any log line:\n${r.merged}`);
  return lines[0]!;
}

async function busyPort(): Promise<number> {
  const server = createServer();
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

test('--listen in a directory that does not exist says so (not EACCES), exit 1', () => {
  const missing = join(dir, 'no-such-dir', 'hub.sock');
  const r = wshub(['serve', '--listen', missing, '-u', 'feed=ws://127.0.0.1:9/']);
  assert.equal(r.status, 1);
  const line = assertOneLine(r, 'ERR_LISTEN_FAILED');
  assert.match(line, new RegExp(`the directory ${join(dir, 'no-such-dir').replace(/[.]/g, '\\.')} does not exist \\(create it`));
});

test('an HTTP port in use: one line with ERR_LISTEN_ADDRESS_IN_USE naming it, before any log line; nothing dialed', async () => {
  const port = await busyPort();
  const r = wshub(['serve', '--tcp', '127.0.0.1:0', '--http', `127.0.0.1:${port}`, '-u', 'feed=ws://127.0.0.1:9/', '--log-level', 'info']);
  assert.equal(r.status, 1);
  const line = assertOneLine(r, 'ERR_LISTEN_ADDRESS_IN_USE');
  assert.match(line, new RegExp(`http 127\\.0\\.0\\.1:${port} is in use .*choose another --http`));
  assert.doesNotMatch(r.stdout, /"event":"connecting"/, 'the upstream was not dialed');
});

test('a worker TCP port in use: one line, the log line (if any) after it', async () => {
  const port = await busyPort();
  const r = wshub(['serve', '--tcp', `127.0.0.1:${port}`]);
  assert.equal(r.status, 1);
  assert.match(assertOneLine(r, 'ERR_LISTEN_ADDRESS_IN_USE'), new RegExp(`127\\.0\\.0\\.1:${port} is in use`));
});

test('a bad URL is echoed (secrets redacted)', () => {
  const r = wshub(['serve', '--tcp', '127.0.0.1:0', '-u', 'feed=https://feed.example/ws?token=s3cr3t']);
  assert.equal(r.status, 2);
  const line = assertOneLine(r, 'ERR_INVALID_OPTION');
  assert.match(line, /upstreams\.feed\.url: expected a ws:\/\/ or wss:\/\/ URL without a fragment, got "https:\/\/feed\.example\/ws\?token=\[REDACTED\]"/);
  assert.doesNotMatch(line, /s3cr3t/);
});

test('every invalid key and value of a config file is reported at once', () => {
  const file = join(dir, 'many.yaml');
  writeFileSync(file, [
    'listen: /tmp/x.sock',
    'http: nope',
    'logLevel: loud',
    'upstreams:',
    '  a:',
    '    url: 3',
    '    adapter: jsn',
    '    pingIntervalMs: -1',
    '  b:',
    '    url: ws://127.0.0.1:9/',
    '    pingIntervalMS: 3',
    '',
  ].join('\n'));
  const r = wshub(['serve', '-c', file]);
  assert.equal(r.status, 2);
  const line = assertOneLine(r, 'ERR_INVALID_OPTION');
  for (const expected of [
    /http: expected HOST:PORT, e\.g\. 127\.0\.0\.1:7070, got "nope"/,
    /logLevel: .*got "loud"/,
    /upstreams\.a\.adapter: .*got "jsn"/,
    /upstreams\.a\.url: .*got 3/,
    /upstreams\.a\.pingIntervalMs: .*got -1/,
    /upstreams\.b\.pingIntervalMS: unknown key \(did you mean "pingIntervalMs"\?\)/,
  ]) assert.match(line, expected);
});

test('a YAML error names the line and column, without a dangling colon; so does a JSON error', () => {
  let file = join(dir, 'broken.yaml');
  writeFileSync(file, 'listen: /tmp/x.sock\nupstreams:\n  a: [unclosed\n');
  let r = wshub(['serve', '-c', file]);
  assert.equal(r.status, 2);
  let line = assertOneLine(r, 'ERR_CONFIG_FILE');
  assert.match(line, new RegExp(`${file.replace(/[.]/g, '\\.')}:\\d+:\\d+: not valid YAML: \\S`));
  assert.doesNotMatch(line, /:$/);
  file = join(dir, 'broken.json');
  writeFileSync(file, '{\n  "listen": "/tmp/x.sock",\n  "tcp": ":0",\n}\n');
  r = wshub(['serve', '-c', file]);
  assert.equal(r.status, 2);
  line = assertOneLine(r, 'ERR_CONFIG_FILE');
  assert.match(line, new RegExp(`${file.replace(/[.]/g, '\\.')}:4:1: not valid JSON: Expected double-quoted property name$`));
});

test('a TCP listener on a non-loopback address without a token is refused unless allowRemoteWithoutToken', () => {
  let r = wshub(['serve', '--tcp', '0.0.0.0:0']);
  assert.equal(r.status, 2);
  assert.match(assertOneLine(r, 'ERR_INVALID_OPTION'), /tcp: 0\.0\.0\.0:0 is reachable from other machines and no token is set; set token .*allowRemoteWithoutToken: true/);
  // With the explicit consent (flag or key) or a token, the same config is valid (checked without starting).
  r = wshub(['check', '--tcp', '0.0.0.0:0', '--allow-remote-without-token']);
  assert.equal(r.status, 0, r.stderr);
  r = wshub(['check', '--tcp', '0.0.0.0:0', '--token', 'a-long-enough-token']);
  assert.equal(r.status, 0, r.stderr);
  r = wshub(['check', '--tcp', '127.0.0.2:0']);
  assert.equal(r.status, 0, r.stderr);
});

test('usage errors exit 2 like config errors; --help and --version exit 0', () => {
  let r = wshub(['serve', '--lisen', 'x']);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /unknown option '--lisen'/);
  r = wshub(['tail']);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /missing required argument 'target'/);
  r = wshub(['nosuch']);
  assert.equal(r.status, 2);
  r = wshub(['--help']);
  assert.equal(r.status, 0);
  r = wshub(['--version']);
  assert.equal(r.status, 0);
  assert.match(r.stdout.trim(), /^\d+\.\d+\.\d+/);
});

test('a config error never leaves a socket file behind', () => {
  const sock = join(dir, 'never.sock');
  const r = wshub(['serve', '--listen', sock, '-u', 'feed=ws://127.0.0.1:9/', '--log-level', 'loud']);
  assert.equal(r.status, 2);
  assert.equal(existsSync(sock), false);
});
