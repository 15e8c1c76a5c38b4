/**
 * The relay bench's laboratory: one ws source process (the upstream), a hub
 * process attached to it, the two references — a pre-framed WebSocket fan-out
 * (the ceiling) and a byte pipe in the hub's place (the floor for an extra
 * hop) —, a Socket.IO source, a NATS server and publisher, and a pool of
 * worker processes that connect to whichever system is being measured.
 * Workers and the ws source are reused across systems so that clock offsets
 * between processes cancel out of latency differences.
 *
 * Runs themselves (throughput, latency, the loss ledger) are in runs.ts.
 * Everything listens on 127.0.0.1 or a Unix socket in a temp dir.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findNatsServer, INSTALL_NATS_SERVER } from '../../src/cli/nats-server.js';
import { allowedCpus, pinToCpus, sleep, type Fixture, ProcessGroup } from './procs.js';

export type SystemName = 'hub' | 'ceiling' | 'fed' | 'pipe' | 'ws' | 'socket.io' | 'nats';

/** How to reach one system under test (`N`: the names a scenario uses; the relay's by default). */
export interface System<N extends string = SystemName> {
  name: N;
  /** The process doing the fan-out (or the relaying), whose CPU and RSS are reported. */
  fanoutPid: number;
  /** More processes doing the fan-out with it (cluster: the other hubs and nats-server): their CPU is added to its. */
  moreFanoutPids?: number[];
  /** The process producing and pacing messages. */
  source: Fixture;
  /** ws source only: which of its clients (by path: `/hub`, `/direct`, `/pipe`, …) to send to. */
  target?: string;
  connect: { kind: 'ws' | 'sio' | 'nats'; url: string };
  /** Before a run the source must see this many clients (of `target`) for `n` workers. */
  sourceClients?: (n: number) => number;
  /** The hub's process, for its drop counters. */
  hub?: Fixture;
}

export interface HubCounters {
  dropped: number;
  droppedByReason: Record<string, number>;
  deliveries: number;
  messagesIn: number;
  messagesOut: number;
  connections: number;
  queuedBytes: number;
  upstreams: Array<{ name: string; state: string; connections: number; messagesOut: number; bytesOut: number; queue: { messages: number; bytes: number }; dropped: Record<string, number> }>;
  rss: number;
  /** Full garbage collections of the hub process since it started. */
  majorGcs: number;
}

/** A free TCP port on 127.0.0.1, for a process that cannot report the one it picked (nats-server here; the cluster bench's hub daemons). */
export async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

export class RelayLab {
  readonly group = new ProcessGroup();
  readonly dir = mkdtempSync(join(tmpdir(), 'wshub-bench-'));
  wsSource!: Fixture;
  wsPort = 0;
  hub: Fixture | undefined;
  readonly workers: Fixture[] = [];
  #ceiling: Fixture | undefined;
  #fed: Fixture | undefined;
  #pipe: Fixture | undefined;
  #sio: { source: Fixture; port: number } | undefined;
  #nats: { pid: number; url: string; source: Fixture } | undefined;

  get hubSocket(): string {
    return join(this.dir, 'hub.sock');
  }

  async start(): Promise<void> {
    this.wsSource = await this.group.forkPeer('source', { kind: 'ws' }, 'ws source');
    this.wsPort = (this.wsSource.info as { port: number }).port;
  }

  /**
   * Start the hub: one raw upstream `feed` on the ws source's `/hub` path,
   * every other option at its default (queue size and slow-consumer policy
   * included: what a user gets). `extra` adds or overrides top-level keys.
   */
  async startHub(extra: Record<string, unknown> = {}, execArgv: string[] = []): Promise<Fixture> {
    const config = {
      listen: this.hubSocket,
      logLevel: 'silent',
      upstreams: { feed: { url: `ws://127.0.0.1:${this.wsPort}/hub`, adapter: 'raw' } },
      ...extra,
    };
    this.hub = await this.group.forkHub(config, 'hub', execArgv);
    return this.hub;
  }

