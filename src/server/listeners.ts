/**
 * The listening sockets: one http.Server per listener, bound, closed, and
 * paused / re-opened with backoff when accept() itself fails.
 */
import { createServer, type Server as HttpServer } from 'node:http';
import type { Logger } from '../observe/log.js';
import { LISTEN_BACKLOG, freeUnixPath, listenError, listenUnix } from './unix-socket.js';

export type Transport = 'unix' | 'tcp';

export interface Listener {
  transport: Transport;
  http: HttpServer;
  /** The bound address, for re-opening after an accept failure. */
  unixPath?: string;
  tcp?: { host: string; port: number };
  reopenTimer?: NodeJS.Timeout;
  reopenDelayMs: number;
}

/** Longest pause between attempts to re-open a listener whose accept() failed. */
export const MAX_REOPEN_DELAY_MS = 30_000;

export function createHttpServer(): HttpServer {
  const http = createServer({ noDelay: true });
  // The server's own handshake timer is the bound; http's timers are slower and coarser.
  http.requestTimeout = 0;
  http.headersTimeout = 0;
  http.timeout = 0;
  return http;
}

export function listenTcp(http: HttpServer, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => {
      http.off('listening', onListening);
      reject(listenError(err, `${host.includes(':') ? `[${host}]` : host}:${port}`));
    };
    const onListening = (): void => {
      http.off('error', onError);
      resolve();
    };
    http.once('error', onError);
    http.once('listening', onListening);
    http.listen({ port, host, backlog: LISTEN_BACKLOG });
  });
}

/** Resolves when the listening handle is closed and every socket it accepted has ended. */
export function closeListener(listener: Listener): Promise<void> {
  clearTimeout(listener.reopenTimer);
  return new Promise((resolve) => {
    if (!listener.http.listening) {
      // Paused (or never bound): accepted sockets may still be open; they end with their sessions.
      resolve();
      return;
    }
    listener.http.close(() => resolve());
  });
}

export interface ReopenOptions {
  baseDelayMs: number;
  unixSocketMode: number;
  logger: Logger;
  /** False once the server stopped listening: no more attempts. */
  active: () => boolean;
}

/** Re-open a paused listener after its current delay, doubling the delay (to 30 s) while re-opening fails. */
export function scheduleReopen(listener: Listener, options: ReopenOptions): void {
  if (listener.reopenTimer !== undefined) return;
  const delay = listener.reopenDelayMs;
  listener.reopenDelayMs = Math.min(MAX_REOPEN_DELAY_MS, delay * 2);
  options.logger.warn({ transport: listener.transport, delayMs: delay }, 'listener paused');
  listener.reopenTimer = setTimeout(() => {
    listener.reopenTimer = undefined;
    if (!options.active()) return;
    const { unixPath, tcp } = listener;
    const reopened = unixPath !== undefined
      ? freeUnixPath(unixPath).then(() => listenUnix(listener.http, unixPath, options.unixSocketMode))
      : listenTcp(listener.http, tcp!.host, tcp!.port);
    reopened.then(
      () => {
        listener.reopenDelayMs = options.baseDelayMs;
        options.logger.info({ transport: listener.transport }, 'listener resumed');
      },
      (err: unknown) => {
        options.logger.warn({ err, transport: listener.transport }, 'listener re-open failed');
        if (options.active()) scheduleReopen(listener, options);
      },
    );
  }, delay);
  listener.reopenTimer.unref();
}
