/**
 * `wshub demo`: the embedded default. Starts the demo feed (an exchange-style
 * upstream on loopback), the hub in front of it, and two worker processes
 * that subscribe through the hub and print what they get, so the sharing is
 * visible: both workers' subscriptions reach the feed as one.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { accessSync, constants } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, isAbsolute, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DemoFeed, demoUpstreamConfig } from '../demo/feed.js';
import { resolveConfig } from '../hub/config.js';
import { createLogger } from '../observe/log.js';
import { handleSignals, startHub } from './serve.js';

export interface DemoFlags {
  listen?: string;
  tcp?: string;
  http?: string;
  workers?: number;
  logLevel?: string;
  /** `--cluster`: two hubs sharing the feed through a local nats-server (demo-cluster.ts). */
  cluster?: boolean;
}

/** `port` if it is free on `host`, else 0 (any free port). */
export async function freePortOr0(host: string, port: number): Promise<number> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once('error', () => resolve(0));
    probe.listen(port, host, () => probe.close(() => resolve(port)));
  });
}

/** The example workers the demo can start: two transparent, one HubClient. */
export const PLAN_COUNT = 3;

/** Programs on PATH, from the ones the demo could suggest. */
export function onPath(names: readonly string[], path = process.env.PATH ?? ''): string[] {
  const dirs = path.split(delimiter).filter(Boolean);
  return names.filter((name) => dirs.some((dir) => {
    try {
      accessSync(join(dir, name), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  }));
}

/** How to run this package's own bin from the current directory: never `npx wshub`, which may look the name up in the registry. */
export function binCommand(): string {
  const bin = fileURLToPath(new URL('../../../bin/wshub.js', import.meta.url));
  const rel = relative(process.cwd(), bin);
  return `node ${rel.startsWith('..') || isAbsolute(rel) ? bin : rel}`;
}

/** What the demo prints at start: only what it runs (the workers it started) and tools this machine has. */
export function demoText(o: { feedUrl: string; listen: string; tcp: string | undefined; status: string; workers: number }, tools = onPath(['websocat', 'wscat'])): string {
  const subscribe = '{"method":"SUBSCRIBE","params":["ethusdt@trade"],"id":1}';
  const lines = [
    '',
    'wshub demo',
    `  demo upstream   ${o.feedUrl} (exchange-style feed, topics: btcusdt@trade, ethusdt@trade, solusdt@trade, btcusdt@ticker)`,
    `  hub socket      ${o.listen}`,
    ...(o.tcp ? [`  hub tcp         ws://${o.tcp}/u/feed`] : []),
    `  status          ${o.status}  (JSON: ${o.status}status)`,
    '',
    'Attach a worker (any WebSocket client; only the URL changes):',
    `  ${binCommand()} tail ws+unix://${o.listen}:/u/feed -s '${subscribe}'`,
  ];
  if (o.tcp && tools.includes('websocat')) lines.push(`  websocat ws://${o.tcp}/u/feed          then send ${subscribe}`);
  if (o.tcp && tools.includes('wscat')) lines.push(`  wscat -c ws://${o.tcp}/u/feed          then send ${subscribe}`);
  lines.push('');
  if (o.workers === 0) {
    lines.push('No example workers started (--workers 0): the feed sees a topic subscribed when the first worker asks for it,');
    lines.push('and once only, however many workers ask.');
  } else if (o.workers === 1) {
    lines.push('Started one plain ws worker (transparent mode). Attach another one subscribing to btcusdt@trade:');
    lines.push('the feed still sees that topic subscribed once.');
  } else {
    const what = o.workers === 2 ? 'two plain ws workers (transparent mode)' : 'two plain ws workers (transparent mode) and one HubClient worker (envelope mode)';
    lines.push(`Started ${what};`, 'they subscribe to overlapping topics and the feed sees each topic subscribed once.');
  }
  lines.push('Ctrl-C stops everything.', '');
  return lines.join('\n');
}

export async function demo(flags: DemoFlags): Promise<void> {
  const feed = new DemoFeed({ tickMs: 1000 });
  await feed.ready();
  feed.start();
  const listen = flags.listen ?? join(tmpdir(), `wshub-demo-${process.pid}.sock`);
  const tcp = flags.tcp ?? `127.0.0.1:${await freePortOr0('127.0.0.1', 7070)}`;
  const http = flags.http ?? `127.0.0.1:${await freePortOr0('127.0.0.1', 7071)}`;
  const config = resolveConfig({
    listen,
    tcp,
    http,
    logLevel: flags.logLevel ?? 'warn',
    upstreams: { feed: demoUpstreamConfig(feed.url) },
  });
  const logger = createLogger({ level: config.logLevel, pretty: process.stdout.isTTY === true });
  const running = await startHub(config, logger);
  // Signals are wired before anything is printed or forked (as in `serve`): a Ctrl-C that follows the banner stops
  // the workers, the hub and the feed instead of meeting the default disposition.
  let children: ChildProcess[] = [];
  handleSignals(
    {
      ...running,
      close: async () => {
        for (const child of children) child.kill('SIGTERM');
        await running.close();
        await feed.close();
      },
    },
    undefined,
  );
  const tcpAddress = running.hub.server.addresses().tcp;
  const status = running.httpAddress ? `http://${running.httpAddress.host}:${running.httpAddress.port}/` : '(no --http)';
  const workers = Math.min(flags.workers ?? PLAN_COUNT, PLAN_COUNT);
  console.log(demoText({ feedUrl: feed.url, listen, tcp: tcpAddress && `${tcpAddress.host}:${tcpAddress.port}`, status, workers }));
  // The demo's workers are the examples in examples/: what runs here is what a user copies.
  const transparent = fileURLToPath(new URL('../../examples/transparent-worker.js', import.meta.url));
  const hubAware = fileURLToPath(new URL('../../examples/hubclient-worker.js', import.meta.url));
  const plans: Array<[string, string[]]> = [
    [transparent, [listen, 'feed', 'worker-1', 'btcusdt@trade,ethusdt@trade']],
    [transparent, [listen, 'feed', 'worker-2', 'btcusdt@trade,solusdt@trade']],
    [hubAware, [listen, 'feed', 'btcusdt@trade', 'hubclient']],
  ];
  children = plans.slice(0, workers).map(([script, args]) => fork(script, args, { stdio: 'inherit' }));
  feed.on('subscribe', (topics) => console.log(`[feed]     upstream SUBSCRIBE ${topics.join(', ')} (total subscribes seen: ${[...feed.subscribes.values()].reduce((a, b) => a + b, 0)})`));
}
