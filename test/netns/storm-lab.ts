/**
 * The connect-storm setup shared by test/netns/storm.test.ts (which asserts)
 * and bench/connect-storm.ts (which measures): one process holding N clients
 * at once, some to live ws servers, some to closed ports (refused at once),
 * some to a blackholed address (silent drop: only tcpTimeoutMs ends them).
 *
 * Topology: namespace `srv` (10.213.3.2/24) runs the echo server with several
 * listeners; namespace `cli` (10.213.3.1/24, no default route) runs the storm
 * client. 10.213.3.3 is blackholed as seen from `cli` (a permanent neighbour
 * entry with a MAC nobody owns), and ports 1001… on 10.213.3.2 are closed
 * (nothing else runs in that namespace).
 *
 * Ping punctuality is measured on the server side: the echo server stamps
 * every ping it receives, so a stalled client event loop shows up as a late
 * ping no matter what the client believes about itself.
 */
import { NetnsLab, type Netns, type NsEvent, type NsProcess } from '../support/netns.js';

const fixture = (name: string): URL => new URL(`./fixtures/${name}`, import.meta.url);

export const STORM_SERVER_ADDRESS = '10.213.3.2';
export const STORM_CLIENT_ADDRESS = '10.213.3.1';
export const STORM_BLACKHOLE_ADDRESS = '10.213.3.3';
/** First of the closed ports used for refused targets. */
export const STORM_CLOSED_PORT_BASE = 1001;

export interface StormTopology {
  lab: NetnsLab;
  srv: Netns;
  cli: Netns;
  server: NsProcess;
  /** The echo server's listener ports. */
  ports: number[];
}

export interface StormPlan {
  live: number;
  refused: number;
  blackholed: number;
  tcpTimeoutMs: number;
  pingIntervalMs: number;
  /** How long the storm runs before the report, from the first connect(). */
  observeMs: number;
}

/** Loop delay of the storm process in ms (perf_hooks histogram, 10 ms resolution). */
export interface LoopDelay {
  min: number;
  mean: number;
  p50: number;
  p99: number;
  max: number;
  samples: number;
}

export interface StormClient {
  i: number;
  kind: 'live' | 'refused' | 'blackholed';
  opens: number;
  failures: number;
  reconnects: number;
  states: number;
  firstOpenMs: number | undefined;
  firstFail: { ms: number; code: string | undefined; errno: string | undefined } | undefined;
}

/** The pings one server-side connection received during the storm. */
export interface ServerPings {
  id: number;
  count: number;
  /** Every gap: open → first ping, ping → ping, last ping → end of the window. */
  gaps: number[];
  maxGapMs: number;
}

export interface StormRun {
  plan: StormPlan;
  clients: StormClient[];
  eld: LoopDelay;
  /** Epoch ms of the storm's start (the client's `started` event). */
  startedAt: number;
  /** ms from start until every live client was open; undefined if some never opened. */
  allOpenMs: number | undefined;
  /** Connections the server accepted during this run. */
  serverConnections: number;
  pings: ServerPings[];
  /** The storm client's stderr, for diagnosing a failed assertion. */
  stderr: string;
}

/** Namespaces, link, blackhole and echo server. Call `topology.lab.destroy()` when done. */
export async function createStormTopology(label = 'storm', listeners = 10): Promise<StormTopology> {
  const lab = await NetnsLab.create(label);
  try {
    const srv = await lab.namespace('srv');
    const cli = await lab.namespace('cli');
    await lab.link(cli, srv, { a: [`${STORM_CLIENT_ADDRESS}/24`], b: [`${STORM_SERVER_ADDRESS}/24`] }, { a: 'eth0', b: 'eth0' });
    await cli.blackhole(STORM_BLACKHOLE_ADDRESS, 'eth0');
    const server = await srv.spawnNode(fixture('echo-server.js'), ['--host', STORM_SERVER_ADDRESS, '--servers', String(listeners)], { listenOnly: true });
    const listening = await server.waitFor((e) => e.type === 'listening', 15_000, 'echo server listening');
    return { lab, srv, cli, server, ports: listening.ports as number[] };
  } catch (err) {
    await lab.destroy();
    throw err;
  }
}

