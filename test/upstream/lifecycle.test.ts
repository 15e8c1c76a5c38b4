import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';

const script = new URL('./fixtures/exit-after-close.js', import.meta.url);

/** Run the fixture scenario; it must exit by itself within `timeoutMs` after doing its work. */
async function runToExit(scenario: string, timeoutMs = 8000): Promise<Record<string, unknown>> {
  const child = spawn(process.execPath, [script.pathname, scenario], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => {
    out += chunk.toString();
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
  clearTimeout(timer);
  assert.equal(signal, null, `scenario ${scenario} did not exit by itself within ${timeoutMs} ms (something kept the process alive); output: ${out}`);
  assert.equal(code, 0, `scenario ${scenario} exited with ${code}; output: ${out}`);
  return JSON.parse(out.trim()) as Record<string, unknown>;
}

test('after close() nothing keeps the process alive, and no listener leaks across 5 reconnects', async () => {
  const facts = await runToExit('reconnects');
  assert.equal(facts.connections, 6);
  assert.equal(facts.watcherListenersOpen, 1, 'one netwatch subscription while open, not one per reconnect');
  assert.equal(facts.watcherListenersClosed, 0);
  assert.equal(facts.rtt, 'number');
});

test('close() during a 30 s backoff wait: the retry timer and a 60 s queue TTL do not keep the process alive', async () => {
  const facts = await runToExit('pendingRetry');
  assert.equal(facts.delayMs, 30_000);
  assert.deepEqual(facts.drops, ['ERR_QUEUE_CLOSED']);
});

test('destroy() cuts short a graceful close whose peer never answers', async () => {
  const facts = await runToExit('openThenDestroy', 5000);
  assert.equal(facts.state, 'closed');
  assert.equal(facts.watcherListenersClosed, 0);
});
