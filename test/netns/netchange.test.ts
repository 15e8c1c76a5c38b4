/**
 * Network changes on the client's machine (root needed): the libwebsockets 4.3
 * lesson is that a route added, an address added or removed elsewhere, or an
 * address flapping is never by itself a reason to close. Only the loss of the
 * socket's OWN local address matters, and then only the probe's answer decides.
 *
 * Topology: `cli` (eth0: 10.213.5.1/24, fd00:213:5::1/64; no default route) ⇄
 * `srv` (eth0: 10.213.5.2/24, fd00:213:5::2/64) running a ws echo server on `::`.
 * The client (test/netns/fixtures/ws-client.ts) sends a message every 100 ms,
 * so "messages keep flowing" is measured by echoes received.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { NetnsLab, type Netns, type NsEvent, type NsProcess } from '../support/netns.js';

const fixture = (name: string): URL => new URL(`./fixtures/${name}`, import.meta.url);
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

const CLI_V4 = '10.213.5.1';
const CLI_V6 = 'fd00:213:5::1';
const SRV_V4 = '10.213.5.2';
const SRV_V6 = 'fd00:213:5::2';
const NETWATCH_INTERVAL_MS = 100;
const PROBE_TIMEOUT_MS = 1000;
const FLAP_PROBE_TIMEOUT_MS = 2000;
const SEND_EVERY_MS = 100;
/** Watcher poll + probe timeout + a generous margin for a shared machine. */
const PROBE_VERDICT_BOUND_MS = NETWATCH_INTERVAL_MS + PROBE_TIMEOUT_MS + 3000;

let lab: NetnsLab;
let cli: Netns;
let server: NsProcess;
let port: number;

before(async () => {
  lab = await NetnsLab.create('netchange');
  const srv = await lab.namespace('srv');
  cli = await lab.namespace('cli');
  await lab.link(cli, srv, { a: [`${CLI_V4}/24`, `${CLI_V6}/64`], b: [`${SRV_V4}/24`, `${SRV_V6}/64`] }, { a: 'eth0', b: 'eth0' });
  server = await srv.spawnNode(fixture('echo-server.js'), ['--host', '::'], { listenOnly: true });
  port = ((await server.waitFor((e) => e.type === 'listening', 10_000, 'echo server listening')).ports as number[])[0]!;
});

after(() => lab?.destroy());

/** A client to `host`, open, with messages flowing. */
async function openClient(host: string, probeTimeoutMs = PROBE_TIMEOUT_MS): Promise<{ client: NsProcess; open: NsEvent }> {
  const config = {
    url: `ws://${host.includes(':') ? `[${host}]` : host}:${port}/`,
    sendEveryMs: SEND_EVERY_MS,
    options: {
      netwatch: true,
      netwatchIntervalMs: NETWATCH_INTERVAL_MS,
      probeTimeoutMs,
      pingIntervalMs: 1000,
      // Long enough that only the probe, not the regular ping, can decide in these tests.
      pongTimeoutMs: 10_000,
      backoff: { minDelayMs: 100, maxDelayMs: 400 },
    },
  };
  const client = await cli.spawnNode(fixture('ws-client.js'), ['--config', JSON.stringify(config)]);
  try {
    const open = await client.waitFor((e) => e.type === 'open', 10_000, 'client open');
    await flowing(client, 'after open');
    return { client, open };
  } catch (err) {
    await client.kill();
    throw err;
  }
}

/** Echoes keep arriving: at least 3 more within 3 s. Returns the received count. */
async function flowing(client: NsProcess, when: string): Promise<number> {
  const before = (await client.request({ cmd: 'stats' }, 'stats')).received as number;
  const until = Date.now() + 3000;
  for (;;) {
    const now = (await client.request({ cmd: 'stats' }, 'stats')).received as number;
    if (now >= before + 3) return now;
    if (Date.now() > until) assert.fail(`messages stopped flowing ${when}: ${now - before} echoes in 3 s`);
    await sleep(SEND_EVERY_MS);
  }
}

