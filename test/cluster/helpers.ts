/**
 * Helpers of the cluster tests: a real nats-server (Debian's, found on PATH
 * or through NATS_SERVER) with JetStream in a temp directory on a free
 * loopback port, restartable on the same port and store.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import type { EventEmitter } from 'node:events';
import { waitFor as waitForEvent } from '../upstream/helpers.js';

/** The nats-server binary: $NATS_SERVER, else `nats-server` on PATH. Throws naming what is missing. */
export function natsServerBinary(): string {
  const fromEnv = process.env.NATS_SERVER;
  if (fromEnv) return fromEnv;
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const candidate = join(dir, 'nats-server');
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this directory
    }
  }
  throw new Error('nats-server is missing: install Debian\'s nats-server (apt-get install nats-server) or set NATS_SERVER');
}

/** A free TCP port on 127.0.0.1 (nats-server cannot report one it picked). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

export interface NatsServerOptions {
  /** The address to listen on. @default '127.0.0.1' */
  host?: string;
  /** Start without -js (to test the refusal). */
  noJetStream?: boolean;
  /** Extra command-line arguments. */
  args?: string[];
  /** A config file's text (written into the temp dir, passed with -c). */
  config?: string;
}

/** Servers running; killed synchronously should the test process exit without its cleanup (nothing async runs at 'exit'). */
const liveServers = new Set<ChildProcess>();
process.once('exit', () => {
  for (const proc of liveServers) proc.kill('SIGKILL');
});

/** One nats-server child, killed by `stop()`; `restart()` reuses its port and store. */
export class NatsServer {
  readonly dir: string;
  port = 0;
  #proc: ChildProcess | undefined;
  #output = '';
  readonly #options: NatsServerOptions;

  constructor(options: NatsServerOptions = {}) {
    this.#options = options;
    this.dir = mkdtempSync(join(tmpdir(), 'wshub-nats-'));
  }

  get url(): string {
    return `nats://${this.#options.host ?? '127.0.0.1'}:${this.port}`;
  }

  get pid(): number | undefined {
    return this.#proc?.pid;
  }

  async start(): Promise<this> {
    const binary = natsServerBinary();
    if (this.port === 0) this.port = await freePort();
    const args = ['-a', this.#options.host ?? '127.0.0.1', '-p', String(this.port), ...(this.#options.args ?? [])];
    if (!this.#options.noJetStream) args.push('-js', '-sd', join(this.dir, 'store'));
    if (this.#options.config !== undefined) {
      const file = join(this.dir, 'server.conf');
      writeFileSync(file, this.#options.config);
      args.push('-c', file);
    }
    this.#output = '';
    const proc = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.#proc = proc;
    liveServers.add(proc);
    proc.once('exit', () => liveServers.delete(proc));
    proc.stdout.setEncoding('utf8').on('data', (chunk: string) => { this.#output += chunk; });
    proc.stderr.setEncoding('utf8').on('data', (chunk: string) => { this.#output += chunk; });
    const deadline = Date.now() + 10_000;
    while (!/Server is ready/.test(this.#output)) {
      if (proc.exitCode !== null || Date.now() > deadline) {
        proc.kill('SIGKILL');
        throw new Error(`nats-server did not start (exit ${proc.exitCode}): ${this.#output.slice(-2000)}`);
      }
      await delay(20);
    }
    return this;
  }

  /** Send `signal` and wait for the exit. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const proc = this.#proc;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    proc.kill(signal);
    await exited;
  }

  /** Stop (with `signal`) and start again on the same port with the same store. */
  async restart(signal: NodeJS.Signals = 'SIGTERM', downMs = 0): Promise<void> {
    await this.stop(signal);
    if (downMs > 0) await delay(downMs);
    await this.start();
  }

  /** Kill the server and remove its store. */
  async dispose(): Promise<void> {
    await this.stop('SIGKILL');
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** test/upstream/helpers.ts's `waitFor`, with a longer default wait (NATS round trips on a busy machine). */
export function waitFor<T extends unknown[]>(
  emitter: EventEmitter, event: string, filter: (...args: T) => boolean = () => true, timeoutMs = 10_000,
): Promise<T> {
  return waitForEvent<T>(emitter, event, filter, timeoutMs);
}

/** Poll `check` until it is true; reject after `timeoutMs` with `what`. */
export async function until(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await delay(10);
  }
}
