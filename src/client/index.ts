/**
 * `wshub/client`: what a worker process needs to attach to a hub in envelope
 * mode — {@link HubClient}, its options, events and message types — and the
 * error class it raises. Import this entry instead of `wshub` in workers so
 * the worker does not load the daemon's parts.
 */
export { HubClient, DEFAULT_CLIENT_MAX_BUFFERED, DEFAULT_CLIENT_HIGH_WATER_MARK_BYTES, DEFAULT_CLIENT_MAX_QUEUED_SENDS, DEFAULT_CLIENT_REQUEST_TIMEOUT_MS } from './hub-client.js';
export type * from './types.js';
export { WshubError, ERROR_CATALOG, isWshubError, type ErrorCode, type ErrorDetails } from '../errors.js';
