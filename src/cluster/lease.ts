/**
 * `Lease`: which hub holds one upstream, by a JetStream KV key
 * (`lease.<upstream>` in the cluster's bucket, whose TTL is the lease TTL).
 *
 * Acquire: `create` (fails while the key exists). Renew: `update(key, value,
 * revision)` every TTL/3, a compare-and-swap on the revision of our last
 * write. The epoch is the revision of the acquiring write: revisions are the
 * stream's sequence numbers, so every later acquisition has a larger epoch.
 *
 * Fencing — why the deadline is measured from the *send* of a renew. The
 * server stamps the stored message when it stores it, and the key expires
 * TTL after that stamp (no earlier: bucket TTL only deletes messages older
 * than max_age). The stamp lies between our send and the ack we get back, so
 * `sent + TTL` is a point before which nobody else can create the key. The
 * ack's arrival time gives no such bound: a slow ack would have us believe in
 * the lease after it expired. So the holder fences itself at
 * `sent(last successful renew) + TTL − fenceMarginMs`, on the monotonic clock
 * (`performance.now()`), the margin covering what happens between a check
 * and the act it guards. The check is synchronous in `isHolder` /
 * `holderEpoch()`, not only a timer: a process paused past the deadline
 * (SIGSTOP, a VM freeze) runs I/O callbacks before timers when it wakes, and
 * its first question must already answer "not holder". This assumes the
 * server's clock does not jump forward (NTP slews, it does not step).
 *
 * Back on NATS after an outage, the holder renews at once rather than at its
 * next tick: ticks that fell in the outage were skipped, and the next one may
 * come after the deadline although the connection was back before it (a
 * short server restart would fence the holder for nothing).
 *
 * Non-holders campaign: `create` every TTL/3 (minus jitter), and at once when
 * a watch sees the key deleted (a graceful release). Expiry by TTL is
 * invisible to a watch on 2.9, hence the polling: takeover happens within
 * TTL + one campaign interval of the holder's last renew.
 */
import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import { WshubError } from '../errors.js';
import { parseLeaseValue as parseValue, type LeaseEvents, type LeaseHolder, type LeaseLostReason, type LeaseOptions, type LeaseState, type LeaseStats, type LeaseValue } from './lease-types.js';
import type { ClusterConnectionStatus } from './connect.js';
import type { KvWatchEntry } from './nats.js';
import type { ClusterStore, KeyWatch } from './store.js';
import { UpstreamNames } from './subjects.js';

export type { LeaseEvents, LeaseHolder, LeaseLostReason, LeaseOptions, LeaseState, LeaseStats } from './lease-types.js';

const WRONG_LAST_SEQUENCE = 10071;

export class Lease extends EventEmitter<LeaseEvents> {
  readonly upstream: string;
  readonly hubId: string;
  readonly ttlMs: number;
  readonly renewIntervalMs: number;
  readonly fenceMarginMs: number;
  readonly campaignIntervalMs: number;
  readonly #store: ClusterStore;
  readonly #key: string;
  readonly #hubName: string;
  readonly #stats: LeaseStats = { acquisitions: 0, renewals: 0, renewFailures: 0, fences: 0, losses: 0, campaignAttempts: 0 };

  #state: LeaseState = 'idle';
  #epoch = 0;
  /** Revision of our last write (the CAS value of the next renew). */
  #revision = 0;
  /** The token of our current or last acquisition: recognises our own writes in the KV. */
  #token = '';
  #startedAt = 0;
  /** Monotonic deadline of the current holding. */
  #validUntil = 0;
  #acquiredMono = 0;
  #lastRenewAt = 0;
  /** After a fence: our last revision, to take the lease back by CAS if nobody else took it. */
  #reclaim: { revision: number; token: string } | undefined;
  /** Acquiring writes with no answer: attempt → monotonic send time, to adopt one whose ack was lost. */
  readonly #unanswered = new Map<string, number>();
  #busy = false;
  #observed: LeaseHolder | undefined;
  #watch: KeyWatch | undefined;
  #renewTimer: NodeJS.Timeout | undefined;
  #fenceTimer: NodeJS.Timeout | undefined;
  #campaignTimer: NodeJS.Timeout | undefined;
  /** NATS came back while a renew was in flight: renew again once it settles. */
  #renewAgain = false;
  readonly #onStatus = (s: ClusterConnectionStatus): void => { if (s.type === 'reconnected') this.#reconnected(); };

