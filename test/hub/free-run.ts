/**
 * A free-running upstream (fixtures/free-source.ts) in its own process, and
 * the check a worker would make on what it got: every message, in order.
 * Shared by the relay tests and the cluster pacing test.
 */
import assert from 'node:assert/strict';
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { eventually, type Worker } from './helpers.js';

const SOURCE = fileURLToPath(new URL('./fixtures/free-source.js', import.meta.url));

export interface FreeSource {
  child: ChildProcess;
  port: number;
  /** Start writing (once every worker is attached). */
  go(): void;
  /** Resolves when all `count` messages are written. */
  done: Promise<{ sent: number; ms: number }>;
}

/** Fork a source of `count` messages of `size` bytes; its kill goes into `cleanup`. */
export async function freeSource(count: number, size: number, cleanup: Array<() => unknown>): Promise<FreeSource> {
  const child = fork(SOURCE, [String(count), String(size)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  cleanup.push(() => child.kill('SIGKILL'));
  let resolveDone!: (v: { sent: number; ms: number }) => void;
  const done = new Promise<{ sent: number; ms: number }>((r) => (resolveDone = r));
  const port = await new Promise<number>((resolve, reject) => {
    child.on('message', (m: { ev: string; port?: number; sent?: number; ms?: number }) => {
      if (m.ev === 'listening') resolve(m.port!);
      if (m.ev === 'done') resolveDone({ sent: m.sent!, ms: m.ms! });
    });
    child.once('exit', (code) => reject(new Error(`free source exited with ${code}`)));
  });
  return { child, port, go: () => child.send({ cmd: 'go' }), done };
}

/** Every worker has all `count` messages, in order (the check a worker would make). */
export async function expectAll(list: Worker[], count: number, what: string, timeoutMs = 60_000): Promise<void> {
  for (const [i, w] of list.entries()) {
    const report = await eventually(async () => {
      const r = await w.report();
      return r.messages >= count ? r : undefined;
    }, `${what}: worker ${i} to receive all ${count}`, timeoutMs);
    const seqs = report.seqs.t ?? [];
    assert.equal(seqs.length, count, `${what}: worker ${i} got ${seqs.length} of ${count}`);
    for (let k = 0; k < seqs.length; k++) {
      if (seqs[k] !== k) assert.fail(`${what}: worker ${i} got seq ${seqs[k]} at position ${k}`);
    }
  }
}
