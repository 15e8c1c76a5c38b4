/**
 * The two ends of worker traffic between hubs of a cluster (docs/cluster.md).
 *
 * - {@link ForwardLink}, on a hub that follows: the route's link. Frames the
 *   local adapter made (worker frames with ids already rewritten to this
 *   hub's, subscribes rendered from control intents) go to the holder by NATS
 *   request/reply, in order; the holder acknowledges each once its upstream
 *   client accepted it. While the holder's stream is not open they wait in a
 *   bounded queue for its next open (or expire), as they would in the
 *   upstream client's outage queue.
 * - {@link RemoteSession}, on the holder: one per following hub. The
 *   holder's adapter sees it as one more transparent worker — the follower's
 *   frames come in as that worker's, so subscribes are deduplicated across
 *   hubs and ids rewritten once more, never colliding. Its answers,
 *   acknowledgements and per-session notifications go back to that hub
 *   (`ClusterBus.unicast`), where they arrive as upstream messages and the
 *   hub's own adapter hands each to its worker. Topic messages do not go
 *   through it: the bus publishes each once per topic for every hub.
 *
 * Flow control across hubs: while the holder's upstream client is over its
 * high-water mark, the holder holds back the acknowledgements of the hub that
 * sent (its RemoteSession is paused like a worker socket); that hub's
 * in-flight bytes grow past its own mark and its sending workers stop being
 * read. Memory is bounded on both sides: `sendBufferBytes` of the upstream's
 * client options, for what is in flight plus what waits.
 */
import type { ControlIntent, UpstreamFrame } from '../adapters/types.js';
import type { ClusterBus, ClusterRequests, Replier } from '../cluster/index.js';
import { ERROR_CATALOG, WshubError, isWshubError } from '../errors.js';
import {
  DEFAULT_HIGH_WATER_MARK_BYTES, DEFAULT_QUEUE_MAX_BYTES, DEFAULT_QUEUE_MAX_MESSAGES, DEFAULT_QUEUE_TTL_MS, DEFAULT_SEND_BUFFER_BYTES,
} from '../upstream/defaults.js';
import type { SendResult, UpstreamStats } from '../upstream/types.js';
import { frame as makeFrame } from './frame.js';
import type { Route, RouteLink, SendTag } from './route.js';
import { Session, type SessionOutlet } from './session.js';
import type { PacedSink, ReadPacer } from './pacer.js';
import type { PausableReader } from './upstream.js';

type Sends = NonNullable<UpstreamStats['sends']>;

/** What a {@link ForwardLink} needs of its hub. */
export interface ForwardLinkOptions {
  upstream: string;
  requests: ClusterRequests;
  bus: ClusterBus;
  route: Route;
  /** The upstream's client options (`highWaterMarkBytes`, `sendBufferBytes`, `queue`). */
  client: Record<string, unknown>;
  timeoutMs: number;
  /** In-flight bytes fell under the mark: paused workers may send again. */
  drained: () => void;
}

interface Waiting {
  frame: UpstreamFrame;
  tag: SendTag;
  bytes: number;
  at: number;
}

/** Follower side: the route's frames, forwarded to the holder. */
export class ForwardLink implements RouteLink {
  readonly #o: ForwardLinkOptions;
  readonly #highWater: number;
  readonly #maxBytes: number;
  readonly #queueTtlMs: number;
  readonly #queueEnabled: boolean;
  readonly #queueMaxMessages: number;
  readonly #queueMaxBytes: number;
  readonly #queue: Waiting[] = [];
  #queuedBytes = 0;
  #inFlightBytes = 0;
  #inFlight = 0;
  #waiting = false;
  #open = false;
  #sweep: NodeJS.Timeout | undefined;
  readonly #sends: Sends = { accepted: 0, sent: 0, dropped: 0, held: 0, heldBytes: 0, droppedByReason: {} };

