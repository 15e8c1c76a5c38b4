/**
 * The cluster's JetStream KV bucket (`wshub-<cluster>`): lease keys and
 * interest keys of every upstream, in one bucket whose TTL (stream
 * `max_age`) is `leaseTtlMs`. Bucket TTL is the one expiry nats-server 2.9
 * honours; per-key TTL and delete markers with a TTL are 2.11 features that
 * 2.9 accepts and silently ignores, so nothing here uses them.
 *
 * Every hub must agree on the TTL — a hub that believed in a longer TTL than
 * the bucket's would fence itself too late — so opening a bucket whose TTL
 * differs from `leaseTtlMs` fails with `ERR_CLUSTER_BUCKET`.
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { WshubError } from '../errors.js';
import type { ClusterConnection, ClusterConnectionStatus } from './connect.js';
import type { KV, KvWatchEntry } from './nats.js';
import { bucketName, isClusterName } from './subjects.js';

/** @see OpenStoreOptions.leaseTtlMs */
export const DEFAULT_LEASE_TTL_MS = 5000;
/** The shortest lease TTL accepted: below it, NATS round trips eat the renew interval. */
export const MIN_LEASE_TTL_MS = 300;

export interface OpenStoreOptions {
  /** The cluster's name: `[A-Za-z0-9_-]+`; the bucket is `wshub-<name>`. */
  cluster: string;
  /** The bucket TTL: how long a silent holder keeps an upstream. @default 5000 */
  leaseTtlMs?: number;
  /** JetStream replicas of the bucket (1, 3 or 5; more than 1 needs a NATS cluster). @default 1 */
  replicas?: number;
}

/** How often opening the bucket tries again after losing a concurrent create (see {@link isCreateRace}). */
const CREATE_ATTEMPTS = 4;
/** JetStream API error codes of a stream create that lost to a concurrent create of the same stream. */
const CREATE_RACE_CODES = new Set([
  10065, // subjects overlap with an existing stream: what nats-server 2.9.10 answers a create that lost the race
  10058, // stream name already in use with a different configuration: the winner's differs (another leaseTtlMs), and
  //        the next attempt, opening the winner's stream, reports that mismatch by name
]);

function isCreateRace(err: unknown): boolean {
  return err instanceof Error && err.name === 'JetStreamApiError' && CREATE_RACE_CODES.has((err as Error & { code?: number }).code ?? 0);
}

/** Create the bucket, or open it when it exists; a create that lost a concurrent create of it tries again. */
async function createBucket(conn: ClusterConnection, bucket: string, ttlMs: number, replicas: number): Promise<KV> {
  const kvm = new conn.lib.kv.Kvm(conn.nc);
  for (let attempt = 1; ; attempt++) {
    try {
      // Reads go to the stream leader (allow_direct off): a lease check must not read a stale replica.
      return await kvm.create(bucket, { ttl: ttlMs, history: 1, replicas, allow_direct: false, description: 'wshub cluster: upstream leases and interest' });
    } catch (err) {
      // Hubs that start together each find no stream and create it; nats-server 2.9 answers about one round of such
      // concurrent creates in 75 with "subjects overlap" for a loser. The stream exists by then: the next attempt
      // opens it. An unrelated stream over the same subjects fails every attempt.
      if (attempt >= CREATE_ATTEMPTS || !isCreateRace(err)) throw err;
      await sleep(20 * attempt);
    }
  }
}

/** A stoppable KV watch. */
export interface KeyWatch {
  stop(): void;
}

/** The opened bucket, shared by the leases and interest of every upstream. */
export class ClusterStore {
  readonly conn: ClusterConnection;
  readonly kv: KV;
  readonly cluster: string;
  readonly bucket: string;
  /** The bucket's TTL, which is the lease TTL. */
  readonly ttlMs: number;

  private constructor(conn: ClusterConnection, kv: KV, cluster: string, ttlMs: number) {
    this.conn = conn;
    this.kv = kv;
    this.cluster = cluster;
    this.bucket = bucketName(cluster);
    this.ttlMs = ttlMs;
  }

