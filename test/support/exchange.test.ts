/**
 * The limit-enforcing test exchange, checked with plain ws clients: its
 * protocol, each limit (a violation closes 1008 naming the limit; staying
 * under never does), its counts, and its feed — seqs shared by two
 * instances, continued across a crash and a restart on the same port, in
 * process and as a SIGKILLed child.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import WebSocket from 'ws';
import { Exchange, SharedFeed } from './exchange.js';
import { ExchangeProcess } from './exchange-process.js';

interface Tick {
  stream: string;
  data: { seq: number; topic: string; t: number };
}

/** A plain ws client that keeps every JSON message and how it closed. */
class Client {
  readonly ws: WebSocket;
  readonly messages: Array<Record<string, unknown>> = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  #id = 0;

  constructor(url: string) {
    this.ws = new WebSocket(url);
    this.ws.on('error', () => undefined);
    this.ws.on('message', (data: Buffer) => this.messages.push(JSON.parse(data.toString()) as Record<string, unknown>));
    this.closed = new Promise((resolve) => this.ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  }

  async open(): Promise<this> {
    if (this.ws.readyState !== WebSocket.OPEN) await once(this.ws, 'open');
    return this;
  }

  /** Send a request; resolves with its answer (matched by id). */
  async request(method: string, params?: unknown): Promise<Record<string, unknown>> {
    const id = ++this.#id;
    this.ws.send(JSON.stringify({ method, ...(params === undefined ? {} : { params }), id }));
    return this.waitFor((m) => m.id === id);
  }

  ticks(topic?: string): Tick[] {
    return (this.messages.filter((m) => typeof m.stream === 'string') as unknown as Tick[]).filter((t) => topic === undefined || t.stream === topic);
  }

  async waitFor(match: (m: Record<string, unknown>) => boolean, timeoutMs = 5000): Promise<Record<string, unknown>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.messages.find(match);
      if (found) return found;
      if (Date.now() > deadline) throw new Error(`no matching message within ${timeoutMs} ms; got ${JSON.stringify(this.messages.slice(-5))}`);
      await sleep(5);
    }
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const cleanups: Array<() => unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});
async function client(url: string): Promise<Client> {
  const c = await new Client(url).open();
  cleanups.push(() => c.ws.terminate());
  return c;
}
async function exchange(options: Parameters<typeof Exchange.start>[0] = {}): Promise<Exchange> {
  const ex = await Exchange.start(options);
  cleanups.push(() => ex.kill());
  return ex;
}

test('SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS are answered by id; bad requests get an error and the connection stays', async () => {
  const ex = await exchange();
  const c = await client(ex.url);
  assert.deepEqual(await c.request('SUBSCRIBE', ['a', 'b']), { result: null, id: 1 });
  assert.deepEqual(await c.request('SUBSCRIBE', ['b', 'c']), { result: null, id: 2 });
  assert.deepEqual(await c.request('LIST_SUBSCRIPTIONS'), { result: ['a', 'b', 'c'], id: 3 });
  assert.deepEqual(await c.request('UNSUBSCRIBE', ['a']), { result: null, id: 4 });
  const errorOf = (m: Record<string, unknown>): string => (m.error as { msg: string }).msg;
  assert.match(errorOf(await c.request('SUBSCRIBE', 'a')), /params must be a list/);
  assert.match(errorOf(await c.request('PING')), /unknown method "PING"/);
  c.ws.send('not json');
  assert.equal(errorOf(await c.waitFor((m) => m.id === null)), 'Invalid JSON');
  assert.equal(c.ws.readyState, WebSocket.OPEN);
  const s = ex.stats();
  assert.deepEqual(s.subscribes, { a: 1, b: 2, c: 1 }, 'b was subscribed twice: the count shows it');
  assert.deepEqual(s.unsubscribes, { a: 1 });
  assert.equal(s.subscribeFrames, 2);
  assert.equal(s.badRequests, 3);
  assert.deepEqual(s.live, [{ id: 1, ip: '127.0.0.1', subscriptions: ['b', 'c'] }]);
});

test('maxSubscriptions: a SUBSCRIBE past the cap closes the connection 1008 naming the limit, and is not applied', async () => {
  const ex = await exchange({ maxSubscriptions: 3 });
  const c = await client(ex.url);
  await c.request('SUBSCRIBE', ['a', 'b']);
  await c.request('SUBSCRIBE', ['b', 'c']); // b again: still 3 live
  const other = await client(ex.url);
  await other.request('SUBSCRIBE', ['x', 'y', 'z']); // the cap is per connection
  c.ws.send(JSON.stringify({ method: 'SUBSCRIBE', params: ['d'], id: 9 }));
  const closed = await c.closed;
  assert.equal(closed.code, 1008);
  assert.match(closed.reason, /maxSubscriptions 3/);
  assert.ok(!c.messages.some((m) => m.id === 9), 'the violating request got no answer');
  const s = ex.stats();
  assert.equal(s.limitCloses.maxSubscriptions, 1);
  assert.equal(s.limitCloses.maxControlPerSecond, 0);
  assert.equal(s.subscribes.d, undefined);
  assert.equal(other.ws.readyState, WebSocket.OPEN);
});

