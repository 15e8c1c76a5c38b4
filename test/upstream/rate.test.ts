/**
 * The pacing primitives of src/upstream/rate.ts. The limiters run on a test
 * clock, so their arithmetic is checked exactly; the gate runs on real timers
 * with small windows and is checked on order, counts and "not before" bounds
 * only (a gate may be late on a busy machine, never early).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { isWshubError } from '../../src/errors.js';
import { RateGate, SlidingWindow, TokenBucket, type RateLimiter } from '../../src/upstream/rate.js';

// The gate's timer is unref'd on purpose (a gate keeps no process alive); in a
// daemon the sockets hold the loop, here this timer does.
let keepAlive: NodeJS.Timeout | undefined;
before(() => {
  keepAlive = setInterval(() => undefined, 1000);
});
after(() => clearInterval(keepAlive));

/** A clock the test moves by hand. */
function testClock(): { now: () => number; advance: (ms: number) => void; set: (ms: number) => void } {
  let t = 1000;
  return { now: () => t, advance: (ms) => void (t += ms), set: (ms) => void (t = ms) };
}

function assertCode(err: unknown, code: string): true {
  assert.ok(isWshubError(err), `expected a WshubError, got ${String(err)}`);
  assert.equal(err.code, code);
  return true;
}

/** Take greedily every millisecond for `ms`; the times of every unit taken. */
function greedy(limiter: RateLimiter, clock: ReturnType<typeof testClock>, ms: number): number[] {
  const times: number[] = [];
  for (let i = 0; i <= ms; i++) {
    while (limiter.take()) times.push(clock.now());
    clock.advance(1);
  }
  return times;
}

/** The most units within any half-open window [t, t + windowMs). */
function maxInWindow(times: number[], windowMs: number): number {
  let best = 0;
  for (let i = 0, j = 0; i < times.length; i++) {
    while ((times[i] ?? 0) - (times[j] ?? 0) >= windowMs) j++;
    best = Math.max(best, i - j + 1);
  }
  return best;
}

test('TokenBucket starts full, refills continuously at messages/perMs, never above capacity', () => {
  const clock = testClock();
  const bucket = new TokenBucket({ messages: 5, perMs: 1000 }, clock.now);
  assert.equal(bucket.capacity, 5);
  assert.equal(bucket.tokens, 5);
  for (let i = 0; i < 5; i++) assert.equal(bucket.take(), true, `take ${i + 1} of 5`);
  assert.equal(bucket.take(), false, 'the sixth within the same instant');
  assert.equal(bucket.msUntil(), 200);
  clock.advance(100);
  assert.equal(bucket.tokens, 0.5);
  assert.equal(bucket.take(), false);
  assert.equal(bucket.msUntil(), 100);
  clock.advance(100);
  assert.equal(bucket.msUntil(), 0);
  assert.equal(bucket.take(), true);
  clock.advance(60_000);
  assert.equal(bucket.tokens, 5, 'capped at capacity after a long idle');
});

test('TokenBucket take(n) is all or nothing; msUntil(n) is exact and Infinity past the capacity', () => {
  const clock = testClock();
  const bucket = new TokenBucket({ messages: 4, perMs: 40 }, clock.now);
  assert.equal(bucket.take(3), true);
  assert.equal(bucket.take(2), false);
  assert.equal(bucket.tokens, 1, 'a refused take(2) took nothing');
  assert.equal(bucket.msUntil(2), 10);
  assert.equal(bucket.msUntil(4), 30);
  assert.equal(bucket.msUntil(5), Infinity);
  assert.equal(bucket.take(5), false);
  clock.advance(30);
  assert.equal(bucket.take(4), true);
});

test('TokenBucket: a clock going backwards refills nothing', () => {
  const clock = testClock();
  const bucket = new TokenBucket({ messages: 2, perMs: 100 }, clock.now);
  bucket.take(2);
  clock.advance(-500);
  assert.equal(bucket.tokens, 0);
  clock.advance(500);
  assert.equal(bucket.tokens, 0, 'time lost going back is not counted twice');
  clock.advance(50);
  assert.equal(bucket.tokens, 1);
});

