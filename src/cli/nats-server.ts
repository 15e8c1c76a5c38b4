/**
 * A local nats-server for `wshub demo --cluster` (and the cluster bench):
 * found on PATH or through `$NATS_SERVER`, started with JetStream and its
 * store in a directory the caller owns, on a port the server picks itself
 * (`-p -1`, read back from its log: no window in which another process could
 * take a port we probed).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { WshubError } from '../errors.js';

/** What to tell a user who has no nats-server. */
export const INSTALL_NATS_SERVER = 'install nats-server (e.g. apt-get install nats-server) or set NATS_SERVER to its path';

function executable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The nats-server binary: `$NATS_SERVER` when set and executable, else `nats-server` on PATH; undefined when there is none. */
export function findNatsServer(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.NATS_SERVER) return executable(env.NATS_SERVER) ? env.NATS_SERVER : undefined;
  return (env.PATH ?? '').split(delimiter).filter(Boolean).map((dir) => join(dir, 'nats-server')).find(executable);
}

/** Command-line arguments: loopback, a port of the server's choosing, JetStream with its store under `dir`. */
export function natsServerArgs(dir: string): string[] {
  return ['-a', '127.0.0.1', '-p', '-1', '-js', '-sd', dir];
}

/** The client URL once the server's log says it is ready (`Listening for client connections on …` then `Server is ready`); else undefined. */
export function natsReadyUrl(output: string): string | undefined {
  if (!/Server is ready/.test(output)) return undefined;
  const m = /Listening for client connections on (\S+):(\d+)/.exec(output);
  return m ? `nats://127.0.0.1:${m[2]}` : undefined;
}

/** A running nats-server child. */
export interface NatsServerProcess {
  proc: ChildProcess;
  url: string;
  /** Its log so far (the last few KiB). */
  output(): string;
  /** SIGTERM, and wait for the exit (SIGKILL after `graceMs`). */
  stop(graceMs?: number): Promise<void>;
}

/**
 * Start nats-server with JetStream, its store in `dir`; resolves once it
 * accepts clients. Fails with `ERR_NATS_SERVER_MISSING` naming `purpose` when
 * there is no binary, and with the server's own last lines when it exits or
 * is not ready within `timeoutMs`.
 */
export async function startNatsServer(dir: string, options: { purpose: string; env?: NodeJS.ProcessEnv; timeoutMs?: number }): Promise<NatsServerProcess> {
  const { purpose, env = process.env, timeoutMs = 10_000 } = options;
  const binary = findNatsServer(env);
  if (!binary) {
    const where = env.NATS_SERVER ? `NATS_SERVER=${env.NATS_SERVER} is not an executable file` : 'none on PATH';
    throw new WshubError('ERR_NATS_SERVER_MISSING', `${purpose} needs nats-server (${where}): ${INSTALL_NATS_SERVER}`);
  }
  const proc = spawn(binary, natsServerArgs(dir), { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const keep = (chunk: Buffer): void => {
    out = (out + chunk.toString()).slice(-8000);
  };
  proc.stdout.on('data', keep);
  proc.stderr.on('data', keep);
  let spawnError: Error | undefined;
  proc.once('error', (err) => (spawnError = err));
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const stop = async (graceMs = 3000): Promise<void> => {
    if (proc.exitCode !== null || proc.signalCode !== null || proc.pid === undefined) return;
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  };
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const url = natsReadyUrl(out);
    if (url) return { proc, url, output: () => out, stop };
    if (spawnError || proc.exitCode !== null || Date.now() > deadline) {
      await stop(0);
      const why = spawnError?.message ?? (proc.exitCode !== null ? `exited with ${proc.exitCode}` : `not ready after ${timeoutMs} ms`);
      throw new WshubError('ERR_NATS_CONNECT', `nats-server (${binary}) did not start: ${why}: ${out.trim().split('\n').slice(-3).join(' | ')}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}
