/**
 * The `connectGate` option: awaited before every connection attempt (the
 * first and every retry), so a pool can pace new connections per upstream;
 * an attempt abandoned while it waits there leaves nothing behind. Real
 * servers on port 0; the server's own count of upgrade requests is the
 * witness of what was dialed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { WebSocketServer } from 'ws';
import { isWshubError } from '../../src/errors.js';
import { RateGate, SlidingWindow } from '../../src/upstream/rate.js';
import { ResilientWebSocket } from '../../src/upstream/resilient.js';
import type { ResilientWebSocketOptions } from '../../src/upstream/types.js';
import { delay, waitFor, waitState } from './helpers.js';

interface UpgradeServer {
  url: string;
  /** Upgrade requests seen, with when (performance.now()). */
  requests: number[];
  /** The connections accepted as WebSockets, to terminate from the test. */
  wss: WebSocketServer;
  close: () => Promise<void>;
}

/** An HTTP server answering the first `reject` upgrade requests 503 (a retryable status), accepting the rest. */
async function upgradeServer(reject = 0, onRequest?: (n: number) => void): Promise<UpgradeServer> {
  const requests: number[] = [];
  const wss = new WebSocketServer({ noServer: true });
  const http: Server = createServer((_req, res) => res.writeHead(404).end());
  http.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    requests.push(performance.now());
    onRequest?.(requests.length);
    if (requests.length <= reject) {
      socket.end('HTTP/1.1 503 Busy\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
  });
  http.listen(0, '127.0.0.1');
  await once(http, 'listening');
  return {
    url: `ws://127.0.0.1:${(http.address() as AddressInfo).port}/`,
    requests,
    wss,
    close: async () => {
      for (const c of wss.clients) c.terminate();
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };
}

const fast = { minDelayMs: 1, maxDelayMs: 1, floorMs: 1 };
const options = (url: string, extra: Partial<ResilientWebSocketOptions>): ResilientWebSocketOptions => ({
  url, pingIntervalMs: 0, netwatch: false, backoff: fast, ...extra,
});

test('connectGate is awaited before every attempt: the first, each retry after a failure, each reconnect after an open', async (t) => {
  const log: string[] = [];
  const server = await upgradeServer(2, (n) => log.push(`request ${n}`));
  let calls = 0;
  const client = new ResilientWebSocket(options(server.url, {
    connectGate: async () => {
      const n = ++calls;
      log.push(`gate ${n}`);
      await delay(10);
      log.push(`passed ${n}`);
    },
  }));
  t.after(async () => {
    client.destroy();
    await server.close();
  });
  const opened = waitFor(client, 'open');
  client.connect();
  await opened;
  // The server drops the connection: the reconnect goes through the gate too.
  const reopened = waitFor(client, 'open', (info: { connection: number }) => info.connection === 2);
  for (const ws of server.wss.clients) ws.terminate();
  await reopened;
  assert.deepEqual(log, [
    'gate 1', 'passed 1', 'request 1', // 503
    'gate 2', 'passed 2', 'request 2', // 503
    'gate 3', 'passed 3', 'request 3', // open
    'gate 4', 'passed 4', 'request 4', // reopen
  ]);
  const stats = client.stats();
  assert.equal(stats.failedAttempts + stats.connections, calls);
});

test('a RateGate as connectGate paces the attempts: never more than its limit in any window', async (t) => {
  const server = await upgradeServer(Infinity);
  const limit = { messages: 2, perMs: 200 };
  const gate = new RateGate(new SlidingWindow(limit));
  const client = new ResilientWebSocket(options(server.url, { connectGate: (signal) => gate.acquire({ signal }) }));
  t.after(async () => {
    client.destroy();
    gate.close();
    await server.close();
  });
  client.connect();
  await waitFor(client, 'state', () => server.requests.length >= 6, 10_000);
  client.destroy();
  // The gate lets attempts go at most 2 per 200 ms; the server sees them one dial later, and a dial's
  // latency varies, so the bound is checked with generous slack (unpaced, they come ~1 ms apart).
  const at = server.requests;
  for (let i = 0; i + limit.messages < at.length; i++) {
    const gap = (at[i + limit.messages] ?? 0) - (at[i] ?? 0);
    assert.ok(gap >= limit.perMs / 2, `requests ${i} and ${i + limit.messages} only ${gap.toFixed(1)} ms apart`);
  }
  assert.equal(gate.pending, 0);
});

test('close() while an attempt waits at the gate: closed at once, nothing dialed, a late gate resolution ignored', async (t) => {
  const server = await upgradeServer();
  let release: (() => void) | undefined;
  let signalSeen: AbortSignal | undefined;
  const client = new ResilientWebSocket(options(server.url, {
    connectGate: (signal) => {
      signalSeen = signal;
      return new Promise<void>((resolve) => (release = resolve));
    },
  }));
  t.after(async () => {
    client.destroy();
    await server.close();
  });
  client.connect();
  assert.equal(client.state, 'connecting');
  await delay(20);
  const closedState = waitState(client, 'closed');
  await client.close();
  await closedState;
  assert.equal(signalSeen?.aborted, true, 'the gate was told the attempt is abandoned');
  release?.();
  await delay(100);
  assert.equal(server.requests.length, 0, 'nothing was dialed');
  assert.equal(client.state, 'closed');
  assert.equal(client.stats().failedAttempts, 0, 'an abandoned attempt is not a failure');
});

test('destroy() while waiting at a RateGate takes the waiter out of the gate\'s queue', async (t) => {
  const server = await upgradeServer();
  const gate = new RateGate({ messages: 1, perMs: 60_000 });
  await gate.acquire(); // the only token: the client must wait
  const client = new ResilientWebSocket(options(server.url, { connectGate: (signal) => gate.acquire({ signal }) }));
  t.after(async () => {
    client.destroy();
    gate.close();
    await server.close();
  });
  client.connect();
  await delay(10);
  assert.equal(gate.pending, 1);
  client.destroy();
  assert.equal(gate.pending, 0, 'the abandoned attempt left the queue synchronously');
  assert.equal(client.state, 'closed');
  assert.equal(server.requests.length, 0);
});

test('reconnect() while waiting at the gate abandons that wait and passes the gate again', async (t) => {
  const server = await upgradeServer();
  const signals: AbortSignal[] = [];
  const releases: Array<() => void> = [];
  const client = new ResilientWebSocket(options(server.url, {
    connectGate: (signal) => {
      signals.push(signal);
      return new Promise<void>((resolve) => releases.push(resolve));
    },
  }));
  t.after(async () => {
    client.destroy();
    await server.close();
  });
  client.connect();
  await delay(10);
  client.reconnect('test');
  await delay(10);
  assert.equal(signals.length, 2);
  assert.equal(signals[0]?.aborted, true);
  assert.equal(signals[1]?.aborted, false);
  releases[0]?.(); // the abandoned one: ignored
  await delay(50);
  assert.equal(server.requests.length, 0);
  const opened = waitFor(client, 'open');
  releases[1]?.();
  await opened;
  assert.equal(server.requests.length, 1);
});

test('a gate that rejects fails the attempt with ERR_CONNECT_GATE, which is retried with backoff', async (t) => {
  const server = await upgradeServer();
  let calls = 0;
  const client = new ResilientWebSocket(options(server.url, {
    connectGate: () => {
      calls++;
      if (calls === 1) return Promise.reject(new Error('pool is full'));
      if (calls === 2) throw new Error('thrown, not rejected');
      return Promise.resolve();
    },
  }));
  t.after(async () => {
    client.destroy();
    await server.close();
  });
  const first = waitState(client, 'reconnecting');
  const opened = waitFor(client, 'open');
  client.connect();
  const change = await first;
  assert.equal(change.cause?.code, 'ERR_CONNECT_GATE');
  assert.match(change.cause?.message ?? '', /^ERR_CONNECT_GATE 127\.0\.0\.1:\d+ \(connectGate rejected: pool is full\)$/);
  await opened;
  assert.equal(calls, 3);
  assert.deepEqual(client.stats().failedAttemptsByCause, { ERR_CONNECT_GATE: 2 });
  assert.equal(server.requests.length, 1, 'only the attempt that passed the gate dialed');
});

test('connectGate must be a function', () => {
  assert.throws(() => new ResilientWebSocket({ url: 'ws://127.0.0.1:1/', connectGate: 5 as unknown as () => Promise<void> }), (err: unknown) => {
    assert.ok(isWshubError(err, 'ERR_INVALID_OPTION'), String(err));
    assert.match(err.message, /upstream\.connectGate/);
    return true;
  });
});