test('TokenBucket passes up to messages + messages*T/perMs in a window of T; SlidingWindow never more than messages', () => {
  const clock = testClock();
  const bucket = new TokenBucket({ messages: 5, perMs: 1000 }, clock.now);
  const bucketTimes = greedy(bucket, clock, 3000);
  // The burst of 5, then one every 200 ms: 4 more inside the first second.
  assert.equal(maxInWindow(bucketTimes, 1000), 9);
  assert.equal(bucketTimes.length, 5 + 15);

  clock.set(0);
  const window = new SlidingWindow({ messages: 5, perMs: 1000 }, clock.now);
  const windowTimes = greedy(window, clock, 3000);
  assert.equal(maxInWindow(windowTimes, 1000), 5);
  assert.deepEqual(windowTimes, [0, 0, 0, 0, 0, 1000, 1000, 1000, 1000, 1000, 2000, 2000, 2000, 2000, 2000, 3000, 3000, 3000, 3000, 3000]);
});

test('SlidingWindow: tokens and msUntil(n) follow the units leaving the window', () => {
  const clock = testClock();
  const window = new SlidingWindow({ messages: 3, perMs: 100 }, clock.now);
  assert.equal(window.take(), true); // t=1000
  clock.advance(30);
  assert.equal(window.take(2), true); // t=1030
  assert.equal(window.tokens, 0);
  assert.equal(window.msUntil(), 70, 'the first unit leaves at 1100');
  assert.equal(window.msUntil(2), 100, 'the two of 1030 leave at 1130');
  assert.equal(window.msUntil(4), Infinity);
  clock.advance(70);
  assert.equal(window.tokens, 1);
  assert.equal(window.take(2), false);
  assert.equal(window.take(), true);
});

test('bad limits and unit counts are refused with ERR_INVALID_OPTION naming the key', () => {
  assert.throws(() => new TokenBucket({ messages: 0, perMs: 1000 }), (err) => assertCode(err, 'ERR_INVALID_OPTION') && /rate\.messages/.test((err as Error).message));
  assert.throws(() => new TokenBucket({ messages: 1.5, perMs: 1000 }), (err) => assertCode(err, 'ERR_INVALID_OPTION'));
  assert.throws(() => new SlidingWindow({ messages: 5, perMs: 0 }), (err) => assertCode(err, 'ERR_INVALID_OPTION') && /rate\.perMs/.test((err as Error).message));
  assert.throws(() => new SlidingWindow({ messages: 5, perMs: Infinity }), (err) => assertCode(err, 'ERR_INVALID_OPTION'));
  assert.throws(() => new TokenBucket(null as unknown as { messages: number; perMs: number }), (err) => assertCode(err, 'ERR_INVALID_OPTION'));
  const bucket = new TokenBucket({ messages: 5, perMs: 1000 });
  assert.throws(() => bucket.take(0), (err) => assertCode(err, 'ERR_INVALID_OPTION'));
  assert.throws(() => bucket.msUntil(-1), (err) => assertCode(err, 'ERR_INVALID_OPTION'));
});

