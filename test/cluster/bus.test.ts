import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { ClusterBus, type BusMessage } from '../../src/cluster/bus.js';
import { connectCluster, type ClusterConnection } from '../../src/cluster/connect.js';
import { decodeToken, encodeToken, tokenTopic, topicToken, UpstreamNames } from '../../src/cluster/subjects.js';
import { NatsServer, delay, until, waitFor } from './helpers.js';
import { Timeline, localHub, type LocalHub } from './lease-helpers.js';

describe('topic tokens', () => {
  const topics = ['btcusdt@trade', 'a.b.c', '*', '>', 'a b', 'ünïcødé', '', '_', '_41', 'A-z_0', '🚀', 'x'.repeat(300), '\u0000', 'tab\there'];

  test('every topic becomes one NATS-safe token and decodes back to itself', () => {
    for (const t of topics) {
      const token = encodeToken(t);
      assert.match(token, /^[A-Za-z0-9_-]+$/, t);
      assert.equal(decodeToken(token), t);
    }
    assert.equal(encodeToken('btcusdt@trade'), 'btcusdt_40trade');
    assert.equal(encodeToken('a.b'), 'a_2Eb');
    assert.equal(encodeToken('_'), '_5F');
  });

  test('random texts round-trip and distinct texts get distinct tokens', () => {
    const seen = new Map<string, string>();
    for (let i = 0; i < 2000; i++) {
      const t = randomBytes(1 + (i % 24)).toString(i % 2 ? 'latin1' : 'utf8');
      const token = encodeToken(t);
      assert.equal(decodeToken(token), t);
      const other = seen.get(token);
      assert.ok(other === undefined || other === t, 'two texts, one token');
      seen.set(token, t);
    }
  });

  test('tokens not in canonical form are refused; raw has its own token', () => {
    for (const bad of ['_41', 'a_4', 'a.b', '_ff', '_FF', '_C3', 'a b', '', '*', '_raw_']) assert.equal(decodeToken(bad), undefined, bad);
    assert.equal(topicToken(null), '_raw');
    assert.equal(tokenTopic('_raw'), null);
    assert.equal(tokenTopic('_'), '');
    assert.throws(() => new UpstreamNames('bad.name', 'feed'));
    assert.equal(new UpstreamNames('prod', 'my feed').messageSubject('a.b'), 'wshub.prod.my_20feed.m.a_2Eb');
  });
});

