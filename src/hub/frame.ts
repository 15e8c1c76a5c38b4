/**
 * Frame a message once, write the same bytes to every session.
 *
 * ws frames per `send()` call, which for a fan-out to N sessions means N
 * headers, N socket writes and, for strings, N encodings. The hub instead asks
 * ws's own framer (`WebSocket.Sender.frame`, exported by ws) for one unmasked
 * server frame and writes that buffer to each session's socket. This is safe
 * because listener sessions never use permessage-deflate (the only ws feature
 * that would reorder or transform frames in its sender), and each frame is
 * written whole, so ws's own pings and close frames interleave correctly.
 */
import * as ws from 'ws';

interface FrameOptions {
  fin: boolean;
  rsv1: boolean;
  opcode: number;
  mask: boolean;
  readOnly: boolean;
}

// ws exports Sender from its ESM wrapper; @types/ws does not declare it.
const Sender = (ws as unknown as { Sender: { frame(data: Buffer, options: FrameOptions): Buffer[] } }).Sender;

const OPCODE_TEXT = 0x1;
const OPCODE_BINARY = 0x2;

/** A complete, unmasked WebSocket data frame ready to be written to any number of sockets. */
export interface Frame {
  /** The framed bytes (header + payload). */
  readonly bytes: Buffer;
  /** The payload size, what counts as "message bytes" in stats. */
  readonly payloadBytes: number;
  readonly isBinary: boolean;
  /** The payload without the header (a view into `bytes`). */
  readonly payload: Buffer;
  /** The same message wrapped for envelope sessions, built on first use and shared by all of them. */
  envelope?: Frame;
  /** Whether the payload is known to be JSON text (set by adapters that parsed it). */
  json?: boolean;
}

/** Frame `payload` as one final text or binary frame. The payload is copied once. */
export function frameMessage(payload: Buffer, isBinary: boolean): Frame {
  const parts = Sender.frame(payload, { fin: true, rsv1: false, opcode: isBinary ? OPCODE_BINARY : OPCODE_TEXT, mask: false, readOnly: false });
  const bytes = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  return { bytes, payloadBytes: payload.length, isBinary, payload: bytes.subarray(bytes.length - payload.length) };
}
