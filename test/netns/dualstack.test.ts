/**
 * Dual stack with one family silently blackholed (root needed).
 *
 * A name resolves (custom `lookup`) to an IPv6 and an IPv4 address of the
 * server namespace. When the first family's path drops packets without a word
 * — the classic broken-IPv6 network, modelled with a neighbour entry pointing at
 * a MAC nobody owns, NOT a `blackhole` route (which fails at once with an error
 * and would let any client look good) — the client must connect over the other
 * family after happyEyeballsDelayMs, far below tcpTimeoutMs. And the reverse.
 *
 * Topology: `cli` (10.213.4.1, fd00:213:4::1; no default route) ⇄ `srv`
 * (10.213.4.2, fd00:213:4::2) running a ws echo server on `::` (both families).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { NetnsLab, type Netns, type NsEvent, type NsProcess } from '../support/netns.js';

const fixture = (name: string): URL => new URL(`./fixtures/${name}`, import.meta.url);

const V4 = '10.213.4.2';
const V6 = 'fd00:213:4::2';
const HOST = 'upstream.dualstack.test';
const HAPPY_EYEBALLS_DELAY_MS = 250;
const TCP_TIMEOUT_MS = 10_000;
/** Generous for a loaded 2-core machine, yet a small fraction of tcpTimeoutMs. */
const FALLBACK_BOUND_MS = HAPPY_EYEBALLS_DELAY_MS + 1500;

let lab: NetnsLab;
let cli: Netns;
let server: NsProcess;
let port: number;

before(async () => {
  lab = await NetnsLab.create('dualstack');
  const srv = await lab.namespace('srv');
  cli = await lab.namespace('cli');
  await lab.link(cli, srv, { a: ['10.213.4.1/24', 'fd00:213:4::1/64'], b: [`${V4}/24`, `${V6}/64`] }, { a: 'eth0', b: 'eth0' });
  server = await srv.spawnNode(fixture('echo-server.js'), ['--host', '::'], { listenOnly: true });
  port = ((await server.waitFor((e) => e.type === 'listening', 10_000, 'echo server listening')).ports as number[])[0]!;
});

after(() => lab?.destroy());

interface Outcome {
  client: NsProcess;
  started: NsEvent;
  /** The first `open` or the first failed attempt, whichever came first. */
  first: NsEvent;
  elapsedMs: number;
  /** State events before `first`. */
  states: NsEvent[];
}

/** Start a client for HOST resolving to `addresses` (in that order) and wait for its first open or failure. */
async function dialOnce(addresses: string[], options: Record<string, unknown> = {}, waitMs = 8000): Promise<Outcome> {
  const config = {
    url: `ws://${HOST}:${port}/`,
    hosts: { [HOST]: addresses },
    options: { happyEyeballsDelayMs: HAPPY_EYEBALLS_DELAY_MS, tcpTimeoutMs: TCP_TIMEOUT_MS, netwatch: false, ...options },
  };
  const client = await cli.spawnNode(fixture('ws-client.js'), ['--config', JSON.stringify(config)]);
  try {
    const started = await client.waitFor((e) => e.type === 'started', 10_000, 'client started');
    const first = await client.waitFor(
      (e) => e.type === 'open' || (e.type === 'state' && e.from === 'connecting' && e.to !== 'open'),
      waitMs, 'first open or failed attempt');
    const idx = client.events.indexOf(first);
    return { client, started, first, elapsedMs: (first.at as number) - (started.at as number), states: client.events.slice(0, idx).filter((e) => e.type === 'state') };
  } catch (err) {
    await client.kill();
    throw err;
  }
}

/** Connected on the first attempt: one `connecting`, no failure (`reconnecting`) before the open. */
function assertFirstAttempt(states: NsEvent[]): void {
  assert.deepEqual(states.filter((s) => s.to !== 'open').map((s) => `${String(s.from)}→${String(s.to)}`), ['idle→connecting']);
}

async function withBlackhole<T>(address: string, fn: () => Promise<T>): Promise<T> {
  await cli.blackhole(address, 'eth0');
  try {
    return await fn();
  } finally {
    await cli.unblackhole(address, 'eth0');
  }
}

