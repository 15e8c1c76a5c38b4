/**
 * Who gets a message of one topic: every ungrouped subscriber a copy; every
 * group exactly one copy, delivered to the member with the smallest backlog
 * (round-robin among equals, so an idle group spreads evenly).
 */
import type { UpstreamMessage } from './message.js';
import type { Session } from './session.js';

export class Audience {
  readonly solo = new Set<Session>();
  readonly groups = new Map<string, { members: Session[]; next: number }>();
  /** The topic's last message (its snapshot for late joiners). */
  last: UpstreamMessage | undefined;
  /** Messages published to it: the envelope `seq` of the next one. */
  seq = 0;

  get size(): number {
    let n = this.solo.size;
    for (const g of this.groups.values()) n += g.members.length;
    return n;
  }

  has(session: Session): boolean {
    if (session.group === undefined) return this.solo.has(session);
    return this.groups.get(session.group)?.members.includes(session) ?? false;
  }

  add(session: Session): boolean {
    if (session.group === undefined) {
      if (this.solo.has(session)) return false;
      this.solo.add(session);
      return true;
    }
    let group = this.groups.get(session.group);
    if (!group) {
      group = { members: [], next: 0 };
      this.groups.set(session.group, group);
    }
    if (group.members.includes(session)) return false;
    group.members.push(session);
    return true;
  }

  remove(session: Session): boolean {
    if (session.group === undefined) return this.solo.delete(session);
    const group = this.groups.get(session.group);
    if (!group) return false;
    const i = group.members.indexOf(session);
    if (i === -1) return false;
    group.members.splice(i, 1);
    if (group.members.length === 0) this.groups.delete(session.group);
    return true;
  }

  /**
   * Deliver to every solo member and one member per group, under `label`;
   * sessions in `skip` got it already. Returns the number of deliveries;
   * `got`, when given, collects who got it.
   */
  deliver(message: UpstreamMessage, label: string | undefined, skip?: ReadonlySet<Session>, got?: Set<Session>): number {
    message.numbered(label, ++this.seq);
    let n = 0;
    for (const session of this.solo) {
      if (skip?.has(session)) continue;
      session.deliver(message, label);
      got?.add(session);
      n++;
    }
    for (const group of this.groups.values()) {
      if (skip && group.members.some((m) => skip.has(m))) continue;
      const pick = pickMember(group);
      if (!pick) continue;
      pick.deliver(message, label);
      got?.add(pick);
      n++;
    }
    return n;
  }
}

function pickMember(group: { members: Session[]; next: number }): Session | undefined {
  const { members } = group;
  const count = members.length;
  if (count === 0) return undefined;
  let best: Session | undefined;
  let bestBacklog = Infinity;
  let bestIndex = 0;
  for (let k = 0; k < count; k++) {
    const i = (group.next + k) % count;
    const member = members[i]!;
    const backlog = member.backlogBytes;
    if (backlog < bestBacklog) {
      best = member;
      bestBacklog = backlog;
      bestIndex = i;
      if (backlog === 0) break;
    }
  }
  group.next = (bestIndex + 1) % count;
  return best;
}
