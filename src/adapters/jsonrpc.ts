/**
 * `jsonrpc`: one JSON-RPC 2.0 node connection (an Ethereum node: eth_call,
 * eth_subscribe, …) shared by a fleet of workers that each believe they talk
 * to the node alone. The contract is docs/jsonrpc.md; in short:
 *
 * - Every request id is rewritten to a hub-unique number on the way up and
 *   restored (the worker's exact bytes: `1` stays `1`, `"1"` stays `"1"`) on
 *   the way back. Ids are spliced in, never re-serialized, so nothing else in a
 *   request or an answer changes. Notifications (no id) go up verbatim.
 * - Batches are split: each member goes up on its own with its own hub id, and
 *   the worker gets one array with exactly its members' answers.
 * - `*_subscribe` calls with the same method and params share one upstream
 *   subscription; each call gets its own local id. Notifications are fanned
 *   out with the local id spliced into the node's bytes. The last local
 *   subscription leaving (unsubscribe, worker exit) unsubscribes upstream.
 *   After a reconnect every subscription is made again and mapped to the same
 *   local ids.
 * - The hub answers in JSON-RPC where the node cannot: parse errors, invalid
 *   requests, limits, a lost upstream, a timeout (see jsonrpc-messages.ts).
 */
import { z } from '../zod.js';
import { WshubError, type ErrorCode } from '../errors.js';
import { parseOptions } from '../options.js';
import {
  asRequest, errorResponse, isIdValue, resultResponse, rpcErrors, subscribeNamespace, unsubscribeNamespace, type RpcError, type RpcRequest,
} from './jsonrpc-messages.js';
import { arrayElements, canonicalJson, firstByte, objectMembers, SplicePoint, spanText, spanValue, splice, type Span } from './json-scan.js';
import { CallTable, type SessionState } from './jsonrpc-calls.js';
import { Batch, fanOut, LocalIds, newUpstreamSub, type Call, type LocalSub, type UpstreamSub } from './jsonrpc-subs.js';
import { OutcomeBuilder } from './outcome.js';
import type { Adapter, AdapterHost, Outcome, SessionHandle } from './types.js';

/** @see JsonRpcAdapterOptions.requestTimeoutMs */
export const DEFAULT_JSONRPC_REQUEST_TIMEOUT_MS = 30_000;
/** @see JsonRpcAdapterOptions.maxInFlight */
export const DEFAULT_JSONRPC_MAX_IN_FLIGHT = 1024;
/** @see JsonRpcAdapterOptions.maxSubscriptions */
export const DEFAULT_JSONRPC_MAX_SUBSCRIPTIONS = 1024;
/**
 * Read-only Ethereum methods: sending one again to another node after its
 * connection died cannot do harm. Anything else (eth_sendRawTransaction, a
 * node's admin methods) is answered with "upstream connection lost" instead —
 * the hub cannot know whether the dead node executed it.
 */
export const DEFAULT_JSONRPC_IDEMPOTENT_METHODS: readonly string[] = Object.freeze([
  'eth_blockNumber', 'eth_call', 'eth_chainId', 'eth_estimateGas', 'eth_feeHistory', 'eth_gasPrice', 'eth_getBalance',
  'eth_getBlockByHash', 'eth_getBlockByNumber', 'eth_getBlockReceipts', 'eth_getBlockTransactionCountByHash',
  'eth_getBlockTransactionCountByNumber', 'eth_getCode', 'eth_getLogs', 'eth_getProof', 'eth_getStorageAt',
  'eth_getTransactionByBlockHashAndIndex', 'eth_getTransactionByBlockNumberAndIndex', 'eth_getTransactionByHash',
  'eth_getTransactionCount', 'eth_getTransactionReceipt', 'eth_maxPriorityFeePerGas', 'eth_syncing',
  'net_listening', 'net_peerCount', 'net_version', 'web3_clientVersion', 'web3_sha3',
]);

