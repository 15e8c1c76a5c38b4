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
 * everything. A message is still delivered once per session: a session in
 * both audiences gets it once, under its topic.
 */
import { WshubError } from '../errors.js';
import { getPath } from './template.js';
import type { Adapter, AdapterHost, Outcome, SessionHandle } from './types.js';

/** The one implicit topic of a raw upstream: every message. */
export const RAW_TOPIC = '*';

export interface RawAdapterOptions {
  /** Dotted field path of a topic in JSON messages (for envelope subscriptions). */
  topic?: string;
}

const EVERYTHING: Outcome = Object.freeze({ publish: Object.freeze({ to: 'topic', topic: RAW_TOPIC }) });

export class RawAdapter implements Adapter {
  readonly kind = 'raw' as const;
  readonly #host: AdapterHost;
  readonly #topicPath: string[] | undefined;

  constructor(host: AdapterHost, options: RawAdapterOptions = {}) {
    this.#host = host;
    this.#topicPath = options.topic?.split('.');
  }

  attached(session: SessionHandle): Outcome | undefined {
    if (!session.transparent) return undefined;
    const m = { session, topic: RAW_TOPIC };
    return { join: [m], ...(session.wantsSnapshot ? { snapshots: [m] } : {}) };
  }

  fromSession(session: SessionHandle, data: Buffer, isBinary: boolean): Outcome {
    return { upstream: [{ data, isBinary, session }] };
  }

  fromUpstream(data: Buffer, isBinary: boolean): Outcome {
    // Parse only when someone subscribed to a topic other than "*".
    if (!this.#topicPath || isBinary || data[0] !== 0x7b) return EVERYTHING;
    if (this.#host.topicCount() <= (this.#host.subscribers(RAW_TOPIC) > 0 ? 1 : 0)) return EVERYTHING;
    let topic: unknown;
    try {
      topic = getPath(JSON.parse(data.toString('utf8')), this.#topicPath);
    } catch {
      return { ...EVERYTHING, json: false };
    }
    if ((typeof topic === 'string' || typeof topic === 'number') && this.#host.subscribers(String(topic)) > 0) {
      return { publish: { to: 'topic', topic: String(topic), also: RAW_TOPIC }, json: true };
    }
    return { ...EVERYTHING, json: true };
  }

  subscribe(session: SessionHandle, topic: string, snapshot: boolean): Outcome {
    if (topic !== RAW_TOPIC && !this.#topicPath) {
      return { errors: [{ session, error: new WshubError('ERR_BAD_MESSAGE', `upstream ${this.#host.upstream} (raw) has no topic field configured; subscribe to "${RAW_TOPIC}" for every message`) }] };
    }
    const m = { session, topic };
    return { join: [m], ...(snapshot ? { snapshots: [m] } : {}) };
  }

  unsubscribe(session: SessionHandle, topic: string): Outcome {
    return { leave: [{ session, topic }] };
  }

  detached(): undefined {
    return undefined;
  }

  abandoned(): undefined {
    return undefined;
  }

  opened(): undefined {
    return undefined;
  }

  down(): undefined {
    return undefined;
  }
}
