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
 *   `[0x01 version][u8 upstream length][upstream UTF-8][u16 BE topic length][topic UTF-8][payload]`.
 * A worker's binary `send` uses the same layout (topic empty).
 *
 * This module has no dependencies: HubClient (`wshub/client`) loads it
 * without zod, pino or anything else of the daemon's.
 */

export const ENVELOPE_PROTOCOL = 'wshub.v1';
export const BINARY_VERSION = 0x01;

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
  | { op: 'msg'; upstream: string; topic?: string; data?: unknown; text?: string }
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
      /** The outage: `start` when the upstream went down; `end` once it is open again. */
      gap?: { start: number; end?: number };
      at: number;
    }
  | { op: 'lagged'; upstream?: string; topic?: string; count: number; reason: string; policy: string };

/** `{"op":"msg",…,"data":` + payload + `}`: the payload's bytes are copied, never parsed again or re-encoded. */
export function encodeJsonMessage(upstream: string, topic: string | undefined, payload: Buffer): Buffer {
  const head = topic === undefined ? `{"op":"msg","upstream":${JSON.stringify(upstream)},"data":` : `{"op":"msg","upstream":${JSON.stringify(upstream)},"topic":${JSON.stringify(topic)},"data":`;
  const headBytes = Buffer.from(head);
  const out = Buffer.allocUnsafe(headBytes.length + payload.length + 1);
  headBytes.copy(out, 0);
  payload.copy(out, headBytes.length);
  out[out.length - 1] = 0x7d; // }
  return out;
}

export function encodeTextMessage(upstream: string, topic: string | undefined, text: string): Buffer {
  return Buffer.from(JSON.stringify(topic === undefined ? { op: 'msg', upstream, text } : { op: 'msg', upstream, topic, text }));
}

export function encodeBinary(upstream: string, topic: string, payload: Buffer): Buffer {
  const u = Buffer.from(upstream);
  const t = Buffer.from(topic);
  const out = Buffer.allocUnsafe(2 + u.length + 2 + t.length + payload.length);
  out[0] = BINARY_VERSION;
  out[1] = u.length;
  u.copy(out, 2);
  out.writeUInt16BE(t.length, 2 + u.length);
  t.copy(out, 4 + u.length);
  payload.copy(out, 4 + u.length + t.length);
  return out;
}

export interface BinaryEnvelope {
  upstream: string;
  topic: string;
  payload: Buffer;
}

/** Parse a binary envelope frame; undefined when the layout is wrong. */
export function decodeBinary(frame: Buffer): BinaryEnvelope | undefined {
  if (frame.length < 4 || frame[0] !== BINARY_VERSION) return undefined;
  const ulen = frame[1]!;
  if (frame.length < 4 + ulen) return undefined;
  const tlen = frame.readUInt16BE(2 + ulen);
  if (frame.length < 4 + ulen + tlen) return undefined;
  return {
    upstream: frame.toString('utf8', 2, 2 + ulen),
    topic: frame.toString('utf8', 4 + ulen, 4 + ulen + tlen),
    payload: frame.subarray(4 + ulen + tlen),
  };
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
