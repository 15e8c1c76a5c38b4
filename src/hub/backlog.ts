/**
 * The backlog of one worker connection: what waits because its socket is
 * behind. A pure structure — no sockets, no timers — bounded in bytes, where
 * the slow-consumer policy decides what goes when the bound is reached:
 *
 * - `drop-oldest`: the oldest waiting messages are dropped to make room
 *   (`ERR_DROP_OLDEST`).
 * - `conflate`: a waiting message is replaced by a newer one with the same
 *   key — upstream and topic — (`ERR_DROP_CONFLATED`: a price feed only needs
 *   the latest price); past the bound the oldest go as under `drop-oldest`.
 * - `disconnect`: `push` answers `overflow` and the caller closes the session
 *   (`ERR_SLOW_CONSUMER`).
 *
 * Items marked `keep` (answers to a worker's own requests, the hub's notices)
 * are never dropped by the policy: a worker that asked must get its answer.
 * They still count against the bound; a backlog full of them overflows, which
 * only a peer that sends requests and never reads the answers can cause.
 *
 * Every drop is handed to `onDrop` with its reason, so nothing leaves
 * uncounted. Memory follows the bound: a dropped item's frame is released at
 * once and the array is compacted as it goes.
 */

export type SlowConsumerPolicy = 'drop-oldest' | 'conflate' | 'disconnect';
export const SLOW_CONSUMER_POLICIES: readonly SlowConsumerPolicy[] = ['drop-oldest', 'conflate', 'disconnect'];

/** Why a message did not reach a session: catalog codes (src/errors.ts). */
export type DropCode = 'ERR_DROP_OLDEST' | 'ERR_DROP_CONFLATED' | 'ERR_SLOW_CONSUMER' | 'ERR_SESSION_CLOSED';

export interface BacklogItem<F> {
  readonly frame: F;
  readonly bytes: number;
  /** Conflation key (upstream + topic); undefined: never conflated. */
  readonly key?: string | undefined;
  /** What the item was, for drop reports. */
  readonly topic?: string | undefined;
  readonly upstream?: string | undefined;
  /** Never dropped by the policy. */
  readonly keep?: boolean | undefined;
  /** Counted as a message when delivered or dropped (false for the hub's own notices). */
  readonly counted?: boolean | undefined;
}

export type PushResult = 'queued' | 'overflow';

interface Slot<F> {
  item: BacklogItem<F> | undefined;
}

export class Backlog<F> {
  readonly #policy: SlowConsumerPolicy;
  readonly #maxBytes: number;
  readonly #onDrop: (item: BacklogItem<F>, reason: DropCode) => void;
  /** Oldest first from #head; a dropped item leaves its slot empty until compaction. */
  #slots: Array<Slot<F>> = [];
  #head = 0;
  #empty = 0;
  /** Slots before this index are empty or kept: where the next drop-oldest walk starts. */
  #dropFrom = 0;
  #bytes = 0;
  #count = 0;
  readonly #latest = new Map<string, Slot<F>>();

  constructor(options: { policy: SlowConsumerPolicy; maxBytes: number; onDrop: (item: BacklogItem<F>, reason: DropCode) => void }) {
    this.#policy = options.policy;
    this.#maxBytes = options.maxBytes;
    this.#onDrop = options.onDrop;
  }

  get policy(): SlowConsumerPolicy {
    return this.#policy;
  }

  get bytes(): number {
    return this.#bytes;
  }

  get count(): number {
    return this.#count;
  }