test('dual stack, both paths healthy: the first answer (IPv6) wins', async () => {
  // A long stagger so that only the preference order is tested here, not timing.
  const { client, first, states } = await dialOnce([V6, V4], { happyEyeballsDelayMs: 3000 });
  try {
    assert.equal(first.type, 'open', JSON.stringify(first));
    assert.equal(first.family, 'IPv6');
    assert.equal(first.remoteAddress, V6);
    assertFirstAttempt(states);
  } finally {
    await client.kill();
  }
});

test('dual stack, IPv6 blackholed: connects over IPv4 after ~happyEyeballsDelayMs, far below tcpTimeoutMs', async () => {
  await withBlackhole(V6, async () => {
    const { client, first, elapsedMs, states } = await dialOnce([V6, V4]);
    try {
      assert.equal(first.type, 'open', JSON.stringify(first));
      assert.equal(first.family, 'IPv4');
      assert.equal(first.remoteAddress, V4);
      assertFirstAttempt(states);
      // Not before the stagger: the IPv6 attempt was given its head start.
      assert.ok(elapsedMs >= HAPPY_EYEBALLS_DELAY_MS - 10, `opened after ${elapsedMs} ms, before happyEyeballsDelayMs`);
      assert.ok(elapsedMs < FALLBACK_BOUND_MS, `opened after ${elapsedMs} ms; expected ~${HAPPY_EYEBALLS_DELAY_MS} ms (tcpTimeoutMs is ${TCP_TIMEOUT_MS})`);
      // And it stays on IPv4: the lost IPv6 attempt was cancelled, not left to fail the connection later.
      const stats = await client.request({ cmd: 'stats' }, 'stats');
      assert.equal(stats.state, 'open');
      assert.equal(stats.family, 'IPv4');
      assert.equal(stats.reconnects, 0);
    } finally {
      await client.kill();
    }
  });
});

test('dual stack, IPv4 blackholed (IPv4 answered first): connects over IPv6 after ~happyEyeballsDelayMs', async () => {
  await withBlackhole(V4, async () => {
    const { client, first, elapsedMs, states } = await dialOnce([V4, V6]);
    try {
      assert.equal(first.type, 'open', JSON.stringify(first));
      assert.equal(first.family, 'IPv6');
      assert.equal(first.remoteAddress, V6);
      assertFirstAttempt(states);
      assert.ok(elapsedMs >= HAPPY_EYEBALLS_DELAY_MS - 10, `opened after ${elapsedMs} ms, before happyEyeballsDelayMs`);
      assert.ok(elapsedMs < FALLBACK_BOUND_MS, `opened after ${elapsedMs} ms; expected ~${HAPPY_EYEBALLS_DELAY_MS} ms (tcpTimeoutMs is ${TCP_TIMEOUT_MS})`);
    } finally {
      await client.kill();
    }
  });
});

test('dual stack, both blackholed: ERR_TCP_TIMEOUT naming both addresses, after tcpTimeoutMs', async () => {
  const tcpTimeoutMs = 1500;
  await withBlackhole(V6, () => withBlackhole(V4, async () => {
    const { client, first, elapsedMs } = await dialOnce([V6, V4], { tcpTimeoutMs }, 10_000);
    try {
      assert.equal(first.type, 'state', JSON.stringify(first));
      assert.equal(first.to, 'reconnecting');
      assert.equal(first.code, 'ERR_TCP_TIMEOUT');
      assert.equal(first.address, `[${V6}]:${port}, ${V4}:${port}`);
      // The IPv4 attempt started one stagger later and has its own full timeout.
      assert.ok(elapsedMs >= tcpTimeoutMs + HAPPY_EYEBALLS_DELAY_MS - 20, `failed after ${elapsedMs} ms`);
      assert.ok(elapsedMs < tcpTimeoutMs + HAPPY_EYEBALLS_DELAY_MS + 1500, `failed after ${elapsedMs} ms`);
    } finally {
      await client.kill();
    }
  }));
});
