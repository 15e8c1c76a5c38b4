import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { connectCluster, type ClusterConnection } from '../../src/cluster/connect.js';
import { InterestAnnouncer, InterestView, type InterestChange } from '../../src/cluster/interest.js';
import { ClusterStore, newHubId } from '../../src/cluster/store.js';
import type { WshubError } from '../../src/errors.js';
import { NatsServer, delay, until, waitFor } from './helpers.js';

const TTL = 1500;

describe('cluster-wide interest against a real nats-server', () => {
  const server = new NatsServer();
  const conns: ClusterConnection[] = [];
  const closers: (() => unknown)[] = [];
  let clusterSeq = 0;
  before(async () => { await server.start(); });
  afterEach(async () => {
    for (const close of closers.splice(0)) await close();
    await Promise.all(conns.splice(0).map((c) => c.close()));
  });
  after(async () => { await server.dispose(); });

  const store = async (cluster: string): Promise<ClusterStore> => {
    const conn = await connectCluster({ servers: server.url, reconnectWaitMs: 100 });
    conns.push(conn);
    return ClusterStore.open(conn, { cluster, leaseTtlMs: TTL });
  };
  const announcer = async (cluster: string, name: string): Promise<InterestAnnouncer> => {
    const a = new InterestAnnouncer({ store: await store(cluster), upstream: 'feed', hubId: newHubId(), hubName: name });
    closers.push(() => a.close());
    return a;
  };
  const view = async (cluster: string): Promise<{ view: InterestView; events: (InterestChange & { type: string })[] }> => {
    const v = new InterestView({ store: await store(cluster), upstream: 'feed' });
    const events: (InterestChange & { type: string })[] = [];
    v.on('add', (c) => events.push({ type: 'add', ...c }));
    v.on('remove', (c) => events.push({ type: 'remove', ...c }));
    closers.push(() => v.close());
    v.start();
    return { view: v, events };
  };
  const sorted = (xs: string[]): string[] => [...xs].sort();

  test('the holder sees the union: a topic enters once, and leaves only when the last hub drops it', async () => {
    const cluster = `int${++clusterSeq}`;
    const { view: v, events } = await view(cluster);
    const [a, b, c] = [await announcer(cluster, 'a'), await announcer(cluster, 'b'), await announcer(cluster, 'c')];
    for (const x of [a, b, c]) x.start();
    a.add('btcusdt@trade');
    a.add('a.b');
    b.add('btcusdt@trade');
    c.set(['ünï', 'btcusdt@trade']);
    await until(() => v.union().length === 3, 'the union of three hubs');
    assert.deepEqual(sorted(v.union()), sorted(['btcusdt@trade', 'a.b', 'ünï']));
    assert.equal(events.filter((e) => e.type === 'add' && e.topic === 'btcusdt@trade').length, 1);
    assert.equal(v.hubs().length, 3);
    a.remove('btcusdt@trade');
    b.remove('btcusdt@trade');
    await until(() => a.writes > 1 && b.writes > 1, 'the writes');
    await delay(200);
    assert.ok(v.has('btcusdt@trade'), 'c still wants it');
    c.remove('btcusdt@trade');
    await until(() => !v.has('btcusdt@trade'), 'the last hub dropping it');
    assert.deepEqual(events.filter((e) => e.topic === 'btcusdt@trade').map((e) => `${e.type}:${e.reason}`), ['add:subscribed', 'remove:unsubscribed']);
    // A hub that closes deletes its key: its topics leave at once.
    await a.close();
    await until(() => !v.has('a.b'), 'a.b leaving with its hub');
  });

  test('a new holder\'s view starts with every hub\'s current set; refreshes keep a quiet hub alive', async () => {
    const cluster = `int${++clusterSeq}`;
    const a = await announcer(cluster, 'a');
    a.set(['x', 'y']);
    a.start();
    await until(() => a.writes > 0, 'the first write');
    await delay(2 * TTL);
    const { view: v, events } = await view(cluster);
    await until(() => v.union().length === 2, 'the current set');
    await delay(2 * TTL);
    assert.deepEqual(sorted(v.union()), ['x', 'y']);
    assert.equal(events.filter((e) => e.type === 'remove').length, 0, 'a live, quiet hub is not dropped');
    assert.ok(a.writes >= 4, `refreshed every TTL/3 (${a.writes} writes)`);
  });

  test('a hub SIGKILLed: its topics leave the union (reason hub-gone) within TTL + two refresh intervals', async () => {
    const cluster = `int${++clusterSeq}`;
    const { view: v, events } = await view(cluster);
    const b = await announcer(cluster, 'b');
    b.set(['shared']);
    b.start();
    const script = new URL('./fixtures/interest-child.js', import.meta.url).pathname;
    const child = spawn(process.execPath, [script, server.url, cluster, String(TTL), 'child', JSON.stringify(['shared', 'only-child'])], { stdio: ['ignore', 'pipe', 'inherit'] });
    closers.push(() => child.kill('SIGKILL'));
    await waitFor(child.stdout, 'data');
    await until(() => v.has('only-child') && v.has('shared'), 'the child\'s topics');
    const killedAt = Date.now();
    child.kill('SIGKILL');
    await once(child, 'exit');
    const [removed] = await waitFor<[InterestChange]>(v, 'remove', (c) => c.topic === 'only-child', 3 * TTL);
    const tookMs = Date.now() - killedAt;
    console.log(`# dead hub's topics removed after ${tookMs} ms (TTL ${TTL})`);
    assert.equal(removed.reason, 'hub-gone');
    assert.ok(tookMs <= TTL + 2 * (TTL / 3) + 400, `${tookMs} ms`);
    assert.ok(v.has('shared'), 'b still wants it');
    assert.equal(events.filter((e) => e.type === 'remove' && e.topic === 'shared').length, 0);
  });

  test('nats-server restarts: the view keeps the union and loses no hub', async () => {
    const cluster = `int${++clusterSeq}`;
    const { view: v, events } = await view(cluster);
    const a = await announcer(cluster, 'a');
    a.set(['p', 'q']);
    a.start();
    await until(() => v.union().length === 2, 'the set');
    await server.restart('SIGTERM', TTL);
    await until(() => conns.every((c) => c.connected), 'reconnects', 20_000);
    await delay(2 * TTL);
    assert.deepEqual(sorted(v.union()), ['p', 'q']);
    assert.equal(events.filter((e) => e.type === 'remove').length, 0);
    a.add('r');
    await until(() => v.has('r'), 'a change after the restart');
  });

  test('a set larger than max_payload is refused with ERR_PAYLOAD_TOO_LARGE, not sent', async () => {
    const cluster = `int${++clusterSeq}`;
    const a = await announcer(cluster, 'a');
    const failed = waitFor<[WshubError]>(a, 'failed');
    a.set(Array.from({ length: 25_000 }, (_, i) => `topic-${i}-${'x'.repeat(40)}`));
    a.start();
    const [err] = await failed;
    assert.equal(err.code, 'ERR_PAYLOAD_TOO_LARGE');
    assert.equal(a.writes, 0);
  });
});
