/**
 * The one catalog of wshub's error codes.
 *
 * Every error wshub raises or reports is a {@link WshubError} whose `code` is one
 * of the keys below. Codes are stable: they are part of the public contract,
 * appear in logs, metrics labels and envelope `error` frames, and a retired
 * code is never reused for something else (mark it retired in the catalog and
 * in docs/errors.md instead). `test/errors.test.ts` checks that every code is
 * documented in docs/errors.md.
 *
 * `closeCode` is the WebSocket close code sent to a peer when the error ends a
 * WebSocket session (RFC 6455 section 7.4), where one applies.
 */
export const ERROR_CATALOG = {
  // ── configuration and API misuse ────────────────────────────────────────
  ERR_INVALID_OPTION: { summary: 'An option or config key is missing, of the wrong type, or unknown.' },
  ERR_INVALID_STATE: { summary: 'The call is not allowed in the current state (e.g. send after close).' },
  ERR_CLOSED: { summary: 'The object was closed or destroyed; no new work is accepted.' },
  ERR_CONFIG_FILE: { summary: 'The config file cannot be read or parsed.' },

  // ── upstream dialing, one code per phase ────────────────────────────────
  ERR_DNS: { summary: 'Name resolution failed for the upstream host.' },
  ERR_DNS_TIMEOUT: { summary: 'Name resolution did not answer within dnsTimeoutMs.' },
  ERR_TCP_CONNECT: { summary: 'The TCP connection was refused or failed (errno given) for every address tried.' },
  ERR_TCP_TIMEOUT: { summary: 'The TCP connection to an address did not complete within tcpTimeoutMs.' },
  ERR_TLS: { summary: 'The TLS handshake failed (certificate, protocol, alert).' },
  ERR_TLS_TIMEOUT: { summary: 'The TLS handshake did not complete within tlsTimeoutMs.' },
  ERR_UPGRADE_REJECTED: { summary: 'The server answered the WebSocket upgrade with a non-101 HTTP status.' },
  ERR_UPGRADE_TIMEOUT: { summary: 'The HTTP upgrade did not complete within upgradeTimeoutMs.' },
  ERR_UPGRADE_INVALID: { summary: 'The upgrade response was malformed (bad accept key, unrequested subprotocol or extension).' },
  ERR_CONNECT_GATE: { summary: 'The connectGate option rejected a connection attempt before it dialed; retried with backoff.' },

  // ── upstream liveness and lifecycle ─────────────────────────────────────
  ERR_PONG_TIMEOUT: { summary: 'No pong or application proof of life arrived within pongTimeoutMs of a ping.' },
  ERR_PROBE_FAILED: { summary: 'The local address of the socket disappeared and the liveness probe got no answer.' },
  ERR_CONNECTION_LOST: { summary: 'The upstream connection ended without a close frame (1006) or with an error.' },
  ERR_SERVER_CLOSED: { summary: 'The upstream server closed the connection with a close frame.' },
  ERR_FATAL_CLOSE_CODE: { summary: 'The server closed with a close code configured as final; retrying stopped.' },
  ERR_MAX_ATTEMPTS: { summary: 'maxAttempts consecutive connection attempts failed; retrying stopped.' },
  ERR_NETWATCH_FAILED: { summary: 'Reading the local interfaces failed (e.g. EMFILE, errno given); the interface watcher kept its last view and retries at the next poll.' },

  // ── outbound queue while the upstream is not open ───────────────────────
  ERR_QUEUE_FULL: { summary: 'A message did not fit the bounded outbound queue (count or bytes) and was not queued.' },
  ERR_QUEUE_EXPIRED: { summary: 'A queued message waited longer than its TTL and was discarded.' },
  ERR_QUEUE_DISABLED: { summary: 'The upstream is not open and outbound queuing is disabled.' },
  ERR_QUEUE_CLOSED: { summary: 'The connection closed for good with messages still queued; they were discarded.' },

  // ── listener (local attach) ─────────────────────────────────────────────
  ERR_LISTEN_ADDRESS_IN_USE: { summary: 'A live process already listens on the Unix socket path or TCP port.' },
  ERR_HANDSHAKE_TIMEOUT: { summary: 'A peer did not complete the HTTP upgrade within handshakeTimeoutMs.' },
  ERR_HANDSHAKE_INVALID: { summary: 'A peer sent a malformed or non-WebSocket HTTP request.' },
  ERR_PEER_GONE: { summary: 'A peer disconnected or reset before or during the handshake.' },
  ERR_TOO_MANY_CONNECTIONS: { summary: 'maxConnections sessions are open; the upgrade was answered 503.' },
  ERR_TOO_MANY_HANDSHAKES: { summary: 'maxPendingHandshakes peers are mid-handshake; the new one was refused.' },
  ERR_ORIGIN_REFUSED: { summary: 'The Origin header is not on the allow-list; the upgrade was answered 403.' },
  ERR_UNAUTHORIZED: { summary: 'The bearer token is missing or wrong; the upgrade (or the HTTP status request) was answered 401.' },
  ERR_HOST_REFUSED: { summary: 'The HTTP status side does not answer to the request\'s Host name (DNS-rebinding defence); answered 421.' },
  ERR_NOT_FOUND: { summary: 'No route for the requested path or upstream; the upgrade was answered 404.' },
  ERR_RATE_LIMITED: { summary: 'A session sent more messages per second than allowed.', closeCode: 1008 },
  ERR_PING_FLOOD: { summary: 'A session sent pings faster than their pongs could be written (more than maxPendingPongs owed, e.g. a burst of over 60).', closeCode: 1008 },
  ERR_PAYLOAD_TOO_LARGE: { summary: 'A message exceeded maxPayload.', closeCode: 1009 },
  ERR_PROTOCOL: { summary: 'A peer violated RFC 6455 framing (close code per the violation).', closeCode: 1002 },
  ERR_IDLE_TIMEOUT: { summary: 'A session answered no ping within the idle timeout.' },
  ERR_FD_EXHAUSTED: { summary: 'accept() failed with EMFILE/ENFILE; the listener paused and will resume.' },
  ERR_SHUTTING_DOWN: { summary: 'The server is draining; the session is closed with 1001.', closeCode: 1001 },
  ERR_LISTEN_FAILED: { summary: 'A listener could not bind (permission, bad path or address, mode not settable); errno given.' },
  ERR_SESSION_LOST: { summary: 'A local session\'s socket ended without a close frame (reset, EPIPE, peer vanished).' },
  ERR_CALLBACK_FAILED: { summary: 'A user callback (authorize, handleProtocols, a session listener) threw; the peer got HTTP 500 or close 1011.', closeCode: 1011 },

  // ── hub routing ─────────────────────────────────────────────────────────
  ERR_UNKNOWN_UPSTREAM: { summary: 'The named upstream is not configured.' },
  ERR_SLOW_CONSUMER: { summary: 'A session fell behind past its queue limit under the disconnect policy.', closeCode: 1013 },
  ERR_BAD_MESSAGE: { summary: 'A session sent a message the adapter cannot use (e.g. invalid JSON for a json adapter).', closeCode: 1007 },
  ERR_UPSTREAM_UNAVAILABLE: { summary: 'The upstream is closed for good, was removed, or dropped with the request in flight; the request or message cannot be served.', closeCode: 1011 },
  ERR_UPSTREAM_LOST: { summary: 'The upstream connection was lost and the outage reported (after concealFailures); transparent sessions under `onUpstreamLoss: close` are closed with 1012 so the worker reconnects and resyncs.', closeCode: 1012 },
  ERR_UPSTREAM_REMOVED: { summary: 'The upstream was removed or its connection target changed by a config reload; its transparent sessions are closed with 1001.', closeCode: 1001 },
  ERR_UNKNOWN_QUERY: { summary: 'An attach URL carried a query parameter the hub does not know (e.g. a misspelled `group`); the upgrade was answered 400.' },
  ERR_SUBPROTOCOL_UNAVAILABLE: { summary: 'A worker asked only for subprotocols the upstream is not opened with; the upgrade was answered 400 naming the configured `protocols`.' },
  ERR_SEND_BUFFER_FULL: { summary: 'The hub already holds sendBufferBytes of data for the upstream (written to it or waiting); the message was refused and the sender told at once.' },
  ERR_FAILBACK_OVERLAP: { summary: 'During a failback both endpoints stream the same feed: a message of the connection not delivering at that moment was not delivered, so nothing arrives twice.' },
  ERR_ROUTING_FAILED: { summary: 'Routing one upstream message failed inside the hub (a bug); that message was dropped, counted and logged.' },
  // ── why a message was not delivered (drop reasons in stats, metrics and `lagged`) ──
  ERR_DROP_OLDEST: { summary: 'A session\'s queue was full under the `drop-oldest` policy; its oldest waiting message was dropped.' },
  ERR_DROP_CONFLATED: { summary: 'A waiting message was replaced by a newer one of the same topic under the `conflate` policy.' },
  ERR_SESSION_CLOSED: { summary: 'The session closed (or was ending) before the message could be handed to its socket.' },
  ERR_UNROUTED: { summary: 'An upstream message that no attached session was subscribed to.' },
  ERR_ORPHAN_ANSWER: { summary: 'An upstream answer to a request whose asker left, timed out or was answered already.' },
  ERR_UNKNOWN_SUBSCRIPTION: { summary: 'A JSON-RPC subscription notification for a subscription the hub no longer holds (typically one already on the wire when the last subscriber left).' },
  ERR_REQUEST_TIMEOUT: { summary: 'The upstream did not answer a request within its timeout.' },
  ERR_TOO_MANY_REQUESTS: { summary: 'A session has too many requests in flight.' },
  ERR_TOO_MANY_SUBSCRIPTIONS: { summary: 'A session has too many subscriptions.' },
  ERR_SUBSCRIBE_REFUSED: { summary: 'The upstream refused a subscription (its answer carried an error); the topic is not live and the session left it. Transparent workers get the upstream\'s own answer with their id instead.' },
  // ── envelope protocol (/hub) ────────────────────────────────────────────
  ERR_ENVELOPE_JSON: { summary: 'An envelope text frame is not valid JSON.' },
  ERR_ENVELOPE_UNKNOWN_OP: { summary: 'An envelope frame has a missing or unknown `op`.' },
  ERR_ENVELOPE_INVALID: { summary: 'An envelope frame has a missing or invalid field (the message names it).' },
  ERR_ENVELOPE_TOO_LARGE: { summary: 'An envelope frame exceeded maxEnvelopeBytes; it was ignored and the session kept.' },
  ERR_DUPLICATE_REQUEST: { summary: 'A `req` reused the id of a request still in flight on the same upstream.' },
  ERR_UNKNOWN_CODE: { summary: 'The hub answered with an error code this HubClient does not know (a newer hub); the hub\'s code is in `details.code`.' },

  // ── cluster mode (NATS) ─────────────────────────────────────────────────
  ERR_NATS_CONNECT: { summary: 'No NATS server of `cluster.nats` could be reached (refused, timed out, TLS failed); the cause says which.' },
  ERR_NATS_AUTH: { summary: 'The NATS server refused the credentials (user and password, or token).' },
  ERR_NATS_VERSION: { summary: 'The NATS server is older than 2.9.0, whose KV compare-and-swap and bucket TTL the lease needs.' },
  ERR_NATS_NO_JETSTREAM: { summary: 'JetStream is not enabled on the NATS server or for the account (start nats-server with -js).' },
  ERR_CLUSTER_BUCKET: { summary: 'The cluster\'s KV bucket cannot be created or opened, or its TTL differs from leaseTtlMs (hubs disagree on the config).' },
  ERR_CLUSTER_NO_HOLDER: { summary: 'A forwarded send or request found no hub holding the upstream (NATS reported no responders).' },
  ERR_CLUSTER_REQUEST_TIMEOUT: { summary: 'The hub holding the upstream did not answer a forwarded send or request within its timeout.' },

  // ── command line (wshub status, tail, demo) ─────────────────────────────
  ERR_HUB_UNREACHABLE: { summary: 'The hub\'s HTTP address or worker socket did not answer (not running, wrong address, no permission).' },
  ERR_NATS_SERVER_MISSING: { summary: '`wshub demo --cluster` needs a local nats-server and found none on PATH or in $NATS_SERVER (install it: apt-get install nats-server).' },
} as const satisfies Record<string, { summary: string; closeCode?: number }>;

