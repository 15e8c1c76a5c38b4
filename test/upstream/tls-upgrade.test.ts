import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer as createHttpServer } from 'node:http';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { ResilientWebSocket } from '../../src/upstream/resilient.js';
import { delay, makeCert, startWssServer, waitFor, waitState, type TestCert } from './helpers.js';

let cert: TestCert;
before(() => {
  cert = makeCert();
});
after(() => cert.cleanup());

/** A TCP server that accepts and then says nothing at all; tracks its sockets for cleanup. */
async function silentTcpServer(): Promise<{ port: number; accepted: () => number; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  let accepted = 0;
  const server = createServer((socket) => {
    accepted++;
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.resume();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    accepted: () => accepted,
    close: () => new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }),
  };
}

/** An HTTP server answering every upgrade with `status`; counts the upgrade requests. */
async function rejectingServer(status: number): Promise<{ port: number; requests: () => number; close: () => Promise<void> }> {
  let requests = 0;
  const server = createHttpServer((_req, res) => res.writeHead(status).end());
  server.on('upgrade', (_req, socket: Socket) => {
    requests++;
    socket.end(`HTTP/1.1 ${status} Nope\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    requests: () => requests,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

test('a TCP server that never completes TLS → ERR_TLS_TIMEOUT naming the address', async (t) => {
  const server = await silentTcpServer();
  const client = new ResilientWebSocket({ url: `wss://127.0.0.1:${server.port}/`, tlsTimeoutMs: 300, backoff: { minDelayMs: 5000, maxDelayMs: 5000 } });
  t.after(async () => {
    client.destroy();
    await server.close();
  });
  const wait = waitState(client, 'reconnecting');
  client.connect();
  const change = await wait;
  assert.equal(change.cause?.code, 'ERR_TLS_TIMEOUT');
  assert.equal(change.cause?.details.phase, 'tls');
  assert.equal(change.cause?.message, `ERR_TLS_TIMEOUT 127.0.0.1:${server.port} (tls handshake not done after 300 ms)`);
  assert.equal(server.accepted(), 1);
});

test('a self-signed certificate is refused by default → ERR_TLS', async (t) => {
  const server = await startWssServer(cert);
  const client = new ResilientWebSocket({ url: server.url, backoff: { minDelayMs: 5000, maxDelayMs: 5000 } });
  t.after(async () => {
    client.destroy();
    await server.close();
  });
  const wait = waitState(client, 'reconnecting');
  client.connect();
  const change = await wait;
  assert.equal(change.cause?.code, 'ERR_TLS');
  assert.equal(change.cause?.details.errno, 'DEPTH_ZERO_SELF_SIGNED_CERT');
  assert.match(change.cause?.message ?? '', new RegExp(`^ERR_TLS 127\\.0\\.0\\.1:${server.port} \\(DEPTH_ZERO_SELF_SIGNED_CERT`));
  // Retrying cannot fix a certificate: the message says so and names the options that can.
  assert.match(change.cause?.message ?? '', /retrying alone will not fix this: trust the issuing CA with caFile \(config\) or ca \(library\).*rejectUnauthorized: false/);
  assert.equal(change.cause?.details.certificate, true);
});

for (const host of ['127.0.0.1', '::1', 'localhost'] as const) {
  test(`the server's certificate given as \`ca\` → connects over TLS to ${host}, echo byte-exact`, async (t) => {
    const server = await startWssServer(cert, host === 'localhost' ? '127.0.0.1' : host);
    const url = host === 'localhost' ? `wss://localhost:${server.port}/` : server.url;
    const client = new ResilientWebSocket({ url, ca: cert.cert });
    t.after(async () => {
      client.destroy();
      await server.close();
    });
    const opened = waitFor<[{ family: string; localAddress: string | undefined }]>(client, 'open');
    client.connect();
    const [info] = await opened;
    assert.equal(info.family, host === '::1' ? 'IPv6' : 'IPv4');
    assert.equal(info.localAddress, host === '::1' ? '::1' : '127.0.0.1', 'the local address is known, so netwatch can watch it');
    const payload = Buffer.from([0, 255, 1, 254, 0x80]);
    const reply = waitFor<[Buffer, boolean]>(client, 'message');
    client.send(payload);
    const [data, isBinary] = await reply;
    assert.equal(isBinary, true);
    assert.deepEqual(data, payload);
  });
}

test('upgrade answered 403 → ERR_UPGRADE_REJECTED status 403, closed, no retry', async (t) => {
  const server = await rejectingServer(403);
  const client = new ResilientWebSocket({ url: `ws://127.0.0.1:${server.port}/`, backoff: { minDelayMs: 20, maxDelayMs: 20, floorMs: 20 } });
  t.after(async () => {
    client.destroy();
    await server.close();
  });
  const states: string[] = [];
  client.on('state', (s) => states.push(s.to));
  const wait = waitState(client, 'closed');
  client.connect();
  const change = await wait;
  assert.equal(change.cause?.code, 'ERR_UPGRADE_REJECTED');
  assert.equal(change.cause?.details.status, 403);
  assert.equal(change.cause?.details.phase, 'upgrade');
  assert.match(change.cause?.message ?? '', new RegExp(`^ERR_UPGRADE_REJECTED 127\\.0\\.0\\.1:${server.port} \\(HTTP 403`));
  await delay(200);
  assert.equal(server.requests(), 1, 'a fatal status is not retried');
  assert.deepEqual(states, ['connecting', 'closed']);
  assert.equal(client.stats().lastClose?.errorCode, 'ERR_UPGRADE_REJECTED');
});

test('a refused upgrade quotes the start of the server\'s answer, one line, ~200 bytes, our secrets redacted', async (t) => {
  const apiKey = 'k3y-0f-the-user-1234567890';
  let requests = 0;
  const server = createHttpServer();
  server.on('upgrade', (_req, socket: Socket) => {
    requests++;
    // A server that echoes the key it refused, over several lines, with a long tail.
    const body = `{"error":"invalid api key",\n"key":"${apiKey}",\n"see":"https://x.example/?token=${apiKey}"}${'.'.repeat(2000)}`;
    socket.end(`HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  const client = new ResilientWebSocket({ url: `ws://127.0.0.1:${port}/ws?apikey=${apiKey}`, headers: { 'X-Api-Key': apiKey } });
  t.after(async () => {
    client.destroy();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });
  const wait = waitState(client, 'closed');
  client.connect();
  const change = await wait;
  const message = change.cause?.message ?? '';
  assert.equal(change.cause?.code, 'ERR_UPGRADE_REJECTED');
  assert.equal(requests, 1);
  assert.match(message, new RegExp(`^ERR_UPGRADE_REJECTED 127\\.0\\.0\\.1:${port} \\(HTTP 401 Unauthorized: \\{"error":"invalid api key", "key":"\\[REDACTED\\]"`));
  assert.ok(!message.includes(apiKey), `the key is not quoted back: ${message}`);
  assert.ok(!message.includes('\n'), 'one line');
  const quoted = String(change.cause?.details.body);
  assert.ok(Buffer.byteLength(quoted) <= 200 + 3, `at most ~200 bytes quoted (${Buffer.byteLength(quoted)})`);
  assert.ok(quoted.endsWith('…'), 'a cut body says so');
});

test('upgrade answered 503 → ERR_UPGRADE_REJECTED status 503 and retried', async (t) => {
  const server = await rejectingServer(503);
  const client = new ResilientWebSocket({ url: `ws://127.0.0.1:${server.port}/`, backoff: { minDelayMs: 20, maxDelayMs: 40, floorMs: 10 } });
  t.after(async () => {
    client.destroy();
    await server.close();
  });
  const first = waitState(client, 'reconnecting');
  client.connect();
  const change = await first;
  assert.equal(change.cause?.code, 'ERR_UPGRADE_REJECTED');
  assert.equal(change.cause?.details.status, 503);
  await waitState(client, 'reconnecting', 3000, (s) => s.attempt === 3);
  assert.equal(client.state, 'reconnecting');
  assert.ok(server.requests() >= 3, `${server.requests()} upgrade requests`);
  // Refused upgrades are failed attempts, never reconnects (nothing ever opened).
  assert.equal(client.stats().failedAttemptsByCause.ERR_UPGRADE_REJECTED, client.stats().failedAttempts);
  assert.ok(client.stats().failedAttempts >= 3);
  assert.equal(client.stats().reconnects, 0);
  assert.equal(client.stats().disconnects, 0);
});

test('a server that accepts TCP but never answers the upgrade → ERR_UPGRADE_TIMEOUT', async (t) => {
  const server = await silentTcpServer();
  const client = new ResilientWebSocket({ url: `ws://127.0.0.1:${server.port}/`, upgradeTimeoutMs: 300, backoff: { minDelayMs: 5000, maxDelayMs: 5000 } });
  t.after(async () => {
    client.destroy();
    await server.close();
  });
  const wait = waitState(client, 'reconnecting');
  client.connect();
  const change = await wait;
  assert.equal(change.cause?.code, 'ERR_UPGRADE_TIMEOUT');
  assert.equal(change.cause?.details.phase, 'upgrade');
  assert.equal(change.cause?.message, `ERR_UPGRADE_TIMEOUT 127.0.0.1:${server.port} (http upgrade not answered after 300 ms)`);
});

test('a 101 answer with a wrong Sec-WebSocket-Accept → ERR_UPGRADE_INVALID, retried', async (t) => {
  const server = createHttpServer();
  let upgrades = 0;
  server.on('upgrade', (_req, socket: Socket) => {
    upgrades++;
    socket.end('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: bm90IHRoZSByaWdodCBrZXk=\r\n\r\n');
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  const client = new ResilientWebSocket({ url: `ws://127.0.0.1:${port}/`, backoff: { minDelayMs: 20, maxDelayMs: 40, floorMs: 10 } });
  t.after(async () => {
    client.destroy();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  const first = waitState(client, 'reconnecting');
  client.connect();
  const change = await first;
  assert.equal(change.cause?.code, 'ERR_UPGRADE_INVALID');
  assert.equal(change.cause?.details.phase, 'upgrade');
  assert.match(change.cause?.message ?? '', new RegExp(`^ERR_UPGRADE_INVALID 127\\.0\\.0\\.1:${port} \\(Invalid Sec-WebSocket-Accept header\\)`));
  await waitState(client, 'reconnecting', 3000, (s) => s.attempt === 2);
  assert.ok(upgrades >= 2);
});

test('a peer that resets the connection on the upgrade request → ERR_CONNECTION_LOST in the upgrade phase with ECONNRESET', async (t) => {
  // Reset only once the request arrived, so the reset lands in the upgrade phase, not in connect().
  const server = createServer((socket) => socket.once('data', () => socket.resetAndDestroy()));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  const client = new ResilientWebSocket({ url: `ws://127.0.0.1:${port}/`, backoff: { minDelayMs: 5000, maxDelayMs: 5000 } });
  t.after(async () => {
    client.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  const first = waitState(client, 'reconnecting');
  client.connect();
  const change = await first;
  assert.equal(change.cause?.code, 'ERR_CONNECTION_LOST');
  assert.equal(change.cause?.details.phase, 'upgrade');
  assert.equal(change.cause?.details.errno, 'ECONNRESET');
  assert.equal(change.cause?.details.address, `127.0.0.1:${port}`);
});
