/**
 * wshub's public API. Everything a library user may import comes from here.
 */
export { WshubError, ERROR_CATALOG, isWshubError, type ErrorCode, type ErrorDetails } from './errors.js';
export { createLogger, redactUrl, silentLogger, type Logger } from './observe/log.js';
export type * from './upstream/types.js';
