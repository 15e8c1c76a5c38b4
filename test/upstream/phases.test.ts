/**
 * Connect-phase timing: every successful attempt reports how long DNS, TCP,
 * TLS and the HTTP upgrade took (`open` event) and adds them to cumulative
 * histograms in `stats().connectPhases`. Real servers: ws, a TLS ws server
 * with a self-signed certificate, a name resolved through the `lookup`
 * option; phases made slow on purpose are checked with "not before" bounds.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo, LookupFunction, Socket } from 'node:net';
import { WebSocketServer } from 'ws';
import { isWshubError } from '../../src/errors.js';
import { CONNECT_PHASE_BUCKETS_MS, emptyHistogram, mergeConnectPhases } from '../../src/upstream/phases.js';
import { ResilientWebSocket } from '../../src/upstream/resilient.js';
import type { ConnectPhaseHistograms, OpenInfo, PhaseHistogram } from '../../src/upstream/types.js';
import { delay, makeCert, startWssServer, startWsServer, waitFor, type TestCert } from './helpers.js';

let cert: TestCert;
before(() => {
  cert = makeCert();
});
after(() => cert.cleanup());

/** A lookup that answers 127.0.0.1 for any name after `delayMs`, counting its calls. */
function slowLookup(delayMs: number): { lookup: LookupFunction; calls: () => number } {
  let calls = 0;
  const lookup = ((_host: string, _options: unknown, callback: (err: null, list: Array<{ address: string; family: number }>) => void) => {
    calls++;
    setTimeout(() => callback(null, [{ address: '127.0.0.1', family: 4 }]), delayMs);
  }) as LookupFunction;
  return { lookup, calls: () => calls };
}

/** Cumulative counts are non-decreasing, never above `count`, with the standard bounds. */
function assertWellFormed(h: PhaseHistogram, name: string): void {
  assert.deepEqual(h.buckets, [...CONNECT_PHASE_BUCKETS_MS], `${name} bounds`);
  assert.equal(h.counts.length, h.buckets.length);
  for (let i = 1; i < h.counts.length; i++) assert.ok((h.counts[i] ?? 0) >= (h.counts[i - 1] ?? 0), `${name} counts cumulative`);
  assert.ok((h.counts.at(-1) ?? 0) <= h.count);
}

/** How many observations of `h` are at most `ms` (a bucket bound). */
function atMost(h: PhaseHistogram, ms: number): number {
  const i = h.buckets.indexOf(ms);
  assert.ok(i >= 0, `${ms} is a bucket bound`);
  return h.counts[i] ?? 0;
}

async function openOnce(client: ResilientWebSocket): Promise<OpenInfo> {
  const opened = waitFor<[OpenInfo]>(client, 'open');
  client.connect();
  const [info] = await opened;
  return info;
}

test('ws to an IP literal: tcp and upgrade timed; no dns, no tls phase', async (t) => {
  const server = await startWsServer();
  const client = new ResilientWebSocket({ url: server.url, pingIntervalMs: 0, netwatch: false });
  t.after(async () => {
    client.destroy();
    await server.close();
  });
  const info = await openOnce(client);
  assert.equal(info.phases.dnsMs, undefined);
  assert.equal(info.phases.tlsMs, undefined);
  assert.ok(info.phases.tcpMs >= 0 && Number.isFinite(info.phases.tcpMs));
  assert.ok(info.phases.upgradeMs >= 0 && Number.isFinite(info.phases.upgradeMs));
  const h = client.stats().connectPhases as ConnectPhaseHistograms;
  for (const [name, hist] of Object.entries(h)) assertWellFormed(hist, name);
  assert.deepEqual([h.dns.count, h.tcp.count, h.tls.count, h.upgrade.count], [0, 1, 0, 1]);
  assert.equal(h.tcp.sum, info.phases.tcpMs);
  assert.equal(h.upgrade.sum, info.phases.upgradeMs);
});

test('wss to a name resolved by the lookup option: dns, tcp, tls and upgrade all timed', async (t) => {
  const server = await startWssServer(cert);
  const dns = slowLookup(0);
  const client = new ResilientWebSocket({
    url: `wss://localhost:${server.port}/`, lookup: dns.lookup, ca: cert.cert, pingIntervalMs: 0, netwatch: false,
  });
  t.after(async () => {
    client.destroy();
    await server.close();
  });
  const info = await openOnce(client);
  assert.equal(dns.calls(), 1);
  for (const key of ['dnsMs', 'tcpMs', 'tlsMs', 'upgradeMs'] as const) {
    const ms = info.phases[key];
    assert.ok(ms !== undefined && ms >= 0 && Number.isFinite(ms), `${key} = ${ms}`);
  }
  const h = client.stats().connectPhases as ConnectPhaseHistograms;
  assert.deepEqual([h.dns.count, h.tcp.count, h.tls.count, h.upgrade.count], [1, 1, 1, 1]);
  assert.equal(h.tls.sum, info.phases.tlsMs);
  assert.equal(h.dns.sum, info.phases.dnsMs);
});

