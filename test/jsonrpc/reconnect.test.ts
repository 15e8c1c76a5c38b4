/**
 * The node dies and comes back (same port, NEW subscription ids): workers keep
 * their local subscription ids and notifications resume; requests written
 * before the drop get the documented "upstream connection lost" error;
 * requests and subscribes made during the outage complete after the
 * reconnect; a request the node never answers gets "request timed out".
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import type { HubUpstreamStats } from '../../src/hub/hub.js';
import { eventually, sleep, startTestHub, type TestHub, type Worker, upstreamOf } from '../hub/helpers.js';
import type { JsonRpcAdapterStats } from '../../src/adapters/jsonrpc.js';
import { NodeServer } from './fixtures/node-server.js';
import { answer, answersTo, awaitNotifications, nodeUpstream, notificationsFor, rpc, rpcWorker } from './helpers.js';

const REQUEST_TIMEOUT_MS = 4000;
const workers: Worker[] = [];
let hub: TestHub | undefined;
let node: NodeServer | undefined;
after(async () => {
  for (const w of workers) w.kill('SIGKILL');
  await hub?.close();
  await node?.close();
});

/** The node upstream's figures, from the hub's public stats snapshot. */
function upstream(): HubUpstreamStats {
  return upstreamOf(hub!.hub, 'node');
}

test('jsonrpc: after the node restarts, local ids are unchanged and notifications resume; in-flight requests get "upstream connection lost"', async () => {
  node = new NodeServer();
  await node.ready();
  hub = await startTestHub({ node: nodeUpstream(node.url, { requestTimeoutMs: REQUEST_TIMEOUT_MS }) });
  await eventually(() => upstream().client.state === 'open', 'the hub to connect to the node');
  for (let i = 0; i < 3; i++) workers.push(rpcWorker(hub.url('node')));
  await Promise.all(workers.map((w) => w.opened()));
  const [a, b, c] = workers as [Worker, Worker, Worker];

  a.send(rpc('eth_subscribe', ['newHeads'], 1));
  a.send(rpc('eth_subscribe', ['newHeads'], 2));
  b.send(rpc('eth_subscribe', ['newHeads'], 1));
  c.send(rpc('eth_subscribe', ['logs', { address: '0xaa' }], 1));
  const locals = {
    a1: (await answer(a, 1)).result as string,
    a2: (await answer(a, 2)).result as string,
    b1: (await answer(b, 1)).result as string,
    c1: (await answer(c, 1)).result as string,
  };
  const firstNodeIds = [...node.subs.keys()].sort();
  assert.equal(firstNodeIds.length, 2);
  node.emitHead();
  node.emitLog('0xaa', []);
  await awaitNotifications(a, locals.a1, 1, 'a1 before the restart');
  await awaitNotifications(c, locals.c1, 1, 'c1 before the restart');

  // Requests the node will never answer, written while it is up: lost with the connection.
  a.send(rpc('test_hang', [], 'lost-1'));
  b.send(rpc('test_hang', [], 7));
  b.send(JSON.stringify([JSON.parse(rpc('test_hang', [], 8)), JSON.parse(rpc('eth_blockNumber', [], 9))]));
  await eventually(() => (node!.requests.get('test_hang') ?? 0) === 3 && (node!.requests.get('eth_blockNumber') ?? 0) === 1, 'the node to have the requests');
  const port = node.port;
  await node.close();
  await eventually(() => upstream().client.state !== 'open', 'the hub to see the node go');

  for (const [w, id] of [[a, 'lost-1'], [b, 7]] as const) {
    const lost = await answer(w, id, `the lost answer to ${JSON.stringify(id)}`);
    assert.deepEqual(lost.error, { code: -32000, message: 'upstream connection lost', data: { code: 'ERR_UPSTREAM_UNAVAILABLE', upstream: 'node' } });
  }
  const batch = await eventually(() => b.events.filter((e) => e.ev === 'message' && typeof e.text === 'string' && (e.text).startsWith('[')).map((e) => JSON.parse(e.text as string) as Array<{ id: number; error?: { code: number }; result?: string }>)[0], 'the batch answer');
  assert.equal(batch.length, 2);
  const byId = new Map(batch.map((m) => [m.id, m]));
  assert.equal(byId.get(8)?.error?.code, -32000, 'the lost member is answered with the error');
  assert.match(String(byId.get(9)?.result), /^0x/, 'the answered member keeps its answer');
  assert.equal(answersTo(b, 8).length + answersTo(b, 9).length, 0, 'batch members only arrive inside the batch');

  // During the outage: a request (queued, sent on reconnect) and a new subscribe (completes after the reconnect).
  c.send(rpc('eth_blockNumber', [], 'during'));
  c.send(rpc('eth_subscribe', ['newHeads'], 2));
  await sleep(200);
  assert.equal(answersTo(c, 'during').length, 0);
  assert.equal(answersTo(c, 2).length, 0);

  node = new NodeServer({ port });
  await node.ready();
  await eventually(() => upstream().client.state === 'open', 'the reconnect', 15_000);
  await eventually(() => node!.count(node!.subscribes, 'newHeads') === 1 && node!.count(node!.subscribes, 'logs{"address":"0xaa"}') === 1, 'every subscription made again, once');
  assert.match((await answer(c, 'during')).result as string, /^0x/, 'the outage request answered after the reconnect');
  const c2 = (await answer(c, 2)).result as string;
  assert.match(c2, /^0x[0-9a-f]{32}$/, 'the outage subscribe answered after the reconnect');
  const secondNodeIds = [...node.subs.keys()].sort();
  assert.equal(secondNodeIds.filter((id) => firstNodeIds.includes(id)).length, 0, 'the restarted node gave new ids');

  node.emitHead();
  node.emitLog('0xaa', []);
  await awaitNotifications(a, locals.a1, 2, 'a1 after the restart');
  await awaitNotifications(a, locals.a2, 2, 'a2 after the restart');
  await awaitNotifications(b, locals.b1, 2, 'b1 after the restart');
  await awaitNotifications(c, locals.c1, 2, 'c1 after the restart');
  await awaitNotifications(c, c2, 1, 'the subscription made during the outage');
  for (const w of workers) assert.equal(w.events.filter((e) => e.ev === 'close').length, 0, 'no worker saw a close');

  const stats = upstream().adapterStats as unknown as JsonRpcAdapterStats;
  assert.equal(stats.errors.upstreamLost, 3);
  assert.equal(stats.upstreamSubscriptions, 2);
  assert.equal(stats.localSubscriptions, 5);
  assert.equal(upstream().sessionErrors.ERR_UPSTREAM_UNAVAILABLE, 3);

  // The ids stay unsubscribable after the restart, and the node's new subscription is the one ended.
  for (const [w, local, id] of [[a, locals.a1, 'u1'], [a, locals.a2, 'u2'], [b, locals.b1, 'u3'], [c, c2, 'u4']] as const) {
    w.send(rpc('eth_unsubscribe', [local], id));
    assert.equal((await answer(w, id)).result, true);
  }
  await eventually(() => node!.count(node!.unsubscribes, 'newHeads') === 1, 'newHeads ended on the new node');
  assert.equal(notificationsFor(a, locals.a1).length, 2);
});

