/**
 * The cluster bench's ledger: every message the source sent, for every
 * worker, is either received by it or counted as dropped with a reason by
 * some hub — followed hop by hop, from each hub's `/status`:
 *
 *   source ─▶ holder (ledger.in.received) ─▶ NATS (bus.published, or refused
 *   with a reason) ─▶ each follower (bus.received, or dropped as stale /
 *   malformed) ─▶ its route (ledger.in) ─▶ each worker connection (offered =
 *   messagesOut + dropped by reason + queued) ─▶ the worker (sequence numbers).
 *
 * Each hub's own ledger must balance too (lib/ledger.ts). A hop that loses
 * messages without counting them (NATS dropping a follower's messages, a
 * hub's counters disagreeing with what its workers got) is a problem: the
 * scenario fails on any.
 */
import { checkLedger } from './ledger.js';
import type { HubStatus } from './cluster-lab.js';

/** What the workers' own ledgers said about one run of an arm. */
export interface ArmRun {
  sent: number;
  outOfOrder: number;
  /** Per worker (all workers of the arm, in index order). */
  workerReceived: number[];
  workerLost: number[];
}

/** One hub's account, totals over every run of its arm. */
export interface HubAccount {
  hub: string;
  role: string;
  workers: number;
  /** Messages the source sent (each of this hub's workers should get each). */
  sent: number;
  /** Messages this hub's route took in (from the upstream, or from NATS). */
  hubIn: number;
  /** Holder: messages published to NATS, and not published by reason. */
  published?: number;
  notPublished?: Record<string, number>;
  /** Follower: from NATS — received, and dropped by reason. */
  fromNats?: { received: number; dropped: Record<string, number> };
  /** Messages that reached no worker here for a reason counted before the workers (× workers, in `countedLost`). */
  upstreamSideDropped: Record<string, number>;
  /** Worker connections: offered, handed to the socket, still queued, dropped by reason (hub-wide, sessions gone included). */
  offered: number;
  handed: number;
  queued: number;
  dropped: Record<string, number>;
  /** From the workers' sequence numbers. */
  workersGot: number;
  workersLost: number;
  /** Losses the hubs counted with a reason, as the workers of this hub meet them. */
  countedLost: number;
  /** workersLost − countedLost: must be 0. */
  unaccounted: number;
  /** The hub's own ledger (lib/ledger.ts), one line per entry. */
  ledgerLines: string[];
}

export interface ArmAccount {
  hubs: HubAccount[];
  problems: string[];
  /** Sums over the hubs. */
  workersLost: number;
  countedLost: number;
  droppedByReason: Record<string, number>;
}

const sum = (values: Iterable<number>): number => {
  let n = 0;
  for (const v of values) n += v;
  return n;
};

function addInto(into: Record<string, number>, from: Record<string, number>, times = 1): void {
  for (const [k, v] of Object.entries(from)) if (v) into[k] = (into[k] ?? 0) + v * times;
}

/**
 * Account for every message of an arm. `statuses[h]` is hub h's `/status`
 * after everything settled (the holder first in the cluster arm),
 * `workersOf[h]` its workers' indices, `runs` every run of the arm.
 */