test('RateGate serves waiters in FIFO order, each not before its token exists', async () => {
  const gate = new RateGate({ messages: 2, perMs: 20 });
  const start = performance.now();
  const order: number[] = [];
  const at: number[] = [];
  const all = Array.from({ length: 10 }, (_, i) => gate.acquire().then(() => {
    order.push(i);
    at.push(performance.now() - start);
  }));
  assert.equal(gate.pending, 8, 'two passed at once, eight wait');
  await Promise.all(all);
  assert.deepEqual(order, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.equal(gate.pending, 0);
  // The burst of 2, then one token every 10 ms: the k-th waiter (k >= 2) passes at (k - 1) * 10 ms at the earliest.
  for (let k = 2; k < 10; k++) assert.ok((at[k] ?? 0) >= (k - 1) * 10 - 1, `waiter ${k} passed at ${at[k]} ms, before ${(k - 1) * 10} ms`);
});

test('RateGate over a SlidingWindow never lets more than messages through in any window', async () => {
  const limit = { messages: 3, perMs: 30 };
  const gate = new RateGate(new SlidingWindow(limit));
  const at: number[] = [];
  await Promise.all(Array.from({ length: 12 }, () => gate.acquire().then(() => at.push(performance.now()))));
  assert.equal(at.length, 12);
  for (let i = 0; i + limit.messages < at.length; i++) {
    const gap = (at[i + limit.messages] ?? 0) - (at[i] ?? 0);
    assert.ok(gap >= limit.perMs - 1, `units ${i} and ${i + limit.messages} only ${gap} ms apart`);
  }
});

test('RateGate: a large request is not overtaken by later small ones', async () => {
  const gate = new RateGate({ messages: 3, perMs: 30 });
  await gate.acquire({ n: 3 });
  const order: string[] = [];
  const big = gate.acquire({ n: 3 }).then(() => order.push('big'));
  const small = gate.acquire().then(() => order.push('small'));
  await Promise.all([big, small]);
  assert.deepEqual(order, ['big', 'small']);
});

test('RateGate.close() rejects every waiter and every later acquire with ERR_CLOSED', async () => {
  const gate = new RateGate({ messages: 1, perMs: 60_000 });
  await gate.acquire();
  const waiting = [gate.acquire(), gate.acquire(), gate.acquire()];
  assert.equal(gate.pending, 3);
  gate.close('test over');
  gate.close();
  assert.equal(gate.closed, true);
  assert.equal(gate.pending, 0);
  for (const w of waiting) await assert.rejects(w, (err) => assertCode(err, 'ERR_CLOSED') && /test over/.test((err as Error).message));
  await assert.rejects(gate.acquire(), (err) => assertCode(err, 'ERR_CLOSED'));
});

test('RateGate: an aborted waiter leaves the queue, takes nothing, and the next one moves up', async () => {
  const limiter = new SlidingWindow({ messages: 1, perMs: 40 });
  const gate = new RateGate(limiter);
  await gate.acquire();
  const abort = new AbortController();
  const order: string[] = [];
  const first = gate.acquire({ signal: abort.signal }).then(() => order.push('aborted one passed'), (err: unknown) => {
    order.push(`aborted: ${(err as Error).message}`);
  });
  const second = gate.acquire().then(() => order.push('second'));
  assert.equal(gate.pending, 2);
  abort.abort(new Error('attempt abandoned'));
  assert.equal(gate.pending, 1);
  await Promise.all([first, second]);
  assert.deepEqual(order, ['aborted: attempt abandoned', 'second']);
  assert.equal(limiter.tokens, 0, 'exactly one unit was taken after the first: the second waiter\'s');
  await assert.rejects(gate.acquire({ signal: AbortSignal.abort(new Error('already')) }), /already/);
  assert.equal(gate.pending, 0);
});

test('RateGate refuses a request larger than the limiter could ever pass', async () => {
  const gate = new RateGate({ messages: 2, perMs: 1000 });
  await assert.rejects(gate.acquire({ n: 3 }), (err) => assertCode(err, 'ERR_INVALID_OPTION'));
  await assert.rejects(gate.acquire({ n: 0 }), (err) => assertCode(err, 'ERR_INVALID_OPTION'));
  assert.equal(gate.pending, 0);
});

test('RateGate keeps no process alive: a waiter facing a one-minute wait does not hold the event loop', () => {
  const rate = fileURLToPath(new URL('../../src/upstream/rate.js', import.meta.url));
  const script = `
    const { RateGate } = await import(${JSON.stringify(rate)});
    const gate = new RateGate({ messages: 1, perMs: 60000 });
    await gate.acquire();
    gate.acquire().then(() => console.log('passed'));
    console.log('waiting', gate.pending);
  `;
  const res = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(res.error, undefined, `the child did not exit on its own: ${String(res.error)}`);
  assert.equal(res.status, 0, res.stderr);
  assert.equal(res.stdout.trim(), 'waiting 1');
});
