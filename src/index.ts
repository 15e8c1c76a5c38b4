/**
 * wshub's public API. Everything a library user may import comes from here.
 */
export { WshubError, ERROR_CATALOG, isWshubError, type ErrorCode, type ErrorDetails } from './errors.js';
export { createLogger, redactUrl, silentLogger, type Logger } from './observe/log.js';
export type * from './upstream/types.js';
export { ResilientWebSocket } from './upstream/resilient.js';
// Listed, not `export *`: a name clash with another component must fail the build, not silently shadow.
export {
  DEFAULT_REJECT_UNAUTHORIZED, DEFAULT_PER_MESSAGE_DEFLATE, DEFAULT_UPSTREAM_MAX_PAYLOAD,
  DEFAULT_HAPPY_EYEBALLS_DELAY_MS, DEFAULT_DNS_TIMEOUT_MS, DEFAULT_TCP_TIMEOUT_MS, DEFAULT_TLS_TIMEOUT_MS,
  DEFAULT_UPGRADE_TIMEOUT_MS, DEFAULT_BACKOFF_MIN_DELAY_MS, DEFAULT_BACKOFF_MAX_DELAY_MS, DEFAULT_BACKOFF_FACTOR,
  DEFAULT_BACKOFF_FLOOR_MS, DEFAULT_CONCEAL_FAILURES, DEFAULT_MIN_UPTIME_MS, DEFAULT_MAX_ATTEMPTS,
  DEFAULT_UPSTREAM_PING_INTERVAL_MS, DEFAULT_UPSTREAM_PONG_TIMEOUT_MS, DEFAULT_LIVENESS, DEFAULT_NETWATCH,
  DEFAULT_PROBE_TIMEOUT_MS, DEFAULT_FATAL_CLOSE_CODES, DEFAULT_FATAL_HTTP_STATUSES, DEFAULT_QUEUE_ENABLED,
  DEFAULT_QUEUE_MAX_MESSAGES, DEFAULT_QUEUE_MAX_BYTES, DEFAULT_QUEUE_TTL_MS, DEFAULT_HIGH_WATER_MARK_BYTES,
  DEFAULT_CLOSE_TIMEOUT_MS, DEFAULT_NETWATCH_INTERVAL_MS,
} from './upstream/defaults.js';
export { NetWatcher, normalizeAddress, type AddressChange, type NetWatcherEvents } from './upstream/netwatch.js';
export { HardenedServer } from './server/server.js';
export { drainOnSignals, DEFAULT_DRAIN_SIGNALS, type DrainOnSignalsOptions, type Drainable } from './server/drain.js';
export {
  DEFAULT_TCP_HOST, DEFAULT_HANDSHAKE_TIMEOUT_MS, DEFAULT_MAX_PAYLOAD, DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_PENDING_HANDSHAKES,
  DEFAULT_MAX_MESSAGES_PER_SECOND, DEFAULT_PING_INTERVAL_MS, DEFAULT_IDLE_TIMEOUT_MS, DEFAULT_ALLOWED_ORIGINS, DEFAULT_TOKEN_ON_UNIX,
  DEFAULT_DRAIN_TIMEOUT_MS, DEFAULT_EMFILE_BACKOFF_MS, DEFAULT_UNIX_SOCKET_MODE, type HardenedServerOptions,
} from './server/options.js';
export type { PeerInfo, Refusal, Session, ServerAddresses, ServerState, ServerStats, SessionClose, HardenedServerEvents } from './server/types.js';
export { Hub, type HubStats, type HubOptions, type Connection, type ConnectionStats } from './hub/hub.js';
export { resolveConfig, readConfigFile, type HubConfig, type UpstreamConfig } from './hub/config.js';
export { HubClient, DEFAULT_CLIENT_MAX_BUFFERED, DEFAULT_CLIENT_HIGH_WATER_MARK_BYTES, DEFAULT_CLIENT_MAX_QUEUED_SENDS, DEFAULT_CLIENT_REQUEST_TIMEOUT_MS } from './client/hub-client.js';
export type * from './client/types.js';
export { ENVELOPE_PROTOCOL, encodeBinary, decodeBinary, type HubFrame, type ClientFrame } from './hub/envelope-codec.js';
export { DemoFeed } from './demo/feed.js';
export { HubHttpServer, sendJson, DEFAULT_PAGE_MAX_CONNECTIONS, type HubHttpOptions, type PageSnapshot, type RouteHandler } from './observe/http.js';
export { HubMetrics, DEFAULT_MAX_TOPIC_LABELS, type MetricsOptions } from './observe/metrics.js';
export { health, parseReadyWhen, checkReadyWhen, DEFAULT_READY_WHEN, type Health, type ReadyWhen, type UpstreamHealth } from './observe/health.js';
export { observe, type ObservedStats, type ObservedUpstream, type TopicTraffic } from './observe/snapshot.js';
export { EventLoopMonitor, DEFAULT_EVENT_LOOP_WINDOW_MS, DEFAULT_EVENT_LOOP_RESOLUTION_MS, type EventLoopStats } from './observe/loop.js';
export { DEFAULT_EVENTS_INTERVAL_MS, DEFAULT_MAX_EVENT_CLIENTS } from './observe/events.js';
export { redactHeaders, REDACTED, SECRET_HEADERS, type CreateLoggerOptions } from './observe/log.js';
export { JsonRpcAdapter, DEFAULT_JSONRPC_REQUEST_TIMEOUT_MS, DEFAULT_JSONRPC_MAX_IN_FLIGHT, DEFAULT_JSONRPC_MAX_SUBSCRIPTIONS, type JsonRpcAdapterOptions, type JsonRpcAdapterStats, type JsonRpcErrorKind } from './adapters/jsonrpc.js';
