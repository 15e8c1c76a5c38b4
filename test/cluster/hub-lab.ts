/**
 * The cluster as an operator runs it, for the process-level tests of
 * test/cluster/hub-*.test.ts: a real nats-server (JetStream, temp store, free
 * port), hubs as separate `wshub serve` daemons (each its own Unix socket and
 * HTTP port, its JSON log lines kept), optionally a hub inside a network
 * namespace joined to this (the host) namespace by a veth pair, so a test can
 * cut that hub's network for real.
 *
 * Everything a lab starts is torn down by {@link ClusterLab.close} (register
 * it with the test's `after`): hubs (SIGKILL, also when SIGSTOPped), the
 * nats-server and its store, the namespace with its veth, the temp dir. Set
 * WSHUB_CLUSTER_KEEP=1 to keep the temp dir (configs) for a post-mortem.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { UpstreamNames, bucketName } from '../../src/cluster/subjects.js';
import type { HubClusterStats } from '../../src/hub/cluster-node.js';
import type { UpstreamClusterStats } from '../../src/hub/cluster-upstream.js';
import type { HubStats } from '../../src/hub/hub.js';
import type { TestContext } from 'node:test';
import { DemoFeed } from '../../src/demo/feed.js';
import { eventually, runCleanup } from '../hub/helpers.js';
import { DAEMON_NODE_FLAGS } from '../../src/cli/launch.js';
import { ConnectionCounter } from './fixtures/pinging-feed.js';
import { NetnsLab, run, type Netns } from '../support/netns.js';
import { NatsServer, delay } from './helpers.js';

/** The CLI as installed (it runs the compiled dist/src/cli/main.js): `node bin/wshub.js serve -c <file>`. */
const MAIN = fileURLToPath(new URL('../../../bin/wshub.js', import.meta.url));
/** The lease TTL of every test cluster: takeovers within TTL + TTL/3. */
export const TTL = 1500;
/** One renew (and campaign) interval. */
export const RENEW = TTL / 3;
/** Room for the scheduler of a shared 2-core machine on top of a bound. */
export const SLACK_MS = 400;
/** Per test: one that hangs fails (its after() hooks still clean up) instead of holding the suite. */
export const TEST_TIMEOUT_MS = 90_000;

let labSeq = 0;

/** Daemons alive; killed synchronously should the test process exit without its after() hooks (nothing async runs at 'exit'). */
const liveDaemons = new Set<ChildProcess>();
process.once('exit', () => {
  for (const proc of liveDaemons) proc.kill('SIGKILL');
});

export interface HubSpec {
  /** The hub's name (`cluster.hubName`), also its socket's and config's file name. */
  name: string;
  upstreams: Record<string, Record<string, unknown>>;
  onNatsLoss?: 'hold' | 'local';
  /** Run the daemon inside the lab's namespace (see {@link ClusterLab.withNamespace}). */
  inNamespace?: boolean;
}

/** One `wshub serve` daemon. */
export class HubProcess {
  readonly name: string;
  readonly socketPath: string;
  readonly proc: ChildProcess;
  /** Every JSON log line, in order. */
  readonly logs: Array<Record<string, unknown>> = [];
  #stderr = '';
  #http = '';
  readonly exited: Promise<void>;

