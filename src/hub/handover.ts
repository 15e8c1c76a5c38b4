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
 * Every message held back is counted (`ERR_FAILBACK_OVERLAP`). Answers to
 * the hub's own subscribes still go to the adapter: only publishes are held.
 */
import type { ErrorCode } from '../errors.js';
import type { MessageSource } from './pool.js';

interface TopicSeq {
  last: number;
  /** Which connection delivers this topic now. */
  from: 'current' | 'fresh';
}

export class Handover {
  readonly #bySequence: boolean;
  readonly #topics = new Map<string, TopicSeq>();
  #active = false;

  constructor(bySequence: boolean) {
    this.#bySequence = bySequence;
  }

  /** Whether anything needs checking (a failback in progress, or sequences kept from one). */
  get busy(): boolean {
    return this.#active || this.#topics.size > 0;
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
    if (!this.#active && source === 'current' && !t) return undefined;
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
