/**
 * JSON-RPC 2.0 message shapes of the `jsonrpc` adapter: what counts as a
 * request, and the error responses the hub itself answers with.
 *
 * The hub answers in JSON-RPC, never with silence: every error response the
 * hub makes carries `error.data.code`, the stable wshub error code, so a
 * worker can tell a hub-made error from the node's own (node errors never have
 * it). Codes follow the spec (-32700, -32600) and, for server errors, what
 * Ethereum nodes use: geth's -32000 "subscription not found" and -32002
 * "request timed out", EIP-1474's -32005 "limit exceeded".
 */
import type { ErrorCode } from '../errors.js';

/** A hub-made JSON-RPC error: the JSON-RPC code and message, and the wshub code in `data`. */
export interface RpcError {
  code: number;
  message: string;
  /** The wshub error code, put in `error.data.code`; omitted where a node answers the same without it. */
  wshub: ErrorCode | undefined;
  /** Extra facts for `error.data`. */
  details?: Record<string, unknown>;
}

/** JSON-RPC error codes of the responses the hub makes itself. */
export const RPC_PARSE_ERROR = -32700;
export const RPC_INVALID_REQUEST = -32600;
/** geth's generic server error: "subscription not found", and ours for a lost upstream. */
export const RPC_SERVER_ERROR = -32000;
/** geth's code for a request that timed out. */
export const RPC_TIMEOUT = -32002;
/** EIP-1474 "limit exceeded". */
export const RPC_LIMIT_EXCEEDED = -32005;

export const rpcErrors = {
  parse: (): RpcError => ({ code: RPC_PARSE_ERROR, message: 'Parse error', wshub: 'ERR_BAD_MESSAGE' }),
  invalid: (reason: string): RpcError => ({ code: RPC_INVALID_REQUEST, message: 'Invalid Request', wshub: 'ERR_BAD_MESSAGE', details: { reason } }),
  /** Exactly what geth answers for an unknown (or someone else's) subscription id. */
  subscriptionNotFound: (): RpcError => ({ code: RPC_SERVER_ERROR, message: 'subscription not found', wshub: undefined }),
  upstreamLost: (upstream: string): RpcError => ({ code: RPC_SERVER_ERROR, message: 'upstream connection lost', wshub: 'ERR_UPSTREAM_UNAVAILABLE', details: { upstream } }),
  upstreamClosed: (upstream: string): RpcError => ({ code: RPC_SERVER_ERROR, message: 'upstream closed', wshub: 'ERR_UPSTREAM_UNAVAILABLE', details: { upstream } }),
  /** The request never reached the node (its queue was full, it expired waiting, its connection died before it was written). */
  notSent: (cause: { code: ErrorCode; message: string }): RpcError => ({ code: RPC_SERVER_ERROR, message: 'request not sent to the upstream', wshub: cause.code, details: { reason: cause.message } }),
  timeout: (timeoutMs: number): RpcError => ({ code: RPC_TIMEOUT, message: 'request timed out', wshub: 'ERR_REQUEST_TIMEOUT', details: { timeoutMs } }),
  tooManyRequests: (limit: number): RpcError => ({ code: RPC_LIMIT_EXCEEDED, message: `limit exceeded: at most ${limit} requests in flight per connection`, wshub: 'ERR_TOO_MANY_REQUESTS', details: { limit } }),
  tooManySubscriptions: (limit: number): RpcError => ({ code: RPC_LIMIT_EXCEEDED, message: `limit exceeded: at most ${limit} subscriptions per connection`, wshub: 'ERR_TOO_MANY_SUBSCRIPTIONS', details: { limit } }),
};

/** The text of an error response; `idText` is the request's id exactly as the worker wrote it (`null` when unknown). */
export function errorResponse(idText: string, error: RpcError): string {
  const data = error.wshub === undefined ? undefined : { code: error.wshub, ...error.details };
  const body = JSON.stringify({ code: error.code, message: error.message, ...(data ? { data } : {}) });
  return `{"jsonrpc":"2.0","id":${idText},"error":${body}}`;
}

/** The text of a result response the hub makes itself (`resultText` is JSON). */
export function resultResponse(idText: string, resultText: string): string {
  return `{"jsonrpc":"2.0","id":${idText},"result":${resultText}}`;
}

/** A session's message member that is a valid JSON-RPC 2.0 request or notification. */
export interface RpcRequest {
  method: string;
  /** Whether the member has an `id` (a request) or not (a notification). `id: null` is a request. */
  hasId: boolean;
  params: unknown;
}

/** Check one member against JSON-RPC 2.0 section 4; a string says why it is not a request. */
export function asRequest(value: unknown): RpcRequest | string {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return 'a request must be a JSON object';
  const record = value as Record<string, unknown>;
  if (record.jsonrpc !== '2.0') return 'jsonrpc must be exactly "2.0"';
  if (typeof record.method !== 'string' || record.method.length === 0) return 'method must be a non-empty string';
  const id = record.id;
  if (id !== undefined && id !== null && typeof id !== 'string' && typeof id !== 'number') return 'id must be a string, a number or null';
  const params = record.params;
  if (params !== undefined && (params === null || typeof params !== 'object')) return 'params must be an array or an object';
  return { method: record.method, hasId: 'id' in record, params };
}

/** Whether a value may stand as an id in an error response (else the response says `null`). */
export function isIdValue(value: unknown): boolean {
  return value === null || typeof value === 'string' || typeof value === 'number';
}

/** `eth_subscribe` → `eth`; undefined when the method is no `*_subscribe`. */
export function subscribeNamespace(method: string): string | undefined {
  return method.endsWith('_subscribe') && method.length > '_subscribe'.length ? method.slice(0, -'_subscribe'.length) : undefined;
}

/** `eth_unsubscribe` → `eth`; undefined when the method is no `*_unsubscribe`. */
export function unsubscribeNamespace(method: string): string | undefined {
  return method.endsWith('_unsubscribe') && method.length > '_unsubscribe'.length ? method.slice(0, -'_unsubscribe'.length) : undefined;
}
