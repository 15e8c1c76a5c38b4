/**
 * The public API's promises: the package exports a small set of names (all
 * defaults in one frozen object); `Hub.close()` is idempotent and a second
 * call waits for the first; `HubClient.destroy()` exists, `ready()` settles
 * when the client closes, and an error code a newer hub sends never throws
 * inside the client; one shared NetWatcher serves 70 upstreams without a
 * MaxListenersExceededWarning.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { WebSocketServer } from 'ws';
import { HubClient } from '../../src/client/hub-client.js';
import { ENVELOPE_PROTOCOL } from '../../src/hub/envelope-codec.js';
import { ResilientWebSocket } from '../../src/upstream/resilient.js';
import { isWshubError } from '../../src/errors.js';
import { eventually, startTestHub, Worker, runCleanup } from './helpers.js';

const cleanup: Array<() => unknown> = [];
after(() => runCleanup(cleanup));

test('the package exports about twenty names; every default lives in one frozen defaults object', async () => {
  const api = (await import('../../src/index.js')) as Record<string, unknown>;
  const values = Object.keys(api).sort();
  assert.ok(values.length <= 24, `${values.length} exported values: ${values.join(', ')}`);
  assert.deepEqual(values.filter((n) => n.startsWith('DEFAULT_')), [], 'no DEFAULT_* constant exported on its own');
  for (const name of ['Hub', 'HubClient', 'ResilientWebSocket', 'HardenedServer', 'WshubError', 'resolveConfig', 'defaults']) assert.ok(name in api, name);
  const defaults = api.defaults as { hub: { maxQueueBytes: number; slowAfterMs: number } };
  assert.ok(Object.isFrozen(defaults) && Object.isFrozen(defaults.hub));
  assert.equal(defaults.hub.maxQueueBytes, 4 * 1024 * 1024);
  assert.equal(defaults.hub.slowAfterMs, 1000);
});

test('Hub.close() is idempotent: a second call waits for the first and both resolve once the hub is closed', async () => {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise((r) => wss.once('listening', r));
  cleanup.push(() => new Promise((r) => wss.close(r)));
  const hub = await startTestHub({ feed: { url: `ws://127.0.0.1:${(wss.address() as { port: number }).port}/`, pingIntervalMs: 0 } });
  cleanup.push(() => hub.close());
  const w = new Worker(hub.url('feed'));
  cleanup.push(() => w.kill('SIGKILL'));
  await w.opened();
  let firstDone = false;
  const first = hub.hub.close().then(() => (firstDone = true));
  const second = hub.hub.close();
  await second;
  assert.equal(firstDone || (await Promise.race([first.then(() => true), Promise.resolve(false)])), true, 'the second call resolved only when the first had');
  assert.equal((await w.waitFor('close')).code, 1001);
  await hub.hub.close();
});

test('HubClient: ready() rejects with ERR_CLOSED when closed before the welcome; destroy() ends it at once and is idempotent', async () => {
  const client = new HubClient({ url: 'ws://127.0.0.1:9/hub', backoff: { minDelayMs: 10, maxDelayMs: 20 } });
  const ready = client.ready();
  await client.close();
  await assert.rejects(ready, (err) => isWshubError(err, 'ERR_CLOSED'));

  const hub = await startTestHub({});
  cleanup.push(() => hub.close());
  const live = new HubClient({ socketPath: hub.socketPath });
  await live.ready();
  await eventually(() => hub.hub.stats().connections.length === 1, 'attached');
  live.destroy();
  live.destroy();
  assert.equal(live.state, 'closed');
  await assert.rejects(live.request('x', {}), (err) => isWshubError(err, 'ERR_CLOSED'));
  await eventually(() => hub.hub.stats().connections.length === 0, 'the hub saw it go');
});

test('HubClient: an error code from a newer hub is not thrown inside the client: the request rejects with ERR_UNKNOWN_CODE carrying the hub\'s code', async () => {
  // A "newer hub": a real wshub.v1 server that answers every request with a code this client does not know.
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, handleProtocols: () => ENVELOPE_PROTOCOL });
  await new Promise((r) => wss.once('listening', r));
  cleanup.push(() => new Promise((r) => wss.close(r)));
  wss.on('connection', (ws) => {
    ws.send(JSON.stringify({ op: 'welcome', v: 1, session: 's1', upstreams: [] }));
    ws.on('message', (data: Buffer) => {
      const f = JSON.parse(data.toString()) as { op: string; id?: number };
      if (f.op === 'req') ws.send(JSON.stringify({ op: 'error', id: f.id, code: 'ERR_FROM_THE_FUTURE', message: 'a newer hub says no' }));
    });
  });
  const client = new HubClient({ url: `ws://127.0.0.1:${(wss.address() as { port: number }).port}/hub` });
  cleanup.push(() => client.close());
  await client.ready();
  const uncaught: unknown[] = [];
  const onUncaught = (err: unknown): void => void uncaught.push(err);
  process.on('uncaughtException', onUncaught);
  cleanup.push(() => process.off('uncaughtException', onUncaught));
  await assert.rejects(client.request('feed', { method: 'x' }, { timeoutMs: 5000 }), (err) => isWshubError(err, 'ERR_UNKNOWN_CODE') && err.details.code === 'ERR_FROM_THE_FUTURE');
  assert.deepEqual(uncaught, []);
});

test('one shared NetWatcher serves 70 upstreams without a MaxListenersExceededWarning', async () => {
  const warnings: Error[] = [];
  const onWarning = (w: Error): void => void warnings.push(w);
  process.on('warning', onWarning);
  cleanup.push(() => process.off('warning', onWarning));
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise((r) => wss.once('listening', r));
  cleanup.push(() => new Promise((r) => wss.close(r)));
  const url = `ws://127.0.0.1:${(wss.address() as { port: number }).port}/`;
  const clients = Array.from({ length: 70 }, () => new ResilientWebSocket({ url, pingIntervalMs: 0, netwatch: true }));
  cleanup.push(() => Promise.all(clients.map((c) => c.close())));
  for (const c of clients) c.connect();
  await eventually(() => clients.every((c) => c.state === 'open'), '70 upstreams open', 20_000);
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(warnings.filter((w) => w.name === 'MaxListenersExceededWarning').map((w) => w.message), []);
});
