import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ERROR_CATALOG, WshubError } from '../src/errors.js';

const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');

test('every error code in the catalog is documented in docs/errors.md', () => {
  const missing = Object.keys(ERROR_CATALOG).filter((code) => !new RegExp(`\\|\\s*\`${code}\`\\s*\\|`).test(doc));
  assert.deepEqual(missing, []);
});

test('docs/errors.md documents no code the catalog lacks (retired codes are marked retired)', () => {
  const documented = [...doc.matchAll(/^\|\s*`(ERR_[A-Z0-9_]+)`\s*\|(.*)$/gm)];
  const unknown = documented.filter(([, code, rest]) => !(code! in ERROR_CATALOG) && !/retired/i.test(rest!)).map((m) => m[1]);
  assert.deepEqual(unknown, []);
});

test('documented close codes match the catalog', () => {
  for (const [code, entry] of Object.entries(ERROR_CATALOG)) {
    const row = new RegExp(`^\\|\\s*\`${code}\`\\s*\\|\\s*([0-9]*|—)\\s*\\|`, 'm').exec(doc);
    assert.ok(row, `${code} has a table row`);
    const documentedClose = row[1] === '—' || row[1] === '' ? undefined : Number(row[1]);
    assert.equal(documentedClose, (entry as { closeCode?: number }).closeCode, `${code} close code`);
  }
});

test('WshubError carries code, close code, details and cause', () => {
  const cause = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
  const err = new WshubError('ERR_TCP_CONNECT', 'ERR_TCP_CONNECT 127.0.0.1:1', { cause, details: { phase: 'tcp', address: '127.0.0.1:1' } });
  assert.equal(err.code, 'ERR_TCP_CONNECT');
  assert.equal(err.cause, cause);
  assert.equal(err.details.phase, 'tcp');
  assert.deepEqual(err.toJSON(), { code: 'ERR_TCP_CONNECT', message: 'ERR_TCP_CONNECT 127.0.0.1:1', phase: 'tcp', address: '127.0.0.1:1', cause: 'ECONNREFUSED' });
  assert.equal(new WshubError('ERR_SLOW_CONSUMER', 'slow').closeCode, 1013);
});
