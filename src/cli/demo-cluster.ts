/**
 * `wshub demo --cluster`: cluster mode on one machine. Starts nats-server
 * (JetStream, store in a temp dir, a port of its choosing), the demo feed,
 * and two hubs in front of it sharing the feed through NATS: hub-a takes the
 * lease and alone connects the feed, hub-b serves its workers from NATS. The
 * example workers are spread over both hubs, and a `[demo]` line shows, each
 * time it changes, how many connections the feed has (one) and how many
 * workers each hub serves. Ctrl-C / SIGTERM stops every process it started
 * and removes the temp dir.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DemoFeed, demoUpstreamConfig } from '../demo/feed.js';
import { WshubError } from '../errors.js';
import type { Hub } from '../hub/hub.js';
import { resolveConfig } from '../hub/config.js';
import { createLogger, type Logger } from '../observe/log.js';
import { binCommand, freePortOr0, onPath, PLAN_COUNT, type DemoFlags } from './demo.js';
import { startNatsServer, type NatsServerProcess } from './nats-server.js';
import { handleSignals, startHub, type RunningHub } from './serve.js';

/** The two hubs, their preferred ports (any free port when taken), and the cluster name they share. */
const HUBS = [
  { name: 'hub-a', tcp: 7070, http: 7071 },
  { name: 'hub-b', tcp: 7072, http: 7073 },
] as const;
const CLUSTER_NAME = 'demo';
/** How long a hub gets to take (hub-a) or follow (hub-b) the lease. */
const ROLE_TIMEOUT_MS = 15_000;

interface DemoHub {
  name: string;
  running: RunningHub;
  socket: string;
  tcp: string | undefined;
  status: string;
}

/** `host:port` from a flag (hub-a) or the hub's preferred port on loopback; hub-b takes any free port on the flag's host. */
async function address(flag: string | undefined, preferred: number, first: boolean): Promise<string> {
  if (flag === undefined) return `127.0.0.1:${await freePortOr0('127.0.0.1', preferred)}`;
  const colon = flag.lastIndexOf(':');
  return first || colon < 0 ? flag : `${flag.slice(0, colon)}:0`;
}

const roleOf = (hub: Hub): string | undefined => hub.stats().cluster?.upstreams[0]?.role;
const openOf = (hub: Hub): boolean => hub.stats().upstreams[0]?.client.state === 'open';

