/**
 * Readiness: which upstreams must be open for `/healthz` to answer 200.
 *
 * - `all` (default): every upstream whose config has `required: true`
 *   (the default) is open.
 * - `any`: at least one upstream is open.
 * - `none`: always ready while the process serves HTTP (a pure liveness check).
 * - a list of upstream names: each of those is open, whatever `required` says.
 */
import { WshubError } from '../errors.js';
import type { HubStats } from '../hub/hub.js';

export type ReadyWhen = 'all' | 'any' | 'none' | readonly string[];

/** @default 'all' */
export const DEFAULT_READY_WHEN: ReadyWhen = 'all';

export interface UpstreamHealth {
  name: string;
  state: string;
  /** Whether this upstream counts for readiness under the current `readyWhen`. */
  required: boolean;
  /** Why it is not open (the last state change's reason); undefined while open. */
  reason: string | undefined;
  /** The error code behind that reason, when there is one. */
  cause: string | undefined;
}

export interface Health {
  ok: boolean;
  /** The rule applied, as given (`all`, `any`, `none` or `a,b`). */
  readyWhen: string;
  /** Why the hub is not ready, one line each; empty when ok. */
  reasons: string[];
  upstreams: UpstreamHealth[];
}

/** Parse `--ready-when`: `all` | `any` | `none` | comma-separated upstream names. */
export function parseReadyWhen(value: string): ReadyWhen {
  const v = value.trim();
  if (v === 'all' || v === 'any' || v === 'none') return v;
  const names = v.split(',').map((s) => s.trim()).filter(Boolean);
  if (names.length === 0) throw new WshubError('ERR_INVALID_OPTION', `--ready-when: expected all, any, none or upstream names separated by commas, got "${value}"`);
  return Object.freeze(names);
}

/** Refuse a `readyWhen` list naming upstreams the config does not have: a typo must not make a hub look ready or never ready. */
export function checkReadyWhen(readyWhen: ReadyWhen, configured: readonly string[]): void {
  if (typeof readyWhen === 'string') return;
  const unknown = readyWhen.filter((n) => !configured.includes(n));
  if (unknown.length > 0) {
    throw new WshubError('ERR_INVALID_OPTION', `--ready-when: unknown upstream ${unknown.map((n) => `"${n}"`).join(', ')}; configured: ${configured.join(', ') || '(none)'}`);
  }
}

export function formatReadyWhen(readyWhen: ReadyWhen): string {
  return typeof readyWhen === 'string' ? readyWhen : readyWhen.join(',');
}

/** Health from one stats snapshot. */
export function health(stats: HubStats, readyWhen: ReadyWhen = DEFAULT_READY_WHEN): Health {
  const listed = typeof readyWhen === 'string' ? undefined : new Set(readyWhen);
  const upstreams = stats.upstreams.map((u): UpstreamHealth => {
    const last = u.history.at(-1);
    const open = u.client.state === 'open';
    return {
      name: u.name,
      state: u.client.state,
      required: listed ? listed.has(u.name) : readyWhen === 'all' && u.required,
      reason: open ? undefined : (last?.reason ?? u.client.state),
      cause: open ? undefined : (last?.cause?.code ?? u.client.lastClose?.errorCode),
    };
  });
  const reasons: string[] = [];
  for (const u of upstreams) {
    if (u.required && u.state !== 'open') reasons.push(`upstream ${u.name} is ${u.state}: ${u.reason ?? ''}`.trim());
  }
  if (listed) {
    for (const name of listed) if (!upstreams.some((u) => u.name === name)) reasons.push(`upstream ${name} is not configured`);
  }
  if (readyWhen === 'any' && !upstreams.some((u) => u.state === 'open')) {
    reasons.push(upstreams.length === 0 ? 'no upstream is configured' : `no upstream is open (${upstreams.map((u) => `${u.name}: ${u.state}`).join(', ')})`);
  }
  return { ok: reasons.length === 0, readyWhen: formatReadyWhen(readyWhen), reasons, upstreams };
}