test('maxControlPerSecond: R frames in a window pass, the R+1-th closes 1008; pings count; a client that waits out the window is never closed', async () => {
  const ex = await exchange({ maxControlPerSecond: 5, windowMs: 200 });
  // Paced: 5, then 5 more once the window has passed, twice.
  const paced = await client(ex.url);
  for (let round = 0; round < 3; round++) {
    for (let i = 0; i < 5; i++) paced.ws.send(JSON.stringify({ method: 'SUBSCRIBE', params: [`p${round}-${i}`], id: round * 5 + i }));
    await paced.waitFor((m) => m.id === round * 5 + 4);
    await sleep(250);
  }
  assert.equal(paced.ws.readyState, WebSocket.OPEN);
  // Bursty: 6 at once.
  const bursty = await client(ex.url);
  for (let i = 0; i < 6; i++) bursty.ws.send(JSON.stringify({ method: 'SUBSCRIBE', params: [`b${i}`], id: i }));
  const closed = await bursty.closed;
  assert.equal(closed.code, 1008);
  assert.match(closed.reason, /too many control frames: 6 in 200 ms \(maxControlPerSecond 5\)/);
  assert.equal(ex.stats().subscribes.b5, undefined, 'the violating frame was not applied');
  // Pings are frames too (Binance counts them).
  const pinger = await client(ex.url);
  for (let i = 0; i < 5; i++) pinger.ws.ping();
  pinger.ws.send(JSON.stringify({ method: 'LIST_SUBSCRIPTIONS', id: 1 }));
  assert.equal((await pinger.closed).code, 1008);
  const s = ex.stats();
  assert.equal(s.limitCloses.maxControlPerSecond, 2);
  assert.equal(s.maxControlInWindow, 6);
  assert.equal(s.controlFrames, 15 + 6 + 6);
});

test('countPings: false lets pings through uncounted', async () => {
  const ex = await exchange({ maxControlPerSecond: 2, windowMs: 1000, countPings: false });
  const c = await client(ex.url);
  for (let i = 0; i < 10; i++) c.ws.ping();
  await c.request('SUBSCRIBE', ['a']);
  await c.request('SUBSCRIBE', ['b']);
  assert.equal(c.ws.readyState, WebSocket.OPEN);
  assert.equal(ex.stats().controlFrames, 2);
});

test('maxConnectionsPerSecond: past it an upgrade is refused 429; connections are counted per window and per IP', async () => {
  const ex = await exchange({ maxConnectionsPerSecond: 2, windowMs: 300 });
  await client(ex.url);
  await client(ex.url);
  const refused = new WebSocket(ex.url);
  refused.on('error', () => undefined);
  const [, res] = (await once(refused, 'unexpected-response')) as [unknown, { statusCode: number; resume: () => void }];
  res.resume();
  assert.equal(res.statusCode, 429);
  await sleep(350);
  await client(ex.url);
  const s = ex.stats();
  assert.equal(s.connections, 3);
  assert.equal(s.refusedConnections, 1);
  assert.equal(s.maxConnectionsInWindow, 2);
  assert.deepEqual(s.connectionsByIp, { '127.0.0.1': 3 });
  assert.equal(s.connectedAt.length, 3);
});

test('ticks reach exactly the subscribers of each topic, with per-topic seqs', async () => {
  const ex = await exchange();
  const a = await client(ex.url);
  const b = await client(ex.url);
  await a.request('SUBSCRIBE', ['x', 'y']);
  await b.request('SUBSCRIBE', ['y']);
  assert.deepEqual(ex.tick(), { x: 1, y: 1 });
  assert.deepEqual(ex.tick('x'), { x: 2 });
  await a.waitFor((m) => m.stream === 'x' && (m.data as Tick['data']).seq === 2);
  await b.waitFor((m) => m.stream === 'y');
  await sleep(20);
  assert.deepEqual(a.ticks('x').map((t) => t.data.seq), [1, 2]);
  assert.deepEqual(a.ticks('y').map((t) => t.data.seq), [1]);
  assert.deepEqual(b.ticks().map((t) => [t.stream, t.data.seq]), [['y', 1]]);
  assert.equal(ex.stats().published, 4);
});

