/**
 * The interface watcher runs its listeners from a timer: a listener that
 * throws is contained and counted, and the other listeners still hear about
 * the change.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NetWatcher } from '../../src/upstream/netwatch.js';

test('a throwing netwatch listener is contained and counted; the others still run', () => {
  const watcher = new NetWatcher(60_000);
  const heard: string[] = [];
  const offA = watcher.subscribe(() => {
    throw new Error('listener bug');
  });
  const offB = watcher.subscribe((c) => heard.push(c.address));
  watcher.emit('change', { type: 'removed', address: '192.0.2.1', family: 'IPv4', iface: 'x', at: Date.now() });
  assert.deepEqual(heard, ['192.0.2.1']);
  assert.equal(watcher.listenerErrors, 1);
  assert.equal((watcher.lastListenerError as Error).message, 'listener bug');
  offA();
  offB();
});