/** The targets of a plan, live ones spread over the server's listeners. */
export function stormTargets(topology: StormTopology, plan: StormPlan): Array<{ kind: StormClient['kind']; url: string }> {
  const targets: Array<{ kind: StormClient['kind']; url: string }> = [];
  for (let i = 0; i < plan.live; i++) {
    targets.push({ kind: 'live', url: `ws://${STORM_SERVER_ADDRESS}:${topology.ports[i % topology.ports.length]}/live/${i}` });
  }
  for (let i = 0; i < plan.refused; i++) {
    targets.push({ kind: 'refused', url: `ws://${STORM_SERVER_ADDRESS}:${STORM_CLOSED_PORT_BASE + i}/refused/${i}` });
  }
  for (let i = 0; i < plan.blackholed; i++) {
    targets.push({ kind: 'blackholed', url: `ws://${STORM_BLACKHOLE_ADDRESS}:${8000 + i}/blackholed/${i}` });
  }
  return targets;
}

/**
 * Run one storm: start the client process, let it run `observeMs`, collect its
 * report and the server's ping stamps, close every client, stop the process.
 */
export async function runStorm(topology: StormTopology, plan: StormPlan): Promise<StormRun> {
  const { server, cli } = topology;
  const targets = stormTargets(topology, plan);
  const serverFrom = server.events.length;
  const options = {
    tcpTimeoutMs: plan.tcpTimeoutMs,
    pingIntervalMs: plan.pingIntervalMs,
    // Generous: this measures punctuality, it must not kill connections on a busy machine.
    pongTimeoutMs: Math.max(5000, plan.pingIntervalMs * 4),
    backoff: { minDelayMs: 250, maxDelayMs: 1000 },
  };
  const storm = await cli.spawnNode(fixture('storm-client.js'), ['--config', JSON.stringify({ targets, options })]);
  try {
    const started = await storm.waitFor((e) => e.type === 'started', 15_000, 'storm started');
    const startedAt = started.at as number;
    // The storm runs; the test process only waits, so it disturbs nothing.
    const deadline = startedAt + plan.observeMs;
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, deadline - Date.now())));
    const report = await storm.request({ cmd: 'report' }, 'report', 15_000);
    const pingsReply = await server.request({ cmd: 'pings' }, 'pings', 15_000);
    const endAt = report.at as number;
    const clients = report.clients as StormClient[];
    const live = clients.filter((c) => c.kind === 'live');
    const allOpen = live.every((c) => c.firstOpenMs !== undefined);
    const serverEvents = server.events.slice(serverFrom);
    const connectedAt = new Map<number, number>(serverEvents.filter((e) => e.type === 'connection').map((e) => [e.id as number, e.at as number]));
    const pings = (pingsReply.conns as Array<{ id: number; times: number[] }>)
      .filter((c) => connectedAt.has(c.id))
      .map((c) => serverPings(c.id, connectedAt.get(c.id)!, c.times, endAt));
    await storm.request({ cmd: 'close' }, 'closed', 20_000);
    return {
      plan,
      clients,
      eld: report.eld as LoopDelay,
      startedAt,
      allOpenMs: allOpen ? Math.max(...live.map((c) => c.firstOpenMs!)) : undefined,
      serverConnections: connectedAt.size,
      pings,
      stderr: storm.stderr,
    };
  } finally {
    await storm.kill();
    // Let the server see every close before the next run counts connections.
    await waitForServerIdle(server, 10_000);
  }
}

function serverPings(id: number, openAt: number, times: number[], endAt: number): ServerPings {
  const inWindow = times.filter((t) => t <= endAt);
  const points = [openAt, ...inWindow, endAt];
  const gaps: number[] = [];
  for (let k = 1; k < points.length; k++) gaps.push(points[k]! - points[k - 1]!);
  return { id, count: inWindow.length, gaps, maxGapMs: Math.max(...gaps) };
}

async function waitForServerIdle(server: NsProcess, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    const reply: NsEvent = await server.request({ cmd: 'count' }, 'count', 5000);
    if (reply.open === 0) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
