/**
 * One `hub.subscribe()`: an async iterator over the messages of one topic.
 * Buffered locally up to a bound; past it the client stops reading from the
 * hub, so the hub's slow-consumer policy applies and the loss (if any) comes
 * back as `lagged` — memory never grows without bound.
 */
import type { HubMessage } from './types.js';

export class Subscription implements AsyncIterableIterator<HubMessage> {
  readonly upstream: string;
  readonly topic: string;
  readonly group: string | undefined;
  readonly #buffer: HubMessage[] = [];
  #head = 0;
  #waiter: ((r: IteratorResult<HubMessage>) => void) | undefined;
  #failer: ((err: Error) => void) | undefined;
  #ended = false;
  #error: Error | undefined;
  readonly #onEnd: (s: Subscription) => void;
  readonly #onDrained: () => void;

  constructor(upstream: string, topic: string, group: string | undefined, onEnd: (s: Subscription) => void, onDrained: () => void) {
    this.upstream = upstream;
    this.topic = topic;
    this.group = group;
    this.#onEnd = onEnd;
    this.#onDrained = onDrained;
  }

  /** Messages waiting to be consumed. */
  get buffered(): number {
    return this.#buffer.length - this.#head;
  }

  get ended(): boolean {
    return this.#ended;
  }

  push(message: HubMessage): void {
    if (this.#ended) return;
    const waiter = this.#waiter;
    if (waiter) {
      this.#waiter = undefined;
      this.#failer = undefined;
      waiter({ value: message, done: false });
      return;
    }
    this.#buffer.push(message);
  }

  /** End the iteration (client closed, or failed with `err`). Buffered messages are still delivered first. */
  end(err?: Error): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#error = err;
    if (this.#waiter && this.buffered === 0) {
      const waiter = this.#waiter;
      const failer = this.#failer;
      this.#waiter = undefined;
      this.#failer = undefined;
      if (err && failer) failer(err);
      else waiter({ value: undefined, done: true });
    }
  }

  next(): Promise<IteratorResult<HubMessage>> {
    if (this.buffered > 0) {
      const value = this.#buffer[this.#head]!;
      this.#buffer[this.#head++] = undefined as unknown as HubMessage;
      if (this.#head > 1024 && this.#head * 2 > this.#buffer.length) {
        this.#buffer.splice(0, this.#head);
        this.#head = 0;
      }
      if (this.buffered === 0) this.#onDrained();
      return Promise.resolve({ value, done: false });
    }
    if (this.#ended) return this.#error ? Promise.reject(this.#error) : Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => {
      this.#waiter = resolve;
      this.#failer = reject;
      this.#onDrained();
    });
  }

  /** `break` in a `for await` lands here: unsubscribe. */
  return(): Promise<IteratorResult<HubMessage>> {
    this.end();
    this.#buffer.length = 0;
    this.#head = 0;
    this.#onEnd(this);
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}