/** A stable wshub error code. */
export type ErrorCode = keyof typeof ERROR_CATALOG;

/** Extra, structured facts about an error, e.g. the phase and address of a dial failure. */
export interface ErrorDetails {
  /** The dial phase that failed: `dns`, `tcp`, `tls`, `upgrade`. */
  phase?: 'dns' | 'tcp' | 'tls' | 'upgrade';
  /** The address that was tried, as `host:port` (`[v6]:port` for IPv6). */
  address?: string;
  /** An OS errno code such as `ECONNREFUSED`, when the cause carries one. */
  errno?: string;
  /** The HTTP status of a rejected upgrade. */
  status?: number;
  [key: string]: unknown;
}

/**
 * The base of every error wshub raises. Match on `code`, never on `message`.
 */
export class WshubError extends Error {
  override readonly name = 'WshubError';
  readonly code: ErrorCode;
  /** The WebSocket close code to send when this error ends a session, if any. */
  readonly closeCode: number | undefined;
  readonly details: ErrorDetails;

  constructor(code: ErrorCode, message: string, options: { cause?: unknown; closeCode?: number; details?: ErrorDetails } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    // A code from outside this catalog (a newer peer) must never make the constructor throw.
    const entry: { summary: string; closeCode?: number } | undefined = ERROR_CATALOG[code];
    this.closeCode = options.closeCode ?? entry?.closeCode;
    this.details = options.details ?? {};
  }

  /** A plain object for logs and JSON: code, message, details, cause's code. */
  toJSON(): Record<string, unknown> {
    const cause = this.cause as { code?: unknown; message?: unknown } | undefined;
    return {
      code: this.code,
      message: this.message,
      ...(this.closeCode === undefined ? {} : { closeCode: this.closeCode }),
      ...this.details,
      ...(cause ? { cause: cause.code ?? cause.message } : {}),
    };
  }
}

/** True when `err` is a {@link WshubError}, optionally with the given code. */
export function isWshubError(err: unknown, code?: ErrorCode): err is WshubError {
  return err instanceof WshubError && (code === undefined || err.code === code);
}

/** The errno-style code (`ECONNREFUSED`) of a Node error, if it has one. */
export function errnoOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}
