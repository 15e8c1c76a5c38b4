/**
 * Worker requests across hubs (issue 14): three hubs as separate daemons, h0
 * (started first) holding two upstreams — a json upstream that echoes each
 * request's params, and a JSON-RPC node that echoes eth_call params — and 8
 * workers per upstream on each of the two non-holding hubs, plus 2 on the
 * holder, ALL using the same ids at the same time (numbers, `0`, `"1"`
 * beside `1`, strings). Each request names its asker in its params, so an
 * answer that reached the wrong worker, or reached a worker twice, shows.
 *
 * Every answer arrives exactly once, to its asker, with the asker's own id
 * and the asker's result; the ids reaching the upstreams never collide; each
 * request reaches the upstream once; subscribes with colliding ids from
 * every hub make one upstream subscription, each asker answered once.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { eventually } from '../hub/helpers.js';
import { NodeServer } from '../jsonrpc/fixtures/node-server.js';
import { EchoFeed } from './fixtures/echo-feed.js';
import { ClusterLab, TEST_TIMEOUT_MS, type HubProcess } from './hub-lab.js';
import { FeedWorker } from './hub-workers.js';

type Id = number | string;
/** The ids every worker uses, every round: the same on every worker of every hub. */
const IDS: readonly Id[] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, '1', 'a', 'b c'];
const ROUNDS = 3;
const PER_FOLLOWER = 8;
const ON_HOLDER = 2;

interface Asker {
  w: FeedWorker;
  hub: HubProcess;
}

/** The answers `w` received whose id is `id` (strict: 1 and "1" differ). */
function answersTo(w: FeedWorker, id: unknown): Array<Record<string, unknown>> {
  return w.answers.filter((a) => a.id === id && a.method === undefined);
}

/** Wait until every asker has `count(w)` answers in all, then check none has more. */
async function allAnswered(askers: readonly Asker[], expected: (w: FeedWorker) => number, what: string): Promise<void> {
  await eventually(() => askers.every(({ w }) => w.answers.filter((a) => a.method === undefined).length >= expected(w)), what, 20_000)
    .catch((err: Error) => {
      const short = askers.filter(({ w }) => w.answers.filter((a) => a.method === undefined).length < expected(w)).map(({ w }) => `${w.label}: ${w.answers.length}/${expected(w)}`);
      throw new Error(`${err.message}; short: ${short.join(', ')}`);
    });
}

async function askers(lab: ClusterLab, hubs: HubProcess[], holder: HubProcess, upstream: string): Promise<Asker[]> {
  const out: Asker[] = [];
  for (const hub of hubs) {
    const n = hub === holder ? ON_HOLDER : PER_FOLLOWER;
    for (let i = 0; i < n; i++) {
      const w = new FeedWorker(hub.url(`/u/${upstream}`), `${hub.name}/${upstream}${i}`);
      lab.defer(() => w.close());
      out.push({ w, hub });
    }
  }
  await Promise.all(out.map(({ w }) => w.opened()));
  return out;
}