export interface JsonRpcAdapterOptions {
  /** A request not answered within this long gets a -32002 "request timed out" error response. @default 30000 */
  requestTimeoutMs?: number;
  /** Requests (batch members count one each) a session may have waiting for answers. @default 1024 */
  maxInFlight?: number;
  /** Local subscriptions a session may hold (including subscribes still waiting). @default 1024 */
  maxSubscriptions?: number;
  /** Methods sent again on the next connection (another endpoint of a pool) when theirs dies mid-request. @default DEFAULT_JSONRPC_IDEMPOTENT_METHODS */
  idempotentMethods?: readonly string[];
}

const optionsSchema = z.strictObject({
  requestTimeoutMs: z.number().int().positive().default(DEFAULT_JSONRPC_REQUEST_TIMEOUT_MS),
  maxInFlight: z.number().int().positive().default(DEFAULT_JSONRPC_MAX_IN_FLIGHT),
  maxSubscriptions: z.number().int().positive().default(DEFAULT_JSONRPC_MAX_SUBSCRIPTIONS),
  idempotentMethods: z.array(z.string().min(1)).default(() => [...DEFAULT_JSONRPC_IDEMPOTENT_METHODS]),
});

/** Why something was refused or could not be routed; the keys of `stats().errors`. */
export type JsonRpcErrorKind =
  | 'parse' | 'invalidRequest' | 'tooManyRequests' | 'tooManySubscriptions' | 'subscriptionNotFound' | 'subscribeWithoutId'
  | 'timeout' | 'upstreamLost' | 'retried' | 'notSent' | 'subscribeRefused' | 'resubscribeRefused' | 'unmatchedResponse' | 'unknownSubscription' | 'unsubscribeUnanswered';

/** Figures for /status. */
export interface JsonRpcAdapterStats {
  /** Subscriptions the hub holds at the node (one per distinct method + params). */
  upstreamSubscriptions: number;
  /** Subscriptions the sessions hold (one per subscribe call answered). */
  localSubscriptions: number;
  /** Session requests waiting for an answer. */
  inFlight: number;
  upstreamSubscribes: number;
  upstreamUnsubscribes: number;
  /** Subscription notifications received, and frames delivered from them. */
  notifications: number;
  notificationDeliveries: number;
  errors: Partial<Record<JsonRpcErrorKind, number>>;
}

export class JsonRpcAdapter implements Adapter {
  readonly kind = 'jsonrpc' as const;
  readonly #host: AdapterHost;
  /** What the call being handled decided; returned (or applied, for timers) when it ends. */
  readonly #out = new OutcomeBuilder();
  readonly #options: Readonly<Required<JsonRpcAdapterOptions>>;
  readonly #table: CallTable;
  readonly #subs = new Map<string, UpstreamSub>();
  readonly #byUpstreamId = new Map<string, UpstreamSub>();
  readonly #locals = new Map<string, LocalSub>();
  readonly #localIds: LocalIds;
  readonly #idempotent: ReadonlySet<string>;
  /** Upstream ids of subscriptions made again on a failback's new connection: the old ones stream until the switch. */
  #superseded: string[] = [];
  readonly #errors: Partial<Record<JsonRpcErrorKind, number>> = {};
  #upstreamSubscribes = 0;
  #upstreamUnsubscribes = 0;
  #notifications = 0;
  #notificationDeliveries = 0;