test('a slow resolver and a slow upgrade show in their own phases, not in the others', async (t) => {
  // The server holds every upgrade request 120 ms before answering it.
  const wss = new WebSocketServer({ noServer: true });
  const http = createServer();
  http.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    setTimeout(() => wss.handleUpgrade(req, socket, head, () => undefined), 120);
  });
  http.listen(0, '127.0.0.1');
  await once(http, 'listening');
  const port = (http.address() as AddressInfo).port;
  const dns = slowLookup(80);
  const client = new ResilientWebSocket({ url: `ws://slow.test:${port}/`, lookup: dns.lookup, pingIntervalMs: 0, netwatch: false });
  t.after(async () => {
    client.destroy();
    for (const c of wss.clients) c.terminate();
    http.closeAllConnections();
    await new Promise<void>((resolve) => http.close(() => resolve()));
  });
  const info = await openOnce(client);
  assert.ok((info.phases.dnsMs ?? 0) >= 79, `dns took ${info.phases.dnsMs} ms, the resolver answers after 80`);
  assert.ok(info.phases.upgradeMs >= 119, `upgrade took ${info.phases.upgradeMs} ms, the server answers after 120`);
  assert.ok(info.phases.tcpMs < 80, `tcp took ${info.phases.tcpMs} ms: the slow resolver must not be counted there`);
  const h = client.stats().connectPhases as ConnectPhaseHistograms;
  assert.equal(atMost(h.dns, 50), 0, 'no dns observation at or below 50 ms');
  assert.equal(atMost(h.upgrade, 100), 0, 'no upgrade observation at or below 100 ms');
  assert.equal(atMost(h.dns, 10_000), 1);
});

test('histograms accumulate over reconnects; failed attempts are not observed', async (t) => {
  const server = await startWsServer();
  const client = new ResilientWebSocket({ url: server.url, pingIntervalMs: 0, netwatch: false, backoff: { minDelayMs: 1, maxDelayMs: 1, floorMs: 1 } });
  t.after(async () => {
    client.destroy();
    await server.close();
  });
  await openOnce(client);
  for (let n = 2; n <= 3; n++) {
    const reopened = waitFor<[OpenInfo]>(client, 'open', (i) => i.connection === n);
    for (const ws of server.wss.clients) ws.terminate();
    await reopened;
  }
  // With the server gone every attempt fails (ECONNREFUSED): none of them is observed.
  const failed = waitFor(client, 'state', () => client.stats().failedAttempts >= 2);
  await server.close();
  await failed;
  await delay(20);
  client.destroy();
  const s = client.stats();
  const h = s.connectPhases as ConnectPhaseHistograms;
  assert.equal(s.connections, 3);
  assert.equal(h.tcp.count, 3);
  assert.equal(h.upgrade.count, 3);
});

test('mergeConnectPhases sums histograms and refuses other bounds', () => {
  const a: ConnectPhaseHistograms = { dns: emptyHistogram(), tcp: emptyHistogram(), tls: emptyHistogram(), upgrade: emptyHistogram() };
  a.tcp = { ...a.tcp, counts: a.tcp.counts.map((_, i) => (i >= 2 ? 1 : 0)), sum: 7, count: 1 };
  const b: ConnectPhaseHistograms = { ...a, tcp: { ...a.tcp, counts: a.tcp.counts.map(() => 1), sum: 0.5, count: 1 } };
  const merged = mergeConnectPhases([a, undefined, b]);
  assert.equal(merged.tcp.count, 2);
  assert.equal(merged.tcp.sum, 7.5);
  assert.deepEqual(merged.tcp.counts.slice(0, 3), [1, 1, 2]);
  assert.equal(merged.dns.count, 0);
  const odd = { ...a, tls: { buckets: [1, 2], counts: [0, 0], sum: 0, count: 0 } };
  assert.throws(() => mergeConnectPhases([odd]), (err: unknown) => isWshubError(err, 'ERR_INVALID_OPTION'));
});
