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
import { Hub, type ConnectionStats, type HubUpstreamStats } from '../../src/hub/hub.js';
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
      // A close that hangs is a bug: it fails the test instead of being cut short.
      try {
        await withDeadline(hub.close(), 15_000, 'hub.close()');
      } finally {
        hub.destroy();
        rmSync(dir, { recursive: true, force: true });
      }
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

/** One attached connection's figures, from the hub's public stats snapshot. */
export function connectionStats(hub: Hub, id: string): ConnectionStats | undefined {
  return hub.stats().connections.find((c) => c.id === id);
}

/** Messages the hub dropped for one connection, all reasons (0 once it is gone from the snapshot). */
export function droppedFor(hub: Hub, id: string, except: string[] = []): number {
  const dropped = connectionStats(hub, id)?.dropped ?? {};
  return Object.entries(dropped).filter(([r]) => !except.includes(r)).reduce((a, [, n]) => a + (n ?? 0), 0);
}

/** One upstream's figures from the hub's public stats snapshot; throws when it is not configured. */
export function upstreamOf(hub: Hub, name: string): HubUpstreamStats {
  const found = hub.stats().upstreams.find((u) => u.name === name);
  if (!found) throw new Error(`upstream ${name} is not in the hub's stats`);
  return found;
}

/** `promise`, or a rejection naming `what` after `ms`. */
export async function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** Run every cleanup step, newest first, even when one fails or hangs (20 s each); then fail with the first failure. */
export async function runCleanup(steps: Array<() => unknown>): Promise<void> {
  let first: Error | undefined;
  for (const [i, step] of steps.reverse().entries()) {
    try {
      await withDeadline(Promise.resolve(step()), 20_000, `cleanup step ${i}`);
    } catch (err) {
      first ??= err instanceof Error ? err : new Error(String(err));
    }
  }
  if (first) throw first;
}
