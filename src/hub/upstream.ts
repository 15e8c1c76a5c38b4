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
 */
import { EventEmitter } from 'node:events';
import { JsonAdapter } from '../adapters/json.js';
import { JsonRpcAdapter } from '../adapters/jsonrpc.js';
import { RawAdapter } from '../adapters/raw.js';
import type { Adapter, AdapterHost, UpstreamFrame } from '../adapters/types.js';
import { ERROR_CATALOG, WshubError } from '../errors.js';
import type { Logger } from '../observe/log.js';
import type { ResilientWebSocket } from '../upstream/resilient.js';
import type { SendResult, StateChange, UpstreamStats } from '../upstream/types.js';
import type { UpstreamConfig } from './config.js';
import { Handover } from './handover.js';
import { ReadPacer, type PacerStats } from './pacer.js';
import { Pool, type PoolStats } from './pool.js';
import { Route, type SendTag } from './route.js';

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
  readonly pool: Pool;
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
  /** Worker connections whose reading this upstream paused; resumed on drain. */
  readonly #paused = new Set<PausableReader>();
  #sending = false;

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
        control: (intents) => this.pool.control(intents),
        isOpen: () => this.pool.state === 'open',
      },
    });
    this.adapter = ADAPTERS[config.adapter](this.route, config);
    this.route.adapter = this.adapter;
    this.#handover = new Handover(config.sequenceField !== undefined);
    // The clients add their own `upstream` field to every line; giving them the child logger would print it twice.
    const { url: _url, ...client } = config.client;
    this.pool = new Pool({
      name: config.name,
      config: config.pool,
      client: { ...client, logger: options.logger },
      logger: options.logger,
      render: (kind, parts) => this.adapter.renderControl?.(kind, parts),
      dropped: (parts) => this.route.apply(this.adapter.controlDropped?.(parts) ?? {}),
      topicsPerFrame: () => this.adapter.topicsPerFrame ?? Infinity,
      pending: () => this.adapter.pendingSubscriptions?.() ?? 0,
      exactHandover: config.sequenceField !== undefined,
    });
    this.pacer = new ReadPacer(this.pool, options.slowAfterMs);

    const handover = this.#handover;
    this.pool.on('message', (data, isBinary, source, epoch) => {
      if (source === 'current' && !handover.busy) this.route.fromUpstream(data, isBinary, undefined, epoch);
      else this.route.fromUpstream(data, isBinary, (topic, seq) => handover.admit(source, topic, seq), epoch);
    });
    this.pool.on('opened', (reconnect, only) => {
      handover.reset();
      this.route.opened(reconnect, only);
    });
    this.pool.on('down', (cause, final, primary, only) => this.route.down(cause, final, { primary, ...(only ? { topics: only } : {}) }));
    this.pool.on('migrate', () => {
      handover.begin();
      this.route.migrate();
    });
    this.pool.on('switched', () => {
      handover.switched();
      this.adapter.migrated?.();
    });
    this.pool.on('state', (change) => this.#onState(change));
    this.pool.on('sent', (tag) => this.route.sendSent(tag as SendTag));
    this.pool.on('drop', (notice) => {
      // A refusal inside send() comes back in its result, which the route handles: counted once.
      if (this.#sending) return;
      const tag = notice.tag as SendTag | undefined;
      this.#log.warn({ session: tag?.session?.id, reason: notice.reason, bytes: notice.bytes }, 'message to upstream dropped');
      if (!tag) return;
      this.route.sendDropped(tag, new WshubError(notice.reason, `message to upstream ${this.name} not sent: ${ERROR_CATALOG[notice.reason].summary}`, { details: { bytes: notice.bytes } }));
    });
    this.pool.on('drain', () => this.#resumeSenders());
    this.pool.on('endpoint', (change) => this.#log.info({ event: change.reason, from: change.from, to: change.to }, `endpoint ${change.reason}`));
  }

  /** The first connection of the pool: it answers for the upstream's negotiated subprotocol. */
  get client(): ResilientWebSocket {
    return this.pool.primary;
  }

  /** The logical upstream's state: its first connection's, across failovers. */
  get state(): StateChange['to'] {
    return this.pool.state;
  }

  start(): void {
    this.pool.start();
  }

  /** The first connection's stats, with the sends of every connection the pool used summed into `sends`. */
  stats(): UpstreamStats {
    const primary = this.client.stats();
    const sends = { accepted: 0, sent: 0, dropped: 0, held: 0, heldBytes: 0, droppedByReason: {} as Record<string, number> };
    for (const c of this.pool.clientStats()) {
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
    const queued = this.pool.queued;
    sends.accepted += queued.messages + this.pool.dropped;
    sends.dropped += this.pool.dropped;
    if (this.pool.dropped > 0) sends.droppedByReason.ERR_QUEUE_CLOSED = (sends.droppedByReason.ERR_QUEUE_CLOSED ?? 0) + this.pool.dropped;
    sends.held += queued.messages;
    sends.heldBytes += queued.bytes;
    return { ...primary, state: this.pool.state, sends };
  }

  poolStats(): PoolStats {
    return this.pool.stats();
  }

  pacerStats(): PacerStats {
    return this.pacer.stats();
  }

  /** Close for good (removed, or the hub is stopping): paused workers are released, no timer outlives it. */
  async close(code: number, reason: string): Promise<void> {
    this.pacer.close();
    this.#resumeSenders();
    await this.pool.close(code, reason);
  }

  destroy(): void {
    this.pacer.close();
    this.#resumeSenders();
    this.pool.destroy();
  }

  /** Refusals come back in the result (the route tells the sender); later drops through the pool's `drop` event. */
  #send(frame: UpstreamFrame, tag: SendTag): SendResult {
    this.#sending = true;
    let result: SendResult;
    try {
      result = this.pool.send(frame, tag);
    } finally {
      this.#sending = false;
    }
    if (result.ok && result.wait && tag.session) {
      const reader = this.#readerOf(tag.session);
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

  #onState(change: StateChange): void {
    this.lastChange = change;
    this.history.push(change);
    if (this.history.length > 50) this.history.shift();
    if (change.from === 'open' && change.to !== 'open') this.gapStart = change.at;
    if (change.to === 'open') {
      if (this.gapStart !== undefined) this.lastGap = { start: this.gapStart, end: change.at };
      this.gapStart = undefined;
    }
    this.emit('state', change);
  }
}
