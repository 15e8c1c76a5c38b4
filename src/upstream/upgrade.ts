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
      res.resume();
      fail(new WshubError('ERR_UPGRADE_REJECTED', `ERR_UPGRADE_REJECTED ${label} (HTTP ${status} ${res.statusMessage ?? ''})`.trimEnd().replace(/ \)$/, ')'),
        { details: { phase: 'upgrade', address: label, status } }));
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
