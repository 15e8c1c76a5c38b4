/**
 * One logical upstream as a pool of connections (../shared/DESIGN.md,
 * "Upstream pools"). Workers see one upstream and one merged stream; the pool
 * decides where the bytes go.
 *
 * - **Endpoints.** `urls` in order of preference. After `failoverAfter`
 *   consecutive failures of the current endpoint (at once on a fatal close
 *   code or HTTP status) every connection moves to the next one, and each
 *   replays its own topics there. While on a fallback, the more preferred
 *   endpoints are probed every `failbackProbeMs`; when one answers, the pool
 *   moves back make-before-break: the new connections open and subscribe
 *   while the old ones keep streaming, and only once every subscription is
 *   answered (or `failbackOverlapMs` passed) does delivery switch and the old
 *   connections close. What a worker sees around the switch: with a
 *   `sequenceField` nothing twice and nothing lost (delivery hands over per
 *   topic where the sequences meet); without one, messages that were in
 *   flight at that instant may be missed or seen twice.
 * - **Shards.** With `maxTopicsPerConnection`, each new topic goes to the
 *   connection with the most room; a connection is opened when all are full
 *   and closed when it carried no topic for `idleShardMs`. Each connection is
 *   a full ResilientWebSocket (its own liveness, backoff, netwatch); one that
 *   drops re-subscribes only its own topics.
 * - **Pacing.** Every frame the hub sends on a connection passes that
 *   connection's `controlRate` bucket (shard.ts); new connections pass the
 *   upstream's `connectRate` gate.
 *
 * The logical upstream's state is its first connection's (shard 0), with the
 * endpoint named in each change.
 */
import { EventEmitter } from 'node:events';
import type { ControlIntent, UpstreamFrame } from '../adapters/types.js';
import { WshubError } from '../errors.js';
import { redactUrl, type Logger } from '../observe/log.js';
import { RateGate, SlidingWindow } from '../upstream/rate.js';
import { backoffDelay } from '../upstream/backoff.js';
import { DEFAULT_QUEUE_TTL_MS } from '../upstream/defaults.js';
import { ResilientWebSocket } from '../upstream/resilient.js';
import type { DropNotice, SendResult, StateChange, UpstreamState, UpstreamStats } from '../upstream/types.js';
import type { PoolConfig } from './pool-config.js';
import type { SendTag } from './route.js';
import { Shard } from './shard.js';

/** Where a message came from, during a failback: the connections delivering, the new ones subscribing, or the old ones closing. */
export type MessageSource = 'current' | 'fresh' | 'stale';

export interface EndpointChange {
  from: string;
  to: string;
  reason: 'failover' | 'failback';
  at: number;
}

export interface PoolEvents {
  message: [data: Buffer, isBinary: boolean, source: MessageSource, epoch: number];
  /** The logical upstream's state (its first connection's), endpoint named. */
  state: [StateChange];
  /** A connection (re)opened: its topics are replayed. `only`: the topics it carries (undefined: all). */
  opened: [reconnect: boolean, only: string[] | undefined];
  /** A connection went down; `primary`: it carried the requests. */
  down: [cause: WshubError | undefined, final: boolean, primary: boolean, only: string[] | undefined];
  /** A failback opened its new connections: subscriptions are made again there. */
  migrate: [];
  /** The failback switched to the new connections. */
  switched: [];
  endpoint: [EndpointChange];
  sent: [tag: unknown];
  drop: [DropNotice];
  drain: [];
}

export interface PoolOptions {
  name: string;
  config: PoolConfig;
  /** ResilientWebSocket options but `url`. */
  client: Record<string, unknown>;
  logger: Logger;
  render: (kind: ControlIntent['kind'], parts: readonly ControlIntent[]) => UpstreamFrame | undefined;
  dropped: (parts: readonly ControlIntent[]) => void;
  topicsPerFrame: () => number;
  /** Subscriptions asked and not answered (the failback switches at 0). */
  pending: () => number;
  /** A failback hands over exactly (per-topic sequence numbers): its new connections keep the old ones' epochs. */
  exactHandover: boolean;
}

/** Each paced frame counts for perMs + perMs / this (jitter between the hub's send and the provider's count). */
const CONTROL_WINDOW_GUARD = 10;

