/**
 * A worker we did not write for the hub: python3-websockets speaking plain
 * JSON-RPC over the hub's Unix socket (request, subscribe, notifications,
 * unsubscribe), next to a Node worker on the same subscription.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { eventually, startTestHub, type TestHub, type Worker, upstreamOf } from '../hub/helpers.js';
import { NodeServer } from './fixtures/node-server.js';
import { answer, awaitNotifications, nodeUpstream, rpc, rpcWorker } from './helpers.js';

const PYTHON = '/usr/bin/python3';
const SCRIPT = fileURLToPath(new URL('../../../test/jsonrpc/fixtures/py_rpc_worker.py', import.meta.url));

let hub: TestHub | undefined;
let node: NodeServer | undefined;
let py: ChildProcess | undefined;
let nodeWorker: Worker | undefined;
after(async () => {
  if (py && py.exitCode === null) py.kill('SIGKILL');
  nodeWorker?.kill('SIGKILL');
  await hub?.close();
  await node?.close();
});

test('jsonrpc: a python3-websockets worker works unchanged but for the URL', async () => {
  assert.ok(existsSync(PYTHON), `${PYTHON} is missing (Debian python3 with python3-websockets is required)`);
  node = new NodeServer();
  await node.ready();
  hub = await startTestHub({ node: nodeUpstream(node.url) });
  await eventually(() => upstreamOf(hub!.hub, 'node').client.state === 'open', 'the hub to connect to the node');

  // A Node worker already holds newHeads: the python worker's subscribe must share it.
  nodeWorker = rpcWorker(hub.url('node'));
  await nodeWorker.opened();
  nodeWorker.send(rpc('eth_subscribe', ['newHeads'], 1));
  const nodeLocal = (await answer(nodeWorker, 1)).result as string;

  const events: Array<Record<string, unknown>> = [];
  let stderr = '';
  py = spawn(PYTHON, [SCRIPT, hub.socketPath, '/u/node', '3'], { stdio: ['ignore', 'pipe', 'pipe'] });
  py.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  createInterface({ input: py.stdout! }).on('line', (line) => events.push(JSON.parse(line) as Record<string, unknown>));
  const exited = new Promise<number | null>((resolve) => py!.once('exit', (code) => resolve(code)));
  const find = (ev: string): Record<string, unknown> | undefined => events.find((e) => e.ev === ev);

  const subscribed = await eventually(() => find('subscribed') ?? (py!.exitCode !== null ? Promise.reject(new Error(`python exited ${py!.exitCode}: ${stderr}`)) : undefined), 'the python worker to subscribe', 20_000);
  assert.deepEqual(find('block'), { ev: 'block', id: 1, result: '0x100' });
  assert.equal(subscribed.id, 'sub');
  assert.match(subscribed.sub as string, /^0x[0-9a-f]{32}$/);
  assert.notEqual(subscribed.sub, nodeLocal);
  assert.equal(node.count(node.subscribes, 'newHeads'), 1, 'one upstream subscription for both workers');

  for (let i = 0; i < 3; i++) node.emitHead();
  const code = await Promise.race([exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 20_000))]);
  assert.equal(code, 0, `python worker exit (${String(code)}): ${stderr}`);
  assert.deepEqual(find('done'), { ev: 'done', notifications: 3, foreign: 0, unsubscribed: true });
  await awaitNotifications(nodeWorker, nodeLocal, 3, 'the Node worker\'s heads');
  assert.equal(node.count(node.unsubscribes, 'newHeads'), 0, 'the Node worker still holds newHeads');
  nodeWorker.send(rpc('eth_unsubscribe', [nodeLocal], 2));
  assert.equal((await answer(nodeWorker, 2)).result, true);
  await eventually(() => node!.count(node!.unsubscribes, 'newHeads') === 1, 'the last one out ends it at the node');
});
