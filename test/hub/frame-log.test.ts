/**
 * The writer's frame log alone — no sockets: each frame joins once however
 * many connections get it in a row, ranges measure and join what they
 * cover in order, and connections with the same range share one buffer.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { frame } from '../../src/hub/frame.js';
import { FrameLog } from '../../src/hub/writer.js';

const text = (s: string) => frame(Buffer.from(s), false);

test('a frame delivered to several connections in a row is one entry; the same frame later, after another, is a new one', () => {
  const log = new FrameLog();
  const a = text('a');
  const b = text('bb');
  assert.equal(log.add(a), 0);
  assert.equal(log.add(a), 0);
  assert.equal(log.add(a), 0);
  assert.equal(log.add(b), 1);
  assert.equal(log.add(a), 2);
  assert.equal(log.bytes(0, 3), a.size * 2 + b.size);
  assert.equal(log.bytes(1, 2), b.size);
});

test('a range joins its frames in order, header before payload; the same range is joined once and shared', () => {
  const log = new FrameLog();
  const frames = ['one', 'two', 'three', 'four'].map(text);
  for (const f of frames) log.add(f);
  const whole = log.join(0, 4);
  assert.deepEqual(whole, Buffer.concat(frames.flatMap((f) => [...f.parts])));
  assert.equal(log.join(0, 4), whole, 'a second connection with the same batch gets the same buffer');
  const tail = log.join(1, 3);
  assert.notEqual(tail, whole);
  assert.deepEqual(tail, Buffer.concat([...frames[1]!.parts, ...frames[2]!.parts]));
  assert.equal(log.join(0, 2).length, log.bytes(0, 2), 'same start, other end: its own buffer of its own length');
  const parts: Buffer[] = [];
  log.parts(2, 4, parts);
  assert.deepEqual(parts, [...frames[2]!.parts, ...frames[3]!.parts]);
});
