/**
 * Which endings stop retrying. A server that says "policy violation" (1008)
 * or "unsupported data" (1003) will say it again on the next connection, and
 * a 401/403/404 upgrade answer will not change by asking again: retrying only
 * hammers the server and hides the real problem. Everything else — 1000,
 * 1001 (going away), 1006 (dropped), 1011/1012/1013 (server trouble,
 * restart, try again later), 429 and 5xx — is worth another attempt.
 */
import { WshubError, errnoOf } from '../errors.js';

/** A close code or an inclusive `[lo, hi]` range of close codes. */
export type CloseCodeRule = number | readonly [number, number];

/** True when the server's close `code` matches one of the configured fatal rules. */
export function isFatalCloseCode(code: number, rules: readonly CloseCodeRule[]): boolean {
  for (const rule of rules) {
    if (typeof rule === 'number' ? rule === code : code >= rule[0] && code <= rule[1]) return true;
  }
  return false;
}

/** True when a rejected upgrade's HTTP `status` is configured as final. */
export function isFatalHttpStatus(status: number, statuses: readonly number[]): boolean {
  return statuses.includes(status);
}

/**
 * What the end of an open connection means. A protocol violation that ws
 * detected in the server's frames (ws closes with 1002/1007/1009 and the
 * server merely echoes it) is our verdict, not the server's, so it never
 * counts as a fatal server close code: ERR_PAYLOAD_TOO_LARGE or
 * ERR_PROTOCOL, retried. Otherwise 1006 (no close frame) is a lost
 * connection, a configured fatal code ends retrying, and anything else is a
 * server close to retry after.
 */
export function classifyClose(
  code: number, reason: string, address: string, lastError: Error | undefined, rules: readonly CloseCodeRule[],
): { cause: WshubError; retry: boolean; summary: string } {
  const wsCode = errnoOf(lastError);
  if (lastError && wsCode?.startsWith('WS_ERR_')) {
    const tooLarge = wsCode === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH';
    const errorCode = tooLarge ? 'ERR_PAYLOAD_TOO_LARGE' : 'ERR_PROTOCOL';
    const summary = `upstream violated the protocol (${wsCode}: ${lastError.message}); closed ${code}`;
    return {
      cause: new WshubError(errorCode, `${errorCode} ${address} (${summary})`, { cause: lastError, details: { address, errno: wsCode, closeCode: code } }),
      retry: true,
      summary,
    };
  }
  if (code === 1006) {
    const errno = errnoOf(lastError);
    const summary = `closed without a close frame${lastError ? `: ${errno ?? lastError.message}` : ''}`;
    return {
      cause: new WshubError('ERR_CONNECTION_LOST', `ERR_CONNECTION_LOST ${address} (${summary})`, { cause: lastError, details: { address, errno } }),
      retry: true,
      summary,
    };
  }
  const summary = `server closed ${code}${reason ? ` "${reason}"` : ''}`;
  const details = { address, closeCode: code, closeReason: reason };
  if (isFatalCloseCode(code, rules)) {
    return {
      cause: new WshubError('ERR_FATAL_CLOSE_CODE', `ERR_FATAL_CLOSE_CODE ${address} (${summary}; configured as final, not retrying)`, { details }),
      retry: false,
      summary,
    };
  }
  return { cause: new WshubError('ERR_SERVER_CLOSED', `ERR_SERVER_CLOSED ${address} (${summary})`, { details }), retry: true, summary };
}