  constructor(host: AdapterHost, options: JsonRpcAdapterOptions = {}) {
    this.#host = host;
    this.#options = parseOptions(optionsSchema, options, `upstreams.${host.upstream}`);
    this.#localIds = new LocalIds((text) => this.#locals.has(text));
    this.#idempotent = new Set(this.#options.idempotentMethods);
    this.#table = new CallTable({
      timeoutMs: this.#options.requestTimeoutMs,
      reply: (session, payload, idText) => this.#out.reply({ session, data: payload, answers: idText }),
      onExpired: (call) => this.#expire(call),
      onUnsubscribeExpired: () => this.#count('unsubscribeUnanswered'),
      onSwept: () => {
        if (!this.#out.empty) this.#host.apply(this.#out.take());
      },
    });
  }

  /** Build from an upstream's config entry (its keys may be present but undefined). */
  static fromConfig(host: AdapterHost, config: { requestTimeoutMs?: number | undefined; maxInFlight?: number | undefined; maxSubscriptions?: number | undefined; idempotentMethods?: string[] | undefined }): JsonRpcAdapter {
    const options: JsonRpcAdapterOptions = {};
    if (config.idempotentMethods !== undefined) options.idempotentMethods = config.idempotentMethods;
    if (config.requestTimeoutMs !== undefined) options.requestTimeoutMs = config.requestTimeoutMs;
    if (config.maxInFlight !== undefined) options.maxInFlight = config.maxInFlight;
    if (config.maxSubscriptions !== undefined) options.maxSubscriptions = config.maxSubscriptions;
    return new JsonRpcAdapter(host, options);
  }

  // ── from sessions ──────────────────────────────────────────────────────
  fromSession(session: SessionHandle, data: Buffer): Outcome {
    let value: unknown;
    try {
      value = JSON.parse(data.toString('utf8')) as unknown;
    } catch {
      this.#refuse(session, undefined, 'null', rpcErrors.parse(), 'parse', 'ERR_BAD_MESSAGE');
      return this.#out.take();
    }
    if (!Array.isArray(value)) {
      this.#member(session, value, data, undefined);
      return this.#out.take();
    }
    const spans = arrayElements(data);
    if (value.length === 0 || !spans || spans.length !== value.length) {
      this.#refuse(session, undefined, 'null', rpcErrors.invalid(value.length === 0 ? 'empty batch' : 'unreadable batch'), 'invalidRequest', 'ERR_BAD_MESSAGE');
      return this.#out.take();
    }
    const batch = new Batch();
    value.forEach((member, i) => {
      const span = spans[i]!;
      this.#member(session, member, data.subarray(span[0], span[1]), batch);
    });
    this.#table.seal(session, batch);
    return this.#out.take();
  }

  detached(session: SessionHandle): Outcome | undefined {
    const state = this.#table.sessions.get(session);
    if (!state) return undefined;
    this.#table.sessions.delete(session);
    for (const call of state.calls) this.#table.forget(call);
    for (const local of [...state.subs.values()]) this.#dropLocal(local, state);
    return this.#out.take();
  }

  abandoned(topics: readonly string[]): Outcome | undefined {
    for (const topic of topics) {
      const sub = this.#subs.get(topic);
      if (sub && sub.locals.size === 0 && sub.waiting.size === 0) this.#release(sub);
    }
    return this.#out.take();
  }

  /** One request, notification or batch member. `raw` is its own bytes. */
  #member(session: SessionHandle, value: unknown, raw: Buffer, batch: Batch | undefined): void {
    const request = asRequest(value);
    const members = typeof value === 'object' && value !== null && !Array.isArray(value) ? objectMembers(raw) : undefined;
    const idSpan = members?.get('id');
    if (typeof request === 'string' || (request.hasId && !idSpan)) {
      const idText = idSpan && isIdValue((value as { id?: unknown }).id) ? spanText(raw, idSpan) : 'null';
      this.#refuse(session, batch, idText, rpcErrors.invalid(typeof request === 'string' ? request : 'unreadable id'), 'invalidRequest', 'ERR_BAD_MESSAGE');
      return;
    }
    const idText = idSpan ? spanText(raw, idSpan) : undefined;
    const subscribeNs = subscribeNamespace(request.method);
    if (subscribeNs !== undefined) return this.#subscribe(session, request, subscribeNs, idText, batch);
    const unsubscribeNs = unsubscribeNamespace(request.method);
    if (unsubscribeNs !== undefined) return this.#unsubscribe(session, request, unsubscribeNs, idText, batch);
    if (!idSpan || idText === undefined) {
      // A notification: the node answers nothing, so neither does the hub.
      this.#out.upstream({ data: raw, isBinary: false, session });
      return;
    }
    const state = this.#table.state(session);
    if (state.calls.size >= this.#options.maxInFlight) {
      this.#refuse(session, batch, idText, rpcErrors.tooManyRequests(this.#options.maxInFlight), 'tooManyRequests', 'ERR_TOO_MANY_REQUESTS');
      return;
    }
    const call = this.#table.open(session, state, idText, batch);
    if (this.#idempotent.has(request.method)) call.resend = { raw, idSpan };
    const hubId = this.#table.dispatch(call);
    this.#out.upstream({ data: splice(raw, idSpan, String(hubId)), isBinary: false, session, tag: hubId });
  }

  #subscribe(session: SessionHandle, request: RpcRequest, namespace: string, idText: string | undefined, batch: Batch | undefined): void {
    if (idText === undefined) {
      // Without an id the worker could never learn its subscription id: an upstream subscription nobody could end.
      this.#count('subscribeWithoutId');
      this.#out.error(session, new WshubError('ERR_BAD_MESSAGE', `${request.method} without an id ignored: a subscription needs an id to be answered with`));
      return;
    }
    const state = this.#table.state(session);
    if (state.subs.size + state.subscribing >= this.#options.maxSubscriptions) {
      this.#refuse(session, batch, idText, rpcErrors.tooManySubscriptions(this.#options.maxSubscriptions), 'tooManySubscriptions', 'ERR_TOO_MANY_SUBSCRIPTIONS');
      return;
    }
    const paramsJson = request.params === undefined ? undefined : canonicalJson(request.params);
    const key = `${request.method}${paramsJson ?? ''}`;
    let sub = this.#subs.get(key);
    if (!sub) {
      sub = newUpstreamSub(key, namespace, request.method, paramsJson);
      this.#subs.set(key, sub);
    }
    if (sub.upstreamId !== undefined) {
      this.#table.answerNow(session, batch, resultResponse(idText, this.#grant(sub, session, state).idText), idText);
      return;
    }
    if (state.calls.size >= this.#options.maxInFlight) {
      this.#refuse(session, batch, idText, rpcErrors.tooManyRequests(this.#options.maxInFlight), 'tooManyRequests', 'ERR_TOO_MANY_REQUESTS');
      if (sub.locals.size === 0 && sub.waiting.size === 0) this.#subs.delete(key);
      return;
    }
    const call = this.#table.open(session, state, idText, batch);
    call.sub = sub;
    sub.waiting.add(call);
    state.subscribing++;
    if (sub.hubId === undefined && this.#host.upstreamOpen()) this.#sendSubscribe(sub);
  }

  #unsubscribe(session: SessionHandle, request: RpcRequest, namespace: string, idText: string | undefined, batch: Batch | undefined): void {
    const target = Array.isArray(request.params) ? (request.params as unknown[])[0] : undefined;
    const state = this.#table.sessions.get(session);
    const local = typeof target === 'string' || typeof target === 'number' ? state?.subs.get(JSON.stringify(target)) : undefined;
    if (!state || !local || local.sub.namespace !== namespace) {
      // Unknown, or someone else's: answered as geth does, and nothing else is touched.
      this.#count('subscriptionNotFound');
      if (idText !== undefined) this.#table.answerNow(session, batch, errorResponse(idText, rpcErrors.subscriptionNotFound()), idText);
      return;
    }
    this.#dropLocal(local, state);
    if (idText !== undefined) this.#table.answerNow(session, batch, resultResponse(idText, 'true'), idText);
  }

  // ── from the upstream ──────────────────────────────────────────────────
  fromUpstream(data: Buffer, isBinary: boolean): Outcome {
    if (!isBinary && firstByte(data) === 0x5b) {
      // A batch answer (the hub sends none, but a node may): route each member on its own.
      const members = arrayElements(data)?.map(([start, end]) => data.subarray(start, end));
      if (members?.some((m) => objectMembers(m) !== undefined)) {
        for (const member of members) if (this.#fromUpstream(member) === 'none') this.#out.broadcast(member);
        return this.#out.take({ publish: { to: 'none', reason: 'ERR_UNROUTED' } });
      }
    }
    if (isBinary) return { publish: { to: 'everyone' }, json: false };
    const verdict = this.#fromUpstream(data);
    if (verdict === 'none') return this.#out.take({ publish: { to: 'everyone' }, json: objectMembers(data) !== undefined });
    if (verdict === 'everyone') return this.#out.take({ publish: { to: 'everyone' }, json: true });
    return this.#out.take(verdict === 'orphan' ? { publish: { to: 'none', reason: 'ERR_ORPHAN_ANSWER' } }
      : verdict === 'unknown' ? { publish: { to: 'none', reason: 'ERR_UNKNOWN_SUBSCRIPTION' } } : { publish: { to: 'hub' } });
  }

  /**
   * Route one upstream message: `none` when it is none of ours (not a
   * JSON-RPC answer or notification), `everyone` for a notification that is
   * not a subscription's, else what became of it.
   */
  #fromUpstream(msg: Buffer): 'none' | 'everyone' | 'handled' | 'orphan' | 'unknown' {
    const members = objectMembers(msg);
    if (!members) return 'none';
    const idSpan = members.get('id');
    const methodSpan = members.get('method');
    if (methodSpan && !idSpan) {
      const method = spanValue(msg, methodSpan);
      if (typeof method === 'string' && method.endsWith('_subscription')) return this.#onNotification(msg, members);
      return 'everyone';
    }
    if (!idSpan || methodSpan) return 'none';
    const id = spanValue(msg, idSpan);
    const pending = typeof id === 'number' ? this.#table.pending.get(id) : undefined;
    if (!pending) {
      // An answer to a request that timed out or whose session left.
      this.#count('unmatchedResponse');
      return 'orphan';
    }
    this.#table.pending.delete(id as number);
    if (pending.kind === 'call') this.#table.finish(pending.call, splice(msg, idSpan, pending.call.idText));
    else if (pending.kind === 'subscribe') this.#onSubscribed(pending.sub, msg, members, idSpan);
    return 'handled';
  }

  #onNotification(msg: Buffer, members: Map<string, Span>): 'handled' | 'unknown' {
    const paramsSpan = members.get('params');
    const subscriptionSpan = paramsSpan ? objectMembers(msg, paramsSpan[0])?.get('subscription') : undefined;
    const upstreamId = subscriptionSpan ? spanValue(msg, subscriptionSpan) : undefined;
    const sub = upstreamId === undefined ? undefined : this.#byUpstreamId.get(JSON.stringify(upstreamId));
    if (!sub || !subscriptionSpan) {
      // Typically a notification already on the wire when the last subscriber unsubscribed.
      this.#count('unknownSubscription');
      return 'unknown';
    }
    this.#notifications++;
    this.#notificationDeliveries += fanOut(sub, new SplicePoint(msg, subscriptionSpan), (local, payload) => this.#out.reply({ session: local.session, data: payload, topic: local.topic, countAs: sub.key }));
    return 'handled';
  }

  #onSubscribed(sub: UpstreamSub, msg: Buffer, members: Map<string, Span>, idSpan: Span): void {
    sub.hubId = undefined;
    const resultSpan = members.get('result');
    const result = resultSpan && !members.has('error') ? spanValue(msg, resultSpan) : undefined;
    if (typeof result !== 'string' && typeof result !== 'number') {
      // The node refused: each waiting session gets the node's own answer with its own id.
      for (const call of [...sub.waiting]) this.#table.finish(call, splice(msg, idSpan, call.idText));
      if (sub.locals.size > 0) this.#count('resubscribeRefused');
      else {
        this.#count('subscribeRefused');
        if (this.#subs.get(sub.key) === sub) this.#subs.delete(sub.key);
      }
      return;
    }
    sub.upstreamId = JSON.stringify(result);
    sub.numericIds ??= typeof result === 'number';
    if (this.#subs.get(sub.key) !== sub || (sub.locals.size === 0 && sub.waiting.size === 0)) {
      // Everyone left while it was being made.
      this.#sendUnsubscribe(sub.namespace, sub.upstreamId);
      if (this.#subs.get(sub.key) === sub) this.#subs.delete(sub.key);
      return;
    }
    this.#byUpstreamId.set(sub.upstreamId, sub);
    for (const call of [...sub.waiting]) {
      const state = this.#table.sessions.get(call.session);
      if (!state) continue;
      const local = this.#grant(sub, call.session, state);
      this.#table.finish(call, resultResponse(call.idText, local.idText));
    }
  }

  opened(_reconnect?: boolean, _topics?: readonly string[]): Outcome | undefined {
    for (const sub of [...this.#subs.values()]) {
      if (sub.locals.size === 0 && sub.waiting.size === 0) this.#subs.delete(sub.key);
      else if (sub.hubId === undefined && sub.upstreamId === undefined) this.#sendSubscribe(sub);
    }
    return this.#out.take();
  }

  /** A request was handed to the kernel: if the upstream drops now, its answer cannot come. */
  sent(tag: unknown): void {
    const pending = typeof tag === 'number' ? this.#table.pending.get(tag) : undefined;
    if (pending?.kind === 'call') pending.call.sent = true;
  }

  /** A frame never reached the node: a request is answered with a JSON-RPC error at once, never left to its timeout. */
  refused(tag: unknown, error: WshubError): Outcome | undefined {
    const pending = typeof tag === 'number' ? this.#table.pending.get(tag) : undefined;
    if (!pending) return undefined;
    if (pending.kind === 'call' && pending.call.resend && error.code === 'ERR_CONNECTION_LOST') {
      // Read-only and lost with its connection: sent again on the next one.
      this.#count('retried');
      this.#table.pending.delete(tag as number);
      const hubId = this.#table.dispatch(pending.call);
      this.#out.upstream({ data: splice(pending.call.resend.raw, pending.call.resend.idSpan, String(hubId)), isBinary: false, session: pending.call.session, tag: hubId });
    } else if (pending.kind === 'call') {
      this.#count('notSent');
      this.#table.finish(pending.call, errorResponse(pending.call.idText, rpcErrors.notSent(error)));
    } else if (pending.kind === 'subscribe') {
      // Made again by the replay on the next open.
      this.#table.pending.delete(tag as number);
      pending.sub.hubId = undefined;
    } else this.#table.pending.delete(tag as number);
    return this.#out.take();
  }

  down(_cause: WshubError | undefined, final: boolean): Outcome | undefined {
    const error = final ? rpcErrors.upstreamClosed(this.#host.upstream) : rpcErrors.upstreamLost(this.#host.upstream);
    for (const call of [...this.#table.calls]) {
      // Requests not yet written go out on reconnect; written ones are lost with the socket.
      // Subscribes waiting on an upstream subscription complete after the reconnect re-subscribes.
      if (!final && !(call.hubId !== undefined && call.sent)) continue;
      if (!final && call.resend) {
        // Read-only: sent again, to the next connection (another endpoint of the pool, or the same one back).
        this.#count('retried');
        this.#table.pending.delete(call.hubId!);
        const hubId = this.#table.dispatch(call);
        this.#out.upstream({ data: splice(call.resend.raw, call.resend.idSpan, String(hubId)), isBinary: false, session: call.session, tag: hubId });
        continue;
      }
      this.#count('upstreamLost');
      this.#out.error(call.session, new WshubError('ERR_UPSTREAM_UNAVAILABLE', `upstream ${this.#host.upstream} ${final ? 'closed' : 'dropped'} with request ${call.idText} in flight`));
      this.#table.finish(call, errorResponse(call.idText, error));
    }
    this.#table.dropHubRequests();
    for (const sub of this.#subs.values()) {
      sub.upstreamId = undefined;
      sub.hubId = undefined;
    }
    this.#byUpstreamId.clear();
    this.#superseded = [];
    return this.#out.take();
  }

  /** Subscribes in flight (a failback switches once none are left). */
  pendingSubscriptions(): number {
    let n = 0;
    for (const sub of this.#subs.values()) if (sub.hubId !== undefined) n++;
    return n;
  }

  /**
   * A failback's new connection: every subscription is made again on it. The
   * old upstream ids keep mapping to their subscriptions until `migrated()`,
   * so notifications from the old connection are recognised while it streams.
   */
  migrate(): Outcome | undefined {
    for (const sub of this.#subs.values()) {
      if (sub.locals.size === 0 && sub.waiting.size === 0) continue;
      if (sub.upstreamId !== undefined) this.#superseded.push(sub.upstreamId);
      sub.upstreamId = undefined;
      if (sub.hubId === undefined) this.#sendSubscribe(sub);
    }
    return this.#out.take();
  }

  /** The failback switched: the old connection's ids mean nothing any more. */
  migrated(): void {
    for (const id of this.#superseded) if (![...this.#subs.values()].some((s) => s.upstreamId === id)) this.#byUpstreamId.delete(id);
    this.#superseded = [];
  }

  stats(): Record<string, unknown> {
    return { ...this.snapshot() };
  }

  /** The typed form of {@link stats}. */
  snapshot(): JsonRpcAdapterStats {
    return {
      upstreamSubscriptions: this.#subs.size,
      localSubscriptions: this.#locals.size,
      inFlight: this.#table.calls.size,
      upstreamSubscribes: this.#upstreamSubscribes,
      upstreamUnsubscribes: this.#upstreamUnsubscribes,
      notifications: this.#notifications,
      notificationDeliveries: this.#notificationDeliveries,
      errors: { ...this.#errors },
    };
  }

  // ── internals ──────────────────────────────────────────────────────────
  #refuse(session: SessionHandle, batch: Batch | undefined, idText: string, error: RpcError, kind: JsonRpcErrorKind, code: ErrorCode): void {
    this.#count(kind);
    const reason = error.details?.reason;
    this.#out.error(session, new WshubError(code, typeof reason === 'string' ? `${error.message}: ${reason}` : error.message));
    this.#table.answerNow(session, batch, errorResponse(idText, error), idText);
  }

  #grant(sub: UpstreamSub, session: SessionHandle, state: SessionState): LocalSub {
    const idText = this.#localIds.next(sub.numericIds ?? false);
    const local: LocalSub = { idText, idBytes: Buffer.from(idText), session, sub, topic: `${sub.key}#${idText}` };
    sub.locals.set(idText, local);
    state.subs.set(idText, local);
    this.#locals.set(idText, local);
    this.#out.join(session, sub.key);
    return local;
  }

  #dropLocal(local: LocalSub, state: SessionState): void {
    const { sub, session } = local;
    state.subs.delete(local.idText);
    this.#locals.delete(local.idText);
    sub.locals.delete(local.idText);
    let stillHeld = false;
    for (const other of sub.locals.values()) if (other.session === session) stillHeld = true;
    if (!stillHeld) this.#out.leave(session, sub.key);
    if (sub.locals.size === 0 && sub.waiting.size === 0) this.#release(sub);
  }

  /** The last local subscription left: end the upstream one. */
  #release(sub: UpstreamSub): void {
    if (this.#subs.get(sub.key) === sub && sub.hubId === undefined) this.#subs.delete(sub.key);
    // A subscribe still in flight is finished off when its answer comes (#onSubscribed).
    if (sub.upstreamId === undefined) return;
    this.#byUpstreamId.delete(sub.upstreamId);
    this.#sendUnsubscribe(sub.namespace, sub.upstreamId);
    sub.upstreamId = undefined;
  }

  #sendSubscribe(sub: UpstreamSub): void {
    const hubId = this.#table.track({ kind: 'subscribe', sub });
    sub.hubId = hubId;
    this.#upstreamSubscribes++;
    const params = sub.paramsJson === undefined ? '' : `,"params":${sub.paramsJson}`;
    this.#out.upstream({ data: `{"jsonrpc":"2.0","id":${hubId},"method":${JSON.stringify(sub.method)}${params}}`, isBinary: false, tag: hubId });
  }

  #sendUnsubscribe(namespace: string, upstreamId: string): void {
    // The node forgets subscriptions with the connection: nothing to end while it is down.
    if (!this.#host.upstreamOpen()) return;
    const hubId = this.#table.track({ kind: 'unsubscribe', deadline: this.#table.unsubscribeDeadline() });
    this.#upstreamUnsubscribes++;
    this.#out.upstream({ data: `{"jsonrpc":"2.0","id":${hubId},"method":${JSON.stringify(`${namespace}_unsubscribe`)},"params":[${upstreamId}]}`, isBinary: false, tag: hubId });
  }

  #count(kind: JsonRpcErrorKind): void {
    this.#errors[kind] = (this.#errors[kind] ?? 0) + 1;
  }

  #expire(call: Call): void {
    this.#count('timeout');
    this.#out.error(call.session, new WshubError('ERR_REQUEST_TIMEOUT', `upstream ${this.#host.upstream} did not answer request ${call.idText} within ${this.#options.requestTimeoutMs} ms`));
    this.#table.finish(call, errorResponse(call.idText, rpcErrors.timeout(this.#options.requestTimeoutMs)));
  }
}
