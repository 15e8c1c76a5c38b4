import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isWshubError } from '../../src/errors.js';
import { backoffDelay } from '../../src/upstream/backoff.js';
import * as defaults from '../../src/upstream/defaults.js';
import { ResilientWebSocket } from '../../src/upstream/resilient.js';
import type { ResilientWebSocketOptions } from '../../src/upstream/types.js';

function invalid(options: unknown, key: RegExp): void {
  assert.throws(() => new ResilientWebSocket(options as ResilientWebSocketOptions), (err: unknown) => {
    assert.ok(isWshubError(err, 'ERR_INVALID_OPTION'), `expected ERR_INVALID_OPTION, got ${String(err)}`);
    assert.match(err.message, key);
    return true;
  });
}

test('invalid options are refused with ERR_INVALID_OPTION naming the key', () => {
  invalid({}, /upstream\.url/);
  invalid({ url: 'http://example.test/' }, /upstream\.url/);
  invalid({ url: 'ws://127.0.0.1:1/#frag' }, /upstream\.url/);
  invalid({ url: 'ws://127.0.0.1:1/', pingIntervalMs: -1 }, /upstream\.pingIntervalMs/);
  invalid({ url: 'ws://127.0.0.1:1/', pongTimeoutMs: 'soon' }, /upstream\.pongTimeoutMs/);
  invalid({ url: 'ws://127.0.0.1:1/', backoff: { minDelayMs: 10, maxDelayMs: 5 } }, /upstream\.backoff\.minDelayMs/);
  invalid({ url: 'ws://127.0.0.1:1/', queue: { maxMesages: 3 } }, /upstream\.queue\.maxMesages: unknown key \(did you mean "maxMessages"\?\)/);
  invalid({ url: 'ws://127.0.0.1:1/', pingInterval: 3 }, /upstream\.pingInterval: unknown key \(did you mean "pingIntervalMs"\?\)/);
  invalid({ url: 'ws://127.0.0.1:1/', fatalCloseCodes: [999] }, /upstream\.fatalCloseCodes\.0/);
  invalid({ url: 'ws://127.0.0.1:1/', protocols: ['a b'] }, /upstream\.protocols\.0/);
  invalid({ url: 'ws://127.0.0.1:1/', localAddress: 'not-an-ip' }, /upstream\.localAddress/);
  invalid({ url: 'ws://127.0.0.1:1/', liveness: 'tcp' }, /upstream\.liveness/);
});

test('options are defaulted from the exported DEFAULT_* constants and frozen', () => {
  const client = new ResilientWebSocket({ url: 'ws://127.0.0.1:1/' });
  const o = client.options;
  assert.equal(o.pingIntervalMs, defaults.DEFAULT_UPSTREAM_PING_INTERVAL_MS);
  assert.equal(o.pongTimeoutMs, defaults.DEFAULT_UPSTREAM_PONG_TIMEOUT_MS);
  assert.equal(o.happyEyeballsDelayMs, defaults.DEFAULT_HAPPY_EYEBALLS_DELAY_MS);
  assert.equal(o.backoff.minDelayMs, defaults.DEFAULT_BACKOFF_MIN_DELAY_MS);
  assert.equal(o.backoff.maxAttempts, Infinity);
  assert.equal(o.queue.maxBytes, defaults.DEFAULT_QUEUE_MAX_BYTES);
  assert.equal(o.rejectUnauthorized, true);
  assert.equal(o.perMessageDeflate, false);
  assert.deepEqual(o.fatalCloseCodes, [1002, 1003, 1007, 1008]);
  assert.deepEqual(o.fatalHttpStatuses, [400, 401, 403, 404]);
  assert.ok(Object.isFrozen(o) && Object.isFrozen(o.backoff) && Object.isFrozen(o.queue));
  assert.equal(client.state, 'idle');
});

test('backoff: full jitter stays within [floor, min(max, min*factor^(n-1))]', () => {
  const policy = { minDelayMs: 100, maxDelayMs: 1000, factor: 2, floorMs: 20 };
  assert.equal(backoffDelay(policy, 1, () => 0), 20, 'a zero draw is lifted to the floor');
  assert.equal(backoffDelay(policy, 1, () => 0.999999), 99);
  assert.equal(backoffDelay(policy, 3, () => 0.999999), 399);
  assert.equal(backoffDelay(policy, 10, () => 0.999999), 999, 'capped by maxDelayMs');
  assert.equal(backoffDelay(policy, 5000, () => 0.5), 500, 'a huge attempt number does not overflow');
  for (let attempt = 1; attempt < 20; attempt++) {
    const d = backoffDelay(policy, attempt);
    assert.ok(d >= 20 && d <= 1000, `attempt ${attempt}: ${d}`);
  }
});

test('the package index gives every upstream DEFAULT_* with the upstream value in its one defaults object', async () => {
  const api = (await import('../../src/index.js')) as unknown as Record<string, unknown> & { defaults: { upstream: Record<string, unknown> } };
  const names = Object.keys(defaults).filter((n) => n.startsWith('DEFAULT_'));
  assert.ok(names.length >= 28, `${names.length} constants`);
  for (const name of names) assert.equal(api.defaults.upstream[name], (defaults as Record<string, unknown>)[name], name);
  assert.ok(Object.isFrozen(api.defaults) && Object.isFrozen(api.defaults.upstream), 'defaults cannot be changed by a user');
  assert.equal(typeof api.ResilientWebSocket, 'function');
  assert.equal(typeof api.NetWatcher, 'function');
});
