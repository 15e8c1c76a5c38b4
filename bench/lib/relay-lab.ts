/**
 * The relay bench's laboratory: one ws source process (the upstream), an
 * optional hub process attached to it, a Socket.IO source, a NATS server and
 * publisher, and a pool of worker processes that connect to whichever system
 * is being measured. Workers and the ws source are reused across systems so
 * that clock offsets between processes cancel out of "added latency".
 *
 * Everything listens on 127.0.0.1 or a Unix socket in a temp dir.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { windowFor } from '../fixtures/message.js';
import { percentile, round } from '../scenario.js';
import { cpuSeconds, rssBytes, sleep, type Fixture, ProcessGroup } from './procs.js';

export type SystemName = 'hub' | 'ws' | 'socket.io' | 'nats';

export const NATS_SERVER = '/usr/sbin/nats-server';

/** How to reach one system under test. */
export interface System {
  name: SystemName;
  /** The process doing the fan-out, whose CPU and RSS are reported. */
  fanoutPid: number;
  /** The process producing messages. */
  source: Fixture;
  /** ws source only: which of its clients to send to. */
  target?: 'hub' | 'direct';
  connect: { kind: 'ws' | 'sio' | 'nats'; url: string };
  /** The hub's process, for its drop counters. */
  hub?: Fixture;
}

export interface HubCounters {
  dropped: number;
  droppedByReason: Record<string, number>;
  deliveries: number;
  messagesIn: number;
  connections: number;
  queuedBytes: number;
  rss: number;
}

export interface ThroughputRun {
  system: SystemName;
  workers: number;
  size: number;
  /** Messages delivered per second, summed over workers. */
  deliveredPerSec: number;
  /** Messages per second summed over the workers pacing the run (all of them unless one is stalled). */
  consumersDeliveredPerSec: number;
  /** Slowest worker's share: its rate × workers / total (1 = perfectly even). */
  evenness: number | undefined;
  /** CPU seconds of the fan-out process per million delivered messages. */
  fanoutCpuPerM: number | undefined;
  /** CPU seconds of the source process per million delivered messages. */
  sourceCpuPerM: number | undefined;
  /** CPU seconds of all worker processes together per million delivered messages. */
  workersCpuPerM: number | undefined;
  /** ws workers: average bytes per socket read (large = the sender batches). */
  workerAvgReadBytes?: number;
  fanoutRssMiB: number;
  /** Hub only: frames the hub dropped during the run (must be 0). */
  hubDropped?: number;
  sent: number;
  measureMs: number;
  /** When the run was repeated: every repetition's msg/s (the fields above are the median's). */
  repetitions?: number[];
  /** Baselines only: pacing workers that received nothing during the measurement (the system stalled). */
  stalledWorkers?: number;
}

export interface LatencyRun {
  system: SystemName;
  workers: number;
  size: number;
  rate: number;
  /** Messages per second one worker actually received. */
  achievedRatePerWorker: number;
  /** The system could not carry the rate (a worker got under 95% of it): its latency is that of a saturated system. */
  overloaded: boolean;
  samples: number;
  p50Us: number | undefined;
  p99Us: number | undefined;
  p999Us: number | undefined;
  maxUs: number | undefined;
  skipped: number;
  hubDropped?: number;
}

export interface LabOptions {
  hubConfig?: Record<string, unknown>;
}

