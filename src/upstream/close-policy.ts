/**
 * Which endings stop retrying. A server that says "policy violation" (1008)
 * or "unsupported data" (1003) will say it again on the next connection, and
 * a 401/403/404 upgrade answer will not change by asking again: retrying only
 * hammers the server and hides the real problem. Everything else — 1000,
 * 1001 (going away), 1006 (dropped), 1011/1012/1013 (server trouble,
 * restart, try again later), 429 and 5xx — is worth another attempt.
 */

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