  constructor(name: string, socketPath: string, proc: ChildProcess) {
    this.name = name;
    this.socketPath = socketPath;
    this.proc = proc;
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      try {
        this.logs.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        this.logs.push({ msg: line });
      }
    });
    proc.stderr!.setEncoding('utf8').on('data', (chunk: string) => { this.#stderr = (this.#stderr + chunk).slice(-8000); });
    liveDaemons.add(proc);
    this.exited = new Promise((resolve) => proc.once('exit', () => {
      liveDaemons.delete(proc);
      resolve();
    }));
  }

  get pid(): number {
    return this.proc.pid!;
  }

  get alive(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** `ws+unix://<socket>:<path>` */
  url(path: string): string {
    return `ws+unix://${this.socketPath}:${path}`;
  }

  /** Resolves once the HTTP listener is up (the daemon has joined the cluster by then). */
  async ready(timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const line = this.logs.find((l) => l.msg === 'status and metrics listening');
      if (line) {
        this.#http = String(line.http).replace(/\/$/, '');
        return;
      }
      if (!this.alive) throw new Error(`hub ${this.name} exited (${this.proc.exitCode ?? this.proc.signalCode}) before listening: ${this.#stderr}`);
      if (Date.now() > deadline) throw new Error(`hub ${this.name} not listening within ${timeoutMs} ms: ${this.#stderr}`);
      await delay(20);
    }
  }

  /** GET /status (fails fast when the hub does not answer: paused or cut off). */
  async status(timeoutMs = 1000): Promise<HubStats> {
    const res = await fetch(`${this.#http}/status`, { signal: AbortSignal.timeout(timeoutMs) });
    return (await res.json()) as HubStats;
  }

  async cluster(): Promise<HubClusterStats> {
    const c = (await this.status()).cluster;
    if (!c) throw new Error(`hub ${this.name} reports no cluster`);
    return c;
  }

  /** This hub's cluster figures for one upstream. */
  async upstream(name: string): Promise<UpstreamClusterStats> {
    const u = (await this.cluster()).upstreams.find((x) => x.upstream === name);
    if (!u) throw new Error(`hub ${this.name} has no cluster upstream ${name}`);
    return u;
  }

  /** Log lines whose `event` (or `msg`) is `what`. */
  logged(what: string): Array<Record<string, unknown>> {
    return this.logs.filter((l) => l.event === what || l.msg === what);
  }

  signal(sig: NodeJS.Signals): void {
    if (this.alive) this.proc.kill(sig);
  }

  /** SIGKILL (works on a stopped process too) and wait for the exit. */
  async kill(): Promise<void> {
    if (!this.alive) return;
    this.proc.kill('SIGKILL');
    await this.exited;
  }

  /** What the daemon said on stderr (last 8 KiB), for failure messages. */
  get stderr(): string {
    return this.#stderr;
  }
}

/** A namespace for one hub, joined to the host namespace by a veth pair. */
export interface HostLink {
  ns: Netns;
  /** The veth end inside the namespace (cut it with `ip link set … down`). */
  nsDev: string;
  hostDev: string;
  /** The host side's address: nats-server and the upstream listen here. */
  hostAddress: string;
  /** A second host address, for NATS only, so a test can cut NATS and keep the upstream. */
  natsAddress: string;
  /** The namespace side's address (the hub's HTTP listener). */
  nsAddress: string;
}

export class ClusterLab {
  readonly dir: string;
  /** The cluster's name: unique per lab, so buckets and subjects never meet another test's. */
  readonly name: string;
  readonly nats: NatsServer;
  readonly hubs: HubProcess[] = [];
  link: HostLink | undefined;
  readonly #cleanups: Array<() => unknown> = [];

  private constructor(nats: NatsServer) {
    this.dir = mkdtempSync(join(tmpdir(), 'wshub-clab-'));
    this.name = `hubs${process.pid}x${++labSeq}`;
    this.nats = nats;
    this.#cleanups.push(() => (process.env.WSHUB_CLUSTER_KEEP ? undefined : rmSync(this.dir, { recursive: true, force: true })));
  }

  /** A lab with its nats-server running (on 127.0.0.1, or on the host link's NATS address with `link`). */
  static async start(options: { link?: boolean } = {}): Promise<ClusterLab> {
    let link: HostLink | undefined;
    let netns: NetnsLab | undefined;
    if (options.link) ({ link, netns } = await makeHostLink());
    const nats = new NatsServer(link ? { host: link.natsAddress } : {});
    const lab = new ClusterLab(nats);
    lab.link = link;
    if (netns) lab.#cleanups.push(() => netns.destroy());
    lab.#cleanups.push(() => nats.dispose());
    await nats.start();
    return lab;
  }

  /** Where the upstream servers of this lab listen: the host side of the link, else loopback. */
  get upstreamHost(): string {
    return this.link?.hostAddress ?? '127.0.0.1';
  }

