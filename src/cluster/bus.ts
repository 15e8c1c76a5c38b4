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
 *
 * Two more streams, both guarded by the lease like messages: `unicast` sends
 * a frame to one hub (`wshub.<cluster>.<upstream>.hub.<hub id>`: the answers,
 * acknowledgements and per-session notifications the holder's adapter made
 * for that hub's workers), and `publishState` tells every hub the upstream's
 * state (`….state`, JSON). A hub receives both after `listen(hubId)`.
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

/** The upstream as the holder sees it, published on every change and every renew interval. */
export interface HolderStatus {
  /** The holder's upstream state: `idle` | `connecting` | `open` | `reconnecting` | `closed`. */
  state: string;
  reason: string;
  /** The holder reports the failure as an outage (past `concealFailures`). */
  outage: boolean;
  /** The holder's hub name. */
  hub: string;
  /** Wall-clock ms of the holder's last state change. */
  since: number;
}

/** A frame or a state received after `listen()`. */
export interface BusUnicast {
  data: Uint8Array;
  isBinary: boolean;
  epoch: number;
}

export interface BusStats {
  published: number;
  /** Publishes refused because this hub did not hold the lease (a fenced holder's, typically). */
  publishRefusedNotHolder: number;
  publishRefusedTooLarge: number;
  received: number;
  /** Frames sent to one hub (holder side). */
  unicast: number;
  /** Frames received for this hub's workers. */
  unicastReceived: number;
  droppedStaleEpoch: number;
  droppedMalformed: number;
  /** Messages of subscribed subjects that never arrived (jumps in their per-subject sequence within an epoch). */
  missed: number;
  /** Pace signals sent (a follower's workers fell behind or caught up) and received (holder). */
  paceSent: number;
  paceReceived: number;
  /** The newest epoch seen. */
  epoch: number;
}

export interface BusEvents {
  message: [BusMessage];
  /** A newer epoch was seen: the upstream is held by a new holding (a gap may lie between). */
  epoch: [{ from: number; to: number }];
  /** After `listen()`: a frame the holder made for this hub's workers. */
  unicast: [BusUnicast];
  /** After `listen()`: the holder's upstream state. */
  state: [HolderStatus & { epoch: number }];
  /** Messages of a subscribed subject that NATS never delivered (counted in `missed`). */
  missed: [{ topic: string | null; count: number; epoch: number }];
  /** After `listenPace(true)` (holder side): a hub's workers fell behind or caught up. */
  pace: [BusPace];
}

/** A hub's pace: whether its workers are behind the holder's stream. */
export interface BusPace {
  hub: string;
  behind: boolean;
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
  readonly #listening: Subscription[] = [];
  #paceSub: Subscription | undefined;
  readonly #stats: BusStats = { published: 0, publishRefusedNotHolder: 0, publishRefusedTooLarge: 0, received: 0, unicast: 0, unicastReceived: 0, droppedStaleEpoch: 0, droppedMalformed: 0, missed: 0, paceSent: 0, paceReceived: 0, epoch: 0 };
  #pubEpoch = 0;
  #pubSeq = 0;
  /** Holder: the last sequence per subject this epoch. */
  readonly #pubSubjectSeq = new Map<string, number>();
  /** Receiver: the last sequence seen per subject (and its epoch), to find what NATS lost. */
  readonly #seenSubjectSeq = new Map<string, { epoch: number; seq: number }>();
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
    const epoch = this.#holderEpoch();
    if (typeof epoch !== 'number') return epoch;
    if (epoch !== this.#pubEpoch) {
      this.#pubEpoch = epoch;
      this.#pubSeq = 0;
      this.#pubSubjectSeq.clear();
    }
    const seq = this.#pubSeq + 1;
    const subject = this.names.messageSubject(message.topic);
    const subjectSeq = (this.#pubSubjectSeq.get(subject) ?? 0) + 1;
    const sent = this.#send(subject, message.data, message.isBinary, epoch, seq, subjectSeq);
    if (sent) return sent;
    this.#pubSeq = seq;
    this.#pubSubjectSeq.set(subject, subjectSeq);
    this.#stats.published++;
    return { ok: true, epoch, seq };
  }

  /** Holder side: a frame for one hub's workers alone (answers, acknowledgements, per-session notifications). */
  unicast(hubId: string, data: Uint8Array | string, isBinary: boolean): PublishResult {
    const epoch = this.#holderEpoch();
    if (typeof epoch !== 'number') return epoch;
    const sent = this.#send(this.names.hubSubject(hubId), data, isBinary, epoch, undefined);
    if (sent) return sent;
    this.#stats.unicast++;
    return { ok: true, epoch, seq: 0 };
  }

  /** Holder side: tell every hub the upstream's state. */
  publishState(status: HolderStatus): PublishResult {
    const epoch = this.#holderEpoch();
    if (typeof epoch !== 'number') return epoch;
    return this.#send(this.names.stateSubject, JSON.stringify(status), false, epoch, undefined) ?? { ok: true, epoch, seq: 0 };
  }

  /** Receive the frames the holder sends this hub (`unicast` events) and the holder's state (`state` events). */
  listen(hubId: string): void {
    if (this.#closed || this.#listening.length > 0) return;
    this.#listening.push(
      this.#conn.nc.subscribe(this.names.hubSubject(hubId), { callback: (err, msg) => { if (!err) this.#receiveUnicast(msg); } }),
      this.#conn.nc.subscribe(this.names.stateSubject, { callback: (err, msg) => { if (!err) this.#receiveState(msg); } }),
    );
  }

  /**
   * Tell the holder this hub's workers are behind (`true`) or caught up.
   * Core NATS, at most once: a lost `true` costs drops the hub counts, a lost
   * `false` holds the holder back for its `slowAfterMs` at most.
   */
  pace(hubId: string, behind: boolean): void {
    if (this.#closed || this.#conn.nc.isClosed()) return;
    this.#stats.paceSent++;
    try {
      this.#conn.nc.publish(this.names.paceSubject, JSON.stringify({ hub: hubId, behind }));
    } catch {
      // Closed or draining: the holder's slowAfterMs bounds what the lost signal costs.
    }
  }

  /** Holder side: receive the other hubs' pace (`pace` events) while `on`. */
  listenPace(on: boolean): void {
    if (!on || this.#closed) {
      this.#paceSub?.unsubscribe();
      this.#paceSub = undefined;
      return;
    }
    this.#paceSub ??= this.#conn.nc.subscribe(this.names.paceSubject, { callback: (err, msg) => { if (!err) this.#receivePace(msg); } });
  }

  #receivePace(msg: Msg): void {
    try {
      const v = JSON.parse(new TextDecoder().decode(msg.data)) as Partial<BusPace>;
      if (typeof v.hub !== 'string' || typeof v.behind !== 'boolean') throw new TypeError('no hub or behind');
      this.#stats.paceReceived++;
      this.emit('pace', { hub: v.hub, behind: v.behind });
    } catch {
      this.#stats.droppedMalformed++;
    }
  }

  #holderEpoch(): number | Extract<PublishResult, { ok: false }> {
    if (this.#closed || this.#conn.nc.isClosed()) return { ok: false, reason: 'closed' };
    const epoch = this.#guard?.holderEpoch();
    if (epoch === undefined) {
      this.#stats.publishRefusedNotHolder++;
      return { ok: false, reason: 'not-holder' };
    }
    return epoch;
  }

  /** Publish with the stamps; a refusal, or undefined once sent. */
  #send(subject: string, data: Uint8Array | string, isBinary: boolean, epoch: number, seq: number | undefined, subjectSeq?: number): Extract<PublishResult, { ok: false }> | undefined {
    const headers = this.#conn.lib.core.headers();
    headers.set(HEADER.epoch, String(epoch));
    if (seq !== undefined) headers.set(HEADER.seq, String(seq));
    if (subjectSeq !== undefined) headers.set(HEADER.subjectSeq, String(subjectSeq));
    if (isBinary) headers.set(HEADER.binary, '1');
    try {
      this.#conn.nc.publish(subject, data, { headers });
    } catch (err) {
      if (err instanceof this.#conn.lib.core.InvalidArgumentError) {
        this.#stats.publishRefusedTooLarge++;
        return { ok: false, reason: 'too-large' };
      }
      return { ok: false, reason: 'closed' };
    }
    return undefined;
  }

  /** Receive the messages of `topic` (`null`: messages without a topic). A no-op when already subscribed. */
  subscribe(topic: string | null): void {
    if (this.#closed) return;
    const token = topicToken(topic);
    if (this.#subs.has(token)) return;
    // A subscription joins the stream mid-way: its first message sets where the subject's sequence stands.
    this.#seenSubjectSeq.delete(this.names.messageSubject(topic));
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
    for (const sub of [...this.#subs.values(), ...this.#listening]) sub.unsubscribe();
    this.listenPace(false);
    this.#subs.clear();
    this.#listening.length = 0;
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
    this.#checkSubjectSeq(msg, topic, epoch);
    this.emit('message', { topic, data: msg.data, isBinary: msg.headers?.get(HEADER.binary) === '1', epoch, seq });
  }

  /** A jump in a subject's sequence within one epoch: NATS lost messages (a slow consumer cut off, a reconnect). */
  #checkSubjectSeq(msg: Msg, topic: string | null, epoch: number): void {
    const seq = positiveInt(msg.headers?.get(HEADER.subjectSeq));
    if (seq === undefined) return;
    const last = this.#seenSubjectSeq.get(msg.subject);
    this.#seenSubjectSeq.set(msg.subject, { epoch, seq });
    if (!last || last.epoch !== epoch || seq <= last.seq + 1) return;
    const count = seq - last.seq - 1;
    this.#stats.missed += count;
    this.emit('missed', { topic, count, epoch });
  }

  #receiveUnicast(msg: Msg): void {
    const epoch = this.#fresh(msg);
    if (epoch === undefined) return;
    this.#stats.unicastReceived++;
    this.emit('unicast', { data: msg.data, isBinary: msg.headers?.get(HEADER.binary) === '1', epoch });
  }

  #receiveState(msg: Msg): void {
    const epoch = this.#fresh(msg);
    if (epoch === undefined) return;
    let status: HolderStatus;
    try {
      const v = JSON.parse(new TextDecoder().decode(msg.data)) as Partial<HolderStatus>;
      if (typeof v.state !== 'string') throw new TypeError('no state');
      status = { state: v.state, reason: typeof v.reason === 'string' ? v.reason : '', outage: v.outage === true, hub: typeof v.hub === 'string' ? v.hub : '', since: typeof v.since === 'number' ? v.since : 0 };
    } catch {
      this.#stats.droppedMalformed++;
      return;
    }
    this.emit('state', { ...status, epoch });
  }

  /** The epoch of a unicast or state message, or undefined when it is malformed or stale (counted). */
  #fresh(msg: Msg): number | undefined {
    const epoch = positiveInt(msg.headers?.get(HEADER.epoch));
    if (epoch === undefined) {
      this.#stats.droppedMalformed++;
      return undefined;
    }
    if (epoch < this.#stats.epoch) {
      this.#stats.droppedStaleEpoch++;
      return undefined;
    }
    this.advanceEpoch(epoch);
    return epoch;
  }
}

function positiveInt(value: string | undefined): number | undefined {
  if (value === undefined || !/^[1-9][0-9]{0,15}$/.test(value)) return undefined;
  return Number(value);
}
