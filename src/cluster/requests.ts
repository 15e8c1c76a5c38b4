/**
 * Worker frames from a hub that does not hold the upstream, to the one that
 * does: NATS request/reply on `wshub.<cluster>.<upstream>.req`.
 *
 * The forwarding hub sends the frame's bytes with `Wshub-Kind` (`send`: the
 * holder acknowledges once the frame is accepted for the upstream;
 * `request`: it answers with the upstream's answer), `Wshub-Epoch` (the
 * newest epoch the sender knows), `Wshub-Hub`, `Wshub-Timeout` and
 * `Wshub-Binary`. Only the holder subscribes, with no queue group, and it
 * checks its lease on every frame: a hub that is not (or no longer) the
 * holder stays silent, so a stale subscriber can never answer instead of the
 * real holder. Each request has its own reply inbox, so answers reach the
 * asking hub whatever ids the workers chose; the hub maps them back to its
 * worker. A reply carries the holder's epoch; an error reply carries a wshub
 * code in `Wshub-Error` and the message as payload.
 */
import { ERROR_CATALOG, WshubError, type ErrorCode } from '../errors.js';
import type { ClusterConnection } from './connect.js';
import type { HolderGuard } from './bus.js';
import type { Msg, MsgHdrs, Subscription } from './nats.js';
import { HEADER, UpstreamNames } from './subjects.js';

/** @see ForwardOptions.timeoutMs */
export const DEFAULT_FORWARD_TIMEOUT_MS = 10_000;

/** A worker frame on its way to the holder. */
export interface ForwardFrame {
  /** `send`: a frame for the upstream; `request`: a frame that expects an answer. */
  kind: 'send' | 'request';
  data: Uint8Array | string;
  isBinary: boolean;
}

export interface ForwardOptions {
  /** How long to wait for the holder's answer. @default 10000 */
  timeoutMs?: number;
  /** The newest epoch this hub knows (0: none). */
  epoch?: number;
}

/** The holder's answer. */
export interface ForwardReply {
  data: Uint8Array;
  isBinary: boolean;
  /** The epoch of the holder that answered. */
  epoch: number;
}

/** A frame as the holder receives it. */
export interface ForwardedFrame {
  kind: 'send' | 'request';
  data: Uint8Array;
  isBinary: boolean;
  /** The sending hub's id. */
  fromHub: string;
  /** The newest epoch the sender knew. */
  epoch: number;
  /** How long the sender waits, in ms. */
  timeoutMs: number;
}

/** How the holder answers one frame; only the first call counts. */
export interface Replier {
  reply(data: Uint8Array | string, isBinary: boolean): void;
  fail(code: ErrorCode, message: string): void;
}

export interface ClusterRequestsOptions {
  conn: ClusterConnection;
  cluster: string;
  upstream: string;
  hubId: string;
  /** The lease: frames are served only while it answers with an epoch. */
  guard: HolderGuard;
}

export interface RequestStats {
  forwarded: number;
  forwardFailed: number;
  served: number;
  /** Frames that reached this hub while it did not hold the lease (not answered). */
  ignoredNotHolder: number;
  malformed: number;
}

export class ClusterRequests {
  readonly names: UpstreamNames;
  readonly #conn: ClusterConnection;
  readonly #hubId: string;
  readonly #guard: HolderGuard;
  readonly #stats: RequestStats = { forwarded: 0, forwardFailed: 0, served: 0, ignoredNotHolder: 0, malformed: 0 };
  #sub: Subscription | undefined;

  constructor(options: ClusterRequestsOptions) {
    this.#conn = options.conn;
    this.#hubId = options.hubId;
    this.#guard = options.guard;
    this.names = new UpstreamNames(options.cluster, options.upstream);
  }

