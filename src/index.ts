/**
 * wshub's public API. Everything a library user may import comes from here.
 */
export { WshubError, ERROR_CATALOG, isWshubError, type ErrorCode, type ErrorDetails } from './errors.js';
export { createLogger, redactUrl, silentLogger, type Logger } from './observe/log.js';
export type * from './upstream/types.js';
export { ResilientWebSocket } from './upstream/resilient.js';
export * from './upstream/defaults.js';
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
