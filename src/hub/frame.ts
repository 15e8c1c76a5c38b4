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

/** Payloads at least this large keep header and payload as two buffers: copying them costs more than a second iovec. */
export const SPLIT_FRAME_BYTES = 16 * 1024;

/** A complete, unmasked WebSocket data frame ready to be written to any number of sockets. */
export interface Frame {
  /** The framed bytes: one buffer (header + payload), or header and payload for large payloads. */
  readonly parts: readonly Buffer[];
  /** Total framed size. */
  readonly size: number;
  /** The payload size, what counts as "message bytes" in stats. */
  readonly payloadBytes: number;
  readonly isBinary: boolean;
  /** The payload without the header. */
  readonly payload: Buffer;
  /** The same message wrapped for envelope sessions, built on first use and shared by all of them. */
  envelope?: Frame;
  /** Whether the payload is known to be JSON text (set by adapters that parsed it). */
  json?: boolean;
}

/**
 * Frame `payload` as one final text or binary frame. A small payload is copied
 * once, next to its header; a large one is referenced, not copied (the caller
 * must not modify it afterwards — ws hands each message over in a buffer of
 * its own).
 */
export function frameMessage(payload: Buffer, isBinary: boolean): Frame {
  const framed = Sender.frame(payload, { fin: true, rsv1: false, opcode: isBinary ? OPCODE_BINARY : OPCODE_TEXT, mask: false, readOnly: true });
  const size = framed.reduce((n, b) => n + b.length, 0);
  if (framed.length > 1 && payload.length >= SPLIT_FRAME_BYTES) {
    return { parts: framed, size, payloadBytes: payload.length, isBinary, payload };
  }
  const bytes = framed.length === 1 ? framed[0]! : Buffer.concat(framed, size);
  return { parts: [bytes], size, payloadBytes: payload.length, isBinary, payload: bytes.subarray(size - payload.length) };
}
