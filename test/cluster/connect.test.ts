import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import { connectCluster, compareVersions, type ClusterConnectionStatus } from '../../src/cluster/connect.js';
import { isWshubError, type ErrorCode } from '../../src/errors.js';
import { makeCert, type TestCert } from '../upstream/helpers.js';
import { NatsServer, freePort, waitFor } from './helpers.js';

async function rejectsWith(promise: Promise<unknown>, code: ErrorCode): Promise<Error> {
  try {
    await promise;
  } catch (err) {
    assert.ok(isWshubError(err, code), `expected ${code}, got ${String((err as { code?: unknown }).code)}: ${(err as Error).message}`);
    return err;
  }
  throw new Error(`expected ${code}, but it resolved`);
}

describe('connectCluster against a real nats-server', () => {
  const server = new NatsServer();
  before(async () => { await server.start(); });
  after(async () => { await server.dispose(); });

  test('a watch stopped and its connection closed while nats.js creates its consumer leaves nothing running: the process exits', () => {
    // nats.js 3 arms a push consumer's heartbeat timer before it subscribes; closing during that window once left
    // the timer firing forever (ClosedConnectionError every few seconds) and hung a test process after its tests passed.
    const script = new URL('./fixtures/watch-close.js', import.meta.url).pathname;
    for (const delayMs of [0, 1, 2, 3, 4, 5, 6, 8, 1, 2, 3, 5]) {
      const res = spawnSync(process.execPath, [script, server.url, String(delayMs)], { encoding: 'utf8', timeout: 10_000 });
      assert.equal(res.stdout.trim(), 'closed', `delay ${delayMs} ms: ${res.stderr}`);
      assert.equal(res.signal, null, `delay ${delayMs} ms: still running 10 s after close (killed); output: ${res.stdout}${res.stderr}`);
      assert.equal(res.status, 0, `delay ${delayMs} ms: ${res.stderr}`);
      assert.doesNotMatch(res.stdout + res.stderr, /ClosedConnectionError/, `delay ${delayMs} ms`);
    }
  });

  test('connects past a dead URL in the list, reports the server version and closes', async () => {
    const dead = `nats://127.0.0.1:${await freePort()}`;
    const conn = await connectCluster({ servers: [dead, server.url], connectTimeoutMs: 2000 });
    assert.equal(conn.connected, true);
    assert.match(conn.serverVersion, /^\d+\.\d+\.\d+/);
    assert.ok(compareVersions(conn.serverVersion, '2.9.0') >= 0);
    assert.ok(conn.maxPayload > 0);
    assert.ok(await conn.rtt() >= 0);
    const closed = waitFor<[ClusterConnectionStatus]>(conn, 'status', (s) => s.type === 'closed');
    await conn.close();
    await closed;
    assert.equal(conn.connected, false);
    await conn.close(); // idempotent
  });

  test('a refused connection fails with ERR_NATS_CONNECT and the errno', async () => {
    const err = await rejectsWith(connectCluster({ servers: `nats://127.0.0.1:${await freePort()}`, connectTimeoutMs: 1000 }), 'ERR_NATS_CONNECT');
    assert.equal((err as { details?: { errno?: string } }).details?.errno, 'ECONNREFUSED');
  });

  test('disconnect and reconnect are reported as typed status events', async () => {
    const conn = await connectCluster({ servers: server.url, reconnectWaitMs: 100 });
    const seen: ClusterConnectionStatus['type'][] = [];
    conn.on('status', (s) => seen.push(s.type));
    const disconnected = waitFor<[ClusterConnectionStatus]>(conn, 'status', (s) => s.type === 'disconnected');
    const reconnected = waitFor<[ClusterConnectionStatus]>(conn, 'status', (s) => s.type === 'reconnected', 20_000);
    await server.restart('SIGTERM', 300);
    await disconnected;
    const [r] = await reconnected;
    assert.equal(conn.connected, true);
    assert.ok(r.type === 'reconnected' && compareVersions(r.version, '2.9.0') >= 0);
    assert.ok(seen.indexOf('disconnected') < seen.indexOf('reconnected'), seen.join(','));
    await conn.close();
  });

  test('invalid options are refused with ERR_INVALID_OPTION naming the key', async () => {
    const bad = await rejectsWith(connectCluster({ servers: 'http://127.0.0.1:4222' }), 'ERR_INVALID_OPTION');
    assert.match(bad.message, /cluster\.servers/);
    await rejectsWith(connectCluster({ servers: server.url, user: 'u' }), 'ERR_INVALID_OPTION');
    const unknown = await rejectsWith(connectCluster({ servers: server.url, pingIntervalMS: 5 } as never), 'ERR_INVALID_OPTION');
    assert.match(unknown.message, /did you mean "pingIntervalMs"/);
  });
});

