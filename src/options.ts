/**
 * Option validation shared by every component: one zod schema per component,
 * validated once, the result frozen. Unknown keys are refused with their path
 * and, when one is close, the key that was probably meant.
 */
import { z } from './zod.js';
import { WshubError } from './errors.js';

/** Validate `input` against `schema` and return a frozen copy; throw `ERR_INVALID_OPTION` naming the key. */
export function parseOptions<S extends z.ZodType>(schema: S, input: unknown, where: string): Readonly<z.output<S>> {
  const result = schema.safeParse(input ?? {});
  if (!result.success) throw optionError(result.error, where, schema);
  const value = result.data;
  return (typeof value === 'object' && value !== null ? Object.freeze(value) : value);
}

/** Turn the first zod issue into one clear line: `upstreams.feed.adapter: expected one of raw|json|jsonrpc`. */
export function optionError(error: z.ZodError, where: string, schema?: z.ZodType): WshubError {
  const issue = error.issues[0];
  if (!issue) return new WshubError('ERR_INVALID_OPTION', `${where}: invalid`);
  const path = [where, ...issue.path.map(String)].filter(Boolean).join('.');
  if (issue.code === 'unrecognized_keys') {
    const known = knownKeysAt(schema, issue.path);
    const parts = issue.keys.map((key) => {
      const hint = closest(key, known);
      return `${path ? path + '.' : ''}${key}: unknown key${hint ? ` (did you mean "${hint}"?)` : ''}`;
    });
    return new WshubError('ERR_INVALID_OPTION', parts.join('; '), { details: { path, keys: issue.keys } });
  }
  return new WshubError('ERR_INVALID_OPTION', `${path}: ${issue.message}`, { details: { path } });
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
