/**
 * The json adapter's subscription bookkeeping follows the upstream's answers:
 * a refused subscribe reaches every worker who asked, with its own id, the
 * topic is not live, nothing is unsubscribed that was never subscribed, and a
 * later ask tries again. An acknowledgement comes before the snapshot it
 * announces. A request whose id the hub cannot carry is refused at the door.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { DemoFeed, demoUpstreamConfig } from '../../src/demo/feed.js';
import { eventually, sleep, startTestHub, upstreamOf, Worker, type TestHub, runCleanup } from './helpers.js';

const workers: Worker[] = [];
const cleanup: Array<() => unknown> = [];
after(async () => {
  for (const w of workers) w.kill('SIGKILL');
  await runCleanup(cleanup);
});

const sub = (topics: string[], id: number | string): string => JSON.stringify({ method: 'SUBSCRIBE', params: topics, id });
const unsub = (topics: string[], id: number | string): string => JSON.stringify({ method: 'UNSUBSCRIBE', params: topics, id });

async function setup(options: ConstructorParameters<typeof DemoFeed>[0]): Promise<{ feed: DemoFeed; hub: TestHub }> {
  const feed = new DemoFeed({ tickMs: 3_600_000, ...options });
  await feed.ready();
  cleanup.push(() => feed.close());
  const hub = await startTestHub({ feed: { ...demoUpstreamConfig(feed.url), pingIntervalMs: 0 } });
  cleanup.push(() => hub.close());
  await eventually(() => feed.connections === 1 && upstreamOf(hub.hub, 'feed').client.state === 'open', 'the hub connected');
  return { feed, hub };
}

function worker(hub: TestHub, query?: string, echo = false): Worker {
  const w = new Worker(hub.url('feed', query), { protocol: 'feed-v1', ...(echo ? { env: { WORKER_ECHO: '1' } } : {}) });
  workers.push(w);
  return w;
}

test('json: a refused subscribe reaches every worker who asked with its own id; the topic is not live, never unsubscribed, and a later ask tries again', async () => {
  // The feed answers after 1.5 s, so the second ask arrives while the first is in flight (even on a busy machine).
  const { feed, hub } = await setup({ topics: ['btcusdt@trade'], answerDelayMs: 1500 });
  const [a, b] = [worker(hub), worker(hub)];
  await Promise.all([a.opened(), b.opened()]);
  a.send(sub(['nope@trade'], 'a-1'));
  b.send(sub(['nope@trade'], 7));
  for (const [w, id] of [[a, 'a-1'], [b, 7]] as const) {
    const r = await eventually(async () => (await w.report()).responses.find((m) => m.id === id), `the answer to ${JSON.stringify(id)}`);
    assert.deepEqual(r, { error: { code: 2, msg: 'Invalid request: unknown stream nope@trade' }, id }, 'the upstream\'s own refusal, with the asker\'s id');
  }
  assert.equal(feed.subscribes.get('nope@trade'), 1, 'one upstream subscribe for both asks');
  assert.deepEqual(upstreamOf(hub.hub, 'feed').topics, [], 'the refused topic is not live and has no subscribers');
  assert.equal((upstreamOf(hub.hub, 'feed').adapterStats as { subscribeRefused: number }).subscribeRefused, 1);

  // Leaving a topic that was never subscribed sends nothing upstream.
  a.send(unsub(['nope@trade'], 'a-2'));
  await eventually(async () => (await a.report()).responses.some((m) => m.id === 'a-2'), 'the unsubscribe answered');
  b.kill('SIGKILL');
  await eventually(() => upstreamOf(hub.hub, 'feed').sessions === 1, 'b gone');
  await sleep(300);
  assert.equal(feed.unsubscribes.get('nope@trade'), undefined, 'nothing unsubscribed that was never subscribed');

  // A later ask tries again, and a good topic beside it works.
  a.send(sub(['nope@trade'], 'a-3'));
  await eventually(async () => (await a.report()).responses.some((m) => m.id === 'a-3' && m.error !== undefined), 'the second refusal');
  assert.equal(feed.subscribes.get('nope@trade'), 2, 'asked again upstream');
  a.send(sub(['btcusdt@trade'], 'a-4'));
  await eventually(async () => (await a.report()).responses.some((m) => m.id === 'a-4' && m.result === null), 'the good topic acknowledged');
  feed.tick();
  await eventually(async () => (await a.report()).byTopic['btcusdt@trade'] === 1, 'its data flows');
});

test('json: snapshot=1 — the acknowledgement comes first, then the snapshot it announces', async () => {
  const { feed, hub } = await setup({});
  const a = worker(hub);
  await a.opened();
  a.send(sub(['btcusdt@trade'], 1));
  await eventually(async () => (await a.report()).responses.length === 1, 'a\'s ack');
  feed.tick();
  await eventually(async () => (await a.report()).byTopic['btcusdt@trade'] === 1, 'a tick at a');
  const late = worker(hub, 'snapshot=1', true);
  await late.opened();
  late.send(sub(['btcusdt@trade'], 'late'));
  await eventually(() => late.events.filter((e) => e.ev === 'message').length >= 2, 'the late joiner\'s first two frames');
  const [first, second] = late.events.filter((e) => e.ev === 'message').map((e) => JSON.parse(e.text as string) as Record<string, unknown>);
  assert.deepEqual(first, { result: null, id: 'late' }, 'the ack first');
  assert.equal(second!.stream, 'btcusdt@trade', 'then the snapshot');
});

test('json: a request whose id the hub cannot carry (nested 100,000 levels) is refused at the door; the hub and the next request are fine', async () => {
  const { hub } = await setup({});
  const a = worker(hub);
  await a.opened();
  const before = upstreamOf(hub.hub, 'feed').sessionErrors.ERR_BAD_MESSAGE ?? 0;
  const sent = upstreamOf(hub.hub, 'feed').client.messagesOut;
  a.send(`{"method":"LIST_SUBSCRIPTIONS","id":${'['.repeat(100_000)}${']'.repeat(100_000)}}`);
  await eventually(() => (upstreamOf(hub.hub, 'feed').sessionErrors.ERR_BAD_MESSAGE ?? 0) === before + 1, 'the refusal counted');
  assert.equal(upstreamOf(hub.hub, 'feed').client.messagesOut, sent, 'nothing went upstream');
  const refused = hub.hub.stats().connections[0]!.sessions[0]!.ledger.refused;
  assert.equal(refused.ERR_BAD_MESSAGE, 1, 'the session\'s ledger says why');
  a.send(JSON.stringify({ method: 'LIST_SUBSCRIPTIONS', id: 'next' }));
  await eventually(async () => (await a.report()).responses.some((m) => m.id === 'next'), 'the next request answered');
});
