/**
 * A hub-aware worker on `/hub` uses a jsonrpc upstream through the envelope:
 * `req` gets its answer as `res` (with the envelope id), `send` carries
 * subscribes whose answers and notifications arrive as `msg`.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { eventually, startTestHub, type TestHub, upstreamOf } from '../hub/helpers.js';
import { NodeServer } from './fixtures/node-server.js';
import { nodeUpstream, rpc, type RpcMessage } from './helpers.js';

let hub: TestHub | undefined;
let node: NodeServer | undefined;
let ws: WebSocket | undefined;
after(async () => {
  ws?.terminate();
  await hub?.close();
  await node?.close();
});

type Envelope = { op: string; id?: string | number; upstream?: string; data?: RpcMessage; code?: string };

test('jsonrpc over the envelope: req → res with the envelope id; send → msg answers and notifications', async () => {
  node = new NodeServer();
  await node.ready();
  hub = await startTestHub({ node: nodeUpstream(node.url) });
  await eventually(() => upstreamOf(hub!.hub, 'node').client.state === 'open', 'the hub to connect to the node');
  const frames: Envelope[] = [];
  ws = new WebSocket(`ws+unix://${hub.socketPath}:/hub`);
  ws.on('message', (data: Buffer) => frames.push(JSON.parse(data.toString()) as Envelope));
  await new Promise((resolve, reject) => ws!.once('open', resolve).once('error', reject));

  ws.send(JSON.stringify({ op: 'req', id: 41, upstream: 'node', data: { jsonrpc: '2.0', method: 'eth_blockNumber', params: [] } }));
  const res = await eventually(() => frames.find((f) => f.op === 'res' && f.id === 41), 'the res frame');
  assert.deepEqual(res.data, { jsonrpc: '2.0', id: 41, result: '0x100' });

  ws.send(JSON.stringify({ op: 'send', upstream: 'node', text: rpc('eth_subscribe', ['newHeads'], 'e1') }));
  const subscribed = await eventually(() => frames.find((f) => f.op === 'msg' && f.data?.id === 'e1'), 'the subscribe answer as msg');
  const local = subscribed.data!.result as string;
  assert.match(local, /^0x[0-9a-f]{32}$/);
  node.emitHead();
  const note = await eventually(() => frames.find((f) => f.op === 'msg' && f.data?.method === 'eth_subscription'), 'the notification as msg');
  assert.equal((note.data!.params as { subscription: string }).subscription, local);
  assert.equal(node.count(node.subscribes, 'newHeads'), 1);
});
