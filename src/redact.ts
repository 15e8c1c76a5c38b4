/**
 * Redaction: what keeps secrets out of every line and every page wshub writes.
 *
 * Two rules, applied by one {@link Redactor} that every output goes through
 * (log lines, the stats snapshot behind /status, /events, the status page and
 * /metrics, and the daemon's error messages):
 *
 * 1. **Structure.** In a URL, user info is a secret, and so is every query
 *    value whose name is not on {@link PUBLIC_QUERY_PARAMS}. In a header map,
 *    credential headers ({@link SECRET_HEADERS}) are.
 * 2. **Provenance.** Every value the config took from the environment
 *    (`${VAR}`) is a secret, wherever it turns up: a URL path segment (a
 *    listen key), a negotiated subprotocol, a close reason the server echoed,
 *    an error message. These are found by value: the raw string and its
 *    percent-encoded and JSON-escaped forms are replaced by `[REDACTED]`.
 *    Values shorter than {@link MIN_SECRET_TEXT_LENGTH} are replaced only where
 *    they stand alone (a whole path segment, query value or header value):
 *    searching every line for `443` or `info` would mangle the output and
 *    protect nothing.
 *
 * Kept free of pino (and everything else of the daemon's) so that option
 * validation and the worker-side client can use it without loading the logger.
 */
import { WshubError } from './errors.js';

/** What replaces a secret in logs, /status and metrics. */
export const REDACTED = '[REDACTED]';

/**
 * Query parameters whose values are shown: names that select *what* a feed
 * sends, never who is asking. Compared case-insensitively. Every other query
 * value is redacted (an unknown name such as `jwt`, `bearer` or `listenKey`
 * may carry a credential, and a URL's query is where feeds put them).
 */
export const PUBLIC_QUERY_PARAMS: readonly string[] = Object.freeze([
  'streams', 'stream', 'topic', 'topics', 'channel', 'channels', 'symbol', 'symbols', 'market', 'markets',
  'interval', 'depth', 'speed', 'format', 'encoding', 'compress', 'compression', 'v', 'version', 'lang',
  'timeUnit', 'group', 'snapshot', 'slowConsumer',
]);

/** Header names whose values never reach a log line. */
export const SECRET_HEADERS: readonly string[] = Object.freeze(['authorization', 'cookie', 'set-cookie', 'proxy-authorization', 'sec-websocket-protocol', 'x-api-key']);

/** Header, query and option names that look like credentials even when not listed. */
export const SECRET_PARAM = /(token|key|secret|pass|auth|sig|signature|session|credential)/i;

/** True when a header or option name carries a credential (its value is never shown). */
export function isSecretName(name: string): boolean {
  const lower = name.toLowerCase();
  return SECRET_HEADERS.includes(lower) || SECRET_PARAM.test(lower);
}

/** Secrets at least this long are searched for in all text; shorter ones only where they stand alone. @default 6 */
export const MIN_SECRET_TEXT_LENGTH = 6;

/** A placeholder that survives URL serialization unchanged, swapped for {@link REDACTED} afterwards. */
const MARK = 'WSHUB0REDACTED0MARK';

export interface RedactorOptions {
  /** Query names shown in URLs. @default PUBLIC_QUERY_PARAMS */
  publicQueryParams?: readonly string[];
}

