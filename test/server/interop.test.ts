/**
 * Interop with peers no one here wrote: python-websockets over TCP and over
 * the Unix socket, and libwebsockets' own test client against the listener.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HardenedServer } from '../../src/server/server.js';
import { startEchoServer, tcpUrl, tempDir, waitFor, withTimeout } from './helpers.js';

const PYTHON = '/usr/bin/python3';
const LWS_CLIENT = '/usr/bin/libwebsockets-test-client';
const SCRIPT = fileURLToPath(new URL('../../../test/server/interop_client.py', import.meta.url));

function requireBinary(path: string, pkg: string): void {
  assert.ok(existsSync(path), `${path} is missing: install the Debian package ${pkg}`);
}

function runPython(args: string[]): Promise<Record<string, unknown>> {
  requireBinary(PYTHON, 'python3-websockets');
  return withTimeout(new Promise((resolve, reject) => {
    execFile(PYTHON, [SCRIPT, ...args], { timeout: 15_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`python client failed (is python3-websockets installed?): ${err.message}\n${stderr}`));
      else resolve(JSON.parse(stdout.trim().split('\n').pop()!) as Record<string, unknown>);
    });
  }), 20_000, 'python client');
}

async function interopServer(t: { after(fn: () => void): void }): Promise<{ server: HardenedServer; path: string }> {
  const path = join(tempDir(t), 'hub.sock');
  const server = await startEchoServer({ tcp: { port: 0 }, listen: path, handleProtocols: (p) => (p.has('interop-v1') ? 'interop-v1' : false) });
  t.after(() => server.destroy());
  return { server, path };
}

const expected = { text: 'héllo from python', binary_ok: true, subprotocol: 'interop-v1', close_code: 1000 };

test('python-websockets over TCP exchanges text and binary byte for byte', async (t) => {
  const { server } = await interopServer(t);
  assert.deepEqual(await runPython(['tcp', tcpUrl(server, '/u/feed')]), expected);
  assert.equal(server.stats().accepted, 1);
  await waitFor(() => server.stats().open === 0, 3000, 'python session closed');
  assert.deepEqual(server.stats().errors, {});
});

test('python-websockets over the Unix socket (unix_connect) exchanges text and binary', async (t) => {
  const { server, path } = await interopServer(t);
  assert.deepEqual(await runPython(['unix', path, 'ws://localhost/u/feed']), expected);
  assert.equal(server.stats().accepted, 1);
});

test('libwebsockets-test-client runs its dumb-increment and mirror protocols against the listener', async (t) => {
  requireBinary(LWS_CLIENT, 'libwebsockets-test-server');
  // lws's client sends Origin http://127.0.0.1, as a browser would: allow exactly that.
  const server = new HardenedServer({ tcp: { port: 0 }, allowedOrigins: ['http://127.0.0.1'] });
  const negotiated: string[] = [];
  const mirrored: string[] = [];
  let increments = 0;
  const mirrors = new Set<import('ws').WebSocket>();
  server.on('session', ({ ws }) => {
    negotiated.push(ws.protocol);
    if (ws.protocol === 'dumb-increment-protocol') {
      // The protocol of lws's test server: a counter, as text, every 50 ms.
      const timer = setInterval(() => ws.send(String(increments++)), 50);
      ws.on('close', () => clearInterval(timer));
    } else if (ws.protocol === 'lws-mirror-protocol') {
      mirrors.add(ws);
      ws.on('message', (data, isBinary) => {
        mirrored.push((data as Buffer).toString());
        for (const peer of mirrors) peer.send(data as Buffer, { binary: isBinary });
      });
      ws.on('close', () => mirrors.delete(ws));
    } else {
      ws.close(1002, 'unknown protocol');
    }
  });
  const errorCloses: number[] = [];
  server.on('sessionClose', ({ code }) => {
    if ([1002, 1003, 1007, 1008, 1009, 1011].includes(code)) errorCloses.push(code);
  });
  await server.listen();
  t.after(() => server.destroy());
  const port = server.addresses().tcp!.port;
  const client = spawn(LWS_CLIENT, ['127.0.0.1', `--port=${port}`], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  client.stdout.on('data', (c: Buffer) => (output += c.toString()));
  client.stderr.on('data', (c: Buffer) => (output += c.toString()));
  t.after(() => client.kill('SIGKILL'));
  await waitFor(() => mirrored.length >= 5 && increments >= 10, 10_000, 'lws client to mirror 5 messages and be sent 10 increments');
  // lws fails a connection with 1002/1007/… on a frame it cannot parse: none did.
  assert.deepEqual(errorCloses, [], 'no session closed with an error code');
  client.kill('SIGINT');
  await withTimeout(new Promise((r) => client.once('exit', r)), 5000, 'lws client exit');
  assert.deepEqual([...negotiated].sort(), ['dumb-increment-protocol', 'lws-mirror-protocol']);
  for (const line of mirrored) assert.match(line, /^c #[0-9A-F]{6} \d+ \d+ \d+;$/);
  assert.match(output, /lws_http_client_http_response 101/);
  assert.match(output, /mirror: LWS_CALLBACK_CLIENT_ESTABLISHED/);
  assert.equal(server.stats().rejected.ERR_ORIGIN_REFUSED, undefined);
});
