/**
 * What a config reload changes, key by key. Only what changed is touched:
 * an upstream is replaced (a new connection) only when its connection target
 * or its adapter changed; its policies and limits apply in place; listener
 * settings need a restart, and the plan says which.
 */
import type { HubConfig, UpstreamConfig } from './config.js';

export interface ReloadPlan {
  added: string[];
  removed: string[];
  /** Connection target or adapter changed: a new upstream connection. */
  replaced: string[];
  /** Only policies or limits changed: applied in place. */
  tuned: string[];
  /** Top-level keys that changed but only take effect after a restart. */
  restartNeeded: string[];
}

/** Keys of an upstream entry that apply in place; every other key means a new connection. */
const IN_PLACE_KEYS: ReadonlyArray<keyof UpstreamConfig> = ['slowConsumer', 'maxQueueBytes', 'onUpstreamLoss', 'required'];
/** Top-level keys applied by a reload; the rest (listeners, token, server limits, …) need a restart. */
const RELOADED_TOP_KEYS: ReadonlyArray<keyof HubConfig> = ['upstreams', 'slowConsumer', 'maxQueueBytes', 'logLevel', 'secrets'];

export function planReload(before: HubConfig, after: HubConfig): ReloadPlan {
  const old = new Map(before.upstreams.map((u) => [u.name, u]));
  const next = new Map(after.upstreams.map((u) => [u.name, u]));
  const plan: ReloadPlan = { added: [], removed: [], replaced: [], tuned: [], restartNeeded: [] };
  for (const [name, was] of old) {
    const is = next.get(name);
    if (!is) plan.removed.push(name);
    else if (same(withoutInPlace(was), withoutInPlace(is))) {
      if (!same(was, is)) plan.tuned.push(name);
    } else plan.replaced.push(name);
  }
  for (const name of next.keys()) if (!old.has(name)) plan.added.push(name);
  for (const key of new Set([...Object.keys(before), ...Object.keys(after)]) as Set<keyof HubConfig>) {
    if (RELOADED_TOP_KEYS.includes(key)) continue;
    if (!same(before[key], after[key])) plan.restartNeeded.push(key);
  }
  return plan;
}

function withoutInPlace(u: UpstreamConfig): Record<string, unknown> {
  const copy: Record<string, unknown> = { ...u };
  for (const key of IN_PLACE_KEYS) delete copy[key];
  return copy;
}

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
