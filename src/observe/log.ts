/**
 * Logging: pino, one structured line per connection event. Library users pass
 * their own pino logger (or any object with pino's methods); without one,
 * wshub logs nothing.
 */
import { pino, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

/** A logger that drops everything: the library default. */
export const silentLogger: Logger = pino({ level: 'silent' });

/** Query parameters whose values are replaced by `[REDACTED]` in logged URLs. */
const SECRET_PARAM = /(token|key|secret|pass|auth|sig|signature|session|credential)/i;

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
    return q === -1 ? input : `${input.slice(0, q)}?[REDACTED]`;
  }
  if (url.username) url.username = 'REDACTED';
  if (url.password) url.password = 'REDACTED';
  for (const name of [...url.searchParams.keys()]) {
    if (SECRET_PARAM.test(name)) url.searchParams.set(name, 'REDACTED');
  }
  return url.toString().replace(/REDACTED/g, '[REDACTED]');
}

/** Header names whose values never reach a log line. */
export const SECRET_HEADERS = ['authorization', 'cookie', 'set-cookie', 'proxy-authorization', 'sec-websocket-protocol', 'x-api-key'];

/** Create the daemon's logger: JSON lines, or pino-pretty when stdout is a TTY and it is installed. */
export function createLogger(options: { level?: LevelWithSilent; name?: string } = {}): Logger {
  const redact = {
    paths: [
      ...SECRET_HEADERS.map((h) => `headers["${h}"]`),
      '*.headers.authorization',
      'token',
      '*.token',
    ],
    censor: '[REDACTED]',
  };
  return pino({ level: options.level ?? 'info', name: options.name ?? 'wshub', redact });
}
