import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
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

/** Every TypeScript source file under src/, with its text. */
function sources(dir = new URL('../../src/', import.meta.url)): Array<{ file: string; text: string }> {
  const out: Array<{ file: string; text: string }> = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const url = new URL(entry.name + (entry.isDirectory() ? '/' : ''), dir);
    if (entry.isDirectory()) out.push(...sources(url));
    else if (entry.name.endsWith('.ts')) out.push({ file: url.pathname.replace(/.*\/src\//, 'src/'), text: readFileSync(url, 'utf8') });
  }
  return out;
}

test('every catalog code is raised somewhere in src/ (a code nothing raises is a promise nothing keeps)', () => {
  const code = sources().filter((s) => s.file !== 'src/errors.ts').map((s) => s.text).join('\n');
  const never = Object.keys(ERROR_CATALOG).filter((c) => !code.includes(`'${c}'`));
  assert.deepEqual(never, []);
});

test('no close code is written as a literal: each comes from the catalog entry of the error that ends the session', () => {
  // 1000 (normal closure) ends nothing in error, and belongs to no catalog entry.
  const literal = /\.(?:close|end)\(\s*(\d{4})\b/g;
  const found: string[] = [];
  for (const { file, text } of sources()) {
    for (const m of text.matchAll(literal)) if (m[1] !== '1000') found.push(`${file}: ${m[0]}`);
  }
  assert.deepEqual(found, []);
});

test('a code from outside the catalog (a newer peer) never makes WshubError throw', () => {
  const err = new WshubError('ERR_FROM_THE_FUTURE' as never, 'newer hub');
  assert.equal(err.closeCode, undefined);
  assert.equal(err.code, 'ERR_FROM_THE_FUTURE');
});
