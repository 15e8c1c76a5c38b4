/**
 * Limits and access control, each asserted on its exact outcome and counter,
 * with a healthy session on the same server exchanging messages throughout.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import {
  HealthyPeer, closed, httpStatus, openClient, rawConnect, readAll, refusedWith, startEchoServer, tcpPort, tcpUrl,
  tempDir, upgradeRequest, waitFor, withTimeout,
} from './helpers.js';
import { HardenedServer } from '../../src/server/server.js';

test('maxConnections: the next upgrade is answered 503 ERR_TOO_MANY_CONNECTIONS; a freed slot is usable again', async (t) => {
  const server = await startEchoServer({ tcp: { port: 0 }, maxConnections: 2 });
  t.after(() => server.destroy());
  const healthy = await HealthyPeer.open(tcpUrl(server));
  t.after(() => healthy.close());
  const second = await openClient(tcpUrl(server));
  assert.deepEqual(await refusedWith(tcpUrl(server)), { status: 503, code: 'ERR_TOO_MANY_CONNECTIONS' });
  assert.equal(server.stats().rejected.ERR_TOO_MANY_CONNECTIONS, 1);
  await healthy.check();
  second.close();
  await closed(second);
  await waitFor(() => server.stats().open === 1, 3000, 'slot freed');
  const third = await openClient(tcpUrl(server));
  third.terminate();
  await healthy.check();
});

test('maxPendingHandshakes: a peer beyond the limit is answered 503 ERR_TOO_MANY_HANDSHAKES', async (t) => {
  const server = await startEchoServer({ tcp: { port: 0 }, maxPendingHandshakes: 3 });
  t.after(() => server.destroy());
  const healthy = await HealthyPeer.open(tcpUrl(server));
  t.after(() => healthy.close());
  const port = tcpPort(server);
  const idle = await Promise.all([rawConnect(port), rawConnect(port), rawConnect(port)]);
  t.after(() => idle.forEach((s) => s.destroy()));
  await waitFor(() => server.stats().handshaking === 3, 3000, '3 handshakes pending');
  const extra = await rawConnect(port);
  const answer = readAll(extra);
  extra.write(upgradeRequest());
  assert.equal(httpStatus(await answer), 503);
  assert.equal(server.stats().rejected.ERR_TOO_MANY_HANDSHAKES, 1);
  assert.equal(server.stats().handshaking, 3);
  await healthy.check();
  idle.forEach((s) => s.destroy());
  await waitFor(() => server.stats().handshaking === 0, 3000, 'pending handshakes gone');
  (await openClient(tcpUrl(server))).terminate();
});

test('maxMessagesPerSecond: a burst past the bucket closes the session 1008 ERR_RATE_LIMITED; every message delivered or counted', async (t) => {
  const RATE = 10;
  const SENT = 50;
  const server = new HardenedServer({ tcp: { port: 0 }, maxMessagesPerSecond: RATE });
  let delivered = 0;
  server.on('session', ({ ws, peer }) => {
    ws.on('message', (data, isBinary) => {
      if (peer.path === '/flood') delivered++;
      else ws.send(data as Buffer, { binary: isBinary });
    });
  });
  await server.listen();
  t.after(() => server.destroy());
  const healthy = await HealthyPeer.open(tcpUrl(server));
  t.after(() => healthy.close());
  const flooder = await openClient(tcpUrl(server, '/flood'));
  const closing = closed(flooder);
  for (let i = 0; i < SENT; i++) flooder.send(`m${i}`);
  const { code } = await closing;
  assert.equal(code, 1008);
  const stats = server.stats();
  assert.equal(stats.errors.ERR_RATE_LIMITED, 1);
  assert.equal(delivered + (stats.dropped.ERR_RATE_LIMITED ?? 0), SENT, 'every message delivered or counted as dropped');
  // The bucket holds one second's worth; a slow machine may refill a token or two during the burst.
  assert.ok(delivered >= RATE && delivered <= RATE + 3, `delivered ${delivered}`);
  await healthy.check();
});

test('a ping flood (over 60 pings in a burst) closes the session 1008 ERR_PING_FLOOD, not a lost session; a smaller burst is answered in full', async (t) => {
  const server = await startEchoServer({ tcp: { port: 0 }, pingIntervalMs: 0, idleTimeoutMs: 0 });
  t.after(() => server.destroy());
  const healthy = await HealthyPeer.open(tcpUrl(server));
  t.after(() => healthy.close());
  const closes: Array<{ code: number; errorCode?: string }> = [];
  server.on('sessionClose', (c) => closes.push(c));

  const polite = await openClient(tcpUrl(server));
  t.after(() => polite.terminate());
  let pongs = 0;
  polite.on('pong', () => pongs++);
  for (let i = 0; i < 50; i++) polite.ping(Buffer.from(String(i)));
  await waitFor(() => pongs === 50, 5000, '50 pongs');

  const flooder = await openClient(tcpUrl(server));
  const closing = closed(flooder);
  for (let i = 0; i < 200; i++) flooder.ping();
  const { code, reason } = await closing;
  assert.equal(code, 1008);
  assert.equal(reason, 'too many pings');
  await waitFor(() => closes.length === 1, 3000, 'the session close reported');
  assert.equal(closes[0]!.errorCode, 'ERR_PING_FLOOD');
  const stats = server.stats();
  assert.equal(stats.errors.ERR_PING_FLOOD, 1);
  assert.equal(stats.errors.ERR_SESSION_LOST, undefined, 'not reported as a lost session');
  assert.equal(polite.readyState, WebSocket.OPEN);
  await healthy.check();
});

test('idle timeout: a client that never answers pings is terminated and counted ERR_IDLE_TIMEOUT', async (t) => {
  const PING_MS = 100;
  const IDLE_MS = 400;
  const server = await startEchoServer({ tcp: { port: 0 }, pingIntervalMs: PING_MS, idleTimeoutMs: IDLE_MS });
  t.after(() => server.destroy());
  const healthy = await HealthyPeer.open(tcpUrl(server));
  t.after(() => healthy.close());
  const mute = new WebSocket(tcpUrl(server), { autoPong: false });
  await withTimeout(new Promise((r) => mute.once('open', r)), 5000, 'mute open');
  const started = Date.now();
  const { code } = await closed(mute, IDLE_MS + PING_MS + 3000);
  assert.equal(code, 1006, 'terminated without a close frame');
  assert.ok(Date.now() - started >= IDLE_MS - 50, 'not before the idle timeout');
  assert.equal(server.stats().errors.ERR_IDLE_TIMEOUT, 1);
  // The healthy client answered every ping (ws auto-pongs) over the same period.
  await healthy.check();
  assert.equal(server.stats().open, 1);
});

test('Origin: not on the list → 403 ERR_ORIGIN_REFUSED; listed (any case) or absent → open', async (t) => {
  const server = await startEchoServer({ tcp: { port: 0 }, allowedOrigins: ['https://ok.example'] });
  t.after(() => server.destroy());
  const healthy = await HealthyPeer.open(tcpUrl(server));
  t.after(() => healthy.close());
  assert.deepEqual(await refusedWith(tcpUrl(server), [], { origin: 'https://evil.example' }), { status: 403, code: 'ERR_ORIGIN_REFUSED' });
  assert.deepEqual(await refusedWith(tcpUrl(server), [], { origin: 'null' }), { status: 403, code: 'ERR_ORIGIN_REFUSED' });
  (await openClient(tcpUrl(server), [], { origin: 'https://OK.example' })).terminate();
  assert.equal(server.stats().rejected.ERR_ORIGIN_REFUSED, 2);
  await healthy.check();
});

test('the default allow-list is empty: every browser Origin is refused', async (t) => {
  const server = await startEchoServer({ tcp: { port: 0 } });
  t.after(() => server.destroy());
  assert.deepEqual(await refusedWith(tcpUrl(server), [], { origin: 'http://127.0.0.1:8080' }), { status: 403, code: 'ERR_ORIGIN_REFUSED' });
});

test('token: missing or wrong → 401 ERR_UNAUTHORIZED; right via header or via bearer subprotocol → open', async (t) => {
  const TOKEN = 's3cret-token';
  const dir = tempDir(t);
  const server = await startEchoServer({ tcp: { port: 0 }, listen: join(dir, 'hub.sock'), token: TOKEN });
  t.after(() => server.destroy());
  const url = tcpUrl(server);
  const healthy = await HealthyPeer.open(url, { headers: { Authorization: `Bearer ${TOKEN}` } });
  t.after(() => healthy.close());
  assert.deepEqual(await refusedWith(url), { status: 401, code: 'ERR_UNAUTHORIZED' });
  assert.deepEqual(await refusedWith(url, [], { headers: { Authorization: 'Bearer wrong' } }), { status: 401, code: 'ERR_UNAUTHORIZED' });
  assert.deepEqual(await refusedWith(url, ['bearer.wrong']), { status: 401, code: 'ERR_UNAUTHORIZED' });
  assert.equal(server.stats().rejected.ERR_UNAUTHORIZED, 3);

  const viaProtocolOnly = await openClient(url, [`bearer.${TOKEN}`]);
  // Offered alone, the bearer protocol is echoed: browsers fail a handshake that offered protocols and got none.
  assert.equal(viaProtocolOnly.protocol, `bearer.${TOKEN}`);
  viaProtocolOnly.terminate();
  const withAppProtocol = await openClient(url, [`bearer.${TOKEN}`, 'feed-v1']);
  assert.equal(withAppProtocol.protocol, 'feed-v1', 'the application protocol is selected, the bearer one hidden');
  withAppProtocol.terminate();

  // The Unix socket relies on its file mode unless tokenOnUnix is set.
  const viaUnix = await openClient(`ws+unix://${join(dir, 'hub.sock')}:/`);
  viaUnix.terminate();
  assert.equal(server.stats().rejected.ERR_UNAUTHORIZED, 3);
  await healthy.check();
});

test('tokenOnUnix: the Unix socket requires the token too', async (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'hub.sock');
  const server = await startEchoServer({ listen: path, token: 'tok', tokenOnUnix: true });
  t.after(() => server.destroy());
  assert.deepEqual(await refusedWith(`ws+unix://${path}:/`), { status: 401, code: 'ERR_UNAUTHORIZED' });
  (await openClient(`ws+unix://${path}:/`, [], { headers: { Authorization: 'Bearer tok' } })).terminate();
});

test('authorize refusals are answered with their status and counted under their code', async (t) => {
  const server = new HardenedServer({
    tcp: { port: 0 },
    authorize: (_req, peer) => (peer.path.startsWith('/u/known') ? undefined : { status: 404, code: 'ERR_UNKNOWN_UPSTREAM', message: 'no such upstream' }),
  });
  server.on('session', ({ ws }) => ws.on('message', (d, b) => ws.send(d as Buffer, { binary: b })));
  await server.listen();
  t.after(() => server.destroy());
  const healthy = await HealthyPeer.open(tcpUrl(server, '/u/known?group=a'));
  t.after(() => healthy.close());
  assert.deepEqual(await refusedWith(tcpUrl(server, '/u/other')), { status: 404, code: 'ERR_UNKNOWN_UPSTREAM' });
  assert.equal(server.stats().rejected.ERR_UNKNOWN_UPSTREAM, 1);
  await healthy.check();
});

test('a throwing callback answers 500 / closes 1011 with ERR_CALLBACK_FAILED and touches nothing else', async (t) => {
  const server = new HardenedServer({
    tcp: { port: 0 },
    authorize: (_req, peer) => {
      if (peer.path === '/boom') throw new Error('authorize bug');
      return undefined;
    },
    handleProtocols: (protocols) => {
      if (protocols.has('boom')) throw new Error('handleProtocols bug');
      return false;
    },
  });
  server.on('session', ({ ws, peer }) => {
    if (peer.path === '/session-boom') throw new Error('session listener bug');
    ws.on('message', (d, b) => ws.send(d as Buffer, { binary: b }));
  });
  await server.listen();
  t.after(() => server.destroy());
  const healthy = await HealthyPeer.open(tcpUrl(server));
  t.after(() => healthy.close());
  assert.equal((await refusedWith(tcpUrl(server, '/boom'))).status, 500);
  assert.equal((await refusedWith(tcpUrl(server), ['boom'])).status, 500);
  const victim = await openClient(tcpUrl(server, '/session-boom'));
  assert.equal((await closed(victim)).code, 1011);
  assert.equal(server.stats().errors.ERR_CALLBACK_FAILED, 3);
  assert.equal(server.stats().handshaking, 0);
  await healthy.check();
});

test('options are validated: unknown keys and bad values are ERR_INVALID_OPTION', () => {
  assert.throws(() => new HardenedServer({ tcp: { port: 0 }, maxConection: 3 } as never), (err: { code?: string; message?: string }) => err.code === 'ERR_INVALID_OPTION' && /did you mean "maxConnections"/.test(err.message ?? ''));
  assert.throws(() => new HardenedServer({ tcp: { port: 70000 } }), { code: 'ERR_INVALID_OPTION' });
  assert.throws(() => new HardenedServer({}), { code: 'ERR_INVALID_OPTION' });
});
