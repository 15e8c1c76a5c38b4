/**
 * Pacing against a server that enforces a control-frame limit over a rolling
 * window (the test exchange, as Binance does): frames sent through a
 * RateGate over a SlidingWindow under the limit are all answered and the
 * connection is never closed; a token bucket of the server's own nominal
 * rate bursts past it (its burst plus its refill land in one window) and is
 * closed 1008. Margins are wide on purpose: the server stamps frames when it
 * reads them, so a stalled event loop can read a paced sequence in one batch.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RateGate, SlidingWindow } from '../../src/upstream/rate.js';
import { ResilientWebSocket } from '../../src/upstream/resilient.js';
import type { StateChange } from '../../src/upstream/types.js';
import { Exchange } from '../support/exchange.js';
import { waitFor, waitState } from './helpers.js';

async function connected(ex: Exchange): Promise<{ client: ResilientWebSocket; answers: () => number }> {
  let answers = 0;
  const client = new ResilientWebSocket({ url: ex.url, pingIntervalMs: 0, netwatch: false, backoff: { minDelayMs: 60_000, maxDelayMs: 60_000 } });
  client.on('message', (data) => {
    if ('result' in (JSON.parse(data.toString()) as object)) answers++;
  });
  const opened = waitFor(client, 'open');
  client.connect();
  await opened;
  return { client, answers: () => answers };
}

test('a RateGate over a SlidingWindow under the exchange\'s limit: every frame answered, never closed', async (t) => {
  const ex = await Exchange.start({ maxControlPerSecond: 5, windowMs: 200 });
  const { client, answers } = await connected(ex);
  const gate = new RateGate(new SlidingWindow({ messages: 2, perMs: 300 }));
  t.after(async () => {
    gate.close();
    client.destroy();
    await ex.kill();
  });
  const N = 10;
  for (let i = 0; i < N; i++) {
    await gate.acquire();
    client.send(JSON.stringify({ method: 'SUBSCRIBE', params: [`t${i}`], id: i }));
  }
  await waitFor(client, 'message', () => answers() === N);
  const s = ex.stats();
  assert.equal(s.limitCloses.maxControlPerSecond, 0);
  assert.ok(s.maxControlInWindow <= 5, `at most 5 frames seen in a window, saw ${s.maxControlInWindow}`);
  assert.equal(Object.keys(s.subscribes).length, N);
  assert.equal(client.state, 'open');
});

test('a token bucket at the exchange\'s own nominal rate trips it: burst and refill land in one window → 1008', async (t) => {
  const ex = await Exchange.start({ maxControlPerSecond: 5, windowMs: 1000 });
  const { client } = await connected(ex);
  const gate = new RateGate({ messages: 5, perMs: 1000 });
  t.after(async () => {
    gate.close();
    client.destroy();
    await ex.kill();
  });
  const closed = waitState(client, 'closed', 10_000);
  for (let i = 0; i < 6; i++) {
    await gate.acquire();
    client.send(JSON.stringify({ method: 'SUBSCRIBE', params: [`t${i}`], id: i }));
  }
  const change: StateChange = await closed;
  // 1008 is one of the default fatal close codes: the client stops retrying, as it should against a limit.
  assert.equal(change.cause?.code, 'ERR_FATAL_CLOSE_CODE');
  assert.match(change.reason, /maxControlPerSecond 5/);
  assert.equal(ex.stats().limitCloses.maxControlPerSecond, 1);
});