export interface PoolStats {
  endpoint: string;
  endpoints: Array<{ url: string; current: boolean; failures: number }>;
  failovers: number;
  failbacks: number;
  /** Frames that waited for a connection's control rate. */
  pacedFrames: number;
  connections: Array<{ shard: number; state: UpstreamState; topics: number; tokensLeft: number | undefined; queuedFrames: number }>;
  /** Clients of the pool over its life (for the ledger): their figures summed. */
  handover: boolean;
}

export class Pool extends EventEmitter<PoolEvents> {
  readonly #o: PoolOptions;
  readonly #log: Logger;
  readonly #gate: RateGate | undefined;
  #current = 0;
  #shards: Shard[] = [];
  /** Failback in progress: the new connections and the endpoint they are on. */
  #next: { endpoint: number; shards: Shard[]; startedAt: number; timer: NodeJS.Timeout } | undefined;
  readonly #assigned = new Map<string, number>();
  readonly #failures: number[];
  #failovers = 0;
  #failbacks = 0;
  #logical: UpstreamState = 'idle';
  #outage = false;
  #probeTimer: NodeJS.Timeout | undefined;
  #probe: ResilientWebSocket | undefined;
  #idleTimer: NodeJS.Timeout | undefined;
  /** Clients no longer in use whose sends may still report (their figures stay in the ledger). */
  readonly #retired: ResilientWebSocket[] = [];
  /** Old connections of a failback, still open for the answers they owe (closed shortly, or at once by close()). */
  readonly #lingering = new Set<ResilientWebSocket>();
  #closed = false;
  #started = false;
  /** pause() without resume(): the hub's writes are behind; new connections start paused too. */
  #readPaused = false;
  #epochs = 0;
  #droppedQueued = 0;
  /** Consecutive failovers without an open: every endpoint failing must not become a dial loop. */
  #cycles = 0;
  #failoverTimer: NodeJS.Timeout | undefined;

  constructor(options: PoolOptions) {
    super();
    this.#o = options;
    this.#log = options.logger.child({ upstream: options.name, part: 'pool' });
    const rate = options.config.connectRate;
    this.#gate = rate ? new RateGate({ messages: rate.connections, perMs: rate.perMs }) : undefined;
    this.#failures = options.config.urls.map(() => 0);
    this.#shards = [this.#newShard(0, this.#current)];
  }

  /** The first connection: its client answers for the logical upstream (state, protocol). */
  get primary(): ResilientWebSocket {
    return this.#shards[0]!.client;
  }

  get state(): UpstreamState {
    return this.#logical;
  }

  get endpoint(): string {
    return this.#o.config.urls[this.#current]!;
  }

