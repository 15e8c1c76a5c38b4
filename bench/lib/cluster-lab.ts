/**
 * The cluster bench's laboratory: the relay lab's ws source (the upstream)
 * and worker processes, nats-server with JetStream in a temp dir, and hub
 * daemons — each a real `wshub serve -c <file>` process, as a user runs it
 * (bench/lib/daemon.ts):
 *
 * - the **cluster** arm: `hubs` daemons with a `cluster:` key on one NATS, all
 *   configured with the source's `/cluster` path; the first one started holds
 *   the upstream (the others follow), `perHub` workers on each;
 * - the **single-hub** arm: one daemon without `cluster:` on the source's
 *   `/single` path, every worker of the cluster arm on it too.
 *
 * Every worker holds one connection to each arm (idle while the other arm
 * runs), so arms can take turns without reconnecting. Each daemon's `/status`
 * (its one stats snapshot, with the ledger) is read over its `http:` listener.
 */
import { join } from 'node:path';
import { findNatsServer, INSTALL_NATS_SERVER, natsReadyUrl, natsServerArgs } from '../../src/cli/nats-server.js';
import { daemonStatus, startDaemon, waitForDaemon, type Daemon } from './daemon.js';
import { RelayLab, type System } from './relay-lab.js';
import { sleep } from './procs.js';

/** The two arms measured against each other. */
export type ClusterArm = 'single-hub' | 'cluster';

/** One `wshub serve` process, in one arm. */
export interface HubDaemon extends Daemon {
  arm: ClusterArm;
}

/** The parts of `/status` the bench reads (the hub's stats snapshot; docs/observe.md). */
export interface HubStatus {
  upstreams: Array<{
    name: string;
    client: { state: string };
    ledger: { in: { received: number; routed: number; consumed: number; unrouted: Record<string, number>; deliveries: number } };
    /** Reading paused for behind sessions (and, at the holder, behind hubs); sessions found slow. */
    pacing?: { pauses: number; pausedMs: number; slowSessions: number };
  }>;
  connections: Array<{ id: string; offered: number; messagesOut: number; queuedMessages: number; dropped: Record<string, number> }>;
  dropped: Record<string, number>;
  cluster?: {
    hubName: string;
    leaseTtlMs: number;
    upstreams: Array<{
      role: string;
      holder?: { hub: string; epoch: number };
      lease: { acquisitions?: number; fences?: number } & Record<string, unknown>;
      bus: { paceSent?: number; paceReceived?: number; published: number; publishRefusedNotHolder: number; publishRefusedTooLarge: number; received: number; unicastReceived: number; droppedStaleEpoch: number; droppedMalformed: number };
    }>;
  };
}

export interface ClusterLabOptions {
  /** Hubs in the cluster arm. */
  hubs: number;
  /** Workers attached to each hub of the cluster arm (the single hub gets them all). */
  perHub: number;
}

export class ClusterLab {
  readonly relay = new RelayLab();
  readonly options: ClusterLabOptions;
  readonly clusterHubs: HubDaemon[] = [];
  single!: HubDaemon;
  nats!: { pid: number; url: string; output: () => string };

  constructor(options: ClusterLabOptions) {
    this.options = options;
  }

  get workers(): number {
    return this.options.hubs * this.options.perHub;
  }

  /** Worker indices attached to cluster hub `h`. */
  workersOf(h: number): number[] {
    const { perHub } = this.options;
    return Array.from({ length: perHub }, (_, i) => h * perHub + i);
  }

