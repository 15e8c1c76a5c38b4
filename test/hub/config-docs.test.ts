/**
 * docs/config.md documents every config key: this walks the config schema
 * (src/hub/config.ts, and the upstream client's options an upstream entry
 * also takes) and fails on a key the page lacks or a key the page invents.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { z } from '../../src/zod.js';
import { configSchema, upstreamSchema } from '../../src/hub/config.js';
import { UPSTREAM_OPTIONS_SCHEMA } from '../../src/upstream/options.js';

const page = readFileSync(new URL('../../../docs/config.md', import.meta.url), 'utf8');

function unwrap(node: unknown): unknown {
  let current = node;
  for (let i = 0; i < 10; i++) {
    if (current instanceof z.ZodOptional || current instanceof z.ZodDefault || current instanceof z.ZodNullable) current = current.unwrap();
    else if (current instanceof z.ZodPipe) current = current.in;
    else return current;
  }
  return current;
}

/** Every key path under `node`: nested objects are walked, a record's values under `<name>`. */
function keyPaths(node: unknown, prefix: string): string[] {
  const inner = unwrap(node);
  const out: string[] = [];
  if (inner instanceof z.ZodObject) {
    for (const [key, child] of Object.entries(inner.shape)) {
      const path = prefix ? `${prefix}.${key}` : key;
      out.push(path, ...keyPaths(child, path));
    }
  } else if (inner instanceof z.ZodRecord) {
    out.push(...keyPaths(inner.valueType, `${prefix}.<name>`));
  }
  return out;
}

const schemaKeys = [
  ...keyPaths(configSchema, ''),
  // An upstream entry is loose: what is not a hub key is a ResilientWebSocket option.
  ...keyPaths(upstreamSchema, 'upstreams.<name>'),
  ...keyPaths(UPSTREAM_OPTIONS_SCHEMA, 'upstreams.<name>'),
];
const documented = new Set([...page.matchAll(/^\|\s*`([A-Za-z<>.]+)`\s*\|/gm)].map((m) => m[1]!));
const mentioned = (key: string): boolean => documented.has(key) || page.includes(`\`${key}\``);

test('the walk finds the schema\'s keys (it can fail)', () => {
  for (const key of ['listen', 'server.tokenOnUnix', 'upstreams', 'upstreams.<name>.adapter', 'upstreams.<name>.caFile', 'upstreams.<name>.backoff.maxAttempts', 'upstreams.<name>.queue.ttlMs']) {
    assert.ok(schemaKeys.includes(key), `${key} found by the walk`);
  }
});

test('docs/config.md documents every config key with a table row (type, default, meaning)', () => {
  const missing = [...new Set(schemaKeys)].filter((key) => !mentioned(key));
  assert.deepEqual(missing, [], 'keys of the schema missing from docs/config.md');
  for (const [, key, rest] of page.matchAll(/^\|\s*`([A-Za-z<>.]+)`\s*\|(.*)$/gm)) {
    const cells = rest!.split(/(?<!\\)\|/).map((c) => c.trim());
    assert.ok(cells.length >= 4 && cells[0] && cells[1] && cells[2], `${key}: type, default and meaning filled in`);
  }
});

test('docs/config.md lists no key the schema lacks', () => {
  const invented = [...documented].filter((key) => !schemaKeys.includes(key));
  assert.deepEqual(invented, []);
});
