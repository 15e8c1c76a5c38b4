/**
 * The child side of the JSON-lines protocol used by test fixtures run as
 * separate processes (see {@link ./netns.ts} `NsProcess`): events out as one
 * JSON object per line on stdout, commands in as one JSON object per line on
 * stdin. Every event has a `type`; `at` (epoch ms) is added when missing.
 *
 * Fixtures must not write anything else on stdout (use stderr for diagnostics).
 */
import { createInterface } from 'node:readline';

/** A command sent by the test: `{cmd: 'send', ...}`. */
export interface Command {
  cmd: string;
  [key: string]: unknown;
}

/** Write one event line. */
export function emit(event: { type: string; [key: string]: unknown }): void {
  process.stdout.write(JSON.stringify({ at: Date.now(), ...event }) + '\n');
}

/**
 * Call `handler` for every command line on stdin. A handler that throws (or
 * rejects) produces an `{type: 'error', cmd, message}` event instead of
 * crashing the fixture. When stdin ends (the test went away), `onEnd` runs;
 * by default the process exits.
 */
export function onCommands(handler: (command: Command) => void | Promise<void>, onEnd: () => void = () => process.exit(0)): void {
  const rl = createInterface({ input: process.stdin });
  rl.on('line', (line) => {
    if (!line.trim()) return;
    let command: Command;
    try {
      command = JSON.parse(line) as Command;
    } catch {
      emit({ type: 'error', message: `not JSON: ${line.slice(0, 200)}` });
      return;
    }
    const fail = (err: unknown): void => emit({ type: 'error', cmd: command.cmd, message: err instanceof Error ? err.message : String(err) });
    try {
      const result = handler(command);
      if (result instanceof Promise) result.catch(fail);
    } catch (err) {
      fail(err);
    }
  });
  rl.on('close', onEnd);
}

/** Parse `--key value` pairs (and bare `--flag` as 'true') from argv. */
export function parseArgs(argv: readonly string[] = process.argv.slice(2)): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('--')) continue;
    const next = argv[i + 1];
    if (next === undefined || next.startsWith('--')) out[arg.slice(2)] = 'true';
    else {
      out[arg.slice(2)] = next;
      i++;
    }
  }
  return out;
}
