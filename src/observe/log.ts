/**
 * Logging: pino, one structured line per connection event. Library users pass
 * their own pino logger (or any object with pino's methods); without one,
 * wshub logs nothing.
 *
 * Secrets never reach a line: URLs logged under `url` lose their user info and
 * secret-looking query values, and header maps logged under `headers` lose the
 * values of credential headers, whatever their case (pino's own `redact`
 * paths are case-sensitive, so `Authorization` would slip past them).
 */
import { pino, type DestinationStream, type Logger, type LevelWithSilent } from 'pino';
import PinoPretty from 'pino-pretty';
import { REDACTED, SECRET_HEADERS, redactHeaders, redactUrl } from '../redact.js';

export type { Logger };

/** A logger that drops everything: the library default. */
export const silentLogger: Logger = pino({ level: 'silent' });

export { REDACTED, SECRET_HEADERS, redactHeaders, redactUrl } from '../redact.js';

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
  const serializers = {
    url: (value: unknown): unknown => (typeof value === 'string' ? redactUrl(value) : value),
    headers: redactHeaders,
  };
  const config = { level: options.level ?? 'info', name: options.name ?? 'wshub', redact, serializers };
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
