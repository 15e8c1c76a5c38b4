/**
 * One attached worker connection: its outlet (the write side), its sessions
 * (one per upstream — and group — it uses), and its read side, which any of
 * those upstreams may pause while it cannot take more from the worker.
 */
import type WebSocket from 'ws';
import type { SlowConsumerPolicy } from './backlog.js';
import type { Outlet, OutletStats } from './outlet.js';
import type { Session, SessionStats } from './session.js';
import type { HubUpstream, PausableReader } from './upstream.js';

export type ConnectionMode = 'transparent' | 'envelope';

export interface ConnectionStats extends OutletStats {
  id: string;
  mode: ConnectionMode;
  transport: 'unix' | 'tcp';
  remoteAddress: string | undefined;
  attachedAt: number;
  messagesIn: number;
  bytesIn: number;
  /** Reading paused by upstreams that cannot take more from this worker right now. */
  readPaused: boolean;
  sessions: SessionStats[];
}

export class Connection implements PausableReader {
  readonly id: string;
  readonly mode: ConnectionMode;
  readonly ws: WebSocket;
  readonly outlet: Outlet;
  readonly peer: { transport: 'unix' | 'tcp'; remoteAddress?: string | undefined };
  readonly attachedAt = Date.now();
  /** Sessions by key (upstream, and group for envelope sessions). */
  readonly sessions = new Map<string, Session>();
  messagesIn = 0;
  bytesIn = 0;
  /** The worker asked for its own policy (`?slowConsumer=`): a reload leaves it as it is. */
  policyOverride: SlowConsumerPolicy | undefined;
  /** The upstream each session was joined to (a replaced upstream is another object). */
  readonly #upstreamOf = new Map<string, HubUpstream>();
  readonly #pausedBy = new Set<object>();

  constructor(options: { id: string; mode: ConnectionMode; ws: WebSocket; outlet: Outlet; peer: Connection['peer'] }) {
    this.id = options.id;
    this.mode = options.mode;
    this.ws = options.ws;
    this.outlet = options.outlet;
    this.peer = options.peer;
  }

  /** Attach `session` to `up`'s route under `key`; this connection then paces `up`. */
  join(key: string, up: HubUpstream, session: Session): void {
    this.sessions.set(key, session);
    this.#upstreamOf.set(key, up);
    up.route.attach(session);
    this.outlet.pace(up.pacer);
  }

  /** Detach the session under `key` from its upstream (its route, its pacing, its hold on our reading). */
  leave(key: string): void {
    const session = this.sessions.get(key);
    const up = this.#upstreamOf.get(key);
    if (!session || !up) return;
    this.sessions.delete(key);
    this.#upstreamOf.delete(key);
    up.route.detach(session);
    let stillThere = false;
    for (const other of this.#upstreamOf.values()) if (other === up) stillThere = true;
    if (!stillThere) {
      this.outlet.unpace(up.pacer);
      this.resumeReading(up);
    }
  }

  pauseReading(by: object): void {
    this.#pausedBy.add(by);
    if (this.#pausedBy.size === 1) this.ws.pause();
  }

  resumeReading(by: object): void {
    if (this.#pausedBy.delete(by) && this.#pausedBy.size === 0) this.ws.resume();
  }

  stats(): ConnectionStats {
    return {
      ...this.outlet.stats(),
      id: this.id,
      mode: this.mode,
      transport: this.peer.transport,
      remoteAddress: this.peer.remoteAddress,
      attachedAt: this.attachedAt,
      messagesIn: this.messagesIn,
      bytesIn: this.bytesIn,
      readPaused: this.#pausedBy.size > 0,
      sessions: [...this.sessions.values()].map((s) => s.stats()),
    };
  }
}
