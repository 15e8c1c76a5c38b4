/**
 * Checks made on an upgrade request before ws sees it, each refusing with an
 * exact HTTP status and a stable error code, and the writer of the refusal.
 *
 * ws validates the same headers itself, but answers with its own statuses and
 * no code; checking first lets every refusal be counted under its reason.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { ErrorCode } from '../errors.js';
import { normalizeOrigin } from './options.js';
import type { PeerInfo, Refusal } from './types.js';

type Transport = PeerInfo['transport'];

/** Subprotocols of this form carry the bearer token for clients that cannot set headers (browsers). */
export const BEARER_PROTOCOL_PREFIX = 'bearer.';

const KEY_PATTERN = /^[+/0-9A-Za-z]{22}==$/;

export function refusal(status: number, code: ErrorCode, message: string): Refusal {
  return { status, code, message };
}

/** RFC 6455 section 4.2.1: the parts of the opening handshake a server must check. */
export function checkWebSocketRequest(req: IncomingMessage): Refusal | undefined {
  if (req.method !== 'GET') return refusal(405, 'ERR_HANDSHAKE_INVALID', 'the WebSocket handshake must be a GET');
  // "The method of the request MUST be GET, and the HTTP version MUST be at least 1.1" (section 4.1); Node's parser
  // and ws both let HTTP/1.0 through.
  if (req.httpVersionMajor < 1 || (req.httpVersionMajor === 1 && req.httpVersionMinor < 1)) {
    return refusal(400, 'ERR_HANDSHAKE_INVALID', `the WebSocket handshake needs HTTP/1.1 or later, got HTTP/${req.httpVersion}`);
  }
  if ((req.headers.upgrade ?? '').toLowerCase() !== 'websocket') return refusal(400, 'ERR_HANDSHAKE_INVALID', 'missing or invalid Upgrade header');
  const key = req.headers['sec-websocket-key'];
  if (typeof key !== 'string' || !KEY_PATTERN.test(key.trim())) return refusal(400, 'ERR_HANDSHAKE_INVALID', 'missing or invalid Sec-WebSocket-Key header');
  const version = req.headers['sec-websocket-version'];
  // 426 with the supported version lets a client retry with it (RFC 6455 section 4.4).
  if (version !== '13' && version !== '8') return refusal(426, 'ERR_HANDSHAKE_INVALID', 'unsupported Sec-WebSocket-Version (13 is supported)');
  return undefined;
}

/**
 * Cross-site WebSocket hijacking defence: a browser always sends Origin, so a
 * request with an Origin not on the list is refused. Non-browser clients send
 * none and are allowed.
 */
export function checkOrigin(origin: string | undefined, allowed: readonly string[]): Refusal | undefined {
  if (origin === undefined) return undefined;
  if (allowed.includes('*') || allowed.includes(normalizeOrigin(origin))) return undefined;
  return refusal(403, 'ERR_ORIGIN_REFUSED', 'origin not allowed');
}

/** The token offered by the request: the Authorization bearer, else a `bearer.X` subprotocol. */
export function offeredToken(req: IncomingMessage): string | undefined {
  const auth = req.headers.authorization;
  if (typeof auth === 'string') {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(auth);
    if (match) return match[1];
  }
  for (const protocol of parseProtocols(req.headers['sec-websocket-protocol'])) {
    if (protocol.startsWith(BEARER_PROTOCOL_PREFIX)) return protocol.slice(BEARER_PROTOCOL_PREFIX.length);
  }
  return undefined;
}

/** Compare hashes so the time taken reveals neither the token's length nor its prefix. */
export function tokenMatches(offered: string | undefined, expected: string): boolean {
  if (offered === undefined) return false;
  const a = createHash('sha256').update(offered).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

export function checkToken(req: IncomingMessage, expected: string): Refusal | undefined {
  const offered = offeredToken(req);
  if (offered === undefined) return refusal(401, 'ERR_UNAUTHORIZED', 'bearer token required');
  return tokenMatches(offered, expected) ? undefined : refusal(401, 'ERR_UNAUTHORIZED', 'bearer token refused');
}

function parseProtocols(header: string | undefined): string[] {
  if (!header) return [];
  return header.split(',').map((p) => p.trim()).filter(Boolean);
}

/**
 * Subprotocol selection with the bearer protocol kept out of the application's
 * view. When the client offered only the bearer protocol it is echoed back,
 * because browsers fail a handshake that offered protocols and got none.
 */
export function selectProtocol(
  protocols: Set<string>,
  req: IncomingMessage,
  handle: ((protocols: Set<string>, req: IncomingMessage) => string | false) | undefined,
): string | false {
  const visible = new Set([...protocols].filter((p) => !p.startsWith(BEARER_PROTOCOL_PREFIX)));
  if (visible.size === 0) return [...protocols][0] ?? false;
  if (handle) return handle(visible, req);
  return visible.values().next().value ?? false;
}

/**
 * Answer a refused upgrade and close the socket. The response is tiny and
 * sent once; a peer that never reads it cannot keep the socket: it is
 * destroyed after `lingerMs`.
 */
export function writeRefusal(socket: Duplex, status: number, code: string, message: string, lingerMs = 1000, extraHeaders: Record<string, string> = {}): void {
  if (socket.destroyed) return;
  const body = `${code}: ${message}\n`;
  const headers = [
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}`,
    'Connection: close',
    'Content-Type: text/plain; charset=utf-8',
    `Content-Length: ${Buffer.byteLength(body)}`,
    `X-Wshub-Error: ${code}`,
    ...Object.entries(extraHeaders).map(([k, v]) => `${k}: ${v}`),
  ];
  if (socket.writable) {
    socket.end(`${headers.join('\r\n')}\r\n\r\n${body}`);
    const timer = setTimeout(() => socket.destroy(), lingerMs);
    timer.unref();
    socket.once('close', () => clearTimeout(timer));
  } else {
    socket.destroy();
  }
}

/**
 * A socket we no longer track (already refused, or the server stopped):
 * one being ended after a refusal is left to finish sending it (its linger
 * timer destroys it); anything else is destroyed.
 */
export function finishUnknown(socket: Duplex): void {
  if (!socket.writableEnded) socket.destroy();
}

/** The peer and request target; undefined when the target cannot be parsed. */
export function peerInfo(req: IncomingMessage, transport: Transport): PeerInfo | undefined {
  let url: URL;
  try {
    url = new URL(req.url ?? '/', 'http://localhost');
  } catch {
    return undefined;
  }
  const origin = req.headers.origin;
  const info: PeerInfo = { transport, path: url.pathname, query: url.searchParams };
  if (transport === 'tcp') {
    if (req.socket.remoteAddress !== undefined) info.remoteAddress = req.socket.remoteAddress;
    if (req.socket.remotePort !== undefined) info.remotePort = req.socket.remotePort;
  }
  if (typeof origin === 'string') info.origin = origin;
  return info;
}
