/**
 * The hub in front of a real upstream no one here wrote: Debian's
 * libwebsockets-test-server. Its dumb-increment protocol counts per
 * connection, so workers sharing one upstream see the same numbers at the
 * same time; its mirror protocol echoes to every client, so one worker's send
 * reaches all workers through the one shared connection.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { eventually, freePort, startTestHub, Worker, type TestHub, upstreamOf } from './helpers.js';

const LWS = '/usr/bin/libwebsockets-test-server';


let lws: ChildProcess | undefined;
let hub: TestHub | undefined;
const workers: Worker[] = [];
after(async () => {
  for (const w of workers) w.kill('SIGKILL');
  await hub?.close();
  lws?.kill('SIGKILL');
});

test('libwebsockets-test-server: dumb-increment shared by 4 workers, mirror fanned out', async () => {
  assert.ok(existsSync(LWS), `${LWS} is missing: install Debian's libwebsockets-test-server`);
  const port = await freePort();
  lws = spawn(LWS, [`--port=${port}`], { stdio: 'ignore', cwd: '/' });
  const base = `ws://127.0.0.1:${port}/`;
  hub = await startTestHub({
    dumb: { url: base, protocols: ['dumb-increment-protocol'], pingIntervalMs: 0, backoff: { minDelayMs: 50, maxDelayMs: 200 } },
    mirror: { url: base, protocols: ['lws-mirror-protocol'], pingIntervalMs: 0, backoff: { minDelayMs: 50, maxDelayMs: 200 } },
  });
  await eventually(() => hub!.hub.stats().upstreams.every((u) => u.client.state === 'open'), 'both upstreams open', 15_000);

  const dumb = [0, 1, 2, 3].map(() => new Worker(hub!.url('dumb'), { protocol: 'dumb-increment-protocol', env: { WORKER_KEEP: '1' } }));
  workers.push(...dumb);
  const opens = await Promise.all(dumb.map((w) => w.opened()));
  assert.ok(opens.every((o) => o.protocol === 'dumb-increment-protocol'));
  const reports = await Promise.all(
    dumb.map((w) =>
      eventually(async () => {
        const r = await w.report();
        return r.messages >= 20 ? r : undefined;
      }, 'twenty numbers at each worker', 15_000),
    ),
  );
  const numbers = reports.map((r) => r.bodies.map((b) => Number(Buffer.from(b.hex, 'hex').toString())));
  // One upstream connection: every worker sees one shared, strictly increasing count.
  for (const seq of numbers) {
    for (let i = 1; i < seq.length; i++) assert.equal(seq[i], seq[i - 1]! + 1, 'consecutive numbers, none lost');
  }
  const common = numbers.map((s) => new Set(s)).reduce((a, b) => new Set([...a].filter((x) => b.has(x))));
  assert.ok(common.size >= 10, `workers share the same numbers (${common.size} in common)`);
  assert.equal(hub.hub.stats().upstreams.find((u) => u.name === 'dumb')!.client.connections, 1);

  const mirror = [0, 1, 2].map(() => new Worker(hub!.url('mirror'), { protocol: 'lws-mirror-protocol', env: { WORKER_KEEP: '1' } }));
  workers.push(...mirror);
  await Promise.all(mirror.map((w) => w.opened()));
  await eventually(() => upstreamOf(hub!.hub, 'mirror').sessions === 3, 'three mirror sessions');
  mirror[0]!.send('c #ff0000 1 2 3 4;');
  for (const w of mirror) {
    const r = await eventually(async () => {
      const rep = await w.report();
      return rep.messages >= 1 ? rep : undefined;
    }, 'the mirrored drawing at every worker');
    assert.equal(Buffer.from(r.bodies[0]!.hex, 'hex').toString(), 'c #ff0000 1 2 3 4;');
  }
});
