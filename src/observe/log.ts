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

export type { Logger };

/** A logger that drops everything: the library default. */
export const silentLogger: Logger = pino({ level: 'silent' });

/** Query parameters whose values are replaced by `[REDACTED]` in logged URLs. */
const SECRET_PARAM = /(token|key|secret|pass|auth|sig|signature|session|credential)/i;

/** What replaces a secret in logs, /status and metrics. */
export const REDACTED = '[REDACTED]';

/**
 * A URL safe to log: user info and the values of secret-looking query
 * parameters replaced by `[REDACTED]`. Never throws; an unparsable string is
 * returned with anything after `?` removed.
 */
export function redactUrl(input: string): string {
  let url: URL;
  try {
    url = new URL(input);
  } catch {
    const q = input.indexOf('?');
    return q === -1 ? input : `${input.slice(0, q)}?${REDACTED}`;
  }
  if (url.username) url.username = 'REDACTED';
  if (url.password) url.password = 'REDACTED';
  for (const name of [...url.searchParams.keys()]) {
    if (SECRET_PARAM.test(name)) url.searchParams.set(name, 'REDACTED');
  }
  return url.toString().replace(/REDACTED/g, REDACTED);
}

/** Header names whose values never reach a log line. */
export const SECRET_HEADERS = ['authorization', 'cookie', 'set-cookie', 'proxy-authorization', 'sec-websocket-protocol', 'x-api-key'];

/** A copy of a header map with the values of credential headers (any case) replaced by `[REDACTED]`. */
export function redactHeaders(headers: unknown): unknown {
  if (!headers || typeof headers !== 'object' || Array.isArray(headers)) return headers;
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(headers as Record<string, unknown>)) {
    const lower = name.toLowerCase();
    out[name] = SECRET_HEADERS.includes(lower) || SECRET_PARAM.test(lower) ? REDACTED : value;
  }
  return out;
}

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
        ...(options.destination ? { destination: options.destination as NodeJS.WritableStream } : {}),
      })
    : options.destination;
  return destination ? pino(config, destination) : pino(config);
}
