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
 * What a server-side close means: 1006 (no close frame) is a lost
 * connection, a fatal code ends retrying, anything else is a server close to
 * retry after.
 */
export function classifyClose(
  code: number, reason: string, address: string, lastError: Error | undefined, rules: readonly CloseCodeRule[],
): { cause: WshubError; retry: boolean; summary: string } {
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