  /**
   * Everything up: source and NATS; then, while the workers are forked (most of the wait), the single
   * hub beside the cluster's first hub, which takes the lease alone, then the followers; every worker
   * attached to both arms.
   */
  async start(log: (s: string) => void): Promise<void> {
    await Promise.all([this.relay.start(), this.#startNats()]);
    const forking = this.relay.ensureWorkers(this.workers).then(() => log(`${this.workers} workers forked`));
    const hubsUp = (async () => {
      const [single, holder] = await Promise.all([
        this.#startHub('single-hub', 'single', '/single', undefined),
        this.#startHub('cluster', 'hub-0', '/cluster', 'hub-0'),
      ]);
      this.single = single;
      this.clusterHubs.push(holder);
      await this.waitFor(holder, (s) => s.cluster?.upstreams[0]?.role === 'holder' && s.upstreams[0]?.client.state === 'open', 'hub-0 to hold the upstream');
      const rest = await Promise.all(Array.from({ length: this.options.hubs - 1 }, (_, i) => this.#startHub('cluster', `hub-${i + 1}`, '/cluster', `hub-${i + 1}`)));
      this.clusterHubs.push(...rest);
      await Promise.all(rest.map((h) => this.waitFor(h, (s) => s.cluster?.upstreams[0]?.role === 'follower' && s.upstreams[0]?.client.state === 'open', `${h.name} to follow the holder with the stream open`)));
      log(`nats-server ${this.nats.url}; single hub pid ${this.single.pid}; cluster hubs ${this.clusterHubs.map((h) => `${h.name} pid ${h.pid}`).join(', ')} (hub-0 holds)`);
    })();
    // Both settle before either failure is thrown: a failed start must not leave the other half running unseen.
    const [f, h] = await Promise.allSettled([forking, hubsUp]);
    for (const r of [f, h]) if (r.status === 'rejected') throw r.reason;
    for (const arm of ['single-hub', 'cluster'] as const) {
      const system = this.system(arm);
      await Promise.all(this.relay.workers.map((w, i) => w.call('connect', { name: arm, kind: 'ws', url: `ws+unix://${this.hubOfWorker(arm, i).socket}:/u/feed` })));
      // One upstream connection per arm: the single hub's, and the holder's alone for the whole cluster.
      const clients = await system.source.call<number>('clients', `/${system.target!}`);
      if (clients !== 1) throw new Error(`${arm}: the source sees ${clients} connections on /${system.target}, expected 1`);
    }
    await Promise.all([this.single, ...this.clusterHubs].map((h) => {
      const want = h.arm === 'single-hub' ? this.workers : this.options.perHub;
      return this.waitFor(h, (s) => s.connections.length === want, `${want} workers attached to ${h.name}`);
    }));
    log(`every worker attached to both arms`);
  }

  hubOfWorker(arm: ClusterArm, worker: number): HubDaemon {
    return arm === 'single-hub' ? this.single : this.clusterHubs[Math.floor(worker / this.options.perHub)]!;
  }

  hubsOf(arm: ClusterArm): HubDaemon[] {
    return arm === 'single-hub' ? [this.single] : this.clusterHubs;
  }

  /** The arm as a relay-lab system: the source's `/single` or `/cluster` clients; its CPU is every hub's (and nats-server's). */
  system(arm: ClusterArm): System<ClusterArm> {
    const [first, ...others] = this.hubsOf(arm);
    return {
      name: arm,
      fanoutPid: first!.pid,
      ...(arm === 'cluster' ? { moreFanoutPids: [...others.map((h) => h.pid), this.nats.pid] } : {}),
      source: this.relay.wsSource,
      target: arm === 'single-hub' ? 'single' : 'cluster',
      sourceClients: () => 1,
      connect: { kind: 'ws', url: '' },
    };
  }

  /** A daemon's `/status`. */
  status(h: HubDaemon): Promise<HubStatus> {
    return daemonStatus<HubStatus>(h);
  }

  /** Poll `/status` until `check` passes; fail naming what was awaited and what the hub printed. */
  waitFor(h: HubDaemon, check: (s: HubStatus) => boolean, what: string, timeoutMs = 20_000): Promise<void> {
    return waitForDaemon<HubStatus>(h, check, what, timeoutMs);
  }

  async destroy(): Promise<void> {
    await this.relay.destroy();
  }

  async #startNats(): Promise<void> {
    const binary = findNatsServer();
    if (!binary) throw new Error(`the cluster scenario needs nats-server (with JetStream) and found none on PATH or in $NATS_SERVER: ${INSTALL_NATS_SERVER}`);
    const { proc, output } = this.relay.group.spawn(binary, natsServerArgs(join(this.relay.dir, 'nats')));
    const deadline = Date.now() + 10_000;
    let url: string | undefined;
    while (!(url = natsReadyUrl(output()))) {
      if (proc.exitCode !== null || Date.now() > deadline) throw new Error(`nats-server (${binary}) did not start: ${output()}`);
      await sleep(20);
    }
    this.nats = { pid: proc.pid!, url, output };
  }

  /** Start `wshub serve -c` on this arm's config; resolves once its status listener answers. */
  async #startHub(arm: ClusterArm, name: string, path: string, hubName: string | undefined): Promise<HubDaemon> {
    const daemon = await startDaemon(this.relay.group, this.relay.dir, name, {
      logLevel: 'warn',
      // A raw upstream with every option at its default: what a user gets.
      upstreams: { feed: { url: `ws://127.0.0.1:${this.relay.wsPort}${path}`, adapter: 'raw' } },
      ...(hubName ? { cluster: { nats: this.nats.url, name: 'bench', hubName } } : {}),
    });
    return { ...daemon, arm };
  }
}