  constructor(options: LeaseOptions) {
    super();
    const ttl = options.store.ttlMs;
    this.#store = options.store;
    this.upstream = options.upstream;
    this.hubId = options.hubId;
    this.#hubName = options.hubName;
    this.#key = new UpstreamNames(options.store.cluster, options.upstream).leaseKey;
    this.ttlMs = ttl;
    this.renewIntervalMs = options.renewIntervalMs ?? Math.floor(ttl / 3);
    this.fenceMarginMs = options.fenceMarginMs ?? Math.floor(ttl / 5);
    this.campaignIntervalMs = options.campaignIntervalMs ?? Math.floor(ttl / 3);
    const bad = (key: string, why: string): WshubError => new WshubError('ERR_INVALID_OPTION', `lease.${key}: ${why}`, { details: { path: `lease.${key}` } });
    if (!(this.fenceMarginMs > 0 && this.fenceMarginMs < ttl / 2)) throw bad('fenceMarginMs', `expected > 0 and < TTL/2 (${ttl / 2})`);
    if (!(this.renewIntervalMs > 0 && this.renewIntervalMs <= (ttl - this.fenceMarginMs) / 2)) throw bad('renewIntervalMs', 'expected two renews to fit before the fence deadline');
    if (!(this.campaignIntervalMs > 0 && this.campaignIntervalMs <= ttl)) throw bad('campaignIntervalMs', 'expected > 0 and ≤ TTL');
  }

  get state(): LeaseState {
    return this.#state;
  }

