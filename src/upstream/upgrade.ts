/**
 * The last dial phase: the HTTP upgrade, done by ws over the socket dial.ts
 * already connected (and secured), handed over through ws's
 * `createConnection` option so ws never dials on its own. Timed here rather
 * than with ws's `handshakeTimeout`, which is an idle timeout on the request
 * and does not bound the whole handshake.
 */
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import WebSocket from 'ws';
import { WshubError, errnoOf } from '../errors.js';
import { isSecretName, quoteSafely, SECRET_PARAM } from '../redact.js';

/** Bytes of a refused upgrade's body quoted in the error. */
export const REFUSAL_BODY_BYTES = 200;
/** How long a refused upgrade's body is waited for. */
const REFUSAL_BODY_WAIT_MS = 500;

export interface UpgradeOptions {
  url: string;
  socket: Socket;
  /** For error messages: `host:port` of the socket's peer. */
  label: string;
  protocols: readonly string[];
  headers: Readonly<Record<string, string>>;
  perMessageDeflate: boolean;
  maxPayload: number;
  upgradeTimeoutMs: number;
  signal: AbortSignal;
}

/** Resolves with an open, paused WebSocket (call `resume()` once listening); rejects with ERR_UPGRADE_TIMEOUT, ERR_UPGRADE_REJECTED (details.status), ERR_UPGRADE_INVALID or ERR_CONNECTION_LOST. */
export function upgrade(options: UpgradeOptions): Promise<WebSocket> {
  const { label, socket } = options;
  return new Promise((resolvePromise, reject) => {
    let settled = false;
    let ws: WebSocket;
    const fail = (error: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      options.signal.removeEventListener('abort', onAbort);
      ws.terminate();
      socket.destroy();
      reject(error);
    };
    const onAbort = (): void => {
      const reason: unknown = options.signal.reason;
      fail(reason instanceof Error ? reason : new Error('upgrade aborted'));
    };
    try {
      ws = new WebSocket(options.url, [...options.protocols], {
        createConnection: () => socket,
        headers: { ...options.headers },
        perMessageDeflate: options.perMessageDeflate,
        maxPayload: options.maxPayload,
        followRedirects: false,
        autoPong: true,
      });
    } catch (err) {
      socket.destroy();
      reject(new WshubError('ERR_UPGRADE_INVALID', `ERR_UPGRADE_INVALID ${label} (${(err as Error).message})`,
        { cause: err, details: { phase: 'upgrade', address: label } }));
      return;
    }
    // Always listened to: an 'error' without a listener would crash the process.
    ws.on('error', (err) => {
      const message = err.message;
      const errno = errnoOf(err);
      if (errno === undefined && /Sec-WebSocket|subprotocol|Upgrade header|extension/i.test(message)) {
        fail(new WshubError('ERR_UPGRADE_INVALID', `ERR_UPGRADE_INVALID ${label} (${message})`,
          { cause: err, details: { phase: 'upgrade', address: label } }));
      } else {
        fail(new WshubError('ERR_CONNECTION_LOST', `ERR_CONNECTION_LOST ${label} (during the upgrade: ${errno ?? message})`,
          { cause: err, details: { phase: 'upgrade', address: label, errno } }));
      }
    });
    ws.on('unexpected-response', (_req, res: IncomingMessage) => {
      const status = res.statusCode ?? 0;
      // The body usually says why (a bad key, a banned IP): quote its start, with our own secrets taken out.
      void readBodyStart(res, REFUSAL_BODY_BYTES * 2).then((body) => {
        const quoted = quoteSafely(body, secretsOf(options), REFUSAL_BODY_BYTES);
        const head = `HTTP ${status}${res.statusMessage ? ` ${res.statusMessage}` : ''}`;
        fail(new WshubError('ERR_UPGRADE_REJECTED', `ERR_UPGRADE_REJECTED ${label} (${head}${quoted ? `: ${quoted}` : ''})`,
          { details: { phase: 'upgrade', address: label, status, ...(quoted ? { body: quoted } : {}) } }));
      });
    });
    ws.once('open', () => {
      if (settled) return;
      // Frames that arrived together with the 101 response would otherwise be
      // emitted before the caller (one promise hop away) has attached its
      // listeners, and be lost. The caller resumes once it is listening.
      ws.pause();
      settled = true;
      clearTimeout(timer);
      options.signal.removeEventListener('abort', onAbort);
      resolvePromise(ws);
    });
    const timer = setTimeout(() => fail(new WshubError('ERR_UPGRADE_TIMEOUT',
      `ERR_UPGRADE_TIMEOUT ${label} (http upgrade not answered after ${options.upgradeTimeoutMs} ms)`,
      { details: { phase: 'upgrade', address: label } })), options.upgradeTimeoutMs);
    options.signal.addEventListener('abort', onAbort, { once: true });
    if (options.signal.aborted) onAbort();
  });
}

/** What must never be quoted back: values of credential headers, secret query values and user info of the URL. */
function secretsOf(options: Pick<UpgradeOptions, 'url' | 'headers'>): string[] {
  const out: string[] = [];
  for (const [name, value] of Object.entries(options.headers)) {
    if (!isSecretName(name)) continue;
    out.push(value);
    // "Bearer abc…": the credential alone may be echoed too.
    const parts = value.split(/\s+/);
    if (parts.length > 1) out.push(parts.slice(1).join(' '));
  }
  try {
    const u = new URL(options.url);
    if (u.username) out.push(decodeURIComponent(u.username));
    if (u.password) out.push(decodeURIComponent(u.password));
    for (const [name, value] of u.searchParams) if (SECRET_PARAM.test(name)) out.push(value);
  } catch {
    // An invalid URL never got this far.
  }
  return out.filter((v) => v.length > 0).sort((a, b) => b.length - a.length);
}

/**
 * Up to `max` bytes of a response body: what arrived by the end, `max` or
 * a short wait, whichever is first; the response is destroyed afterwards.
 */
export function readBodyStart(res: IncomingMessage, max: number, waitMs = REFUSAL_BODY_WAIT_MS): Promise<string> {
  return new Promise((resolvePromise) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      res.destroy();
      resolvePromise(Buffer.concat(chunks).subarray(0, max).toString('utf8'));
    };
    const timer = setTimeout(finish, waitMs);
    res.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      size += chunk.length;
      if (size >= max) finish();
    });
    res.once('end', finish);
    res.once('error', finish);
    res.once('close', finish);
  });
}