test('a shared feed: two instances publish the same seqs; a crashed one restarts on its port and continues the sequence', async () => {
  const feed = new SharedFeed();
  let a = await exchange({ feed });
  const b = await exchange({ feed });
  const onA = await client(a.url);
  const onB = await client(b.url);
  await onA.request('SUBSCRIBE', ['x']);
  await onB.request('SUBSCRIBE', ['x']);
  feed.tick();
  await onA.waitFor((m) => m.stream === 'x');
  await onB.waitFor((m) => m.stream === 'x');
  const port = a.port;
  await a.kill();
  assert.equal((await onA.closed).code, 1006, 'a crash sends no close frame');
  assert.deepEqual(feed.tick(), { x: 2 }, 'the stream runs on while A is down');
  a = await exchange({ port, feed });
  assert.equal(a.port, port);
  const again = await client(a.url);
  await again.request('SUBSCRIBE', ['x']);
  assert.deepEqual(a.tick('x'), { x: 3 });
  await again.waitFor((m) => m.stream === 'x');
  await onB.waitFor((m) => m.stream === 'x' && (m.data as Tick['data']).seq === 3);
  assert.deepEqual(onB.ticks('x').map((t) => t.data.seq), [1, 2, 3]);
  assert.deepEqual([...onA.ticks('x'), ...again.ticks('x')].map((t) => t.data.seq), [1, 3], 'seq 2 went out while A was down: a visible gap, not a duplicate');
  assert.deepEqual(a.stats().subscribes, { x: 1 }, 'a restarted instance counts afresh');
});

test('as a child process: SIGKILL drops every client without a close frame; restarted on its port with start = seqs, it continues', async () => {
  let child = await ExchangeProcess.start({ maxSubscriptions: 2 });
  cleanups.push(() => child.kill());
  const c = await client(child.url);
  await c.request('SUBSCRIBE', ['x', 'y']);
  assert.deepEqual(await child.tick(), { x: 1, y: 1 });
  assert.deepEqual(await child.tick('x'), { x: 2 });
  const s = await child.stats();
  assert.deepEqual(s.subscribes, { x: 1, y: 1 });
  assert.equal(s.live[0]?.subscriptions.length, 2);
  await child.kill();
  assert.equal(await child.exited, 'SIGKILL');
  assert.equal((await c.closed).code, 1006);
  const port = child.port;
  child = await ExchangeProcess.start({ maxSubscriptions: 2, port, start: child.seqs });
  cleanups.push(() => child.kill());
  assert.equal(child.port, port);
  const again = await client(child.url);
  await again.request('SUBSCRIBE', ['x', 'y']);
  assert.deepEqual(await child.tick(), { x: 3, y: 2 });
  await again.waitFor((m) => m.stream === 'y');
  // The limit holds in the child too.
  again.ws.send(JSON.stringify({ method: 'SUBSCRIBE', params: ['z'], id: 7 }));
  const closed = await again.closed;
  assert.equal(closed.code, 1008);
  assert.match(closed.reason, /maxSubscriptions 2/);
  assert.equal((await child.stats()).limitCloses.maxSubscriptions, 1);
});

test('a clock feed across processes: two children publish the same seqs; a killed one restarts without repeating any', async () => {
  const clock = { startMs: Date.now(), intervalMs: 40 };
  const first = await ExchangeProcess.start({ clock });
  const second = await ExchangeProcess.start({ clock });
  cleanups.push(() => first.kill(), () => second.kill());
  const onFirst = await client(first.url);
  const onSecond = await client(second.url);
  await onFirst.request('SUBSCRIBE', ['x']);
  await onSecond.request('SUBSCRIBE', ['x']);
  await onFirst.waitFor(() => onFirst.ticks('x').length >= 5);
  await onSecond.waitFor(() => onSecond.ticks('x').length >= 5);
  const seqs = (c: Client): number[] => c.ticks('x').map((t) => t.data.seq);
  for (const c of [onFirst, onSecond]) {
    const s = seqs(c);
    s.forEach((seq, i) => i === 0 || assert.equal(seq, (s[i - 1] ?? 0) + 1, `consecutive: ${s.join(',')}`));
  }
  const common = seqs(onFirst).filter((s) => seqs(onSecond).includes(s));
  assert.ok(common.length >= 3, `both publish the same seqs (common: ${common.join(',')})`);

  const before = seqs(onFirst);
  const port = first.port;
  await first.kill();
  const restarted = await ExchangeProcess.start({ clock, port });
  cleanups.push(() => restarted.kill());
  const again = await client(restarted.url);
  await again.request('SUBSCRIBE', ['x']);
  await again.waitFor(() => again.ticks('x').length >= 2);
  const afterRestart = seqs(again);
  assert.ok((afterRestart[0] ?? 0) > Math.max(...before), `no repeat across the restart: ${before.join(',')} then ${afterRestart.join(',')}`);
});
