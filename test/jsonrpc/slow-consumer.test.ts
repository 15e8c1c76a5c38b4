/**
 * Notifications go through each session's queue and slow-consumer policy.
 * Under `conflate` the key is the local subscription: a stalled worker holding
 * two ids on one node subscription ends up with the newest head for EACH id
 * (they never conflate into each other), and delivered + dropped = sent.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { eventually, sleep, startTestHub, type TestHub, type Worker, connectionStats, upstreamOf } from '../hub/helpers.js';
import { NodeServer } from './fixtures/node-server.js';
import { answer, nodeUpstream, notificationsFor, rpc, rpcWorker } from './helpers.js';

const N = 2000;
const PAD = 'ab'.repeat(250);
const workers: Worker[] = [];
let hub: TestHub | undefined;
let node: NodeServer | undefined;
after(async () => {
  for (const w of workers) w.kill('SIGKILL');
  await hub?.close();
  await node?.close();
});

test(`jsonrpc slow consumer (conflate): ${N} heads — the healthy worker gets all, the stalled one the newest per local id`, async () => {
  node = new NodeServer();
  await node.ready();
  hub = await startTestHub({ node: nodeUpstream(node.url, { slowConsumer: 'conflate', maxQueueBytes: 32 * 1024 }) });
  await eventually(() => upstreamOf(hub!.hub, 'node').client.state === 'open', 'the hub to connect to the node');
  const stalled = rpcWorker(hub.url('node'));
  workers.push(stalled);
  await stalled.opened();
  const stalledId = await eventually(() => hub!.hub.stats().connections[0]?.id, 'the stalled connection');
  const healthy = rpcWorker(hub.url('node'));
  workers.push(healthy);
  await healthy.opened();

  stalled.send(rpc('eth_subscribe', ['newHeads'], 1));
  stalled.send(rpc('eth_subscribe', ['newHeads'], 2));
  healthy.send(rpc('eth_subscribe', ['newHeads'], 1));
  const [s1, s2, h1] = [(await answer(stalled, 1)).result as string, (await answer(stalled, 2)).result as string, (await answer(healthy, 1)).result as string];
  stalled.command('pause');
  await stalled.waitFor('paused');

  for (let i = 0; i < N; i++) {
    node.emitHead(PAD);
    if (i % 50 === 49) await sleep(2);
  }
  const lastHead = `0x${node.head.toString(16)}`;
  await eventually(() => notificationsFor(healthy, h1).length === N, `all ${N} heads at the healthy worker`, 30_000);
  const dropped = (): Record<string, number> => (connectionStats(hub!.hub, stalledId)?.dropped ?? {});
  await eventually(() => (dropped().ERR_DROP_CONFLATED ?? 0) > 0, 'conflation at the stalled worker');

  stalled.command('resume');
  const total = (): number => Object.values(dropped()).reduce((a, b) => a + b, 0);
  await eventually(() => notificationsFor(stalled, s1).length + notificationsFor(stalled, s2).length + total() === 2 * N, 'delivered + dropped = sent', 30_000);
  const newest = (local: string): string | undefined => (notificationsFor(stalled, local).at(-1)?.params as { result: { number: string } } | undefined)?.result.number;
  assert.equal(newest(s1), lastHead, 'the first id got the newest head');
  assert.equal(newest(s2), lastHead, 'the second id got the newest head too: ids never conflate into each other');
  assert.ok(Object.keys(dropped()).every((r) => r === 'ERR_DROP_CONFLATED' || r === 'ERR_DROP_OLDEST'), JSON.stringify(dropped()));
  assert.equal(notificationsFor(healthy, h1).length, N);
});
