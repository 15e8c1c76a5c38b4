/**
 * The bounded outbound queue used while the upstream is not open. Bounded in
 * messages and bytes, each message with a deadline; what does not fit,
 * expires or is left behind at the final close is handed to `onDrop` with its
 * reason — never dropped silently. Expiry is checked by a timer armed for the
 * earliest deadline, so a message expires on time even if the upstream never
 * comes back (not only when the queue is flushed).
 */
import { WshubError } from '../errors.js';
import type { SendItem } from './sender.js';

export interface OutboxLimits {
  enabled: boolean;
  maxMessages: number;
  maxBytes: number;
  ttlMs: number;
}

export interface OutboxItem extends SendItem {
  readonly deadline: number;
}

export type DropReason = 'ERR_QUEUE_FULL' | 'ERR_QUEUE_EXPIRED' | 'ERR_QUEUE_DISABLED' | 'ERR_QUEUE_CLOSED';

export class Outbox {
  readonly #limits: OutboxLimits;
  readonly #onDrop: (item: OutboxItem, error: WshubError) => void;
  #items: OutboxItem[] = [];
  #bytes = 0;
  #timer: NodeJS.Timeout | undefined;
  #timerAt = Infinity;

  constructor(limits: OutboxLimits, onDrop: (item: OutboxItem, error: WshubError) => void) {
    this.#limits = limits;
    this.#onDrop = onDrop;
  }

  get messages(): number {
    return this.#items.length;
  }

  get bytes(): number {
    return this.#bytes;
  }

  /**
   * Queue a message, or return the error that refused it (the caller reports
   * the drop: it knows the tag and owns the `drop` event).
   */
  push(item: SendItem): WshubError | undefined {
    const limits = this.#limits;
    const bytes = item.bytes;
    if (!limits.enabled) {
      return new WshubError('ERR_QUEUE_DISABLED', 'ERR_QUEUE_DISABLED upstream not open and queue.enabled is false', { details: { bytes } });
    }
    if (this.#items.length + 1 > limits.maxMessages) {
      return new WshubError('ERR_QUEUE_FULL', `ERR_QUEUE_FULL queue holds ${this.#items.length} of queue.maxMessages=${limits.maxMessages} messages`,
        { details: { bytes, limit: 'maxMessages' } });
    }
    if (this.#bytes + bytes > limits.maxBytes) {
      return new WshubError('ERR_QUEUE_FULL', `ERR_QUEUE_FULL ${bytes} bytes do not fit: queue holds ${this.#bytes} of queue.maxBytes=${limits.maxBytes}`,
        { details: { bytes, limit: 'maxBytes' } });
    }
    // The TTL counts from when send() took the message: one that comes back from a dead connection keeps its age.
    const deadline = item.acceptedAt + (item.ttlMs ?? limits.ttlMs);
    if (deadline <= Date.now()) {
      return new WshubError('ERR_QUEUE_EXPIRED', `ERR_QUEUE_EXPIRED message of ${bytes} bytes not sent within its TTL`, { details: { bytes } });
    }
    this.#items.push({ ...item, deadline });
    this.#bytes += bytes;
    this.#arm(deadline);
    return undefined;
  }

  /** Remove and return every message still within its TTL, in order; expired ones are dropped first. */
  takeAll(): OutboxItem[] {
    this.expire();
    const items = this.#items;
    this.#items = [];
    this.#bytes = 0;
    this.#disarm();
    return items;
  }

  /** Drop every queued message with `ERR_QUEUE_CLOSED` (the final close). */
  dropAll(why: string): void {
    const items = this.#items;
    this.#items = [];
    this.#bytes = 0;
    this.#disarm();
    for (const item of items) {
      this.#onDrop(item, new WshubError('ERR_QUEUE_CLOSED', `ERR_QUEUE_CLOSED ${why}`, { details: { bytes: item.bytes } }));
    }
  }

  /** Drop the messages past their deadline; re-arm the timer for the next deadline. */
  expire(now = Date.now()): void {
    const expired: OutboxItem[] = [];
    const kept: OutboxItem[] = [];
    for (const item of this.#items) (item.deadline <= now ? expired : kept).push(item);
    if (expired.length > 0) {
      this.#items = kept;
      for (const item of expired) this.#bytes -= item.bytes;
    }
    this.#disarm();
    let next = Infinity;
    for (const item of this.#items) next = Math.min(next, item.deadline);
    if (next !== Infinity) this.#arm(next);
    for (const item of expired) {
      this.#onDrop(item, new WshubError('ERR_QUEUE_EXPIRED',
        `ERR_QUEUE_EXPIRED message of ${item.bytes} bytes not sent within its TTL while the upstream was not open`,
        { details: { bytes: item.bytes } }));
    }
  }

  #arm(deadline: number): void {
    if (deadline >= this.#timerAt) return;
    this.#disarm();
    this.#timerAt = deadline;
    // Unref'd: a queued message is no reason to keep the process alive.
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#timerAt = Infinity;
      this.expire();
    }, Math.max(0, deadline - Date.now()) + 1);
    this.#timer.unref();
  }

  #disarm(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = Infinity;
  }
}