const after_ = (client: NsProcess, from: number, type: string): NsEvent[] => client.events.slice(from).filter((e) => e.type === type);

test('netchange: a new route and a secondary address added then removed (both families) change nothing', async () => {
  const { client, open } = await openClient(SRV_V4);
  try {
    assert.equal(open.localAddress, CLI_V4);
    const from = client.events.length;
    await cli.ip('route', 'add', '10.213.77.0/24', 'via', SRV_V4, 'dev', 'eth0');
    await cli.ip('-6', 'route', 'add', 'fd00:213:77::/64', 'via', SRV_V6, 'dev', 'eth0');
    await cli.addAddress('eth0', '10.213.5.10/24');
    await cli.addAddress('eth0', 'fd00:213:5::10/64');
    await sleep(NETWATCH_INTERVAL_MS * 5); // the watcher sees the additions
    await cli.delAddress('eth0', '10.213.5.10/24');
    await cli.delAddress('eth0', 'fd00:213:5::10/64');
    await cli.ip('route', 'del', '10.213.77.0/24');
    await cli.ip('-6', 'route', 'del', 'fd00:213:77::/64');
    await sleep(NETWATCH_INTERVAL_MS * 5 + PROBE_TIMEOUT_MS); // … and the removals, with time for a (wrong) probe to end
    await flowing(client, 'after the route and address changes');

    assert.deepEqual(after_(client, from, 'state').map((s) => `${String(s.from)}→${String(s.to)} ${String(s.code)}`), [], 'no state change at all');
    assert.deepEqual(after_(client, from, 'probe'), [], 'an address that is not the socket\'s own never triggers a probe');
    const stats = await client.request({ cmd: 'stats' }, 'stats');
    assert.equal(stats.state, 'open');
    assert.equal(stats.connections, 1);
    assert.equal(stats.reconnects, 0);
  } finally {
    await client.kill();
  }
});

test('netchange: the socket\'s own IPv4 address removed → the probe fails, and the client reconnects once it is back', async () => {
  const { client } = await openClient(SRV_V4);
  let removed = false;
  try {
    const from = client.events.length;
    const removedAt = Date.now();
    await cli.delAddress('eth0', `${CLI_V4}/24`);
    removed = true;
    // Packets from the server to the vanished address are not accepted any more,
    // and without the address the client has no route: the probe's ping gets no pong.
    const probe = await client.waitFor((e) => e.type === 'probe', PROBE_VERDICT_BOUND_MS, 'probe after address removal', from);
    assert.equal(probe.ok, false, JSON.stringify(probe));
    assert.match(String(probe.trigger), new RegExp(`${CLI_V4.replace(/\./g, '\\.')}`));
    const down = await client.waitFor((e) => e.type === 'state' && e.to === 'reconnecting', 2000, 'reconnecting after the failed probe', from);
    assert.equal(down.code, 'ERR_PROBE_FAILED');
    assert.ok((down.at as number) - removedAt < PROBE_VERDICT_BOUND_MS);

    // While the address is gone every attempt fails (no route): never a false open.
    await sleep(1000);
    assert.deepEqual(after_(client, from, 'open'), []);
    const failures = after_(client, from, 'state').filter((s) => s.from === 'connecting' && s.to === 'reconnecting');
    assert.ok(failures.length > 0, 'the client kept trying while the address was gone');
    assert.ok(failures.every((s) => s.code === 'ERR_TCP_CONNECT'), JSON.stringify(failures));

    await cli.addAddress('eth0', `${CLI_V4}/24`);
    removed = false;
    const reopen = await client.waitFor((e) => e.type === 'open', 5000, 'open again after the address came back', from);
    assert.equal(reopen.connection, 2);
    assert.equal(reopen.localAddress, CLI_V4);
    await flowing(client, 'after the reconnect');
    const stats = await client.request({ cmd: 'stats' }, 'stats');
    assert.equal((stats.disconnectsByCause as Record<string, number>).ERR_PROBE_FAILED, 1);
  } finally {
    if (removed) await cli.addAddress('eth0', `${CLI_V4}/24`).catch(() => undefined);
    await client.kill();
  }
});

