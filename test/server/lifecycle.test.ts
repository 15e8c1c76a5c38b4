/**
 * close() and destroy() in-process: new work refused while draining, the
 * drain bounded by drainTimeoutMs, both idempotent.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { HardenedServer } from '../../src/server/server.js';
import type { SessionClose } from '../../src/server/types.js';
import { closed, httpStatus, openClient, rawConnect, rawUpgraded, readAll, serverCloseCode, startEchoServer, tcpPort, tcpUrl, tempDir, waitFor, withTimeout } from './helpers.js';

test('close(): pending handshakes get 503, sessions 1001, new connections are refused, then it resolves', async (t) => {
  const server = await startEchoServer({ tcp: { port: 0 } });
  t.after(() => server.destroy());
  const port = tcpPort(server);
  const ends: SessionClose[] = [];
  server.on('sessionClose', (e) => ends.push(e));
  const client = await openClient(tcpUrl(server));
  const pending = await rawConnect(port);
  const pendingAnswer = readAll(pending);
  await waitFor(() => server.stats().handshaking === 1, 3000, 'one pending handshake');

  const closing = server.close();
  assert.equal(server.state, 'closing');
  assert.equal((await closed(client)).code, 1001);
  assert.equal(httpStatus(await pendingAnswer), 503);
  const refused = await new Promise<string>((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve('connected');
    });
    s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
  });
  assert.equal(refused, 'ECONNREFUSED');
  await withTimeout(closing, 5000, 'close() to resolve');
  assert.equal(server.state, 'closed');
  assert.equal(server.stats().rejected.ERR_SHUTTING_DOWN, 1);
  assert.deepEqual(ends.map((e) => [e.code, e.errorCode]), [[1001, 'ERR_SHUTTING_DOWN']]);
});

test('close() terminates a session that never answers the 1001 after drainTimeoutMs', async (t) => {
  const DRAIN_MS = 300;
  const server = await startEchoServer({ tcp: { port: 0 }, drainTimeoutMs: DRAIN_MS });
  t.after(() => server.destroy());
  // A raw peer: it reads the close frame but never answers it.
  const { socket, rest } = await rawUpgraded(tcpPort(server));
  let stream = rest;
  socket.on('data', (c: Buffer) => (stream = Buffer.concat([stream, c])));
  const gone = readAll(socket, DRAIN_MS + 5000);
  const started = Date.now();
  await withTimeout(server.close(), DRAIN_MS + 5000, 'close() bounded by drainTimeoutMs');
  await gone;
  assert.ok(Date.now() - started >= DRAIN_MS - 50, 'the peer had drainTimeoutMs to answer');
  assert.equal(serverCloseCode(stream), 1001);
  assert.equal(server.stats().open, 0);
});

test('destroy() during close() ends everything at once and close() still resolves; both idempotent', async (t) => {
  const server = await startEchoServer({ tcp: { port: 0 }, drainTimeoutMs: 60_000 });
  t.after(() => server.destroy());
  const { socket } = await rawUpgraded(tcpPort(server));
  const gone = readAll(socket);
  const closing = server.close();
  server.destroy();
  server.destroy();
  await withTimeout(closing, 3000, 'close() after destroy()');
  await gone;
  assert.equal(server.state, 'closed');
  assert.equal(server.close(), closing);
});

test('close() before listen() resolves and leaves the server closed', async () => {
  const server = new HardenedServer({ tcp: { port: 0 } });
  await server.close();
  assert.equal(server.state, 'closed');
  await assert.rejects(server.listen(), { code: 'ERR_INVALID_STATE' });
});

test('close() while listen() is binding: listen() rejects ERR_CLOSED and nothing stays bound', async (t) => {
  const path = join(tempDir(t), 'hub.sock');
  const server = new HardenedServer({ listen: path, tcp: { port: 0 } });
  const listening = server.listen();
  const closing = server.close();
  await assert.rejects(listening, { code: 'ERR_CLOSED' });
  await withTimeout(closing, 3000, 'close()');
  assert.equal(server.state, 'closed');
  await waitFor(() => !existsSync(path), 3000, 'the Unix socket file removed');
  await assert.rejects(rawConnect(path), { code: 'ENOENT' });
});
