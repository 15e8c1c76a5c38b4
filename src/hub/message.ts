/**
 * One upstream message on its way to sessions: parsed at most once, framed
 * at most once per kind of audience.
 *
 * - The transparent frame (the upstream's own bytes behind a WebSocket
 *   header) is built on first use — only when a transparent session is in
 *   the audience — and shared by all of them.
 * - The envelope frame (`{"op":"msg",…}` or the binary layout) is built on
 *   first use per topic label and shared by every envelope session that gets
 *   the message under that label. Whether the text is JSON is taken from the
 *   adapter when it parsed the message, else found out here, once.
 */
import { encodeBinary, encodeJsonMessage, encodeTextMessage, isJson, type Stamp } from './envelope-codec.js';
import { frame, type Frame } from './frame.js';

export class UpstreamMessage {
  readonly data: Buffer;
  readonly isBinary: boolean;
  readonly upstream: string;
  /** The upstream connection it came from (envelope `epoch`). */
  readonly epoch: number;
  /** Its number in the stream of the (first) audience it went to (envelope `seq`), and its label. */
  #seqLabel: string | undefined;
  #seq: number | undefined;
  /** Its numbers in other audiences' streams (a raw upstream's `*` and a topic), rarely needed. */
  #otherSeqs: Map<string | undefined, number> | undefined;
  #json: boolean | undefined;
  #frame: Frame | undefined;
  #envelopeTopic: string | undefined;
  #envelope: Frame | undefined;
  /** A second label (a raw upstream's `*` and a topic), rarely needed. */
  #others: Map<string | undefined, Frame> | undefined;

  constructor(upstream: string, data: Buffer, isBinary: boolean, json: boolean | undefined, epoch: number) {
    this.upstream = upstream;
    this.epoch = epoch;
    this.data = data;
    this.isBinary = isBinary;
    this.#json = json;
  }

  /** Number it in the stream of the audience labelled `topic` (before it is delivered there). */
  numbered(topic: string | undefined, seq: number): void {
    if (this.#seq === undefined || this.#seqLabel === topic) {
      this.#seqLabel = topic;
      this.#seq = seq;
    } else (this.#otherSeqs ??= new Map()).set(topic, seq);
  }

  /** The upstream's own bytes, framed once. */
  get frame(): Frame {
    return (this.#frame ??= frame(this.data, this.isBinary));
  }

  /** The envelope for sessions that get this message under `topic`. */
  envelope(topic: string | undefined): Frame {
    if (this.#envelope && this.#envelopeTopic === topic) return this.#envelope;
    if (!this.#envelope) {
      this.#envelopeTopic = topic;
      return (this.#envelope = this.#wrap(topic));
    }
    this.#others ??= new Map();
    let built = this.#others.get(topic);
    if (!built) this.#others.set(topic, (built = this.#wrap(topic)));
    return built;
  }

  #wrap(topic: string | undefined): Frame {
    const seq = this.#seqLabel === topic ? this.#seq : this.#otherSeqs?.get(topic);
    const stamp = seq === undefined ? undefined : { epoch: this.epoch, seq };
    return wrapEnvelope(this.upstream, topic, this.data, this.isBinary, (this.#json ??= !this.isBinary && isJson(this.data)), stamp);
  }
}

/** Wrap a payload for envelope sessions: JSON text spliced in as `data`, other text as `text`, binary in the binary layout. */
export function wrapEnvelope(upstream: string, topic: string | undefined, payload: Buffer, isBinary: boolean, json: boolean, stamp?: Stamp): Frame {
  if (isBinary) return frame(encodeBinary(upstream, topic ?? '', payload, stamp), true);
  if (json) return frame(encodeJsonMessage(upstream, topic, payload, stamp), false);
  return frame(encodeTextMessage(upstream, topic, payload.toString('utf8'), stamp), false);
}
