/**
 * `ClusterBus`: the message plane of one upstream.
 *
 * The holder publishes each upstream message to
 * `wshub.<cluster>.<upstream>.m.<topic token>` (subjects.ts: any topic
 * becomes one NATS-safe token; messages without a topic use `_raw`), the
 * payload bytes as they came, with headers `Wshub-Epoch` (the lease epoch),
 * `Wshub-Seq` (per upstream, from 1 in each epoch) and `Wshub-Binary: 1` for
 * binary frames. Every publish asks the lease first (`holderEpoch()`, a
 * synchronous deadline check): a fenced hub publishes nothing.
 *
 * Other hubs subscribe to the topics their workers want, one NATS
 * subscription per topic, and get `{topic, data, isBinary, epoch, seq}`.
 * A message of an epoch older than the newest one seen (from messages or
 * from the lease via {@link ClusterBus.advanceEpoch}) comes from a holder
 * that has since lost the lease: it is dropped and counted.
 */
import { EventEmitter } from 'node:events';
import type { ClusterConnection } from './connect.js';
import type { Msg, Subscription } from './nats.js';
import { HEADER, UpstreamNames, tokenTopic, topicToken } from './subjects.js';

/** A message received from the holder. `data` is a view the NATS client does not reuse. */
export interface BusMessage {
  /** The topic; `null` for a message without one (raw). */
  topic: string | null;
  data: Uint8Array;
  isBinary: boolean;
  epoch: number;
  seq: number;
}

/** What the holder publishes. */
export interface BusPublish {
  topic: string | null;
  data: Uint8Array | string;
  isBinary: boolean;
}

/** The result of a publish: its sequence number, or why it was not published. */
export type PublishResult =
  | { ok: true; epoch: number; seq: number }
  /** `not-holder`: the lease is not (or no longer) held; `too-large`: over the server's max_payload; `closed`: the bus or connection is closed. */
  | { ok: false; reason: 'not-holder' | 'too-large' | 'closed' };

/** The lease as the bus sees it: the epoch to stamp with, or `undefined` when this hub must not publish. */
export interface HolderGuard {
  holderEpoch(): number | undefined;
}

export interface BusStats {
  published: number;
  /** Publishes refused because this hub did not hold the lease (a fenced holder's, typically). */
  publishRefusedNotHolder: number;
  publishRefusedTooLarge: number;
  received: number;
  droppedStaleEpoch: number;
  droppedMalformed: number;
  /** The newest epoch seen. */
  epoch: number;
}

export interface BusEvents {
  message: [BusMessage];
  /** A newer epoch was seen: the upstream is held by a new holding (a gap may lie between). */
  epoch: [{ from: number; to: number }];
}

export interface ClusterBusOptions {
  conn: ClusterConnection;
  cluster: string;
  upstream: string;
  /** The lease, for publishing; a bus without one only receives. */
  guard?: HolderGuard;
}

export class ClusterBus extends EventEmitter<BusEvents> {
  readonly names: UpstreamNames;
  readonly #conn: ClusterConnection;
  readonly #guard: HolderGuard | undefined;
  readonly #subs = new Map<string, Subscription>();
  readonly #stats: BusStats = { published: 0, publishRefusedNotHolder: 0, publishRefusedTooLarge: 0, received: 0, droppedStaleEpoch: 0, droppedMalformed: 0, epoch: 0 };
  #pubEpoch = 0;
  #pubSeq = 0;
  #closed = false;

  constructor(options: ClusterBusOptions) {
    super();
    this.#conn = options.conn;
    this.#guard = options.guard;
    this.names = new UpstreamNames(options.cluster, options.upstream);
  }

  get stats(): Readonly<BusStats> {
    return { ...this.#stats };
  }

  /** The newest epoch seen. */
  get epoch(): number {
    return this.#stats.epoch;
  }

  /** Holder side: publish one upstream message, stamped with the lease's epoch and the next sequence. */
  publish(message: BusPublish): PublishResult {
    if (this.#closed || this.#conn.nc.isClosed()) return { ok: false, reason: 'closed' };
    const epoch = this.#guard?.holderEpoch();
    if (epoch === undefined) {
      this.#stats.publishRefusedNotHolder++;
      return { ok: false, reason: 'not-holder' };
    }
    if (epoch !== this.#pubEpoch) {
      this.#pubEpoch = epoch;
      this.#pubSeq = 0;
    }
    const seq = this.#pubSeq + 1;
    const headers = this.#conn.lib.core.headers();
    headers.set(HEADER.epoch, String(epoch));
    headers.set(HEADER.seq, String(seq));
    if (message.isBinary) headers.set(HEADER.binary, '1');
    try {
      this.#conn.nc.publish(this.names.messageSubject(message.topic), message.data, { headers });
    } catch (err) {
      if (err instanceof this.#conn.lib.core.InvalidArgumentError) {
        this.#stats.publishRefusedTooLarge++;
        return { ok: false, reason: 'too-large' };
      }
      return { ok: false, reason: 'closed' };
    }
    this.#pubSeq = seq;
    this.#stats.published++;
    return { ok: true, epoch, seq };
  }

  /** Receive the messages of `topic` (`null`: messages without a topic). A no-op when already subscribed. */
  subscribe(topic: string | null): void {
    if (this.#closed) return;
    const token = topicToken(topic);
    if (this.#subs.has(token)) return;
    const sub = this.#conn.nc.subscribe(this.names.messageSubject(topic), {
      callback: (err, msg) => { if (!err) this.#receive(msg); },
    });
    this.#subs.set(token, sub);
  }

  /** Resolves once the server has every subscription made so far (a round trip). */
  async flush(): Promise<void> {
    await this.#conn.nc.flush();
  }

  /** Stop receiving `topic`. */
  unsubscribe(topic: string | null): void {
    const token = topicToken(topic);
    this.#subs.get(token)?.unsubscribe();
    this.#subs.delete(token);
  }

  /** The topics subscribed to (`null`: raw). */
  topics(): (string | null)[] {
    return [...this.#subs.keys()].map((token) => tokenTopic(token) as string | null);
  }

  /** Raise the newest epoch (e.g. from the lease's `holder` event), so an older holder's late messages are dropped. */
  advanceEpoch(epoch: number): void {
    if (epoch <= this.#stats.epoch) return;
    const from = this.#stats.epoch;
    this.#stats.epoch = epoch;
    this.emit('epoch', { from, to: epoch });
  }

  /** Unsubscribe everything; later publishes return `closed` (idempotent). */
  close(): void {
    this.#closed = true;
    for (const sub of this.#subs.values()) sub.unsubscribe();
    this.#subs.clear();
  }

  #receive(msg: Msg): void {
    const epoch = positiveInt(msg.headers?.get(HEADER.epoch));
    const seq = positiveInt(msg.headers?.get(HEADER.seq));
    const topic = msg.subject.startsWith(this.names.messagePrefix) ? tokenTopic(msg.subject.slice(this.names.messagePrefix.length)) : undefined;
    if (epoch === undefined || seq === undefined || topic === undefined) {
      this.#stats.droppedMalformed++;
      return;
    }
    if (epoch < this.#stats.epoch) {
      this.#stats.droppedStaleEpoch++;
      return;
    }
    this.advanceEpoch(epoch);
    this.#stats.received++;
    this.emit('message', { topic, data: msg.data, isBinary: msg.headers?.get(HEADER.binary) === '1', epoch, seq });
  }
}

function positiveInt(value: string | undefined): number | undefined {
  if (value === undefined || !/^[1-9][0-9]{0,15}$/.test(value)) return undefined;
  return Number(value);
}
