/**
 * Cluster-wide interest of one upstream: which topics some worker on some
 * hub wants, so the holder subscribes upstream to the union, once per topic.
 *
 * Design: each hub keeps one KV key per upstream, `interest.<upstream>.<hub
 * id>`, in the cluster's bucket, holding its whole topic set; it writes the
 * key on every change (coalesced) and rewrites it every TTL/3 even without
 * one, so the bucket TTL removes the key of a hub that died. The holder
 * watches `interest.<upstream>.*` and keeps the union with add/remove events.
 * Why KV rather than core-NATS announcements plus periodic snapshots: a new
 * holder (after a failover) reads every hub's current set at once from the
 * watch's initial values instead of waiting a snapshot period, a hub that
 * restarts its NATS connection loses nothing, and liveness comes from the
 * same TTL as the lease. Cost: one KV write per hub per upstream per TTL/3,
 * and a hub's set must fit one message (max_payload, 1 MiB by default:
 * tens of thousands of topics).
 *
 * Expiry is invisible to a 2.9 watch, so the view drops a hub that has not
 * written for TTL + one refresh interval; it does not judge while
 * disconnected, and gives every hub a fresh grace after reconnecting.
 */
import { EventEmitter } from 'node:events';
import { WshubError } from '../errors.js';
import type { ClusterConnectionStatus } from './connect.js';
import type { KvWatchEntry } from './nats.js';
import type { ClusterStore, KeyWatch } from './store.js';
import { UpstreamNames } from './subjects.js';

export interface InterestOptions {
  store: ClusterStore;
  upstream: string;
  /** How often a hub rewrites its set. @default TTL / 3 */
  refreshIntervalMs?: number;
}

interface InterestValue {
  hub: string;
  topics: string[];
}

export interface AnnouncerEvents {
  /** A write failed for a reason retrying will not fix (`ERR_PAYLOAD_TOO_LARGE`: the set exceeds max_payload). */
  failed: [WshubError];
}

/** One hub's side: announces the topics its workers want. */
export class InterestAnnouncer extends EventEmitter<AnnouncerEvents> {
  readonly #store: ClusterStore;
  readonly #key: string;
  readonly #hubName: string;
  readonly #topics = new Set<string>();
  readonly #refreshMs: number;
  #timer: NodeJS.Timeout | undefined;
  #writing = false;
  #dirty = false;
  #started = false;
  #closed = false;
  #writes = 0;
  readonly #onStatus = (s: ClusterConnectionStatus): void => { if (s.type === 'reconnected') this.#schedule(); };

  constructor(options: InterestOptions & { hubId: string; hubName: string }) {
    super();
    this.#store = options.store;
    this.#key = new UpstreamNames(options.store.cluster, options.upstream).interestKey(options.hubId);
    this.#hubName = options.hubName;
    this.#refreshMs = options.refreshIntervalMs ?? Math.floor(options.store.ttlMs / 3);
  }

  /** KV writes that succeeded. */
  get writes(): number {
    return this.#writes;
  }

