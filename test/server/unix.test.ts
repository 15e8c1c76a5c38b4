/**
 * The Unix socket listener: file mode, stale files of dead processes
 * replaced, live sockets and foreign files never stolen.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { lstatSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { HardenedServer } from '../../src/server/server.js';
import { HealthyPeer, startEchoServer, tcpPort, tempDir, withTimeout } from './helpers.js';

test('the Unix socket is created with mode 0660 and serves ws+unix clients', async (t) => {
  const path = join(tempDir(t), 'hub.sock');
  const server = await startEchoServer({ listen: path });
  t.after(() => server.destroy());
  const st = statSync(path);
  assert.ok(st.isSocket());
  assert.equal(st.mode & 0o777, 0o660);
  assert.deepEqual(server.addresses(), { unix: path });
  const peer = await HealthyPeer.open(`ws+unix://${path}:/u/feed`);
  t.after(() => peer.close());
  await peer.check();
});

test('a stale socket file left by a killed process is replaced', async (t) => {
  const path = join(tempDir(t), 'hub.sock');
  // A real process listens, then dies by SIGKILL: nothing gets to unlink its socket.
  const child = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(path)}, () => console.log('up'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
  await withTimeout(new Promise((r) => child.stdout.once('data', r)), 5000, 'stale-maker up');
  child.kill('SIGKILL');
  await withTimeout(new Promise((r) => child.once('exit', r)), 5000, 'stale-maker dead');
  assert.ok(lstatSync(path).isSocket(), 'the dead process left its socket file behind');

  const server = await startEchoServer({ listen: path });
  t.after(() => server.destroy());
  assert.equal(statSync(path).mode & 0o777, 0o660);
  const peer = await HealthyPeer.open(`ws+unix://${path}:/`);
  t.after(() => peer.close());
  await peer.check();
});

test('a live socket is ERR_LISTEN_ADDRESS_IN_USE and the live server keeps serving', async (t) => {
  const path = join(tempDir(t), 'hub.sock');
  const live = await startEchoServer({ listen: path });
  t.after(() => live.destroy());
  const peer = await HealthyPeer.open(`ws+unix://${path}:/`);
  t.after(() => peer.close());
  const second = new HardenedServer({ listen: path });
  await assert.rejects(second.listen(), { code: 'ERR_LISTEN_ADDRESS_IN_USE' });
  assert.equal(second.state, 'closed');
  assert.ok(lstatSync(path).isSocket(), 'the live socket file is untouched');
  await peer.check();
});

test('a regular file at the socket path is never deleted: ERR_LISTEN_ADDRESS_IN_USE', async (t) => {
  const path = join(tempDir(t), 'not-a-socket');
  writeFileSync(path, 'precious');
  const server = new HardenedServer({ listen: path });
  await assert.rejects(server.listen(), { code: 'ERR_LISTEN_ADDRESS_IN_USE' });
  assert.equal(readFileSync(path, 'utf8'), 'precious');
});

test('a TCP port in use is ERR_LISTEN_ADDRESS_IN_USE, and nothing stays bound', async (t) => {
  const dir = tempDir(t);
  const first = await startEchoServer({ tcp: { port: 0 } });
  t.after(() => first.destroy());
  const path = join(dir, 'hub.sock');
  const second = new HardenedServer({ listen: path, tcp: { port: tcpPort(first) } });
  await assert.rejects(second.listen(), { code: 'ERR_LISTEN_ADDRESS_IN_USE' });
  // The Unix listener bound first was closed again (libuv unlinks its file on close).
  await withTimeout((async () => {
    while (true) {
      try {
        lstatSync(path);
      } catch {
        return;
      }
      await new Promise((r) => setTimeout(r, 10));
    }
  })(), 3000, 'unix socket file removed after failed listen');
});

test('a bad socket directory is ERR_LISTEN_FAILED with the errno', async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'file'), '');
  const server = new HardenedServer({ listen: join(dir, 'file', 'hub.sock') });
  await assert.rejects(server.listen(), (err: { code?: string; details?: { errno?: string } }) => err.code === 'ERR_LISTEN_FAILED' && err.details?.errno === 'ENOTDIR');
});

test('close() and destroy() are idempotent and remove the socket file', async (t) => {
  const path = join(tempDir(t), 'hub.sock');
  const server = await startEchoServer({ listen: path });
  const closing = server.close();
  assert.equal(server.close(), closing);
  await closing;
  server.destroy();
  server.destroy();
  assert.equal(server.state, 'closed');
  assert.throws(() => lstatSync(path), { code: 'ENOENT' });
  await assert.rejects(server.listen(), { code: 'ERR_INVALID_STATE' });
});
