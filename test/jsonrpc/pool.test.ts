/**
 * A JSON-RPC upstream as a pool of two nodes: the preferred one dies with
 * requests in flight — a read-only request is sent again to the other node
 * and answered, a transaction gets a JSON-RPC error (the hub cannot know
 * whether the dead node executed it) — and eth_subscribe subscriptions move
 * to the other node with their local ids unchanged. When the preferred node
 * is back, the hub moves back to it after a probe.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { eventually, runCleanup, startTestHub, upstreamOf, type Worker } from '../hub/helpers.js';
import { NodeServer } from './fixtures/node-server.js';
import { answer, awaitNotifications, nodeUpstream, notificationsFor, rpc, rpcWorker } from './helpers.js';

const cleanup: Array<() => unknown> = [];
after(() => runCleanup(cleanup));

test('jsonrpc pool: the preferred node dies mid-request → eth_call retried on the other node, eth_sendRawTransaction answered with an error; subscriptions keep their local ids; back on the preferred node after a probe', async () => {
  const a = new NodeServer();
  const b = new NodeServer();
  await Promise.all([a.ready(), b.ready()]);
  const portA = a.port;
  cleanup.push(() => b.close());
  const hub = await startTestHub({
    node: { ...nodeUpstream(a.url, { urls: [a.url, b.url], failoverAfter: 1, failbackProbeMs: 300 }), url: undefined },
  });
  cleanup.push(() => hub.close());
  await eventually(() => upstreamOf(hub.hub, 'node').client.state === 'open' && a.connections === 1, 'on the preferred node');

  const w: Worker = rpcWorker(hub.url('node'));
  cleanup.push(() => w.kill('SIGKILL'));
  await w.opened();
  w.send(rpc('eth_subscribe', ['newHeads'], 1));
  const local = (await answer(w, 1)).result as string;
  a.emitHead();
  await awaitNotifications(w, local, 1, 'a head from the preferred node');

  a.hang.add('eth_call');
  a.hang.add('eth_sendRawTransaction');
  w.send(rpc('eth_call', [{ to: '0x01' }, 'latest'], 'read'));
  w.send(rpc('eth_sendRawTransaction', ['0xf86b'], 'write'));
  await eventually(() => a.requests.get('eth_call') === 1 && a.requests.get('eth_sendRawTransaction') === 1, 'both requests at the preferred node');
  await a.close();

  const write = await answer(w, 'write', 'the transaction\'s answer');
  assert.equal(write.error?.message, 'upstream connection lost', 'not sent again: the dead node may have executed it');
  const read = await answer(w, 'read', 'the read\'s answer, from the other node', 15_000);
  assert.deepEqual((read.result as { echo: unknown }).echo, [{ to: '0x01' }, 'latest'], 'answered by the other node');
  assert.equal(b.requests.get('eth_call'), 1);
  assert.equal(b.requests.get('eth_sendRawTransaction'), undefined, 'the transaction never went to the other node');
  await eventually(() => b.subscribes.get('newHeads') === 1, 'the subscription made on the other node');
  b.emitHead();
  await awaitNotifications(w, local, 2, 'a head from the other node, under the same local id');
  const pool = upstreamOf(hub.hub, 'node').pool;
  assert.equal(pool.failovers, 1);
  assert.match(pool.endpoint, new RegExp(`:${b.port}/`));

  // The preferred node is back: a probe finds it, the hub subscribes there and only then leaves the other.
  const back = new NodeServer({ port: portA });
  await back.ready();
  cleanup.push(() => back.close());
  await eventually(() => upstreamOf(hub.hub, 'node').pool.failbacks === 1, 'moved back to the preferred node', 15_000);
  assert.equal(back.subscribes.get('newHeads'), 1, 'subscribed on the preferred node before the switch');
  const before = notificationsFor(w, local).length;
  back.emitHead();
  await awaitNotifications(w, local, before + 1, 'a head from the preferred node again, same local id');
  await eventually(() => [...b.wss.clients].length === 0, 'the other node left after the switch');
});
