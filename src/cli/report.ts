/**
 * How the command line ends: one line on stderr per failure — `wshub: CODE:
 * what happened and what to do` — never a stack trace, and an exit code that
 * says which kind of failure it was (docs/cli.md):
 *
 * - 0 — done (or stopped by the user: Ctrl-C on `tail`);
 * - 1 — could not do it: a listener could not bind, the hub is unreachable,
 *   the hub refused the attach, the session ended abnormally;
 * - 2 — usage or configuration: a bad flag or argument, an invalid config
 *   file or key (the same for `serve` and `check`).
 */
import { Writable } from 'node:stream';
import { isWshubError } from '../errors.js';

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/** Codes that mean the input (flags, config) is wrong: exit 2. */
const USAGE_CODES = new Set(['ERR_INVALID_OPTION', 'ERR_CONFIG_FILE']);

/** The one line describing `err`. */
export function errorLine(err: unknown): string {
  if (isWshubError(err)) return `wshub: ${err.code}: ${err.message}`;
  const e = err as { code?: unknown; message?: unknown } | null;
  const code = typeof e?.code === 'string' ? `${e.code}: ` : '';
  const message = typeof e?.message === 'string' ? e.message : String(err);
  return `wshub: ${code}${message.split('\n')[0]}`;
}

/** The exit code for `err`. */
export function exitCodeOf(err: unknown): number {
  return isWshubError(err) && USAGE_CODES.has(err.code) ? EXIT_USAGE : EXIT_FAILURE;
}

/**
 * A failure already worth its one line, with something to do right after the
 * line is printed (e.g. let held log lines out: a log line may follow the
 * message, never precede it).
 */
export class CliFailure extends Error {
  constructor(readonly error: unknown, readonly afterReport: () => void = () => undefined, readonly exitCode?: number) {
    super(error instanceof Error ? error.message : String(error));
  }
}

/**
 * Standard output that holds every line until `release()`: the daemon's log
 * lines written while it starts come out only after the start succeeded, or
 * after the one-line error when it did not. A closed pipe (`| head`) ends
 * logging quietly instead of crashing the daemon.
 */
export class HeldStdout extends Writable {
  #held: Buffer[] | undefined = [];
  #broken = false;

  constructor() {
    super();
    process.stdout.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE') this.#broken = true;
    });
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (this.#held) this.#held.push(chunk);
    else if (!this.#broken) process.stdout.write(chunk);
    callback();
  }

  /** Write what was held and pass everything through from now on. Idempotent. */
  release(): void {
    const held = this.#held;
    this.#held = undefined;
    for (const chunk of held ?? []) if (!this.#broken) process.stdout.write(chunk);
  }
}
