/**
 * What workers send that is not a plain request: batches (one array back with
 * exactly the members' answers), notifications (forwarded, never answered),
 * malformed JSON and non-requests (answered -32700 / -32600 to that worker
 * only, which stays attached), odd ids kept byte for byte, and the per-session
 * limits on requests in flight and subscriptions.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { eventually, sleep, startTestHub, type TestHub, type Worker, upstreamOf } from '../hub/helpers.js';
import type { JsonRpcAdapterStats } from '../../src/adapters/jsonrpc.js';
import { NodeServer } from './fixtures/node-server.js';
import { answer, answersTo, nodeUpstream, received, rpc, rpcWorker, texts, type RpcMessage } from './helpers.js';

const workers: Worker[] = [];
let hub: TestHub | undefined;
let node: NodeServer | undefined;
after(async () => {
  for (const w of workers) w.kill('SIGKILL');
  await hub?.close();
  await node?.close();
});

async function attach(): Promise<Worker> {
  const w = rpcWorker(hub!.url('node'));
  workers.push(w);
  await w.opened();
  return w;
}

/** The adapter's figures, as /status shows them. */
function adapter(): { snapshot(): JsonRpcAdapterStats } {
  return { snapshot: () => upstreamOf(hub!.hub, 'node').adapterStats as unknown as JsonRpcAdapterStats };
}

test('jsonrpc: a batch gets one array with exactly its members\' answers', async () => {
  node = new NodeServer();
  await node.ready();
  hub = await startTestHub({ node: nodeUpstream(node.url, { maxInFlight: 4, maxSubscriptions: 2 }) });
  await eventually(() => upstreamOf(hub!.hub, 'node').client.state === 'open', 'the hub to connect to the node');
  const w = await attach();
  const other = await attach();
  other.send(rpc('eth_call', [{ other: true }], 1));

  w.send(`[
    ${rpc('eth_call', [{ n: 1 }], 1)},
    ${rpc('eth_call', [{ n: 2 }], '1')},
    ${rpc('eth_chainNotify', ['hello'])},
    ${rpc('eth_subscribe', ['newHeads'], 2)},
    5,
    ${rpc('eth_unsubscribe', ['0x1234'], 3)},
    ${rpc('no_such_method', [], null)}
  ]`);
  const batch = await eventually(() => received(w).find((m): m is RpcMessage[] => Array.isArray(m)), 'the batch answer');
  assert.equal(batch.length, 6, 'six members expect an answer (the notification does not)');
  const find = (id: unknown): RpcMessage[] => batch.filter((m) => m.id === id);
  assert.deepEqual((find(1)[0]!.result as { echo: unknown }).echo, [{ n: 1 }]);
  assert.deepEqual((find('1')[0]!.result as { echo: unknown }).echo, [{ n: 2 }]);
  assert.match(find(2)[0]!.result as string, /^0x[0-9a-f]{32}$/);
  assert.deepEqual(find(3)[0]!.error, { code: -32000, message: 'subscription not found' });
  const nulls = find(null);
  assert.equal(nulls.length, 2, 'the invalid member and the id:null request');
  assert.ok(nulls.some((m) => m.error?.code === -32600), 'the invalid member: -32600');
  assert.ok(nulls.some((m) => m.error?.code === -32601), 'the id:null request answered by the node, id null kept');
  await sleep(100);
  assert.equal(texts(w).length, 1, 'nothing but the one array');
  assert.equal(node.requests.get('eth_chainNotify'), 1, 'the notification member reached the node');
  assert.equal((await answer(other, 1)).id, 1);
  assert.equal(texts(other).length, 1, 'the other worker got only its own answer');
  w.send(rpc('eth_unsubscribe', [find(2)[0]!.result as string], 'cleanup'));
  assert.equal((await answer(w, 'cleanup')).result, true);
});

test('jsonrpc: a batch of notifications gets no answer; an empty batch gets one -32600', async () => {
  const w = await attach();
  w.send(`[${rpc('eth_chainNotify', [1])},${rpc('eth_chainNotify', [2])}]`);
  w.send(rpc('eth_blockNumber', [], 'after'));
  await answer(w, 'after');
  assert.equal(texts(w).length, 1, 'the answer to "after" is the first and only frame');
  w.send('[]');
  const empty = await eventually(() => received(w)[1], 'the empty batch answer');
  assert.ok(!Array.isArray(empty));
  assert.equal(empty.id, null);
  assert.equal(empty.error?.code, -32600);
  assert.equal(empty.error?.data?.code, 'ERR_BAD_MESSAGE');
  await eventually(() => node!.requests.get('eth_chainNotify') === 3, 'the notifications at the node');
});

