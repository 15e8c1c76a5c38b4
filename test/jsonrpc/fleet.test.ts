/**
 * Eight forked workers share one node connection through the jsonrpc adapter,
 * each using the same request ids (1, 2, 3 as numbers and as strings): every
 * answer reaches its asker with its own id and type, subscriptions are
 * deduplicated at the node, notifications carry each worker's own local id,
 * a foreign unsubscribe is refused, the last unsubscribe (or a SIGKILLed
 * worker) ends the node's subscription exactly once.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { eventually, sleep, startTestHub, type TestHub, type Worker, upstreamOf } from '../hub/helpers.js';
import type { JsonRpcAdapterStats } from '../../src/adapters/jsonrpc.js';
import { NodeServer } from './fixtures/node-server.js';
import { answer, answersTo, awaitNotifications, nodeUpstream, notificationsFor, received, rpc, rpcWorker, texts, type Json, type RpcMessage } from './helpers.js';

const workers: Worker[] = [];
let hub: TestHub | undefined;
let node: NodeServer | undefined;
after(async () => {
  for (const w of workers) w.kill('SIGKILL');
  await hub?.close();
  await node?.close();
});

const ADDRESS_A = '0x00000000000000000000000000000000000000aa';
const ADDRESS_B = '0x00000000000000000000000000000000000000bb';
const TOPIC_T = '0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef';
/** Local subscription ids by worker index: newHeads (worker 0 has two), logs. */
const heads: Array<Array<string>> = [];
const logs: string[] = [];

/** The adapter's figures, as /status shows them. */
function adapter(): { snapshot(): JsonRpcAdapterStats } {
  return { snapshot: () => upstreamOf(hub!.hub, 'node').adapterStats as unknown as JsonRpcAdapterStats };
}

test('jsonrpc: 8 workers with colliding ids each get exactly their own answers, ids and types kept', async () => {
  node = new NodeServer();
  await node.ready();
  hub = await startTestHub({ node: nodeUpstream(node.url) });
  await eventually(() => upstreamOf(hub!.hub, 'node').client.state === 'open', 'the hub to connect to the node');
  for (let i = 0; i < 8; i++) workers.push(rpcWorker(hub.url('node')));
  await Promise.all(workers.map((w) => w.opened()));

  const ids = [1, 2, 3, '1', '2', '3'];
  workers.forEach((w, i) => {
    for (const id of ids) w.send(rpc('eth_call', [{ worker: i, asked: id }, 'latest'], id));
    w.send(rpc('eth_blockNumber', [], 'bn'));
  });
  for (const [i, w] of workers.entries()) {
    for (const id of ids) {
      const a = await answer(w, id, `worker ${i}'s answer to ${JSON.stringify(id)}`);
      const result = a.result as { echo: Array<{ worker: number; asked: number | string }>; id: number };
      assert.deepEqual(result.echo[0], { worker: i, asked: id }, `worker ${i} got the answer to its own request ${JSON.stringify(id)}`);
      assert.equal(typeof result.id, 'number', 'the node saw a hub id, not the worker\'s');
      assert.equal(a.jsonrpc, '2.0');
    }
    await answer(w, 'bn');
  }
  await sleep(100);
  for (const [i, w] of workers.entries()) {
    assert.equal(texts(w).length, ids.length + 1, `worker ${i} got exactly one answer per request, nothing else`);
    for (const id of ids) assert.equal(answersTo(w, id).length, 1);
  }
  assert.equal(node.callIds.length, 48);
  assert.equal(new Set(node.callIds).size, 48, 'every request reached the node with a distinct id');
  assert.equal(adapter().snapshot().inFlight, 0);
});

