/**
 * `wshub status`: look at a running hub.
 */
import { WshubError, errnoOf } from '../errors.js';
import type { HubStats } from '../hub/hub.js';

/**
 * GET /status. `token` is the hub's `httpToken` (sent as a bearer token); a
 * refusal is reported with the hub's own code (`ERR_UNAUTHORIZED`,
 * `ERR_HOST_REFUSED`) and what to do about it.
 */
export async function fetchStatus(http: string, token?: string): Promise<HubStats> {
  const base = http.startsWith('http') ? http : `http://${http}`;
  let res: Response;
  try {
    res = await fetch(new URL('/status', base), {
      signal: AbortSignal.timeout(5000),
      ...(token === undefined || token === '' ? {} : { headers: { authorization: `Bearer ${token}` } }),
    });
  } catch (err) {
    const cause = (err as Error).cause ?? err;
    const why = errnoOf(cause) ?? ((err as Error).name === 'TimeoutError' ? 'no answer within 5 s' : (cause as Error).message);
    throw new WshubError('ERR_HUB_UNREACHABLE', `cannot reach the hub at ${base}: ${why} (is it running with --http ${base.replace(/^https?:\/\//, '')}?)`,
      { cause: err, details: { errno: errnoOf(cause) } });
  }
  if (res.status === 401) {
    const hint = token ? 'the token was refused' : 'the hub requires its httpToken: pass --token or set WSHUB_TOKEN';
    throw new WshubError('ERR_UNAUTHORIZED', `${base}/status answered 401: ${hint}`, { details: { status: 401 } });
  }
  if (res.status === 421) {
    throw new WshubError('ERR_HOST_REFUSED', `${base}/status answered 421: the hub does not answer to this host name; use its address or add the name to httpAllowedHosts`, { details: { status: 421 } });
  }
  if (!res.ok) {
    throw new WshubError('ERR_HUB_UNREACHABLE', `${base}/status answered HTTP ${res.status} ${res.statusText}`.trimEnd(), { details: { status: res.status } });
  }
  return (await res.json()) as HubStats;
}

function ago(ms: number | undefined, now: number): string {
  if (ms === undefined) return '-';
  const s = Math.round((now - ms) / 1000);
  return s < 120 ? `${s}s ago` : s < 7200 ? `${Math.round(s / 60)}m ago` : `${Math.round(s / 3600)}h ago`;
}

/** `1006 ERR_DNS feed.example:443 (ENOTFOUND …)`: the close code, then the error code once (reasons often start with it). */
export function lastCloseText(last: { code?: number | undefined; errorCode?: string | undefined; reason: string }): string {
  const reason = last.reason.trim();
  const withCode = last.errorCode && !reason.startsWith(last.errorCode) ? `${last.errorCode} ${reason}` : reason;
  return `${last.code ?? ''} ${withCode}`.trim();
}

/** A human summary of a status snapshot. */
export function formatStatus(s: HubStats): string {
  const lines: string[] = [];
  lines.push(`hub pid ${s.pid}, up ${ago(s.startedAt, s.now).replace(' ago', '')}, ${s.connections.length} connections, ${s.server.handshaking} handshaking`);
  lines.push('');
  lines.push('UPSTREAM        STATE         SINCE      SESSIONS  MSGS IN     DELIVERED   LAST CLOSE');
  for (const u of s.upstreams) {
    const c = u.client;
    const last = c.lastClose ? lastCloseText(c.lastClose) : '-';
    lines.push(
      `${u.name.padEnd(15)} ${c.state.padEnd(13)} ${ago(c.state === 'open' ? c.lastOpenAt : c.lastCloseAt, s.now).padEnd(10)} ${String(u.sessions).padEnd(9)} ${String(u.messagesIn).padEnd(11)} ${String(u.deliveries).padEnd(11)} ${last}`,
    );
    for (const t of u.topics) lines.push(`  topic ${t.topic} — ${t.subscribers} subscribers${t.groups ? `, ${t.groups} groups` : ''}`);
  }
  if (s.connections.length > 0) {
    lines.push('');
    lines.push('SESSION   MODE         UPSTREAMS             PEER            OUT         QUEUED    DROPPED');
    for (const x of s.connections) {
      const dropped = Object.entries(x.dropped).map(([k, v]) => `${k}=${v}`).join(' ') || '0';
      const ups = x.sessions.map((m) => (m.group ? `${m.upstream}(${m.group})` : m.upstream)).join(',') || '-';
      lines.push(
        `${x.id.padEnd(9)} ${x.mode.padEnd(12)} ${ups.padEnd(21)} ${(x.remoteAddress ?? x.transport).padEnd(15)} ${String(x.messagesOut).padEnd(11)} ${String(x.queuedBytes).padEnd(9)} ${dropped}`,
      );
    }
  }
  const drops = Object.entries(s.dropped);
  if (drops.length) lines.push('', `dropped: ${drops.map(([k, v]) => `${k}=${v}`).join(' ')}`);
  return lines.join('\n');
}
