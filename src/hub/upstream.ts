/**
 * One configured upstream inside the hub: its pool of connections (one
 * ResilientWebSocket per endpoint and shard, pool.ts), its route and adapter,
 * and flow control in both directions.
 *
 * - Upstream → workers: a {@link ReadPacer} pauses reading the upstream while
 *   a session it feeds is behind (see pacer.ts).
 * - Workers → upstream: when the client says `wait` (the bytes held for the
 *   upstream passed its high-water mark), the sending worker's socket stops
 *   being read — TCP backpressure reaches the worker — until the client
 *   drains. The hub's memory for outbound data is bounded by the client's
 *   `sendBufferBytes`: past it a send is refused at once and the sender told.
 *
 * Roles (cluster mode, upstream-cluster.ts): without a cluster an upstream is
 * `local`. In a cluster it is the `holder` (its own connection, every
 * message also published to the other hubs), a `follower` (no connection of
 * its own: messages come from the holder over NATS, frames go to it, and the
 * state is the holder's as reported), or `local` again while NATS is away
 * (`onNatsLoss: local`, or a holder that lost NATS keeps its connection).
 * Each holding gets a fresh {@link Pool}; the one given up is closed with its
 * events cut off, so its close reaches neither the route nor the workers.
 */
import { EventEmitter } from 'node:events';
import { JsonAdapter } from '../adapters/json.js';
import { JsonRpcAdapter } from '../adapters/jsonrpc.js';
import { RawAdapter } from '../adapters/raw.js';
import type { Adapter, AdapterHost, Publish, UpstreamFrame } from '../adapters/types.js';
import { ERROR_CATALOG, WshubError } from '../errors.js';
import type { Logger } from '../observe/log.js';
import type { ResilientWebSocket } from '../upstream/resilient.js';
import type { SendResult, StateChange, UpstreamState, UpstreamStats } from '../upstream/types.js';
import type { UpstreamConfig } from './config.js';
import { Handover } from './handover.js';
import { ReadPacer, type PacerStats } from './pacer.js';
import { Pool, type PoolStats } from './pool.js';
import { Route, type Admit, type RouteLink, type SendTag } from './route.js';

/** Builds the adapter of an upstream. */
export type AdapterFactory = (host: AdapterHost, config: UpstreamConfig) => Adapter;

export const ADAPTERS: Record<UpstreamConfig['adapter'], AdapterFactory> = {
  raw: (host, config) => new RawAdapter(host, config.topic === undefined ? {} : { topic: config.topic }),
  json: (host, config) =>
    new JsonAdapter(host, {
      topic: config.topic!,
      subscribe: config.subscribe!,
      unsubscribe: config.unsubscribe!,
      ...(config.ack === undefined ? {} : { ack: config.ack }),
      ...(config.idField === undefined ? {} : { idField: config.idField }),
      ...(config.errorField === undefined ? {} : { errorField: config.errorField }),
      ...(config.requestTimeoutMs === undefined ? {} : { requestTimeoutMs: config.requestTimeoutMs }),
      ...(config.maxInFlight === undefined ? {} : { maxInFlight: config.maxInFlight }),
      ...(config.sequenceField === undefined ? {} : { sequenceField: config.sequenceField }),
    }),
  jsonrpc: (host, config) => JsonRpcAdapter.fromConfig(host, config),
};

/** A worker connection whose reading can be paused by several upstreams at once. */
export interface PausableReader {
  pauseReading(by: object): void;
  resumeReading(by: object): void;
}

export interface HubUpstreamEvents {
  state: [StateChange];
}

/** Who connects an upstream: see the module doc. */
export type UpstreamRole = 'local' | 'holder' | 'follower';

/** What cluster mode plugs into an upstream (upstream-cluster.ts). */
export interface ClusterPlug {
  /** Holder: an upstream message was routed here; it goes to the other hubs too. */
  routed(data: Buffer, isBinary: boolean, publish: Publish | undefined): void;
  /** The route's topic got its first subscriber (`live`) or lost its last. */
  topic(topic: string, live: boolean): void;
  /** Follower: where the route's frames go. */
  readonly link: RouteLink;
  /** Follower: the holder's stream opened (before the route replays through the link) or went down. */
  streamOpen(open: boolean): void;
  /** Follower: this hub's workers fell behind the holder's stream (`true`) or caught up: the holder paces its reading on it. */
  pace(behind: boolean): void;
  /** Follower: what came from and went to the holder, for the ledger. */
  stats(): { messagesIn: number; bytesIn: number; sends: NonNullable<UpstreamStats['sends']> };
}

