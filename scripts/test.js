#!/usr/bin/env node
// Runs the compiled test files with Node's own test runner.
// Usage: node scripts/test.js [substring ...]  — only files whose path contains a substring.
// Test files run one at a time: they open real sockets, fork real processes and
// measure timing against real timers, and this project's machines have 2 shared cores.
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { spawnSync } from 'node:child_process';

const root = new URL('../dist/test/', import.meta.url).pathname;
const filters = process.argv.slice(2);

function walk(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const full = join(dir, name);
    if (statSync(full).isDirectory()) out.push(...walk(full));
    else if (name.endsWith('.test.js')) out.push(full);
  }
  return out;
}

const files = walk(root).filter((f) => filters.length === 0 || filters.some((s) => relative(root, f).includes(s)));
if (files.length === 0) {
  console.error(`no test files matched ${filters.join(' ')}`);
  process.exit(1);
}
const reporter = process.env.WSHUB_TEST_REPORTER ?? 'spec';
const res = spawnSync(
  process.execPath,
  ['--test', '--test-concurrency=1', `--test-reporter=${reporter}`, ...files],
  { stdio: 'inherit' },
);
process.exit(res.status ?? 1);
