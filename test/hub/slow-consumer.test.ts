/**
 * A worker that stops reading, under each slow-consumer policy: the healthy
 * workers get every message, and for the stalled one every message is either
 * delivered or counted as dropped with a reason — delivered + dropped = sent.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { WebSocketServer, type WebSocket } from 'ws';
import { eventually, sleep, startTestHub, Worker, type TestHub, connectionStats, droppedFor } from './helpers.js';

const workers: Worker[] = [];
let hub: TestHub | undefined;
let wss: WebSocketServer | undefined;
let upstreamPeer: WebSocket | undefined;
after(async () => {
  for (const w of workers) w.kill('SIGKILL');
  await hub?.close();
  upstreamPeer?.terminate();
  wss?.close();
});

const N = 4000;
const PAYLOAD = 'x'.repeat(1000);

async function setup(): Promise<void> {
  if (hub) return;
  wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise((r) => wss!.once('listening', r));
  wss.on('connection', (ws) => (upstreamPeer = ws));
  hub = await startTestHub({ raw: { url: `ws://127.0.0.1:${(wss.address() as { port: number }).port}/`, pingIntervalMs: 0, maxQueueBytes: 512 * 1024 } });
  await eventually(() => upstreamPeer !== undefined, 'the upstream connection');
}

async function send(n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    upstreamPeer!.send(`{"topic":"t${i % 4}","seq":${i},"pad":"${PAYLOAD}"}`);
    // Let the hub read as it goes, as a real feed would be paced by the network.
    if (i % 25 === 24) await sleep(2);
  }
}

for (const policy of ['drop-oldest', 'conflate', 'disconnect'] as const) {
  test(`slow consumer (${policy}): healthy workers keep up (all ${N}, or all accounted for under conflate); stalled one: delivered + dropped = sent`, async (t) => {
    await setup();
    // The stalled worker attaches first, so its session is known for sure.
    const stalled = new Worker(hub!.url('raw', `slowConsumer=${policy}`));
    t.after(() => stalled.kill('SIGKILL'));
    await stalled.opened();
    const stalledId = await eventually(() => hub!.hub.stats().connections[0]?.id, 'the stalled session');
    const healthy = [new Worker(hub!.url('raw', `slowConsumer=${policy}`)), new Worker(hub!.url('raw', `slowConsumer=${policy}`))];
    const group = [...healthy, stalled];
    workers.push(...group);
    t.after(() => group.forEach((w) => w.kill('SIGKILL')));
    await Promise.all(healthy.map((w) => w.opened()));
    await eventually(() => hub!.hub.connections.size === 3, 'three sessions');
    stalled.command('pause');
    await stalled.waitFor('paused');

    await send(N);
    // Healthy workers keep up. Under conflate, any backlog at all (a busy machine) is conflated by design,
    // so there the check is the exact account: delivered + dropped = sent.
    const healthyIds = hub!.hub.stats().connections.map((c) => c.id).filter((id) => id !== stalledId);
    for (const [i, w] of healthy.entries()) {
      const droppedAt = (): number => droppedFor(hub!.hub, healthyIds[i]!);
      const want = (got: number): boolean => (policy === 'conflate' ? got + droppedAt() === N : got === N);
      await eventually(async () => want((await w.report()).messages), `all ${N} accounted for at a healthy worker`, 20_000).catch(async (err: Error) => {
        throw new Error(`${err.message}: got ${(await w.report()).messages}; hub drops ${JSON.stringify(hub!.hub.stats().dropped)}`);
      });
    }

    // Kept from the last snapshot that had the connection: a disconnected session leaves the snapshot.
    let stalledDrops: Record<string, number> = {};
    const dropped = (): number => {
      const now = connectionStats(hub!.hub, stalledId);
      if (now) stalledDrops = now.dropped;
      return Object.values(stalledDrops).reduce((a, b) => a + b, 0);
    };
    await eventually(() => dropped() > 0, 'drops at the stalled worker');
    stalled.command('resume');
    if (policy === 'disconnect') {
      const closed = await stalled.waitFor('close', 10_000);
      assert.equal(closed.code, 1013);
      assert.equal(closed.reason, 'slow consumer');
      dropped();
      assert.ok((stalledDrops.ERR_SLOW_CONSUMER ?? 0) > 0);
    }
    // Whatever was written to the stalled worker's socket arrives once it reads again.
    const received = async (): Promise<number> => {
      const closed = stalled.events.find((e) => e.ev === 'close');
      if (closed) return closed.messages as number;
      return policy === 'disconnect' ? -1 : (await stalled.report()).messages;
    };
    let last = { got: 0, dropped: 0 };
    await eventually(async () => {
      last = { got: await received(), dropped: dropped() };
      return last.got + last.dropped === N;
    }, 'delivered + dropped = sent', 20_000).catch((err: Error) => {
      throw new Error(`${err.message}; delivered ${last.got}, dropped ${last.dropped} (${JSON.stringify(stalledDrops)})`);
    });
    dropped();
    const reasons = Object.keys(stalledDrops);
    const expected = { 'drop-oldest': ['ERR_DROP_OLDEST'], conflate: ['ERR_DROP_CONFLATED', 'ERR_DROP_OLDEST'], disconnect: ['ERR_SESSION_CLOSED', 'ERR_SLOW_CONSUMER'] }[policy];
    assert.ok(reasons.every((r) => expected.includes(r)), `drop reasons ${reasons.join(',')} fit ${policy}`);
    if (policy === 'conflate') assert.ok((stalledDrops.ERR_DROP_CONFLATED ?? 0) > 0, 'conflation happened');
    for (const w of group) w.kill();
    await eventually(() => hub!.hub.connections.size === 0, 'sessions gone');
  });
}
