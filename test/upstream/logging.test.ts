import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { ResilientWebSocket } from '../../src/upstream/resilient.js';
import { startWsServer, waitState } from './helpers.js';

/** A real pino logger writing JSON lines into an array. */
function capture(): { logger: pino.Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n')) if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { logger: pino({ level: 'info' }, stream), lines };
}

test('one log line per connection event, with the reason; URL secrets and header values never logged', async (t) => {
  const server = await startWsServer('127.0.0.1', { handleProtocols: (set) => [...set][0] ?? false });
  server.wss.once('connection', (ws) => ws.close(1001, 'maintenance'));
  const { logger, lines } = capture();
  const client = new ResilientWebSocket({
    url: `${server.url}/feed?token=s3cr3t-token&x=1`, headers: { Authorization: 'Bearer hunter2' }, protocols: ['feed-v1'],
    logger, name: 'feed', backoff: { minDelayMs: 10, maxDelayMs: 10, floorMs: 10 },
  });
  t.after(async () => {
    client.destroy();
    await server.close();
  });
  client.connect();
  await waitState(client, 'open', 3000, () => client.stats().connections === 2);
  await client.close();
  await new Promise((resolve) => setImmediate(resolve));
  const text = JSON.stringify(lines);
  assert.ok(!text.includes('s3cr3t'), 'token in the URL is redacted');
  assert.ok(!text.includes('hunter2'), 'header values are never logged');
  const events = lines.map((l) => l.event);
  assert.deepEqual(events, ['connecting', 'open', 'close', 'reconnect', 'connecting', 'open', 'close']);
  for (const line of lines) assert.equal(line.upstream, 'feed');
  const open = lines[1]!;
  assert.equal(open.address, `127.0.0.1:${server.port}`);
  assert.equal(open.family, 'IPv4');
  assert.equal(open.protocol, 'feed-v1');
  const serverClose = lines[2]!;
  assert.equal(serverClose.code, 1001);
  assert.equal(serverClose.errorCode, 'ERR_SERVER_CLOSED');
  assert.equal(serverClose.reason, 'server closed 1001 "maintenance"');
  assert.equal(typeof lines[3]!.delayMs, 'number');
  assert.equal(lines[6]!.reason, 'close() called');
});

test('a throwing listener is logged and contained: the process and the connection carry on', async (t) => {
  const server = await startWsServer('127.0.0.1');
  server.wss.on('connection', (ws) => ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary })));
  const { logger, lines } = capture();
  const client = new ResilientWebSocket({ url: server.url, logger });
  t.after(async () => {
    client.destroy();
    await server.close();
  });
  client.on('state', () => {
    throw new Error('state listener bug');
  });
  client.on('open', () => {
    throw new Error('open listener bug');
  });
  const got: string[] = [];
  client.on('message', (data) => {
    got.push(data.toString());
    if (got.length === 1) throw new Error('message listener bug');
  });
  client.connect();
  const deadline = Date.now() + 5000;
  while (client.state !== 'open' && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
  assert.equal(client.state, 'open');
  client.send('one');
  client.send('two');
  while (got.length < 2 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
  assert.deepEqual(got, ['one', 'two']);
  const thrown = lines.filter((l) => l.msg === 'an upstream event listener threw').map((l) => l.event);
  assert.deepEqual(thrown, ['state', 'state', 'open', 'message']);
});
