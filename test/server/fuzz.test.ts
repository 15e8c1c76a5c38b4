/**
 * Fuzz the listener: random byte streams and mutated handshakes and frames,
 * from a seeded PRNG. The server (a child process, so its memory can be
 * measured after GC) never dies, a healthy session keeps working, and memory
 * returns near its baseline.
 *
 * Reproduce a failure: WSHUB_FUZZ_SEED=<seed printed> node scripts/test.js server/fuzz
 * More inputs: WSHUB_FUZZ_COUNT=20000.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fork, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { ServerStats } from '../../src/server/types.js';
import { HealthyPeer, frame, upgradeRequest, withTimeout } from './helpers.js';

const FIXTURE = fileURLToPath(new URL('./fixtures/fuzz-server.js', import.meta.url));
const SEED = process.env.WSHUB_FUZZ_SEED ? Number(process.env.WSHUB_FUZZ_SEED) : Math.floor(Math.random() * 2 ** 32);
const COUNT = Number(process.env.WSHUB_FUZZ_COUNT ?? 2000);
const CONCURRENCY = 16;
const WARMUP = 200;
const MIB = 1024 * 1024;

/** mulberry32: small, fast, and the same sequence for the same seed everywhere. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Rng = () => number;
const int = (rng: Rng, n: number): number => Math.floor(rng() * n);
const bytes = (rng: Rng, n: number): Buffer => Buffer.from(Array.from({ length: n }, () => int(rng, 256)));

function mutate(rng: Rng, input: Buffer): Buffer {
  const out = Buffer.from(input);
  const kind = int(rng, 4);
  if (kind === 0 && out.length > 0) {
    for (let i = 0, n = 1 + int(rng, 8); i < n; i++) out[int(rng, out.length)]! ^= 1 << int(rng, 8);
    return out;
  }
  if (kind === 1 && out.length > 0) return out.subarray(0, int(rng, out.length));
  if (kind === 2) return Buffer.concat([out, bytes(rng, int(rng, 64))]);
  if (out.length > 0) {
    for (let i = 0, n = 1 + int(rng, 4); i < n; i++) out[int(rng, out.length)] = int(rng, 256);
  }
  return out;
}

function randomFrames(rng: Rng): Buffer {
  const opcodes = [0x0, 0x1, 0x2, 0x8, 0x9, 0xa, 0x3, 0xb];
  const frames: Buffer[] = [];
  for (let i = 0, n = 1 + int(rng, 4); i < n; i++) {
    const sizes = [0, 1, 125, 126, 300, 70_000];
    const payload = bytes(rng, sizes[int(rng, sizes.length)]!);
    frames.push(frame({ opcode: opcodes[int(rng, opcodes.length)]!, fin: rng() < 0.8, rsv: rng() < 0.1 ? int(rng, 8) : 0, payload, mask: rng() < 0.95 }));
  }
  return Buffer.concat(frames);
}

/** One fuzz input: what to send on a fresh connection. */
function input(rng: Rng): { preface: string; body: Buffer; kind: string } {
  switch (int(rng, 4)) {
    case 0: return { kind: 'random-bytes', preface: '', body: bytes(rng, int(rng, 1024)) };
    case 1: return { kind: 'mutated-handshake', preface: '', body: mutate(rng, Buffer.from(upgradeRequest())) };
    case 2: return { kind: 'mutated-frames', preface: upgradeRequest(), body: mutate(rng, randomFrames(rng)) };
    default: return { kind: 'random-after-handshake', preface: upgradeRequest(), body: bytes(rng, int(rng, 2048)) };
  }
}

/** Send one input and half-close; resolves when the server has closed the socket (false if it did not within 5 s). */
function send(port: number, preface: string, body: Buffer): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(false);
    }, 5000);
    socket.on('error', () => undefined);
    socket.on('data', () => undefined);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(true);
    });
    socket.once('connect', () => {
      if (preface) socket.write(preface);
      socket.end(body);
    });
  });
}

function ask<T>(child: ChildProcess, type: string): Promise<T> {
  return withTimeout(new Promise<T>((resolve) => {
    const onMessage = (m: { type: string } & Record<string, unknown>): void => {
      if (m.type !== type) return;
      child.off('message', onMessage);
      resolve((type === 'mem' ? m.mem : m.stats) as T);
    };
    child.on('message', onMessage);
    child.send({ type });
  }), 10_000, `${type} over IPC`);
}

