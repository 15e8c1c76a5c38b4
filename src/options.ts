/**
 * Option validation shared by every component: one zod schema per component,
 * validated once, the result frozen. Unknown keys are refused with their path
 * and, when one is close, the key that was probably meant; every problem of
 * an input is reported at once.
 */
import { z } from './zod.js';
import { WshubError } from './errors.js';
import { isSecretName, redactUrl } from './redact.js';

/** Validate `input` against `schema` and return a frozen copy; throw `ERR_INVALID_OPTION` naming every bad key. */
export function parseOptions<S extends z.ZodType>(schema: S, input: unknown, where: string): Readonly<z.output<S>> {
  const result = schema.safeParse(input ?? {});
  if (!result.success) throw optionError(result.error, where, schema, input);
  const value = result.data;
  return (typeof value === 'object' && value !== null ? Object.freeze(value) : value);
}

/**
 * Turn every zod issue into one clear line, all of them joined with `; ` so a
 * user fixes a file in one pass: `upstreams.feed.adapter: expected one of
 * raw|json|jsonrpc, got "jsn"; logLevel: …`. With `input`, the offending
 * value is echoed (URLs redacted; values under secret-looking keys never).
 */
export function optionError(error: z.ZodError, where: string, schema?: z.ZodType, input?: unknown): WshubError {
  const problems = describeIssues(error, where, schema, input);
  if (problems.length === 0) return new WshubError('ERR_INVALID_OPTION', `${where}: invalid`);
  const first = error.issues[0]!;
  const path = [where, ...first.path.map(String)].filter(Boolean).join('.');
  const keys = error.issues.flatMap((i) => (i.code === 'unrecognized_keys' ? i.keys : []));
  return new WshubError('ERR_INVALID_OPTION', problems.join('; '), { details: { path, ...(keys.length ? { keys } : {}), problems } });
}

/** One line per problem of `error`, each starting with the key's full path. */
export function describeIssues(error: z.ZodError, where: string, schema?: z.ZodType, input?: unknown): string[] {
  const out: string[] = [];
  for (const issue of error.issues) {
    const path = [where, ...issue.path.map(String)].filter(Boolean).join('.');
    if (issue.code === 'unrecognized_keys') {
      const known = knownKeysAt(schema, issue.path);
      for (const key of issue.keys) {
        const hint = closest(key, known);
        out.push(`${path ? path + '.' : ''}${key}: unknown key${hint ? ` (did you mean "${hint}"?)` : ''}`);
      }
      continue;
    }
    out.push(`${path}: ${issue.message}${echo(input, issue.path)}`);
  }
  return [...new Set(out)];
}

/** `, got "value"` for the value at `path` in `input`, when it is safe and useful to show. */
function echo(input: unknown, path: readonly PropertyKey[]): string {
  if (input === undefined) return '';
  let node: unknown = input;
  for (const key of path) {
    if (isSecretName(String(key))) return '';
    if (node === null || typeof node !== 'object') return '';
    node = (node as Record<string, unknown>)[String(key)];
  }
  if (typeof node === 'string') {
    const shown = /^[a-z][a-z0-9+.-]*:\/\//i.test(node) ? redactUrl(node) : node;
    return `, got ${JSON.stringify(shown.length > 120 ? `${shown.slice(0, 120)}…` : shown)}`;
  }
  if (typeof node === 'number' || typeof node === 'boolean' || node === null) return `, got ${String(node)}`;
  return '';
}

function knownKeysAt(schema: z.ZodType | undefined, path: readonly PropertyKey[]): string[] {
  let node: unknown = schema;
  for (const key of path) {
    node = unwrap(node);
    if (node instanceof z.ZodObject) node = (node.shape)[String(key)];
    else if (node instanceof z.ZodRecord) node = node.valueType;
    else if (node instanceof z.ZodArray) node = node.element;
    else return [];
  }
  node = unwrap(node);
  return node instanceof z.ZodObject ? Object.keys(node.shape) : [];
}

function unwrap(node: unknown): unknown {
  let current = node;
  for (let i = 0; i < 8; i++) {
    if (current instanceof z.ZodOptional || current instanceof z.ZodDefault || current instanceof z.ZodNullable) {
      current = current.unwrap();
    } else if (current instanceof z.ZodPipe) {
      current = current.in;
    } else break;
  }
  return current;
}

function closest(key: string, known: string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(key.length / 3)) + 1;
  for (const candidate of known) {
    const d = editDistance(key.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return row[b.length]!;
}