function decodeQueryPart(s: string): string {
  try {
    return decodeURIComponent(s.replaceAll('+', ' '));
  } catch {
    return s;
  }
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** The forms a value takes once it has been put in a URL or a JSON string. */
function variants(secret: string): string[] {
  const encoded = [secret, encodeURIComponent(secret), encodeURI(secret), new URLSearchParams({ s: secret }).toString().slice(2)];
  const out = new Set<string>();
  for (const e of encoded) {
    out.add(e);
    out.add(JSON.stringify(e).slice(1, -1));
  }
  return [...out];
}

/**
 * The one redaction function, carrying the set of secret strings. Grows
 * only: a reload that brings new secrets adds them, and a secret once seen
 * stays redacted for the life of the process.
 */
export class Redactor {
  readonly #secrets = new Set<string>();
  readonly #public: ReadonlySet<string>;
  #pattern: RegExp | undefined;

  constructor(secrets: Iterable<string> = [], options: RedactorOptions = {}) {
    this.#public = new Set((options.publicQueryParams ?? PUBLIC_QUERY_PARAMS).map((n) => n.toLowerCase()));
    this.add(secrets);
  }

  /** Secret strings known (empty strings are never secrets). */
  get size(): number {
    return this.#secrets.size;
  }

  /** Add secrets (e.g. those of a reloaded config). */
  add(secrets: Iterable<string>): void {
    let changed = false;
    for (const s of secrets) {
      if (s === '' || this.#secrets.has(s)) continue;
      this.#secrets.add(s);
      changed = true;
    }
    if (!changed) return;
    const searchable = [...this.#secrets].filter((s) => s.length >= MIN_SECRET_TEXT_LENGTH).flatMap(variants);
    const unique = [...new Set(searchable)].sort((a, b) => b.length - a.length);
    this.#pattern = unique.length === 0 ? undefined : new RegExp(unique.map(escapeRegExp).join('|'), 'g');
  }

  /** Whether `value` is, as a whole, a known secret. */
  isSecret(value: string): boolean {
    return this.#secrets.has(value);
  }

  /** Every known secret in `text` (in any of its encoded forms) replaced by `[REDACTED]`. */
  text(text: string): string {
    if (!this.#pattern) return text;
    this.#pattern.lastIndex = 0;
    return text.replace(this.#pattern, REDACTED);
  }

  /**
   * A URL safe to show: user info, query values not on the public list,
   * path segments that are (or contain) secrets, then every secret anywhere.
   * Never throws; an unparsable string loses everything after `?`.
   */
  url(input: string): string {
    let url: URL;
    try {
      url = new URL(input);
    } catch {
      const q = input.indexOf('?');
      return this.text(q === -1 ? input : `${input.slice(0, q)}?${REDACTED}`);
    }
    if (url.username) url.username = MARK;
    if (url.password) url.password = MARK;
    if (this.#secrets.size > 0) {
      const segments = url.pathname.split('/').map((segment) => {
        let decoded = segment;
        try {
          decoded = decodeURIComponent(segment);
        } catch {
          // A malformed escape: compare it as written.
        }
        return this.isSecret(decoded) || this.text(decoded) !== decoded ? MARK : segment;
      });
      url.pathname = segments.join('/');
    }
    if (url.search.length > 1) {
      // Part by part on the raw query, so shown values keep their spelling (`streams=a@trade/b@trade`).
      url.search = url.search.slice(1).split('&').map((part) => {
        const eq = part.indexOf('=');
        const name = eq === -1 ? part : part.slice(0, eq);
        const value = eq === -1 ? '' : part.slice(eq + 1);
        const shown = this.#public.has(decodeQueryPart(name).toLowerCase()) && !this.isSecret(decodeQueryPart(value));
        return shown ? part : `${name}=${MARK}`;
      }).join('&');
    }
    if (url.hash) url.hash = MARK;
    return this.text(url.toString().replaceAll(MARK, REDACTED));
  }

  /** A copy of a header map with credential headers (any case) and secret values replaced. */
  headers(headers: unknown): unknown {
    if (!headers || typeof headers !== 'object' || Array.isArray(headers)) return headers;
    const out: Record<string, unknown> = {};
    for (const [name, value] of Object.entries(headers as Record<string, unknown>)) {
      const lower = name.toLowerCase();
      const secret = SECRET_HEADERS.includes(lower) || SECRET_PARAM.test(lower) || (typeof value === 'string' && this.isSecret(value));
      out[name] = secret ? REDACTED : this.value(value);
    }
    return out;
  }

  /**
   * A deep copy of `value` with every string redacted (`url` fields as URLs,
   * `headers` fields as header maps); objects with `toJSON` (errors) are
   * serialized first, as JSON.stringify would. Map keys are redacted too.
   */
  value<T>(value: T): T {
    return this.#walk(value, undefined, 0) as T;
  }

  /** A copy of an error fit to print: message, stack and details redacted, code kept; the cause is left out. */
  error(err: unknown): unknown {
    if (!(err instanceof Error) || this.#secrets.size === 0) return err;
    if (err instanceof WshubError) {
      return new WshubError(err.code, this.text(err.message), { details: this.value(err.details), ...(err.closeCode === undefined ? {} : { closeCode: err.closeCode }) });
    }
    const copy = new Error(this.text(err.message));
    copy.stack = this.text(err.stack ?? copy.message);
    return copy;
  }

  #walk(value: unknown, key: string | undefined, depth: number): unknown {
    if (typeof value === 'string') {
      if (key === 'url') return this.url(value);
      return this.text(value);
    }
    if (value === null || typeof value !== 'object' || depth > 64) return value;
    if (key === 'headers') return this.headers(value);
    const json = (value as { toJSON?: () => unknown }).toJSON;
    if (typeof json === 'function') return this.#walk(json.call(value), key, depth + 1);
    if (Array.isArray(value)) return value.map((v) => this.#walk(v, undefined, depth + 1));
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[this.text(k)] = this.#walk(v, k, depth + 1);
    return out;
  }
}

/** The redactor with no secrets: structure only (user info, non-public query values, credential headers). */
export const STRUCTURAL_REDACTOR = new Redactor();

/**
 * A URL safe to show: user info and every query value whose name is not on
 * {@link PUBLIC_QUERY_PARAMS} replaced by `[REDACTED]` (and, given a
 * redactor, its secrets too). Never throws; an unparsable string is returned
 * with anything after `?` removed.
 */
export function redactUrl(input: string, redactor: Redactor = STRUCTURAL_REDACTOR): string {
  return redactor.url(input);
}

/** A copy of a header map with the values of credential headers (any case) replaced by `[REDACTED]`. */
export function redactHeaders(headers: unknown, redactor: Redactor = STRUCTURAL_REDACTOR): unknown {
  return redactor.headers(headers);
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