test(`fuzz: ${COUNT} inputs (seed ${SEED}) never kill the server, never stop a healthy session, leak no memory`, async (t) => {
  t.diagnostic(`seed ${SEED} (override with WSHUB_FUZZ_SEED)`);
  const child = fork(FIXTURE, [], { execArgv: ['--expose-gc'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  t.after(() => child.kill('SIGKILL'));
  let exitInfo: string | undefined;
  child.once('exit', (code, signal) => (exitInfo = `exit ${code} ${signal}`));
  const port = await withTimeout(new Promise<number>((resolve) => child.on('message', (m: { type: string; port?: number }) => {
    if (m.type === 'ready') resolve(m.port!);
  })), 10_000, 'fuzz server ready');
  const healthy = await HealthyPeer.open(`ws://127.0.0.1:${port}/`);
  t.after(() => healthy.close());

  const rng = prng(SEED);
  const inputs = Array.from({ length: COUNT }, () => input(rng));
  let baseline: NodeJS.MemoryUsage | undefined;
  let midway: NodeJS.MemoryUsage | undefined;
  const unclosed: string[] = [];
  try {
    for (let at = 0; at < inputs.length; at += CONCURRENCY) {
      const batch = inputs.slice(at, at + CONCURRENCY);
      const results = await Promise.all(batch.map((i) => send(port, i.preface, i.body)));
      results.forEach((ok, k) => {
        if (!ok) unclosed.push(`#${at + k} ${batch[k]!.kind}`);
      });
      assert.equal(exitInfo, undefined, `server died after input #${at}`);
      if (at % 256 === 0) await healthy.check();
      if (baseline === undefined && at + CONCURRENCY >= WARMUP) baseline = await ask<NodeJS.MemoryUsage>(child, 'mem');
      if (midway === undefined && at + CONCURRENCY >= inputs.length / 2) midway = await ask<NodeJS.MemoryUsage>(child, 'mem');
    }
    assert.deepEqual(unclosed, [], 'the server closed every fuzzed connection after the peer half-closed');
    await healthy.check();
    const deadline = Date.now() + 10_000;
    let stats = await ask<ServerStats>(child, 'stats');
    while ((stats.handshaking !== 0 || stats.open !== 1) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      stats = await ask<ServerStats>(child, 'stats');
    }
    assert.equal(stats.handshaking, 0);
    assert.equal(stats.open, 1, 'only the healthy session is left');
    const final = await ask<NodeJS.MemoryUsage>(child, 'mem');
    const growth = (from: NodeJS.MemoryUsage, key: 'heapUsed' | 'external' | 'rss'): number => (final[key] - from[key]) / MIB;
    const show = (key: 'heapUsed' | 'external' | 'rss'): string => `${key} ${(baseline![key] / MIB).toFixed(1)} → ${(midway![key] / MIB).toFixed(1)} → ${(final[key] / MIB).toFixed(1)} MiB`;
    t.diagnostic(`${show('heapUsed')}; ${show('external')}; ${show('rss')}`);
    t.diagnostic(`rejected ${JSON.stringify(stats.rejected)} errors ${JSON.stringify(stats.errors)} accepted ${stats.accepted}`);
    // JS objects and Buffers must come back to the baseline after GC.
    assert.ok(growth(baseline!, 'heapUsed') < 20, `heap grew ${growth(baseline!, 'heapUsed').toFixed(1)} MiB`);
    assert.ok(growth(baseline!, 'external') < 20, `external memory grew ${growth(baseline!, 'external').toFixed(1)} MiB`);
    // RSS keeps what V8 and malloc reserved at peak (measured: a plateau about
    // +30 MiB above the warm-up figure, the same after 10,000 and 30,000
    // inputs), so it is checked loosely overall and tightly for the second
    // half of the run, where a leak would keep growing it.
    assert.ok(growth(baseline!, 'rss') < 64, `rss grew ${growth(baseline!, 'rss').toFixed(1)} MiB`);
    assert.ok(growth(midway!, 'rss') < 20, `rss grew ${growth(midway!, 'rss').toFixed(1)} MiB over the second half`);
  } catch (err) {
    throw new Error(`fuzz failed with seed ${SEED} (rerun: WSHUB_FUZZ_SEED=${SEED}): ${(err as Error).message}`, { cause: err });
  }
});