  get stats(): Readonly<RequestStats> {
    return { ...this.#stats };
  }

  /** True while serving (between `serve()` and `stopServing()`). */
  get serving(): boolean {
    return this.#sub !== undefined;
  }

  /**
   * Non-holder side: forward a frame to the holder and wait for its answer.
   * Rejects with `ERR_CLUSTER_NO_HOLDER` (nobody serves), `ERR_CLUSTER_REQUEST_TIMEOUT`,
   * `ERR_CLOSED`, or the code the holder failed with.
   */
  async forward(frame: ForwardFrame, options: ForwardOptions = {}): Promise<ForwardReply> {
    const timeoutMs = options.timeoutMs ?? DEFAULT_FORWARD_TIMEOUT_MS;
    const headers = this.#conn.lib.core.headers();
    headers.set(HEADER.kind, frame.kind);
    headers.set(HEADER.epoch, String(options.epoch ?? 0));
    headers.set(HEADER.hub, this.#hubId);
    headers.set(HEADER.timeout, String(timeoutMs));
    if (frame.isBinary) headers.set(HEADER.binary, '1');
    let msg: Msg;
    try {
      msg = await this.#conn.nc.request(this.names.requestSubject, frame.data, { timeout: timeoutMs, headers });
    } catch (err) {
      this.#stats.forwardFailed++;
      throw this.#mapError(err, timeoutMs);
    }
    const code = msg.headers?.get(HEADER.error);
    if (code) {
      this.#stats.forwardFailed++;
      const known = code in ERROR_CATALOG ? code as ErrorCode : 'ERR_UPSTREAM_UNAVAILABLE';
      throw new WshubError(known, new TextDecoder().decode(msg.data), { details: { remoteCode: code } });
    }
    this.#stats.forwarded++;
    return { data: msg.data, isBinary: msg.headers?.get(HEADER.binary) === '1', epoch: Number(msg.headers?.get(HEADER.epoch) ?? 0) };
  }

  /** Holder side: answer forwarded frames with `handler` (call when the lease is acquired). */
  serve(handler: (frame: ForwardedFrame, replier: Replier) => void): void {
    if (this.#sub) return;
    this.#sub = this.#conn.nc.subscribe(this.names.requestSubject, {
      callback: (err, msg) => { if (!err) this.#onFrame(msg, handler); },
    });
  }

  /** Stop answering (call when the lease is lost or fenced). */
  stopServing(): void {
    this.#sub?.unsubscribe();
    this.#sub = undefined;
  }

  #onFrame(msg: Msg, handler: (frame: ForwardedFrame, replier: Replier) => void): void {
    const epoch = this.#guard.holderEpoch();
    if (epoch === undefined) {
      // Not the holder (any more): silence, so that only the holder's answer reaches the sender.
      this.#stats.ignoredNotHolder++;
      return;
    }
    const kind = msg.headers?.get(HEADER.kind);
    if (!msg.reply || (kind !== 'send' && kind !== 'request')) {
      this.#stats.malformed++;
      return;
    }
    const reply = msg.reply;
    let answered = false;
    const respond = (data: Uint8Array | string, set: (h: MsgHdrs) => void): void => {
      if (answered) return;
      answered = true;
      const headers = this.#conn.lib.core.headers();
      headers.set(HEADER.epoch, String(epoch));
      set(headers);
      try {
        this.#conn.nc.publish(reply, data, { headers });
      } catch {
        // Connection closed, or an answer over max_payload: the sender times out.
      }
    };
    const replier: Replier = {
      reply: (data, isBinary) => respond(data, (h) => { if (isBinary) h.set(HEADER.binary, '1'); }),
      fail: (code, message) => respond(message, (h) => h.set(HEADER.error, code)),
    };
    this.#stats.served++;
    handler({
      kind,
      data: msg.data,
      isBinary: msg.headers?.get(HEADER.binary) === '1',
      fromHub: msg.headers?.get(HEADER.hub) ?? '',
      epoch: Number(msg.headers?.get(HEADER.epoch) ?? 0) || 0,
      timeoutMs: Number(msg.headers?.get(HEADER.timeout) ?? 0) || DEFAULT_FORWARD_TIMEOUT_MS,
    }, replier);
  }

  #mapError(err: unknown, timeoutMs: number): WshubError {
    const core = this.#conn.lib.core;
    const noResponders = err instanceof core.NoRespondersError
      || (err instanceof core.RequestError && err.isNoResponders());
    if (noResponders) {
      return new WshubError('ERR_CLUSTER_NO_HOLDER', `ERR_CLUSTER_NO_HOLDER no hub holds upstream ${this.names.upstream}`, { cause: err });
    }
    if (err instanceof core.TimeoutError || (err instanceof core.RequestError && err.cause instanceof core.TimeoutError)) {
      return new WshubError('ERR_CLUSTER_REQUEST_TIMEOUT', `ERR_CLUSTER_REQUEST_TIMEOUT the holder of ${this.names.upstream} did not answer within ${timeoutMs} ms`, { cause: err });
    }
    return new WshubError('ERR_CLOSED', `ERR_CLOSED cannot forward to the holder of ${this.names.upstream}: ${(err as Error).message}`, { cause: err });
  }
}
