/**
 * The shape of a benchmark scenario, kept apart from bench/run.ts so a scenario
 * module imports only types (and run.ts's side effects never run twice).
 *
 * A scenario measures; it asserts nothing about speed. It returns plain JSON
 * data (numbers in ms unless the key says otherwise) plus a one-line `summary`
 * for the console. When it cannot run (not root, a binary missing) it throws an
 * Error naming what is missing; the runner records the failure.
 */

/** Options every scenario receives. */
export interface BenchOptions {
  /**
   * CI mode: fewer repetitions and smaller sizes so the whole quick suite ends
   * well under 2 minutes; the numbers are then only a smoke check.
   */
  quick: boolean;
}

/** What a scenario returns: JSON-serialisable data with a one-line summary. */
export interface BenchResult {
  /** One line for the console, e.g. `70 open in 212 ms; loop delay p99 3.1 ms`. */
  summary: string;
  [key: string]: unknown;
}

/** A benchmark scenario module's default export. */
export interface BenchScenario {
  /** File-name safe: results go to bench/results/<name>.json. */
  name: string;
  /** What is measured and against which baseline. */
  description: string;
  /** Runs only when named (`npm run bench -- chaos`), not in a plain `npm run bench`. */
  optIn?: boolean;
  run(opts: BenchOptions): Promise<BenchResult>;
}

/** Percentile (0–100) of `values` by nearest rank; undefined when empty. */
export function percentile(values: readonly number[], p: number): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank];
}

/** Round to `digits` decimals for readable JSON (undefined stays undefined). */
export function round(value: number | undefined, digits = 2): number | undefined {
  if (value === undefined || !Number.isFinite(value)) return value;
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}
