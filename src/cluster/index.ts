/**
 * Cluster mode: hubs on several machines share one upstream through NATS
 * (docs/cluster.md). Nothing here loads the NATS client until
 * `connectCluster()` is called.
 */
export {
  connectCluster, ClusterConnection, compareVersions, MIN_NATS_SERVER_VERSION,
  DEFAULT_NATS_CONNECT_TIMEOUT_MS, DEFAULT_NATS_PING_INTERVAL_MS, DEFAULT_NATS_MAX_PING_OUT, DEFAULT_NATS_RECONNECT_WAIT_MS,
} from './connect.js';
export type { ClusterConnectOptions, ClusterTlsOptions, ClusterConnectionStatus, ClusterConnectionEvents } from './connect.js';
export { ClusterStore, newHubId, DEFAULT_LEASE_TTL_MS, MIN_LEASE_TTL_MS } from './store.js';
export type { OpenStoreOptions, KeyWatch } from './store.js';
export { Lease } from './lease.js';
export type { LeaseOptions, LeaseEvents, LeaseHolder, LeaseState, LeaseLostReason, LeaseStats } from './lease.js';
export { ClusterBus } from './bus.js';
export type { BusMessage, BusUnicast, HolderStatus, BusPublish, BusStats, BusEvents, PublishResult, HolderGuard, ClusterBusOptions } from './bus.js';
export { InterestAnnouncer, InterestView } from './interest.js';
export type { InterestOptions, InterestChange, InterestHub, InterestViewEvents, AnnouncerEvents } from './interest.js';
export { ClusterRequests, DEFAULT_FORWARD_TIMEOUT_MS } from './requests.js';
export type { ForwardFrame, ForwardOptions, ForwardReply, ForwardedFrame, Replier, ClusterRequestsOptions, RequestStats } from './requests.js';
export { encodeToken, decodeToken, UpstreamNames, bucketName, HEADER, RAW_TOKEN, EMPTY_TOKEN } from './subjects.js';
