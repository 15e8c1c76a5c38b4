/**
 * `wshub demo` says what it runs: the workers it started (none with
 * `--workers 0`), and only attach commands that work on this machine — the
 * repo's own bin by a path that exists, websocat/wscat only when on PATH.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { eventually, sleep } from '../hub/helpers.js';
import { BIN } from './run.js';

const dir = mkdtempSync(join(tmpdir(), 'wshub-demo-'));
const children: ChildProcess[] = [];
after(() => {
  for (const c of children) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

/** Start the demo with `PATH=path`; resolve with everything it printed once it is up (and a little after). */
async function demo(workers: number, path: string): Promise<string> {
  const args = [BIN, 'demo', '--workers', String(workers), '--listen', join(dir, `demo-${workers}.sock`), '--tcp', '127.0.0.1:0', '--http', '127.0.0.1:0'];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PATH: path } });
  children.push(child);
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  await eventually(() => out.includes('Ctrl-C stops everything.'), 'the demo banner', 15_000);
  // Workers it started print within a second or two; give them the time to (not) appear.
  await eventually(() => workers === 0 || /\[worker-1\]/.test(out), 'worker output', 15_000).catch(() => undefined);
  await sleep(1500);
  child.kill('SIGTERM');
  const [code] = (await once(child, 'exit')) as [number | null];
  assert.equal(code, 0, out);
  return out;
}

test('--workers 0: says no workers were started, none print, and no tool that is not on PATH is suggested', async () => {
  const empty = join(dir, 'empty-path');
  mkdirSync(empty);
  const out = await demo(0, empty);
  assert.match(out, /No example workers started \(--workers 0\)/);
  assert.doesNotMatch(out, /Two plain ws workers|two plain ws workers|HubClient worker/);
  assert.doesNotMatch(out, /^\[(worker-\d|hubclient)\]/m, 'no worker runs');
  assert.doesNotMatch(out, /websocat|wscat/, 'neither websocat nor wscat is on this PATH');
  const bin = /^ {2}node (\S+) tail ws\+unix:/m.exec(out);
  assert.ok(bin, `a tail command is suggested:\n${out}`);
  assert.ok(existsSync(resolve(process.cwd(), bin[1]!)), `${bin[1]} exists from the current directory`);
});

test('--workers 2 says two transparent workers; websocat is suggested once it is on PATH', async () => {
  const tools = join(dir, 'tools');
  mkdirSync(tools);
  writeFileSync(join(tools, 'websocat'), '#!/bin/sh\nexit 0\n');
  chmodSync(join(tools, 'websocat'), 0o755);
  const out = await demo(2, tools);
  assert.match(out, /Started two plain ws workers \(transparent mode\);/);
  assert.doesNotMatch(out, /HubClient worker/);
  assert.match(out, /^\[worker-2\]/m, 'the second worker runs');
  assert.doesNotMatch(out, /^\[hubclient\]/m, 'the third does not');
  assert.match(out, /^ {2}websocat ws:\/\/127\.0\.0\.1:\d+\/u\/feed/m);
  assert.doesNotMatch(out, /wscat/);
});

test('SIGTERM the moment the banner is out: the demo still stops cleanly (signals are wired before it prints)', async () => {
  // Five rounds: the window this guards (banner written, workers being forked, handlers not yet installed) is a few
  // milliseconds wide, so one round alone would rarely land in it.
  for (let round = 0; round < 5; round++) {
    const args = [BIN, 'demo', '--workers', '3', '--listen', join(dir, `demo-term-${round}.sock`), '--tcp', '127.0.0.1:0', '--http', '127.0.0.1:0'];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let out = '';
    let sent = false;
    const onData = (d: Buffer): void => {
      out += d.toString();
      if (!sent && out.includes('Ctrl-C stops everything.')) {
        sent = true;
        child.kill('SIGTERM');
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
    assert.ok(sent, `the banner appeared:\n${out}`);
    assert.equal(signal, null, `round ${round}: killed by ${signal} instead of stopping:\n${out}`);
    assert.equal(code, 0, out);
  }
});
