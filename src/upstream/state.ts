/**
 * The upstream state machine's table of allowed moves. `setState()` in
 * resilient.ts refuses anything not listed here, so an impossible transition
 * is a loud bug instead of a silent inconsistency.
 */
import type { UpstreamState } from './types.js';

export const TRANSITIONS: Readonly<Record<UpstreamState, readonly UpstreamState[]>> = Object.freeze({
  idle: ['connecting', 'closed'],
  connecting: ['open', 'reconnecting', 'closed'],
  open: ['reconnecting', 'closed'],
  reconnecting: ['connecting', 'closed'],
  closed: [],
});

export function canMove(from: UpstreamState, to: UpstreamState): boolean {
  return TRANSITIONS[from].includes(to);
}