test('jsonrpc: a burst of 100 requests from each worker — 800 answers, each exactly once and to its asker', async () => {
  assert.ok(hub && node);
  const before = workers.map((w) => texts(w).length);
  const burstId = (k: number): number | string => (k % 2 ? 1000 + k : `b${k}`);
  workers.forEach((w, i) => {
    for (let k = 0; k < 100; k++) w.send(rpc('eth_call', [{ worker: i, k }], burstId(k)));
  });
  for (const [i, w] of workers.entries()) {
    await eventually(() => texts(w).length - before[i]! >= 100, `worker ${i}'s 100 answers`, 20_000);
  }
  await sleep(100);
  for (const [i, w] of workers.entries()) {
    assert.equal(texts(w).length - before[i]!, 100, `worker ${i}: exactly 100 new frames`);
    for (let k = 0; k < 100; k++) {
      const got = answersTo(w, burstId(k));
      assert.equal(got.length, 1, `worker ${i} request ${k}`);
      assert.deepEqual((got[0]!.result as { echo: unknown[] }).echo[0], { worker: i, k });
    }
  }
  assert.equal(new Set(node.callIds).size, 48 + 800);
  assert.equal(adapter().snapshot().inFlight, 0);
});

test('jsonrpc: subscriptions are deduplicated at the node; each call gets its own local id', async () => {
  assert.ok(hub && node);
  workers.forEach((w, i) => {
    w.send(rpc('eth_subscribe', ['newHeads'], 10));
    // The same filter with its keys in either order is one upstream subscription.
    const filter: Json = i < 4 ? (i % 2 ? { topics: [TOPIC_T], address: ADDRESS_A } : { address: ADDRESS_A, topics: [TOPIC_T] }) : { address: ADDRESS_B };
    w.send(rpc('eth_subscribe', ['logs', filter], '11'));
  });
  workers[0]!.send(rpc('eth_subscribe', ['newHeads'], 12));
  for (const [i, w] of workers.entries()) {
    const h = await answer(w, 10);
    const l = await answer(w, '11');
    assert.match(h.result as string, /^0x[0-9a-f]{32}$/, 'a local id looks like a node\'s');
    heads[i] = [h.result as string];
    logs[i] = l.result as string;
  }
  heads[0]!.push((await answer(workers[0]!, 12)).result as string);
  const all = [...heads.flat(), ...logs];
  assert.equal(new Set(all).size, 17, 'every subscribe call got its own local id');
  assert.equal(node.count(node.subscribes, 'newHeads'), 1, 'one upstream newHeads subscription for 9 calls');
  assert.equal(node.count(node.subscribes, `logs${JSON.stringify({ address: ADDRESS_A, topics: [TOPIC_T] })}`), 1);
  assert.equal(node.count(node.subscribes, `logs${JSON.stringify({ address: ADDRESS_B })}`), 1);
  assert.equal(node.requests.get('eth_subscribe'), 3, 'two different logs filters → two subscriptions, nothing more');
  const s = adapter().snapshot();
  assert.equal(s.upstreamSubscriptions, 3);
  assert.equal(s.localSubscriptions, 17);
});

test('jsonrpc: notifications reach every subscriber with its own local id, the rest of the bytes untouched', async () => {
  assert.ok(hub && node);
  for (let k = 0; k < 5; k++) assert.equal(node.emitHead(), 1, 'the node has one newHeads subscription to notify');
  assert.equal(node.emitLog(ADDRESS_A, [TOPIC_T]), 1);
  assert.equal(node.emitLog(ADDRESS_B, []), 1);
  for (const [i, w] of workers.entries()) {
    for (const local of heads[i]!) {
      const got = await awaitNotifications(w, local, 5, `5 heads for worker ${i} (${local})`);
      const decoy = (got[0]!.params as { result: { subscription: string } }).result.subscription;
      assert.ok(decoy.startsWith('0x') && decoy !== local, 'the node\'s id inside the result is left as it is');
    }
    await awaitNotifications(w, logs[i]!, 1, `one log for worker ${i}`);
  }
  // Big integers in a notification arrive byte for byte (nothing was re-serialized).
  const raw = texts(workers[3]!).find((t) => t.includes('eth_subscription') && t.includes('difficulty'));
  assert.ok(raw?.includes('"difficulty":123456789012345678901234567890'), raw);
  assert.ok(texts(workers[5]!).some((t) => t.includes(`"params":{ "result":`) && t.endsWith(`"subscription" : "${logs[5]}" }}`)), 'spacing of the node\'s frame kept');
  assert.equal(notificationsFor(workers[0]!, heads[0]![0]!).length + notificationsFor(workers[0]!, heads[0]![1]!).length, 10, 'two subscriptions, two notifications per head');
  const s = adapter().snapshot();
  assert.equal(s.notifications, 7);
  assert.equal(s.notificationDeliveries, 9 * 5 + 8);
});

