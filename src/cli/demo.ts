/**
 * `wshub demo`: the embedded default. Starts the demo feed (an exchange-style
 * upstream on loopback), the hub in front of it, and two worker processes
 * that subscribe through the hub and print what they get, so the sharing is
 * visible: both workers' subscriptions reach the feed as one.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
}

/** `port` if it is free on `host`, else 0 (any free port). */
async function freePortOr0(host: string, port: number): Promise<number> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once('error', () => resolve(0));
    probe.listen(port, host, () => probe.close(() => resolve(port)));
  });
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
  const tcpAddress = running.hub.server.addresses().tcp;
  const status = running.httpAddress ? `http://${running.httpAddress.host}:${running.httpAddress.port}/` : '(no --http)';
  console.log(
    [
      '',
      'wshub demo',
      `  demo upstream   ${feed.url} (exchange-style feed, topics: btcusdt@trade, ethusdt@trade, solusdt@trade, btcusdt@ticker)`,
      `  hub socket      ${listen}`,
      `  hub tcp         ws://${tcpAddress?.host}:${tcpAddress?.port}/u/feed`,
      `  status          ${status}  (JSON: ${status}status)`,
      '',
      'Attach another worker (any WebSocket client; only the URL changes):',
      `  node bin/wshub.js tail ws+unix://${listen}:/u/feed -s '{"method":"SUBSCRIBE","params":["ethusdt@trade"],"id":1}'`,
      `  websocat ws://${tcpAddress?.host}:${tcpAddress?.port}/u/feed   then send {"method":"SUBSCRIBE","params":["ethusdt@trade"],"id":1}`,
      '',
      'Two plain ws workers (transparent mode) and one HubClient worker (envelope mode) subscribe to',
      'overlapping topics; the feed sees each topic subscribed once.',
      'Ctrl-C stops everything.',
      '',
    ].join('\n'),
  );
  // The demo's workers are the examples in examples/: what runs here is what a user copies.
  const transparent = fileURLToPath(new URL('../../examples/transparent-worker.js', import.meta.url));
  const hubAware = fileURLToPath(new URL('../../examples/hubclient-worker.js', import.meta.url));
  const plans: Array<[string, string[]]> = [
    [transparent, [listen, 'feed', 'worker-1', 'btcusdt@trade,ethusdt@trade']],
    [transparent, [listen, 'feed', 'worker-2', 'btcusdt@trade,solusdt@trade']],
    [hubAware, [listen, 'feed', 'btcusdt@trade', 'hubclient']],
  ];
  const children: ChildProcess[] = plans.slice(0, flags.workers ?? plans.length).map(([script, args]) => fork(script, args, { stdio: 'inherit' }));
  feed.on('subscribe', (topics) => console.log(`[feed]     upstream SUBSCRIBE ${topics.join(', ')} (total subscribes seen: ${[...feed.subscribes.values()].reduce((a, b) => a + b, 0)})`));
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
}
