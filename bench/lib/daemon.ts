/**
 * Hub daemons for the bench: each a real `wshub serve -c <file>` process
 * started through its launcher, as a user starts it (the launcher relaunches
 * node with the daemon's flags; the hub's own pid, whose CPU is measured, is
 * read from its `/status`). Its one stats snapshot is read over its `http:`
 * listener.
 *
 * The launcher is this checkout's bin/wshub.js, or — {@link installPacked} —
 * the one in the package a user installs: `npm pack`, then `npm install` of
 * the tarball into an empty project.
 */
import { spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sleep, type ProcessGroup } from './procs.js';
import { freePort } from './relay-lab.js';

/** This checkout's launcher (bin/wshub.js), from dist/bench/lib/. */
export const WSHUB_BIN = fileURLToPath(new URL('../../../bin/wshub.js', import.meta.url));
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** One `wshub serve` process. */
export interface Daemon {
  name: string;
  /** The launcher. */
  proc: ChildProcess;
  /** The hub's own process (the launcher's child), from `/status`. */
  pid: number;
  socket: string;
  /** host:port of its status listener. */
  http: string;
  /** The last few KiB it printed (warnings, the reason it died). */
  output: () => string;
}

/**
 * Write `config` (plus `listen` and `http`, chosen here) to `<dir>/<name>.json`
 * and start `<bin> serve -c` on it; resolves once its status listener answers.
 */
export async function startDaemon(group: ProcessGroup, dir: string, name: string, config: Record<string, unknown>, bin = WSHUB_BIN): Promise<Daemon> {
  const socket = join(dir, `${name}.sock`);
  const http = `127.0.0.1:${await freePort()}`;
  const file = join(dir, `${name}.json`);
  writeFileSync(file, JSON.stringify({ listen: socket, http, ...config }, null, 2));
  const { proc, output } = group.spawn(process.execPath, [bin, 'serve', '-c', file]);
  const daemon: Daemon = { name, proc, pid: proc.pid!, socket, http, output };
  let pid = 0;
  await waitForDaemon<{ pid: number }>(daemon, (s) => (pid = s.pid) > 0, `${name} (wshub serve -c ${file}) to answer /status`);
  daemon.pid = pid;
  return daemon;
}

/** A daemon's `/status` (the hub's stats snapshot; docs/observe.md). */
export async function daemonStatus<T>(d: Daemon): Promise<T> {
  if (d.proc.exitCode !== null || d.proc.signalCode !== null) throw new Error(`${d.name} exited (${d.proc.exitCode ?? d.proc.signalCode}): ${d.output().slice(-1500)}`);
  const res = await fetch(`http://${d.http}/status`, { signal: AbortSignal.timeout(15_000) });
  if (!res.ok) throw new Error(`${d.name}: /status answered ${res.status}`);
  return (await res.json()) as T;
}

/** Poll `/status` until `check` passes; fail naming what was awaited and what the daemon printed. */
export async function waitForDaemon<T>(d: Daemon, check: (s: T) => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (d.proc.exitCode !== null || d.proc.signalCode !== null) throw new Error(`${d.name} exited (${d.proc.exitCode ?? d.proc.signalCode}) while waiting for ${what}: ${d.output().slice(-1500)}`);
    const s = await daemonStatus<T>(d).catch(() => undefined);
    if (s && check(s)) return;
    if (Date.now() > deadline) throw new Error(`waited ${timeoutMs} ms for ${what}; its output: ${d.output().slice(-1500) || '(none)'}`);
    await sleep(50);
  }
}

/**
 * Pack this checkout (`npm pack`, without rebuilding: the bench runs after
 * `npm run build`) and install the tarball into an empty project under
 * `dir`, as a user installs it (dependencies through the npm cache or the
 * registry). Returns the installed launcher. Fails saying what npm printed.
 */
export function installPacked(dir: string): string {
  const env = { ...process.env, npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false' };
  const npm = (args: string[], cwd: string): string => {
    const res = spawnSync('npm', args, { cwd, env, encoding: 'utf8', timeout: 180_000 });
    if (res.error || res.status !== 0) throw new Error(`npm ${args.join(' ')} failed (is the npm registry reachable?): ${res.error?.message ?? res.stderr.slice(-1500)}`);
    return res.stdout;
  };
  const packed = JSON.parse(npm(['pack', '--ignore-scripts', '--json', '--pack-destination', dir], ROOT)) as Array<{ filename: string }>;
  const project = join(dir, 'consumer');
  mkdirSync(project);
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true }));
  npm(['install', '--omit=dev', '--no-audit', '--no-fund', '--loglevel=error', join(dir, packed[0]!.filename)], project);
  return join(project, 'node_modules', 'wshub', 'bin', 'wshub.js');
}
