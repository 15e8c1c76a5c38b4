/**
 * The network-change path without namespaces, for real: an extra loopback
 * address (127.77.x.y/32 on lo) is added, a client binds its socket to it
 * through `localAddress`, and the address is then removed. Loopback traffic
 * still flows afterwards (127.0.0.0/8 is local), so a healthy server answers
 * the probe and the connection must stay open; a server that stops answering
 * pings must be left with ERR_PROBE_FAILED. Needs root and iproute2's `ip`:
 * without them the test fails saying so.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { networkInterfaces } from 'node:os';
import { Writable } from 'node:stream';
import { createLogger } from '../../src/observe/log.js';
import { ResilientWebSocket } from '../../src/upstream/resilient.js';
import { delay, record, startWsServer, waitFor, waitState } from './helpers.js';

function ip(...args: string[]): void {
  try {
    execFileSync('ip', args, { stdio: 'pipe' });
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim();
    throw new Error(`\`ip ${args.join(' ')}\` failed (this test needs root and iproute2): ${stderr || (err as Error).message}`);
  }
}

/** A random 127.77.x.y not assigned now; added to lo, removed again by `remove()` (also safe to call twice). */
function extraLoopback(): { address: string; remove: () => void } {
  const present = new Set(Object.values(networkInterfaces()).flatMap((l) => (l ?? []).map((i) => i.address)));
  let address: string;
  do address = `127.77.${Math.floor(Math.random() * 256)}.${1 + Math.floor(Math.random() * 250)}`; while (present.has(address));
  ip('addr', 'add', `${address}/32`, 'dev', 'lo');
  let removed = false;
  return {
    address,
    remove: () => {
      if (removed) return;
      removed = true;
      ip('addr', 'del', `${address}/32`, 'dev', 'lo');
    },
  };
}

const watch = { netwatchIntervalMs: 100, probeTimeoutMs: 500, pingIntervalMs: 0 };

test('local address removed but the path still works: the probe is answered and nothing closes; other changes are ignored', async (t) => {
  const server = await startWsServer('127.0.0.1');
  const bound = extraLoopback();
  const other = extraLoopback();
  const client = new ResilientWebSocket({ url: server.url, localAddress: bound.address, ...watch });
  const bystander = new ResilientWebSocket({ url: server.url, ...watch });
  t.after(async () => {
    client.destroy();
    bystander.destroy();
    bound.remove();
    other.remove();
    await server.close();
  });
  const log = record(client);
  const bystanderLog = record(bystander);
  const probes: Array<{ ok: boolean; trigger: string }> = [];
  const bystanderProbes: unknown[] = [];
  client.on('probe', (p) => probes.push(p));
  bystander.on('probe', (p) => bystanderProbes.push(p));
  const opened = Promise.all([waitFor<[{ localAddress: string }]>(client, 'open'), waitState(bystander, 'open')]);
  client.connect();
  bystander.connect();
  const [[info]] = await opened;
  assert.equal(info.localAddress, bound.address);

  // Another address disappearing (and one appearing) is no reason to probe, let alone close.
  other.remove();
  const added = extraLoopback();
  t.after(() => added.remove());
  await delay(400);
  assert.deepEqual(probes, []);

  const probed = waitFor<[{ ok: boolean; trigger: string; rttMs?: number }]>(client, 'probe', () => true, 3000);
  bound.remove();
  const [probe] = await probed;
  assert.equal(probe.ok, true);
  assert.match(probe.trigger, new RegExp(`local address ${bound.address.replace(/\./g, '\\.')} removed from lo`));
  assert.ok(typeof probe.rttMs === 'number');
  await delay(300);
  assert.equal(client.state, 'open');
  assert.deepEqual(log.states.map((s) => s.to), ['connecting', 'open']);
  assert.deepEqual(bystanderLog.states.map((s) => s.to), ['connecting', 'open']);
  assert.deepEqual(bystanderProbes, []);
  assert.equal(probes.length, 1);
  // Still usable after the probe.
  const echoed = waitFor(client, 'message', () => true, 3000);
  server.wss.clients.forEach((ws) => ws.send('still here'));
  await echoed;
});

