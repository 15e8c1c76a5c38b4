/**
 * One configured upstream inside the hub: its ResilientWebSocket, its router
 * and its adapter, wired together.
 */
import { EventEmitter } from 'node:events';
import { JsonAdapter } from '../adapters/json.js';
import { JsonRpcAdapter } from '../adapters/jsonrpc.js';
import { RawAdapter } from '../adapters/raw.js';
import type { Adapter, AdapterContext } from '../adapters/types.js';
import { ERROR_CATALOG, WshubError } from '../errors.js';
import type { Logger } from '../observe/log.js';
import { ResilientWebSocket } from '../upstream/resilient.js';
import type { SendResult, StateChange, UpstreamStats } from '../upstream/types.js';
import type { UpstreamConfig } from './config.js';
import { Route } from './route.js';
import type { Session } from './session.js';

/** Builds the adapter of an upstream; the jsonrpc adapter registers itself here. */
export type AdapterFactory = (ctx: AdapterContext, config: UpstreamConfig) => Adapter;

export const ADAPTERS: Partial<Record<UpstreamConfig['adapter'], AdapterFactory>> = {
  raw: (ctx, config) => new RawAdapter(ctx, config.topic === undefined ? {} : { topic: config.topic }),
  json: (ctx, config) =>
    new JsonAdapter(ctx, {
      topic: config.topic!,
      subscribe: config.subscribe!,
      unsubscribe: config.unsubscribe!,
      ...(config.ack === undefined ? {} : { ack: config.ack }),
      ...(config.idField === undefined ? {} : { idField: config.idField }),
      ...(config.requestTimeoutMs === undefined ? {} : { requestTimeoutMs: config.requestTimeoutMs }),
    }),
  jsonrpc: (ctx, config) => JsonRpcAdapter.fromConfig(ctx, config),
};

export interface HubUpstreamEvents {
  state: [StateChange];
}

/** Drops of worker sends while the upstream was down, per reason, attributed to sessions. */
export interface UpstreamSendDrops {
  [reason: string]: number;
}

export class HubUpstream extends EventEmitter<HubUpstreamEvents> {
  readonly name: string;
  readonly config: UpstreamConfig;
  readonly client: ResilientWebSocket;
  readonly route: Route;
  readonly adapter: Adapter;
  /** The last state change, for `state` frames to late joiners and /status. */
  lastChange: StateChange | undefined;
  /** When the current outage began (first non-open state after an open), for gap reporting. */
  gapStart: number | undefined;
  /** The last outage that ended: from leaving `open` to being `open` again. */
  lastGap: { start: number; end: number } | undefined;
  readonly history: StateChange[] = [];
  /** Upstream messages lost to a failure inside the hub (should stay 0; counted so it can't hide). */
  routingErrors = 0;
  readonly #log: Logger;
  #opened = false;

  constructor(config: UpstreamConfig, logger: Logger) {
    super();
    this.name = config.name;
    this.config = config;
    this.#log = logger.child({ upstream: config.name });
    // The client adds its own `upstream` field to every line; giving it the child logger would print it twice.
    this.client = new ResilientWebSocket({ ...(config.client as { url: string }), logger });
    this.route = new Route({
      name: config.name,
      logger: this.#log,
      send: (data, isBinary, session) => this.#send(data, isBinary, session),
      isOpen: () => this.client.state === 'open',
    });
    const factory = ADAPTERS[config.adapter];
    if (!factory) throw new WshubError('ERR_INVALID_OPTION', `upstreams.${config.name}.adapter: adapter "${config.adapter}" is not available`);
    this.adapter = factory(this.route, config);
    this.route.adapter = this.adapter;

    this.client.on('message', (data, isBinary) => {
      try {
        this.route.fromUpstream(data, isBinary);
      } catch (err) {
        // A routing bug must cost one message, never the process or the upstream connection.
        this.routingErrors++;
        this.#log.error({ err }, 'routing an upstream message failed; message dropped');
      }
    });
    this.client.on('open', () => {
      const reconnect = this.#opened;
      this.#opened = true;
      this.adapter.onUpstreamOpen(reconnect);
    });
    this.client.on('state', (change) => this.#onState(change));
    this.client.on('drop', (notice) => {
      const session = notice.tag as Session | undefined;
      this.#log.warn({ session: session?.id, reason: notice.reason, bytes: notice.bytes }, 'worker message to upstream dropped');
      if (!session) return;
      session.upstreamDrops[notice.reason] = (session.upstreamDrops[notice.reason] ?? 0) + 1;
      session.onError?.(new WshubError(notice.reason, `message to upstream ${this.name} not sent: ${ERROR_CATALOG[notice.reason].summary}`, { details: { bytes: notice.bytes } }));
    });
  }

  start(): void {
    this.client.connect();
  }

  stats(): UpstreamStats {
    return this.client.stats();
  }

  /** A refusal is also reported through the client's `drop` event, which counts it on the session and tells it. */
  #send(data: Buffer | string, isBinary: boolean, session: Session | undefined): SendResult {
    return this.client.send(data, { binary: isBinary, tag: session });
  }

  #onState(change: StateChange): void {
    this.lastChange = change;
    this.history.push(change);
    if (this.history.length > 50) this.history.shift();
    if (change.from === 'open' && change.to !== 'open') {
      this.gapStart = change.at;
      this.adapter.onUpstreamDown(change.cause, change.to === 'closed');
    } else if (change.to === 'closed' && change.from !== 'open') {
      this.adapter.onUpstreamDown(change.cause, true);
    }
    if (change.to === 'open') {
      if (this.gapStart !== undefined) this.lastGap = { start: this.gapStart, end: change.at };
      this.gapStart = undefined;
    }
    this.emit('state', change);
  }
}
