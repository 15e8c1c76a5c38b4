/**
 * The envelope protocol's frames (`/hub`, subprotocol `wshub.v1`); the
 * specification is docs/protocol.md. Shared by the hub and HubClient.
 *
 * Text frames are JSON objects with an `op`. Upstream messages reach envelope
 * sessions as
 * - `{"op":"msg","upstream":"feed","topic":"t","data":<the message>}` when the
 *   upstream's text message is JSON — spliced in, never re-serialized;
 * - `{"op":"msg","upstream":"feed","topic":"t","text":"<the message>"}` for text that is not JSON;
 * - a binary frame for binary messages, without base64:
 *   `[0x02 version][u8 upstream length][upstream UTF-8][u16 BE topic length][topic UTF-8][u32 BE epoch][u48 BE seq][payload]`.
 * Every upstream message carries `epoch` (the upstream connection it came
 * from: it changes on every new connection or failover) and `seq` (its number
 * among the topic's messages for this hub): a worker sees exactly when to
 * resync. A worker's binary `send` uses the unstamped layout (version 0x01,
 * topic empty): `[0x01][u8 upstream length][upstream][u16 BE topic length][topic][payload]`.
 *
 * This module has no dependencies: HubClient (`wshub/client`) loads it
 * without zod, pino or anything else of the daemon's.
 */

export const ENVELOPE_PROTOCOL = 'wshub.v1';
export const BINARY_VERSION = 0x01;
/** Hub → worker binary messages carry epoch and seq. */
export const BINARY_VERSION_STAMPED = 0x02;

/** Where a message stands in its topic's stream: see the module doc. */
export interface Stamp {
  epoch: number;
  seq: number;
}

/** Frames a worker sends to the hub (validated by envelope-schema.ts in the hub; HubClient only builds them). */
export type ClientFrame =
  | { op: 'sub'; id?: string | number | undefined; upstream: string; topic: string; group?: string | undefined; snapshot?: boolean | undefined }
  | { op: 'unsub'; id?: string | number | undefined; upstream: string; topic: string; group?: string | undefined }
  | { op: 'send'; id?: string | number | undefined; upstream: string; data?: unknown; text?: string | undefined }
  | { op: 'req'; id: string | number; upstream: string; data: Record<string, unknown> }
  | { op: 'ping'; id?: string | number | undefined };

export interface UpstreamSummary {
  name: string;
  state: string;
  adapter: string;
}

/** Frames the hub sends to a worker. */
export type HubFrame =
  | { op: 'welcome'; v: 1; session: string; upstreams: UpstreamSummary[] }
  | { op: 'msg'; upstream: string; topic?: string; epoch?: number; seq?: number; data?: unknown; text?: string }
  | { op: 'res'; id: string | number; upstream: string; data: unknown }
  | { op: 'ack'; id: string | number }
  | { op: 'pong'; id?: string | number }
  | { op: 'error'; id?: string | number; code: string; message: string }
  | {
      op: 'state';
      upstream: string;
      state: string;
      reason: string;
      attempt?: number;
      delayMs?: number;
      cause?: { code: string; message: string };
      /** The endpoint of an upstream pool the change concerns (after a failover, the new one). */
      endpoint?: string;
      /** The outage: `start` when the upstream went down; `end` once it is open again. */
      gap?: { start: number; end?: number };
      at: number;
    }
  | { op: 'lagged'; upstream?: string; topic?: string; count: number; reason: string; policy: string };

/** `{"op":"msg",…,"data":` + payload + `}`: the payload's bytes are copied, never parsed again or re-encoded. */
export function encodeJsonMessage(upstream: string, topic: string | undefined, payload: Buffer, stamp?: Stamp): Buffer {
  const head = `{"op":"msg","upstream":${JSON.stringify(upstream)}${topic === undefined ? '' : `,"topic":${JSON.stringify(topic)}`}${stamp ? `,"epoch":${stamp.epoch},"seq":${stamp.seq}` : ''},"data":`;
  const headBytes = Buffer.from(head);
  const out = Buffer.allocUnsafe(headBytes.length + payload.length + 1);
  headBytes.copy(out, 0);
  payload.copy(out, headBytes.length);
  out[out.length - 1] = 0x7d; // }
  return out;
}

export function encodeTextMessage(upstream: string, topic: string | undefined, text: string, stamp?: Stamp): Buffer {
  return Buffer.from(JSON.stringify({ op: 'msg', upstream, ...(topic === undefined ? {} : { topic }), ...(stamp ?? {}), text }));
}

/** The binary layout; with a stamp (hub → worker) version 0x02 carries epoch and seq. */
export function encodeBinary(upstream: string, topic: string, payload: Buffer, stamp?: Stamp): Buffer {
  const u = Buffer.from(upstream);
  const t = Buffer.from(topic);
  const extra = stamp ? 10 : 0;
  const out = Buffer.allocUnsafe(2 + u.length + 2 + t.length + extra + payload.length);
  out[0] = stamp ? BINARY_VERSION_STAMPED : BINARY_VERSION;
  out[1] = u.length;
  u.copy(out, 2);
  out.writeUInt16BE(t.length, 2 + u.length);
  t.copy(out, 4 + u.length);
  let at = 4 + u.length + t.length;
  if (stamp) {
    out.writeUInt32BE(stamp.epoch >>> 0, at);
    out.writeUIntBE(stamp.seq % 2 ** 48, at + 4, 6);
    at += 10;
  }
  payload.copy(out, at);
  return out;
}

export interface BinaryEnvelope {
  upstream: string;
  topic: string;
  payload: Buffer;
  epoch?: number;
  seq?: number;
}

/** Parse a binary envelope frame (either version); undefined when the layout is wrong. */
export function decodeBinary(frame: Buffer): BinaryEnvelope | undefined {
  const version = frame[0];
  if (frame.length < 4 || (version !== BINARY_VERSION && version !== BINARY_VERSION_STAMPED)) return undefined;
  const ulen = frame[1]!;
  if (frame.length < 4 + ulen) return undefined;
  const tlen = frame.readUInt16BE(2 + ulen);
  let at = 4 + ulen + tlen;
  if (frame.length < at) return undefined;
  const out: BinaryEnvelope = {
    upstream: frame.toString('utf8', 2, 2 + ulen),
    topic: frame.toString('utf8', 4 + ulen, at),
    payload: frame.subarray(at),
  };
  if (version === BINARY_VERSION_STAMPED) {
    if (frame.length < at + 10) return undefined;
    out.epoch = frame.readUInt32BE(at);
    out.seq = frame.readUIntBE(at + 4, 6);
    at += 10;
    out.payload = frame.subarray(at);
  }
  return out;
}

/** Whether `payload` is one JSON value (so it can be spliced as `data`). */
export function isJson(payload: Buffer): boolean {
  let i = 0;
  while (i < payload.length && (payload[i] === 0x20 || payload[i] === 0x0a || payload[i] === 0x0d || payload[i] === 0x09)) i++;
  if (i === payload.length) return false;
  try {
    JSON.parse(payload.toString('utf8'));
    return true;
  } catch {
    return false;
  }
}
