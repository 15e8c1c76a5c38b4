/**
 * Delivery across a failback, when two connections stream the same feed for
 * a while (pool.ts): which of their messages reach the sessions.
 *
 * With a sequence field (json `sequenceField`), delivery hands over per
 * topic where the sequences meet: the old connection keeps delivering a topic
 * until the new one delivers the next number in line; a number already
 * delivered is a duplicate, one ahead waits for the old connection to get
 * there. Nothing is delivered twice, and nothing is lost unless the old
 * connection dies before the new one catches up.
 *
 * Without one, only the delivering connection's messages go out: the old
 * one's until the switch, the new one's after — messages in flight at that
 * instant may be missed or seen twice (docs/upstream.md says so).
 *
 * Cluster mode hands over the same way when a hub gives its own connection
 * back and follows the holder's stream (HubUpstream.followCluster): while
 * its own connection delivers ({@link ownConnection}), the last number
 * delivered per topic is kept; after the switch ({@link toStream}) a stream
 * message numbered at or below it was already delivered and is held back,
 * and a topic is forgotten once the stream passes it. The comparison ends
 * {@link STREAM_COMPARE_MS} after the switch, so an upstream that numbers
 * again from 1 costs at most that long. Unlike a pool's failback the own
 * connection closes at the switch: nothing is delivered twice, but ticks
 * the holder's stream had passed before it opened here are missed.
 *
 * Every message held back is counted (`ERR_FAILBACK_OVERLAP`). Answers to
 * the hub's own subscribes still go to the adapter: only publishes are held.
 */
import type { ErrorCode } from '../errors.js';
import type { MessageSource } from './pool.js';

/** How long after a switch to the holder's stream its messages are compared with what the own connection delivered. */
export const STREAM_COMPARE_MS = 10_000;

interface TopicSeq {
  last: number;
  /** Which connection delivers this topic now. */
  from: 'current' | 'fresh';
}

export class Handover {
  readonly #bySequence: boolean;
  readonly #topics = new Map<string, TopicSeq>();
  #active = false;
  /** Cluster mode: this hub's own connection delivers; its sequences are kept for a switch to the holder's stream. */
  #own = false;
  /** After a switch to the holder's stream: until when (monotonic ms) its messages are compared. */
  #streamUntil = 0;

  constructor(bySequence: boolean) {
    this.#bySequence = bySequence;
  }

  /** Whether anything needs checking (a failback in progress, or sequences kept from one). */
  get busy(): boolean {
    return this.#active || this.#own || this.#topics.size > 0;
  }

  /** Whether the holder's stream must be compared with what the own connection delivered (see {@link admitStream}). */
  get comparingStream(): boolean {
    return this.#topics.size > 0 && this.#streamUntil > 0;
  }

  /** Cluster mode: this hub's own connection delivers from now on (holder, or local); with sequences, what it delivers is kept. */
  ownConnection(): void {
    this.#own = this.#bySequence;
    this.#streamUntil = 0;
    this.#topics.clear();
  }

  /** Cluster mode: the own connection is given back; the holder's stream delivers from now on, compared with what the own one delivered. */
  toStream(now = performance.now()): void {
    this.#own = false;
    this.#active = false;
    this.#streamUntil = now + STREAM_COMPARE_MS;
    for (const t of this.#topics.values()) t.from = 'current';
  }

  /** Whether a publish of `topic` from the holder's stream goes out: held back while at or below what the own connection delivered. */
  admitStream(topic: string | undefined, seq: number | undefined, now = performance.now()): ErrorCode | undefined {
    if (now > this.#streamUntil) {
      this.#topics.clear();
      this.#streamUntil = 0;
      return undefined;
    }
    if (topic === undefined || seq === undefined) return undefined;
    const t = this.#topics.get(topic);
    if (!t) return undefined;
    if (seq <= t.last) return 'ERR_FAILBACK_OVERLAP';
    this.#topics.delete(topic);
    if (this.#topics.size === 0) this.#streamUntil = 0;
    return undefined;
  }

  /** A failback began: the new connections subscribe. */
  begin(): void {
    this.#active = true;
    this.#topics.clear();
  }

  /** The switch: the new connections deliver, the old ones are stale. What was delivered per topic is kept for their first messages. */
  switched(): void {
    this.#active = false;
    for (const t of this.#topics.values()) t.from = 'current';
  }

  /** A connection reopened outside a failback: numbering may start again, nothing is compared with before. */
  reset(): void {
    if (!this.#active) this.#topics.clear();
  }

  /** Whether a publish of `topic` (with `seq`, if the adapter found one) from `source` goes out; else the reason it does not. */
  admit(source: MessageSource, topic: string | undefined, seq: number | undefined): ErrorCode | undefined {
    if (source === 'stale') return 'ERR_FAILBACK_OVERLAP';
    if (!this.#bySequence || topic === undefined || seq === undefined) {
      return source === 'fresh' ? 'ERR_FAILBACK_OVERLAP' : undefined;
    }
    const t = this.#topics.get(topic);
    if (!this.#active && source === 'current' && !t) {
      if (this.#own) this.#topics.set(topic, { last: seq, from: source });
      return undefined;
    }
    if (!t) {
      this.#topics.set(topic, { last: seq, from: source });
      return undefined;
    }
    if (t.from === source) {
      if (seq <= t.last) return 'ERR_FAILBACK_OVERLAP';
      t.last = seq;
      return undefined;
    }
    // The other connection: a duplicate, the next in line (it takes over), or ahead (the delivering one gets there first).
    if (seq === t.last + 1) {
      t.last = seq;
      t.from = source;
      return undefined;
    }
    return 'ERR_FAILBACK_OVERLAP';
  }
}