  /** True while this hub holds the lease; checks the deadline now and fences when it has passed. */
  get isHolder(): boolean {
    if (this.#state === 'holding' && performance.now() >= this.#validUntil) this.#fence();
    return this.#state === 'holding';
  }

  /** The epoch to stamp an act with, or `undefined` when this hub must not act as the holder. */
  holderEpoch(): number | undefined {
    return this.isHolder ? this.#epoch : undefined;
  }

  /** The epoch of this hub's current holding (0 when not holding). */
  get epoch(): number {
    return this.isHolder ? this.#epoch : 0;
  }

  /** Who holds the upstream, as last seen (this hub included). */
  get holder(): LeaseHolder | undefined {
    return this.isHolder ? this.#self() : this.#observed;
  }

  /** How long this hub has held the lease, in ms (0 when not holding). */
  get leaseAgeMs(): number {
    return this.isHolder ? performance.now() - this.#acquiredMono : 0;
  }

  /** Wall-clock ms of the send of the last successful acquire or renew (0: none yet). */
  get lastRenewAt(): number {
    return this.#lastRenewAt;
  }

  get stats(): Readonly<LeaseStats> {
    return { ...this.#stats };
  }

  /** Start campaigning for the lease (a no-op unless idle). */
  start(): void {
    if (this.#state !== 'idle') return;
    this.#state = 'campaigning';
    this.#watch ??= this.#store.watch(this.#key, (entry) => this.#onWatch(entry));
    this.#store.conn.off('status', this.#onStatus);
    this.#store.conn.on('status', this.#onStatus);
    this.#scheduleCampaign(0);
  }

  /** Let go: stop campaigning and, when holding, delete the key (only if still ours) so another hub takes over at once. */
  async release(): Promise<void> {
    if (this.#state === 'closed') return;
    await this.#letGo('released');
  }

  /** Release and stop for good (idempotent). */
  async close(): Promise<void> {
    if (this.#state === 'closed') return;
    await this.#letGo('closed');
    this.#state = 'closed';
    this.#store.conn.off('status', this.#onStatus);
    this.#watch?.stop();
  }

  async #letGo(reason: LeaseLostReason): Promise<void> {
    clearTimeout(this.#campaignTimer);
    const wasHolder = this.isHolder;
    const revision = this.#revision;
    if (wasHolder) this.#stopHolding('idle', reason);
    this.#state = 'idle';
    if (!wasHolder) return;
    try {
      await this.#store.kv.delete(this.#key, { previousSeq: revision });
    } catch {
      // Someone else's key now, or NATS unreachable: either way the TTL ends ours.
    }
  }

  #self(): LeaseHolder {
    return { holder: this.hubId, hub: this.#hubName, epoch: this.#epoch, startedAt: this.#startedAt, self: true };
  }

  #scheduleCampaign(delayMs: number): void {
    clearTimeout(this.#campaignTimer);
    if (this.#state !== 'campaigning') return;
    this.#campaignTimer = setTimeout(() => { void this.#campaign(); }, delayMs);
  }

  /** One attempt to acquire; then the next one is scheduled. */
  async #campaign(): Promise<void> {
    if (this.#state !== 'campaigning') return;
    // While NATS is away a write would only wait in the client's buffer.
    if (this.#busy || !this.#store.conn.connected) return this.#scheduleCampaign(this.campaignIntervalMs / 4);
    this.#busy = true;
    this.#stats.campaignAttempts++;
    try {
      await this.#tryAcquire();
    } finally {
      this.#busy = false;
      // Jitter only shortens the interval, so takeover stays within TTL + one interval.
      this.#scheduleCampaign(this.campaignIntervalMs * (0.85 + 0.15 * Math.random()));
    }
  }

  async #tryAcquire(): Promise<void> {
    const kv = this.#store.kv;
    const reclaim = this.#reclaim;
    this.#reclaim = undefined;
    const token = reclaim?.token ?? nonce();
    const attempt = nonce();
    const startedAt = reclaim ? this.#startedAt : Date.now();
    const value = JSON.stringify({ holder: this.hubId, hub: this.#hubName, token, attempt, startedAt } satisfies LeaseValue);
    const sent = performance.now();
    try {
      // After a fence, our key may still be there: a CAS on our last revision takes it back with a new epoch.
      const revision = reclaim ? await kv.update(this.#key, value, reclaim.revision) : await kv.create(this.#key, value);
      this.#onAcquired(revision, sent, token, startedAt);
      return;
    } catch (err) {
      if (!isWrongLastSequence(err)) {
        // No answer: the write may still happen. Remember its send time to adopt it if the KV shows it later
        // (its server stamp is later than that send, so a deadline from the send is safe).
        this.#unanswered.set(attempt, sent);
        for (const key of [...this.#unanswered.keys()].slice(0, Math.max(0, this.#unanswered.size - 16))) this.#unanswered.delete(key);
        return;
      }
    }
    const entry = await kv.get(this.#key).catch(() => null);
    const seen = entry && entry.operation === 'PUT' ? parseValue(entry) : undefined;
    const adoptSent = seen && seen.holder === this.hubId && seen.epoch === undefined ? this.#unanswered.get(seen.attempt) : undefined;
    if (entry && seen && adoptSent !== undefined) {
      this.#onAcquired(entry.revision, adoptSent, seen.token, seen.startedAt);
      return;
    }
    this.#observe(entry && seen ? { holder: seen.holder, hub: seen.hub, epoch: seen.epoch ?? entry.revision, startedAt: seen.startedAt, self: false } : undefined);
  }

  #onAcquired(revision: number, sent: number, token: string, startedAt: number): void {
    this.#unanswered.clear();
    if (this.#state !== 'campaigning') {
      // Closed or released while the create was in flight: give the key back.
      void this.#store.kv.delete(this.#key, { previousSeq: revision }).catch(() => undefined);
      return;
    }
    const validUntil = sent + this.ttlMs - this.fenceMarginMs;
    this.#token = token;
    this.#revision = revision;
    if (performance.now() >= validUntil) {
      // The answer came too late to act on; take it back by CAS with a fresh send.
      this.#reclaim = { revision, token };
      return;
    }
    this.#state = 'holding';
    this.#epoch = revision;
    this.#startedAt = startedAt;
    this.#acquiredMono = performance.now();
    this.#lastRenewAt = Date.now() - (performance.now() - sent);
    this.#stats.acquisitions++;
    this.#setDeadline(validUntil);
    clearTimeout(this.#campaignTimer);
    this.#renewTimer = setInterval(() => { void this.#renew(); }, this.renewIntervalMs);
    this.#observe(this.#self());
    this.emit('acquired', { epoch: revision, at: Date.now(), validUntil: wall(validUntil) });
  }

  /** Back on NATS: renew (or campaign) now; the timer's next tick may be past the deadline. */
  #reconnected(): void {
    if (this.#state === 'campaigning') this.#scheduleCampaign(0);
    else if (this.isHolder) {
      if (this.#busy) this.#renewAgain = true;
      else void this.#renew();
    }
  }

  async #renew(): Promise<void> {
    if (!this.isHolder || this.#busy || !this.#store.conn.connected) return;
    this.#busy = true;
    const epoch = this.#epoch;
    const sent = performance.now();
    try {
      const value = JSON.stringify({ holder: this.hubId, hub: this.#hubName, token: this.#token, attempt: '', startedAt: this.#startedAt, epoch } satisfies LeaseValue);
      const revision = await this.#store.kv.update(this.#key, value, this.#revision, this.renewIntervalMs);
      this.#onRenewed(epoch, revision, sent);
    } catch (err) {
      if (isWrongLastSequence(err)) await this.#onMismatch(epoch);
      else this.#stats.renewFailures++;
    } finally {
      this.#busy = false;
      if (this.#renewAgain) {
        this.#renewAgain = false;
        void this.#renew();
      }
    }
  }

  #onRenewed(epoch: number, revision: number, sent: number): void {
    if (this.#epoch !== epoch) return;
    // The deadline first: an answer that arrives after it (say, after a pause) must find the lease fenced.
    const holding = this.isHolder;
    this.#revision = revision;
    if (this.#state === 'idle' || this.#state === 'closed') {
      // Released while the renew was in flight: the delete missed this revision.
      void this.#store.kv.delete(this.#key, { previousSeq: revision }).catch(() => undefined);
      return;
    }
    const validUntil = sent + this.ttlMs - this.fenceMarginMs;
    if (!holding) {
      // Fenced while the renew was in flight: the key is ours, but holding again needs a fresh send.
      if (this.#reclaim) this.#reclaim = { revision, token: this.#token };
      this.#scheduleCampaign(0);
      return;
    }
    if (performance.now() >= validUntil) return this.#fence();
    this.#stats.renewals++;
    this.#lastRenewAt = Date.now() - (performance.now() - sent);
    this.#setDeadline(Math.max(validUntil, this.#validUntil));
    this.emit('renewed', { epoch, revision, at: Date.now(), validUntil: wall(this.#validUntil) });
  }

  /** The CAS failed: either someone else wrote the key, or an earlier renew of ours succeeded unanswered. */
  async #onMismatch(epoch: number): Promise<void> {
    const entry = await this.#store.kv.get(this.#key).catch(() => null);
    if (this.#epoch !== epoch || !this.isHolder) return;
    const seen = entry && entry.operation === 'PUT' ? parseValue(entry) : undefined;
    if (entry && seen && seen.holder === this.hubId && seen.token === this.#token && entry.revision > this.#revision) {
      // Our own unanswered write: adopt its revision; the deadline stays where it was until the next renew succeeds.
      this.#revision = entry.revision;
      return;
    }
    this.#stopHolding('campaigning', 'superseded');
  }

  #setDeadline(validUntil: number): void {
    this.#validUntil = validUntil;
    clearTimeout(this.#fenceTimer);
    this.#fenceTimer = setTimeout(() => { if (this.#state === 'holding' && performance.now() >= this.#validUntil) this.#fence(); else this.#setDeadline(this.#validUntil); },
      Math.max(0, validUntil - performance.now()));
  }

  #fence(): void {
    if (this.#state !== 'holding') return;
    const epoch = this.#epoch;
    const lateMs = Math.max(0, performance.now() - this.#validUntil);
    const validUntil = wall(this.#validUntil);
    this.#reclaim = { revision: this.#revision, token: this.#token };
    this.#stats.fences++;
    this.#clearHolding();
    this.#state = 'campaigning';
    this.emit('fenced', { epoch, at: Date.now(), validUntil, lateMs });
    this.#observe(undefined);
    this.#scheduleCampaign(0);
  }

  #stopHolding(next: 'campaigning' | 'idle', reason: LeaseLostReason): void {
    const epoch = this.#epoch;
    this.#stats.losses++;
    this.#clearHolding();
    this.#state = next;
    this.emit('lost', { epoch, reason, at: Date.now() });
    this.#observe(undefined);
    if (next === 'campaigning') this.#scheduleCampaign(this.campaignIntervalMs);
  }

  #clearHolding(): void {
    clearInterval(this.#renewTimer);
    clearTimeout(this.#fenceTimer);
    this.#renewTimer = undefined;
    this.#fenceTimer = undefined;
    this.#validUntil = 0;
  }

  #onWatch(entry: KvWatchEntry): void {
    if (this.#state === 'closed') return;
    if (entry.operation !== 'PUT') {
      this.#observe(undefined);
      // A graceful release: campaign now instead of at the next tick.
      if (this.#state === 'campaigning' && !this.#busy) this.#scheduleCampaign(0);
      return;
    }
    const seen = parseValue(entry);
    if (!seen) return;
    // Only this process writes with its hub id: its own acquiring write shows in the watch before the create's answer sets the token.
    const mine = seen.holder === this.hubId;
    if (!mine && entry.revision > this.#revision && this.isHolder) {
      this.#stopHolding('campaigning', 'superseded');
    }
    if (!mine) this.#observe({ holder: seen.holder, hub: seen.hub, epoch: seen.epoch ?? entry.revision, startedAt: seen.startedAt, self: false });
  }

  #observe(holder: LeaseHolder | undefined): void {
    const before = this.#observed;
    this.#observed = holder;
    if (before?.holder !== holder?.holder || before?.epoch !== holder?.epoch) this.emit('holder', holder);
  }
}

function nonce(): string {
  return randomBytes(9).toString('base64url');
}

function isWrongLastSequence(err: unknown): boolean {
  return (err as { code?: unknown } | null)?.code === WRONG_LAST_SEQUENCE;
}

/** A monotonic instant as wall-clock ms. */
function wall(mono: number): number {
  return Date.now() + (mono - performance.now());
}
