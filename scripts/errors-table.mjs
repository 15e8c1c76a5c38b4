#!/usr/bin/env node
// Rewrites the table of docs/errors.md from the catalog (src/errors.ts, compiled in dist/):
// the catalog is the one source; a retired code stays in the table, marked retired.
// Usage: npm run build && node scripts/errors-table.mjs
import { readFileSync, writeFileSync } from 'node:fs';

const { ERROR_CATALOG } = await import(new URL('../dist/src/errors.js', import.meta.url));
const file = new URL('../docs/errors.md', import.meta.url);
const doc = readFileSync(file, 'utf8');
const lines = doc.split('\n');
const start = lines.findIndex((l) => l.startsWith('| code |'));
let end = start + 2;
while (end < lines.length && lines[end].startsWith('|')) end++;
const retired = lines.slice(start + 2, end).filter((l) => /retired/i.test(l) && !Object.keys(ERROR_CATALOG).some((c) => l.startsWith(`| \`${c}\``)));
const rows = Object.entries(ERROR_CATALOG).map(([code, e]) => `| \`${code}\` | ${e.closeCode ?? '—'} | ${e.summary} |`);
lines.splice(start + 2, end - start - 2, ...rows, ...retired);
writeFileSync(file, lines.join('\n'));
console.log(`docs/errors.md: ${rows.length} codes, ${retired.length} retired`);
