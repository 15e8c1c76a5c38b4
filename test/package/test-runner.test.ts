/**
 * The test command's own watchdog (scripts/test.js): a test file that never
 * exits — here one that leaves an interval running after its test passed, as
 * a leaked connection does — is killed at its deadline and fails the run,
 * named; the files after it still run. Before, such a file hung `npm test`
 * (and CI) with no word of which file it was.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { run, type CliResult } from '../cli/run.js';

const RUNNER = fileURLToPath(new URL('../../../scripts/test.js', import.meta.url));

/** scripts/test.js over the test files in `dir`, each with a deadline of `deadlineS`. */
function runner(dir: string, deadlineS: number): Promise<CliResult> {
  return run(process.execPath, [RUNNER], { env: { WSHUB_TEST_ROOT: dir, WSHUB_TEST_FILE_TIMEOUT_S: String(deadlineS), WSHUB_TEST_REPORTER: 'dot' }, timeoutMs: 30_000 });
}

/** A temp dir whose .js files are ES modules, as the compiled tests are. */
function testDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'wshub-runner-'));
  writeFileSync(join(dir, 'package.json'), '{"type":"module"}\n');
  return dir;
}

test('a test file that never exits is killed at its deadline and fails the run, named; later files still run', async () => {
  const dir = testDir();
  try {
    writeFileSync(join(dir, 'a-leaks.test.js'), "import { test } from 'node:test';\ntest('passes, then leaks', () => { setInterval(() => {}, 1000); });\n");
    writeFileSync(join(dir, 'b-fine.test.js'), "import { test } from 'node:test';\ntest('fine', () => {});\n");
    const r = await runner(dir, 3);
    assert.equal(r.status, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /a-leaks\.test\.js: did not exit within 3 s .*; killed; 1 of its tests had passed, 0 failed/);
    assert.doesNotMatch(r.stdout, /b-fine\.test\.js:/);
    // Both files' tests were counted: the leaking one passed its test, the next one ran.
    assert.match(r.stdout, /2 test files in \d+ s: 2 tests, 2 passed, 0 failed/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a run whose files all exit passes', async () => {
  const dir = testDir();
  try {
    writeFileSync(join(dir, 'fine.test.js'), "import { test } from 'node:test';\ntest('fine', () => {});\n");
    const r = await runner(dir, 20);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /1 test files in \d+ s: 1 tests, 1 passed, 0 failed/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