test('local address removed and the probe gets no answer → ERR_PROBE_FAILED, reconnect', async (t) => {
  const server = await startWsServer('127.0.0.1', { autoPong: false });
  const bound = extraLoopback();
  const client = new ResilientWebSocket({ url: server.url, localAddress: bound.address, ...watch, backoff: { minDelayMs: 5000, maxDelayMs: 5000 } });
  t.after(async () => {
    client.destroy();
    bound.remove();
    await server.close();
  });
  const probes: Array<{ ok: boolean }> = [];
  client.on('probe', (p) => probes.push(p));
  const opened = waitState(client, 'open');
  client.connect();
  await opened;
  const lost = waitState(client, 'reconnecting', 3000);
  const removedAt = Date.now();
  bound.remove();
  const change = await lost;
  const took = Date.now() - removedAt;
  assert.equal(change.cause?.code, 'ERR_PROBE_FAILED');
  assert.match(change.cause?.message ?? '', /no answer to the probe within 500 ms/);
  assert.deepEqual(probes.map((p) => p.ok), [false]);
  assert.ok(took >= 450, `closed ${took} ms after the removal: not before the probe timed out`);
  assert.equal(client.stats().disconnectsByCause.ERR_PROBE_FAILED, 1);
});

test('a pong timeout that comes before the probe\'s answer: the probe\'s outcome is still logged, naming what ended the connection', async (t) => {
  const server = await startWsServer('127.0.0.1', { autoPong: false });
  const bound = extraLoopback();
  const lines: Array<Record<string, unknown>> = [];
  const logger = createLogger({ level: 'debug', destination: new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n')) if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  }) });
  // The regular ping's deadline (300 + 1000 ms after open) falls inside the probe's (5 s).
  const client = new ResilientWebSocket({
    url: server.url, localAddress: bound.address, logger, netwatchIntervalMs: 100, probeTimeoutMs: 5000,
    pingIntervalMs: 300, pongTimeoutMs: 1000, backoff: { minDelayMs: 5000, maxDelayMs: 5000 },
  });
  t.after(async () => {
    client.destroy();
    bound.remove();
    await server.close();
  });
  const probes: Array<{ ok: boolean; endedBy?: string }> = [];
  client.on('probe', (p) => probes.push(p));
  const opened = waitState(client, 'open');
  client.connect();
  await opened;
  const lost = waitState(client, 'reconnecting', 5000);
  bound.remove();
  const change = await lost;
  assert.equal(change.cause?.code, 'ERR_PONG_TIMEOUT', 'the pong timeout came first');
  assert.ok(lines.some((l) => l.event === 'probe-start'), 'the probe had started');
  const probe = await eventuallyFind(lines, (l) => l.event === 'probe');
  assert.equal(probe.ok, false);
  assert.equal(probe.endedBy, 'ERR_PONG_TIMEOUT');
  assert.match(String(probe.msg), /probe ended: the connection was already closed \(ERR_PONG_TIMEOUT\)/);
  assert.equal(probes.length, 1);
  assert.equal(probes[0]!.ok, false);
  assert.equal(probes[0]!.endedBy, 'ERR_PONG_TIMEOUT');
  assert.deepEqual(client.stats().disconnectsByCause, { ERR_PONG_TIMEOUT: 1 }, 'the probe did not close anything itself');
});

async function eventuallyFind(lines: Array<Record<string, unknown>>, match: (l: Record<string, unknown>) => boolean): Promise<Record<string, unknown>> {
  for (let i = 0; i < 100; i++) {
    const found = lines.find(match);
    if (found) return found;
    await delay(20);
  }
  throw new Error(`no matching log line; saw ${JSON.stringify(lines.map((l) => l.event ?? l.msg))}`);
}