async function waitFor(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + ROLE_TIMEOUT_MS;
  while (!check()) {
    if (Date.now() > deadline) throw new WshubError('ERR_INVALID_STATE', `demo --cluster: ${what} within ${ROLE_TIMEOUT_MS} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The banner: where everything runs and how to attach a worker to each hub. */
export function clusterDemoText(o: { nats: string; store: string; feedUrl: string; hubs: readonly DemoHub[]; workers: string[] }, tools = onPath(['websocat', 'wscat'])): string {
  const subscribe = '{"method":"SUBSCRIBE","params":["ethusdt@trade"],"id":1}';
  const [a, b] = o.hubs;
  const lines = [
    '',
    'wshub demo --cluster',
    `  nats-server     ${o.nats} (JetStream; store in ${o.store}, removed at exit)`,
    `  demo upstream   ${o.feedUrl} (exchange-style feed, topics: btcusdt@trade, ethusdt@trade, solusdt@trade, btcusdt@ticker)`,
  ];
  for (const h of o.hubs) {
    const part = h === a ? 'holds the lease: the only connection to the feed' : 'follows: serves its workers from NATS, no connection to the feed';
    lines.push(`  ${h.name}           ${part}`, `    socket        ${h.socket}`);
    if (h.tcp) lines.push(`    tcp           ws://${h.tcp}/u/feed`);
    lines.push(`    status        ${h.status}  (JSON: ${h.status}status)`);
  }
  lines.push('', 'Attach a worker to each hub (any WebSocket client; only the URL changes):');
  for (const h of o.hubs) lines.push(`  ${binCommand()} tail ws+unix://${h.socket}:/u/feed -s '${subscribe}'`);
  for (const tool of ['websocat', 'wscat'] as const) {
    if (!tools.includes(tool)) continue;
    for (const h of o.hubs) if (h.tcp) lines.push(`  ${tool === 'wscat' ? 'wscat -c' : 'websocat'} ws://${h.tcp}/u/feed          then send ${subscribe}`);
  }
  lines.push('');
  if (o.workers.length === 0) lines.push('No example workers started (--workers 0).');
  else lines.push(`Started ${o.workers.join(', ')}.`);
  lines.push(
    `The feed sees one connection (${a?.name ?? 'hub-a'}'s) and each topic subscribed once, whichever hub's workers ask;`,
    `${b?.name ?? 'hub-b'}'s workers get the same messages through NATS. The [demo] line below counts them; each hub's status page shows its part.`,
    'Ctrl-C stops everything (nats-server too) and removes the temp dir.',
    '',
  );
  return lines.join('\n');
}

/** Start the example workers over the two hubs; returns them and what to say about them. */
function startWorkers(hubs: readonly DemoHub[], count: number): { children: ChildProcess[]; said: string[] } {
  const transparent = fileURLToPath(new URL('../../examples/transparent-worker.js', import.meta.url));
  const hubAware = fileURLToPath(new URL('../../examples/hubclient-worker.js', import.meta.url));
  const [a, b] = hubs as [DemoHub, DemoHub];
  const plans: Array<[string, DemoHub, string[], string]> = [
    [transparent, a, ['feed', 'worker-1', 'btcusdt@trade,ethusdt@trade'], `worker-1 (plain ws) on ${a.name}`],
    [transparent, b, ['feed', 'worker-2', 'btcusdt@trade,solusdt@trade'], `worker-2 (plain ws) on ${b.name}`],
    [hubAware, b, ['feed', 'btcusdt@trade', 'hubclient'], `hubclient (HubClient) on ${b.name}`],
  ];
  const chosen = plans.slice(0, Math.min(count, PLAN_COUNT));
  return {
    children: chosen.map(([script, hub, args]) => fork(script, [hub.socket, ...args], { stdio: 'inherit' })),
    said: chosen.map(([, , , said]) => said),
  };
}

/** One line of what the sharing looks like now: the feed's connections and each hub's workers. */
function sharingLine(feed: DemoFeed, hubs: readonly DemoHub[]): string {
  const parts = hubs.map((h) => {
    const n = h.running.hub.stats().connections.length;
    return `${h.name} (${roleOf(h.running.hub) ?? '?'}) ${n} worker${n === 1 ? '' : 's'}`;
  });
  return `[demo]     feed connections open: ${feed.wss.clients.size} (opened since start: ${feed.connections}) · ${parts.join(' · ')}`;
}

export async function demoCluster(flags: DemoFlags): Promise<void> {
  if (flags.listen !== undefined) throw new WshubError('ERR_INVALID_OPTION', '--listen names one socket; with --cluster each hub has its own in the demo\'s temp dir');
  const dir = mkdtempSync(join(tmpdir(), 'wshub-demo-cluster-'));
  let nats: NatsServerProcess | undefined;
  const hubs: DemoHub[] = [];
  let feed: DemoFeed | undefined;
  let children: ChildProcess[] = [];
  let closing: Promise<void> | undefined;
  // Followers first (a holder closing first would hand them the lease), then the feed, NATS, the temp dir.
  const closeAll = (): Promise<void> => (closing ??= (async () => {
    for (const child of children) child.kill('SIGTERM');
    for (const h of [...hubs].reverse()) await h.running.close().catch(() => undefined);
    await feed?.close();
    await nats?.stop();
    rmSync(dir, { recursive: true, force: true });
  })());
  // Whatever ends the process (a second Ctrl-C exits at once), nats-server must not outlive it.
  process.once('exit', () => {
    for (const child of children) child.kill('SIGKILL');
    nats?.proc.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  let logger: Logger | undefined;
  try {
    nats = await startNatsServer(join(dir, 'nats'), { purpose: 'wshub demo --cluster' });
    feed = new DemoFeed({ tickMs: 1000 });
    await feed.ready();
    feed.start();
    for (const [i, spec] of HUBS.entries()) {
      const socket = join(dir, `${spec.name}.sock`);
      const config = resolveConfig({
        listen: socket,
        tcp: await address(flags.tcp, spec.tcp, i === 0),
        http: await address(flags.http, spec.http, i === 0),
        logLevel: flags.logLevel ?? 'warn',
        upstreams: { feed: demoUpstreamConfig(feed.url) },
        cluster: { nats: nats.url, name: CLUSTER_NAME, hubName: spec.name },
      });
      logger ??= createLogger({ level: config.logLevel, pretty: process.stdout.isTTY === true });
      const running = await startHub(config, logger.child({ hub: spec.name }));
      const tcp = running.hub.server.addresses().tcp;
      const status = running.httpAddress ? `http://${running.httpAddress.host}:${running.httpAddress.port}/` : '(no --http)';
      hubs.push({ name: spec.name, running, socket, tcp: tcp && `${tcp.host}:${tcp.port}`, status });
      // hub-a starts alone, so it is the one to take the lease; hub-b then finds it held and follows.
      if (i === 0) await waitFor(() => roleOf(running.hub) === 'holder' && openOf(running.hub), `${spec.name} did not take the lease and connect the feed`);
      else await waitFor(() => roleOf(running.hub) === 'follower' && openOf(running.hub), `${spec.name} did not follow ${HUBS[0].name}`);
    }
  } catch (err) {
    await closeAll();
    throw err;
  }
  let last = '';
  const show = (): void => {
    const line = sharingLine(feed, hubs);
    if (line !== last) console.log((last = line));
  };
  // The first tick comes after the banner below: everything from here to the end is synchronous.
  const timer = setInterval(show, 1000);
  timer.unref();
  // Signals are wired before the banner is printed and the workers forked (as in `serve`): a Ctrl-C that follows
  // the banner stops everything this demo started.
  handleSignals({
    ...hubs[0]!.running,
    close: async () => {
      clearInterval(timer);
      await closeAll();
    },
  }, undefined);
  const started = startWorkers(hubs, flags.workers ?? PLAN_COUNT);
  children = started.children;
  console.log(clusterDemoText({ nats: nats.url, store: dir, feedUrl: feed.url, hubs, workers: started.said }));
  feed.on('subscribe', (topics) => console.log(`[feed]     upstream SUBSCRIBE ${topics.join(', ')} (total subscribes seen: ${[...feed.subscribes.values()].reduce((a, b) => a + b, 0)})`));
  show();
}
