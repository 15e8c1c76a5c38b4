/**
 * A pool paused by the hub (its writes to workers are behind) stops reading
 * every connection, and a connection it opens meanwhile — a new shard for a
 * new topic — starts paused too: otherwise the new shard would keep pouring
 * messages into queues the pause is meant to protect.
 */
import { strict as assert } from 'node:assert';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Pool } from '../../src/hub/pool.js';
import { resolvePool } from '../../src/hub/pool-config.js';
import { silentLogger } from '../../src/observe/log.js';
import { Exchange } from '../support/exchange.js';
import { eventually, runCleanup } from './helpers.js';

const cleanups: Array<() => unknown> = [];
after(() => runCleanup(cleanups));

test('a connection the pool opens while paused starts paused, and reads once resumed', async () => {
  const exchange = await Exchange.start();
  cleanups.push(() => exchange.close());
  const client: Record<string, unknown> = { url: exchange.url, pingIntervalMs: 0 };
  const config = resolvePool({ adapter: 'json', maxTopicsPerConnection: 1 }, client, 'upstreams.feed');
  const pool = new Pool({
    name: 'feed', config, client, logger: silentLogger,
    render: (kind, parts) => ({ data: JSON.stringify({ method: kind === 'subscribe' ? 'SUBSCRIBE' : 'UNSUBSCRIBE', params: parts.flatMap((p) => p.topics), id: 1 }), isBinary: false }),
    dropped: () => undefined,
    topicsPerFrame: () => 50,
    pending: () => 0,
    exactHandover: false,
  });
  cleanups.push(() => pool.destroy());
  const got: string[] = [];
  pool.on('message', (data) => {
    const m = JSON.parse(data.toString()) as { stream?: string };
    if (m.stream) got.push(m.stream);
  });
  // What the hub's route does: an opened connection gets its topics subscribed (`only`: that shard's).
  pool.on('opened', (_reconnect, only) => { if (only && only.length > 0) pool.control([{ kind: 'subscribe', topics: only }]); });
  pool.start();
  await eventually(() => pool.state === 'open', 'the first connection to open');
  pool.control([{ kind: 'subscribe', topics: ['a'] }]);
  await eventually(() => exchange.stats().subscribes.a === 1, 'topic a subscribed');

  pool.pause();
  // One topic per connection: b opens a second connection, while the pool is paused.
  pool.control([{ kind: 'subscribe', topics: ['b'] }]);
  await eventually(() => exchange.stats().subscribes.b === 1, 'topic b subscribed on a new connection');
  assert.equal(exchange.stats().live.length, 2, 'two connections');
  exchange.tick(['a', 'b']);
  await sleep(300);
  assert.deepEqual(got, [], 'nothing read from either connection while paused');

  pool.resume();
  const seen = (): readonly string[] => got;
  await eventually(() => seen().includes('a') && seen().includes('b'), 'both ticks once resumed');
});
