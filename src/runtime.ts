/**
 * Process-wide V8 settings for a process that relays large messages: the
 * daemon applies them at start (`startHub`), and a program that embeds a
 * `Hub` may call {@link tuneRuntime} itself before it starts one. They
 * change the whole process, which is why the library never applies them on
 * its own.
 *
 * `--incremental-marking-soft-trigger=95`: start incremental marking (the
 * first step of a full collection) when 95% of the old generation's growth
 * allowance since the last full collection is used.
 *
 * Why. Every large message is a new ArrayBuffer: Node reads into a fresh
 * 64 KiB buffer each time, and ws joins a message that spans two reads into
 * one more. V8 counts ArrayBuffer bytes allocated since the last full
 * collection against the old generation's allowance, and these die young —
 * freed by the next scavenge, but counted until its sweeping ends. By default
 * V8 starts marking as soon as the allowance left is below one new space's
 * capacity; for the hub's small heap (an old generation of ~13 MB, an
 * allowance of ~24 MB of which 16 MB is that margin) that is ~8 MB of
 * ArrayBuffers — one scavenge interval at 64 KiB × 6k msg/s. Relaying 64 KiB
 * messages to one worker the hub fell, a few seconds into a stream, into
 * back-to-back full collections (`--trace-incremental-marking`: "Start
 * (task)" with the old generation at 13 MB of a 36 MB limit; `--trace-gc`:
 * 30–70 mark-compacts per 2.5 s run). CPU per message went from 65–85 µs to
 * 150–350 µs and throughput halved, and it stayed there. The pre-framed
 * fan-out reading the same source never did: it had had no full collection,
 * so its limit was still V8's large initial one.
 *
 * Measured (the bench's 1 KiB-then-64 KiB sequence, streams of 2.5 s): the
 * default, 39–73 full collections in every stream; 80%, 21–48 in seven of
 * eight; 95%, none in 8 of 8, and in a second sequence none in the first 10
 * of 12 (56–89 µs per message, up to 11.5k msg/s), then 34 and 49 in the
 * last two. So it is a margin, not a cure: the ArrayBuffers counted between
 * two scavenges grow with the message rate, and past ~23 MB the storm
 * returns. A deployment relaying large messages near that rate can start
 * node with `--no-incremental-marking` on the command line instead
 * (`node --no-incremental-marking $(command -v wshub) serve …`): 13 streams
 * in a row ran with no full collection at all; full collections then run in
 * one pause each (milliseconds at the hub's usual 10–50 MB heap, longer for
 * a hub holding tens of thousands of sessions).
 *
 * Why not `--no-incremental-marking`, which removes the storm too: V8 takes
 * that flag only on the command line (set in a running process it aborted
 * two daemons in CI with "Fatal error: unreachable code"), and Node refuses it
 * in NODE_OPTIONS. The soft trigger is a threshold read when V8 decides to
 * start marking, so setting it at run time changes no collector state. Its
 * cost: marking starts later, so a full collection that reaches the limit
 * before marking ends finishes in one longer pause.
 */
import { setFlagsFromString } from 'node:v8';

/** The V8 flags {@link tuneRuntime} sets. */
export const RUNTIME_FLAGS = ['--incremental-marking-soft-trigger=95'] as const;

let tuned = false;

/** Apply {@link RUNTIME_FLAGS} to this process (once; later calls do nothing). */
export function tuneRuntime(): void {
  if (tuned) return;
  tuned = true;
  for (const flag of RUNTIME_FLAGS) setFlagsFromString(flag);
}
