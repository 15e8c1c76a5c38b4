import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { connect, type LookupFunction, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { ResilientWebSocket } from '../../src/upstream/resilient.js';
import { echo, startWsServer, waitFor, waitState } from './helpers.js';

const listenerScript = fileURLToPath(new URL('../../../test/upstream/backlog-listener.py', import.meta.url));
const PYTHON = '/usr/bin/python3';

/** 127.0.0.1:port where connects hang: a listener that never accepts, its one-slot backlog filled. */
async function blackholePort(): Promise<{ port: number; close: () => Promise<void> }> {
  const proc = spawn(PYTHON, [listenerScript], { stdio: ['pipe', 'pipe', 'inherit'] });
  proc.on('error', () => undefined);
  const line = await Promise.race([
    once(proc.stdout, 'data').then(([chunk]) => String(chunk)),
    once(proc, 'error').then(([err]) => {
      throw new Error(`cannot run ${PYTHON} for the never-accepting listener: ${(err as Error).message}`);
    }),
    once(proc, 'exit').then(() => {
      throw new Error(`${PYTHON} ${listenerScript} exited before listening`);
    }),
  ]);
  const port = Number(line.trim());
  const fillers: Socket[] = [];
  // Fill the accept queue; later SYNs are dropped by the kernel.
  for (let i = 0; i < 2; i++) {
    const s = connect(port, '127.0.0.1');
    s.on('error', () => undefined);
    fillers.push(s);
  }
  // Whichever filler completes first takes the one slot.
  await Promise.any(fillers.map((s) => once(s, 'connect')));
  return {
    port,
    close: async () => {
      for (const s of fillers) s.destroy();
      const exited = once(proc, 'exit');
      proc.stdin.end();
      await exited;
    },
  };
}

test('a connect that never completes → ERR_TCP_TIMEOUT naming the address after tcpTimeoutMs', async (t) => {
  const hole = await blackholePort();
  const client = new ResilientWebSocket({ url: `ws://127.0.0.1:${hole.port}/`, tcpTimeoutMs: 400, backoff: { minDelayMs: 5000, maxDelayMs: 5000 } });
  t.after(async () => {
    client.destroy();
    await hole.close();
  });
  const wait = waitState(client, 'reconnecting', 5000);
  const started = Date.now();
  client.connect();
  const change = await wait;
  const took = Date.now() - started;
  assert.equal(change.cause?.code, 'ERR_TCP_TIMEOUT');
  assert.equal(change.cause?.details.phase, 'tcp');
  assert.equal(change.cause?.message, `ERR_TCP_TIMEOUT 127.0.0.1:${hole.port} (tcp connect not done after 400 ms)`);
  assert.ok(took >= 390, `failed after ${took} ms`);
});

test('Happy Eyeballs: the first address hangs, the other family is raced after happyEyeballsDelayMs and wins', async (t) => {
  const hole = await blackholePort();
  // The same port number on ::1 is a working server.
  const v6 = await startWsServer('::1', {}, hole.port);
  echo(v6);
  const lookup = ((_h: string, _o: unknown, cb: (e: null, a: Array<{ address: string; family: number }>) => void) => {
    setImmediate(() => cb(null, [{ address: '127.0.0.1', family: 4 }, { address: '::1', family: 6 }]));
  }) as LookupFunction;
  const client = new ResilientWebSocket({ url: `ws://dual.test:${hole.port}/`, lookup, happyEyeballsDelayMs: 250, tcpTimeoutMs: 5000 });
  t.after(async () => {
    client.destroy();
    await v6.close();
    await hole.close();
  });
  const opened = waitFor<[{ family: string; remoteAddress: string }]>(client, 'open', () => true, 5000);
  const started = Date.now();
  client.connect();
  const [info] = await opened;
  const took = Date.now() - started;
  assert.equal(info.family, 'IPv6');
  assert.equal(info.remoteAddress, '::1');
  assert.ok(took >= 240, `connected after ${took} ms: the second family must wait for the stagger delay`);
  assert.ok(took < 2500, `connected after ${took} ms: must not wait for the first address's tcpTimeoutMs`);
});
