/**
 * The backlog alone — no sockets: bounded in bytes, the slow-consumer policy
 * deciding what goes, every drop reported with its reason, answers never
 * dropped, order kept.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Backlog, type BacklogItem, type DropCode, type SlowConsumerPolicy } from '../../src/hub/backlog.js';

function make(policy: SlowConsumerPolicy, maxBytes: number): { backlog: Backlog<string>; drops: Array<[string, DropCode]> } {
  const drops: Array<[string, DropCode]> = [];
  const backlog = new Backlog<string>({ policy, maxBytes, onDrop: (item, reason) => drops.push([item.frame, reason]) });
  return { backlog, drops };
}

const item = (frame: string, extra: Partial<BacklogItem<string>> = {}): BacklogItem<string> => ({ frame, bytes: 10, ...extra });

function drain(backlog: Backlog<string>): string[] {
  const out: string[] = [];
  for (let i = backlog.shift(); i; i = backlog.shift()) out.push(i.frame);
  return out;
}

test('drop-oldest: past the bound the oldest go, each reported as ERR_DROP_OLDEST; order kept', () => {
  const { backlog, drops } = make('drop-oldest', 30);
  for (const f of ['a', 'b', 'c', 'd', 'e']) assert.equal(backlog.push(item(f)), 'queued');
  assert.deepEqual(drops, [['a', 'ERR_DROP_OLDEST'], ['b', 'ERR_DROP_OLDEST']]);
  assert.equal(backlog.bytes, 30);
  assert.equal(backlog.count, 3);
  assert.deepEqual(drain(backlog), ['c', 'd', 'e']);
  assert.equal(backlog.bytes, 0);
});

test('conflate: a newer message of the same key replaces the waiting one (ERR_DROP_CONFLATED); other keys untouched', () => {
  const { backlog, drops } = make('conflate', 1000);
  backlog.push(item('btc-1', { key: 'btc' }));
  backlog.push(item('eth-1', { key: 'eth' }));
  backlog.push(item('btc-2', { key: 'btc' }));
  backlog.push(item('notice'));
  backlog.push(item('btc-3', { key: 'btc' }));
  assert.deepEqual(drops, [['btc-1', 'ERR_DROP_CONFLATED'], ['btc-2', 'ERR_DROP_CONFLATED']]);
  assert.deepEqual(drain(backlog), ['eth-1', 'notice', 'btc-3']);
});

test('conflate past the bound drops the oldest too', () => {
  const { backlog, drops } = make('conflate', 20);
  backlog.push(item('a', { key: 'a' }));
  backlog.push(item('b', { key: 'b' }));
  backlog.push(item('c', { key: 'c' }));
  assert.deepEqual(drops, [['a', 'ERR_DROP_OLDEST']]);
  assert.deepEqual(drain(backlog), ['b', 'c']);
});

test('disconnect: full means overflow; nothing is dropped by the backlog itself', () => {
  const { backlog, drops } = make('disconnect', 20);
  assert.equal(backlog.push(item('a')), 'queued');
  assert.equal(backlog.push(item('b')), 'queued');
  assert.equal(backlog.push(item('c')), 'overflow');
  assert.deepEqual(drops, []);
  assert.deepEqual(backlog.clear().map((i) => i.frame), ['a', 'b']);
});

test('answers are kept: drop-oldest skips them; a backlog full of answers overflows', () => {
  const { backlog, drops } = make('drop-oldest', 30);
  backlog.push(item('answer-1', { keep: true }));
  backlog.push(item('data-1'));
  backlog.push(item('data-2'));
  backlog.push(item('data-3'));
  assert.deepEqual(drops, [['data-1', 'ERR_DROP_OLDEST']]);
  assert.deepEqual(drain(backlog), ['answer-1', 'data-2', 'data-3']);
  const full = make('drop-oldest', 20);
  full.backlog.push(item('answer-1', { keep: true }));
  full.backlog.push(item('answer-2', { keep: true }));
  assert.equal(full.backlog.push(item('answer-3', { keep: true })), 'overflow');
});

test('a message larger than the whole bound is dropped on arrival, not queued', () => {
  const { backlog, drops } = make('drop-oldest', 5);
  assert.equal(backlog.push(item('huge')), 'queued');
  assert.deepEqual(drops, [['huge', 'ERR_DROP_OLDEST']]);
  assert.equal(backlog.count, 0);
});

test('a long run of drops keeps exactly the newest that fit, in order, and counts every drop', () => {
  const { backlog, drops } = make('drop-oldest', 100);
  for (let i = 0; i < 100_000; i++) backlog.push(item(String(i)));
  assert.equal(backlog.count, 10);
  assert.equal(drops.length, 99_990);
  assert.deepEqual(drain(backlog), Array.from({ length: 10 }, (_, i) => String(99_990 + i)));
});

test('a kept answer at the front stays first through a long run of drops; after it is taken the drops go on in order', () => {
  const { backlog, drops } = make('drop-oldest', 100);
  backlog.push(item('answer', { keep: true }));
  for (let i = 0; i < 50_000; i++) backlog.push(item(String(i)));
  assert.equal(backlog.count, 10);
  assert.equal(backlog.peek()?.frame, 'answer');
  assert.equal(backlog.shift()?.frame, 'answer');
  for (let i = 50_000; i < 100_000; i++) backlog.push(item(String(i)));
  assert.equal(drops.length, 100_000 - 10);
  assert.ok(drops.every(([, reason]) => reason === 'ERR_DROP_OLDEST'));
  assert.deepEqual(drops.slice(0, 3).map(([f]) => f), ['0', '1', '2']);
  assert.deepEqual(drain(backlog), Array.from({ length: 10 }, (_, i) => String(99_990 + i)));
  assert.equal(backlog.bytes, 0);
});
