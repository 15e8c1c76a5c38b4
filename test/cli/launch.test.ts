/**
 * The launcher's relaunch (src/cli/launch.ts): `wshub serve` started without
 * the daemon's node flags runs the hub in a child node that has them; signals
 * and exit codes pass through (SIGUSR1 opens the inspector in the hub);
 * killing the launcher kills the hub; started
 * with the flags, the hub runs in the launcher's own process.
 * (daemon.test.ts drives SIGHUP reload and SIGTERM drain through the same
 * relaunch.)
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { DAEMON_NODE_FLAGS } from '../../src/cli/launch.js';
import { eventually } from '../hub/helpers.js';
import { BIN, wshub } from './run.js';

const dir = mkdtempSync(join(tmpdir(), 'wshub-launch-'));
const children: ChildProcess[] = [];
const strays: number[] = [];
after(() => {
  for (const c of children) c.kill('SIGKILL');
  for (const pid of strays) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  rmSync(dir, { recursive: true, force: true });
});

interface Started {
  launcher: ChildProcess;
  logs: Array<Record<string, unknown>>;
  /** The pid in the hub's own log lines: the process that runs the hub. */
  hubPid: number;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** `node [nodeFlags] bin/wshub.js serve` on a socket of its own; resolves once the hub logged its start. */
async function serve(name: string, nodeFlags: readonly string[] = []): Promise<Started> {
  // Port 1 refuses: the hub starts and keeps retrying its upstream, which is all these tests need.
  const launcher = spawn(process.execPath, [...nodeFlags, BIN, 'serve', '--upstream', 'feed=ws://127.0.0.1:1/', '--listen', join(dir, `${name}.sock`), '--log-level', 'info'], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(launcher);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => launcher.once('exit', (code, signal) => resolve({ code, signal })));
  const logs: Array<Record<string, unknown>> = [];
  createInterface({ input: launcher.stdout }).on('line', (line) => logs.push(JSON.parse(line) as Record<string, unknown>));
  const started = await eventually(() => logs.find((l) => l.msg === 'hub started'), `${name}: "hub started" in the log`);
  const hubPid = Number(started.pid);
  if (hubPid !== launcher.pid) strays.push(hubPid);
  return { launcher, logs, hubPid, exited };
}

const cmdline = (pid: number): string[] => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
const childrenOf = (pid: number): number[] => readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
/** Gone, or a zombie waiting for init to reap it. */
const dead = (pid: number): boolean => !existsSync(`/proc/${pid}`) || /^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));

test('serve without the daemon flags: the hub runs in a child node that has them; SIGTERM to the launcher drains it, exit 0', async () => {
  const s = await serve('relaunched');
  assert.notEqual(s.hubPid, s.launcher.pid, 'the hub runs in another process than the launcher');
  assert.deepEqual(childrenOf(s.launcher.pid!), [s.hubPid], 'the hub process is the launcher\'s only child');
  const argv = cmdline(s.hubPid);
  for (const flag of DAEMON_NODE_FLAGS) assert.ok(argv.includes(flag), `${flag} on the hub's command line: ${argv.join(' ')}`);
  assert.ok(argv.indexOf(DAEMON_NODE_FLAGS[0]!) < argv.indexOf('serve'), 'the flags go to node, not to wshub');

  s.launcher.kill('SIGTERM');
  assert.deepEqual(await s.exited, { code: 0, signal: null });
  assert.ok(s.logs.some((l) => l.msg === 'drained, exiting' && l.pid === s.hubPid), 'the hub itself drained (the signal was forwarded)');
  await eventually(() => dead(s.hubPid), 'the hub process gone');
});

/** TCP ports `pid` listens on (its socket fds matched against /proc/net/tcp{,6} listeners). */
function listeningPorts(pid: number): number[] {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]!);
    } catch {
      // closed meanwhile
    }
  }
  const ports: number[] = [];
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    if (!existsSync(table)) continue;
    for (const line of readFileSync(table, 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      // local_address is f[1] (hex ip:port), st is f[3] (0A: listening), inode is f[9].
      if (f[3] === '0A' && inodes.has(f[9]!)) ports.push(parseInt(f[1]!.split(':')[1]!, 16));
    }
  }
  return ports.sort((a, b) => a - b);
}

test('SIGUSR1 to the launcher opens the inspector in the hub, not in the launcher', async () => {
  // Port 0: the inspector takes a free port; the flag reaches the hub through the launcher's execArgv.
  const s = await serve('inspect', ['--inspect-port=0']);
  assert.notEqual(s.hubPid, s.launcher.pid);
  const hubBefore = listeningPorts(s.hubPid);
  const launcherBefore = listeningPorts(s.launcher.pid!);
  s.launcher.kill('SIGUSR1');
  const opened = await eventually(() => {
    const now = listeningPorts(s.hubPid).filter((p) => !hubBefore.includes(p));
    return now.length > 0 ? now : undefined;
  }, 'a new listening port (the inspector) in the hub process', 5_000);
  assert.equal(opened.length, 1, `one inspector port: ${opened.join(', ')}`);
  assert.deepEqual(listeningPorts(s.launcher.pid!), launcherBefore, 'the launcher opened no inspector of its own');
  const list = (await (await fetch(`http://127.0.0.1:${opened[0]}/json/list`)).json()) as Array<{ type: string }>;
  assert.ok(list.some((t) => t.type === 'node'), `the port answers as a node inspector: ${JSON.stringify(list)}`);
  s.launcher.kill('SIGTERM');
  assert.deepEqual(await s.exited, { code: 0, signal: null });
});

test('the launcher killed with SIGKILL takes the hub with it', async () => {
  const s = await serve('killed');
  s.launcher.kill('SIGKILL');
  assert.deepEqual(await s.exited, { code: null, signal: 'SIGKILL' });
  await eventually(() => dead(s.hubPid), `the hub (pid ${s.hubPid}) gone after its launcher was killed`, 5_000);
});

test('node started with the daemon flags runs the hub in the launcher itself', async () => {
  const s = await serve('direct', DAEMON_NODE_FLAGS);
  assert.equal(s.hubPid, s.launcher.pid);
  assert.deepEqual(childrenOf(s.launcher.pid!), []);
  s.launcher.kill('SIGINT');
  assert.deepEqual(await s.exited, { code: 0, signal: null });
});

test('exit codes and messages pass through the relaunch unchanged; WSHUB_NODE_FLAGS=off runs serve in place', async () => {
  const args = ['serve', '-c', join(dir, 'missing.yaml')];
  const relaunched = await wshub(args);
  const inPlace = await wshub(args, { env: { WSHUB_NODE_FLAGS: 'off' } });
  assert.notEqual(relaunched.status, 0);
  assert.equal(relaunched.status, inPlace.status);
  assert.match(relaunched.stderr, /ERR_CONFIG_FILE/);
  assert.equal(relaunched.stderr, inPlace.stderr);
});