describe('ClusterBus against a real nats-server', () => {
  const server = new NatsServer();
  const conns: ClusterConnection[] = [];
  const hubs: LocalHub[] = [];
  let clusterSeq = 0;
  before(async () => { await server.start(); });
  afterEach(async () => {
    await Promise.all(hubs.splice(0).map((h) => h.close()));
    await Promise.all(conns.splice(0).map((c) => c.close()));
  });
  after(async () => { await server.dispose(); });

  const connect = async (): Promise<ClusterConnection> => {
    const c = await connectCluster({ servers: server.url });
    conns.push(c);
    return c;
  };
  const holderHub = async (cluster: string, name = 'holder'): Promise<LocalHub> => {
    const h = await localHub(server.url, cluster, 1500, name, new Timeline());
    hubs.push(h);
    h.lease.start();
    await waitFor(h.lease, 'acquired');
    return h;
  };
  const collect = (bus: ClusterBus): BusMessage[] => {
    const out: BusMessage[] = [];
    bus.on('message', (m) => out.push(m));
    return out;
  };

  test('each subscriber gets exactly the messages of its topics, in order, bytes and binary flag intact', async () => {
    const cluster = `bus${++clusterSeq}`;
    const holder = await holderHub(cluster);
    const pub = new ClusterBus({ conn: holder.conn, cluster, upstream: 'feed', guard: holder.lease });
    const [c1, c2] = [await connect(), await connect()];
    const sub1 = new ClusterBus({ conn: c1, cluster, upstream: 'feed' });
    const sub2 = new ClusterBus({ conn: c2, cluster, upstream: 'feed' });
    sub1.subscribe('btcusdt@trade');
    sub1.subscribe(null);
    sub2.subscribe('a.b');
    sub2.subscribe('btcusdt@trade');
    sub2.subscribe('');
    const got1 = collect(sub1);
    const got2 = collect(sub2);
    await c1.nc.flush();
    await c2.nc.flush();
    const topics = ['btcusdt@trade', 'a.b', null, '', 'a', 'nobody'];
    const sent: { topic: string | null; data: Buffer; isBinary: boolean; seq: number }[] = [];
    for (let i = 0; i < 300; i++) {
      const topic = topics[i % topics.length]!;
      const isBinary = i % 3 === 0;
      const data = isBinary ? randomBytes(1 + (i % 50)) : Buffer.from(`{"i":${i},"t":${JSON.stringify(topic)}}`);
      const res = pub.publish({ topic, data, isBinary });
      assert.ok(res.ok);
      sent.push({ topic, data, isBinary, seq: res.seq });
    }
    const want1 = sent.filter((s) => s.topic === 'btcusdt@trade' || s.topic === null);
    const want2 = sent.filter((s) => s.topic === 'a.b' || s.topic === 'btcusdt@trade' || s.topic === '');
    await until(() => got1.length >= want1.length && got2.length >= want2.length, 'every message');
    await delay(100);
    for (const [got, want] of [[got1, want1], [got2, want2]] as const) {
      assert.equal(got.length, want.length);
      got.forEach((m, i) => {
        const w = want[i]!;
        assert.equal(m.topic, w.topic);
        assert.equal(m.isBinary, w.isBinary);
        assert.equal(m.seq, w.seq);
        assert.equal(m.epoch, holder.lease.epoch);
        assert.deepEqual(Buffer.from(m.data), w.data);
      });
    }
    assert.deepEqual(sent.map((s) => s.seq), sent.map((_, i) => i + 1), 'sequence per upstream per epoch from 1');
    assert.equal(pub.stats.published, 300);
    sub1.unsubscribe(null);
    assert.deepEqual(sub1.topics(), ['btcusdt@trade']);
    pub.publish({ topic: null, data: 'after unsubscribe', isBinary: false });
    pub.publish({ topic: 'btcusdt@trade', data: 'marker', isBinary: false });
    await until(() => got1.length === want1.length + 1, 'the marker');
    assert.equal(Buffer.from(got1.at(-1)!.data).toString(), 'marker');
  });

  test('a hub that does not hold the lease publishes nothing, and counts what it refused', async () => {
    const cluster = `bus${++clusterSeq}`;
    const holder = await holderHub(cluster);
    const pub = new ClusterBus({ conn: holder.conn, cluster, upstream: 'feed', guard: holder.lease });
    const sub = new ClusterBus({ conn: await connect(), cluster, upstream: 'feed' });
    sub.subscribe('t');
    await sub.flush();
    const got = collect(sub);
    assert.ok(pub.publish({ topic: 't', data: 'one', isBinary: false }).ok);
    await holder.lease.release();
    assert.deepEqual(pub.publish({ topic: 't', data: 'two', isBinary: false }), { ok: false, reason: 'not-holder' });
    assert.equal(pub.stats.publishRefusedNotHolder, 1);
    const receiveOnly = new ClusterBus({ conn: holder.conn, cluster, upstream: 'feed' });
    assert.deepEqual(receiveOnly.publish({ topic: 't', data: 'x', isBinary: false }), { ok: false, reason: 'not-holder' });
    await delay(300);
    assert.deepEqual(got.map((m) => Buffer.from(m.data).toString()), ['one']);
  });

  test('after a failover, late messages of the old epoch are dropped and counted; the new epoch is announced', async () => {
    const cluster = `bus${++clusterSeq}`;
    const a = await holderHub(cluster, 'a');
    const oldEpoch = a.lease.epoch;
    const b = await localHub(server.url, cluster, 1500, 'b', new Timeline());
    hubs.push(b);
    b.lease.start();
    await a.lease.release();
    await waitFor(b.lease, 'acquired');
    const sub = new ClusterBus({ conn: await connect(), cluster, upstream: 'feed' });
    sub.subscribe('t');
    await sub.flush();
    const got = collect(sub);
    const epochs: { from: number; to: number }[] = [];
    sub.on('epoch', (e) => epochs.push(e));
    const newPub = new ClusterBus({ conn: b.conn, cluster, upstream: 'feed', guard: b.lease });
    // A message the old holder stamped while it held the lease, delivered late (after the new holder's first).
    const latePub = new ClusterBus({ conn: a.conn, cluster, upstream: 'feed', guard: { holderEpoch: () => oldEpoch } });
    assert.ok(newPub.publish({ topic: 't', data: 'new-1', isBinary: false }).ok);
    await b.conn.nc.flush();
    await until(() => got.length === 1, 'the new holder\'s message');
    assert.ok(latePub.publish({ topic: 't', data: 'late-old', isBinary: false }).ok);
    await a.conn.nc.flush();
    assert.ok(newPub.publish({ topic: 't', data: 'new-2', isBinary: false }).ok);
    await until(() => got.length === 2, 'the second new message');
    await delay(100);
    assert.deepEqual(got.map((m) => Buffer.from(m.data).toString()), ['new-1', 'new-2']);
    assert.equal(sub.stats.droppedStaleEpoch, 1);
    assert.ok(b.lease.epoch > oldEpoch);
    assert.deepEqual(epochs, [{ from: 0, to: b.lease.epoch }]);
  });

  test('advanceEpoch (from the lease) drops an old holder\'s messages before the new holder publishes', async () => {
    const cluster = `bus${++clusterSeq}`;
    const holder = await holderHub(cluster);
    const pub = new ClusterBus({ conn: holder.conn, cluster, upstream: 'feed', guard: holder.lease });
    const sub = new ClusterBus({ conn: await connect(), cluster, upstream: 'feed' });
    sub.subscribe('t');
    await sub.flush();
    const got = collect(sub);
    sub.advanceEpoch(holder.lease.epoch + 1);
    assert.ok(pub.publish({ topic: 't', data: 'old', isBinary: false }).ok);
    await holder.conn.nc.flush();
    await until(() => sub.stats.droppedStaleEpoch === 1, 'the drop');
    assert.equal(got.length, 0);
  });

  test('malformed messages on the subjects are dropped and counted; too large ones are refused', async () => {
    const cluster = `bus${++clusterSeq}`;
    const holder = await holderHub(cluster);
    const pub = new ClusterBus({ conn: holder.conn, cluster, upstream: 'feed', guard: holder.lease });
    const sub = new ClusterBus({ conn: await connect(), cluster, upstream: 'feed' });
    sub.subscribe('t');
    await sub.flush();
    const got = collect(sub);
    const subject = pub.names.messageSubject('t');
    holder.conn.nc.publish(subject, 'no headers');
    const h = holder.conn.lib.core.headers();
    h.set('Wshub-Epoch', 'x');
    h.set('Wshub-Seq', '1');
    holder.conn.nc.publish(subject, 'bad epoch', { headers: h });
    await holder.conn.nc.flush();
    await until(() => sub.stats.droppedMalformed === 2, 'two malformed drops');
    assert.equal(got.length, 0);
    const big = Buffer.alloc(holder.conn.maxPayload + 1);
    assert.deepEqual(pub.publish({ topic: 't', data: big, isBinary: true }), { ok: false, reason: 'too-large' });
    assert.equal(pub.stats.publishRefusedTooLarge, 1);
    pub.close();
    assert.deepEqual(pub.publish({ topic: 't', data: 'x', isBinary: false }), { ok: false, reason: 'closed' });
  });
  test('messages NATS never delivered show as a jump in their subject\'s sequence: counted as missed and said, per subject, not across a new subscription', async () => {
    const cluster = `bus${++clusterSeq}`;
    const holder = await holderHub(cluster);
    const pub = new ClusterBus({ conn: holder.conn, cluster, upstream: 'feed', guard: holder.lease });
    const sub = new ClusterBus({ conn: await connect(), cluster, upstream: 'feed' });
    sub.subscribe('a');
    sub.subscribe('b');
    await sub.flush();
    const missed: Array<{ topic: string | null; count: number }> = [];
    sub.on('missed', (m) => missed.push({ topic: m.topic, count: m.count }));
    const got = collect(sub);
    // Interleaved topics: each subject counts on its own, so nothing is missed.
    for (const topic of ['a', 'b', 'a', 'a', 'b']) assert.equal(pub.publish({ topic, data: topic, isBinary: false }).ok, true);
    await until(() => got.length === 5, 'five messages');
    assert.equal(sub.stats.missed, 0);
    // What a lost stretch looks like on the wire: subject a's sequence jumps from 3 to 7 (as the holder would stamp it).
    const h = holder.conn.lib.core.headers();
    h.set('Wshub-Epoch', String(got[0]!.epoch));
    h.set('Wshub-Seq', '99');
    h.set('Wshub-Subject-Seq', '7');
    holder.conn.nc.publish(pub.names.messageSubject('a'), 'after a loss', { headers: h });
    await holder.conn.nc.flush();
    await until(() => got.length === 6, 'the message after the loss');
    assert.equal(sub.stats.missed, 3);
    assert.deepEqual(missed, [{ topic: 'a', count: 3 }]);
    // A subscriber joining mid-stream (subject b's sequence is at 2): its first message is no jump.
    const late = new ClusterBus({ conn: await connect(), cluster, upstream: 'feed' });
    late.subscribe('b');
    await late.flush();
    const lateGot = collect(late);
    pub.publish({ topic: 'b', data: 'b', isBinary: false });
    await until(() => lateGot.length === 1, 'b at the late subscriber');
    assert.equal(late.stats.missed, 0, 'joining mid-stream is no loss');
    late.close();
    pub.close();
    sub.close();
  });
});
