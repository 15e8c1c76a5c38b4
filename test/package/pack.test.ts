/**
 * The package as a user installs it: `npm pack`, then `npm install <tarball>`
 * into an empty project, then what a user does first — `npx wshub --version`,
 * `import('wshub')` and its subpaths in ESM, a TypeScript consumer checked
 * with `skipLibCheck: false`, and a hub started from the installed bin that
 * serves its status page.
 *
 * The install fetches the dependencies from the npm registry (through the
 * local npm cache); without network access this test fails saying so.
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { eventually } from '../hub/helpers.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const TSC = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const dir = mkdtempSync(join(tmpdir(), 'wshub-pack-'));
const project = join(dir, 'consumer');
let files: string[] = [];

after(() => rmSync(dir, { recursive: true, force: true }));

function run(cmd: string, args: string[], cwd: string, timeout = 60_000): SpawnSyncReturns<string> {
  const res = spawnSync(cmd, args, { cwd, encoding: 'utf8', timeout, env: { ...process.env, npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false' } });
  if (res.error) throw new Error(`${cmd} ${args.join(' ')}: ${res.error.message}`);
  return res;
}

before(() => {
  // The tests run after `npm run build`; packing must not rebuild (prepare) inside the suite.
  const packed = run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], ROOT);
  assert.equal(packed.status, 0, packed.stderr);
  const info = (JSON.parse(packed.stdout) as Array<{ filename: string; files: Array<{ path: string }> }>)[0]!;
  files = info.files.map((f) => f.path);
  mkdirSync(project);
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true, type: 'module' }));
  const installed = run('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', join(dir, info.filename)], project, 120_000);
  assert.equal(installed.status, 0, `npm install of the tarball failed (is the npm registry reachable?):\n${installed.stderr}`);
});

test('the tarball holds the compiled library, the bin, docs, examples and README — no tests, benchmarks or sources', () => {
  const allowed = /^(package\.json|README\.md|bin\/|docs\/|examples\/|dist\/src\/|dist\/examples\/)/;
  assert.deepEqual(files.filter((f) => !allowed.test(f)), [], 'files outside the allowed set');
  assert.deepEqual(files.filter((f) => f.endsWith('.map')), [], 'source maps point at sources that are not shipped');
  for (const needed of ['bin/wshub.js', 'dist/src/cli/main.js', 'dist/src/index.js', 'dist/src/index.d.ts', 'dist/src/client/index.js', 'dist/src/upstream/index.js',
    'dist/src/observe/page/index.html', 'dist/src/observe/page/app.js', 'dist/examples/transparent-worker.js', 'dist/examples/hubclient-worker.js', 'docs/errors.md', 'docs/config.md']) {
    assert.ok(files.includes(needed), `${needed} is in the tarball`);
  }
});

test('npx wshub --version prints the package version', () => {
  const res = run('npx', ['--no', '--', 'wshub', '--version'], project);
  assert.equal(res.status, 0, res.stderr);
  assert.equal(res.stdout.trim(), VERSION);
});

test('the library and its subpaths import in ESM', () => {
  const script = `
    const root = await import('wshub');
    const client = await import('wshub/client');
    const upstream = await import('wshub/upstream');
    console.log(JSON.stringify({
      root: [typeof root.Hub, typeof root.HubClient, typeof root.ResilientWebSocket, typeof root.WshubError],
      client: [typeof client.HubClient, typeof client.WshubError, client.HubClient === root.HubClient],
      upstream: [typeof upstream.ResilientWebSocket, typeof upstream.DEFAULT_DNS_TIMEOUT_MS, upstream.ResilientWebSocket === root.ResilientWebSocket],
    }));`;
  const res = run(process.execPath, ['--input-type=module', '-e', script], project);
  assert.equal(res.status, 0, res.stderr);
  assert.deepEqual(JSON.parse(res.stdout), {
    root: ['function', 'function', 'function', 'function'],
    client: ['function', 'function', true],
    upstream: ['function', 'number', true],
  });
});

test('a TypeScript consumer type-checks against the published .d.ts with skipLibCheck: false', () => {
  writeFileSync(join(project, 'tsconfig.json'), JSON.stringify({
    compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, skipLibCheck: false, noEmit: true },
    files: ['consumer.ts'],
  }));
  writeFileSync(join(project, 'consumer.ts'), `
import { Hub, HubHttpServer, resolveConfig, isWshubError, type HubStats } from 'wshub';
import { HubClient, type HubMessage, type HubClientOptions } from 'wshub/client';
import { ResilientWebSocket, type StateChange, DEFAULT_UPSTREAM_PONG_TIMEOUT_MS } from 'wshub/upstream';

const options: HubClientOptions = { socketPath: '/tmp/x.sock' };
const client = new HubClient(options);
client.on('upstream', (s) => console.log(s.upstream, s.state));
export async function first(): Promise<HubMessage | undefined> {
  for await (const m of client.subscribe('feed', 'btcusdt@trade')) return m;
  return undefined;
}
const ws = new ResilientWebSocket({ url: 'wss://example.com/ws' });
ws.on('state', (s: StateChange) => console.log(s.from, s.to));
const config = resolveConfig({ listen: '/tmp/x.sock' });
const hub = new Hub({ config });
const http = new HubHttpServer(hub);
export const stats = (): HubStats => hub.stats();
export const wrong = (e: unknown): boolean => isWshubError(e, 'ERR_INVALID_OPTION');
void http;
export const pongTimeoutMs: number = DEFAULT_UPSTREAM_PONG_TIMEOUT_MS;
`);
  const res = run(process.execPath, [TSC, '-p', project], project, 90_000);
  assert.equal(res.status, 0, `tsc found errors in the consumer or the published types:\n${res.stdout}${res.stderr}`);
});

test('the installed bin starts a hub whose status page and uPlot are served from the package', async () => {
  const hub = spawn(process.execPath, [join(project, 'node_modules', '.bin', 'wshub'), 'serve', '--tcp', '127.0.0.1:0', '--http', '127.0.0.1:0'], { cwd: project, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  hub.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  try {
    const logs: Array<Record<string, unknown>> = [];
    createInterface({ input: hub.stdout }).on('line', (line) => logs.push(JSON.parse(line) as Record<string, unknown>));
    const listening = await eventually(() => logs.find((l) => l.msg === 'status and metrics listening') ?? (stderr ? Promise.reject(new Error(stderr)) : undefined), 'the HTTP listener');
    const base = String(listening.http);
    for (const path of ['/', '/app.js', '/style.css', '/vendor/uplot.js']) {
      const res = await fetch(new URL(path, base));
      assert.equal(res.status, 200, path);
      assert.ok((await res.arrayBuffer()).byteLength > 100, `${path} has a body`);
    }
  } finally {
    hub.kill('SIGTERM');
    await new Promise((resolve) => hub.once('exit', resolve));
  }
  assert.equal(stderr, '');
});
