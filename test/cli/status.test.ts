/**
 * `wshub status` against a real hub (and against no hub): each error code
 * printed once per line, and an unreachable hub reported with its own code.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type AddressInfo } from 'node:net';
import { HubHttpServer } from '../../src/observe/http.js';
import { eventually, startTestHub } from '../hub/helpers.js';
import { wshub, type CliResult } from './run.js';

const cleanups: Array<() => Promise<void> | void> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

const status = (http: string): Promise<CliResult> => wshub(['status', '--http', http]);

/** A loopback port nobody listens on (bound, then freed). */
async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as AddressInfo).port;
  await new Promise((resolve) => s.close(resolve));
  return port;
}

test('an upstream\'s last close shows its error code once', async () => {
  const dead = await freePort();
  const hub = await startTestHub({ feed: { url: `ws://127.0.0.1:${dead}/`, pingIntervalMs: 0, backoff: { minDelayMs: 5000, maxDelayMs: 5000 } } });
  cleanups.push(() => hub.close());
  const http = new HubHttpServer(hub.hub);
  const { port } = await http.listen('127.0.0.1', 0);
  cleanups.push(() => http.close());
  await eventually(() => hub.hub.stats().upstreams[0]?.client.lastClose, 'the first failed attempt');
  const r = await status(`127.0.0.1:${port}`);
  assert.equal(r.status, 0, r.stderr);
  const line = r.stdout.split('\n').find((l) => l.startsWith('feed '));
  assert.ok(line, r.stdout);
  assert.equal(line.match(/ERR_TCP_CONNECT/g)?.length, 1, line);
});

test('no hub at the address: ERR_HUB_UNREACHABLE (not ERR_UPSTREAM_UNAVAILABLE), one line, exit 1', async () => {
  const port = await freePort();
  const r = await status(`127.0.0.1:${port}`);
  assert.equal(r.status, 1);
  assert.match(r.stderr.trim(), new RegExp(`^wshub: ERR_HUB_UNREACHABLE: cannot reach the hub at http://127\\.0\\.0\\.1:${port}: ECONNREFUSED \\(is it running with --http 127\\.0\\.0\\.1:${port}\\?\\)$`));
});