  /** Register a cleanup step (run newest first by {@link close}). */
  defer(step: () => unknown): void {
    this.#cleanups.push(step);
  }

  /** Start one hub daemon and wait until it listens. */
  async hub(spec: HubSpec): Promise<HubProcess> {
    const socketPath = join(this.dir, `${spec.name}.sock`);
    const configFile = join(this.dir, `${spec.name}.json`);
    const httpHost = spec.inNamespace ? this.#link().nsAddress : '127.0.0.1';
    writeFileSync(configFile, JSON.stringify({
      listen: socketPath,
      http: `${httpHost}:0`,
      logLevel: 'info',
      upstreams: spec.upstreams,
      cluster: { nats: this.nats.url, name: this.name, hubName: spec.name, leaseTtlMs: TTL, onNatsLoss: spec.onNatsLoss ?? 'hold' },
    }, null, 2));
    // With the daemon's node flags given here, the launcher runs the hub in this very process (no relaunch): SIGSTOP and the pid reach the hub itself.
    const args = [...DAEMON_NODE_FLAGS, MAIN, 'serve', '-c', configFile];
    let proc: ChildProcess;
    if (spec.inNamespace) {
      const { ns } = this.#link();
      await ns.assertNoDefaultRoute();
      // `ip netns exec` execs node in place: the child's pid is the daemon's own (SIGSTOP and SIGKILL reach it).
      proc = spawn('ip', ['netns', 'exec', ns.name, process.execPath, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    } else {
      proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    }
    const hub = new HubProcess(spec.name, socketPath, proc);
    this.hubs.push(hub);
    this.#cleanups.push(() => hub.kill());
    await hub.ready();
    return hub;
  }

  /**
   * Poll every live hub until exactly one holds `upstream` and every other
   * follows it with the stream open; resolves with the holder.
   */
  async settled(upstream: string, timeoutMs = 10_000): Promise<HubProcess> {
    return eventually(async () => {
      const live = this.hubs.filter((h) => h.alive);
      const seen = await Promise.all(live.map(async (h) => ({ h, s: await h.status() })));
      const views = seen.map(({ h, s }) => {
        const c = s.cluster?.upstreams.find((u) => u.upstream === upstream);
        return { hub: h, role: c?.role, epoch: c?.epoch ?? 0, holderEpoch: c?.holder?.epoch, state: s.upstreams.find((u) => u.name === upstream)?.client.state };
      });
      const holders = views.filter((v) => v.role === 'holder');
      const settled = holders.length === 1 && views.every((v) => v.state === 'open' && v.holderEpoch === holders[0]!.epoch);
      if (!settled) throw new Error(views.map((v) => `${v.hub.name}: ${v.role} ${v.state} epoch ${v.epoch} holder epoch ${v.holderEpoch}`).join('; '));
      return holders[0]!.hub;
    }, `one holder of ${upstream} and every hub open`, timeoutMs, 50);
  }

  /**
   * Resolves when the lease of `upstream` is next written (an acquire or a
   * renew), seen by a plain NATS subscriber on the KV's subject: a test can
   * act right after a renew, when the holder's deadline is furthest away.
   */
  async nextLeaseWrite(upstream: string, timeoutMs = 5000): Promise<number> {
    const nc = await connect({ servers: this.nats.url, name: 'cluster test lease watcher' });
    try {
      const sub = nc.subscribe(`$KV.${bucketName(this.name)}.${new UpstreamNames(this.name, upstream).leaseKey}`, { max: 1, timeout: timeoutMs });
      await nc.flush();
      for await (const _ of sub) return Date.now();
      throw new Error(`no write of the lease of ${upstream}`);
    } finally {
      await nc.close();
    }
  }

  /** Kill everything the lab started and remove its files; fails with the first failure after trying every step. */
  async close(): Promise<void> {
    await runCleanup(this.#cleanups.splice(0));
  }

  #link(): HostLink {
    if (!this.link) throw new Error('this lab was started without a namespace link (ClusterLab.start({ link: true }))');
    return this.link;
  }
}

/**
 * A namespace with a veth pair to this (the host) namespace: the host end
 * gets `10.213.N.1/24` (the upstream) and `10.213.N.3/24` (NATS), the
 * namespace end `10.213.N.2/24`. The namespace has no default route, so a
 * hub there reaches nothing but the host end. Deleting the namespace
 * (NetnsLab.destroy) deletes the pair with it. N is picked per process and
 * checked unused on the host, so concurrent runs do not meet.
 */
async function makeHostLink(): Promise<{ link: HostLink; netns: NetnsLab }> {
  const netns = await NetnsLab.create('clhub');
  try {
    const used = await run('ip', ['-4', '-o', 'addr', 'show']);
    let n = 100 + (process.pid % 100) + labSeq;
    while (used.includes(`10.213.${n % 250}.`)) n++;
    const net = `10.213.${n % 250}`;
    const ns = await netns.namespace('hub');
    const tag = `${process.pid % 10000}${labSeq}`;
    const hostDev = `wch${tag}`.slice(0, 15);
    const nsDev = `wcn${tag}`.slice(0, 15);
    // Created inside the namespace with its peer moved to ours (by pid): no name outlives the namespace.
    await ns.ip('link', 'add', 'name', nsDev, 'type', 'veth', 'peer', 'name', hostDev, 'netns', String(process.pid));
    await run('ip', ['addr', 'add', `${net}.1/24`, 'dev', hostDev]);
    await run('ip', ['addr', 'add', `${net}.3/24`, 'dev', hostDev]);
    await run('ip', ['link', 'set', hostDev, 'up']);
    await ns.ip('link', 'set', nsDev, 'up');
    await ns.addAddress(nsDev, `${net}.2/24`);
    return { link: { ns, nsDev, hostDev, hostAddress: `${net}.1`, natsAddress: `${net}.3`, nsAddress: `${net}.2` }, netns };
  } catch (err) {
    await netns.destroy();
    throw err;
  }
}

/** One message a holder put on NATS, as a plain subscriber saw it. */
export interface SpiedMessage {
  subject: string;
  /** `m` (a topic's message), `state` (the holder's upstream state) or `hub` (frames for one hub). */
  kind: string;
  epoch: number;
  at: number;
}

/**
 * A plain NATS client (not the hub's code) subscribed to everything holders
 * publish in a cluster — messages, states, frames for one hub — keeping each
 * message's `Wshub-Epoch` in order of arrival.
 */
export class NatsSpy {
  readonly records: SpiedMessage[] = [];
  readonly #nc: NatsConnection;

  private constructor(nc: NatsConnection) {
    this.#nc = nc;
  }

  static async start(url: string, cluster: string): Promise<NatsSpy> {
    const nc = await connect({ servers: url, name: 'cluster test spy' });
    const spy = new NatsSpy(nc);
    const sub = nc.subscribe(`wshub.${cluster}.>`);
    void (async () => {
      for await (const m of sub) {
        const kind = m.subject.split('.')[3] ?? '';
        if (kind !== 'm' && kind !== 'state' && kind !== 'hub') continue;
        spy.records.push({ subject: m.subject, kind, epoch: Number(m.headers?.get('Wshub-Epoch')), at: Date.now() });
      }
    })();
    await nc.flush();
    return spy;
  }

  async close(): Promise<void> {
    await this.#nc.close();
  }
}

/** A lab with the demo feed ticking every `tickMs` and a counter of its open connections, all closed with the test. */
export async function labWithFeed(t: Pick<TestContext, 'after'>, tickMs: number, options: { link?: boolean } = {}): Promise<{ lab: ClusterLab; feed: DemoFeed; counter: ConnectionCounter }> {
  const lab = await ClusterLab.start(options.link ? { link: true } : {});
  t.after(() => lab.close());
  // With a link (netns), the feed listens where hubs on both sides of it reach it.
  const feed = new DemoFeed({ tickMs, ...(options.link ? { host: lab.upstreamHost } : {}) });
  lab.defer(() => feed.close());
  await feed.ready();
  feed.start();
  const counter = new ConnectionCounter(feed);
  lab.defer(() => counter.stop());
  return { lab, feed, counter };
}