test('netchange: an IPv6 address removed and re-added within a second (NetworkManager style) does not drop the connection', async () => {
  // The default probe timeout (2 s): TCP's retransmission backoff (200, 400, 800 ms…)
  // decides when the ping gets through after the address is back; 2 s leaves room
  // for one more retransmission on a loaded machine.
  const { client, open } = await openClient(SRV_V6, FLAP_PROBE_TIMEOUT_MS);
  try {
    assert.equal(open.localAddress, CLI_V6);
    const from = client.events.length;
    await cli.delAddress('eth0', `${CLI_V6}/64`);
    // Long enough for the watcher (100 ms polls) to see the address gone, short of the probe timeout.
    await sleep(400);
    await cli.addAddress('eth0', `${CLI_V6}/64`);
    // Real behaviour: the watcher sees the removal and probes at once. The probe's
    // ping cannot leave while the address (and its prefix route) is gone, so TCP
    // retransmits it; once the address is back the retransmission gets through,
    // the pong answers within probeTimeoutMs, and the probe reports ok. The
    // connection is never touched.
    const probe = await client.waitFor((e) => e.type === 'probe', NETWATCH_INTERVAL_MS + FLAP_PROBE_TIMEOUT_MS + 3000, 'probe after the flap', from);
    assert.equal(probe.ok, true, JSON.stringify(probe));
    console.log(`IPv6 flap: probe answered after ${String(probe.rttMs)} ms`);
    await flowing(client, 'after the IPv6 flap');
    assert.deepEqual(after_(client, from, 'state').map((s) => `${String(s.from)}→${String(s.to)} ${String(s.code)}`), []);
    const stats = await client.request({ cmd: 'stats' }, 'stats');
    assert.equal(stats.state, 'open');
    assert.equal(stats.connections, 1);
    assert.equal(stats.reconnects, 0);
  } finally {
    await client.kill();
  }
});

test('netchange: the client\'s interface flapping (down, 300 ms, up) does not drop an IPv4 connection', async () => {
  // The default probe timeout, as for the IPv6 flap: TCP's retransmission backoff decides when the ping gets through.
  const { client } = await openClient(SRV_V4, FLAP_PROBE_TIMEOUT_MS);
  try {
    const from = client.events.length;
    await cli.ip('link', 'set', 'eth0', 'down');
    await sleep(300);
    await cli.ip('link', 'set', 'eth0', 'up');
    // IPv4 addresses survive a link down; IPv6 ones are flushed (keep_addr_on_down=0), so put it back for the other tests.
    await cli.ip('addr', 'replace', `${CLI_V6}/64`, 'dev', 'eth0', 'nodad');
    await sleep(NETWATCH_INTERVAL_MS * 5 + FLAP_PROBE_TIMEOUT_MS);
    await flowing(client, 'after the link flap');
    assert.deepEqual(after_(client, from, 'state').map((s) => `${String(s.from)}→${String(s.to)} ${String(s.code)}`), []);
    // The address stays assigned, but os.networkInterfaces() (libuv) lists only
    // interfaces that are UP and RUNNING, so the watcher sees it vanish for the
    // duration of the flap and the client probes. What matters is the verdict:
    // the link is back within probeTimeoutMs, the probe is answered, nothing closes.
    const probes = after_(client, from, 'probe');
    assert.ok(probes.length <= 1, JSON.stringify(probes));
    assert.deepEqual(probes.filter((p) => p.ok !== true), [], 'every probe answered');
    const stats = await client.request({ cmd: 'stats' }, 'stats');
    assert.equal(stats.connections, 1);
    assert.equal(stats.reconnects, 0);
  } finally {
    await client.kill();
  }
});