test('requests from non-holding hubs, json and jsonrpc, colliding ids from many workers: every answer once, to its asker, with its id and its result', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const lab = await ClusterLab.start();
  t.after(() => lab.close());
  const echo = new EchoFeed();
  lab.defer(() => echo.close());
  const node = new NodeServer();
  lab.defer(() => node.close());
  await Promise.all([echo.ready(), node.ready()]);
  const upstreams = {
    feed: {
      url: echo.url, adapter: 'json', topic: 'stream',
      subscribe: '{"method":"SUBSCRIBE","params":["{topic}"],"id":{id}}',
      unsubscribe: '{"method":"UNSUBSCRIBE","params":["{topic}"],"id":{id}}',
      backoff: { minDelayMs: 50, maxDelayMs: 500 },
    },
    rpc: { url: node.url, adapter: 'jsonrpc', pingIntervalMs: 0, backoff: { minDelayMs: 50, maxDelayMs: 500 } },
  };
  const h0 = await lab.hub({ name: 'h0', upstreams });
  await Promise.all([lab.settled('feed'), lab.settled('rpc')]);
  const hubs = [h0, ...await Promise.all(['h1', 'h2'].map((name) => lab.hub({ name, upstreams })))];
  assert.equal(await lab.settled('feed'), h0, 'h0 holds feed');
  assert.equal(await lab.settled('rpc'), h0, 'h0 holds rpc');
  const json = await askers(lab, hubs, h0, 'feed');
  const rpc = await askers(lab, hubs, h0, 'rpc');

  // Subscribes with one id on every worker of every hub: one upstream subscription each, every asker answered once.
  for (const { w } of json) w.send({ method: 'SUBSCRIBE', params: ['btcusdt@trade'], id: 's' });
  for (const { w } of rpc) w.send({ jsonrpc: '2.0', method: 'eth_subscribe', params: ['newHeads'], id: 's' });
  await allAnswered([...json, ...rpc], () => 1, 'every subscribe answered');
  for (const { w } of json) assert.deepEqual(answersTo(w, 's'), [{ result: null, id: 's' }], `${w.label}: its SUBSCRIBE answered once, in the upstream's words`);
  const subIds = new Map<FeedWorker, unknown>();
  for (const { w } of rpc) {
    const [answer, ...more] = answersTo(w, 's');
    assert.equal(more.length, 0, `${w.label}: one answer to its eth_subscribe`);
    assert.equal(typeof answer?.result, 'string', `${w.label}: a subscription id (${JSON.stringify(answer)})`);
    subIds.set(w, answer!.result);
  }
  assert.equal(echo.subscribes.get('btcusdt@trade'), 1, 'one upstream SUBSCRIBE for the cluster');
  assert.equal(node.subscribes.get('newHeads'), 1, 'one upstream eth_subscribe for the cluster');
  // Each new head reaches every subscriber once, under its own subscription id.
  const heads = 3;
  for (let i = 0; i < heads; i++) assert.equal(node.emitHead(), 1, 'one node subscription notified');
  await eventually(() => rpc.every(({ w }) => w.answers.filter((a) => a.method === 'eth_subscription').length >= heads), 'every subscriber notified of each head', 10_000);

  // Rounds of requests, every worker at once, every worker the same ids.
  const started = Date.now();
  for (let round = 0; round < ROUNDS; round++) {
    for (const { w } of json) for (const id of IDS) w.send({ method: 'ECHO', params: [w.label, round, JSON.stringify(id)], id });
    for (const { w } of rpc) {
      for (const id of IDS) w.send({ jsonrpc: '2.0', method: 'eth_call', params: [{ w: w.label, round, id }, 'latest'], id });
      w.send({ jsonrpc: '2.0', method: 'eth_blockNumber', params: [], id: `bn${round}` });
    }
    const perRound = (w: FeedWorker): number => 1 + (round + 1) * (IDS.length + (rpc.some((a) => a.w === w) ? 1 : 0));
    await allAnswered([...json, ...rpc], perRound, `round ${round} answered`);
  }
  const requestsMs = Date.now() - started;

  // Exactly once, to the asker, with its own id and its own result. A late duplicate of an earlier round would have
  // arrived by the end of a later one; the last round's are checked once more after a last round trip per worker.
  for (const { w } of json) w.send({ method: 'ECHO', params: [w.label, 'last', '"last"'], id: 'last' });
  for (const { w } of rpc) w.send({ jsonrpc: '2.0', method: 'eth_call', params: [{ w: w.label, round: 'last', id: 'last' }], id: 'last' });
  await eventually(() => [...json, ...rpc].every(({ w }) => answersTo(w, 'last').length > 0), 'the last round trip of every worker', 10_000);
  for (const { w } of json) {
    const answers = w.answers.filter((a) => a.id !== 's');
    assert.equal(answers.length, ROUNDS * IDS.length + 1, `${w.label}: one answer per request`);
    for (const id of IDS) {
      const got = answersTo(w, id);
      assert.equal(got.length, ROUNDS, `${w.label}: id ${JSON.stringify(id)} answered once per round (${JSON.stringify(got)})`);
      const rounds = got.map((a) => {
        const [label, round, idText] = (a.result as { params: [string, number, string] }).params;
        assert.equal(label, w.label, `${w.label}: an answer asked by ${label}`);
        assert.equal(idText, JSON.stringify(id), `${w.label}: the answer to ${idText} came with id ${JSON.stringify(id)}`);
        return round;
      });
      assert.deepEqual(rounds.sort(), [...Array(ROUNDS).keys()], `${w.label}: id ${JSON.stringify(id)}: one answer of each round`);
    }
  }
  for (const { w } of rpc) {
    const answers = w.answers.filter((a) => a.id !== 's' && a.method === undefined);
    assert.equal(answers.length, ROUNDS * (IDS.length + 1) + 1, `${w.label}: one answer per request`);
    for (const id of IDS) {
      const got = answersTo(w, id);
      assert.equal(got.length, ROUNDS, `${w.label}: id ${JSON.stringify(id)} answered once per round (${JSON.stringify(got)})`);
      const rounds = got.map((a) => {
        assert.equal(a.jsonrpc, '2.0');
        const asked = ((a.result as { echo: Array<{ w: string; round: number; id: Id }> }).echo)[0]!;
        assert.equal(asked.w, w.label, `${w.label}: an answer asked by ${asked.w}`);
        assert.equal(asked.id, id, `${w.label}: the answer to id ${JSON.stringify(asked.id)} came with id ${JSON.stringify(id)}`);
        return asked.round;
      });
      assert.deepEqual(rounds.sort(), [...Array(ROUNDS).keys()], `${w.label}: id ${JSON.stringify(id)}: one answer of each round`);
    }
    for (let round = 0; round < ROUNDS; round++) {
      assert.deepEqual(answersTo(w, `bn${round}`).map((a) => a.result), [`0x${node.head.toString(16)}`], `${w.label}: eth_blockNumber of round ${round} once`);
    }
    // Notifications: each head once, under this worker's own subscription id.
    const notes = w.answers.filter((a) => a.method === 'eth_subscription');
    assert.equal(notes.length, heads, `${w.label}: each head once`);
    for (const n of notes) assert.equal((n.params as { subscription: unknown }).subscription, subIds.get(w), `${w.label}: under its own subscription id`);
  }

  // Upstream side: each request arrived once, under an id no other request had at the same time.
  const echoes = json.length * (ROUNDS * IDS.length + 1);
  const calls = rpc.length * (ROUNDS * IDS.length + 1);
  assert.equal(echo.echoIds.length, echoes, 'every json request reached the upstream once');
  assert.equal(new Set(echo.echoIds).size, echoes, 'ids towards the json upstream never collided');
  assert.equal(node.callIds.length, calls, 'every eth_call reached the node once');
  assert.equal(new Set(node.callIds).size, calls, 'ids towards the node never collided');
  assert.equal(node.requests.get('eth_blockNumber'), rpc.length * ROUNDS, 'every eth_blockNumber reached the node once');
  assert.equal(echo.connections, 1, 'one json upstream connection');
  assert.equal(node.connections, 1, 'one node connection');
  const followers = hubs.filter((h) => h !== h0);
  const forwarded = await Promise.all(followers.map(async (h) => (await h.upstream('rpc')).requests));

  console.log(`# requests across hubs: ${json.length} json + ${rpc.length} jsonrpc workers (${PER_FOLLOWER} per upstream on each of ${followers.length} non-holding hubs, ${ON_HOLDER} on the holder), ` +
    `ids ${JSON.stringify(IDS)} on every worker, ${ROUNDS} rounds: ${echoes + calls + rpc.length * ROUNDS} requests answered in ${requestsMs} ms, each once, to its asker; ` +
    `upstream ids all distinct; 1 SUBSCRIBE and 1 eth_subscribe for ${json.length} + ${rpc.length} subscribers, ${heads} heads each once; followers' rpc forwards ${JSON.stringify(forwarded)}`);
});