test('jsonrpc: unsubscribing someone else\'s id is refused as geth refuses it, and changes nothing', async () => {
  assert.ok(hub && node);
  workers[1]!.send(rpc('eth_unsubscribe', [heads[2]![0]!], 20));
  workers[1]!.send(rpc('eth_unsubscribe', ['0xdeadbeef'], 21));
  workers[1]!.send(rpc('shh_unsubscribe', [heads[1]![0]!], 22));
  for (const id of [20, 21, 22]) {
    const a = await answer(workers[1]!, id);
    assert.deepEqual(a.error, { code: -32000, message: 'subscription not found' });
    assert.equal(a.result, undefined);
  }
  node.emitHead();
  await awaitNotifications(workers[2]!, heads[2]![0]!, 6, 'worker 2 still subscribed');
  await awaitNotifications(workers[1]!, heads[1]![0]!, 6, 'worker 1 still subscribed');
  assert.equal(node.requests.get('eth_unsubscribe') ?? 0, 0);
  assert.equal(adapter().snapshot().errors.subscriptionNotFound, 3);
});

test('jsonrpc: the last unsubscribe ends the node subscription exactly once', async () => {
  assert.ok(hub && node);
  for (let i = 1; i < 8; i++) workers[i]!.send(rpc('eth_unsubscribe', [heads[i]![0]!], 30));
  for (let i = 1; i < 8; i++) assert.deepEqual((await answer(workers[i]!, 30)).result, true);
  workers[0]!.send(rpc('eth_unsubscribe', [heads[0]![0]!], 31));
  assert.equal((await answer(workers[0]!, 31)).result, true);
  await sleep(100);
  assert.equal(node.count(node.unsubscribes, 'newHeads'), 0, 'worker 0 still holds its second newHeads subscription');
  // An id already unsubscribed is unknown now.
  workers[0]!.send(rpc('eth_unsubscribe', [heads[0]![0]!], 32));
  assert.equal((await answer(workers[0]!, 32)).error?.code, -32000);
  workers[0]!.send(rpc('eth_unsubscribe', [heads[0]![1]!], 33));
  assert.equal((await answer(workers[0]!, 33)).result, true);
  await eventually(() => node!.count(node!.unsubscribes, 'newHeads') === 1, 'the node\'s newHeads subscription ended');
  node.emitHead();
  await sleep(200);
  assert.equal(node.count(node.unsubscribes, 'newHeads'), 1);
  for (const [i, w] of workers.entries()) {
    for (const local of heads[i]!) assert.ok(notificationsFor(w, local).length <= 6, 'no head after the unsubscribe');
  }
});

test('jsonrpc: SIGKILLed workers release their subscriptions; the last one out ends the node\'s', async () => {
  assert.ok(hub && node);
  const keyB = 'logs';
  for (const i of [4, 5, 6]) workers[i]!.kill('SIGKILL');
  await eventually(() => adapter().snapshot().localSubscriptions === 5, 'the dead workers\' local subscriptions released');
  assert.equal(node.count(node.unsubscribes, keyB), 0, 'worker 7 still holds logs B');
  workers[7]!.kill('SIGKILL');
  await eventually(() => node!.count(node!.unsubscribes, keyB) === 1, 'logs B ended at the node');
  assert.equal(node.emitLog(ADDRESS_B, []), 0);
  assert.equal(node.emitLog(ADDRESS_A, [TOPIC_T]), 1);
  for (const i of [0, 1, 2, 3]) await awaitNotifications(workers[i]!, logs[i]!, 2, `logs A still flowing to worker ${i}`);
  await sleep(100);
  assert.equal(node.count(node.unsubscribes, keyB), 1);
  const s = adapter().snapshot();
  assert.equal(s.upstreamSubscriptions, 1);
  assert.equal(s.localSubscriptions, 4);
  assert.equal(s.inFlight, 0);
  // Nothing a living worker received was anything but an answer or one of its own notifications.
  for (const i of [0, 1, 2, 3]) {
    const mine = new Set([...heads[i]!, logs[i]!]);
    for (const m of received(workers[i]!) as RpcMessage[]) {
      if (m.method) assert.ok(mine.has((m.params as { subscription: string }).subscription), 'only own subscriptions');
    }
  }
});