  constructor(options: ForwardLinkOptions) {
    this.#o = options;
    const c = options.client;
    const queue = (c.queue ?? {}) as { enabled?: boolean; ttlMs?: number; maxMessages?: number; maxBytes?: number };
    this.#highWater = typeof c.highWaterMarkBytes === 'number' ? c.highWaterMarkBytes : DEFAULT_HIGH_WATER_MARK_BYTES;
    this.#maxBytes = typeof c.sendBufferBytes === 'number' ? c.sendBufferBytes : DEFAULT_SEND_BUFFER_BYTES;
    this.#queueTtlMs = queue.ttlMs ?? DEFAULT_QUEUE_TTL_MS;
    this.#queueEnabled = queue.enabled ?? true;
    this.#queueMaxMessages = queue.maxMessages ?? DEFAULT_QUEUE_MAX_MESSAGES;
    this.#queueMaxBytes = queue.maxBytes ?? DEFAULT_QUEUE_MAX_BYTES;
  }

  /** Accepted = sent + dropped + held (in flight or waiting). */
  stats(): Sends {
    return { ...this.#sends, held: this.#inFlight + this.#queue.length, heldBytes: this.#inFlightBytes + this.#queuedBytes, droppedByReason: { ...this.#sends.droppedByReason } };
  }

  isOpen(): boolean {
    return this.#open;
  }

  /** The holder's stream opened: what waited goes out, oldest first (after the adapter's replay, which the route sent already). */
  opened(): void {
    this.#open = true;
    this.#expire();
    for (const w of this.#queue.splice(0)) {
      this.#queuedBytes -= w.bytes;
      this.#forward(w);
    }
  }

  /** The holder's stream went down: frames wait for the next open. */
  closed(): void {
    this.#open = false;
  }

  send(frame: UpstreamFrame, tag: SendTag): SendResult {
    const bytes = typeof frame.data === 'string' ? Buffer.byteLength(frame.data) : frame.data.length;
    if (this.#inFlightBytes + this.#queuedBytes + bytes > this.#maxBytes) {
      const error = new WshubError('ERR_SEND_BUFFER_FULL', `message to upstream ${this.#o.upstream} not sent: ${ERROR_CATALOG.ERR_SEND_BUFFER_FULL.summary}`, { details: { bytes } });
      this.#count(error.code);
      this.#sends.accepted++;
      return { ok: false, error };
    }
    const refusal = this.#open ? undefined
      : !this.#queueEnabled ? new WshubError('ERR_QUEUE_DISABLED', `upstream ${this.#o.upstream} has no holder stream open and its queue is disabled; message not sent`)
        : this.#queue.length >= this.#queueMaxMessages || this.#queuedBytes + bytes > this.#queueMaxBytes
          ? new WshubError('ERR_QUEUE_FULL', `upstream ${this.#o.upstream} has no holder stream open and its queue is full; message not sent`, { details: { bytes } })
          : undefined;
    if (refusal) {
      this.#count(refusal.code);
      this.#sends.accepted++;
      return { ok: false, error: refusal };
    }
    this.#sends.accepted++;
    const waiting: Waiting = { frame, tag, bytes, at: performance.now() };
    if (this.#open) this.#forward(waiting);
    else {
      this.#queue.push(waiting);
      this.#queuedBytes += bytes;
      this.#sweep ??= setInterval(() => this.#expire(), Math.min(1000, this.#queueTtlMs)).unref();
    }
    const wait = this.#inFlightBytes + this.#queuedBytes > this.#highWater;
    if (wait) this.#waiting = true;
    return { ok: true, queued: !this.#open, wait };
  }

  /** Subscribes and unsubscribes, rendered by the adapter as it would for its own connection; the holder paces them upstream. */
  control(intents: readonly ControlIntent[]): void {
    const adapter = this.#o.route.adapter;
    if (!this.#open) {
      // Replayed when the holder's stream opens, as a connection that is down replays on its open.
      this.#o.route.apply(adapter.controlDropped?.(intents) ?? {});
      return;
    }
    for (const intent of intents) {
      const frame = adapter.renderControl?.(intent.kind, [intent]);
      if (!frame) continue;
      const tag: SendTag = { session: undefined, adapterTag: frame.tag, origin: undefined };
      const result = this.send(frame, tag);
      if (!result.ok) this.#o.route.sendDropped(tag, result.error);
    }
  }

  /** Drop what waits (the upstream is closing here). */
  close(): void {
    this.#open = false;
    clearInterval(this.#sweep);
    this.#sweep = undefined;
    for (const w of this.#queue.splice(0)) this.#drop(w, new WshubError('ERR_QUEUE_CLOSED', `upstream ${this.#o.upstream} closed with the message queued`));
    this.#queuedBytes = 0;
  }

  #forward(w: Waiting): void {
    this.#inFlight++;
    this.#inFlightBytes += w.bytes;
    this.#o.requests.forward({ kind: 'send', data: w.frame.data, isBinary: w.frame.isBinary }, { timeoutMs: this.#o.timeoutMs, epoch: this.#o.bus.epoch }).then(
      () => {
        this.#sends.sent++;
        this.#o.route.sendSent(w.tag);
      },
      (err: unknown) => this.#count((this.#error(err)).code, () => this.#o.route.sendDropped(w.tag, this.#error(err))),
    ).finally(() => {
      this.#inFlight--;
      this.#inFlightBytes -= w.bytes;
      if (this.#waiting && this.#inFlightBytes + this.#queuedBytes <= this.#highWater / 2) {
        this.#waiting = false;
        this.#o.drained();
      }
    });
  }

  #error(err: unknown): WshubError {
    return isWshubError(err) ? err : new WshubError('ERR_UPSTREAM_UNAVAILABLE', `forwarding to the holder of ${this.#o.upstream} failed: ${(err as Error).message}`, { cause: err });
  }

  #expire(): void {
    const limit = performance.now() - this.#queueTtlMs;
    while (this.#queue.length > 0 && this.#queue[0]!.at <= limit) {
      const w = this.#queue.shift()!;
      this.#queuedBytes -= w.bytes;
      this.#drop(w, new WshubError('ERR_QUEUE_EXPIRED', `message to upstream ${this.#o.upstream} waited ${this.#queueTtlMs} ms for the holder and was discarded`));
    }
    if (this.#queue.length === 0) {
      clearInterval(this.#sweep);
      this.#sweep = undefined;
    }
  }

  #drop(w: Waiting, error: WshubError): void {
    this.#count(error.code, () => this.#o.route.sendDropped(w.tag, error));
  }

  #count(code: string, tell?: () => void): void {
    this.#sends.dropped++;
    this.#sends.droppedByReason![code] = (this.#sends.droppedByReason![code] ?? 0) + 1;
    tell?.();
  }
}

