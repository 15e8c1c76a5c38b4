/**
 * Helpers for the jsonrpc adapter tests: workers are the hub tests' forked ws
 * clients (test/hub/fixtures/worker.ts) with every message echoed over IPC, so
 * a test sees each frame a worker received, in order.
 */
import { eventually, Worker } from '../hub/helpers.js';

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type RpcMessage = { jsonrpc?: string; id?: Json; result?: Json; error?: { code: number; message: string; data?: Record<string, Json> }; method?: string; params?: Json };

/** A worker attached to `url` that reports every message it receives. */
export function rpcWorker(url: string): Worker {
  return new Worker(url, { env: { WORKER_ECHO: '1' } });
}

/** Every text frame the worker received so far. */
export function texts(w: Worker): string[] {
  return w.events.filter((e) => e.ev === 'message' && typeof e.text === 'string').map((e) => e.text as string);
}

/** Every frame parsed (arrays stay arrays). */
export function received(w: Worker): Array<RpcMessage | RpcMessage[]> {
  return texts(w).map((t) => JSON.parse(t) as RpcMessage | RpcMessage[]);
}

/** Single (non-batch) responses with exactly this id (strict: 1 and "1" differ). */
export function answersTo(w: Worker, id: Json): RpcMessage[] {
  return received(w).filter((m): m is RpcMessage => !Array.isArray(m) && m.method === undefined && 'id' in m && m.id === id);
}

/** Wait for the one answer to `id`. */
export async function answer(w: Worker, id: Json, what = `the answer to id ${JSON.stringify(id)}`, timeoutMs = 10_000): Promise<RpcMessage> {
  const [first] = await eventually(() => {
    const found = answersTo(w, id);
    return found.length > 0 ? found : undefined;
  }, what, timeoutMs);
  return first!;
}

/** Subscription notifications received for a local subscription id. */
export function notificationsFor(w: Worker, subscription: string | number): RpcMessage[] {
  return received(w).filter((m): m is RpcMessage => !Array.isArray(m) && typeof m.method === 'string' && m.method.endsWith('_subscription') && (m.params as { subscription?: Json } | undefined)?.subscription === subscription);
}

/** Wait until the worker has exactly `count` notifications for `subscription` (fails on more). */
export async function awaitNotifications(w: Worker, subscription: string | number, count: number, what: string): Promise<RpcMessage[]> {
  return eventually(() => {
    const got = notificationsFor(w, subscription);
    if (got.length > count) throw new Error(`${what}: ${got.length} notifications, expected ${count}`);
    return got.length === count ? got : undefined;
  }, what);
}

/** A JSON-RPC 2.0 request (or a notification when `id` is omitted). */
export function rpc(method: string, params: Json | undefined, id?: Json): string {
  return JSON.stringify({ jsonrpc: '2.0', method, ...(params === undefined ? {} : { params }), ...(id === undefined ? {} : { id }) });
}

/** An upstream entry for a node at `url`: fast reconnects, no pings (the node fixture answers them anyway). */
export function nodeUpstream(url: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { url, adapter: 'jsonrpc', pingIntervalMs: 0, backoff: { minDelayMs: 50, maxDelayMs: 200 }, ...extra };
}
