/**
 * HubClient against a real hub process: subscribe, request, a hub killed with
 * SIGKILL and started again (subscriptions restored, nothing delivered twice),
 * `break` unsubscribes.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { HubClient } from '../../src/client/hub-client.js';
import type { HubMessage, HubStateEvent } from '../../src/client/types.js';
import { WebSocketServer } from 'ws';
import { DemoFeed, demoUpstreamConfig } from '../../src/demo/feed.js';
import { resolveConfig } from '../../src/hub/config.js';
import { Hub } from '../../src/hub/hub.js';
import { eventually, sleep } from '../hub/helpers.js';

const BIN = fileURLToPath(new URL('../../../bin/wshub.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'wshub-client-'));
const socketPath = join(dir, 'hub.sock');
const configFile = join(dir, 'wshub.yaml');
let feed: DemoFeed;
let hubProcess: ChildProcess | undefined;
let client: HubClient | undefined;

after(async () => {
  await client?.close();
  hubProcess?.kill('SIGKILL');
  await feed?.close();
  rmSync(dir, { recursive: true, force: true });
});

function startHub(): ChildProcess {
  const child = spawn(process.execPath, [BIN, 'serve', '-c', configFile], { stdio: ['ignore', 'ignore', 'inherit'] });
  return child;
}

test('HubClient: subscribe and request; a hub killed and restarted restores subscriptions without duplicates; break unsubscribes', async () => {
  feed = new DemoFeed({ tickMs: 20 });
  await feed.ready();
  feed.start();
  writeFileSync(configFile, stringify({ listen: socketPath, logLevel: 'warn', upstreams: { feed: { ...demoUpstreamConfig(feed.url), pingIntervalMs: 0 } } }));
  hubProcess = startHub();

  client = new HubClient({ socketPath, backoff: { minDelayMs: 50, maxDelayMs: 300 } });
  const hubStates: HubStateEvent[] = [];
  client.on('hub', (e) => hubStates.push(e));
  await client.ready();

  const seen: number[] = [];
  const received: HubMessage[] = [];
  const sub = client.subscribe('feed', 'btcusdt@trade');
  const consumer = (async () => {
    for await (const m of sub) {
      received.push(m);
      seen.push((m.data as { data: { seq: number } }).data.seq);
      if (seen.length >= 1_000_000) break;
    }
  })();
  await eventually(() => seen.length >= 10, 'ten messages');

  const answer = (await client.request('feed', { method: 'LIST_SUBSCRIPTIONS' }, { timeoutMs: 5000 })) as { result: string[]; id: unknown };
  assert.deepEqual(answer.result, ['btcusdt@trade']);

  // The hub dies without a goodbye and comes back on the same socket path.
  hubProcess.kill('SIGKILL');
  await eventually(() => client!.state === 'reconnecting', 'the client to notice');
  const before = seen.length;
  await sleep(300);
  hubProcess = startHub();
  await eventually(() => client!.state === 'open' && seen.length >= before + 10, 'messages after the restart', 20_000);
  assert.ok(hubStates.some((e) => e.to === 'reconnecting') && hubStates.at(-1)!.to === 'open');

  // No duplicate delivery: the feed's sequence numbers only ever increase.
  for (let i = 1; i < seen.length; i++) assert.ok(seen[i]! > seen[i - 1]!, `seq ${seen[i]} after ${seen[i - 1]} at ${i}`);
  assert.ok(received.every((m) => m.upstream === 'feed' && m.topic === 'btcusdt@trade'));

  // `break` (here: return()) unsubscribes at the hub, which unsubscribes upstream.
  const unsubsBefore = feed.unsubscribes.get('btcusdt@trade') ?? 0;
  await sub.return();
  await consumer;
  await eventually(() => (feed.unsubscribes.get('btcusdt@trade') ?? 0) === unsubsBefore + 1, 'the upstream unsubscribe');
});

test('HubClient: a request made while the hub is away is sent once it is back; one that timed out meanwhile never is', async () => {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise((r) => wss.once('listening', r));
  const seen: string[] = [];
  wss.on('connection', (ws) => ws.on('message', (d: Buffer) => {
    const m = JSON.parse(d.toString()) as { tag: string; id: unknown };
    seen.push(m.tag);
    ws.send(JSON.stringify({ result: m.tag, id: m.id }));
  }));
  const upstreams = { rpc: { url: `ws://127.0.0.1:${(wss.address() as { port: number }).port}/`, adapter: 'json', topic: 'stream', subscribe: '{"sub":"{topic}","id":{id}}', unsubscribe: '{"unsub":"{topic}","id":{id}}', pingIntervalMs: 0 } };
  const lonelyDir = mkdtempSync(join(tmpdir(), 'wshub-away-'));
  const path = join(lonelyDir, 'hub.sock');
  const c = new HubClient({ socketPath: path, backoff: { minDelayMs: 20, maxDelayMs: 50 } });
  try {
    const early = c.request('rpc', { tag: 'timed-out' }, { timeoutMs: 200 });
    const later = c.request('rpc', { tag: 'waited' }, { timeoutMs: 10_000 });
    await assert.rejects(early, { code: 'ERR_REQUEST_TIMEOUT' });
    await sleep(200); // several failed connection attempts: the waiting request must survive them
    const hub = new Hub({ config: resolveConfig({ listen: path, logLevel: 'silent', upstreams }) });
    await hub.start();
    try {
      assert.deepEqual(await later, { result: 'waited', id: (await later as { id: unknown }).id });
      await sleep(100);
      assert.deepEqual(seen, ['waited'], 'the timed-out request never reached the upstream');
    } finally {
      hub.destroy();
    }
  } finally {
    await c.close();
    wss.close();
    rmSync(lonelyDir, { recursive: true, force: true });
  }
});
