#!/usr/bin/env node
// Runs the compiled test files with Node's own test runner.
// Usage: node scripts/test.js [substring ...]  — only files whose path contains a substring.
//
// Test files run one at a time: they open real sockets, fork real processes and
// measure timing against real timers, and this project's machines have 2 shared cores.
//
// Each file runs under its own `node --test` with a deadline
// (WSHUB_TEST_FILE_TIMEOUT_S, default 300 s). Node's runner waits for a test
// file's process to exit, so a test that hangs, or a handle left open after a
// failure (a NATS connection, a server, a child process), used to hang the whole
// run with no word of which file. Past the deadline the file's process group is
// killed and the file fails, named, and the run goes on with the next file.
// `--test-force-exit` would end such a file too, but silently: a leak would pass.
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { spawn } from 'node:child_process';
import { clearTimeout, setTimeout } from 'node:timers';

// WSHUB_TEST_ROOT: another tree of compiled tests (this runner's own test points it at files made to hang).
const root = process.env.WSHUB_TEST_ROOT ?? new URL('../dist/test/', import.meta.url).pathname;
const filters = process.argv.slice(2);
const timeoutS = Number(process.env.WSHUB_TEST_FILE_TIMEOUT_S ?? 300);
if (!(timeoutS > 0)) {
  console.error(`WSHUB_TEST_FILE_TIMEOUT_S must be a positive number of seconds, got "${process.env.WSHUB_TEST_FILE_TIMEOUT_S}"`);
  process.exit(1);
}

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
// Run from inside another test run (this runner's own test), the inherited context would make each file report
// to that run's parent instead of to its reporters.
const childEnv = { ...process.env };
delete childEnv.NODE_TEST_CONTEXT;
const tapDir = mkdtempSync(join(tmpdir(), 'wshub-test-'));

/** The counts at the end of a TAP report (`# pass 12`); for a report cut short, the results it got to. */
function tapSummary(path) {
  let text;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
  const count = (key) => Number(new RegExp(`^# ${key} (\\d+)$`, 'm').exec(text)?.[1] ?? NaN);
  const tests = count('tests');
  if (!Number.isNaN(tests)) return { tests, pass: count('pass'), fail: count('fail'), skipped: count('skipped'), todo: count('todo'), complete: true };
  // Killed before its summary: count the top-level results it did report.
  const pass = text.match(/^ok \d+/gm)?.length ?? 0;
  const fail = text.match(/^not ok \d+/gm)?.length ?? 0;
  return { tests: pass + fail, pass, fail, skipped: 0, todo: 0, complete: false };
}

/** SIGKILL a file's process group: its runner, the file, whatever they forked. */
function killGroup(pid) {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // the group is already gone
  }
}

/** The running file's process group: a signal to this runner (Ctrl-C) ends it too, since it is not in our group. */
let running;
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    if (running) killGroup(running);
    rmSync(tapDir, { recursive: true, force: true });
    process.exit(1);
  });
}

/** Run one file; resolves with its outcome. */
function runFile(file, index) {
  const tap = join(tapDir, `${index}.tap`);
  const started = Date.now();
  // Its own process group, so a deadline kills the file's runner, the file and whatever they forked.
  const child = spawn(
    process.execPath,
    ['--test', `--test-reporter=${reporter}`, '--test-reporter-destination=stdout', '--test-reporter=tap', `--test-reporter-destination=${tap}`, file],
    { stdio: 'inherit', detached: true, env: childEnv },
  );
  running = child.pid;
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    killGroup(child.pid);
  }, timeoutS * 1000);
  return new Promise((resolve) => {
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      running = undefined;
      // Whatever the file left behind in its group goes with it.
      killGroup(child.pid);
      resolve({ file: relative(root, file), code, signal, timedOut, seconds: (Date.now() - started) / 1000, summary: tapSummary(tap) });
    });
  });
}

const totals = { tests: 0, pass: 0, fail: 0, skipped: 0, todo: 0 };
const failed = [];
const started = Date.now();
for (const [i, file] of files.entries()) {
  const r = await runFile(file, i);
  for (const key of Object.keys(totals)) totals[key] += r.summary?.[key] ?? 0;
  if (r.timedOut) {
    const got = r.summary ? `; ${r.summary.pass} of its tests had passed, ${r.summary.fail} failed` : '';
    failed.push(`${r.file}: did not exit within ${timeoutS} s (a hung test, or a handle left open after its tests); killed${got}`);
  } else if (r.code !== 0) {
    failed.push(`${r.file}: exited with ${r.signal ?? `code ${r.code}`}${r.summary?.complete ? `, ${r.summary.fail} failed` : ', before its report ended'}`);
  }
  if (r.seconds > timeoutS / 2 && !r.timedOut) console.log(`note: ${r.file} took ${Math.round(r.seconds)} s, over half its ${timeoutS} s deadline`);
}
rmSync(tapDir, { recursive: true, force: true });

console.log(`\n${files.length} test files in ${Math.round((Date.now() - started) / 1000)} s: ${totals.tests} tests, ${totals.pass} passed, ${totals.fail} failed, ${totals.skipped} skipped, ${totals.todo} todo`);
if (failed.length > 0) {
  console.log(`${failed.length} file(s) failed:`);
  for (const line of failed) console.log(`  ${line}`);
  process.exit(1);
}
