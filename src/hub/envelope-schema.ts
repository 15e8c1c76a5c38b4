/**
 * Validation of the frames a worker sends on `/hub` (docs/protocol.md). Only
 * the hub loads it; HubClient builds frames without zod.
 */
import { z } from '../zod.js';
import type { ClientFrame } from './envelope-codec.js';

const name = z.string().min(1).max(255);
const topic = z.string().min(1).max(65535);
const id = z.union([z.string().max(256), z.number()]).optional();

/** Frames a worker sends to the hub. */
const schema = z.discriminatedUnion('op', [
  z.strictObject({ op: z.literal('sub'), id, upstream: name, topic, group: z.string().min(1).max(255).optional(), snapshot: z.boolean().optional() }),
  z.strictObject({ op: z.literal('unsub'), id, upstream: name, topic, group: z.string().min(1).max(255).optional() }),
  z.strictObject({ op: z.literal('send'), id, upstream: name, data: z.unknown().optional(), text: z.string().optional() }).refine((f) => (f.data === undefined) !== (f.text === undefined), { message: 'send carries exactly one of data (JSON) or text (a string sent as is)' }),
  z.strictObject({ op: z.literal('req'), id: z.union([z.string().max(256), z.number()]), upstream: name, data: z.record(z.string(), z.unknown()) }),
  z.strictObject({ op: z.literal('ping'), id }),
]);

/** Validate a parsed frame; the result is a {@link ClientFrame} (the codec's type, which HubClient uses without zod). */
export const clientFrameSchema = {
  safeParse(raw: unknown): { success: true; data: ClientFrame } | { success: false; error: z.ZodError } {
    return schema.safeParse(raw);
  },
};

