import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type AddressInfo } from 'node:net';
import type { LookupFunction } from 'node:net';
import { ResilientWebSocket } from '../../src/upstream/resilient.js';
import { startDnsServer } from './dns-server.js';
import { echo, startWsServer, waitFor, waitState } from './helpers.js';

/** A `lookup` answering every name with exactly these addresses, in this order, as a resolver would. */
function fixedLookup(addresses: Array<{ address: string; family: 4 | 6 }>): LookupFunction {
  return ((_hostname: string, _options: unknown, callback: (err: null, list: Array<{ address: string; family: number }>) => void) => {
    setImmediate(() => callback(null, addresses));
  });
}

async function freePort(host: string): Promise<number> {
  const server = createServer();
  server.listen(0, host);
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

test('a refused port fails with ERR_TCP_CONNECT, errno ECONNREFUSED, naming the address', async (t) => {
  const port = await freePort('127.0.0.1');
  const client = new ResilientWebSocket({ url: `ws://127.0.0.1:${port}/`, backoff: { minDelayMs: 1000, maxDelayMs: 1000 } });
  t.after(() => client.destroy());
  const wait = waitState(client, 'reconnecting');
  client.connect();
  const change = await wait;
  assert.equal(change.cause?.code, 'ERR_TCP_CONNECT');
  assert.equal(change.cause?.details.errno, 'ECONNREFUSED');
  assert.equal(change.cause?.details.phase, 'tcp');
  assert.equal(change.cause?.details.address, `127.0.0.1:${port}`);
  assert.match(change.cause?.message ?? '', new RegExp(`^ERR_TCP_CONNECT 127\\.0\\.0\\.1:${port} \\(ECONNREFUSED\\)`));
  assert.equal(change.attempt, 1);
  assert.equal(change.outage, false, 'the first failure is concealed (concealFailures=2)');
  assert.equal(client.stats().lastClose?.errorCode, 'ERR_TCP_CONNECT');
});

test('an unresolvable name fails with ERR_DNS (a real DNS server on loopback answers NXDOMAIN)', async (t) => {
  const dns = await startDnsServer('nxdomain');
  const client = new ResilientWebSocket({ url: 'ws://nothing-here.test:80/', lookup: dns.lookup, backoff: { minDelayMs: 1000, maxDelayMs: 1000 } });
  t.after(async () => {
    client.destroy();
    await dns.close();
  });
  const wait = waitState(client, 'reconnecting');
  client.connect();
  const change = await wait;
  assert.equal(change.cause?.code, 'ERR_DNS');
  assert.equal(change.cause?.details.errno, 'ENOTFOUND');
  assert.equal(change.cause?.details.phase, 'dns');
  // Reported as an outage naming the host, not a bare errno.
  assert.match(change.cause?.message ?? '', /^ERR_DNS nothing-here\.test:80 \(ENOTFOUND: nothing-here\.test does not resolve: a DNS outage or a wrong host in the URL; retrying\)$/);
  assert.ok(dns.queries >= 1, 'the query reached the loopback DNS server');
});

test('a resolver that never answers fails with ERR_DNS_TIMEOUT after dnsTimeoutMs', async (t) => {
  const dns = await startDnsServer('silent');
  const client = new ResilientWebSocket({
    url: 'ws://slow-dns.test:80/', lookup: dns.lookup, dnsTimeoutMs: 300, backoff: { minDelayMs: 1000, maxDelayMs: 1000 },
  });
  t.after(async () => {
    client.destroy();
    await dns.close();
  });
  const wait = waitState(client, 'reconnecting');
  const started = Date.now();
  client.connect();
  const change = await wait;
  const took = Date.now() - started;
  assert.equal(change.cause?.code, 'ERR_DNS_TIMEOUT');
  assert.match(change.cause?.message ?? '', /^ERR_DNS_TIMEOUT slow-dns\.test:80 \(no answer from the resolver after 300 ms\)/);
  assert.ok(took >= 290 && took < 3000, `took ${took} ms`);
  assert.ok(dns.queries >= 1);
});

for (const order of [['::1', '127.0.0.1'], ['127.0.0.1', '::1']] as const) {
  for (const listening of ['127.0.0.1', '::1'] as const) {
    test(`dual stack: lookup answers [${order.join(', ')}], only ${listening} listens → connects over it`, async (t) => {
      const server = await startWsServer(listening);
      echo(server);
      // The other family's address gets the same port number but nothing listens there: refused at once.
      const lookup = fixedLookup(order.map((address) => ({ address, family: address.includes(':') ? 6 : 4 })));
      const client = new ResilientWebSocket({ url: `ws://dual.test:${server.port}/`, lookup, happyEyeballsDelayMs: 250 });
      t.after(async () => {
        client.destroy();
        await server.close();
      });
      const started = Date.now();
      const opened = waitFor<[{ family: string; remoteAddress: string }]>(client, 'open', () => true, 3000);
      client.connect();
      const [info] = await opened;
      const took = Date.now() - started;
      const family = listening === '::1' ? 'IPv6' : 'IPv4';
      assert.equal(info.family, family);
      assert.equal(info.remoteAddress, listening);
      assert.equal(client.stats().family, family);
      assert.equal(client.stats().remoteAddress, listening);
      assert.ok(took < 1000, `connected in ${took} ms`);
      const reply = waitFor<[Buffer, boolean]>(client, 'message');
      client.send('over ' + family);
      const [data, isBinary] = await reply;
      assert.equal(data.toString(), 'over ' + family);
      assert.equal(isBinary, false);
    });
  }
}

test('when every address fails the error names every address tried', async (t) => {
  const port4 = await freePort('127.0.0.1');
  const lookup = fixedLookup([{ address: '::1', family: 6 }, { address: '127.0.0.1', family: 4 }]);
  const client = new ResilientWebSocket({ url: `ws://dual.test:${port4}/`, lookup, backoff: { minDelayMs: 1000, maxDelayMs: 1000 } });
  t.after(() => client.destroy());
  const wait = waitState(client, 'reconnecting');
  client.connect();
  const change = await wait;
  assert.equal(change.cause?.code, 'ERR_TCP_CONNECT');
  assert.equal(change.cause?.details.errno, 'ECONNREFUSED');
  assert.deepEqual(change.cause?.details.addresses, [`[::1]:${port4}`, `127.0.0.1:${port4}`]);
  assert.ok(change.cause?.message.includes(`[::1]:${port4}`) && change.cause.message.includes(`127.0.0.1:${port4}`), change.cause?.message);
});

test('subprotocol and headers are passed through; the negotiated protocol is reported', async (t) => {
  const server = await startWsServer('127.0.0.1', { handleProtocols: (set) => (set.has('feed-v2') ? 'feed-v2' : false) });
  let seenHeader: string | undefined;
  server.wss.on('connection', (_ws, req) => {
    seenHeader = req.headers['x-test'] as string | undefined;
  });
  const client = new ResilientWebSocket({ url: server.url + '/p?token=secret', protocols: ['feed-v1', 'feed-v2'], headers: { 'X-Test': 'yes' } });
  t.after(async () => {
    client.destroy();
    await server.close();
  });
  const opened = waitFor<[{ protocol: string }]>(client, 'open');
  client.connect();
  const [info] = await opened;
  assert.equal(info.protocol, 'feed-v2');
  assert.equal(client.protocol, 'feed-v2');
  assert.equal(client.stats().protocol, 'feed-v2');
  assert.equal(seenHeader, 'yes');
  assert.equal(client.stats().url, `${server.url}/p?token=[REDACTED]`);
});
