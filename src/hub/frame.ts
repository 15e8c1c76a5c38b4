/**
 * Frame a message once, write the same bytes to every session.
 *
 * ws frames per `send()` call, which for a fan-out to N sessions means N
 * headers, N socket writes and, for strings, N encodings. The hub instead asks
 * ws's own framer (`WebSocket.Sender.frame`, exported by ws) for one unmasked
 * server frame — a header buffer and the payload itself, not copied — and
 * hands those buffers to each session's batch. This is safe because listener
 * sessions never use permessage-deflate (the only ws feature that would
 * reorder or transform frames in its sender), and each frame is written whole,
 * so ws's own pings and close frames interleave correctly.
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
  /** Header, then payload: the payload buffer is the message's own, never copied here. */
  readonly parts: readonly Buffer[];
  /** Total framed size. */
  readonly size: number;
  /** The payload size: what counts as message bytes in stats. */
  readonly payloadBytes: number;
}

/**
 * Frame `payload` as one final text or binary frame. The payload is
 * referenced, not copied: the caller must not modify it afterwards (ws hands
 * each message over in a buffer of its own).
 */
export function frame(payload: Buffer, isBinary: boolean): Frame {
  const parts = Sender.frame(payload, { fin: true, rsv1: false, opcode: isBinary ? OPCODE_BINARY : OPCODE_TEXT, mask: false, readOnly: true });
  return { parts, size: parts[0]!.length + payload.length, payloadBytes: payload.length };
}

/** A frame of the hub's own (envelope control frames): text, built from a JSON value. */
export function textFrame(text: string): Frame {
  return frame(Buffer.from(text), false);
}