  hubSystem(): System {
    if (!this.hub) throw new Error('hub not started');
    return { name: 'hub', fanoutPid: this.hub.pid, source: this.wsSource, target: 'hub', sourceClients: () => 1, connect: { kind: 'ws', url: `ws+unix://${this.hubSocket}:/u/feed` }, hub: this.hub };
  }

  wsSystem(): System {
    return { name: 'ws', fanoutPid: this.wsSource.pid, source: this.wsSource, target: 'direct', sourceClients: (n) => n, connect: { kind: 'ws', url: `ws://127.0.0.1:${this.wsPort}/direct` } };
  }

  /** The pre-framed fan-out on a Unix socket: it is its own source. */
  async ceilingSystem(): Promise<System> {
    const path = join(this.dir, 'ceiling.sock');
    this.#ceiling ??= await this.group.forkPeer('prefan', { path }, 'pre-framed fan-out');
    return { name: 'ceiling', fanoutPid: this.#ceiling.pid, source: this.#ceiling, sourceClients: (n) => n, connect: { kind: 'ws', url: `ws+unix://${path}:/` } };
  }

  /**
   * The same pre-framed fan-out fed by the ws source (its `/fed` clients) over
   * TCP, as the hub is: what any relay reading this source can reach here.
   */
  async fedCeilingSystem(): Promise<System> {
    const path = join(this.dir, 'fed.sock');
    this.#fed ??= await this.group.forkPeer('prefan', { path, upstream: `ws://127.0.0.1:${this.wsPort}/fed` }, 'fed pre-framed fan-out');
    return { name: 'fed', fanoutPid: this.#fed.pid, source: this.wsSource, target: 'fed', sourceClients: () => 1, connect: { kind: 'ws', url: `ws+unix://${path}:/` } };
  }

  /** The byte pipe on a Unix socket, each worker's connection piped to the ws source's `/pipe`. */
  async pipeSystem(): Promise<System> {
    const path = join(this.dir, 'pipe.sock');
    this.#pipe ??= await this.group.forkPeer('byte-pipe', { path, port: this.wsPort }, 'byte pipe');
    return { name: 'pipe', fanoutPid: this.#pipe.pid, source: this.wsSource, target: 'pipe', sourceClients: (n) => n, connect: { kind: 'ws', url: `ws+unix://${path}:/pipe` } };
  }

  async sioSystem(): Promise<System> {
    if (!this.#sio) {
      const source = await this.group.forkPeer('source', { kind: 'sio' }, 'socket.io source');
      const { port } = source.info as { port: number };
      this.#sio = { source, port };
    }
    return { name: 'socket.io', fanoutPid: this.#sio.source.pid, source: this.#sio.source, connect: { kind: 'sio', url: `http://127.0.0.1:${this.#sio.port}` } };
  }

  /** nats-server (PATH or $NATS_SERVER) on a free loopback port, and a publisher. Fails naming what is missing. */
  async natsSystem(): Promise<System> {
    if (!this.#nats) {
      const binary = findNatsServer();
      if (!binary) throw new Error(`the NATS baseline needs nats-server and found none on PATH or in $NATS_SERVER: ${INSTALL_NATS_SERVER}`);
      const port = await freePort();
      const { proc, output } = this.group.spawn(binary, ['-a', '127.0.0.1', '-p', String(port)]);
      const deadline = Date.now() + 10_000;
      while (!/Server is ready/.test(output())) {
        if (proc.exitCode !== null || Date.now() > deadline) throw new Error(`nats-server did not start: ${output()}`);
        await sleep(20);
      }
      const url = `nats://127.0.0.1:${port}`;
      const source = await this.group.forkPeer('source', { kind: 'nats', natsUrl: url }, 'nats publisher');
      this.#nats = { pid: proc.pid!, url, source };
    }
    return { name: 'nats', fanoutPid: this.#nats.pid, source: this.#nats.source, connect: { kind: 'nats', url: this.#nats.url } };
  }

  /** A system by name (the hub must have been started). */
  async system(name: SystemName): Promise<System> {
    switch (name) {
      case 'hub':
        return this.hubSystem();
      case 'ceiling':
        return this.ceilingSystem();
      case 'fed':
        return this.fedCeilingSystem();
      case 'pipe':
        return this.pipeSystem();
      case 'ws':
        return this.wsSystem();
      case 'socket.io':
        return this.sioSystem();
      case 'nats':
        return this.natsSystem();
    }
  }

  /**
   * Give the ws source the first CPU this process may use, and every other
   * process of the lab (the systems under test, their workers) the rest,
   * until {@link shareCpus}: as in production, where the upstream runs on
   * another machine and the relay and its workers have their cores to
   * themselves. The pre-framed ceiling makes its messages itself and has no
   * source to share its cores with; a relay reading the ws source on the
   * same two cores gives part of them to it — measured at 16 × 1 KiB, a
   * relay that only parses and re-frames (`fed`) kept ×0.78–0.90 of the
   * ceiling with the source beside it and ×0.98–1.14 with the source on a CPU of
   * its own. `others`: processes not started through the lab's group (a
   * daemon's child) that go with the rest. Needs at least two CPUs and
   * `taskset`; throws otherwise.
   */
  isolateSource(others: readonly number[] = []): void {
    const cpus = allowedCpus();
    if (cpus.length < 2) throw new Error(`isolating the source needs at least 2 CPUs; this process may use ${cpus.length}`);
    const source = this.wsSource.pid;
    pinToCpus([source], String(cpus[0]));
    pinToCpus([...this.group.pids.filter((pid) => pid !== source), ...others], cpus.slice(1).join(','));
  }

  /** Every process of the lab (and `others`) back on every CPU this process may use. */
  shareCpus(others: readonly number[] = []): void {
    pinToCpus([...this.group.pids, ...others], allowedCpus().join(','));
  }

  /** Grow the worker pool to `n` processes (indices 0…n-1). */
  async ensureWorkers(n: number): Promise<void> {
    const start = this.workers.length;
    const forks: Promise<Fixture>[] = [];
    for (let i = start; i < n; i++) forks.push(this.group.fork('worker', { index: i }, `worker ${i}`));
    this.workers.push(...(await Promise.all(forks)));
  }

  /** Connect workers `from`…n-1 to a system and wait until the system sees them all. */
  async connect(system: System<string>, n: number, from = 0): Promise<void> {
    await Promise.all(this.workers.slice(from, n).map((w) => w.call('connect', { name: system.name, ...system.connect })));
    if (system.sourceClients) {
      // The hub's session (or each direct client) must be registered before the first message.
      const want = system.sourceClients(n);
      const deadline = Date.now() + 5000;
      while ((await system.source.call<number>('clients', system.target ? `/${system.target}` : undefined)) < want) {
        if (Date.now() > deadline) throw new Error(`${system.name}: source sees fewer than ${want} clients`);
        await sleep(10);
      }
    }
    if (system.hub) {
      const deadline = Date.now() + 5000;
      while ((await this.hubCounters()).connections < n) {
        if (Date.now() > deadline) throw new Error('hub: workers did not all attach');
        await sleep(10);
      }
    }
  }

  async disconnect(n: number): Promise<void> {
    await Promise.all(this.workers.slice(0, n).map((w) => w.call('disconnect')));
    // Let servers notice the closes before the next system starts.
    await sleep(100);
  }

  async hubCounters(): Promise<HubCounters> {
    if (!this.hub) throw new Error('hub not started');
    return this.hub.call<HubCounters>('stats');
  }

  async destroy(): Promise<void> {
    await this.group.killAll();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
