/**
 * One connection of an upstream pool: its ResilientWebSocket, the topics it
 * carries, and the frames waiting for its control rate.
 *
 * Every frame the hub sends on a connection passes its token bucket
 * (`controlRate`): subscribes, unsubscribes, the replay after a reconnect,
 * forwarded requests. What cannot go yet waits here, in order; waiting
 * subscribes (and unsubscribes) next to each other are combined into one
 * frame, up to `maxTopicsPerFrame` topics, so a replay of 500 topics at 5
 * frames a second of 50 topics each takes about 2 s and never trips the
 * provider's limit.
 */
import type { ControlIntent, UpstreamFrame } from '../adapters/types.js';
import type { ResilientWebSocket } from '../upstream/resilient.js';
import type { SendResult } from '../upstream/types.js';
import type { SendTag } from './route.js';

/** The pacing a shard needs: a token bucket. */
export interface Tokens {
  take(): boolean;
  msUntil(): number;
  readonly tokens: number;
}

type Waiting =
  | { type: 'frame'; frame: UpstreamFrame; tag: SendTag; bytes: number }
  | { type: 'control'; intent: ControlIntent };

export interface ShardHooks {
  /** Build the frame for control intents (the adapter); undefined when nothing is left to send. */
  render(kind: ControlIntent['kind'], parts: readonly ControlIntent[]): UpstreamFrame | undefined;
  /** Control intents dropped unsent. */
  dropped(parts: readonly ControlIntent[]): void;
  /** Topics one control frame may carry. */
  topicsPerFrame(): number;
  /** The queue emptied after frames waited (senders may resume). */
  drained(): void;
}

export class Shard {
  readonly index: number;
  client: ResilientWebSocket;
  readonly topics = new Set<string>();
  /** Since when it carries no topic (extra shards are closed after idleShardMs). */
  emptySince: number | undefined;
  /** Frames sent after waiting for a token. */
  paced = 0;
  /** The connection's number in the upstream's life (envelope `epoch`): new on every open. */
  epoch = 0;
  /** Left the pool (failed over, failed back, idle): its state changes mean nothing any more; its sends still report. */
  retired = false;
  readonly #tokens: Tokens | undefined;
  readonly #hooks: ShardHooks;
  #queue: Waiting[] = [];
  #queueBytes = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(index: number, client: ResilientWebSocket, tokens: Tokens | undefined, hooks: ShardHooks) {
    this.index = index;
    this.client = client;
    this.#tokens = tokens;
    this.#hooks = hooks;
  }

  /** Bytes of frames waiting for a token. */
  get queuedBytes(): number {
    return this.#queueBytes;
  }

  get queuedMessages(): number {
    return this.#queue.length;
  }

  get tokensLeft(): number | undefined {
    return this.#tokens?.tokens;
  }

  /** Send a frame now when the rate allows, else queue it behind what waits. */
  send(frame: UpstreamFrame, tag: SendTag, highWaterMark: number): SendResult {
    if (this.#queue.length === 0 && (!this.#tokens || this.#tokens.take())) {
      return this.client.send(frame.data, { binary: frame.isBinary, tag });
    }
    const bytes = typeof frame.data === 'string' ? Buffer.byteLength(frame.data) : frame.data.length;
    this.#queue.push({ type: 'frame', frame, tag, bytes });
    this.#queueBytes += bytes;
    this.#arm();
    return { ok: true, queued: true, wait: this.#queueBytes >= highWaterMark };
  }

  /** A subscribe or unsubscribe of topics this shard carries. */
  control(intent: ControlIntent): void {
    this.#queue.push({ type: 'control', intent });
    this.#pump();
  }

  /**
   * The connection opened anew or went down: waiting subscribes and
   * unsubscribes are moot (an open replays the shard's topics; a connection
   * that is down forgot them). Frames stay.
   */
  purgeControl(): void {
    const dropped: ControlIntent[] = [];
    this.#queue = this.#queue.filter((w) => {
      if (w.type !== 'control') return true;
      dropped.push(w.intent);
      return false;
    });
    if (dropped.length > 0) this.#hooks.dropped(dropped);
  }

  /** Stop: waiting control intents are dropped; waiting frames are returned (the pool reports them). */
  close(): Array<{ frame: UpstreamFrame; tag: SendTag }> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.purgeControl();
    const frames = this.#queue.filter((w): w is Extract<Waiting, { type: 'frame' }> => w.type === 'frame').map((w) => ({ frame: w.frame, tag: w.tag }));
    this.#queue = [];
    this.#queueBytes = 0;
    return frames;
  }

  /** Send what the rate allows: one frame per token, neighbouring control intents of one kind combined. */
  #pump(): void {
    let sent = false;
    while (this.#queue.length > 0) {
      const head = this.#queue[0]!;
      if (head.type === 'control' && this.client.state !== 'open') {
        // A subscribe must not go to the outage queue: the open replays it. Wait for the open (purge).
        break;
      }
      if (this.#tokens && !this.#tokens.take()) break;
      if (head.type === 'frame') {
        this.#queue.shift();
        this.#queueBytes -= head.bytes;
        this.client.send(head.frame.data, { binary: head.frame.isBinary, tag: head.tag });
        this.paced++;
        sent = true;
        continue;
      }
      const parts = this.#takeControl(head.intent.kind);
      const frame = this.#hooks.render(head.intent.kind, parts);
      if (frame) {
        this.client.send(frame.data, { binary: frame.isBinary, tag: { session: undefined, adapterTag: frame.tag, origin: undefined } });
        this.paced++;
      }
      sent = true;
    }
    if (this.#queue.length > 0) this.#arm();
    else if (sent) this.#hooks.drained();
  }

  /** Take the leading control intents of `kind`, up to the topics one frame may carry (splitting the last if needed). */
  #takeControl(kind: ControlIntent['kind']): ControlIntent[] {
    let room = Math.max(1, this.#hooks.topicsPerFrame());
    const parts: ControlIntent[] = [];
    while (room > 0 && this.#queue.length > 0) {
      const head = this.#queue[0]!;
      if (head.type !== 'control' || head.intent.kind !== kind) break;
      const intent = head.intent;
      if (intent.topics.length <= room) {
        parts.push(intent);
        room -= intent.topics.length;
        this.#queue.shift();
      } else {
        parts.push({ ...intent, topics: intent.topics.slice(0, room) });
        head.intent = { ...intent, topics: intent.topics.slice(room) };
        room = 0;
      }
    }
    return parts;
  }

  #arm(): void {
    if (this.#timer) return;
    const delay = this.#tokens ? Math.max(1, Math.ceil(this.#tokens.msUntil())) : 1;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#pump();
    }, delay);
    this.#timer.unref();
  }

  /** The connection opened: control intents that waited for it may go (after the pool's purge and replay). */
  opened(): void {
    this.#pump();
  }
}
