/**
 * `raw`: the hub knows nothing of the protocol. Every upstream message goes to
 * every transparent session (one member per group), byte for byte, text as
 * text and binary as binary; every session message goes upstream verbatim.
 * With `?snapshot=1` a late joiner first gets the last upstream message.
 *
 * With a `topic` field path, JSON messages are also published under the
 * topic found there, so envelope sessions can subscribe to single topics of
 * an upstream that has no subscribe message of its own (the upstream sends
 * everything; the hub filters). Envelope sessions subscribe to `*` for
 * everything.
 */
import { WshubError } from '../errors.js';
import type { Session } from '../hub/session.js';
import { getPath } from './template.js';
import type { Adapter, AdapterContext } from './types.js';

/** The one implicit topic of a raw upstream: every message. */
export const RAW_TOPIC = '*';

export interface RawAdapterOptions {
  /** Dotted field path of a topic in JSON messages (for envelope subscriptions). */
  topic?: string;
}

export class RawAdapter implements Adapter {
  readonly kind = 'raw' as const;
  readonly #ctx: AdapterContext;
  readonly #topicPath: string[] | undefined;

  constructor(ctx: AdapterContext, options: RawAdapterOptions = {}) {
    this.#ctx = ctx;
    this.#topicPath = options.topic?.split('.');
  }

  onSessionOpen(session: Session): void {
    if (session.transparent) this.#ctx.addSubscriber(RAW_TOPIC, session);
  }

  onSessionMessage(session: Session, data: Buffer, isBinary: boolean): void {
    this.#ctx.sendUpstream(data, isBinary, session);
  }

  onUpstreamMessage(data: Buffer, isBinary: boolean): void {
    this.#ctx.publish(RAW_TOPIC, data, isBinary);
    // Parse only when someone subscribed to a topic other than "*".
    if (!this.#topicPath || isBinary || data[0] !== 0x7b) return;
    if (this.#ctx.topicCount() <= (this.#ctx.hasSubscribers(RAW_TOPIC) ? 1 : 0)) return;
    let topic: unknown;
    try {
      topic = getPath(JSON.parse(data.toString('utf8')), this.#topicPath);
    } catch {
      return;
    }
    if ((typeof topic === 'string' || typeof topic === 'number') && this.#ctx.hasSubscribers(String(topic))) {
      this.#ctx.publish(String(topic), data, isBinary, true);
    }
  }

  subscribe(session: Session, topic: string, snapshot: boolean): WshubError | undefined {
    if (topic !== RAW_TOPIC && !this.#topicPath) {
      return new WshubError('ERR_BAD_MESSAGE', `upstream ${this.#ctx.upstream} (raw) has no topic field configured; subscribe to "${RAW_TOPIC}" for every message`);
    }
    this.#ctx.addSubscriber(topic, session, snapshot);
    return undefined;
  }

  unsubscribe(session: Session, topic: string): void {
    this.#ctx.removeSubscriber(topic, session);
  }

  onSessionClose(): void {}
  onUpstreamOpen(): void {}
  onUpstreamDown(): void {}
  onTopicAbandoned(): void {}
}
