/**
 * Names on the NATS side: subjects, KV keys, headers, and the encoding that
 * turns any topic (or upstream name) into one NATS-safe subject token.
 *
 * Token encoding (docs/cluster.md): the UTF-8 bytes of the text, where
 * `A–Z a–z 0–9 -` stay as they are and every other byte becomes `_` and two
 * upper-case hex digits (`btcusdt@trade` → `btcusdt_40trade`, `a.b` →
 * `a_2Eb`, `_` → `_5F`). The result uses only `[A-Za-z0-9_-]`, so it is a
 * valid subject token and a valid KV key token, stays readable in
 * `nats sub` output, and decodes back to exactly one text. The empty topic
 * is `_` and "no topic" (a raw message) is `_raw`; neither can come out of
 * encoding a non-empty text, since there an `_` is always followed by two
 * hex digits.
 */

/** The token of messages without a topic (raw adapter). */
export const RAW_TOKEN = '_raw';
/** The token of the empty topic. */
export const EMPTY_TOKEN = '_';

/** Headers of published messages, forwarded frames and replies. */
export const HEADER = {
  /** The lease epoch (KV revision of the holder's acquire) the message was published under. */
  epoch: 'Wshub-Epoch',
  /** Sequence per upstream per epoch, from 1. */
  seq: 'Wshub-Seq',
  /** Sequence per subject per epoch, from 1: a hub receiving a subject sees a jump when NATS lost messages of it. */
  subjectSeq: 'Wshub-Subject-Seq',
  /** `1` when the payload is a binary frame; absent for text. */
  binary: 'Wshub-Binary',
  /** Forwarded frame: `send` or `request`. */
  kind: 'Wshub-Kind',
  /** Forwarded frame: the hub id of the sender. */
  hub: 'Wshub-Hub',
  /** Forwarded frame: how long the sender waits for the answer, in ms. */
  timeout: 'Wshub-Timeout',
  /** Reply: a wshub error code; the payload is the message. */
  error: 'Wshub-Error',
} as const;

const KEEP = /^[A-Za-z0-9-]$/;
const CANONICAL = /^(?:[A-Za-z0-9-]|_[0-9A-F]{2})+$/;
const NAME = /^[A-Za-z0-9_-]+$/;

/** Encode `text` into one subject token (see the module doc). */
export function encodeToken(text: string): string {
  if (text === '') return EMPTY_TOKEN;
  let out = '';
  for (const byte of Buffer.from(text, 'utf8')) {
    const ch = String.fromCharCode(byte);
    out += byte < 0x80 && KEEP.test(ch) ? ch : `_${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** Decode a token made by {@link encodeToken}; `undefined` for anything not in canonical form (or not UTF-8). */
export function decodeToken(token: string): string | undefined {
  if (token === EMPTY_TOKEN) return '';
  if (!CANONICAL.test(token)) return undefined;
  const bytes: number[] = [];
  for (let i = 0; i < token.length;) {
    if (token[i] === '_') {
      bytes.push(Number.parseInt(token.slice(i + 1, i + 3), 16));
      i += 3;
    } else {
      bytes.push(token.charCodeAt(i));
      i += 1;
    }
  }
  const text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  try {
    const decoded = text.decode(Uint8Array.from(bytes));
    // A kept character escaped anyway (`_41` for `A`) is not canonical: one text, one token.
    return encodeToken(decoded) === token ? decoded : undefined;
  } catch {
    return undefined;
  }
}

/** The token of a topic, or of "no topic" (`null`). */
export function topicToken(topic: string | null): string {
  return topic === null ? RAW_TOKEN : encodeToken(topic);
}

/** The topic of a token: a string, `null` for raw, `undefined` when the token is not one of ours. */
export function tokenTopic(token: string): string | null | undefined {
  return token === RAW_TOKEN ? null : decodeToken(token);
}

/** True for a cluster name: it names a KV bucket and a subject token, so `[A-Za-z0-9_-]+`. */
export function isClusterName(name: string): boolean {
  return NAME.test(name);
}

/** Subjects and keys of one upstream in one cluster. */
export class UpstreamNames {
  readonly cluster: string;
  readonly upstream: string;
  /** The upstream's token in subjects and keys. */
  readonly token: string;

  constructor(cluster: string, upstream: string) {
    if (!isClusterName(cluster)) throw new TypeError(`cluster name must match [A-Za-z0-9_-]+: ${JSON.stringify(cluster)}`);
    this.cluster = cluster;
    this.upstream = upstream;
    this.token = encodeToken(upstream);
  }

  /** `wshub.<cluster>.<upstream>` */
  get prefix(): string {
    return `wshub.${this.cluster}.${this.token}`;
  }

  /** The subject of messages of `topic` (`null`: raw). */
  messageSubject(topic: string | null): string {
    return `${this.prefix}.m.${topicToken(topic)}`;
  }

  /** The subject prefix of all messages (for parsing: `<prefix>.m.<token>`). */
  get messagePrefix(): string {
    return `${this.prefix}.m.`;
  }

  /** The subject of frames for one hub's workers alone (answers, acknowledgements, per-session notifications). */
  hubSubject(hubId: string): string {
    return `${this.prefix}.hub.${encodeToken(hubId)}`;
  }

  /** The subject of the holder's upstream state (on every change and every renew interval). */
  get stateSubject(): string {
    return `${this.prefix}.state`;
  }

  /** The subject a hub tells the holder on whether its workers are behind (the holder then reads the upstream slower). */
  get paceSubject(): string {
    return `${this.prefix}.pace`;
  }

  /** The subject the holder answers forwarded frames on. */
  get requestSubject(): string {
    return `${this.prefix}.req`;
  }

  /** KV key of the lease. */
  get leaseKey(): string {
    return `lease.${this.token}`;
  }

  /** KV key of one hub's interest. */
  interestKey(hubId: string): string {
    return `interest.${this.token}.${hubId}`;
  }

  /** KV key filter of every hub's interest. */
  get interestFilter(): string {
    return `interest.${this.token}.*`;
  }
}

/** The KV bucket of a cluster (leases and interest). */
export function bucketName(cluster: string): string {
  return `wshub-${cluster}`;
}
