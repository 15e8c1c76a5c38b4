/**
 * The hub's ledger (issue 12), read from its stats snapshot and checked: per
 * upstream and per session, in both directions, every message accepted is
 * delivered, dropped for a reason, or still in flight — and nothing else.
 *
 * This is the one place that knows the ledger's shape (docs/guarantees.md);
 * the chaos scenario only calls {@link checkLedger}. Read from `Hub.stats()`:
 *
 * - per upstream, `down` (upstream → hub): `ledger.in` — received = routed +
 *   consumed (delivered) + unrouted by reason (dropped);
 * - per upstream, `up` (hub → upstream): `ledger.out` — accepted = sent
 *   (delivered: handed to the kernel) + dropped by reason + held (in flight);
 * - per connection, `down` (hub → worker): offered = messagesOut + dropped
 *   by reason + queuedMessages (in flight);
 * - per session, `up` (worker → hub): received = forwarded + answered by the
 *   hub (delivered) + refused by reason.
 */

/** One direction of one ledger entry. */
export interface LedgerFlow {
  accepted: number;
  delivered: number;
  dropped: Record<string, number>;
  inFlight: number;
}

export interface LedgerEntry {
  upstream?: string;
  down: LedgerFlow;
  up: LedgerFlow;
}

export interface LedgerCheck {
  /** True when the ledger exists and every entry balances. */
  ok: boolean;
  /** What does not balance, one line each (or what is missing). */
  problems: string[];
  /** Printable table: one line per entry and direction. */
  lines: string[];
  /** Sums over the upstreams' entries. */
  totals: { down: LedgerFlow; up: LedgerFlow } | undefined;
  /** Messages still in flight anywhere (0 once everything settled). */
  inFlight: number;
}

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0;

function entries(group: unknown, key: 'name' | 'id'): Array<[string, unknown]> {
  if (Array.isArray(group)) {
    return group.map((e: unknown, i) => {
      const name = (e as Record<string, unknown> | undefined)?.[key];
      return [typeof name === 'string' || typeof name === 'number' ? String(name) : String(i), e];
    });
  }
  if (group && typeof group === 'object') return Object.entries(group);
  return [];
}

function emptyFlow(): LedgerFlow {
  return { accepted: 0, delivered: 0, dropped: {}, inFlight: 0 };
}

/** Check one flow; returns its problems (empty when it balances). */
function checkFlow(where: string, flow: unknown): string[] {
  if (!flow || typeof flow !== 'object') return [`${where}: missing`];
  const f = flow as Partial<LedgerFlow>;
  const problems: string[] = [];
  for (const k of ['accepted', 'delivered', 'inFlight'] as const) if (!isCount(f[k])) problems.push(`${where}.${k}: not a count (${JSON.stringify(f[k])})`);
  if (!f.dropped || typeof f.dropped !== 'object') problems.push(`${where}.dropped: missing`);
  else for (const [reason, n] of Object.entries(f.dropped)) if (!isCount(n)) problems.push(`${where}.dropped.${reason}: not a count (${JSON.stringify(n)})`);
  if (problems.length) return problems;
  const dropped = Object.values(f.dropped!).reduce((a, b) => a + b, 0);
  const accounted = f.delivered! + dropped + f.inFlight!;
  if (accounted !== f.accepted) problems.push(`${where}: accepted ${f.accepted} ≠ delivered ${f.delivered} + dropped ${dropped} + in flight ${f.inFlight} (${accounted}): ${f.accepted! - accounted} unaccounted`);
  return problems;
}

function describe(where: string, f: LedgerFlow): string {
  const drops = Object.entries(f.dropped).map(([r, n]) => `${r} ${n}`).join(', ') || 'none';
  return `${where.padEnd(28)} accepted ${String(f.accepted).padStart(9)}  delivered ${String(f.delivered).padStart(9)}  in flight ${String(f.inFlight).padStart(7)}  dropped: ${drops}`;
}

