/**
 * Subscription corner cases, made deterministic by holding the node's
 * subscribe answers: a refusal reaches every waiting asker with its own id;
 * askers joining while the subscribe is in flight share it; an asker that
 * leaves before the answer leaves no subscription behind at the node; a
 * group (`?group=`) gets each notification once.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { eventually, sleep, startTestHub, type TestHub, type Worker, upstreamOf } from '../hub/helpers.js';
import type { JsonRpcAdapterStats } from '../../src/adapters/jsonrpc.js';
import { NodeServer } from './fixtures/node-server.js';
import { answer, answersTo, awaitNotifications, nodeUpstream, notificationsFor, rpc, rpcWorker } from './helpers.js';

const workers: Worker[] = [];
let hub: TestHub | undefined;
let node: NodeServer | undefined;
after(async () => {
  for (const w of workers) w.kill('SIGKILL');
  await hub?.close();
  await node?.close();
});

async function attach(query?: string): Promise<Worker> {
  const w = rpcWorker(hub!.url('node', query));
  workers.push(w);
  await w.opened();
  return w;
}

function stats() {
  return (upstreamOf(hub!.hub, 'node').adapterStats as unknown as JsonRpcAdapterStats);
}

test('jsonrpc: a subscribe the node refuses is answered with the node\'s error, to each waiting asker with its own id', async () => {
  node = new NodeServer();
  await node.ready();
  hub = await startTestHub({ node: nodeUpstream(node.url) });
  await eventually(() => upstreamOf(hub!.hub, 'node').client.state === 'open', 'the hub to connect to the node');
  const [a, b] = [await attach(), await attach()];
  node.holdSubscribes = true;
  a.send(rpc('eth_subscribe', ['bogus'], 1));
  b.send(rpc('eth_subscribe', ['bogus'], 'one'));
  await eventually(() => node!.requests.get('eth_subscribe') === 1, 'the subscribe at the node');
  await sleep(100);
  assert.equal(node.releaseSubscribes(), 1, 'one upstream subscribe for both askers');
  node.holdSubscribes = false;
  for (const [w, id] of [[a, 1], [b, 'one']] as const) {
    const refused = await answer(w, id);
    assert.deepEqual(refused.error, { code: -32601, message: 'no "bogus" subscription in eth namespace' });
  }
  assert.equal(stats().upstreamSubscriptions, 0);
  assert.equal(stats().errors.subscribeRefused, 1);
  // Asking again asks the node again.
  a.send(rpc('eth_subscribe', ['bogus'], 2));
  assert.equal((await answer(a, 2)).error?.code, -32601);
  assert.equal(node.requests.get('eth_subscribe'), 2);
});

test('jsonrpc: askers joining while the subscribe is in flight share it; each gets its own id when it is answered', async () => {
  assert.ok(hub && node);
  const [a, b] = [await attach(), await attach()];
  node.holdSubscribes = true;
  a.send(rpc('eth_subscribe', ['logs', { address: '0xbeef' }], 1));
  await eventually(() => node!.count(node!.subscribes, 'logs{"address":"0xbeef"}') === 1, 'the subscribe at the node');
  b.send(rpc('eth_subscribe', ['logs', { address: '0xbeef' }], 1));
  await sleep(150);
  assert.equal(answersTo(a, 1).length + answersTo(b, 1).length, 0, 'nobody answered before the node');
  assert.equal(node.releaseSubscribes(), 1);
  node.holdSubscribes = false;
  const la = (await answer(a, 1)).result as string;
  const lb = (await answer(b, 1)).result as string;
  assert.notEqual(la, lb);
  assert.equal(node.count(node.subscribes, 'logs{"address":"0xbeef"}'), 1);
  node.emitLog('0xbeef', []);
  await awaitNotifications(a, la, 1, 'a\'s log');
  await awaitNotifications(b, lb, 1, 'b\'s log');
});

test('jsonrpc: an asker that leaves before the node answers leaves no subscription at the node', async () => {
  assert.ok(hub && node);
  const w = await attach();
  node.holdSubscribes = true;
  w.send(rpc('eth_subscribe', ['logs', { address: '0xdead' }], 1));
  await eventually(() => node!.count(node!.subscribes, 'logs{"address":"0xdead"}') === 1, 'the subscribe at the node');
  const before = stats().upstreamSubscriptions;
  w.kill('SIGKILL');
  await eventually(() => upstreamOf(hub!.hub, 'node').sessions === 4, 'the hub to see the worker go');
  assert.equal(node.releaseSubscribes(), 1);
  node.holdSubscribes = false;
  await eventually(() => node!.count(node!.unsubscribes, 'logs') === 1, 'the late subscription ended at the node');
  assert.equal(stats().upstreamSubscriptions, before - 1);
  assert.equal(node.emitLog('0xdead', []), 0);
});

test('jsonrpc: a group gets each notification once; a solo subscriber gets all of them', async () => {
  assert.ok(hub && node);
  const solo = await attach();
  const g1 = await attach('group=g');
  const g2 = await attach('group=g');
  const locals = new Map<Worker, string>();
  for (const w of [solo, g1, g2]) {
    w.send(rpc('eth_subscribe', ['newHeads'], 'h'));
    locals.set(w, (await answer(w, 'h')).result as string);
  }
  assert.equal(node.count(node.subscribes, 'newHeads'), 1);
  for (let i = 0; i < 10; i++) node.emitHead();
  await awaitNotifications(solo, locals.get(solo)!, 10, 'every head at the solo worker');
  await eventually(() => notificationsFor(g1, locals.get(g1)!).length + notificationsFor(g2, locals.get(g2)!).length === 10, 'ten heads across the group');
  await sleep(100);
  const [n1, n2] = [notificationsFor(g1, locals.get(g1)!).length, notificationsFor(g2, locals.get(g2)!).length];
  assert.equal(n1 + n2, 10, 'each head once per group');
  assert.ok(n1 > 0 && n2 > 0, `idle members share the work (${n1}/${n2})`);
});
