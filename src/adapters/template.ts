/**
 * Frame templates of the `json` adapter, such as
 * `{"method":"SUBSCRIBE","params":["{topic}"],"id":{id}}`.
 *
 * A template is JSON in which `"{topic}"` may stand inside any string (also
 * with text around it: `"trades:{topic}"`) and `{id}` stands unquoted where the
 * request id goes. A one-element array `["{topic}"]` means "a list of topics",
 * so one session frame may subscribe to several topics and the hub may
 * subscribe several at once.
 *
 * The same template both builds frames (`render`) and recognizes a session's
 * own frames (`match`): every constant in the template must be equal in the
 * message, placeholders capture the topic(s) and the id; keys the template
 * does not name are allowed.
 */
import { WshubError } from '../errors.js';

const ID_SENTINEL = '\u0000wshub-id\u0000';
const TOPIC = '{topic}';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonId = string | number;

export interface TemplateMatch {
  topics: string[];
  id: JsonId | null | undefined;
}

export class FrameTemplate {
  readonly source: string;
  readonly #tree: Json;

  constructor(source: string, where: string) {
    this.source = source;
    try {
      this.#tree = JSON.parse(source.replace(/\{id\}/g, JSON.stringify(ID_SENTINEL))) as Json;
    } catch (err) {
      throw new WshubError('ERR_INVALID_OPTION', `${where}: not valid JSON with {topic} and {id} placeholders: ${(err as Error).message}`, { cause: err });
    }
    if (!source.includes(TOPIC)) throw new WshubError('ERR_INVALID_OPTION', `${where}: template has no "{topic}" placeholder`);
  }

  /** Whether one frame can carry several topics (`["{topic}"]`). */
  get multiTopic(): boolean {
    return hasTopicList(this.#tree);
  }

  render(topics: readonly string[], id: JsonId): string {
    return JSON.stringify(renderNode(this.#tree, topics, id));
  }

  match(message: unknown): TemplateMatch | undefined {
    const out: TemplateMatch = { topics: [], id: undefined };
    return matchNode(this.#tree, message, out) && out.topics.length > 0 ? out : undefined;
  }
}

function hasTopicList(node: Json): boolean {
  if (Array.isArray(node)) return (node.length === 1 && node[0] === TOPIC) || node.some(hasTopicList);
  if (node && typeof node === 'object') return Object.values(node).some(hasTopicList);
  return false;
}

function renderNode(node: Json, topics: readonly string[], id: JsonId): Json {
  if (node === ID_SENTINEL) return id;
  if (typeof node === 'string') return node.includes(TOPIC) ? node.replace(TOPIC, topics[0] ?? '') : node;
  if (Array.isArray(node)) {
    if (node.length === 1 && node[0] === TOPIC) return [...topics];
    return node.map((n) => renderNode(n, topics, id));
  }
  if (node && typeof node === 'object') {
    const out: { [key: string]: Json } = {};
    for (const [k, v] of Object.entries(node)) out[k] = renderNode(v, topics, id);
    return out;
  }
  return node;
}

function matchNode(node: Json, value: unknown, out: TemplateMatch): boolean {
  if (node === ID_SENTINEL) {
    if (value === undefined) return true;
    if (value === null || typeof value === 'string' || typeof value === 'number') {
      out.id = value;
      return true;
    }
    return false;
  }
  if (typeof node === 'string' && node.includes(TOPIC)) {
    if (typeof value !== 'string') return false;
    const [prefix = '', suffix = ''] = node.split(TOPIC);
    if (!value.startsWith(prefix) || !value.endsWith(suffix) || value.length <= prefix.length + suffix.length) return false;
    out.topics.push(value.slice(prefix.length, value.length - suffix.length));
    return true;
  }
  if (Array.isArray(node)) {
    if (!Array.isArray(value)) return false;
    if (node.length === 1 && node[0] === TOPIC) {
      if (value.length === 0 || !value.every((v) => typeof v === 'string' && v.length > 0)) return false;
      out.topics.push(...(value as string[]));
      return true;
    }
    return node.length === value.length && node.every((n, i) => matchNode(n, value[i], out));
  }
  if (node && typeof node === 'object') {
    if (!value || typeof value !== 'object' || Array.isArray(value)) return false;
    const record = value as Record<string, unknown>;
    return Object.entries(node).every(([k, v]) => matchNode(v, record[k], out));
  }
  return node === value;
}

/** Read a dotted field path (`arg.channel`) from a parsed message. */
export function getPath(value: unknown, path: readonly string[]): unknown {
  let current = value;
  for (const key of path) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<string, unknown>)[key];
  }
  return current;
}
