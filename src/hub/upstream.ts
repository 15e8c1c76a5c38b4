/**
 * One configured upstream inside the hub: its ResilientWebSocket, its route
 * and adapter, and flow control in both directions.
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
import { ResilientWebSocket } from '../upstream/resilient.js';
import type { SendResult, StateChange, UpstreamStats } from '../upstream/types.js';
import type { UpstreamConfig } from './config.js';
import { ReadPacer, type PacerStats } from './pacer.js';
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
  readonly client: ResilientWebSocket;
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
  /** Worker connections whose reading this upstream paused; resumed on the client's drain. */
  readonly #paused = new Set<PausableReader>();
  #opened = false;
  #sending = false;

  constructor(config: UpstreamConfig, options: HubUpstreamOptions) {
    super();
    this.name = config.name;
    this.config = config;
    this.#log = options.logger.child({ upstream: config.name });
    this.#readerOf = options.readerOf;
    // The client adds its own `upstream` field to every line; giving it the child logger would print it twice.
    this.client = new ResilientWebSocket({ ...(config.client as { url: string }), logger: options.logger });
    this.route = new Route({
      name: config.name,
      logger: this.#log,
      link: { send: (frame, tag) => this.#send(frame, tag), isOpen: () => this.client.state === 'open' },
    });
    this.adapter = ADAPTERS[config.adapter](this.route, config);
    this.route.adapter = this.adapter;
    this.pacer = new ReadPacer(this.client, options.slowAfterMs);

    this.client.on('message', (data, isBinary) => this.route.fromUpstream(data, isBinary));
    this.client.on('open', () => {
      const reconnect = this.#opened;
      this.#opened = true;
      this.route.opened(reconnect);
    });
    this.client.on('state', (change) => this.#onState(change));
    this.client.on('sent', (tag) => this.route.sendSent(tag as SendTag));
    this.client.on('drop', (notice) => {
      // A refusal inside send() comes back in its result, which the route handles: counted once.
      if (this.#sending) return;
      const tag = notice.tag as SendTag | undefined;
      this.#log.warn({ session: tag?.session?.id, reason: notice.reason, bytes: notice.bytes }, 'message to upstream dropped');
      if (!tag) return;
      this.route.sendDropped(tag, new WshubError(notice.reason, `message to upstream ${this.name} not sent: ${ERROR_CATALOG[notice.reason].summary}`, { details: { bytes: notice.bytes } }));
    });
    this.client.on('drain', () => this.#resumeSenders());
  }

  start(): void {
    this.client.connect();
  }

  stats(): UpstreamStats {
    return this.client.stats();
  }

  pacerStats(): PacerStats {
    return this.pacer.stats();
  }

  /** Close for good (removed, or the hub is stopping): paused workers are released, no timer outlives it. */
  async close(code: number, reason: string): Promise<void> {
    this.pacer.close();
    this.#resumeSenders();
    await this.client.close(code, reason);
  }

  destroy(): void {
    this.pacer.close();
    this.#resumeSenders();
    this.client.destroy();
  }

  /** Refusals come back in the result (the route tells the sender); later drops through the client's `drop` event. */
  #send(frame: UpstreamFrame, tag: SendTag): SendResult {
    this.#sending = true;
    let result: SendResult;
    try {
      result = this.client.send(frame.data, { binary: frame.isBinary, tag });
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
    if (change.from === 'open' && change.to !== 'open') {
      this.gapStart = change.at;
      this.route.down(change.cause, change.to === 'closed');
    } else if (change.to === 'closed' && change.from !== 'open') {
      this.route.down(change.cause, true);
    }
    if (change.to === 'open') {
      if (this.gapStart !== undefined) this.lastGap = { start: this.gapStart, end: change.at };
      this.gapStart = undefined;
    }
    this.emit('state', change);
  }
}