/** A free TCP port on 127.0.0.1 (for nats-server, which cannot report one it picked). */
async function freePort(): Promise<number> {
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
  #sio: { source: Fixture; port: number } | undefined;
  #nats: { pid: number; url: string; source: Fixture } | undefined;

  get hubSocket(): string {
    return join(this.dir, 'hub.sock');
  }

  async start(): Promise<void> {
    this.wsSource = await this.group.fork('source', { kind: 'ws' }, 'ws source');
    this.wsPort = (this.wsSource.info as { port: number }).port;
  }

  /**
   * Start the hub: one raw upstream `feed` on the ws source's `/hub` path.
   * Relay runs use a queue large enough that the source's window can never
   * overflow it; drops are still counted and reported.
   */
  async startHub(extra: Record<string, unknown> = {}, execArgv: string[] = []): Promise<Fixture> {
    const config = {
      listen: this.hubSocket,
      logLevel: 'silent',
      slowConsumer: 'drop-oldest',
      maxQueueBytes: 64 * 1024 * 1024,
      server: { maxConnections: 20_000, maxPendingHandshakes: 2000 },
      upstreams: { feed: { url: `ws://127.0.0.1:${this.wsPort}/hub`, adapter: 'raw' } },
      ...extra,
    };
    this.hub = await this.group.fork('hub-host', config, 'hub', execArgv);
    return this.hub;
  }

  async stopHub(): Promise<void> {
    if (this.hub) await this.group.kill(this.hub.proc);
    this.hub = undefined;
  }

  hubSystem(): System {
    if (!this.hub) throw new Error('hub not started');
    return { name: 'hub', fanoutPid: this.hub.pid, source: this.wsSource, target: 'hub', connect: { kind: 'ws', url: `ws+unix://${this.hubSocket}:/u/feed` }, hub: this.hub };
  }

  wsSystem(): System {
    return { name: 'ws', fanoutPid: this.wsSource.pid, source: this.wsSource, target: 'direct', connect: { kind: 'ws', url: `ws://127.0.0.1:${this.wsPort}/direct` } };
  }

  async sioSystem(): Promise<System> {
    if (!this.#sio) {
      const source = await this.group.fork('source', { kind: 'sio' }, 'socket.io source');
      const { port } = source.info as { port: number };
      this.#sio = { source, port };
    }
    return { name: 'socket.io', fanoutPid: this.#sio.source.pid, source: this.#sio.source, connect: { kind: 'sio', url: `http://127.0.0.1:${this.#sio.port}` } };
  }

  /** Debian's nats-server on a free loopback port, and a publisher. Fails naming the binary when it is missing. */
  async natsSystem(): Promise<System> {
    if (!this.#nats) {
      if (!existsSync(NATS_SERVER)) throw new Error(`${NATS_SERVER} is missing: install Debian's nats-server (apt-get install nats-server) for the NATS baseline`);
      const port = await freePort();
      const { proc, output } = this.group.spawn(NATS_SERVER, ['-a', '127.0.0.1', '-p', String(port)]);
      const deadline = Date.now() + 10_000;
      while (!/Server is ready/.test(output())) {
        if (proc.exitCode !== null || Date.now() > deadline) throw new Error(`nats-server did not start: ${output()}`);
        await sleep(20);
      }
      const url = `nats://127.0.0.1:${port}`;
      const source = await this.group.fork('source', { kind: 'nats', natsUrl: url }, 'nats publisher');
      this.#nats = { pid: proc.pid!, url, source };
    }
    return { name: 'nats', fanoutPid: this.#nats.pid, source: this.#nats.source, connect: { kind: 'nats', url: this.#nats.url } };
  }

  /** Grow the worker pool to `n` processes (indices 0…n-1). */
  async ensureWorkers(n: number): Promise<void> {
    const start = this.workers.length;
    const forks: Promise<Fixture>[] = [];
    for (let i = start; i < n; i++) forks.push(this.group.fork('worker', { index: i }, `worker ${i}`));
    this.workers.push(...(await Promise.all(forks)));
  }

  /** Connect workers 0…n-1 to a system (ack cadence for `size` until a run sets its own) and wait until the system sees them all. */
  async connect(system: System, n: number, size: number): Promise<void> {
    await Promise.all(this.workers.slice(0, n).map((w) => w.call('connect', { name: system.name, ...system.connect, ackEvery: ackEveryFor(size) })));
    if (system.target) {
      // The hub's session (or the direct client) must be registered before the first message.
      const deadline = Date.now() + 5000;
      const want = system.target === 'hub' ? 1 : n;
      while ((await system.source.call<number>('clients', `/${system.target}`)) < want) {
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

  async #counts(workers: Fixture[]): Promise<Array<{ messages: number; reads: number; readBytes: number }>> {
    return Promise.all(workers.map((w) => w.call<{ messages: number; reads: number; readBytes: number }>('count')));
  }

  /**
   * Flood run: the source sends as fast as the slowest of `consumers` acks;
   * measured after `warmMs` for `measureMs`.
   */
  async throughput(system: System, n: number, size: number, warmMs: number, measureMs: number, consumers = [...Array(n).keys()]): Promise<ThroughputRun> {
    const workers = this.workers.slice(0, n);
    await Promise.all(workers.map((w) => w.call('reset', { latency: false, ackEvery: ackEveryFor(size) })));
    const hub0 = system.hub ? await this.hubCounters() : undefined;
    await system.source.call('run', { size, target: system.target, consumers, window: windowFor(size) });
    let sent = 0;
    try {
      await sleep(warmMs);
      const c0 = await this.#counts(workers);
      const t0 = performance.now();
      const f0 = cpuSeconds(system.fanoutPid);
      const s0 = cpuSeconds(system.source.pid);
      const w0 = workers.reduce((a, w) => a + cpuSeconds(w.pid), 0);
      await sleep(measureMs);
      const c1 = await this.#counts(workers);
      const t1 = performance.now();
      const f1 = cpuSeconds(system.fanoutPid);
      const s1 = cpuSeconds(system.source.pid);
      const w1 = workers.reduce((a, w) => a + cpuSeconds(w.pid), 0);
      sent = (await system.source.call<{ sent: number }>('stop')).sent;
      const per = c1.map((v, i) => v.messages - c0[i]!.messages);
      const reads = c1.reduce((a, v, i) => a + v.reads - c0[i]!.reads, 0);
      const readBytes = c1.reduce((a, v, i) => a + v.readBytes - c0[i]!.readBytes, 0);
      const delivered = per.reduce((a, b) => a + b, 0);
      const seconds = (t1 - t0) / 1000;
      const millions = delivered / 1e6;
      const hub1 = system.hub ? await this.hubCounters() : undefined;
      const consumerRates = consumers.map((i) => per[i]!);
      // Not a speed judgement: a pacing worker that got nothing for a whole window means the system stalled.
      // For the hub that is a failure of the thing under test; a baseline that stalls (Socket.IO with 64
      // clients on two shared cores) is recorded as stalled and reported so, and the run goes on.
      const starved = consumers.filter((i) => per[i] === 0);
      if (starved.length > 0 && system.hub) {
        const detail = ` hub connections: ${JSON.stringify(await system.hub.call('connections'))}`;
        throw new Error(`${system.name}: worker(s) ${starved.join(', ')} received nothing for ${Math.round(t1 - t0)} ms while the source waited on their acks (sent ${sent});${detail}`);
      }
      const minRate = consumerRates.length ? Math.min(...consumerRates) : 0;
      const consumerTotal = consumerRates.reduce((a, b) => a + b, 0);
      return {
        system: system.name,
        workers: n,
        size,
        deliveredPerSec: Math.round(delivered / seconds),
        consumersDeliveredPerSec: Math.round(consumerTotal / seconds),
        evenness: consumerTotal > 0 ? round((minRate * consumerRates.length) / consumerTotal, 3) : undefined,
        fanoutCpuPerM: millions > 0 ? round((f1 - f0) / millions, 3) : undefined,
        sourceCpuPerM: millions > 0 ? round((s1 - s0) / millions, 3) : undefined,
        workersCpuPerM: millions > 0 ? round((w1 - w0) / millions, 3) : undefined,
        ...(reads > 0 ? { workerAvgReadBytes: Math.round(readBytes / reads) } : {}),
        fanoutRssMiB: round(rssBytes(system.fanoutPid) / 2 ** 20, 1)!,
        ...(starved.length > 0 ? { stalledWorkers: starved.length } : {}),
        ...(hub0 && hub1 ? { hubDropped: hub1.dropped - hub0.dropped } : {}),
        sent,
        measureMs: Math.round(t1 - t0),
      };
    } finally {
      if (sent === 0) await system.source.call('stop').catch(() => undefined);
      // Messages still in flight land before the next run resets the counters.
      await sleep(150);
    }
  }

  /** Fixed-rate run: every message's latency from source to worker, over `measureMs` after `warmMs`. */
  async latency(system: System, n: number, size: number, rate: number, warmMs: number, measureMs: number, consumers = [...Array(n).keys()], measured = consumers): Promise<LatencyRun> {
    const workers = this.workers.slice(0, n);
    await Promise.all(workers.map((w) => w.call('reset', { latency: false, ackEvery: ackEveryFor(size) })));
    const hub0 = system.hub ? await this.hubCounters() : undefined;
    await system.source.call('run', { size, target: system.target, consumers, window: windowFor(size), rate });
    let stopped: { skipped: number } | undefined;
    try {
      await sleep(warmMs);
      await Promise.all(workers.map((w) => w.call('reset', { latency: true, ackEvery: ackEveryFor(size) })));
      const t0 = performance.now();
      await sleep(measureMs);
      const reports = await Promise.all(measured.map((i) => this.workers[i]!.call<{ messages: number; latencyMicros: number[] }>('report', undefined, 60_000)));
      const t1 = performance.now();
      stopped = await system.source.call<{ skipped: number }>('stop');
      const all: number[] = [];
      let messages = 0;
      for (const r of reports) {
        messages += r.messages;
        for (const v of r.latencyMicros) all.push(v);
      }
      all.sort((a, b) => a - b);
      const hub1 = system.hub ? await this.hubCounters() : undefined;
      return {
        system: system.name,
        workers: n,
        size,
        rate,
        achievedRatePerWorker: Math.round(messages / measured.length / ((t1 - t0) / 1000)),
        overloaded: messages / measured.length / ((t1 - t0) / 1000) < 0.95 * rate,
        samples: all.length,
        p50Us: sortedPercentile(all, 50),
        p99Us: sortedPercentile(all, 99),
        p999Us: sortedPercentile(all, 99.9),
        maxUs: all[all.length - 1],
        skipped: stopped.skipped,
        ...(hub0 && hub1 ? { hubDropped: hub1.dropped - hub0.dropped } : {}),
      };
    } finally {
      if (!stopped) await system.source.call('stop').catch(() => undefined);
      await sleep(150);
    }
  }

  async destroy(): Promise<void> {
    await this.group.killAll();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Workers ack four times per window, so the source never waits a whole window for news. */
export function ackEveryFor(size: number): number {
  return Math.max(1, Math.floor(windowFor(size) / 4));
}

/** Percentile of an already sorted array (nearest rank). */
function sortedPercentile(sorted: readonly number[], p: number): number | undefined {
  if (sorted.length === 0) return undefined;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank];
}

export { percentile };