  start(): void {
    if (this.#started) return;
    this.#started = true;
    for (const shard of this.#shards) shard.client.connect();
    this.#idleTimer = setInterval(() => this.#closeIdle(), Math.max(1000, this.#o.config.idleShardMs / 4));
    this.#idleTimer.unref();
  }

  /**
   * A frame for the upstream (requests, verbatim sends, jsonrpc subscribes):
   * on the first connection, paced. During a failback, once the new first
   * connection is open, everything goes there (answers from the old one still
   * arrive for what it has in flight).
   */
  send(frame: UpstreamFrame, tag: SendTag): SendResult {
    if (this.#closed) {
      const error = new WshubError('ERR_CLOSED', `upstream ${this.#o.name} is closed`);
      return { ok: false, error };
    }
    const fresh = this.#next?.shards[0];
    const shard = fresh?.client.state === 'open' ? fresh : this.#shards[0]!;
    return shard.send(frame, tag, Number(this.#o.client.highWaterMarkBytes ?? 1024 * 1024));
  }

  /** Subscribes and unsubscribes: each topic to the connection that carries it (a new one when all are full). */
  control(intents: readonly ControlIntent[]): void {
    const shards = this.#next?.shards ?? this.#shards;
    for (const intent of intents) {
      const byShard = new Map<number, string[]>();
      for (const topic of intent.topics) {
        const index = intent.kind === 'subscribe' ? this.#assign(topic, shards) : this.#assigned.get(topic) ?? 0;
        let list = byShard.get(index);
        if (!list) byShard.set(index, (list = []));
        list.push(topic);
        if (intent.kind === 'unsubscribe') this.#release(topic, shards);
      }
      for (const [index, topics] of byShard) {
        const shard = shards[index];
        const part = { ...intent, topics };
        // A connection that is down forgot its subscriptions; one not open yet replays them when it opens.
        if (!shard || (intent.kind === 'unsubscribe' && shard.client.state !== 'open')) this.#o.dropped([part]);
        else shard.control(part);
      }
    }
  }

  stats(): PoolStats {
    const shards = this.#shards;
    return {
      endpoint: redactUrl(this.endpoint),
      endpoints: this.#o.config.urls.map((url, i) => ({ url: redactUrl(url), current: i === this.#current, failures: this.#failures[i] ?? 0 })),
      failovers: this.#failovers,
      failbacks: this.#failbacks,
      pacedFrames: [...shards, ...(this.#next?.shards ?? [])].reduce((a, s) => a + s.paced, 0),
      connections: shards.map((s) => ({ shard: s.index, state: s.client.state, topics: s.topics.size, tokensLeft: s.tokensLeft, queuedFrames: s.queuedMessages })),
      handover: this.#next !== undefined,
    };
  }

  /** Every client's stats, current and retired (the sends ledger sums them). */
  clientStats(): UpstreamStats[] {
    const live = [...this.#shards, ...(this.#next?.shards ?? [])].map((s) => s.client);
    return [...live, ...this.#retired].map((c) => c.stats());
  }

  /** Frames waiting for a connection's control rate. */
  get queued(): { messages: number; bytes: number } {
    let messages = 0;
    let bytes = 0;
    for (const s of this.#shards) {
      messages += s.queuedMessages;
      bytes += s.queuedBytes;
    }
    return { messages, bytes };
  }

  /** Stop reading every connection (the hub's writes are behind); connections opened meanwhile start paused. */
  pause(): void {
    this.#readPaused = true;
    for (const s of this.#all()) s.client.pause();
  }

  resume(): void {
    this.#readPaused = false;
    for (const s of this.#all()) s.client.resume();
  }

  async close(code: number, reason: string): Promise<void> {
    this.#stop();
    await Promise.all([...this.#all().map((s) => s.client), ...this.#lingering].map((c) => c.close(code, reason)));
    this.#lingering.clear();
  }

  destroy(): void {
    this.#stop();
    for (const c of [...this.#all().map((s) => s.client), ...this.#lingering]) c.destroy();
    this.#lingering.clear();
  }

  /** Frames that waited for a control rate and were dropped with their pool (it closed): for the ledger. */
  get dropped(): number {
    return this.#droppedQueued;
  }

  // ── internals ──────────────────────────────────────────────────────────

  #dropQueued(tag: SendTag): void {
    this.#droppedQueued++;
    this.emit('drop', { type: 'drop', reason: 'ERR_QUEUE_CLOSED', bytes: 0, tag });
  }

  #all(): Shard[] {
    return [...this.#shards, ...(this.#next?.shards ?? [])];
  }

  #stop(): void {
    this.#closed = true;
    clearInterval(this.#idleTimer);
    clearTimeout(this.#probeTimer);
    clearTimeout(this.#failoverTimer);
    if (this.#next) clearInterval(this.#next.timer);
    this.#probe?.destroy();
    this.#gate?.close();
    for (const s of this.#all()) {
      for (const { tag } of s.close()) this.#dropQueued(tag);
    }
  }

  #newClient(endpoint: number, index: number): ResilientWebSocket {
    const gate = this.#gate;
    return new ResilientWebSocket({
      ...(this.#o.client as { url: string }),
      url: this.#o.config.urls[endpoint]!,
      ...(index === 0 ? {} : { name: `${this.#o.name}#${index}` }),
      ...(gate ? { connectGate: () => gate.acquire() } : {}),
    });
  }

  #newShard(index: number, endpoint: number): Shard {
    const client = this.#newClient(endpoint, index);
    if (this.#readPaused) client.pause();
    const shard = new Shard(index, client, this.#tokens(), {
      render: (kind, parts) => this.#o.render(kind, parts),
      dropped: (parts) => this.#o.dropped(parts),
      topicsPerFrame: () => Math.min(this.#o.topicsPerFrame(), this.#o.config.maxTopicsPerFrame),
      drained: () => this.emit('drain'),
    });
    this.#wire(shard);
    return shard;
  }

  #tokens(): SlidingWindow | undefined {
    const rate = this.#o.config.controlRate;
    // A sliding window, not a bucket: a provider counts frames over a rolling window, and a full bucket could pass twice its rate in one.
    // Each frame stays in the window a tenth longer than perMs: the provider counts at arrival, and a burst delayed in transit or by a
    // busy reader lands closer to the next burst than it was sent (measured: 4 frames delayed 38 ms, the next 4 on time → 8 in 962 ms).
    return rate ? new SlidingWindow({ messages: rate.messages, perMs: rate.perMs + Math.ceil(rate.perMs / CONTROL_WINDOW_GUARD) }) : undefined;
  }

  #source(shard: Shard): MessageSource {
    if (this.#next?.shards.includes(shard)) return 'fresh';
    return this.#shards.includes(shard) ? 'current' : 'stale';
  }

  #wire(shard: Shard): void {
    const client = shard.client;
    let opened = false;
    client.on('message', (data, isBinary) => this.emit('message', data, isBinary, this.#source(shard), shard.epoch));
    client.on('sent', (tag) => this.emit('sent', tag));
    client.on('drop', (notice) => this.emit('drop', notice));
    client.on('drain', () => this.emit('drain'));
    client.on('open', () => {
      if (this.#shard(client) !== shard) return;
      const reconnect = opened;
      opened = true;
      shard.purgeControl();
      const fresh = this.#next?.shards.includes(shard) ?? false;
      const before = fresh ? this.#shards[shard.index] : undefined;
      // A new connection is a new epoch for its topics' streams, unless a failback hands them over exactly.
      shard.epoch = before && this.#o.exactHandover ? before.epoch : ++this.#epochs;
      // A failback's first new connection makes every subscription again; its others replay their own topics.
      if (fresh && shard.index === 0) this.emit('migrate');
      else this.emit('opened', reconnect || fresh, this.#only(shard));
      shard.opened();
    });
    client.on('state', (change) => {
      if (this.#shard(client) !== shard) return;
      if (change.from === 'open' && change.to !== 'open') {
        shard.purgeControl();
        if (this.#next?.shards.includes(shard)) {
          this.#abortFailback(`a new connection failed: ${change.cause?.code ?? change.reason}`);
          return;
        }
        if (this.#next && shard.index === 0) {
          // The old connection failed during a failback: switch to the new one now.
          this.#switch('the old connection failed');
          return;
        }
        this.emit('down', change.cause, change.to === 'closed', shard.index === 0, this.#only(shard));
      }
      if (shard.index === 0 && this.#shards[0] === shard) this.#primaryState(change);
    });
  }

  /** The shard a client belongs to now (undefined for a retired one). */
  #shard(client: ResilientWebSocket): Shard | undefined {
    return this.#all().find((s) => s.client === client && !s.retired);
  }

  /** The topics a shard carries, when topics are sharded (else undefined: the adapter replays all). */
  #only(shard: Shard): string[] | undefined {
    return this.#o.config.maxTopicsPerConnection === undefined ? undefined : [...shard.topics];
  }

  #assign(topic: string, shards: Shard[]): number {
    const known = this.#assigned.get(topic);
    if (known !== undefined && shards[known]) return known;
    const max = this.#o.config.maxTopicsPerConnection;
    let index = 0;
    if (max !== undefined) {
      let best: Shard | undefined;
      for (const s of shards) if (s.topics.size < max && (!best || s.topics.size < best.topics.size)) best = s;
      if (best) index = best.index;
      else {
        index = shards.length;
        const endpoint = this.#next && shards === this.#next.shards ? this.#next.endpoint : this.#current;
        const shard = this.#newShard(index, endpoint);
        shards.push(shard);
        this.#log.info({ event: 'shard', shard: index, topics: max }, 'every connection is full: opening another');
        if (this.#started) shard.client.connect();
      }
    }
    this.#assigned.set(topic, index);
    const shard = shards[index]!;
    shard.topics.add(topic);
    shard.emptySince = undefined;
    return index;
  }

  #release(topic: string, shards: Shard[]): void {
    const index = this.#assigned.get(topic);
    if (index === undefined) return;
    this.#assigned.delete(topic);
    const shard = shards[index];
    if (!shard) return;
    shard.topics.delete(topic);
    if (shard.topics.size === 0 && index > 0) shard.emptySince = Date.now();
  }

  /** Extra connections that carried nothing for idleShardMs are closed (the last ones first, so indexes stay dense). */
  #closeIdle(): void {
    if (this.#next) return;
    const now = Date.now();
    while (this.#shards.length > 1) {
      const last = this.#shards.at(-1)!;
      if (last.topics.size > 0 || last.emptySince === undefined || now - last.emptySince < this.#o.config.idleShardMs) break;
      this.#shards.pop();
      this.#retire(last, 'no topic left on this connection');
    }
  }

  #retire(shard: Shard, reason: string): void {
    shard.retired = true;
    for (const { tag } of shard.close()) this.#dropQueued(tag);
    this.#retired.push(shard.client);
    if (this.#retired.length > 64) this.#retired.shift();
    void shard.client.close(1000, reason).catch(() => undefined);
  }

  /** The logical state follows the first connection, endpoint named; failures count toward failover. */
  #primaryState(change: StateChange): void {
    const url = redactUrl(this.endpoint);
    if (change.to === 'open') {
      this.#failures[this.#current] = 0;
      this.#cycles = 0;
      this.#outage = false;
      this.#scheduleProbe();
    } else if (change.to === 'reconnecting') {
      this.#failures[this.#current] = (this.#failures[this.#current] ?? 0) + 1;
      if (change.outage) this.#outage = true;
    }
    const many = this.#o.config.urls.length > 1;
    const failover = many && (change.to === 'closed' || (change.to === 'reconnecting' && (this.#failures[this.#current] ?? 0) >= this.#o.config.failoverAfter));
    const logical: StateChange = { ...change, from: this.#logical, reason: `${change.reason} (endpoint ${url})`, endpoint: url, ...(this.#outage ? { outage: true } : {}) };
    if (failover && change.to === 'closed') logical.to = 'reconnecting';
    if (logical.from !== logical.to) {
      this.#logical = logical.to;
      this.emit('state', logical);
    }
    if (failover) this.#failover(change.cause?.code ?? change.reason);
  }

  /** Every connection moves to the next endpoint; each replays its own topics there. */
  #failover(why: string): void {
    const from = this.endpoint;
    this.#current = (this.#current + 1) % this.#o.config.urls.length;
    this.#failovers++;
    this.#log.warn({ event: 'failover', from: redactUrl(from), to: redactUrl(this.endpoint), why }, 'failing over to the next endpoint');
    const old = this.#shards;
    this.#shards = old.map((s) => {
      if (s.client.state === 'open') this.emit('down', undefined, false, s.index === 0, this.#only(s));
      s.retired = true;
      const frames = s.close();
      // What waited for the old endpoint goes to the new one, in order, keeping its age.
      const queued = s.client.takeQueued();
      this.#retired.push(s.client);
      s.client.destroy();
      const next = this.#newShard(s.index, this.#current);
      for (const topic of s.topics) next.topics.add(topic);
      const ttlMs = (this.#o.client.queue as { ttlMs?: number } | undefined)?.ttlMs ?? DEFAULT_QUEUE_TTL_MS;
      for (const item of queued) {
        const left = item.acceptedAt + (item.ttlMs ?? ttlMs) - Date.now();
        next.client.send(item.data, { binary: item.binary, tag: item.tag, ttlMs: Math.max(1, left) });
      }
      for (const { frame, tag } of frames) next.send(frame, tag, Infinity);
      return next;
    });
    this.emit('endpoint', { from: redactUrl(from), to: redactUrl(this.endpoint), reason: 'failover', at: Date.now() });
    // The next endpoint is dialled at once the first time; when every endpoint keeps failing, with the usual backoff.
    this.#cycles++;
    const delay = this.#cycles <= 1 ? 0 : backoffDelay(this.primary.options.backoff, this.#cycles - 1);
    const shards = this.#shards;
    const connect = (): void => {
      this.#failoverTimer = undefined;
      if (!this.#closed && this.#shards === shards) for (const s of shards) s.client.connect();
    };
    if (delay === 0) connect();
    else {
      this.#failoverTimer = setTimeout(connect, delay);
    }
  }

  #scheduleProbe(): void {
    clearTimeout(this.#probeTimer);
    if (this.#current === 0 || this.#closed) return;
    this.#probeTimer = setTimeout(() => this.#probeNext(0), this.#o.config.failbackProbeMs);
    this.#probeTimer.unref();
  }

  /** Probe the more preferred endpoints in order; the first that opens becomes the failback's first connection. */
  #probeNext(endpoint: number): void {
    if (this.#closed || this.#next || endpoint >= this.#current || this.#logical !== 'open') return this.#scheduleProbe();
    const probe = new ResilientWebSocket({
      ...(this.#o.client as { url: string }),
      url: this.#o.config.urls[endpoint]!,
      backoff: { ...((this.#o.client.backoff as object | undefined) ?? {}), maxAttempts: 1 },
      ...(this.#gate ? { connectGate: () => this.#gate!.acquire() } : {}),
    });
    this.#probe = probe;
    const done = (ok: boolean): void => {
      probe.removeAllListeners('state');
      probe.removeAllListeners('open');
      this.#probe = undefined;
      // The probe only answers "is it up"; the failback opens connections of its own (with their usual retries).
      void probe.close(1000, 'probe').catch(() => undefined);
      if (ok) this.#beginFailback(endpoint);
      else this.#probeNext(endpoint + 1);
    };
    probe.once('open', () => done(true));
    probe.on('state', (c) => {
      if (c.to === 'closed') done(false);
    });
    probe.connect();
  }

  /** Make before break: new connections on `endpoint`, subscribed while the old ones keep streaming. */
  #beginFailback(endpoint: number): void {
    const shards = this.#shards.map((s) => {
      const next = this.#newShard(s.index, endpoint);
      for (const topic of s.topics) next.topics.add(topic);
      return next;
    });
    const timer = setInterval(() => this.#maybeSwitch(), 50);
    timer.unref();
    this.#next = { endpoint, shards, startedAt: Date.now(), timer };
    this.#log.info({ event: 'failback-start', to: redactUrl(this.#o.config.urls[endpoint]!) }, 'a preferred endpoint answers: moving back, make before break');
    for (const s of shards) s.client.connect();
  }

  #maybeSwitch(): void {
    const next = this.#next;
    if (!next) return;
    const allOpen = next.shards.every((s) => s.client.state === 'open');
    const settled = allOpen && this.#o.pending() === 0;
    if (settled) this.#switch('the new connections are subscribed');
    else if (Date.now() - next.startedAt > this.#o.config.failbackOverlapMs) {
      if (next.shards[0]!.client.state === 'open') this.#switch(`not settled after ${this.#o.config.failbackOverlapMs} ms`);
      else this.#abortFailback('the new connection did not open');
    }
  }

  #switch(why: string): void {
    const next = this.#next;
    if (!next) return;
    clearInterval(next.timer);
    this.#next = undefined;
    const from = this.endpoint;
    const old = this.#shards;
    this.#shards = next.shards;
    this.#current = next.endpoint;
    this.#failbacks++;
    this.#failures[this.#current] = 0;
    this.#log.info({ event: 'failback', from: redactUrl(from), to: redactUrl(this.endpoint), why }, 'moved back to the preferred endpoint');
    // The old connections still deliver answers to requests in flight for a moment; their data is stale now.
    for (const s of old) {
      s.retired = true;
      for (const { frame, tag } of s.close()) this.#shards[0]!.send(frame, tag, Infinity);
      this.#retired.push(s.client);
      const client = s.client;
      this.#lingering.add(client);
      setTimeout(() => {
        this.#lingering.delete(client);
        void client.close(1000, 'moved back to the preferred endpoint').catch(() => undefined);
      }, 2000).unref();
    }
    this.emit('switched');
    this.emit('endpoint', { from: redactUrl(from), to: redactUrl(this.endpoint), reason: 'failback', at: Date.now() });
    const logical: StateChange = { type: 'state', from: this.#logical, to: 'open', reason: `moved back to ${redactUrl(this.endpoint)}`, attempt: 0, at: Date.now(), endpoint: redactUrl(this.endpoint) };
    this.#logical = 'open';
    this.emit('state', logical);
    this.#scheduleProbe();
  }

  #abortFailback(why: string): void {
    const next = this.#next;
    if (!next) return;
    clearInterval(next.timer);
    this.#next = undefined;
    this.#log.warn({ event: 'failback-aborted', why }, 'moving back aborted; staying on the fallback');
    for (const s of next.shards) {
      s.retired = true;
      s.close();
      s.client.destroy();
    }
    this.#scheduleProbe();
  }
}
