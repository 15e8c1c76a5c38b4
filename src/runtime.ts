/**
 * Process-wide V8 settings for a process that relays large messages: the
 * daemon applies them at start (`startHub`), and a program that embeds a
 * `Hub` may call {@link tuneRuntime} itself before it starts one. They
 * change the whole process, which is why the library never applies them on
 * its own.
 *
 * `--no-concurrent-array-buffer-sweeping`: every large message is a new
 * ArrayBuffer (ws joins a message that spans reads into one buffer, and
 * Node reads into a fresh 64 KiB buffer each time). With V8's default
 * concurrent sweeping of those buffers, a hub relaying 64 KiB messages to one
 * worker fell, a few seconds into the stream, into a full mark-compact about
 * every 50 ms (303 in 30 s, by `--trace-gc`), against 8 with sweeping on the
 * main thread. Its CPU per message went from 65–80 µs to 150–300 µs and its
 * throughput halved (8–9k to 3.5–5k msg/s), and stayed there. With the flag
 * the same runs keep 55–80 µs per message, stream after stream. Sweeping on
 * the main thread costs a little pause time per scavenge; at small messages
 * (16 workers × 1 KiB) no difference showed.
 */
import { setFlagsFromString } from 'node:v8';

/** The V8 flags {@link tuneRuntime} sets. */
export const RUNTIME_FLAGS = ['--no-concurrent-array-buffer-sweeping'] as const;

let tuned = false;

/** Apply {@link RUNTIME_FLAGS} to this process (once; later calls do nothing). */
export function tuneRuntime(): void {
  if (tuned) return;
  tuned = true;
  for (const flag of RUNTIME_FLAGS) setFlagsFromString(flag);
}
