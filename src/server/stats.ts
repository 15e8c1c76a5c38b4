/**
 * Counters behind `HardenedServer.stats()`: one object, so the status page,
 * /status and /metrics never disagree.
 */
import type { ErrorCode } from '../errors.js';

export class Counters {
  accepted = 0;
  readonly rejected: Record<string, number> = {};
  readonly errors: Record<string, number> = {};
  readonly dropped: Record<string, number> = {};

  reject(code: ErrorCode): void {
    this.rejected[code] = (this.rejected[code] ?? 0) + 1;
  }

  error(code: ErrorCode): void {
    this.errors[code] = (this.errors[code] ?? 0) + 1;
  }

  drop(code: ErrorCode): void {
    this.dropped[code] = (this.dropped[code] ?? 0) + 1;
  }
}
