/**
 * wshub's public API: everything a library user may import comes from here
 * (HubClient alone: `wshub/client`; the upstream client alone:
 * `wshub/upstream`). Listed, never `export *` of values: a name clash between
 * components must fail the build, not silently shadow. Defaults are read from
 * the one `defaults` object.
 */
export { WshubError, ERROR_CATALOG, isWshubError, type ErrorCode, type ErrorDetails } from './errors.js';
export { defaults } from './defaults.js';
export { ResilientWebSocket } from './upstream/resilient.js';
export type * from './upstream/types.js';
export { NetWatcher, type AddressChange, type NetWatcherEvents } from './upstream/netwatch.js';
// A ResilientWebSocket's `connectGate` paced like the hub's pools: `connectGate: (signal) => gate.acquire({ signal })`.
export { RateGate, SlidingWindow, type RateLimit, type RateLimiter } from './upstream/rate.js';
export { HardenedServer } from './server/server.js';
export type { HardenedServerOptions } from './server/options.js';
export { drainOnSignals, type DrainOnSignalsOptions, type Drainable } from './server/drain.js';
export type { PeerInfo, Refusal, Session, ServerAddresses, ServerState, ServerStats, SessionClose, HardenedServerEvents } from './server/types.js';
export { Hub, type HubStats, type HubOptions, type HubEvents, type HubUpstreamStats, type ConnectionStats } from './hub/hub.js';
export type { ReloadPlan } from './hub/reload.js';
export type { UpstreamLedger } from './hub/stats.js';
export type { SessionStats, SessionLedger } from './hub/session.js';
export type { SlowConsumerPolicy, DropCode } from './hub/backlog.js';
export { resolveConfig, readConfigFile, type HubConfig, type UpstreamConfig, type ClusterConfig } from './hub/config.js';
export type { HubClusterStats } from './hub/cluster-node.js';
export type { UpstreamClusterStats } from './hub/cluster-upstream.js';
export type { PoolStats } from './hub/pool.js';
export { HubClient } from './client/hub-client.js';
export type * from './client/types.js';
export { ENVELOPE_PROTOCOL, encodeBinary, decodeBinary, type HubFrame, type ClientFrame } from './hub/envelope-codec.js';
export { HubHttpServer, type HubHttpOptions } from './observe/http.js';
export { HubMetrics, type MetricsOptions } from './observe/metrics.js';
export type { ObservedStats, ObservedUpstream, TopicTraffic } from './observe/snapshot.js';
export { createLogger, redactUrl, type Logger, type CreateLoggerOptions } from './observe/log.js';
export { Redactor } from './redact.js';
