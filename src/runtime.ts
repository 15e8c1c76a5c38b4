/**
 * Process-wide V8 settings for a process that relays large messages: the
 * daemon applies them at start (`startHub`), and a program that embeds a
 * `Hub` may call {@link tuneRuntime} itself before it starts one. They
 * change the whole process, which is why the library never applies them on
 * its own.
 *
 * `--no-incremental-marking`: every large message is a new ArrayBuffer (ws
 * joins a message that spans reads into one buffer, and Node reads into a
 * fresh 64 KiB buffer each time). Relaying 64 KiB messages to one worker, the
 * hub fell, a few seconds into the stream, into back-to-back full
 * collections: V8 started incremental marking from a task over and over
 * (`--trace-incremental-marking`: "Start (task)", with the old generation at
 * 13 MB of a 36 MB limit), 30–60 full mark-compacts per 2.5 s run, each
 * marking on the second core that the source and the worker need. CPU per
 * message went from 65–85 µs to 150–270 µs, throughput fell from 6–7k to
 * 3.5–5k msg/s, and it stayed there (bench/fixtures/hub-host counts the
 * collections). With incremental marking off the same sequence ran 13 streams
 * with no full collection at all, at 65–85 µs per message.
 *
 * Tried and not enough: `--no-concurrent-array-buffer-sweeping` (looked
 * right in short runs, then degraded the same way after 1 KiB traffic),
 * `--single-threaded-gc` (8–21 full collections per run), a 2 MiB or 64 MiB
 * semi-space, `--no-memory-reducer`.
 *
 * The cost: a full collection, when the old generation does reach its limit,
 * runs in one pause instead of in steps — some milliseconds for the hub's
 * usual heap of 10–50 MB, longer for a hub holding tens of thousands of
 * sessions.
 */
import { setFlagsFromString } from 'node:v8';

/** The V8 flags {@link tuneRuntime} sets. */
export const RUNTIME_FLAGS = ['--no-incremental-marking'] as const;

let tuned = false;

/** Apply {@link RUNTIME_FLAGS} to this process (once; later calls do nothing). */
export function tuneRuntime(): void {
  if (tuned) return;
  tuned = true;
  for (const flag of RUNTIME_FLAGS) setFlagsFromString(flag);
}
