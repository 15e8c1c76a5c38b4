/**
 * The pause/re-open machinery used when accept() itself fails (see
 * docs/server.md, EMFILE): a paused listener comes back on the same TCP port
 * or Unix path, and retries with a doubling delay while the address is taken.
 * libuv's failure that triggers it cannot be provoked on demand; the
 * re-opening is tested here on real sockets.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createNetServer } from 'node:net';
import { join } from 'node:path';
import { createHttpServer, listenTcp, scheduleReopen, type Listener } from '../../src/server/listeners.js';
import { listenUnix } from '../../src/server/unix-socket.js';
import { silentLogger } from '../../src/observe/log.js';
import { rawConnect, tempDir, waitFor } from './helpers.js';

function closeHttp(listener: Listener): Promise<void> {
  return new Promise((resolve) => listener.http.close(() => resolve()));
}

test('a paused TCP listener re-opens on the same port', async (t) => {
  const listener: Listener = { transport: 'tcp', http: createHttpServer(), reopenDelayMs: 50 };
  t.after(() => listener.http.close());
  await listenTcp(listener.http, '127.0.0.1', 0);
  const port = (listener.http.address() as { port: number }).port;
  listener.tcp = { host: '127.0.0.1', port };
  await closeHttp(listener);
  await assert.rejects(rawConnect(port), { code: 'ECONNREFUSED' });
  scheduleReopen(listener, { baseDelayMs: 50, unixSocketMode: 0o660, logger: silentLogger, active: () => true });
  await waitFor(() => listener.http.listening, 3000, 're-opened');
  (await rawConnect(port)).destroy();
  assert.equal(listener.reopenDelayMs, 50, 'delay reset after a successful re-open');
});

test('a paused Unix listener re-opens on the same path with its mode', async (t) => {
  const path = join(tempDir(t), 'hub.sock');
  const listener: Listener = { transport: 'unix', http: createHttpServer(), reopenDelayMs: 50, unixPath: path };
  t.after(() => listener.http.close());
  await listenUnix(listener.http, path, 0o660);
  await closeHttp(listener);
  scheduleReopen(listener, { baseDelayMs: 50, unixSocketMode: 0o660, logger: silentLogger, active: () => true });
  await waitFor(() => listener.http.listening, 3000, 're-opened');
  (await rawConnect(path)).destroy();
});

test('while the address is taken, re-opening retries with a doubling delay; it stops once the server is no longer active', async (t) => {
  const listener: Listener = { transport: 'tcp', http: createHttpServer(), reopenDelayMs: 20 };
  t.after(() => listener.http.close());
  await listenTcp(listener.http, '127.0.0.1', 0);
  const port = (listener.http.address() as { port: number }).port;
  listener.tcp = { host: '127.0.0.1', port };
  await closeHttp(listener);
  const squatter = createNetServer();
  await new Promise<void>((resolve) => squatter.listen(port, '127.0.0.1', resolve));
  let active = true;
  scheduleReopen(listener, { baseDelayMs: 20, unixSocketMode: 0o660, logger: silentLogger, active: () => active });
  await waitFor(() => listener.reopenDelayMs >= 160, 5000, 'three failed attempts');
  assert.equal(listener.http.listening, false);
  await new Promise<void>((resolve) => squatter.close(() => resolve()));
  await waitFor(() => listener.http.listening, 5000, 're-opened once the port was free');
  assert.equal(listener.reopenDelayMs, 20);
  await closeHttp(listener);
  active = false;
  scheduleReopen(listener, { baseDelayMs: 20, unixSocketMode: 0o660, logger: silentLogger, active: () => active });
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(listener.http.listening, false, 'no re-open after the server stopped');
});
