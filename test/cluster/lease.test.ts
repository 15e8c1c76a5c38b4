import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connectCluster } from '../../src/cluster/connect.js';
import { Lease } from '../../src/cluster/lease.js';
import { ClusterStore } from '../../src/cluster/store.js';
import { isWshubError } from '../../src/errors.js';
import { NatsServer, delay, until, waitFor } from './helpers.js';
import { ChildHub, Timeline, localHub, type LocalHub } from './lease-helpers.js';

const TTL = 1500;
/** Room for the scheduler of a shared 2-core machine on top of a bound. */
const SLACK_MS = 400;

let clusterSeq = 0;
const nextCluster = (): string => `lease${process.pid}x${++clusterSeq}`;

describe('Lease against a real nats-server', () => {
  const server = new NatsServer();
  const hubs: LocalHub[] = [];
  const children: ChildHub[] = [];
  before(async () => { await server.start(); });
  afterEach(async () => {
    await Promise.all(children.splice(0).map((c) => c.kill()));
    await Promise.all(hubs.splice(0).map((h) => h.close()));
  });
  after(async () => { await server.dispose(); });

  const hub = async (cluster: string, name: string, timeline: Timeline, ttl = TTL): Promise<LocalHub> => {
    const h = await localHub(server.url, cluster, ttl, name, timeline);
    hubs.push(h);
    return h;
  };

  test('of three hubs exactly one holds, renews, and the others see it as the holder', async () => {
    const cluster = nextCluster();
    const timeline = new Timeline();
    const all = await Promise.all(['a', 'b', 'c'].map((n) => hub(cluster, n, timeline)));
    for (const h of all) h.lease.start();
    await until(() => timeline.records.some((r) => r.ev === 'acquired'), 'an acquire');
    await delay(2 * TTL);
    const holders = all.filter((h) => h.lease.isHolder);
    assert.equal(holders.length, 1, 'exactly one holder');
    const holder = holders[0]!;
    assert.equal(timeline.records.filter((r) => r.ev === 'acquired').length, 1);
    assert.equal(timeline.records.filter((r) => r.ev === 'fenced' || r.ev === 'lost').length, 0);
    assert.ok(timeline.of(holder.name, 'renewed').length >= 3, 'renewed every TTL/3');
    assert.ok(holder.lease.leaseAgeMs >= 2 * TTL);
    for (const h of all.filter((x) => x !== holder)) {
      assert.equal(h.lease.holder?.holder, holder.lease.hubId);
      assert.equal(h.lease.holder?.epoch, holder.lease.epoch);
      assert.equal(h.lease.holderEpoch(), undefined);
    }
    assert.equal(holder.lease.holder?.self, true);
  });

  test('release hands the lease over without waiting for the TTL; the new epoch is larger', async () => {
    const cluster = nextCluster();
    const timeline = new Timeline();
    const a = await hub(cluster, 'a', timeline);
    a.lease.start();
    await waitFor(a.lease, 'acquired');
    const b = await hub(cluster, 'b', timeline);
    b.lease.start();
    await delay(TTL / 2);
    const releasedAt = Date.now();
    await a.lease.release();
    const [acq] = await waitFor<[{ epoch: number; at: number }]>(b.lease, 'acquired', () => true, 3 * TTL);
    assert.ok(acq.epoch > timeline.of('a', 'acquired')[0]!.epoch!);
    assert.deepEqual(timeline.of('a', 'lost').map((r) => r.reason), ['released']);
    assert.equal(a.lease.state, 'idle');
    timeline.assertOneHolderAtATime();
    console.log(`# release → takeover: ${acq.at - releasedAt} ms`);
  });

  test('a revision mismatch (someone else wrote the key) loses the lease at once, not at the fence', async () => {
    const cluster = nextCluster();
    const timeline = new Timeline();
    const a = await hub(cluster, 'a', timeline);
    a.lease.start();
    await waitFor(a.lease, 'acquired');
    const lostEvent = waitFor<[{ reason: string }]>(a.lease, 'lost', () => true, TTL);
    await a.store.kv.put('lease.feed', JSON.stringify({ holder: 'intruder', hub: 'x', token: 't', attempt: 'a', startedAt: 0 }));
    const [lost] = await lostEvent;
    assert.equal(lost.reason, 'superseded');
    assert.equal(timeline.of('a', 'fenced').length, 0);
    assert.equal(a.lease.isHolder, false);
    await until(() => a.lease.holder?.holder === 'intruder', 'the intruder seen as holder', TTL);
  });

  test('SIGKILL of the holder (a child process): another hub takes over within TTL + TTL/3, after the old one\'s validity', async () => {
    const cluster = nextCluster();
    const timeline = new Timeline();
    const child = new ChildHub(server.url, cluster, TTL, 'child', timeline);
    children.push(child);
    await child.waitFor('acquired');
    const others = await Promise.all(['b', 'c'].map((n) => hub(cluster, n, timeline)));
    for (const h of others) h.lease.start();
    await delay(TTL); // a few renews, and the others campaigning
    const killedAt = Date.now();
    await child.kill();
    await until(() => others.some((h) => h.lease.isHolder), 'a takeover', 3 * TTL);
    const acq = timeline.records.find((r) => r.ev === 'acquired' && r.hub !== 'child')!;
    const takeoverMs = acq.at - killedAt;
    console.log(`# SIGKILL → takeover: ${takeoverMs} ms (TTL ${TTL}, bound ${TTL + TTL / 3})`);
    assert.ok(takeoverMs <= TTL + TTL / 3 + SLACK_MS, `takeover took ${takeoverMs} ms`);
    const lastValid = Math.max(...child.lines.filter((l) => l.validUntil !== undefined).map((l) => l.validUntil!));
    assert.ok(acq.at >= lastValid, `new holder acquired at ${acq.at}, the killed one believed until ${lastValid}`);
    // The killed hub's holding ended with its last validity.
    timeline.add({ hub: 'child', ev: 'fenced', at: killedAt, epoch: timeline.of('child', 'acquired')[0]!.epoch!, validUntil: lastValid });
    await delay(TTL);
    assert.equal(others.filter((h) => h.lease.isHolder).length, 1);
    timeline.assertOneHolderAtATime();
  });

  test('SIGSTOP of the holder for 2×TTL then SIGCONT: on waking it fences itself before anything else', async () => {
    const cluster = nextCluster();
    const timeline = new Timeline();
    const child = new ChildHub(server.url, cluster, TTL, 'paused', timeline);
    children.push(child);
    await child.waitFor('acquired');
    const others = await Promise.all(['b', 'c'].map((n) => hub(cluster, n, timeline)));
    for (const h of others) h.lease.start();
    await delay(TTL / 2);
    const stoppedAt = Date.now();
    child.signal('SIGSTOP');
    await until(() => others.some((h) => h.lease.isHolder), 'a takeover while paused', 3 * TTL);
    await delay(Math.max(0, stoppedAt + 2 * TTL - Date.now()));
    child.signal('SIGCONT');
    await until(() => child.lines.some((l) => l.at > stoppedAt && l.ev !== 'act'), 'the paused hub to speak', 3 * TTL);
    await delay(TTL);
    const afterWake = child.lines.filter((l) => l.at > stoppedAt);
    assert.equal(afterWake[0]?.ev, 'fenced', `first after waking: ${JSON.stringify(afterWake.slice(0, 3))}`);
    assert.equal(afterWake.filter((l) => l.ev === 'act' || l.ev === 'renewed' || l.ev === 'acquired').length, 0, 'no act as holder after waking');
    const acq = timeline.records.find((r) => r.ev === 'acquired' && r.hub !== 'paused')!;
    // The paused hub *notices* the fence on waking, after the takeover; but its holding ended at
    // validUntil, because every act checks the deadline first: no act after it, and the takeover after it.
    const lastAct = Math.max(...child.lines.filter((l) => l.ev === 'act').map((l) => l.at));
    assert.ok(lastAct <= afterWake[0].validUntil!, 'no act after the validity ended');
    assert.ok(afterWake[0].validUntil! <= acq.at, 'the takeover came after the paused hub\'s validity');
    console.log(`# SIGSTOP → takeover: ${acq.at - stoppedAt} ms; fenced ${Math.round(afterWake[0].at - afterWake[0].validUntil!)} ms late on waking`);
    assert.equal(others.filter((h) => h.lease.isHolder).length, 1);
    timeline.assertOneHolderAtATime();
  });

  for (const { label, downMs } of [{ label: 'a short restart (under the TTL)', downMs: 100 }, { label: 'a restart longer than the TTL', downMs: 2 * TTL }]) {
    test(`nats-server ${label} with the same store: the cluster recovers with one holder`, async () => {
      const cluster = nextCluster();
      const timeline = new Timeline();
      const all = await Promise.all(['a', 'b', 'c'].map((n) => hub(cluster, n, timeline)));
      for (const h of all) h.lease.start();
      await until(() => all.some((h) => h.lease.isHolder), 'a holder');
      await delay(TTL / 2);
      await server.restart('SIGTERM', downMs);
      await until(() => all.every((h) => h.conn.connected), 'every hub reconnected', 20_000);
      await until(() => all.filter((h) => h.lease.isHolder).length === 1, 'one holder again', 4 * TTL);
      await delay(TTL);
      assert.equal(all.filter((h) => h.lease.isHolder).length, 1);
      timeline.assertOneHolderAtATime();
      console.log(`# restart down ${downMs} ms: ${timeline.records.filter((r) => r.ev === 'acquired').length} acquisitions, ${timeline.records.filter((r) => r.ev === 'fenced').length} fences`);
    });
  }

  test('a holder renews as soon as NATS is back: a restart that ends after a skipped renew tick but before the deadline keeps the lease', async () => {
    // TTL 3000, renew every 1000, fence margin 300: a renew sent at S holds until S + 2700. The server goes down at
    // S + 900 and the client's second attempt comes ~1400 ms later (its first, at once, finds no server): back at
    // about S + 2350, after the tick at S + 2000 was skipped (no NATS) and before the deadline — the tick at S + 3000
    // would come too late. Renewing only on the timer fenced the holder here.
    const ttl = 3000;
    const conn = await connectCluster({ servers: server.url, reconnectWaitMs: 1400 });
    const store = await ClusterStore.open(conn, { cluster: nextCluster(), leaseTtlMs: ttl });
    const lease = new Lease({ store, upstream: 'feed', hubId: 'solo', hubName: 'solo', renewIntervalMs: 1000, fenceMarginMs: 300 });
    const events: string[] = [];
    lease.on('fenced', (e) => events.push(`fenced ${JSON.stringify(e)}`));
    lease.on('lost', (e) => { if (e.reason !== 'closed') events.push(`lost ${JSON.stringify(e)}`); });
    const renewals: number[] = [];
    lease.on('renewed', (e) => renewals.push(e.at));
    let reconnectedAt = 0;
    conn.on('status', (st) => { if (st.type === 'reconnected') reconnectedAt = Date.now(); });
    try {
      lease.start();
      const [acquired] = await waitFor<[{ epoch: number }]>(lease, 'acquired');
      const [renewed] = await waitFor<[{ validUntil: number }]>(lease, 'renewed');
      const sentAt = renewed.validUntil - (ttl - 300);
      await delay(Math.max(0, sentAt + 900 - Date.now()));
      await server.restart('SIGTERM');
      await until(() => reconnectedAt > 0, 'the client back on the server', 5000);
      await until(() => renewals.some((at) => at >= reconnectedAt), 'a renew after the reconnect', 3000);
      const next = renewals.find((at) => at >= reconnectedAt)!;
      assert.ok(reconnectedAt > sentAt + 2000, `back after the skipped tick (${reconnectedAt - sentAt} ms after the last renew's send)`);
      assert.deepEqual(events, [], `no fence, no loss (back ${reconnectedAt - sentAt} ms after the last renew's send; renewed ${next - reconnectedAt} ms after)`);
      assert.equal(lease.isHolder, true);
      assert.equal(lease.epoch, acquired.epoch, 'the same holding');
      console.log(`# restart after a skipped renew tick: back ${reconnectedAt - sentAt} ms after the last renew's send (deadline ${ttl - 300}), renewed ${next - reconnectedAt} ms later; same epoch, no fence`);
    } finally {
      await lease.close();
      await conn.close();
    }
  });

  test('hubs that start together all open a bucket none of them has created yet', async () => {
    // Each open finds no stream and creates it; in about one round in 75, nats-server 2.9 answers one of the
    // concurrent creates with "subjects overlap with an existing stream" (seen in CI when three hubs of a test started
    // at once). 300 rounds meet it in almost every run without the retry in ClusterStore.open.
    const conns = await Promise.all(Array.from({ length: 3 }, () => connectCluster({ servers: server.url })));
    try {
      for (let round = 0; round < 300; round++) {
        const cluster = nextCluster();
        const opened = await Promise.allSettled(conns.map((c) => ClusterStore.open(c, { cluster, leaseTtlMs: TTL })));
        const failed = opened.flatMap((r) => (r.status === 'rejected' ? [(r.reason as Error).message] : []));
        assert.deepEqual(failed, [], `round ${round}: ${failed.length} of ${conns.length} opens failed`);
      }
    } finally {
      await Promise.all(conns.map((c) => c.close()));
    }
  });

  test('a bucket with another TTL is refused with ERR_CLUSTER_BUCKET; bad options with ERR_INVALID_OPTION', async () => {
    const cluster = nextCluster();
    const conn = await connectCluster({ servers: server.url });
    try {
      const store = await ClusterStore.open(conn, { cluster, leaseTtlMs: TTL });
      await assert.rejects(ClusterStore.open(conn, { cluster, leaseTtlMs: TTL * 2 }), (err) => isWshubError(err, 'ERR_CLUSTER_BUCKET') && /same leaseTtlMs/.test(err.message));
      await assert.rejects(ClusterStore.open(conn, { cluster: 'bad.name', leaseTtlMs: TTL }), (err) => isWshubError(err, 'ERR_INVALID_OPTION'));
      await assert.rejects(ClusterStore.open(conn, { cluster, leaseTtlMs: 10 }), (err) => isWshubError(err, 'ERR_INVALID_OPTION'));
      assert.throws(() => new Lease({ store, upstream: 'feed', hubId: 'x', hubName: 'x', fenceMarginMs: TTL }), (err) => isWshubError(err, 'ERR_INVALID_OPTION'));
      assert.throws(() => new Lease({ store, upstream: 'feed', hubId: 'x', hubName: 'x', renewIntervalMs: TTL }), (err) => isWshubError(err, 'ERR_INVALID_OPTION'));
    } finally {
      await conn.close();
    }
  });
});