function isReader(value: object): value is PausableReader {
  return typeof (value as Partial<PausableReader>).pauseReading === 'function';
}

/** Pools given up (cluster mode) whose figures stay in the ledger. */
const KEPT_POOLS = 16;

export interface HubUpstreamOptions {
  logger: Logger;
  slowAfterMs?: number | undefined;
  /** The worker connection a session belongs to, for pausing its reading. */
  readerOf: (session: NonNullable<SendTag['session']>) => PausableReader | undefined;
}

export class HubUpstream extends EventEmitter<HubUpstreamEvents> {
  readonly name: string;
  /** Replaced in place by a reload that only changes policies and limits. */
  config: UpstreamConfig;
  readonly route: Route;
  readonly adapter: Adapter;
  readonly pacer: ReadPacer;
  /** The last state change, for `state` frames to late joiners and /status. */
  lastChange: StateChange | undefined;
  /** When the current outage began (first non-open state after an open), for gap reporting. */
  gapStart: number | undefined;
  /** The last outage that ended: from leaving `open` to being `open` again. */
  lastGap: { start: number; end: number } | undefined;
  readonly history: StateChange[] = [];
  readonly #log: Logger;
  readonly #readerOf: HubUpstreamOptions['readerOf'];
  readonly #handover: Handover;
  readonly #admitStream: Admit = (topic, seq) => this.#handover.admitStream(topic, seq);
  /** Worker connections whose reading this upstream paused; resumed on drain. */
  readonly #paused = new Set<PausableReader>();
  readonly #logger: Logger;
  #sending = false;
  #pool: Pool;
  /** Pools given up, for the ledger (newest last). */
  readonly #pastPools: Pool[] = [];
  #role: UpstreamRole = 'local';
  #cluster: ClusterPlug | undefined;
  /** The logical state workers see: the pool's, or (follower) the holder's as reported. */
  #state: UpstreamState = 'idle';
  /** Follower: the route was told the upstream opened (and not yet that it went down). */
  #followerOpen = false;
  /** The highest envelope epoch given out; a follower's stream from the holder gets the next. */
  #epochTop = 0;
  #followEpoch = 0;
  #closed = false;

