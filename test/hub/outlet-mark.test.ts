/**
 * The socket high-water mark follows the session's queue bound, within
 * 256 KiB–4 MiB: the default queue gets the deep pipeline the relay needs,
 * a small queue keeps its memory bound and a policy that acts early.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_MAX_QUEUE_BYTES, DEFAULT_SOCKET_HIGH_WATER_BYTES, MIN_SOCKET_HIGH_WATER_BYTES, socketHighWaterFor } from '../../src/hub/outlet.js';
import { defaults } from '../../src/defaults.js';

test('the socket high-water mark is the queue bound, kept within 256 KiB–4 MiB', () => {
  assert.equal(socketHighWaterFor(DEFAULT_MAX_QUEUE_BYTES), 4 * 1024 * 1024);
  assert.equal(socketHighWaterFor(DEFAULT_MAX_QUEUE_BYTES), DEFAULT_SOCKET_HIGH_WATER_BYTES);
  assert.equal(defaults.hub.socketHighWaterBytes, socketHighWaterFor(defaults.hub.maxQueueBytes));
  assert.equal(socketHighWaterFor(64 * 1024), MIN_SOCKET_HIGH_WATER_BYTES);
  assert.equal(socketHighWaterFor(0), 256 * 1024);
  assert.equal(socketHighWaterFor(1024 * 1024), 1024 * 1024);
  assert.equal(socketHighWaterFor(64 * 1024 * 1024), 4 * 1024 * 1024);
});
