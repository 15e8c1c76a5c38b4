/**
 * Options of the jsonrpc adapter: defaults exported, unknown keys and bad
 * values refused with ERR_INVALID_OPTION naming the key (also from the config
 * file), so a typo never silently means "no limit".
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defaults } from '../../src/index.js';
import { JsonRpcAdapter } from '../../src/adapters/jsonrpc.js';
import type { AdapterHost } from '../../src/adapters/types.js';
import { resolveConfig } from '../../src/hub/config.js';
import { isWshubError } from '../../src/errors.js';

// Option validation happens before the adapter touches its context: only the name is read.
const ctx = { upstream: 'node' } as AdapterHost;

test('jsonrpc options: defaults are exported and safe', () => {
  assert.equal(defaults.jsonrpc.requestTimeoutMs, 30_000);
  assert.equal(defaults.jsonrpc.maxInFlight, 1024);
  assert.equal(defaults.jsonrpc.maxSubscriptions, 1024);
  const adapter = new JsonRpcAdapter(ctx);
  assert.deepEqual(adapter.snapshot(), { upstreamSubscriptions: 0, localSubscriptions: 0, inFlight: 0, upstreamSubscribes: 0, upstreamUnsubscribes: 0, notifications: 0, notificationDeliveries: 0, errors: {} });
});

test('jsonrpc options: an unknown key or a bad value is refused with the key\'s path', () => {
  assert.throws(() => new JsonRpcAdapter(ctx, { maxInFlite: 3 } as never), (err) => isWshubError(err, 'ERR_INVALID_OPTION') && /upstreams\.node\.maxInFlite: unknown key \(did you mean "maxInFlight"\?\)/.test(err.message));
  assert.throws(() => new JsonRpcAdapter(ctx, { maxSubscriptions: 0 }), (err) => isWshubError(err, 'ERR_INVALID_OPTION') && err.message.startsWith('upstreams.node.maxSubscriptions:'));
  assert.throws(() => new JsonRpcAdapter(ctx, { requestTimeoutMs: 1.5 }), (err) => isWshubError(err, 'ERR_INVALID_OPTION') && err.message.startsWith('upstreams.node.requestTimeoutMs:'));
  assert.throws(
    () => resolveConfig({ listen: '/tmp/x.sock', upstreams: { node: { url: 'ws://127.0.0.1:1/', adapter: 'jsonrpc', maxInFlight: -1 } } }),
    (err) => isWshubError(err, 'ERR_INVALID_OPTION') && err.message.includes('maxInFlight'),
  );
});