test('jsonrpc: malformed input is answered -32700/-32600 to its sender only; everyone keeps working', async () => {
  const bad = await attach();
  const good = await attach();
  const before = upstreamOf(hub!.hub, 'node').sessionErrors.ERR_BAD_MESSAGE ?? 0;
  const cases: Array<[string, number, unknown]> = [
    ['{"jsonrpc":"2.0","method":"eth_call",', -32700, null],
    ['not json at all', -32700, null],
    ['{"foo":1}', -32600, null],
    ['{"jsonrpc":"2.0","method":"eth_call","id":{"x":1}}', -32600, null],
    ['{"jsonrpc":"1.0","method":"eth_call","id":7}', -32600, 7],
    ['{"jsonrpc":"2.0","method":42,"id":"m"}', -32600, 'm'],
    ['{"jsonrpc":"2.0","method":"eth_call","params":"x","id":8}', -32600, 8],
    ['"just a string"', -32600, null],
  ];
  for (const [text, code, id] of cases) {
    const n = texts(bad).length;
    bad.send(text);
    good.send(rpc('eth_blockNumber', [], `g${n}`));
    const reply = await eventually(() => received(bad)[n], `the answer to ${text}`);
    assert.ok(!Array.isArray(reply));
    assert.equal(reply.error?.code, code, text);
    assert.equal(reply.id, id, `id of the answer to ${text}`);
    assert.equal(reply.error?.data?.code, 'ERR_BAD_MESSAGE');
    await answer(good, `g${n}`);
  }
  bad.send(rpc('eth_blockNumber', [], 'still-here'));
  assert.match((await answer(bad, 'still-here')).result as string, /^0x/, 'the sender stays attached and served');
  assert.equal(texts(good).length, cases.length, 'the good worker got only its own answers');
  assert.equal(bad.events.filter((e) => e.ev === 'close').length, 0);
  assert.equal((upstreamOf(hub!.hub, 'node').sessionErrors.ERR_BAD_MESSAGE ?? 0) - before, cases.length);
  const errors = adapter().snapshot().errors;
  assert.equal(errors.parse, 2);
});

test('jsonrpc: ids and results keep their exact bytes (1.0, escapes, big integers)', async () => {
  const w = await attach();
  w.send('{"jsonrpc":"2.0","method":"test_big","id":1.0}');
  w.send('{"jsonrpc":"2.0","method":"test_big","id":"\\u0031"}');
  w.send('{"jsonrpc":"2.0","method":"test_big","id":-0.5e3}');
  await eventually(() => texts(w).length === 3, 'three answers');
  const all = texts(w).join('\n');
  for (const id of ['1.0', '"\\u0031"', '-0.5e3']) assert.ok(all.includes(`"id":${id},`), `id ${id} came back as written: ${all}`);
  assert.equal(texts(w).filter((t) => t.includes('"result":{"big":123456789012345678901234567890,"float":1.0,"text":"caf\\u00e9"}')).length, 3);
});

test('jsonrpc: node frames that are not answers reach every session; a node batch answer is routed member by member', async () => {
  const [a, b] = [await attach(), await attach()];
  a.send(rpc('test_batchReply', [], 'br'));
  const routed = await answer(a, 'br');
  assert.equal(routed.result, 'in-array');
  assert.equal(answersTo(b, 'br').length, 0);
  const notice = '{"jsonrpc":"2.0","method":"node_notice","params":{"text":"maintenance"}}';
  node!.sendRaw(notice);
  node!.sendRaw('not json');
  for (const w of [a, b]) await eventually(() => texts(w).includes(notice) && texts(w).includes('not json'), 'the node\'s notice and garbage at every session');
});

test('jsonrpc: maxInFlight and maxSubscriptions refuse the excess with -32005 and a stable code', async () => {
  const w = await attach();
  for (let i = 1; i <= 6; i++) w.send(rpc('test_hang', [], i));
  for (const id of [5, 6]) {
    const a = await answer(w, id);
    assert.equal(a.error?.code, -32005);
    assert.equal(a.error?.data?.code, 'ERR_TOO_MANY_REQUESTS');
    assert.equal(a.error?.data?.limit, 4);
  }
  await eventually(() => node!.requests.get('test_hang') === 4, 'four requests at the node');
  assert.equal([1, 2, 3, 4].reduce((n, id) => n + answersTo(w, id).length, 0), 0, 'the four in flight wait');

  const s = await attach();
  s.send(rpc('eth_subscribe', ['newHeads'], 'h1'));
  s.send(rpc('eth_subscribe', ['logs', { address: '0x1' }], 'l1'));
  await answer(s, 'h1');
  await answer(s, 'l1');
  s.send(rpc('eth_subscribe', ['newHeads'], 'h2'));
  const refused = await answer(s, 'h2');
  assert.equal(refused.error?.code, -32005);
  assert.equal(refused.error?.data?.code, 'ERR_TOO_MANY_SUBSCRIPTIONS');
  // Unsubscribing frees a slot.
  s.send(rpc('eth_unsubscribe', [(await answer(s, 'h1')).result as string], 'u'));
  await answer(s, 'u');
  s.send(rpc('eth_subscribe', ['newHeads'], 'h3'));
  assert.match((await answer(s, 'h3')).result as string, /^0x/);
  const counters = upstreamOf(hub!.hub, 'node').sessionErrors;
  assert.equal(counters.ERR_TOO_MANY_REQUESTS, 2);
  assert.equal(counters.ERR_TOO_MANY_SUBSCRIPTIONS, 1);
  const errors = adapter().snapshot().errors;
  assert.equal(errors.tooManyRequests, 2);
  assert.equal(errors.tooManySubscriptions, 1);
});