  /** Create the bucket or open it; `ERR_CLUSTER_BUCKET` if that fails or its TTL is not `leaseTtlMs`. */
  static async open(conn: ClusterConnection, options: OpenStoreOptions): Promise<ClusterStore> {
    const ttlMs = options.leaseTtlMs ?? DEFAULT_LEASE_TTL_MS;
    if (!isClusterName(options.cluster)) {
      throw new WshubError('ERR_INVALID_OPTION', `cluster.name: expected [A-Za-z0-9_-]+, got ${JSON.stringify(options.cluster)}`, { details: { path: 'cluster.name' } });
    }
    if (!Number.isInteger(ttlMs) || ttlMs < MIN_LEASE_TTL_MS) {
      throw new WshubError('ERR_INVALID_OPTION', `cluster.leaseTtlMs: expected an integer ≥ ${MIN_LEASE_TTL_MS}, got ${ttlMs}`, { details: { path: 'cluster.leaseTtlMs' } });
    }
    const bucket = bucketName(options.cluster);
    let kv: KV;
    let actualTtl: number;
    try {
      const created = await createBucket(conn, bucket, ttlMs, options.replicas ?? 1);
      actualTtl = (await created.status()).ttl;
      // Lease operations get a JetStream timeout of a renew interval, not nats.js's 5 s: an answer later
      // than that is of no use to a lease, and a hung call must not hold up the next attempt.
      const js = conn.lib.jetstream.jetstream(conn.nc, { timeout: opTimeoutMs(ttlMs) });
      kv = await new conn.lib.kv.Kvm(js).open(bucket, { allow_direct: false });
    } catch (err) {
      throw new WshubError('ERR_CLUSTER_BUCKET', `ERR_CLUSTER_BUCKET cannot open KV bucket ${bucket}: ${(err as Error).message}`, { cause: err, details: { bucket } });
    }
    if (actualTtl !== ttlMs) {
      throw new WshubError('ERR_CLUSTER_BUCKET',
        `ERR_CLUSTER_BUCKET KV bucket ${bucket} has a TTL of ${actualTtl} ms but leaseTtlMs is ${ttlMs}: every hub of a cluster needs the same leaseTtlMs (or delete the bucket to change it)`,
        { details: { bucket, bucketTtlMs: actualTtl, leaseTtlMs: ttlMs } });
    }
    return new ClusterStore(conn, kv, options.cluster, ttlMs);
  }

  /**
   * Watch `key` (a key or a filter like `interest.feed.*`): `onEntry` gets
   * the current value of every matching key, then each change. A watch does
   * not survive every NATS outage (its consumer may be gone after a server
   * restart), so it is started afresh, current values first, after every
   * reconnect and whenever it ends; `onRestart` runs before each restart.
   * Expiry by the bucket TTL is not seen by a watch (2.9 writes no marker).
   */
  watch(key: string, onEntry: (entry: KvWatchEntry) => void, onRestart: () => void = () => undefined): KeyWatch {
    let stopped = false;
    let current: { stop(): void } | undefined;
    let retry: NodeJS.Timeout | undefined;
    // Restarts can overlap (a reconnect while a watch is being set up): only the newest one may live.
    let generation = 0;
    const start = async (): Promise<void> => {
      if (stopped) return;
      const mine = ++generation;
      current?.stop();
      current = undefined;
      try {
        const iter = await this.conn.whileOpen(() => this.kv.watch({ key }));
        if (stopped || mine !== generation) {
          iter.stop();
          return;
        }
        current = iter;
        for await (const entry of iter) onEntry(entry);
        if (mine === generation) schedule();
      } catch {
        if (mine === generation) schedule();
      }
    };
    const schedule = (): void => {
      if (stopped || retry || this.conn.closing) return;
      retry = setTimeout(() => {
        retry = undefined;
        onRestart();
        void start();
      }, Math.min(1000, this.ttlMs / 3));
    };
    const onStatus = (s: ClusterConnectionStatus): void => {
      if (s.type !== 'reconnected') return;
      onRestart();
      void start();
    };
    this.conn.on('status', onStatus);
    void start();
    return {
      stop: () => {
        stopped = true;
        clearTimeout(retry);
        this.conn.off('status', onStatus);
        current?.stop();
      },
    };
  }
}

/** The JetStream timeout of KV operations for a lease TTL: a third of it (a renew interval), at least 100 ms. */
export function opTimeoutMs(ttlMs: number): number {
  return Math.max(100, Math.floor(ttlMs / 3));
}

/** A new hub id: unique per hub process, usable as a KV key token. */
export function newHubId(): string {
  return randomBytes(9).toString('base64url').replace(/_/g, '-');
}
