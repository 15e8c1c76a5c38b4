import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connectCluster, type ClusterConnection } from '../../src/cluster/connect.js';
import { ClusterRequests, type ForwardedFrame, type Replier } from '../../src/cluster/requests.js';
import { isWshubError } from '../../src/errors.js';
import { NatsServer, delay, waitFor } from './helpers.js';
import { Timeline, localHub, type LocalHub } from './lease-helpers.js';

describe('forwarding worker frames to the holder, against a real nats-server', () => {
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

  const holderHub = async (cluster: string, name: string, start = true): Promise<LocalHub> => {
    const h = await localHub(server.url, cluster, 1500, name, new Timeline());
    hubs.push(h);
    if (start) {
      h.lease.start();
      await waitFor(h.lease, 'acquired');
    }
    return h;
  };
  const forwarder = async (cluster: string, hubId: string): Promise<ClusterRequests> => {
    const conn = await connectCluster({ servers: server.url });
    conns.push(conn);
    return new ClusterRequests({ conn, cluster, upstream: 'feed', hubId, guard: { holderEpoch: () => undefined } });
  };
  const serve = (h: LocalHub, cluster: string, handler: (f: ForwardedFrame, r: Replier) => void): ClusterRequests => {
    const r = new ClusterRequests({ conn: h.conn, cluster, upstream: 'feed', hubId: h.lease.hubId, guard: h.lease });
    r.serve(handler);
    return r;
  };

  test('requests with colliding ids from many workers on two hubs: every answer exactly once, to its asker', async () => {
    const cluster = `req${++clusterSeq}`;
    const holder = await holderHub(cluster, 'holder');
    const seen: ForwardedFrame[] = [];
    const server_ = serve(holder, cluster, (frame, replier) => {
      seen.push(frame);
      const req = JSON.parse(Buffer.from(frame.data).toString()) as { id: number; worker: string };
      // Answer out of order, as an upstream would.
      setTimeout(() => replier.reply(JSON.stringify({ id: req.id, result: `for ${req.worker}` }), false), Math.random() * 30);
    });
    await holder.conn.nc.flush();
    const [h1, h2] = [await forwarder(cluster, 'hub-1'), await forwarder(cluster, 'hub-2')];
    const asks: Promise<void>[] = [];
    for (const [hub, r] of [['hub-1', h1], ['hub-2', h2]] as const) {
      for (let w = 0; w < 20; w++) {
        for (let id = 1; id <= 5; id++) {
          const worker = `${hub}/w${w}`;
          asks.push(r.forward({ kind: 'request', data: JSON.stringify({ id, worker }), isBinary: false }, { timeoutMs: 5000, epoch: holder.lease.epoch }).then((answer) => {
            assert.deepEqual(JSON.parse(Buffer.from(answer.data).toString()), { id, result: `for ${worker}` });
            assert.equal(answer.epoch, holder.lease.epoch);
            assert.equal(answer.isBinary, false);
          }));
        }
      }
    }
    await Promise.all(asks);
    assert.equal(seen.length, 200);
    assert.deepEqual(new Set(seen.map((f) => f.fromHub)), new Set(['hub-1', 'hub-2']));
    assert.ok(seen.every((f) => f.kind === 'request' && f.timeoutMs === 5000 && f.epoch === holder.lease.epoch));
    assert.equal(h1.stats.forwarded + h2.stats.forwarded, 200);
    assert.equal(server_.stats.served, 200);
  });

  test('sends are acknowledged; binary frames keep their bytes and flag; failures carry the holder\'s code', async () => {
    const cluster = `req${++clusterSeq}`;
    const holder = await holderHub(cluster, 'holder');
    serve(holder, cluster, (frame, replier) => {
      const text = Buffer.from(frame.data).toString();
      if (frame.kind === 'send' && frame.isBinary) return replier.reply(frame.data, true);
      if (text === 'full') return replier.fail('ERR_QUEUE_FULL', 'the upstream queue is full');
      if (text === 'odd') return replier.fail('ERR_NOT_A_CODE' as never, 'odd');
      replier.reply('', false);
      replier.reply('twice', false); // only the first answer counts
    });
    await holder.conn.nc.flush();
    const f = await forwarder(cluster, 'hub-1');
    const bytes = Buffer.from([0, 255, 1, 254]);
    const echoed = await f.forward({ kind: 'send', data: bytes, isBinary: true });
    assert.equal(echoed.isBinary, true);
    assert.deepEqual(Buffer.from(echoed.data), bytes);
    const ack = await f.forward({ kind: 'send', data: 'hello', isBinary: false });
    assert.equal(ack.data.length, 0);
    await assert.rejects(f.forward({ kind: 'request', data: 'full', isBinary: false }), (err) => isWshubError(err, 'ERR_QUEUE_FULL') && err.message === 'the upstream queue is full');
    await assert.rejects(f.forward({ kind: 'request', data: 'odd', isBinary: false }), (err) => isWshubError(err, 'ERR_UPSTREAM_UNAVAILABLE') && err.details.remoteCode === 'ERR_NOT_A_CODE');
  });

  test('nobody holds: ERR_CLUSTER_NO_HOLDER at once; a holder that does not answer: ERR_CLUSTER_REQUEST_TIMEOUT', async () => {
    const cluster = `req${++clusterSeq}`;
    const f = await forwarder(cluster, 'hub-1');
    await assert.rejects(f.forward({ kind: 'request', data: 'x', isBinary: false }, { timeoutMs: 5000 }), (err) => isWshubError(err, 'ERR_CLUSTER_NO_HOLDER'));
    const holder = await holderHub(cluster, 'holder');
    serve(holder, cluster, () => undefined);
    await holder.conn.nc.flush();
    await assert.rejects(f.forward({ kind: 'request', data: 'x', isBinary: false }, { timeoutMs: 300 }), (err) => isWshubError(err, 'ERR_CLUSTER_REQUEST_TIMEOUT'));
    assert.equal(f.stats.forwardFailed, 2);
  });

  test('a hub that lost the lease but still listens stays silent: the new holder answers', async () => {
    const cluster = `req${++clusterSeq}`;
    const a = await holderHub(cluster, 'a');
    const b = await holderHub(cluster, 'b', false);
    const stale = serve(a, cluster, (_f, r) => r.reply('from a', false));
    b.lease.start();
    await a.lease.release(); // a does not call stopServing(): its lease check must keep it quiet
    await waitFor(b.lease, 'acquired');
    serve(b, cluster, (_f, r) => r.reply('from b', false));
    await b.conn.nc.flush();
    const f = await forwarder(cluster, 'hub-1');
    for (let i = 0; i < 10; i++) {
      const answer = await f.forward({ kind: 'request', data: 'who', isBinary: false }, { timeoutMs: 2000 });
      assert.equal(Buffer.from(answer.data).toString(), 'from b');
      assert.equal(answer.epoch, b.lease.epoch);
    }
    await delay(50);
    assert.equal(stale.stats.ignoredNotHolder, 10);
    stale.stopServing();
    assert.equal(stale.serving, false);
  });
});
