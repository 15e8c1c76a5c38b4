/**
 * Building {@link Outcome}s: adapters whose decisions arise deep inside their
 * bookkeeping (a batch member answered, a subscription granted) collect them
 * here and hand the whole outcome back from the call that caused them.
 */
import type { WshubError } from '../errors.js';
import type { Outcome, Reply, SessionHandle, UpstreamFrame } from './types.js';

const LISTS = ['join', 'leave', 'upstream', 'replies', 'snapshots', 'errors', 'broadcast'] as const;

/** Append `more`'s lists to `into`'s (and take its `publish`/`json` when `into` has none). */
export function merge(into: Outcome, more: Outcome | undefined): Outcome {
  if (!more) return into;
  for (const key of LISTS) {
    const extra = more[key];
    if (!extra || extra.length === 0) continue;
    const list = (into[key] ??= []) as unknown[];
    list.push(...extra);
  }
  if (more.publish && !into.publish) into.publish = more.publish;
  if (more.json !== undefined && into.json === undefined) into.json = more.json;
  return into;
}

/** One outcome being collected. */
export class OutcomeBuilder {
  #outcome: Outcome = {};

  reply(reply: Reply): void {
    (this.#outcome.replies ??= []).push(reply);
  }

  upstream(frame: UpstreamFrame): void {
    (this.#outcome.upstream ??= []).push(frame);
  }

  join(session: SessionHandle, topic: string): void {
    (this.#outcome.join ??= []).push({ session, topic });
  }

  leave(session: SessionHandle, topic: string): void {
    (this.#outcome.leave ??= []).push({ session, topic });
  }

  error(session: SessionHandle, error: WshubError): void {
    (this.#outcome.errors ??= []).push({ session, error });
  }

  broadcast(data: Buffer): void {
    (this.#outcome.broadcast ??= []).push(data);
  }

  get empty(): boolean {
    return LISTS.every((k) => (this.#outcome[k]?.length ?? 0) === 0);
  }

  /** The outcome so far (with `extra` merged in); the builder starts over. */
  take(extra?: Outcome): Outcome {
    const out = merge(this.#outcome, extra);
    this.#outcome = {};
    return out;
  }
}
