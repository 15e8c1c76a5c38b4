/**
 * The subscription table of the `jsonrpc` adapter: one upstream subscription
 * per distinct `*_subscribe` call (method + canonical params), any number of
 * local subscriptions on it, each with its own id that a session sees.
 *
 * Local ids are the hub's, not the node's: they stay the same when the
 * upstream reconnects and hands out new ids, so a worker notices nothing but
 * the gap. They look like the node's own: 0x-prefixed hex strings (128 random
 * bits, like geth), or numbers when the node's ids are numbers.
 */
import { randomBytes } from 'node:crypto';
import type { SessionHandle } from './types.js';
import type { SplicePoint } from './json-scan.js';

/** A session's request waiting for its answer (from the upstream, or from an upstream subscribe it waits on). */
export interface Call {
  readonly session: SessionHandle;
  /** The request's id exactly as the worker wrote it. */
  readonly idText: string;
  readonly batch: Batch | undefined;
  readonly deadline: number;
  /** The hub-unique id the request went upstream with; undefined for a subscribe waiting on `sub`. */
  hubId: number | undefined;
  /** Written while the upstream was open (lost if it drops), rather than queued in its outbox. */
  sent: boolean;
  /** The upstream subscription this subscribe call waits on. */
  sub: UpstreamSub | undefined;
  /** An idempotent request's bytes and id position, kept so it can be sent again when its connection dies. */
  resend?: { raw: Buffer; idSpan: readonly [number, number] };
}

/** One session batch: answered with one array once every member that expects an answer has one. */
export class Batch {
  readonly parts: Buffer[] = [];
  expected = 0;
  sealed = false;

  get complete(): boolean {
    return this.sealed && this.expected > 0 && this.parts.length === this.expected;
  }

  /** The batch response: `[part,part,…]`. */
  encode(): Buffer {
    const pieces: Buffer[] = [Buffer.from('[')];
    this.parts.forEach((part, i) => {
      if (i > 0) pieces.push(Buffer.from(','));
      pieces.push(part);
    });
    pieces.push(Buffer.from(']'));
    return Buffer.concat(pieces);
  }
}

export interface UpstreamSub {
  /** `method` + canonical params; also the route topic, so /status lists it with its sessions. */
  readonly key: string;
  /** `eth` of `eth_subscribe`: only `eth_unsubscribe` ends it. */
  readonly namespace: string;
  /** The subscribe frame's method and params (canonical JSON, or undefined when the worker sent none). */
  readonly method: string;
  readonly paramsJson: string | undefined;
  /** The node's subscription id (canonical JSON) while it is live. */
  upstreamId: string | undefined;
  /** The hub id of the subscribe in flight. */
  hubId: number | undefined;
  /** Whether local ids are numbers; fixed by the node's first answer. */
  numericIds: boolean | undefined;
  readonly locals: Map<string, LocalSub>;
  readonly waiting: Set<Call>;
  /** Rotates the pick among equally idle members of a group. */
  turn: number;
}

export interface LocalSub {
  /** The local id as JSON text (`"0x…"` or `17`), the key everywhere. */
  readonly idText: string;
  readonly idBytes: Buffer;
  readonly session: SessionHandle;
  readonly sub: UpstreamSub;
  /** Conflation key: one per local subscription, so two ids of one session never conflate into each other. */
  readonly topic: string;
}

export function newUpstreamSub(key: string, namespace: string, method: string, paramsJson: string | undefined): UpstreamSub {
  return { key, namespace, method, paramsJson, upstreamId: undefined, hubId: undefined, numericIds: undefined, locals: new Map(), waiting: new Set(), turn: 0 };
}

/** Hub-wide unique local ids. */
export class LocalIds {
  readonly #taken: (idText: string) => boolean;
  #nextNumber = 1;

  constructor(taken: (idText: string) => boolean) {
    this.#taken = taken;
  }

  next(numeric: boolean): string {
    for (;;) {
      const text = numeric ? String(this.#nextNumber++) : `"0x${randomBytes(16).toString('hex')}"`;
      if (!this.#taken(text)) return text;
    }
  }
}

/**
 * Deliver one notification to every local subscription of `sub`, each with its
 * own id spliced in. A group (`?group=`) gets it once: the member with the
 * least backlog gets it for each of its local ids on this subscription.
 * Returns the number of frames delivered.
 */
export function fanOut(sub: UpstreamSub, point: SplicePoint, deliver: (local: LocalSub, payload: Buffer) => void): number {
  let n = 0;
  let groups: Map<string, Map<SessionHandle, LocalSub[]>> | undefined;
  for (const local of sub.locals.values()) {
    const group = local.session.group;
    if (group === undefined) {
      deliver(local, point.with(local.idBytes));
      n++;
      continue;
    }
    groups ??= new Map();
    let members = groups.get(group);
    if (!members) groups.set(group, (members = new Map<SessionHandle, LocalSub[]>()));
    const held = members.get(local.session);
    if (held) held.push(local);
    else members.set(local.session, [local]);
  }
  if (!groups) return n;
  sub.turn++;
  for (const members of groups.values()) {
    const sessions = [...members.keys()];
    let best: SessionHandle | undefined;
    for (let k = 0; k < sessions.length; k++) {
      const candidate = sessions[(sub.turn + k) % sessions.length]!;
      if (!best || candidate.backlogBytes < best.backlogBytes) best = candidate;
    }
    for (const local of members.get(best!) ?? []) {
      deliver(local, point.with(local.idBytes));
      n++;
    }
  }
  return n;
}
