/**
 * `raw`: the hub knows nothing of the protocol. Every upstream message goes to
 * every session (one member per group), byte for byte, text as text and binary
 * as binary; every session message goes upstream verbatim. With `?snapshot=1`
 * a late joiner first gets the last upstream message.
 */
import type { Adapter, AdapterContext } from './types.js';
import type { Session } from '../hub/session.js';

/** The one implicit topic of a raw upstream. */
export const RAW_TOPIC = '*';

export class RawAdapter implements Adapter {
  readonly kind = 'raw' as const;
  readonly #ctx: AdapterContext;

  constructor(ctx: AdapterContext) {
    this.#ctx = ctx;
  }

  onSessionOpen(session: Session): void {
    this.#ctx.addSubscriber(RAW_TOPIC, session);
  }

  onSessionMessage(session: Session, data: Buffer, isBinary: boolean): void {
    this.#ctx.sendUpstream(data, isBinary, session);
  }

  onUpstreamMessage(data: Buffer, isBinary: boolean): void {
    this.#ctx.publish(RAW_TOPIC, data, isBinary);
  }

  onSessionClose(): void {}
  onUpstreamOpen(): void {}
  onUpstreamDown(): void {}
  onTopicAbandoned(): void {}
}
