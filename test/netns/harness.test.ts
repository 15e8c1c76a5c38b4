/**
 * The namespace lab itself (test/support/netns.ts): if it is wrong, every fault
 * test built on it proves nothing. Pins that addresses work at once on both
 * families, that a closed port is refused, that a blackholed address is a
 * silent drop (no error before the timeout, unlike a `blackhole` route), that a
 * dialer is refused in a namespace with a default route, and that teardown
 * leaves nothing behind.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { NetnsLab, type Netns, type NsProcess } from '../support/netns.js';

const fixture = (name: string): URL => new URL(`./fixtures/${name}`, import.meta.url);

let lab: NetnsLab;
let srv: Netns;
let cli: Netns;
let server: NsProcess;
let probe: NsProcess;
let port = 0;

before(async () => {
  lab = await NetnsLab.create('harness');
  srv = await lab.namespace('srv');
  cli = await lab.namespace('cli');
  await lab.link(cli, srv, { a: ['10.213.9.1/24', 'fd00:213:9::1/64'], b: ['10.213.9.2/24', 'fd00:213:9::2/64'] }, { a: 'eth0', b: 'eth0' });
  server = await srv.spawnNode(fixture('echo-server.js'), ['--host', '::'], { listenOnly: true });
  const listening = await server.waitFor((e) => e.type === 'listening', 10_000, 'echo server listening');
  port = (listening.ports as number[])[0]!;
  probe = await cli.spawnNode(fixture('tcp-probe.js'));
  await probe.waitFor((e) => e.type === 'ready', 10_000, 'tcp probe ready');
});

after(() => lab?.destroy());

async function tryConnect(host: string, p: number, timeoutMs: number): Promise<{ ok: boolean; code?: string; ms: number }> {
  const reply = await probe.request({ cmd: 'connect', host, port: p, timeoutMs }, 'connect', timeoutMs + 5000);
  return reply as unknown as { ok: boolean; code?: string; ms: number };
}

test('IPv4 and IPv6 addresses connect at once (no DAD wait)', async () => {
  assert.deepEqual(await tryConnect('10.213.9.2', port, 3000).then((r) => r.ok), true);
  assert.deepEqual(await tryConnect('fd00:213:9::2', port, 3000).then((r) => r.ok), true);
});

test('a closed port is refused with ECONNREFUSED', async () => {
  // A listener port + 1 in a fresh namespace is closed: nothing else runs there.
  const r = await tryConnect('10.213.9.2', port === 65535 ? 1 : port + 1, 3000);
  assert.equal(r.ok, false);
  assert.equal(r.code, 'ECONNREFUSED');
});

test('a blackholed address drops silently: no error before the timeout, both families', async () => {
  for (const addr of ['10.213.9.2', 'fd00:213:9::2']) {
    await cli.blackhole(addr, 'eth0');
    const r = await tryConnect(addr, port, 1500);
    assert.equal(r.ok, false, addr);
    assert.equal(r.code, 'TIMEOUT', `${addr}: a blackhole must not answer with an error`);
    await cli.unblackhole(addr, 'eth0');
    assert.equal((await tryConnect(addr, port, 3000)).ok, true, `${addr} reachable again after unblackhole`);
  }
});

test('a dialer is refused in a namespace that has a default route', async () => {
  const other = await lab.namespace('routed');
  await lab.link(other, srv, { a: ['10.213.8.1/24'], b: ['10.213.8.2/24'] });
  await other.ip('route', 'add', 'default', 'via', '10.213.8.2');
  await assert.rejects(other.spawnNode(fixture('tcp-probe.js')), /has a default route/);
});

test('destroy kills the processes and deletes the namespaces', async () => {
  const temp = await NetnsLab.create('teardown');
  const a = await temp.namespace('a');
  const b = await temp.namespace('b');
  await temp.link(a, b, { a: ['10.213.7.1/24'], b: ['10.213.7.2/24'] });
  const p = await b.spawnNode(fixture('echo-server.js'), ['--host', '10.213.7.2'], { listenOnly: true });
  await p.waitFor((e) => e.type === 'listening', 10_000, 'server listening');
  await temp.destroy();
  assert.notEqual(p.exitStatus, undefined, 'process exited');
  assert.equal(existsSync(`/run/netns/${a.name}`), false);
  assert.equal(existsSync(`/run/netns/${b.name}`), false);
  await temp.destroy(); // idempotent
});

/** Run lab-crash.js in `mode`; resolve with the namespaces it made and the process. */
async function crashingLab(mode: string): Promise<{ namespaces: string[]; exited: Promise<unknown>; kill: () => void }> {
  const child = spawn(process.execPath, [new URL('./fixtures/lab-crash.js', import.meta.url).pathname, mode], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = once(child, 'close');
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  void exited.then(() => clearTimeout(timer));
  for await (const line of createInterface({ input: child.stdout })) {
    const event = JSON.parse(line) as { type: string; namespaces?: string[] };
    if (event.type === 'lab') return { namespaces: event.namespaces!, exited, kill: () => child.kill('SIGKILL') };
  }
  throw new Error(`lab-crash ${mode} printed no lab line`);
}

for (const mode of ['exit', 'throw']) {
  test(`a test process that dies by ${mode === 'exit' ? 'process.exit()' : 'an uncaught exception'} leaves no namespace behind`, async () => {
    const { namespaces, exited } = await crashingLab(mode);
    assert.equal(namespaces.length, 2);
    await exited;
    for (const name of namespaces) assert.equal(existsSync(`/run/netns/${name}`), false, `${name} removed at exit`);
  });
}

test('namespaces of a SIGKILLed test process are removed by the next lab', async () => {
  const { namespaces, exited, kill } = await crashingLab('hang');
  kill();
  await exited;
  for (const name of namespaces) assert.equal(existsSync(`/run/netns/${name}`), true, `${name} survives SIGKILL`);
  const next = await NetnsLab.create('aftercrash');
  await next.destroy();
  for (const name of namespaces) assert.equal(existsSync(`/run/netns/${name}`), false, `${name} removed by the next NetnsLab.create()`);
});
