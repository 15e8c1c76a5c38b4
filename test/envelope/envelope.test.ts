/**
 * Envelope mode (`/hub`): one connection, topics on several upstreams, state
 * frames with gap times through an upstream restart, lagged counts equal to the
 * hub's drops, binary byte-exact without base64, and malformed frames each
 * answered with their code while the session keeps receiving.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import WebSocket, { WebSocketServer } from 'ws';
import { DemoFeed, demoUpstreamConfig } from '../../src/demo/feed.js';
import { decodeBinary, encodeBinary, ENVELOPE_PROTOCOL, type HubFrame } from '../../src/hub/envelope-codec.js';
import { eventually, sleep, startTestHub, type TestHub, connectionStats, droppedFor } from '../hub/helpers.js';

type Frame = HubFrame | { op: 'binary'; upstream: string; topic: string; payload: Buffer };

class EnvelopeClient {
  readonly ws: WebSocket;
  readonly frames: Frame[] = [];
  constructor(url: string) {
    this.ws = new WebSocket(url, [ENVELOPE_PROTOCOL]);
    this.ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (isBinary) {
        const env = decodeBinary(data)!;
        this.frames.push({ op: 'binary', upstream: env.upstream, topic: env.topic, payload: Buffer.from(env.payload) });
      } else this.frames.push(JSON.parse(data.toString()) as HubFrame);
    });
  }
  async open(): Promise<void> {
    await new Promise((resolve, reject) => {
      this.ws.once('open', resolve);
      this.ws.once('error', reject);
    });
  }
  send(frame: unknown): void {
    this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }
  of<K extends Frame['op']>(op: K): Array<Extract<Frame, { op: K }>> {
    return this.frames.filter((f): f is Extract<Frame, { op: K }> => f.op === op);
  }
}

const cleanup: Array<() => unknown> = [];
after(async () => {
  for (const fn of cleanup.reverse()) await fn();
});

let hub: TestHub;
let feedA: DemoFeed;
let feedB: DemoFeed;
let rawServer: WebSocketServer;
let rawPeer: WebSocket | undefined;

async function setup(): Promise<void> {
  if (hub) return;
  feedA = new DemoFeed();
  feedB = new DemoFeed();
  await Promise.all([feedA.ready(), feedB.ready()]);
  rawServer = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise((r) => rawServer.once('listening', r));
  rawServer.on('connection', (ws) => (rawPeer = ws));
  const fast = { pingIntervalMs: 0, backoff: { minDelayMs: 50, maxDelayMs: 200, concealFailures: 0 } };
  hub = await startTestHub(
    {
      a: { ...demoUpstreamConfig(feedA.url), ...fast },
      b: { ...demoUpstreamConfig(feedB.url), ...fast },
      r: { url: `ws://127.0.0.1:${(rawServer.address() as { port: number }).port}/`, topic: 'ch', maxQueueBytes: 64 * 1024, ...fast },
    },
    { maxQueueBytes: 64 * 1024 },
  );
  cleanup.push(() => hub.close(), () => feedA.close(), () => feedB.close(), () => {
    rawPeer?.terminate();
    rawServer.close();
  });
  await eventually(() => hub.hub.stats().upstreams.every((u) => u.client.state === 'open') && rawPeer, 'all upstreams open');
}

test('welcome, then one session subscribed to topics on two upstreams', async () => {
  await setup();
  const c = new EnvelopeClient(`ws+unix://${hub.socketPath}:/hub`);
  cleanup.push(() => c.ws.terminate());
  await c.open();
  assert.equal(c.ws.protocol, ENVELOPE_PROTOCOL);
  const welcome = await eventually(() => c.of('welcome')[0], 'welcome');
  assert.deepEqual(welcome.upstreams.map((u) => [u.name, u.state, u.adapter]), [['a', 'open', 'json'], ['b', 'open', 'json'], ['r', 'open', 'raw']]);

  c.send({ op: 'sub', id: 1, upstream: 'a', topic: 'btcusdt@trade' });
  c.send({ op: 'sub', id: 'two', upstream: 'b', topic: 'ethusdt@trade' });
  await eventually(() => c.of('ack').length === 2, 'two acks');
  assert.deepEqual(c.of('ack').map((f) => f.id), [1, 'two']);
  await eventually(() => feedA.subscribes.get('btcusdt@trade') === 1 && feedB.subscribes.get('ethusdt@trade') === 1, 'upstream subscribes');
  for (let i = 0; i < 5; i++) {
    feedA.tick();
    feedB.tick();
  }
  await eventually(() => c.of('msg').length === 10, 'ten messages');
  const msgs = c.of('msg');
  assert.equal(msgs.filter((m) => m.upstream === 'a' && m.topic === 'btcusdt@trade').length, 5);
  assert.equal(msgs.filter((m) => m.upstream === 'b' && m.topic === 'ethusdt@trade').length, 5);
  const first = msgs.find((m) => m.upstream === 'a')!;
  assert.equal((first.data as { stream: string }).stream, 'btcusdt@trade', 'the upstream JSON arrives as data, not a string');

  c.send({ op: 'unsub', id: 3, upstream: 'a', topic: 'btcusdt@trade' });
  await eventually(() => feedA.unsubscribes.get('btcusdt@trade') === 1, 'the upstream unsubscribe');
  c.ws.close();
});

test('raw upstream with a topic field path: topic filtering, "*" for everything, binary byte-exact both ways', async () => {
  await setup();
  const c = new EnvelopeClient(`ws+unix://${hub.socketPath}:/hub`);
  cleanup.push(() => c.ws.terminate());
  await c.open();
  c.send({ op: 'sub', id: 1, upstream: 'r', topic: 'alpha' });
  const all = new EnvelopeClient(`ws+unix://${hub.socketPath}:/hub`);
  cleanup.push(() => all.ws.terminate());
  await all.open();
  all.send({ op: 'sub', id: 1, upstream: 'r', topic: '*' });
  await eventually(() => c.of('ack').length === 1 && all.of('ack').length === 1, 'acks');
  for (let i = 0; i < 6; i++) rawPeer!.send(JSON.stringify({ ch: i % 2 ? 'alpha' : 'beta', i }));
  const bin = randomBytes(5000);
  rawPeer!.send(bin);
  await eventually(() => c.of('msg').length === 3 && all.frames.filter((f) => f.op === 'msg' || f.op === 'binary').length === 7, 'filtered and unfiltered messages');
  assert.deepEqual(c.of('msg').map((m) => (m.data as { i: number }).i), [1, 3, 5]);
  const b = all.of('binary')[0]!;
  assert.equal(b.upstream, 'r');
  assert.equal(b.topic, '*');
  assert.ok(b.payload.equals(bin), 'binary payload byte for byte');

  // A worker's binary send reaches the upstream as binary, byte for byte.
  const got = new Promise<Buffer>((resolve) => rawPeer!.once('message', (d: Buffer, isBinary: boolean) => isBinary && resolve(d)));
  const out = randomBytes(3000);
  c.ws.send(encodeBinary('r', '', out));
  assert.ok((await got).equals(out));

  // Not JSON text is carried as `text`.
  rawPeer!.send('plain words');
  await eventually(() => all.of('msg').some((m) => m.text === 'plain words'), 'text message');
  c.ws.close();
  all.ws.close();
});

test('malformed frames are answered with their code; the session keeps receiving', async () => {
  await setup();
  const c = new EnvelopeClient(`ws+unix://${hub.socketPath}:/hub`);
  cleanup.push(() => c.ws.terminate());
  await c.open();
  c.send({ op: 'sub', id: 1, upstream: 'a', topic: 'solusdt@trade' });
  await eventually(() => c.of('ack').length === 1, 'ack');
  const bad: Array<[unknown, string]> = [
    ['{not json', 'ERR_ENVELOPE_JSON'],
    [{ op: 'dance', id: 5 }, 'ERR_ENVELOPE_UNKNOWN_OP'],
    [{ id: 6 }, 'ERR_ENVELOPE_UNKNOWN_OP'],
    [{ op: 'sub', id: 7, upstream: 'a' }, 'ERR_ENVELOPE_INVALID'],
    [{ op: 'sub', id: 8, upstream: 'a', topic: 'x', extra: 1 }, 'ERR_ENVELOPE_INVALID'],
    [{ op: 'send', id: 9, upstream: 'a' }, 'ERR_ENVELOPE_INVALID'],
    [{ op: 'sub', id: 10, upstream: 'nope', topic: 'x' }, 'ERR_UNKNOWN_UPSTREAM'],
    [JSON.stringify({ op: 'send', upstream: 'a', text: 'x'.repeat(1024 * 1024 + 10) }), 'ERR_ENVELOPE_TOO_LARGE'],
    [{ op: 'req', id: 11, upstream: 'r', data: {} }, 'ERR_BAD_MESSAGE'],
  ];
  for (const [frame, code] of bad) {
    const before = c.of('error').length;
    c.send(frame);
    feedA.tick();
    const err = await eventually(() => c.of('error')[before], `error for ${String(code)}`);
    assert.equal(err.code, code, `frame ${JSON.stringify(frame).slice(0, 60)}`);
  }
  assert.deepEqual(c.of('error').map((e) => e.id), [undefined, 5, 6, 7, 8, 9, 10, undefined, 11]);
  await eventually(() => c.of('msg').length === bad.length, 'every tick delivered between the bad frames');
  assert.equal(c.ws.readyState, WebSocket.OPEN);
  c.ws.close();
});

test('req/res through a json upstream; ping/pong', async () => {
  await setup();
  const c = new EnvelopeClient(`ws+unix://${hub.socketPath}:/hub`);
  cleanup.push(() => c.ws.terminate());
  await c.open();
  c.send({ op: 'sub', id: 1, upstream: 'b', topic: 'solusdt@trade' });
  await eventually(() => c.of('ack').length === 1, 'ack');
  c.send({ op: 'req', id: 'q1', upstream: 'b', data: { method: 'LIST_SUBSCRIPTIONS' } });
  c.send({ op: 'ping', id: 'p' });
  const res = await eventually(() => c.of('res')[0], 'res');
  assert.equal(res.id, 'q1');
  assert.ok((res.data as { result: string[] }).result.includes('solusdt@trade'), 'the answer of the upstream, for this request');
  assert.equal((res.data as { id: unknown }).id, 'q1');
  assert.equal(c.of('pong')[0]?.id, 'p');
  c.ws.close();
});

test('state frames through an upstream kill and restart carry gap times that bracket the outage', async () => {
  await setup();
  const c = new EnvelopeClient(`ws+unix://${hub.socketPath}:/hub`);
  cleanup.push(() => c.ws.terminate());
  await c.open();
  c.send({ op: 'sub', id: 1, upstream: 'a', topic: 'btcusdt@ticker' });
  await eventually(() => c.of('ack').length === 1, 'ack');
  const port = feedA.port;
  const killedAt = Date.now();
  await feedA.close();
  await eventually(() => c.of('state').some((s) => s.state === 'reconnecting'), 'reconnecting');
  await sleep(300);
  const restartedAt = Date.now();
  feedA = new DemoFeed({ port });
  await feedA.ready();
  const open = await eventually(() => c.of('state').find((s) => s.upstream === 'a' && s.state === 'open'), 'open again', 15_000);
  const reconnecting = c.of('state').find((s) => s.state === 'reconnecting')!;
  assert.equal(reconnecting.upstream, 'a');
  assert.ok(reconnecting.gap && reconnecting.gap.start >= killedAt - 5 && reconnecting.gap.start <= restartedAt, 'gap start when the upstream went');
  assert.equal(typeof reconnecting.delayMs, 'number');
  assert.ok(open.gap, 'the open frame closes the gap');
  assert.equal(open.gap.start, reconnecting.gap.start);
  assert.ok(open.gap.end! >= restartedAt && open.gap.end! <= Date.now());
  // Subscriptions survive: the topic is subscribed again and ticks flow.
  await eventually(() => feedA.subscribes.get('btcusdt@ticker') === 1, 're-subscribed');
  feedA.tick();
  await eventually(() => c.of('msg').some((m) => m.topic === 'btcusdt@ticker'), 'messages again');
  c.ws.close();
});

test('lagged: a stalled envelope session is told exactly what the hub dropped', async () => {
  await setup();
  const c = new EnvelopeClient(`ws+unix://${hub.socketPath}:/hub`);
  cleanup.push(() => c.ws.terminate());
  await c.open();
  c.send({ op: 'sub', id: 1, upstream: 'r', topic: '*' });
  await eventually(() => c.of('ack').length === 1, 'ack');
  const connectionId = hub.hub.stats().connections.find((x) => x.mode === 'envelope')!.id;
  const connectionSnapshot = (): unknown => connectionStats(hub.hub, connectionId);
  c.ws.pause();
  const N = 3000;
  const pad = 'p'.repeat(1000);
  for (let i = 0; i < N; i++) {
    rawPeer!.send(`{"ch":"z","i":${i},"pad":"${pad}"}`);
    if (i % 100 === 99) await sleep(2);
  }
  const dropped = (): number => droppedFor(hub.hub, connectionId, ['ERR_SESSION_CLOSED']);
  await eventually(() => dropped() > 0, 'drops').catch((err: Error) => {
    throw new Error(`${err.message}: ${JSON.stringify(connectionSnapshot())}`);
  });
  await sleep(500);
  c.ws.resume();
  let seen = { lagged: 0, msgs: 0, dropped: 0 };
  await eventually(() => {
    const lagged = c.of('lagged').reduce((a, l) => a + l.count, 0);
    const msgs = c.of('msg').filter((m) => (m.data as { ch?: string } | undefined)?.ch === 'z').length;
    seen = { lagged, msgs, dropped: dropped() };
    return lagged === seen.dropped && msgs + lagged === N;
  }, 'lagged total = hub drops and delivered + lagged = sent', 15_000).catch((err: Error) => {
    throw new Error(`${err.message}: ${JSON.stringify(seen)} ${JSON.stringify(connectionSnapshot())}`);
  });
  const lagged = c.of('lagged');
  assert.ok(lagged.every((l) => l.upstream === 'r' && l.reason === 'ERR_DROP_OLDEST' && l.policy === 'drop-oldest'));
  assert.ok(lagged.length < 50, `coalesced: ${lagged.length} lagged frames for ${dropped()} drops`);
  c.ws.close();
});
