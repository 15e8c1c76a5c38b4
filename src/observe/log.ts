/**
 * Logging: pino, one structured line per connection event. Library users pass
 * their own pino logger (or any object with pino's methods); without one,
 * wshub logs nothing.
 *
 * Secrets never reach a line: URLs logged under `url` lose their user info,
 * query values not on the public list and path segments that are secrets;
 * header maps logged under `headers` lose the values of credential headers,
 * whatever their case (pino's own `redact` paths are case-sensitive, so
 * `Authorization` would slip past them). A logger given a {@link Redactor}
 * (the daemon's, carrying every `${VAR}` value of the config) also replaces
 * those values wherever they appear in a finished line (see redact.ts).
 */
import { pino, type DestinationStream, type Logger, type LevelWithSilent } from 'pino';
import PinoPretty from 'pino-pretty';
import { REDACTED, Redactor, SECRET_HEADERS, STRUCTURAL_REDACTOR } from '../redact.js';

export type { Logger };
export { PUBLIC_QUERY_PARAMS, REDACTED, Redactor, SECRET_HEADERS, redactHeaders, redactUrl } from '../redact.js';

/** A logger that drops everything: the library default. */
export const silentLogger: Logger = pino({ level: 'silent' });


export interface CreateLoggerOptions {
  /** @default 'info' */
  level?: LevelWithSilent;
  /** @default 'wshub' */
  name?: string;
  /**
   * Human-readable lines (pino-pretty) instead of JSON. The daemon turns it on
   * when stdout is a terminal; pipes and files always get JSON lines.
   * @default false
   */
  pretty?: boolean;
  /** Where lines go. @default stdout */
  destination?: DestinationStream;
  /**
   * The secrets to keep out of every line (the daemon passes the one built
   * from its config's `${VAR}` values). @default structure only
   */
  redactor?: Redactor;
}

/** Create the daemon's logger: JSON lines, or pino-pretty when asked (the daemon asks when stdout is a TTY). */
export function createLogger(options: CreateLoggerOptions = {}): Logger {
  const redact = {
    paths: [
      ...SECRET_HEADERS.map((h) => `headers["${h}"]`),
      '*.headers.authorization',
      '*.headers.Authorization',
      'token',
      '*.token',
    ],
    censor: REDACTED,
  };
  const redactor = options.redactor ?? STRUCTURAL_REDACTOR;
  const serializers = {
    url: (value: unknown): unknown => (typeof value === 'string' ? redactor.url(value) : value),
    headers: (value: unknown): unknown => redactor.headers(value),
  };
  // The finished line, whatever field or message a secret ended up in (a close reason the
  // server echoed, an error message naming the URL). Replacements keep the JSON valid.
  const hooks = { streamWrite: (line: string): string => redactor.text(line) };
  const config = { level: options.level ?? 'info', name: options.name ?? 'wshub', redact, serializers, hooks };
  const destination = options.pretty
    ? PinoPretty({
        colorize: true,
        sync: true,
        translateTime: 'SYS:HH:MM:ss.l',
        ignore: 'pid,hostname,name',
        // One line per event on a terminal too: nested fields (addresses, err) inline, not one line per key.
        singleLine: true,
        errorLikeObjectKeys: [],
        ...(options.destination ? { destination: options.destination as NodeJS.WritableStream } : {}),
      })
    : options.destination;
  return destination ? pino(config, destination) : pino(config);
}