describe('connectCluster refuses what the cluster mode cannot run on', () => {
  test('a server without JetStream: ERR_NATS_NO_JETSTREAM', async () => {
    const plain = await new NatsServer({ noJetStream: true }).start();
    try {
      await rejectsWith(connectCluster({ servers: plain.url }), 'ERR_NATS_NO_JETSTREAM');
    } finally {
      await plain.dispose();
    }
  });

  test('an account without JetStream on a JetStream server: ERR_NATS_NO_JETSTREAM', async () => {
    const accounts = await new NatsServer({
      config: 'accounts: {\n  WITH: { jetstream: enabled, users: [{user: a, password: a}] }\n  WITHOUT: { users: [{user: b, password: b}] }\n}\n',
    }).start();
    try {
      const ok = await connectCluster({ servers: accounts.url, user: 'a', pass: 'a' });
      await ok.close();
      await rejectsWith(connectCluster({ servers: accounts.url, user: 'b', pass: 'b' }), 'ERR_NATS_NO_JETSTREAM');
    } finally {
      await accounts.dispose();
    }
  });

  test('a server older than 2.9.0: ERR_NATS_VERSION', async () => {
    // A real TCP server that speaks just enough of the NATS protocol (INFO, PONG) to look like 2.8.4.
    const fake: Server = createServer((socket) => {
      socket.write(`INFO ${JSON.stringify({ server_id: 'FAKE', version: '2.8.4', proto: 1, headers: true, max_payload: 1048576, jetstream: true, host: '127.0.0.1', port: 0 })}\r\n`);
      socket.on('data', (chunk) => { if (chunk.toString().includes('PING')) socket.write('PONG\r\n'); });
      socket.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => fake.listen(0, '127.0.0.1', resolve));
    try {
      const port = (fake.address() as { port: number }).port;
      const err = await rejectsWith(connectCluster({ servers: `nats://127.0.0.1:${port}` }), 'ERR_NATS_VERSION');
      assert.match(err.message, /2\.8\.4/);
    } finally {
      await new Promise<void>((resolve) => fake.close(() => resolve()));
    }
  });
});

describe('connectCluster credentials and TLS', () => {
  test('user and password: right ones connect, wrong ones fail with ERR_NATS_AUTH', async () => {
    const s = await new NatsServer({ args: ['--user', 'hub', '--pass', 's3cret'] }).start();
    try {
      const conn = await connectCluster({ servers: s.url, user: 'hub', pass: 's3cret' });
      await conn.close();
      await rejectsWith(connectCluster({ servers: s.url, user: 'hub', pass: 'wrong' }), 'ERR_NATS_AUTH');
    } finally {
      await s.dispose();
    }
  });

  test('token: the right one connects, a wrong one fails with ERR_NATS_AUTH', async () => {
    const s = await new NatsServer({ args: ['--auth', 'tok-123'] }).start();
    try {
      const conn = await connectCluster({ servers: s.url, token: 'tok-123' });
      await conn.close();
      await rejectsWith(connectCluster({ servers: s.url, token: 'nope' }), 'ERR_NATS_AUTH');
    } finally {
      await s.dispose();
    }
  });

  describe('TLS', () => {
    let cert: TestCert;
    let s: NatsServer;
    before(async () => {
      cert = makeCert();
      s = await new NatsServer({ args: ['--tls', '--tlscert', `${cert.dir}/cert.pem`, '--tlskey', `${cert.dir}/key.pem`] }).start();
    });
    after(async () => {
      await s.dispose();
      cert.cleanup();
    });

    test('connects with the CA given', async () => {
      const conn = await connectCluster({ servers: `tls://127.0.0.1:${s.port}`, tls: { ca: cert.cert.toString() } });
      assert.equal(conn.connected, true);
      await conn.close();
    });

    test('an untrusted certificate fails with ERR_NATS_CONNECT', async () => {
      await rejectsWith(connectCluster({ servers: `tls://127.0.0.1:${s.port}`, tls: {}, connectTimeoutMs: 2000 }), 'ERR_NATS_CONNECT');
    });
  });
});

test('loading the cluster modules loads nothing of NATS until a cluster connects', () => {
  // A resolve hook in a child process refuses every @nats-io import; importing the modules must still work.
  const hook = `export async function resolve(s, c, next) { if (s.startsWith('@nats-io/')) throw new Error('NATS loaded: ' + s); return next(s, c); }`;
  const script = `
    import { register } from 'node:module';
    register('data:text/javascript,' + encodeURIComponent(${JSON.stringify(hook)}));
    const base = ${JSON.stringify(new URL('../../src/cluster/', import.meta.url).href)};
    for (const m of ['index.js', 'connect.js', 'lease.js', 'bus.js', 'interest.js', 'requests.js', 'subjects.js', 'store.js', 'lease-types.js']) await import(base + m);
    try { await (await import(base + 'nats.js')).loadNats(); console.log('loaded'); } catch (e) { console.log('refused: ' + e.message); }
  `;
  const res = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  assert.equal(res.status, 0, res.stderr);
  assert.match(res.stdout, /refused: NATS loaded: @nats-io\//);
});
