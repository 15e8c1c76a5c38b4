/**
 * `wshub/upstream`: the resilient upstream client on its own —
 * {@link ResilientWebSocket}, its options, events and defaults — and the
 * error class it raises, for programs that want one robust WebSocket without
 * the hub.
 */
export { ResilientWebSocket } from './resilient.js';
export type * from './types.js';
export * from './defaults.js';
export { WshubError, ERROR_CATALOG, isWshubError, type ErrorCode, type ErrorDetails } from '../errors.js';