test('jsonrpc: a request the node never answers gets "request timed out" after requestTimeoutMs, and only its asker does', async () => {
  assert.ok(hub && node);
  const [a, b] = workers as [Worker, Worker];
  const sent = Date.now();
  a.send(rpc('test_hang', [], 'slow'));
  b.send(rpc('eth_blockNumber', [], 'quick'));
  await answer(b, 'quick');
  const timedOut = await answer(a, 'slow', 'the timeout answer', REQUEST_TIMEOUT_MS + 5000);
  const waited = Date.now() - sent;
  assert.deepEqual(timedOut.error, { code: -32002, message: 'request timed out', data: { code: 'ERR_REQUEST_TIMEOUT', timeoutMs: REQUEST_TIMEOUT_MS } });
  assert.ok(waited >= REQUEST_TIMEOUT_MS - 50, `not before the timeout (${waited} ms)`);
  assert.equal(answersTo(b, 'slow').length, 0);
  const stats = upstream().adapterStats as unknown as JsonRpcAdapterStats;
  assert.equal(stats.errors.timeout, 1);
  assert.equal(stats.inFlight, 0);
  assert.equal(upstream().sessionErrors.ERR_REQUEST_TIMEOUT, 1);
});

test('jsonrpc: an upstream closed for good answers every waiting request "upstream closed" before the session is closed', async () => {
  const fatalNode = new NodeServer();
  await fatalNode.ready();
  const fatalHub = await startTestHub({ node: nodeUpstream(fatalNode.url, { fatalCloseCodes: [4001] }) });
  try {
    await eventually(() => upstreamOf(fatalHub.hub, 'node').client.state === 'open', 'the hub to connect to the node');
    const w = rpcWorker(fatalHub.url('node'));
    workers.push(w);
    await w.opened();
    fatalNode.holdSubscribes = true;
    w.send(rpc('test_hang', [], 'h'));
    w.send(rpc('eth_subscribe', ['newHeads'], 's'));
    await eventually(() => fatalNode.requests.get('test_hang') === 1 && fatalNode.requests.get('eth_subscribe') === 1, 'both at the node');
    fatalNode.closeClients(4001, 'key revoked');
    for (const id of ['h', 's']) {
      const closed = await answer(w, id, `the answer to ${id}`);
      assert.deepEqual(closed.error, { code: -32000, message: 'upstream closed', data: { code: 'ERR_UPSTREAM_UNAVAILABLE', upstream: 'node' } });
    }
    const close = await w.waitFor('close');
    assert.equal(close.code, 1011);
    const stats = (upstreamOf(fatalHub.hub, 'node').adapterStats as unknown as JsonRpcAdapterStats);
    assert.equal(stats.inFlight, 0);
    assert.equal(stats.errors.upstreamLost, 2);
  } finally {
    await fatalHub.close();
    await fatalNode.close();
  }
});
