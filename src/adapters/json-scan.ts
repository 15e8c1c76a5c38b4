/**
 * Byte-level JSON helpers of the `json` and `jsonrpc` adapters: find where a
 * member's value sits inside a message so an adapter can splice a new id in
 * without parsing and re-serializing the rest.
 *
 * Why not `JSON.parse` + `JSON.stringify`: a notification fanned out to 16
 * sessions would be serialized 16 times, and a round trip through JS numbers
 * silently changes integers above 2^53 (and `1.0` into `1`) in results the hub
 * has no business touching. Splicing keeps every other byte as the upstream
 * (or the worker) sent it.
 *
 * The scanner is defensive rather than validating: on anything it does not
 * understand it returns `undefined`, never throws, and always advances, so
 * malformed input from an upstream cannot loop or crash it. Session input is
 * validated with `JSON.parse` before it is scanned.
 */

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const LBRACE = 0x7b;
const RBRACE = 0x7d;
const LBRACKET = 0x5b;
const RBRACKET = 0x5d;
const COMMA = 0x2c;
const COLON = 0x3a;

/** A value's bytes: `[start, end)`. */
export type Span = readonly [start: number, end: number];

function isSpace(c: number | undefined): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

/** Index of the first non-whitespace byte at or after `i`. */
export function skipSpace(buf: Uint8Array, i: number): number {
  while (i < buf.length && isSpace(buf[i])) i++;
  return i;
}

/** The first non-whitespace byte of `buf` (for `{` / `[` checks), or undefined. */
export function firstByte(buf: Uint8Array): number | undefined {
  return buf[skipSpace(buf, 0)];
}

/** End (exclusive) of the string whose opening quote is at `i`, or -1. */
function endOfString(buf: Uint8Array, i: number): number {
  for (let j = i + 1; j < buf.length; j++) {
    const c = buf[j];
    if (c === BACKSLASH) j++;
    else if (c === QUOTE) return j + 1;
  }
  return -1;
}

/** End (exclusive) of the JSON value starting exactly at `i`, or -1. */
export function endOfValue(buf: Uint8Array, i: number): number {
  const c = buf[i];
  if (c === undefined) return -1;
  if (c === QUOTE) return endOfString(buf, i);
  if (c === LBRACE || c === LBRACKET) {
    let depth = 0;
    for (let j = i; j < buf.length; j++) {
      const d = buf[j];
      if (d === QUOTE) {
        const end = endOfString(buf, j);
        if (end < 0) return -1;
        j = end - 1;
      } else if (d === LBRACE || d === LBRACKET) {
        depth++;
      } else if (d === RBRACE || d === RBRACKET) {
        depth--;
        if (depth === 0) return j + 1;
      }
    }
    return -1;
  }
  if (c === RBRACE || c === RBRACKET || c === COMMA || c === COLON) return -1;
  // A number or a literal: runs to the next delimiter.
  let j = i;
  while (j < buf.length) {
    const d = buf[j];
    if (d === COMMA || d === RBRACE || d === RBRACKET || d === COLON || isSpace(d)) break;
    j++;
  }
  return j;
}

function decodeKey(buf: Uint8Array, start: number, end: number): string | undefined {
  const raw = Buffer.from(buf.buffer, buf.byteOffset + start, end - start);
  if (!raw.includes(BACKSLASH)) return raw.toString('utf8', 1, raw.length - 1);
  try {
    return JSON.parse(raw.toString('utf8')) as string;
  } catch {
    return undefined;
  }
}

/**
 * The value spans of the members of the object starting at `start` (after
 * whitespace), by key. A duplicated key keeps its last value, as `JSON.parse`
 * does. Undefined when the bytes there are not an object.
 */
export function objectMembers(buf: Uint8Array, start = 0): Map<string, Span> | undefined {
  let i = skipSpace(buf, start);
  if (buf[i] !== LBRACE) return undefined;
  const out = new Map<string, Span>();
  i = skipSpace(buf, i + 1);
  if (buf[i] === RBRACE) return out;
  for (;;) {
    if (buf[i] !== QUOTE) return undefined;
    const keyEnd = endOfString(buf, i);
    if (keyEnd < 0) return undefined;
    const key = decodeKey(buf, i, keyEnd);
    if (key === undefined) return undefined;
    i = skipSpace(buf, keyEnd);
    if (buf[i] !== COLON) return undefined;
    const valueStart = skipSpace(buf, i + 1);
    const valueEnd = endOfValue(buf, valueStart);
    if (valueEnd < 0) return undefined;
    out.set(key, [valueStart, valueEnd]);
    i = skipSpace(buf, valueEnd);
    if (buf[i] === RBRACE) return out;
    if (buf[i] !== COMMA) return undefined;
    i = skipSpace(buf, i + 1);
  }
}

/** The spans of the elements of the array starting at `start` (after whitespace); undefined when not an array. */
export function arrayElements(buf: Uint8Array, start = 0): Span[] | undefined {
  let i = skipSpace(buf, start);
  if (buf[i] !== LBRACKET) return undefined;
  const out: Span[] = [];
  i = skipSpace(buf, i + 1);
  if (buf[i] === RBRACKET) return out;
  for (;;) {
    const end = endOfValue(buf, i);
    if (end < 0) return undefined;
    out.push([i, end]);
    i = skipSpace(buf, end);
    if (buf[i] === RBRACKET) return out;
    if (buf[i] !== COMMA) return undefined;
    i = skipSpace(buf, i + 1);
  }
}

/** The text of a span (UTF-8). */
export function spanText(buf: Buffer, span: Span): string {
  return buf.toString('utf8', span[0], span[1]);
}

/** Parse the JSON value of a span; undefined when it is not valid JSON. */
export function spanValue(buf: Buffer, span: Span): unknown {
  try {
    return JSON.parse(spanText(buf, span)) as unknown;
  } catch {
    return undefined;
  }
}

/** `buf` with the bytes of `span` replaced by `insert`. */
export function splice(buf: Buffer, span: Span, insert: Buffer | string): Buffer {
  const middle = typeof insert === 'string' ? Buffer.from(insert) : insert;
  return Buffer.concat([buf.subarray(0, span[0]), middle, buf.subarray(span[1])], buf.length - (span[1] - span[0]) + middle.length);
}

/**
 * A precomputed splice point: the bytes before and after a value, so the same
 * message can be rebuilt with many different values (one per subscriber)
 * without scanning it again.
 */
export class SplicePoint {
  readonly #prefix: Buffer;
  readonly #suffix: Buffer;

  constructor(buf: Buffer, span: Span) {
    this.#prefix = buf.subarray(0, span[0]);
    this.#suffix = buf.subarray(span[1]);
  }

  with(value: Buffer): Buffer {
    return Buffer.concat([this.#prefix, value, this.#suffix], this.#prefix.length + value.length + this.#suffix.length);
  }
}

/**
 * JSON with object keys sorted at every depth: two sessions' params that mean
 * the same (`{"address":…,"topics":…}` in either order) give the same key.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v)).join(',')}]`;
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record).filter((k) => record[k] !== undefined).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(record[k])}`).join(',')}}`;
}
