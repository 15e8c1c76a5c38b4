/**
 * Cumulative histograms of how long each connect phase (DNS, TCP, TLS, HTTP
 * upgrade) took, over every successful attempt of a client's life: what
 * libwebsockets' Secure Streams `perf` object reports, kept as Prometheus
 * histograms are (fixed bounds, cumulative counts) so /metrics maps them 1:1.
 */
import { WshubError } from '../errors.js';
import type { ConnectPhase, ConnectPhaseHistograms, ConnectPhases, PhaseHistogram } from './types.js';

/** Upper bounds (ms) of every connect-phase histogram: a loopback dial lands in the first, a stalled one in the last. */
export const CONNECT_PHASE_BUCKETS_MS: readonly number[] = Object.freeze([1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000]);

/** Every phase, in dialing order. */
export const CONNECT_PHASES: readonly ConnectPhase[] = Object.freeze(['dns', 'tcp', 'tls', 'upgrade'] as const);

const FIELD: Record<ConnectPhase, keyof ConnectPhases> = { dns: 'dnsMs', tcp: 'tcpMs', tls: 'tlsMs', upgrade: 'upgradeMs' };

/** An empty histogram with the standard bounds. */
export function emptyHistogram(): PhaseHistogram {
  return { buckets: [...CONNECT_PHASE_BUCKETS_MS], counts: CONNECT_PHASE_BUCKETS_MS.map(() => 0), sum: 0, count: 0 };
}

/** Records the phases of successful attempts; `snapshot()` copies. */
export class PhaseRecorder {
  readonly #histograms: ConnectPhaseHistograms = {
    dns: emptyHistogram(), tcp: emptyHistogram(), tls: emptyHistogram(), upgrade: emptyHistogram(),
  };

  /** One successful attempt: every phase it went through (an absent DNS or TLS phase is not observed). */
  observe(phases: ConnectPhases): void {
    for (const phase of CONNECT_PHASES) {
      const ms = phases[FIELD[phase]];
      if (ms !== undefined && Number.isFinite(ms) && ms >= 0) observe(this.#histograms[phase], ms);
    }
  }

  snapshot(): ConnectPhaseHistograms {
    const copy = (h: PhaseHistogram): PhaseHistogram => ({ buckets: [...h.buckets], counts: [...h.counts], sum: h.sum, count: h.count });
    const h = this.#histograms;
    return { dns: copy(h.dns), tcp: copy(h.tcp), tls: copy(h.tls), upgrade: copy(h.upgrade) };
  }
}

function observe(h: PhaseHistogram, ms: number): void {
  h.count++;
  h.sum += ms;
  for (let i = 0; i < h.buckets.length; i++) if (ms <= (h.buckets[i] ?? Infinity)) h.counts[i] = (h.counts[i] ?? 0) + 1;
}

/**
 * The sum of several clients' histograms (e.g. every connection of a pool),
 * for one logical upstream's stats. Histograms with other bounds than
 * {@link CONNECT_PHASE_BUCKETS_MS} are refused rather than mis-added.
 */
export function mergeConnectPhases(all: ReadonlyArray<ConnectPhaseHistograms | undefined>): ConnectPhaseHistograms {
  const out: ConnectPhaseHistograms = { dns: emptyHistogram(), tcp: emptyHistogram(), tls: emptyHistogram(), upgrade: emptyHistogram() };
  for (const one of all) {
    if (!one) continue;
    for (const phase of CONNECT_PHASES) {
      const from = one[phase];
      const to = out[phase];
      if (from.buckets.length !== to.buckets.length || from.buckets.some((b, i) => b !== to.buckets[i])) {
        throw new WshubError('ERR_INVALID_OPTION', `mergeConnectPhases: the ${phase} histogram has other bucket bounds (${from.buckets.join(',')})`,
          { details: { path: phase } });
      }
      to.count += from.count;
      to.sum += from.sum;
      from.counts.forEach((c, i) => (to.counts[i] = (to.counts[i] ?? 0) + c));
    }
  }
  return out;
}