export function accountArm(names: string[], statuses: HubStatus[], workersOf: number[][], runs: ArmRun[]): ArmAccount {
  const problems: string[] = [];
  const sent = sum(runs.map((r) => r.sent));
  const outOfOrder = sum(runs.map((r) => r.outOfOrder));
  if (outOfOrder > 0) problems.push(`workers got ${outOfOrder} messages twice or out of order`);
  const holderBus = statuses[0]?.cluster?.upstreams[0]?.bus;
  const hubs: HubAccount[] = statuses.map((s, h) => {
    const name = names[h]!;
    const members = workersOf[h]!;
    const up = s.upstreams[0];
    const member = s.cluster?.upstreams[0];
    const role = member?.role ?? 'single';
    const check = checkLedger(s);
    for (const p of check.problems) problems.push(`${name}: own ledger: ${p}`);
    if (!up) {
      problems.push(`${name}: /status has no upstream`);
      return undefined;
    }
    const hubIn = up.ledger.in.received;
    const upstreamSide: Record<string, number> = { ...up.ledger.in.unrouted };
    const account: Partial<HubAccount> = {};
    if (role === 'follower' && holderBus && member) {
      const bus = member.bus;
      const dropped = { droppedStaleEpoch: bus.droppedStaleEpoch, droppedMalformed: bus.droppedMalformed };
      account.fromNats = { received: bus.received, dropped };
      addInto(upstreamSide, dropped);
      addInto(upstreamSide, { publishRefusedNotHolder: holderBus.publishRefusedNotHolder, publishRefusedTooLarge: holderBus.publishRefusedTooLarge });
      const natsMissing = holderBus.published - bus.received - bus.droppedStaleEpoch - bus.droppedMalformed;
      if (natsMissing !== 0) problems.push(`${name}: the holder published ${holderBus.published} messages; ${bus.received} arrived here from NATS and ${bus.droppedStaleEpoch + bus.droppedMalformed} were dropped with a reason: ${natsMissing} ${natsMissing > 0 ? 'lost without a count between NATS and this hub' : 'too many'}`);
      const fromCluster = bus.received + bus.unicastReceived;
      if (hubIn !== fromCluster) problems.push(`${name}: its route took in ${hubIn} upstream messages; its bus delivered ${fromCluster}`);
    } else {
      if (hubIn !== sent) problems.push(`${name}: the source sent ${sent} messages; the hub read ${hubIn}`);
      if (member && role === 'holder') {
        const notPublished = { publishRefusedNotHolder: member.bus.publishRefusedNotHolder, publishRefusedTooLarge: member.bus.publishRefusedTooLarge };
        account.published = member.bus.published;
        account.notPublished = notPublished;
        const gap = hubIn - member.bus.published - sum(Object.values(notPublished));
        if (gap !== 0) problems.push(`${name} (holder): read ${hubIn} upstream messages, published ${member.bus.published} to NATS, refused ${sum(Object.values(notPublished))}: ${gap} unaccounted`);
      } else if (role !== 'single') problems.push(`${name}: role ${role}, expected holder or follower`);
    }
    if (s.connections.length !== members.length) problems.push(`${name}: ${s.connections.length} worker connections attached at the end, expected ${members.length}`);
    const offered = sum(s.connections.map((c) => c.offered));
    const handed = sum(s.connections.map((c) => c.messagesOut));
    const queued = sum(s.connections.map((c) => c.queuedMessages));
    const dropped = { ...s.dropped };
    const workersGot = sum(runs.flatMap((r) => members.map((w) => r.workerReceived[w] ?? 0)));
    const workersLost = sum(runs.flatMap((r) => members.map((w) => r.workerLost[w] ?? 0)));
    if (handed !== workersGot) problems.push(`${name}: says it handed ${handed} messages to its ${members.length} workers; they got ${workersGot}`);
    // What the hub did not take in from upstream (a follower: what NATS did not bring) is missed by each of its workers.
    const missedUpstream = sent - hubIn;
    const countedLost = sum(Object.values(dropped)) + queued + members.length * sum(Object.values(upstreamSide));
    const unaccounted = workersLost - countedLost;
    if (unaccounted !== 0) {
      problems.push(`${name}: its workers lost ${workersLost} messages; the hubs counted ${countedLost} (hub drops ${sum(Object.values(dropped))}, queued ${queued}, ${members.length} × ${sum(Object.values(upstreamSide))} before the workers; ${members.length} × ${missedUpstream} never reached this hub): ${unaccounted} unaccounted`);
    }
    return {
      hub: name,
      role,
      workers: members.length,
      sent,
      hubIn,
      ...account,
      upstreamSideDropped: upstreamSide,
      offered,
      handed,
      queued,
      dropped,
      workersGot,
      workersLost,
      countedLost,
      unaccounted,
      ledgerLines: check.lines,
    };
  }).filter((a): a is HubAccount => a !== undefined);
  const droppedByReason: Record<string, number> = {};
  for (const a of hubs) {
    addInto(droppedByReason, a.dropped);
    addInto(droppedByReason, a.upstreamSideDropped, a.workers);
  }
  return { hubs, problems, workersLost: sum(hubs.map((a) => a.workersLost)), countedLost: sum(hubs.map((a) => a.countedLost)), droppedByReason };
}
