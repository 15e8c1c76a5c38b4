/**
 * Helpers for hub tests: a hub on a temp-dir Unix socket, worker processes
 * driven over IPC, and polling with a deadline.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { resolveConfig } from '../../src/hub/config.js';
import { Hub } from '../../src/hub/hub.js';
import { silentLogger } from '../../src/observe/log.js';

export interface TestHub {
  hub: Hub;
  socketPath: string;
  dir: string;
  url(upstream: string, query?: string): string;
  close(): Promise<void>;
}

/** A hub listening on a Unix socket in a fresh temp dir. `upstreams` as in the config file. */
export async function startTestHub(upstreams: Record<string, Record<string, unknown>>, extra: Record<string, unknown> = {}): Promise<TestHub> {
  const dir = mkdtempSync(join(tmpdir(), 'wshub-hub-'));
  const socketPath = join(dir, 'hub.sock');
  const config = resolveConfig({ listen: socketPath, logLevel: 'silent', upstreams, ...extra });
  const hub = new Hub({ config, logger: silentLogger });
  await hub.start();
  return {
    hub,
    socketPath,
    dir,
    url: (upstream, query) => `ws+unix://${socketPath}:/u/${upstream}${query ? `?${query}` : ''}`,
    close: async () => {
      await Promise.race([hub.close(), sleep(2000)]);
      hub.destroy();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const WORKER = fileURLToPath(new URL('./fixtures/worker.js', import.meta.url));

export interface WorkerReport {
  ev: 'report';
  messages: number;
  textMessages: number;
  binaryMessages: number;
  byTopic: Record<string, number>;
  seqs: Record<string, number[]>;
  responses: Array<Record<string, unknown>>;
  digest: string;
  bodies: Array<{ binary: boolean; hex: string }>;
}

type WorkerEvent = { ev: string; [k: string]: unknown };

/** A forked worker process attached to the hub (plain ws client). */
export class Worker {
  readonly child: ChildProcess;
  readonly events: WorkerEvent[] = [];
  #waiters: Array<{ match: (e: WorkerEvent) => boolean; resolve: (e: WorkerEvent) => void }> = [];

  constructor(url: string, options: { protocol?: string; env?: Record<string, string> } = {}) {
    this.child = fork(WORKER, [url, ...(options.protocol ? [options.protocol] : [])], {
      env: { ...process.env, ...options.env },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.child.on('message', (m: WorkerEvent) => {
      this.events.push(m);
      this.#waiters = this.#waiters.filter((w) => {
        if (!w.match(m)) return true;
        w.resolve(m);
        return false;
      });
    });
  }

  /** Wait for an event (already seen ones count). */
  waitFor(ev: string, timeoutMs = 10_000, match: (e: WorkerEvent) => boolean = () => true): Promise<WorkerEvent> {
    const seen = this.events.find((e) => e.ev === ev && match(e));
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`worker ${this.child.pid}: no "${ev}" within ${timeoutMs} ms; saw ${JSON.stringify(this.events.slice(-5))}`)), timeoutMs);
      this.#waiters.push({
        match: (e) => e.ev === ev && match(e),
        resolve: (e) => {
          clearTimeout(timer);
          resolve(e);
        },
      });
    });
  }

  opened(): Promise<WorkerEvent> {
    return this.waitFor('open');
  }

  send(data: string | Buffer): void {
    const binary = Buffer.isBuffer(data);
    this.child.send({ cmd: 'send', data: binary ? data.toString('hex') : data, binary });
  }

  command(cmd: 'pause' | 'resume' | 'close'): void {
    this.child.send({ cmd });
  }

  async report(): Promise<WorkerReport> {
    const n = this.events.length;
    this.child.send({ cmd: 'report' });
    const deadline = Date.now() + 10_000;
    for (;;) {
      const found = this.events.slice(n).find((e) => e.ev === 'report');
      if (found) return found as unknown as WorkerReport;
      if (Date.now() > deadline) throw new Error('worker did not report');
      await sleep(10);
    }
  }

  kill(signal: NodeJS.Signals = 'SIGTERM'): void {
    if (this.child.exitCode === null) this.child.kill(signal);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Poll `check` until it returns a truthy value; fail with `what` after `timeoutMs`. */
export async function eventually<T>(check: () => T | Promise<T>, what: string, timeoutMs = 10_000, everyMs = 20): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
      last = v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
    await sleep(everyMs);
  }
}

/** A loopback TCP port that was free a moment ago (for servers a test starts later on a known port). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}