  /**
   * Add an item at the tail. Returns `overflow` when it cannot be held within
   * the bound (always under `disconnect` once full; under the other policies
   * only when kept items alone fill the bound) — the item is not queued then
   * and nothing was dropped for it.
   */
  push(item: BacklogItem<F>): PushResult {
    if (this.#policy === 'conflate' && item.key !== undefined && !item.keep) {
      const older = this.#latest.get(item.key);
      if (older) this.#kill(older, 'ERR_DROP_CONFLATED');
    }
    if (this.#bytes + item.bytes > this.#maxBytes) {
      if (this.#policy === 'disconnect') return 'overflow';
      this.#makeRoom(item.bytes);
      if (this.#bytes + item.bytes > this.#maxBytes) {
        if (item.keep || this.#count > 0) return 'overflow';
        // Larger than the whole bound on its own: it can never wait here.
        this.#onDrop(item, 'ERR_DROP_OLDEST');
        return 'queued';
      }
    }
    const slot: Slot<F> = { item };
    this.#slots.push(slot);
    this.#bytes += item.bytes;
    this.#count++;
    if (item.key !== undefined && !item.keep) this.#latest.set(item.key, slot);
    return 'queued';
  }

  /** The oldest item, without taking it. */
  peek(): BacklogItem<F> | undefined {
    return this.#firstSlot()?.item;
  }

  /** Take the oldest item. */
  shift(): BacklogItem<F> | undefined {
    const slot = this.#firstSlot();
    if (!slot) return undefined;
    const item = slot.item!;
    this.#release(slot);
    this.#head++;
    this.#empty--;
    this.#compact();
    return item;
  }

  /** Take everything, oldest first (the caller counts them: the session is gone). */
  clear(): Array<BacklogItem<F>> {
    const items: Array<BacklogItem<F>> = [];
    for (let i = this.#head; i < this.#slots.length; i++) {
      const item = this.#slots[i]!.item;
      if (item) items.push(item);
    }
    this.#slots = [];
    this.#head = 0;
    this.#empty = 0;
    this.#dropFrom = 0;
    this.#bytes = 0;
    this.#count = 0;
    this.#latest.clear();
    return items;
  }

  /**
   * Drop the oldest droppable items until `incoming` more bytes fit (or nothing
   * droppable is left). The walk resumes where the last one stopped
   * (`#dropFrom`: every slot before it is empty or kept): a full backlog drops
   * one item per push, and a walk from the head would pass every slot emptied
   * since the last compaction on every push (thousands at 1 KiB in the
   * default 4 MiB bound — it doubled the hub's CPU per delivery while one
   * worker stalled).
   */
  #makeRoom(incoming: number): void {
    let i = Math.max(this.#head, this.#dropFrom);
    for (; i < this.#slots.length && this.#bytes + incoming > this.#maxBytes; i++) {
      const slot = this.#slots[i]!;
      if (slot.item && !slot.item.keep) this.#kill(slot, 'ERR_DROP_OLDEST');
    }
    this.#dropFrom = i;
    this.#compact();
  }

  #firstSlot(): Slot<F> | undefined {
    while (this.#head < this.#slots.length) {
      const slot = this.#slots[this.#head]!;
      if (slot.item) return slot;
      this.#head++;
      this.#empty--;
    }
    return undefined;
  }

  #kill(slot: Slot<F>, reason: DropCode): void {
    const item = slot.item!;
    this.#release(slot);
    this.#onDrop(item, reason);
  }

  /** Empty a slot; it stays in the array (counted in #empty) until passed or compacted. */
  #release(slot: Slot<F>): void {
    const item = slot.item!;
    this.#bytes -= item.bytes;
    this.#count--;
    this.#empty++;
    slot.item = undefined;
    if (item.key !== undefined && this.#latest.get(item.key) === slot) this.#latest.delete(item.key);
  }

  /** Keep the array proportional to what is live: drop passed and empty slots once they dominate. */
  #compact(): void {
    if (this.#count === 0) {
      this.#slots = [];
      this.#head = 0;
      this.#empty = 0;
      this.#dropFrom = 0;
      return;
    }
    const dead = this.#head + this.#empty;
    if (dead < 1024 || dead * 2 < this.#slots.length) return;
    this.#slots = this.#slots.slice(this.#head).filter((s) => s.item !== undefined);
    this.#head = 0;
    this.#empty = 0;
    this.#dropFrom = 0;
  }
}
