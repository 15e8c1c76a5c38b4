/**
 * Redaction of secrets before anything is shown: log lines, /status, error
 * messages that echo a config value or a server's answer. Kept free of pino
 * so that option validation and the worker-side client can use it without
 * loading the logger.
 */

/** Query parameters whose values are replaced by `[REDACTED]` in logged URLs. */
export const SECRET_PARAM = /(token|key|secret|pass|auth|sig|signature|session|credential)/i;

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

/** True when a header or option name carries a credential (its value is never shown). */
export function isSecretName(name: string): boolean {
  const lower = name.toLowerCase();
  return SECRET_HEADERS.includes(lower) || SECRET_PARAM.test(lower);
}

/** A copy of a header map with the values of credential headers (any case) replaced by `[REDACTED]`. */
export function redactHeaders(headers: unknown): unknown {
  if (!headers || typeof headers !== 'object' || Array.isArray(headers)) return headers;
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(headers as Record<string, unknown>)) {
    out[name] = isSecretName(name) ? REDACTED : value;
  }
  return out;
}

/**
 * Text from elsewhere (a server's error page) made safe and short enough to
 * quote on one line: every occurrence of a known secret replaced, URLs
 * redacted, control characters and runs of white space collapsed to one
 * space, cut to `maxBytes` of UTF-8 with `…` when longer.
 */
export function quoteSafely(text: string, secrets: readonly string[], maxBytes: number): string {
  let out = text;
  for (const secret of secrets) {
    // Very short values (e.g. "1") would blank unrelated text; they are not secrets worth the noise.
    if (secret.length >= 4) out = out.split(secret).join(REDACTED);
  }
  out = out.replace(/\b(?:wss?|https?):\/\/[^\s"'<>]+/g, (url) => redactUrl(url));
  // eslint-disable-next-line no-control-regex -- control characters are exactly what must not reach a terminal
  out = out.replace(/[\u0000-\u001f\u007f\s]+/g, ' ').trim();
  const bytes = Buffer.from(out, 'utf8');
  if (bytes.length <= maxBytes) return out;
  // Cut on a character boundary: a split multi-byte sequence decodes to U+FFFD, which is dropped.
  return `${bytes.subarray(0, maxBytes).toString('utf8').replace(/\uFFFD$/, '')}…`;
}