function isReplier(value: unknown): value is Replier {
  return typeof value === 'object' && value !== null && typeof (value as Partial<Replier>).fail === 'function';
}

const NOTHING = makeFrame(Buffer.alloc(0), false);

/** A remote hub's stand-in for a connection: never behind, never closed by the holder (that hub closes its own workers). */
class RemoteOutlet implements SessionOutlet {
  readonly id: string;
  closed = false;
  readonly backlogBytes = 0;

  constructor(id: string) {
    this.id = id;
  }

  deliver(): void {
    // Topic messages reach the remote hub through the bus, once per topic; nothing is written here.
  }

  end(): Promise<void> {
    // What the remote hub's workers see of an outage is decided there, from the state the holder publishes.
    return Promise.resolve();
  }
}

/** Holder side: one following hub, seen by the holder's adapter as one transparent worker. */
export class RemoteSession extends Session implements PausableReader {
  readonly hubId: string;
  readonly #bus: ClusterBus;
  readonly #pausedBy = new Set<object>();
  /** Acknowledgements held while the upstream client is over its mark. */
  readonly #held: Replier[] = [];
  /** Frames this hub's answers could not be sent back for (not the holder any more, NATS closed). */
  unicastFailed = 0;
  /** Errors about this hub's frames that no forward was waiting for (its own adapter times its requests out). */
  untold = 0;
  #current: Replier | undefined;
  #failed = false;

