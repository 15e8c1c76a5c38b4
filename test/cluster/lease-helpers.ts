/**
 * Lease test helpers: leases on their own NATS connections, in this process
 * or in a child process, and one timeline of every holder's events to check
 * that holdings never overlap.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import assert from 'node:assert/strict';
import { connectCluster, type ClusterConnection } from '../../src/cluster/connect.js';
import { Lease } from '../../src/cluster/lease.js';
import { ClusterStore, newHubId } from '../../src/cluster/store.js';
import { delay } from './helpers.js';

/** One lease event, from any hub. */
export interface LeaseRecord {
  hub: string;
  ev: string;
  at: number;
  epoch?: number;
  validUntil?: number;
  reason?: string;
}

/** Every lease event of a test, in arrival order. */
export class Timeline {
  readonly records: LeaseRecord[] = [];

  add(record: LeaseRecord): void {
    this.records.push(record);
  }

  of(hub: string, ev?: string): LeaseRecord[] {
    return this.records.filter((r) => r.hub === hub && (ev === undefined || r.ev === ev));
  }

  /** Holdings as [from, to): acquire to the fence's validUntil or the lost event (Infinity: still holding). */
  holdings(): { hub: string; epoch: number; from: number; to: number }[] {
    const out: { hub: string; epoch: number; from: number; to: number }[] = [];
    for (const acq of this.records.filter((r) => r.ev === 'acquired')) {
      const end = this.records.find((r) => r.hub === acq.hub && r.epoch === acq.epoch && (r.ev === 'fenced' || r.ev === 'lost'));
      const to = end === undefined ? Infinity : end.ev === 'fenced' ? end.validUntil! : end.at;
      out.push({ hub: acq.hub, epoch: acq.epoch!, from: acq.at, to });
    }
    return out.sort((a, b) => a.from - b.from);
  }

  /** Assert that no two holdings overlap and epochs grow with time. */
  assertOneHolderAtATime(): void {
    const h = this.holdings();
    for (let i = 1; i < h.length; i++) {
      const prev = h[i - 1]!;
      const next = h[i]!;
      assert.ok(next.from >= prev.to, `holdings overlap: ${JSON.stringify(prev)} and ${JSON.stringify(next)}`);
      assert.ok(next.epoch > prev.epoch, `epoch went back: ${prev.epoch} then ${next.epoch}`);
    }
  }
}

/** A lease on its own NATS connection in this process, its events recorded. */
export interface LocalHub {
  name: string;
  conn: ClusterConnection;
  store: ClusterStore;
  lease: Lease;
  close(): Promise<void>;
}

export async function localHub(url: string, cluster: string, ttlMs: number, name: string, timeline: Timeline, upstream = 'feed'): Promise<LocalHub> {
  const conn = await connectCluster({ servers: url, reconnectWaitMs: 100 });
  // A connection left open when the bucket cannot be opened would keep the test process alive after its failure.
  const store = await ClusterStore.open(conn, { cluster, leaseTtlMs: ttlMs }).catch(async (err: unknown) => {
    await conn.close();
    throw err;
  });
  const lease = new Lease({ store, upstream, hubId: newHubId(), hubName: name });
  for (const ev of ['acquired', 'renewed', 'lost', 'fenced'] as const) {
    lease.on(ev, (e: { at: number; epoch: number; validUntil?: number; reason?: string }) => timeline.add({ hub: name, ev, ...e }));
  }
  return {
    name, conn, store, lease,
    close: async () => {
      await lease.close();
      await conn.close();
    },
  };
}

/** A lease in a child process (fixtures/lease-child.js); its JSON lines go to the timeline. */
export class ChildHub {
  readonly name: string;
  readonly proc: ChildProcess;
  readonly lines: LeaseRecord[] = [];
  #exited = false;

  constructor(url: string, cluster: string, ttlMs: number, name: string, timeline: Timeline) {
    this.name = name;
    const script = new URL('./fixtures/lease-child.js', import.meta.url).pathname;
    this.proc = spawn(process.execPath, [script, url, cluster, 'feed', String(ttlMs), name], { stdio: ['ignore', 'pipe', 'inherit'] });
    this.proc.once('exit', () => { this.#exited = true; });
    createInterface({ input: this.proc.stdout! }).on('line', (line) => {
      const record = { hub: name, ...(JSON.parse(line) as Omit<LeaseRecord, 'hub'>) };
      this.lines.push(record);
      if (record.ev !== 'act' && record.ev !== 'ready') timeline.add(record);
    });
  }

  async waitFor(ev: string, timeoutMs = 10_000): Promise<LeaseRecord> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.lines.find((l) => l.ev === ev);
      if (found) return found;
      if (this.#exited) throw new Error(`${this.name} exited before '${ev}'`);
      if (Date.now() > deadline) throw new Error(`${this.name}: no '${ev}' within ${timeoutMs} ms`);
      await delay(10);
    }
  }

  signal(signal: NodeJS.Signals): void {
    this.proc.kill(signal);
  }

  async kill(): Promise<void> {
    if (this.#exited) return;
    const exited = new Promise<void>((resolve) => this.proc.once('exit', () => resolve()));
    this.proc.kill('SIGKILL');
    await exited;
  }
}