function add(into: LedgerFlow, f: LedgerFlow): void {
  into.accepted += f.accepted;
  into.delivered += f.delivered;
  into.inFlight += f.inFlight;
  for (const [r, n] of Object.entries(f.dropped)) into.dropped[r] = (into.dropped[r] ?? 0) + n;
}

interface HubStatsLike {
  upstreams?: Array<{
    name: string;
    ledger?: {
      in: { received: number; routed: number; consumed: number; unrouted: Record<string, number> };
      out: { accepted: number; sent: number; dropped: number; held: number; droppedByReason?: Record<string, number> };
    };
  }>;
  connections?: Array<{
    id: string;
    offered: number;
    messagesOut: number;
    queuedMessages: number;
    dropped: Record<string, number>;
    sessions: Array<{ id: string; upstream: string; ledger: { received: number; forwarded: number; answeredByHub: number; refused: Record<string, number> } }>;
  }>;
}

/** The hub's stats as ledger entries (the shape this module checks). */
function ledgerOf(stats: HubStatsLike): { upstreams: Record<string, LedgerEntry>; sessions: Record<string, Partial<LedgerEntry> & { upstream?: string }> } | undefined {
  if (!stats.upstreams?.every((u) => u.ledger)) return undefined;
  const upstreams: Record<string, LedgerEntry> = {};
  for (const u of stats.upstreams) {
    const { in: i, out: o } = u.ledger!;
    upstreams[u.name] = {
      down: { accepted: i.received, delivered: i.routed + i.consumed, dropped: { ...i.unrouted }, inFlight: 0 },
      up: { accepted: o.accepted, delivered: o.sent, dropped: o.droppedByReason ?? { dropped: o.dropped }, inFlight: o.held },
    };
  }
  const sessions: Record<string, Partial<LedgerEntry> & { upstream?: string }> = {};
  for (const c of stats.connections ?? []) {
    sessions[c.id] = { down: { accepted: c.offered, delivered: c.messagesOut, dropped: { ...c.dropped }, inFlight: c.queuedMessages } };
    for (const s of c.sessions) {
      const l = s.ledger;
      sessions[`${s.id}@${s.upstream}`] = { upstream: s.upstream, up: { accepted: l.received, delivered: l.forwarded + l.answeredByHub, dropped: { ...l.refused }, inFlight: 0 } };
    }
  }
  return { upstreams, sessions };
}

/** Read the hub's ledger from its stats and check that every entry balances in both directions. */
export function checkLedger(stats: unknown): LedgerCheck {
  const ledger = ledgerOf(stats as HubStatsLike);
  if (!ledger) {
    return { ok: false, problems: ['stats.upstreams[].ledger is missing: the hub keeps no ledger, so nothing can be proven accounted for'], lines: [], totals: undefined, inFlight: 0 };
  }
  const problems: string[] = [];
  const lines: string[] = [];
  const totals = { down: emptyFlow(), up: emptyFlow() };
  let inFlight = 0;
  const upstreams = entries(ledger.upstreams, 'name');
  if (upstreams.length === 0) problems.push('stats.ledger.upstreams: no entry');
  for (const [group, list] of [['upstream', upstreams], ['session', entries(ledger.sessions, 'id')]] as const) {
    for (const [name, entry] of list) {
      for (const dir of ['down', 'up'] as const) {
        const where = `${group} ${name} ${dir}`;
        const flow = (entry as Record<string, unknown> | undefined)?.[dir];
        if (group === 'session' && flow === undefined) continue;
        const p = checkFlow(where, flow);
        problems.push(...p);
        if (p.length) continue;
        const f = flow as LedgerFlow;
        lines.push(describe(where, f));
        // Sessions' flows are part of their upstream's: only the upstreams are added up.
        if (group === 'upstream') {
          add(totals[dir], f);
          inFlight += f.inFlight;
        }
      }
    }
  }
  return { ok: problems.length === 0, problems, lines, totals, inFlight };
}
