/**
 * Benchmark runner: `npm run bench -- [--quick] [--list] [scenario …]`
 * (`node dist/bench/run.js`).
 *
 * Runs the named scenarios (all when none is named) one after another, writes
 * each result as JSON to bench/results/<scenario>.json (quick mode: to
 * dist/bench/report-quick/results/, never over the committed ones) with the
 * machine's facts (CPUs, Node version, kernel, date, commit) so numbers are
 * never read without their context, and prints one summary line per scenario.
 *
 * `--quick` is CI's smoke mode: scenarios use fewer repetitions, and each one
 * is bounded by {@link QUICK_SCENARIO_BUDGET_MS} so the suite cannot rot into a
 * slow job; nothing about speed is asserted. The exit code is 1 when a scenario
 * failed, 2 on a usage error.
 *
 * After the scenarios, bench/report.ts turns the results into bench/REPORT.md
 * with charts (quick mode: dist/bench/report-quick/REPORT.md instead).
 *
 * To add a scenario: write bench/<name>.ts whose default export is a
 * {@link BenchScenario}, and add it to {@link SCENARIOS}.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { arch, cpus, platform, release, totalmem } from 'node:os';
import { relative } from 'node:path';
import connectStorm from './connect-storm.js';
import daemon from './daemon.js';
import { killEverything } from './lib/procs.js';
import attachStorm from './attach-storm.js';
import chaos from './chaos.js';
import cluster from './cluster.js';
import flood from './flood.js';
import limits from './limits.js';
import memory from './memory.js';
import pool from './pool.js';
import relay from './relay.js';
import { resultsDir, writeReport } from './report.js';
import slowConsumer from './slow-consumer.js';
import type { BenchOptions, BenchResult, BenchScenario } from './scenario.js';

/** Every scenario, in the order `npm run bench` runs them. */
export const SCENARIOS: readonly BenchScenario[] = [limits, relay, daemon, slowConsumer, flood, connectStorm, attachStorm, memory, pool, cluster, chaos];

/** Upper bound on one scenario in quick mode; the whole quick suite must stay < 2 min. */
export const QUICK_SCENARIO_BUDGET_MS = 90_000;


/** Facts about the machine written next to every result. */
export function machineFacts(): Record<string, unknown> {
  const list = cpus();
  return {
    cpus: list.length,
    cpuModel: list[0]?.model,
    node: process.version,
    platform: platform(),
    arch: arch(),
    kernel: release(),
    totalMemMiB: Math.round(totalmem() / 2 ** 20),
    date: new Date().toISOString(),
    commit: commitMeasured(),
  };
}

/**
 * What a run writes itself (results, report, charts): not a change to what is
 * measured, so a scenario run after another one still names the plain commit.
 */
const BENCH_OUTPUTS = [':(exclude)bench/results', ':(exclude)bench/REPORT.md', ':(exclude)bench/report'];

/** The commit the numbers belong to (`+dirty` when the worktree had changes besides the bench's outputs), or undefined outside git. */
function commitMeasured(): string | undefined {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const status = ['status', '--porcelain', '--untracked-files=no', '--', '.', ...BENCH_OUTPUTS];
    const dirty = execFileSync('git', status, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() !== '';
    return dirty ? `${head}+dirty` : head;
  } catch {
    return undefined;
  }
}

function usage(): string {
  return `usage: node dist/bench/run.js [--quick] [--list] [scenario …]\nscenarios: ${SCENARIOS.map((s) => s.name).join(', ')}`;
}

async function withBudget(promise: Promise<BenchResult>, budgetMs: number | undefined, name: string): Promise<BenchResult> {
  if (budgetMs === undefined) return promise;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${name} exceeded the quick-mode budget of ${budgetMs} ms`)), budgetMs);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function main(argv: readonly string[]): Promise<number> {
  const flags = argv.filter((a) => a.startsWith('--'));
  const names = argv.filter((a) => !a.startsWith('--'));
  const unknownFlag = flags.find((f) => f !== '--quick' && f !== '--list' && f !== '--help');
  if (unknownFlag) {
    console.error(`unknown option ${unknownFlag}\n${usage()}`);
    return 2;
  }
  if (flags.includes('--help')) {
    console.log(usage());
    return 0;
  }
  if (flags.includes('--list')) {
    for (const s of SCENARIOS) console.log(`${s.name}\t${s.description}${s.optIn ? ' (runs only when named)' : ''}`);
    return 0;
  }
  const unknown = names.filter((n) => !SCENARIOS.some((s) => s.name === n));
  if (unknown.length > 0) {
    console.error(`unknown scenario ${unknown.join(', ')}\n${usage()}`);
    return 2;
  }
  const selected = names.length === 0 ? SCENARIOS.filter((s) => !s.optIn) : SCENARIOS.filter((s) => names.includes(s.name));
  const opts: BenchOptions = { quick: flags.includes('--quick') };
  const dir = resultsDir(opts.quick);
  mkdirSync(dir, { recursive: true });

  let failed = 0;
  for (const scenario of selected) {
    const started = performance.now();
    const record: Record<string, unknown> = { scenario: scenario.name, description: scenario.description, quick: opts.quick, machine: machineFacts() };
    const file = `${dir}${scenario.name}.json`;
    try {
      const result = await withBudget(scenario.run(opts), opts.quick ? QUICK_SCENARIO_BUDGET_MS : undefined, scenario.name);
      record.durationMs = Math.round(performance.now() - started);
      record.result = result;
      console.log(`${scenario.name}: ${result.summary} (${(Number(record.durationMs) / 1000).toFixed(1)} s) → ${relative(process.cwd(), file)}`);
    } catch (err) {
      failed++;
      record.durationMs = Math.round(performance.now() - started);
      record.error = err instanceof Error ? { message: err.message, stack: err.stack } : String(err);
      console.error(`${scenario.name}: FAILED: ${err instanceof Error ? err.message : String(err)}`);
    }
    writeFileSync(file, JSON.stringify(record, null, 2) + '\n');
  }
  try {
    console.log(`report → ${await writeReport(opts.quick)}`);
  } catch (err) {
    failed++;
    console.error(`report: FAILED: ${err instanceof Error ? err.message : String(err)}`);
  }
  return failed > 0 ? 1 : 0;
}

// Ctrl-C or a CI timeout: no finally block runs, so children (nats-server has
// no IPC channel to notice us going) are killed here.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    killEverything();
    process.exit(130);
  });
}

// A scenario may leave unref'd timers or child processes it failed to stop;
// exiting explicitly keeps `npm run bench` from hanging on them.
main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
