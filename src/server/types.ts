/**
 * The public contract of the hardened listener. The hub is written against these types.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { WebSocket } from 'ws';
import type { ErrorCode } from '../errors.js';

/** Who connected, and to what. */
export interface PeerInfo {
  transport: 'unix' | 'tcp';
  /** Undefined on Unix sockets, and for a TCP peer that vanished before it could be read. */
  remoteAddress?: string;
  remotePort?: number;
  /** The request path, e.g. `/u/feed`. */
  path: string;
  query: URLSearchParams;
  /** The Origin header, when the peer sent one (browsers do). */
  origin?: string;
}

/** What `authorize` returns to refuse an upgrade: answered with `status`, counted under `code`. */
export interface Refusal {
  status: number;
  code: ErrorCode;
  message: string;
}

/** One accepted WebSocket session, delivered as the `session` event. */
export interface Session {
  /** Unique within this server, e.g. `s42`. */
  id: string;
  ws: WebSocket;
  req: IncomingMessage;
  peer: PeerInfo;
  /**
   * The session's socket, for writers that frame once and write the same bytes
   * to many sessions (the hub): ws never transforms frames on listener sessions
   * (no permessage-deflate), so pre-framed writes interleave safely with its own.
   */
  socket: Duplex;
}

/** The listeners' bound addresses. */
export interface ServerAddresses {
  unix?: string;
  tcp?: { host: string; port: number };
}

/** Server lifecycle: `idle → listening → closing → closed` (or `idle → closed`). */
export type ServerState = 'idle' | 'listening' | 'closing' | 'closed';

/** One snapshot of everything the listener counts; feeds /status and /metrics. */
export interface ServerStats {
  state: ServerState;
  /** Open sessions. */
  open: number;
  /** Sockets accepted and not yet upgraded or closed. */
  handshaking: number;
  /** Sessions accepted over the server's life. */
  accepted: number;
  /** Peers refused before or during the handshake, by error code (HTTP status answered, or socket closed). */
  rejected: Record<string, number>;
  /** Errors by code: sessions ended by a protocol violation, a limit or a reset; descriptor exhaustion; callback failures. */
  errors: Record<string, number>;
  /** Messages received but not delivered to the session's listeners, by reason (e.g. after `ERR_RATE_LIMITED`). */
  dropped: Record<string, number>;
  /** True while accept() is failing for lack of file descriptors. */
  fdExhausted: boolean;
}

/** Why a session ended, delivered with the session's `close` as the server's `sessionClose` event. */
export interface SessionClose {
  id: string;
  /** The close code received or sent (1006 when the socket just ended). */
  code: number;
  reason: string;
  /** The error that ended it, when one did. */
  errorCode?: ErrorCode;
}

/** The event map of `HardenedServer`. */
export interface HardenedServerEvents {
  session: [Session];
  sessionClose: [SessionClose];
  /** A non-fatal problem worth a metric or a log line (descriptor exhaustion, a callback that threw). */
  warning: [{ code: ErrorCode; message: string }];
}
