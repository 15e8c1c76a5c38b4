/**
 * The handover alone — no sockets: which publishes go out when two sources
 * carry the same feed for a while. A pool's failback (old and new
 * connections, per-topic sequences meeting) and cluster mode's give-back
 * (the own connection, then the holder's stream) — nothing delivered twice.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Handover, STREAM_COMPARE_MS } from '../../src/hub/handover.js';
import type { MessageSource } from '../../src/hub/pool.js';

/** The seqs of `topic` that go out, feeding `seqs` from `source` in order. */
function out(h: Handover, source: MessageSource, topic: string, seqs: number[]): number[] {
  return seqs.filter((seq) => h.admit(source, topic, seq) === undefined);
}

test('failback with sequences: the old connection delivers until the new one delivers the next in line; nothing twice, nothing lost', () => {
  const h = new Handover(true);
  assert.equal(h.busy, false, 'nothing to check before a failback');
  assert.deepEqual(out(h, 'current', 'a', [1, 2]), [1, 2]);
  h.begin();
  assert.deepEqual(out(h, 'current', 'a', [3, 4]), [3, 4]);
  // The new connection is behind (2, 3, 4: duplicates), then ahead (6: the old one has not got there), then in line.
  assert.deepEqual(out(h, 'fresh', 'a', [2, 3, 4]), []);
  assert.deepEqual(out(h, 'fresh', 'a', [6]), []);
  assert.deepEqual(out(h, 'current', 'a', [5]), [5]);
  assert.deepEqual(out(h, 'fresh', 'a', [6, 7]), [6, 7]);
  // Taken over: the old connection's late copies are duplicates.
  assert.deepEqual(out(h, 'current', 'a', [6, 7]), []);
  h.switched();
  assert.equal(h.admit('stale', 'a', 9), 'ERR_FAILBACK_OVERLAP', 'the old connections are stale after the switch');
});

test('failback without sequences: only the delivering connection\'s messages go out', () => {
  const h = new Handover(false);
  h.begin();
  assert.equal(h.admit('current', 'a', undefined), undefined);
  assert.equal(h.admit('fresh', 'a', undefined), 'ERR_FAILBACK_OVERLAP');
  h.switched();
  assert.equal(h.admit('current', 'a', undefined), undefined);
  assert.equal(h.admit('stale', 'a', undefined), 'ERR_FAILBACK_OVERLAP');
});

test('cluster give-back with sequences: the holder\'s stream starts after what the own connection delivered, per topic', () => {
  const h = new Handover(true);
  h.ownConnection();
  assert.equal(h.busy, true, 'the own connection\'s sequences are kept');
  assert.deepEqual(out(h, 'current', 'a', [10, 11, 12]), [10, 11, 12]);
  assert.deepEqual(out(h, 'current', 'b', [5]), [5]);
  h.toStream(1000);
  assert.equal(h.comparingStream, true);
  // The stream is behind on `a` (11, 12 came over the own connection), ahead on `b`.
  const stream = (topic: string, seqs: number[], now = 1001): number[] => seqs.filter((seq) => h.admitStream(topic, seq, now) === undefined);
  assert.deepEqual(stream('a', [11, 12, 13, 14]), [13, 14]);
  assert.deepEqual(stream('b', [7, 8]), [7, 8]);
  assert.deepEqual(stream('c', [1]), [1], 'a topic the own connection never delivered goes out');
  assert.equal(h.comparingStream, false, 'every topic passed: nothing left to compare');
  // Once passed, a topic is not compared again (the upstream may renumber later).
  assert.deepEqual(stream('a', [1]), [1]);
});

test('cluster give-back: the comparison ends after STREAM_COMPARE_MS, so an upstream that numbers again from 1 is not held back for long', () => {
  const h = new Handover(true);
  h.ownConnection();
  out(h, 'current', 'a', [500]);
  h.toStream(0);
  assert.equal(h.admitStream('a', 1, 10), 'ERR_FAILBACK_OVERLAP');
  assert.equal(h.admitStream('a', 2, STREAM_COMPARE_MS + 1), undefined);
  assert.equal(h.comparingStream, false);
});

test('cluster give-back without sequences: nothing is kept or compared', () => {
  const h = new Handover(false);
  h.ownConnection();
  assert.equal(h.busy, false);
  assert.equal(h.admit('current', 'a', 1), undefined);
  h.toStream(0);
  assert.equal(h.comparingStream, false);
});

test('a reconnect of the own connection forgets its sequences (the upstream may number again)', () => {
  const h = new Handover(true);
  h.ownConnection();
  out(h, 'current', 'a', [100]);
  h.reset();
  assert.deepEqual(out(h, 'current', 'a', [1, 2]), [1, 2]);
  h.toStream(0);
  assert.equal(h.admitStream('a', 2, 1), 'ERR_FAILBACK_OVERLAP');
  assert.equal(h.admitStream('a', 3, 1), undefined);
});
