/**
 * The request bookkeeping of the `jsonrpc` adapter: every session request
 * waiting for an answer, the hub ids in flight at the upstream, each session's
 * share, and the deadline sweep. A call is answered exactly once — by the
 * upstream, by the hub (error), or never when its session left — and batch
 * members are collected into their batch.
 */
import type { SessionHandle } from './types.js';
import type { Batch, Call, LocalSub, UpstreamSub } from './jsonrpc-subs.js';

/** What a hub id at the upstream stands for. */
export type HubPending = { kind: 'call'; call: Call } | { kind: 'subscribe'; sub: UpstreamSub } | { kind: 'unsubscribe'; deadline: number };

export interface SessionState {
  readonly calls: Set<Call>;
  /** Local subscriptions by id text. */
  readonly subs: Map<string, LocalSub>;
  /** Subscribe calls waiting for the upstream. */
  subscribing: number;
}

export interface CallTableOptions {
  timeoutMs: number;
  /** Deliver an answer (a single response or a whole batch) to a session; `idText` is the request's id (a batch's first). */
  reply: (session: SessionHandle, payload: Buffer, idText: string) => void;
  /** A call passed its deadline; the table has not answered it (the adapter does, with `finish`). */
  onExpired: (call: Call) => void;
  /** The upstream never answered one of the hub's own unsubscribes. */
  onUnsubscribeExpired: () => void;
  /** A sweep ended (what it decided can be applied now). */
  onSwept: () => void;
}

export class CallTable {
  readonly sessions = new Map<SessionHandle, SessionState>();
  readonly calls = new Set<Call>();
  /** Hub ids in flight at the upstream. */
  readonly pending = new Map<number, HubPending>();
  readonly #options: CallTableOptions;
  #nextHubId = 1;
  #sweeper: NodeJS.Timeout | undefined;

  constructor(options: CallTableOptions) {
    this.#options = options;
  }

  state(session: SessionHandle): SessionState {
    let state = this.sessions.get(session);
    if (!state) this.sessions.set(session, (state = { calls: new Set(), subs: new Map(), subscribing: 0 }));
    return state;
  }

  /** A new call waiting for an answer; counted in its batch. */
  open(session: SessionHandle, state: SessionState, idText: string, batch: Batch | undefined): Call {
    const call: Call = { session, idText, batch, deadline: Date.now() + this.#options.timeoutMs, hubId: undefined, sent: false, sub: undefined };
    if (batch) batch.expected++;
    state.calls.add(call);
    this.calls.add(call);
    this.#ensureSweeper();
    return call;
  }

  /** Send `call` upstream under a fresh hub id; returns the id. Not `sent` until the upstream client says it was written. */
  dispatch(call: Call): number {
    const hubId = this.newHubId();
    call.hubId = hubId;
    call.sent = false;
    this.pending.set(hubId, { kind: 'call', call });
    return hubId;
  }

  /** Answer a call (once) and let go of it. */
  finish(call: Call, payload: Buffer | string): void {
    if (!this.forget(call)) return;
    const buf = typeof payload === 'string' ? Buffer.from(payload) : payload;
    if (!call.batch) this.#options.reply(call.session, buf, call.idText);
    else {
      call.batch.parts.push(buf);
      if (call.batch.complete) this.#options.reply(call.session, call.batch.encode(), call.idText);
    }
  }

  /** An answer the hub makes at once (no call needed): to the session, or into its batch. */
  answerNow(session: SessionHandle, batch: Batch | undefined, text: string, idText = 'null'): void {
    if (!batch) {
      this.#options.reply(session, Buffer.from(text), idText);
      return;
    }
    batch.expected++;
    batch.parts.push(Buffer.from(text));
  }

  /** A batch has all its members: answer it now if every answer is already there. */
  seal(session: SessionHandle, batch: Batch): void {
    batch.sealed = true;
    if (batch.complete) this.#options.reply(session, batch.encode(), 'null');
  }

  /** Drop a call from every index without answering; false when it was already gone. */
  forget(call: Call): boolean {
    if (!this.calls.delete(call)) return false;
    const state = this.sessions.get(call.session);
    state?.calls.delete(call);
    if (call.hubId !== undefined) this.pending.delete(call.hubId);
    if (call.sub) {
      call.sub.waiting.delete(call);
      if (state) state.subscribing--;
    }
    return true;
  }

  /** A hub request of the hub's own (subscribe, unsubscribe); returns its id. */
  track(pending: HubPending): number {
    const hubId = this.newHubId();
    this.pending.set(hubId, pending);
    if (pending.kind === 'unsubscribe') this.#ensureSweeper();
    return hubId;
  }

  /** Forget the hub's own requests: the connection they were written to is gone. */
  dropHubRequests(): void {
    for (const [hubId, pending] of this.pending) if (pending.kind !== 'call') this.pending.delete(hubId);
  }

  unsubscribeDeadline(): number {
    return Date.now() + this.#options.timeoutMs;
  }

  newHubId(): number {
    const id = this.#nextHubId;
    this.#nextHubId = id >= Number.MAX_SAFE_INTEGER ? 1 : id + 1;
    return id;
  }

  #ensureSweeper(): void {
    if (this.#sweeper) return;
    // A quarter of the timeout (bounded): a request is answered at most that late after its deadline.
    const every = Math.min(1000, Math.max(20, Math.floor(this.#options.timeoutMs / 4)));
    this.#sweeper = setInterval(() => this.#sweep(), every);
    this.#sweeper.unref();
  }

  #sweep(): void {
    const now = Date.now();
    for (const call of [...this.calls]) if (call.deadline <= now) this.#options.onExpired(call);
    let unsubscribes = 0;
    for (const [hubId, pending] of this.pending) {
      if (pending.kind !== 'unsubscribe') continue;
      if (pending.deadline > now) unsubscribes++;
      else {
        this.pending.delete(hubId);
        this.#options.onUnsubscribeExpired();
      }
    }
    this.#options.onSwept();
    if (this.calls.size === 0 && unsubscribes === 0 && this.#sweeper) {
      clearInterval(this.#sweeper);
      this.#sweeper = undefined;
    }
  }
}
