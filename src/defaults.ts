/**
 * Every default of wshub in one frozen object, by component. The components
 * keep their `DEFAULT_*` constants next to the code that uses them; this is
 * the one place a library user reads them from (`import { defaults } from
 * 'wshub'`), so the public API stays small and a default can never be
 * exported twice under two names.
 */
import * as upstream from './upstream/defaults.js';
import * as server from './server/options.js';
import { DEFAULT_JSON_ACK, DEFAULT_JSON_ERROR_FIELD, DEFAULT_JSON_ID_FIELD, DEFAULT_JSON_MAX_IN_FLIGHT, DEFAULT_REQUEST_TIMEOUT_MS } from './adapters/json.js';
import { DEFAULT_JSONRPC_MAX_IN_FLIGHT, DEFAULT_JSONRPC_MAX_SUBSCRIPTIONS, DEFAULT_JSONRPC_REQUEST_TIMEOUT_MS } from './adapters/jsonrpc.js';
import { DEFAULT_CLIENT_HIGH_WATER_MARK_BYTES, DEFAULT_CLIENT_MAX_BUFFERED, DEFAULT_CLIENT_MAX_QUEUED_SENDS, DEFAULT_CLIENT_REQUEST_TIMEOUT_MS } from './client/hub-client.js';
import { DEFAULT_ON_UPSTREAM_LOSS } from './hub/config.js';
import { DEFAULT_LAGGED_INTERVAL_MS, DEFAULT_MAX_ENVELOPE_BYTES, DEFAULT_MAX_ENVELOPE_SESSIONS } from './hub/envelope.js';
import { DEFAULT_END_TIMEOUT_MS, DEFAULT_MAX_QUEUE_BYTES, DEFAULT_SOCKET_HIGH_WATER_BYTES } from './hub/outlet.js';
import { DEFAULT_SLOW_AFTER_MS } from './hub/pacer.js';
import { DEFAULT_EVENTS_INTERVAL_MS, DEFAULT_MAX_EVENT_CLIENTS } from './observe/events.js';
import { DEFAULT_READY_WHEN } from './observe/health.js';
import { DEFAULT_PAGE_MAX_CONNECTIONS } from './observe/http.js';
import { DEFAULT_EVENT_LOOP_RESOLUTION_MS, DEFAULT_EVENT_LOOP_WINDOW_MS } from './observe/loop.js';
import { DEFAULT_MAX_TOPIC_LABELS } from './observe/metrics.js';

function pick<T extends Record<string, unknown>>(module: T): Readonly<Record<string, unknown>> {
  return Object.freeze(Object.fromEntries(Object.entries(module).filter(([name]) => name.startsWith('DEFAULT_'))));
}

export const defaults = Object.freeze({
  /** ResilientWebSocket (every upstream connection), keyed by constant name, e.g. `DEFAULT_PONG_TIMEOUT_MS`. */
  upstream: pick(upstream),
  /** The hardened listener (HardenedServer). */
  server: pick(server),
  hub: Object.freeze({
    slowConsumer: 'drop-oldest' as const,
    maxQueueBytes: DEFAULT_MAX_QUEUE_BYTES,
    /** With the default `maxQueueBytes`: a session's mark follows its queue (`socketHighWaterFor`, 256 KiB–4 MiB). */
    socketHighWaterBytes: DEFAULT_SOCKET_HIGH_WATER_BYTES,
    slowAfterMs: DEFAULT_SLOW_AFTER_MS,
    /** By adapter. */
    onUpstreamLoss: DEFAULT_ON_UPSTREAM_LOSS,
    endTimeoutMs: DEFAULT_END_TIMEOUT_MS,
    maxEnvelopeBytes: DEFAULT_MAX_ENVELOPE_BYTES,
    laggedIntervalMs: DEFAULT_LAGGED_INTERVAL_MS,
    maxEnvelopeSessions: DEFAULT_MAX_ENVELOPE_SESSIONS,
  }),
  json: Object.freeze({
    ack: DEFAULT_JSON_ACK,
    idField: DEFAULT_JSON_ID_FIELD,
    errorField: DEFAULT_JSON_ERROR_FIELD,
    requestTimeoutMs: DEFAULT_REQUEST_TIMEOUT_MS,
    maxInFlight: DEFAULT_JSON_MAX_IN_FLIGHT,
  }),
  jsonrpc: Object.freeze({
    requestTimeoutMs: DEFAULT_JSONRPC_REQUEST_TIMEOUT_MS,
    maxInFlight: DEFAULT_JSONRPC_MAX_IN_FLIGHT,
    maxSubscriptions: DEFAULT_JSONRPC_MAX_SUBSCRIPTIONS,
  }),
  client: Object.freeze({
    maxBuffered: DEFAULT_CLIENT_MAX_BUFFERED,
    highWaterMarkBytes: DEFAULT_CLIENT_HIGH_WATER_MARK_BYTES,
    maxQueuedSends: DEFAULT_CLIENT_MAX_QUEUED_SENDS,
    requestTimeoutMs: DEFAULT_CLIENT_REQUEST_TIMEOUT_MS,
  }),
  observe: Object.freeze({
    readyWhen: DEFAULT_READY_WHEN,
    eventsIntervalMs: DEFAULT_EVENTS_INTERVAL_MS,
    maxEventClients: DEFAULT_MAX_EVENT_CLIENTS,
    pageMaxConnections: DEFAULT_PAGE_MAX_CONNECTIONS,
    eventLoopWindowMs: DEFAULT_EVENT_LOOP_WINDOW_MS,
    eventLoopResolutionMs: DEFAULT_EVENT_LOOP_RESOLUTION_MS,
    maxTopicLabels: DEFAULT_MAX_TOPIC_LABELS,
  }),
});