  constructor(config: UpstreamConfig, options: HubUpstreamOptions) {
    super();
    this.name = config.name;
    this.config = config;
    this.#log = options.logger.child({ upstream: config.name });
    this.#readerOf = options.readerOf;
    this.route = new Route({
      name: config.name,
      logger: this.#log,
      link: {
        send: (frame, tag) => this.#send(frame, tag),
        control: (intents) => {
          if (this.#role === 'follower') this.#cluster!.link.control(intents);
          else this.#pool.control(intents);
        },
        isOpen: () => (this.#role === 'follower' ? this.#cluster!.link.isOpen() : this.#pool.state === 'open'),
      },
    });
    this.adapter = ADAPTERS[config.adapter](this.route, config);
    this.route.adapter = this.adapter;
    this.#handover = new Handover(config.sequenceField !== undefined);
    this.#logger = options.logger;
    this.#pool = this.#newPool();
    // A follower reads no upstream: its pauses go to the holder, which reads slower for it (cluster-upstream.ts).
    this.pacer = new ReadPacer({ pause: () => this.#pace(true), resume: () => this.#pace(false) }, options.slowAfterMs);
  }

  /** The current pool: its connections while this hub connects the upstream itself. */
  get pool(): Pool {
    return this.#pool;
  }

  get role(): UpstreamRole {
    return this.#role;
  }

  #newPool(): Pool {
    const config = this.config;
    // The clients add their own `upstream` field to every line; giving them the child logger would print it twice.
    const { url: _url, ...client } = config.client;
    const pool = new Pool({
      name: config.name,
      config: config.pool,
      client: { ...client, logger: this.#logger },
      logger: this.#logger,
      render: (kind, parts) => this.adapter.renderControl?.(kind, parts),
      dropped: (parts) => this.route.apply(this.adapter.controlDropped?.(parts) ?? {}),
      topicsPerFrame: () => this.adapter.topicsPerFrame ?? Infinity,
      pending: () => this.adapter.pendingSubscriptions?.() ?? 0,
      exactHandover: config.sequenceField !== undefined,
    });
    const handover = this.#handover;
    // Envelope epochs stay monotonic across pools and the holder's streams (cluster mode): a new pool counts on from the last.
    const base = this.#epochTop;
    // A pool given up (cluster mode) still reports while it closes: only the current one speaks to the route.
    const current = (): boolean => pool === this.#pool && this.#role !== 'follower';
    pool.on('message', (data, isBinary, source, own) => {
      if (!current()) return;
      const epoch = base + own;
      if (epoch > this.#epochTop) this.#epochTop = epoch;
      if (source === 'current' && !handover.busy) this.route.fromUpstream(data, isBinary, undefined, epoch);
      else this.route.fromUpstream(data, isBinary, (topic, seq) => handover.admit(source, topic, seq), epoch);
    });
    pool.on('opened', (reconnect, only) => {
      if (!current()) return;
      handover.reset();
      this.route.opened(reconnect, only);
    });
    pool.on('down', (cause, final, primary, only) => {
      if (current()) this.route.down(cause, final, { primary, ...(only ? { topics: only } : {}) });
    });
    pool.on('migrate', () => {
      if (!current()) return;
      handover.begin();
      this.route.migrate();
    });
    pool.on('switched', () => {
      if (!current()) return;
      handover.switched();
      this.adapter.migrated?.();
    });
    pool.on('state', (change) => { if (current()) this.#onState(change); });
    pool.on('sent', (tag) => this.route.sendSent(tag as SendTag));
    pool.on('drop', (notice) => {
      // A refusal inside send() comes back in its result, which the route handles: counted once.
      if (this.#sending) return;
      const tag = notice.tag as SendTag | undefined;
      this.#log.warn({ session: tag?.session?.id, reason: notice.reason, bytes: notice.bytes }, 'message to upstream dropped');
      if (!tag) return;
      this.route.sendDropped(tag, new WshubError(notice.reason, `message to upstream ${this.name} not sent: ${ERROR_CATALOG[notice.reason].summary}`, { details: { bytes: notice.bytes } }));
    });
    pool.on('drain', () => this.#resumeSenders());
    pool.on('endpoint', (change) => this.#log.info({ event: change.reason, from: change.from, to: change.to }, `endpoint ${change.reason}`));
    return pool;
  }

  /** The first connection of the pool: it answers for the upstream's negotiated subprotocol. */
  get client(): ResilientWebSocket {
    return this.pool.primary;
  }

  /** The logical upstream's state: its first connection's, across failovers; a follower's, the holder's as reported. */
  get state(): StateChange['to'] {
    return this.#state;
  }

  /** Connect (without a cluster; in cluster mode the cluster decides who connects). */
  start(): void {
    if (!this.#cluster) this.#pool.start();
  }

  // ── cluster mode (upstream-cluster.ts drives these) ─────────────────────

  /** Enter cluster mode, as a follower until told otherwise. Before `start()`. */
  joinCluster(plug: ClusterPlug): void {
    this.#cluster = plug;
    this.#role = 'follower';
    this.route.observer = {
      routed: (data, isBinary, publish) => { if (this.#role === 'holder') plug.routed(data, isBinary, publish); },
      topic: (topic, live) => plug.topic(topic, live),
    };
  }

  /**
   * Connect the upstream from this hub: as the holder (`publish`: every
   * message goes to the other hubs too) or locally (NATS is away). A
   * follower's open stream ends first (its requests went to a holder that
   * is gone); the pool's own events drive the rest.
   */
  connectHere(publish: boolean, why: string, since?: number): void {
    if (this.#closed) return;
    const was = this.#role;
    this.#role = publish ? 'holder' : 'local';
    if (was !== 'follower') return;
    const cause = new WshubError('ERR_UPSTREAM_UNAVAILABLE', `upstream ${this.name}: ${why}`);
    const wasOpen = this.#state === 'open';
    this.#leaveFollowerOpen(cause, why);
    // Workers see what an upstream reconnect shows them: `reconnecting` with the gap since the holder's stream stopped, then the pool's states.
    if (wasOpen) this.#emitState('reconnecting', why, { cause }, since);
    this.#log.info({ event: publish ? 'holding' : 'local' }, why);
    // A follower's pool never started; a fresh one counts its epochs on from the follower's streams.
    const unused = this.#pool;
    this.#handover.ownConnection();
    this.#pool = this.#newPool();
    unused.destroy();
    this.#pool.start();
    // Workers behind when the role changed: the new pool reads paused, and the old holder is no longer held back.
    if (this.pacer.paused) {
      this.#cluster!.pace(false);
      this.#pool.pause();
    }
  }

  /** Stop connecting the upstream from this hub: the holder's stream over NATS serves the workers from now on. */
  followCluster(why: string): void {
    if (this.#closed || this.#role === 'follower') return;
    this.#role = 'follower';
    const old = this.#pool;
    this.#retirePool(old);
    // What the own connection delivered last is compared with the holder's stream (sequences only, handover.ts).
    this.#handover.toStream();
    if (this.#state === 'open') {
      this.route.down(new WshubError('ERR_UPSTREAM_UNAVAILABLE', `upstream ${this.name}: ${why}`), false, { primary: true });
    }
    this.#emitState('reconnecting', why, { outage: false });
    if (this.pacer.paused) this.#cluster!.pace(true);
    this.#log.info({ event: 'following' }, why);
    void old.close(1000, why.slice(0, 100)).catch(() => undefined);
  }

  /** Follower: the upstream as the holder reports it (or as this hub can tell: no holder, NATS away). */
  followerState(to: UpstreamState, reason: string, extra: { outage?: boolean; cause?: WshubError; since?: number | undefined } = {}): void {
    if (this.#role !== 'follower' || this.#closed) return;
    if (to !== 'open') this.#leaveFollowerOpen(extra.cause, reason, to === 'closed');
    const { since, ...rest } = extra;
    this.#emitState(to, reason, rest, since);
    if (to === 'open' && !this.#followerOpen) {
      this.#followerOpen = true;
      this.#followEpoch = ++this.#epochTop;
      this.#cluster!.streamOpen(true);
      this.route.opened(true);
    }
  }

  /** Follower: a message from the holder, as if from the upstream (envelope epoch: one per open stream from a holder). */
  fromCluster(data: Buffer, isBinary: boolean): void {
    if (this.#role !== 'follower' || this.#closed) return;
    this.route.fromUpstream(data, isBinary, this.#handover.comparingStream ? this.#admitStream : undefined, this.#followEpoch);
  }

  /** Follower: the cluster link accepted more (its in-flight bytes fell under the mark). */
  clusterDrained(): void {
    this.#resumeSenders();
  }

  /** The pacer paused or resumed: the pool when this hub reads the upstream, else the holder is told. */
  #pace(behind: boolean): void {
    if (this.#role === 'follower') this.#cluster!.pace(behind);
    else if (behind) this.#pool.pause();
    else this.#pool.resume();
  }

  #leaveFollowerOpen(cause: WshubError | undefined, reason: string, final = false): void {
    if (!this.#followerOpen) return;
    this.#followerOpen = false;
    this.#cluster!.streamOpen(false);
    this.route.down(cause ?? new WshubError('ERR_UPSTREAM_UNAVAILABLE', `upstream ${this.name}: ${reason}`), final, { primary: true });
  }

  #retirePool(old: Pool): void {
    this.#pastPools.push(old);
    if (this.#pastPools.length > KEPT_POOLS) this.#pastPools.shift();
    this.#pool = this.#newPool();
  }

  /** `since`: wall-clock ms when the stream really stopped (the last word from the holder), if before now: where the gap starts. */
  #emitState(to: UpstreamState, reason: string, extra: { outage?: boolean; cause?: WshubError } = {}, since?: number): void {
    if (to === this.#state) return;
    this.#onState({ type: 'state', from: this.#state, to, reason, attempt: 0, at: Date.now(), ...(extra.outage ? { outage: true } : {}), ...(extra.cause ? { cause: extra.cause } : {}) }, since);
  }

  /**
   * The first connection's stats, with the sends of every connection the
   * pool used summed into `sends` (and, in cluster mode, of the pools given
   * up and of the frames forwarded to the holder; messages from the holder
   * count in `messagesIn`).
   */
  stats(): UpstreamStats {
    const primary = this.client.stats();
    const sends = { accepted: 0, sent: 0, dropped: 0, held: 0, heldBytes: 0, droppedByReason: {} as Record<string, number> };
    const pools = [...this.#pastPools, this.#pool];
    for (const c of pools.flatMap((p) => p.clientStats())) {
      const s = c.sends;
      if (!s) continue;
      for (const [reason, n] of Object.entries(c.dropped)) sends.droppedByReason[reason] = (sends.droppedByReason[reason] ?? 0) + n;
      // What one connection handed over to another is accepted once, by the one that ends it.
      sends.accepted += s.accepted - (s.handedOver ?? 0);
      sends.sent += s.sent;
      sends.dropped += s.dropped;
      sends.held += s.held;
      sends.heldBytes += s.heldBytes;
    }
    for (const pool of pools) {
      const queued = pool.queued;
      sends.accepted += queued.messages + pool.dropped;
      sends.dropped += pool.dropped;
      if (pool.dropped > 0) sends.droppedByReason.ERR_QUEUE_CLOSED = (sends.droppedByReason.ERR_QUEUE_CLOSED ?? 0) + pool.dropped;
      sends.held += queued.messages;
      sends.heldBytes += queued.bytes;
    }
    let { messagesIn, bytesIn } = primary;
    for (const past of this.#pastPools) {
      const first = past.primary.stats();
      messagesIn += first.messagesIn;
      bytesIn += first.bytesIn;
    }
    const cluster = this.#cluster?.stats();
    if (cluster) {
      messagesIn += cluster.messagesIn;
      bytesIn += cluster.bytesIn;
      for (const [reason, n] of Object.entries(cluster.sends.droppedByReason ?? {})) sends.droppedByReason[reason] = (sends.droppedByReason[reason] ?? 0) + n;
      sends.accepted += cluster.sends.accepted;
      sends.sent += cluster.sends.sent;
      sends.dropped += cluster.sends.dropped;
      sends.held += cluster.sends.held;
      sends.heldBytes += cluster.sends.heldBytes;
    }
    return { ...primary, messagesIn, bytesIn, state: this.#state, sends };
  }

  /** The current pool's figures; in cluster mode its counters include the pools given up, so they never go back. */
  poolStats(): PoolStats {
    const now = this.#pool.stats();
    for (const past of this.#pastPools) {
      const p = past.stats();
      now.failovers += p.failovers;
      now.failbacks += p.failbacks;
      now.pacedFrames += p.pacedFrames;
    }
    return now;
  }

  pacerStats(): PacerStats {
    return this.pacer.stats();
  }

  /** Close for good (removed, or the hub is stopping): paused workers are released, no timer outlives it. */
  async close(code: number, reason: string): Promise<void> {
    this.#closed = true;
    this.pacer.close();
    this.#resumeSenders();
    await this.#pool.close(code, reason);
  }

  destroy(): void {
    this.#closed = true;
    this.pacer.close();
    this.#resumeSenders();
    this.#pool.destroy();
  }

  /** Refusals come back in the result (the route tells the sender); later drops through the pool's `drop` event. */
  #send(frame: UpstreamFrame, tag: SendTag): SendResult {
    this.#sending = true;
    let result: SendResult;
    try {
      result = this.#role === 'follower' ? this.#cluster!.link.send(frame, tag) : this.#pool.send(frame, tag);
    } finally {
      this.#sending = false;
    }
    if (result.ok && result.wait && tag.session) {
      // A worker's connection; or the session is its own reader (a following hub, cluster-remote.ts).
      const reader = this.#readerOf(tag.session) ?? (isReader(tag.session) ? tag.session : undefined);
      if (reader && !this.#paused.has(reader)) {
        this.#paused.add(reader);
        reader.pauseReading(this);
      }
    }
    return result;
  }

  #resumeSenders(): void {
    const paused = [...this.#paused];
    this.#paused.clear();
    for (const reader of paused) reader.resumeReading(this);
  }

  #onState(pooled: StateChange, since?: number): void {
    // Across roles the pool's `from` may not be what workers last saw.
    const change: StateChange = pooled.from === this.#state ? pooled : { ...pooled, from: this.#state };
    if (change.from === change.to) return;
    this.#state = change.to;
    this.lastChange = change;
    this.history.push(change);
    if (this.history.length > 50) this.history.shift();
    if (change.from === 'open' && change.to !== 'open') this.gapStart = since !== undefined && since < change.at ? since : change.at;
    if (change.to === 'open') {
      if (this.gapStart !== undefined) this.lastGap = { start: this.gapStart, end: change.at };
      this.gapStart = undefined;
    }
    this.emit('state', change);
  }
}