  topics(): string[] {
    return [...this.#topics];
  }

  add(topic: string): void {
    if (this.#topics.has(topic)) return;
    this.#topics.add(topic);
    this.#schedule();
  }

  remove(topic: string): void {
    if (this.#topics.delete(topic)) this.#schedule();
  }

  /** Replace the whole set. */
  set(topics: Iterable<string>): void {
    this.#topics.clear();
    for (const t of topics) this.#topics.add(t);
    this.#schedule();
  }

  /** Write now, then every refresh interval. */
  start(): void {
    if (this.#started || this.#closed) return;
    this.#started = true;
    this.#store.conn.on('status', this.#onStatus);
    this.#timer = setInterval(() => this.#schedule(), this.#refreshMs);
    this.#schedule();
  }

  /** Stop and delete the key, so the holder drops this hub's topics at once (idempotent). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    this.#store.conn.off('status', this.#onStatus);
    if (this.#started) await this.#store.kv.delete(this.#key).catch(() => undefined);
  }

  #schedule(): void {
    if (!this.#started || this.#closed) return;
    this.#dirty = true;
    // Changes made in the same tick go out as one write.
    if (!this.#writing) queueMicrotask(() => { void this.#write(); });
  }

  async #write(): Promise<void> {
    if (this.#writing || !this.#dirty || this.#closed) return;
    this.#writing = true;
    this.#dirty = false;
    const value = JSON.stringify({ hub: this.#hubName, topics: [...this.#topics] } satisfies InterestValue);
    try {
      if (Buffer.byteLength(value) + 512 > this.#store.conn.maxPayload) {
        this.emit('failed', new WshubError('ERR_PAYLOAD_TOO_LARGE', `ERR_PAYLOAD_TOO_LARGE the interest of ${this.#topics.size} topics is ${Buffer.byteLength(value)} bytes, over NATS max_payload ${this.#store.conn.maxPayload}`));
      } else if (this.#store.conn.connected) {
        await this.#store.kv.put(this.#key, value);
        this.#writes++;
      }
    } catch {
      // The next refresh writes again.
    } finally {
      this.#writing = false;
      if (this.#dirty) void this.#write();
    }
  }
}

/** A union change: `topic` entered or left the cluster-wide interest. */
export interface InterestChange {
  topic: string;
  /** For `remove`: the last hub dropped it, or the last hub that had it is gone (deleted its key or stopped refreshing). */
  reason: 'subscribed' | 'unsubscribed' | 'hub-gone';
}

export interface InterestViewEvents {
  add: [InterestChange];
  remove: [InterestChange];
  /** A hub left the view: it deleted its key (`unsubscribed`: it closed) or stopped refreshing it (`hub-gone`). */
  gone: [{ hubId: string; reason: 'unsubscribed' | 'hub-gone' }];
}

/** A hub seen in the interest view. */
export interface InterestHub {
  hubId: string;
  hub: string;
  topics: number;
  /** Since its last write, in ms. */
  ageMs: number;
}

/** The holder's side: the union of every hub's interest, with add/remove events. */
export class InterestView extends EventEmitter<InterestViewEvents> {
  readonly #store: ClusterStore;
  readonly #names: UpstreamNames;
  readonly #refreshMs: number;
  readonly #hubs = new Map<string, { hub: string; topics: Set<string>; seen: number }>();
  /** topic → number of hubs that want it. */
  readonly #union = new Map<string, number>();
  #watch: KeyWatch | undefined;
  #sweep: NodeJS.Timeout | undefined;

  constructor(options: InterestOptions) {
    super();
    this.#store = options.store;
    this.#names = new UpstreamNames(options.store.cluster, options.upstream);
    this.#refreshMs = options.refreshIntervalMs ?? Math.floor(options.store.ttlMs / 3);
  }

  /** Start watching (a no-op when started). */
  start(): void {
    if (this.#watch) return;
    this.#watch = this.#store.watch(this.#names.interestFilter, (entry) => this.#onEntry(entry), () => {
      const now = performance.now();
      for (const h of this.#hubs.values()) h.seen = now;
    });
    this.#sweep = setInterval(() => this.#expire(), this.#refreshMs);
  }

  /** The cluster-wide set of topics. */
  union(): string[] {
    return [...this.#union.keys()];
  }

  has(topic: string): boolean {
    return this.#union.has(topic);
  }

  hubs(): InterestHub[] {
    const now = performance.now();
    return [...this.#hubs].map(([hubId, h]) => ({ hubId, hub: h.hub, topics: h.topics.size, ageMs: Math.round(now - h.seen) }));
  }

  /** Stop watching; the union is kept as it was (no remove events). */
  close(): void {
    this.#watch?.stop();
    this.#watch = undefined;
    clearInterval(this.#sweep);
  }

  #onEntry(entry: KvWatchEntry): void {
    const hubId = entry.key.slice(entry.key.lastIndexOf('.') + 1);
    if (entry.operation !== 'PUT') return this.#setHub(hubId, undefined, 'unsubscribed');
    let value: InterestValue | undefined;
    try {
      const v = entry.json<Partial<InterestValue>>();
      if (Array.isArray(v.topics)) value = { hub: typeof v.hub === 'string' ? v.hub : '', topics: v.topics.filter((t): t is string => typeof t === 'string') };
    } catch {
      value = undefined;
    }
    if (value) this.#setHub(hubId, value, 'unsubscribed');
  }

  #expire(): void {
    // Without NATS nobody can be judged: their writes may be failing just like ours.
    if (!this.#store.conn.connected) return;
    const limit = performance.now() - (this.#store.ttlMs + this.#refreshMs);
    for (const [hubId, h] of this.#hubs) if (h.seen < limit) this.#setHub(hubId, undefined, 'hub-gone');
  }

  #setHub(hubId: string, value: InterestValue | undefined, reason: 'unsubscribed' | 'hub-gone'): void {
    const before = this.#hubs.get(hubId)?.topics ?? new Set<string>();
    const after = new Set(value?.topics ?? []);
    const known = this.#hubs.has(hubId);
    if (value) this.#hubs.set(hubId, { hub: value.hub, topics: after, seen: performance.now() });
    else this.#hubs.delete(hubId);
    for (const topic of after) {
      if (before.has(topic)) continue;
      const n = (this.#union.get(topic) ?? 0) + 1;
      this.#union.set(topic, n);
      if (n === 1) this.emit('add', { topic, reason: 'subscribed' });
    }
    for (const topic of before) {
      if (after.has(topic)) continue;
      const n = (this.#union.get(topic) ?? 1) - 1;
      if (n > 0) {
        this.#union.set(topic, n);
        continue;
      }
      this.#union.delete(topic);
      this.emit('remove', { topic, reason });
    }
    if (!value && known) this.emit('gone', { hubId, reason });
  }
}