  constructor(upstream: string, hubId: string, bus: ClusterBus) {
    const id = `hub:${hubId}`;
    // The session's error callback is fixed at construction, before `this` exists: it reaches #told through this relay.
    const relay: { to?: (error: WshubError, origin: unknown) => void } = {};
    super({
      id, upstream, outlet: new RemoteOutlet(id), encoder: { message: () => NOTHING, own: () => NOTHING }, transparent: true,
      onError: (error, origin) => relay.to?.(error, origin),
    });
    relay.to = (error, origin) => this.#told(error, origin);
    this.hubId = hubId;
    this.#bus = bus;
  }

  /** A frame forwarded by this hub: routed as its worker's; acknowledged unless the route refused it (then the refusal is the answer). */
  handle(route: Route, data: Buffer, isBinary: boolean, replier: Replier): void {
    this.#current = replier;
    this.#failed = false;
    try {
      route.fromSession(this, data, isBinary, replier);
    } finally {
      this.#current = undefined;
    }
    if (!this.#failed) this.acknowledge(replier);
  }

  #told(error: WshubError, origin: unknown): void {
    if (origin !== undefined && origin === this.#current) this.#failed = true;
    if (isReplier(origin)) origin.fail(error.code, error.message);
    else this.untold++;
  }

  override deliver(): void {
    // See RemoteOutlet.deliver.
  }

  override reply(data: Buffer, isBinary: boolean): void {
    if (!this.#bus.unicast(this.hubId, data, isBinary).ok) this.unicastFailed++;
  }

  /** Acknowledge a forwarded frame now, or once the upstream client drains. */
  acknowledge(replier: Replier): void {
    if (this.#pausedBy.size > 0) this.#held.push(replier);
    else replier.reply('', false);
  }

  pauseReading(by: object): void {
    this.#pausedBy.add(by);
  }

  resumeReading(by: object): void {
    this.#pausedBy.delete(by);
    if (this.#pausedBy.size > 0) return;
    for (const replier of this.#held.splice(0)) replier.reply('', false);
  }

  /**
   * The holding ended: acknowledgements still held go out as failures. Their
   * frames sat in a client over its mark that is closing now, so the
   * sending hub counts them lost and tells its workers, rather than
   * believing them sent.
   */
  release(reason: string): void {
    (this.outlet as RemoteOutlet).closed = true;
    for (const replier of this.#held.splice(0)) replier.fail('ERR_UPSTREAM_UNAVAILABLE', reason);
  }
}

/**
 * Holder side: the other hubs' pace. A following hub whose workers fall
 * behind the stream says so (bus `pace`), and the holder holds its upstream's
 * reading for it exactly as for one of its own sessions, so TCP backpressure
 * reaches the upstream for workers on every hub. Like a local session, a hub
 * still behind after `slowAfterMs` is slow: it stops pacing, and its own
 * sessions' slow-consumer policies deal with the rest (drops there, counted
 * there) until it says it caught up.
 */
export class RemotePacing {
  readonly #pacer: ReadPacer;
  readonly #hubs = new Map<string, PacedSink & { slow: boolean }>();

  constructor(pacer: ReadPacer) {
    this.#pacer = pacer;
  }

  /** Hubs holding the upstream's reading now. */
  get holding(): number {
    let n = 0;
    for (const sink of this.#hubs.values()) if (!sink.slow) n++;
    return n;
  }

  pace(hubId: string, behind: boolean): void {
    let sink = this.#hubs.get(hubId);
    if (!sink) {
      const created: PacedSink & { slow: boolean } = { slow: false, markSlow: () => { created.slow = true; } };
      this.#hubs.set(hubId, (sink = created));
    }
    if (!behind) {
      sink.slow = false;
      this.#pacer.release(sink);
      this.#hubs.delete(hubId);
    } else if (!sink.slow) this.#pacer.hold(sink);
  }

  /** The hub left (or this hub stopped holding): it holds nothing any more. */
  forget(hubId: string): void {
    const sink = this.#hubs.get(hubId);
    if (!sink) return;
    this.#hubs.delete(hubId);
    this.#pacer.release(sink);
  }

  clear(): void {
    for (const hubId of [...this.#hubs.keys()]) this.forget(hubId);
  }
}
