/**
 * The hub's connection to NATS for cluster mode.
 *
 * `connectCluster()` dials one URL or a list (nats.js tries them in turn and
 * keeps reconnecting forever afterwards), then checks what the cluster mode
 * relies on before anything else uses the connection: a server of at least
 * 2.9.0 (KV compare-and-swap and bucket TTL; nothing of 2.10+ or 2.11+ is
 * used) and JetStream enabled for the account. It checks again after every
 * reconnect, since the next server of a list may be a different one.
 * Connection changes are reported as typed `status` events.
 */
import { EventEmitter } from 'node:events';
import { WshubError, isWshubError } from '../errors.js';
import { parseOptions } from '../options.js';
import { z } from '../zod.js';
import { loadNats, type NatsConnection, type NatsLib } from './nats.js';

/** The oldest nats-server the cluster mode runs on. */
export const MIN_NATS_SERVER_VERSION = '2.9.0';
/** @see ClusterConnectOptions.connectTimeoutMs */
export const DEFAULT_NATS_CONNECT_TIMEOUT_MS = 5000;
/** @see ClusterConnectOptions.pingIntervalMs */
export const DEFAULT_NATS_PING_INTERVAL_MS = 2000;
/** @see ClusterConnectOptions.maxPingOut */
export const DEFAULT_NATS_MAX_PING_OUT = 2;
/** @see ClusterConnectOptions.reconnectWaitMs */
export const DEFAULT_NATS_RECONNECT_WAIT_MS = 500;

/** TLS towards NATS (a `tls://` URL, or a server that requires TLS). */
export interface ClusterTlsOptions {
  /** PEM of the CA(s) to trust instead of the system's. */
  ca?: string | string[];
  /** PEM client certificate, for servers that verify clients. */
  cert?: string;
  /** PEM key of `cert`. */
  key?: string;
  /** Refuse servers whose certificate does not verify. @default true */
  rejectUnauthorized?: boolean;
  /** TLS before the NATS INFO (the server must be configured with `handshake_first`). @default false */
  handshakeFirst?: boolean;
}

/** Options of {@link connectCluster}. */
export interface ClusterConnectOptions {
  /** `nats://host:port` (or `tls://`), or a list of them, tried in order. */
  servers: string | string[];
  /** User name, with `pass`. */
  user?: string;
  pass?: string;
  /** Token authentication (instead of user and pass). */
  token?: string;
  tls?: ClusterTlsOptions;
  /** The connection's name in the server's monitoring. @default "wshub" */
  name?: string;
  /** How long one connection attempt may take. @default 5000 */
  connectTimeoutMs?: number;
  /** Ping the server this often; `maxPingOut` unanswered pings drop the connection. @default 2000 */
  pingIntervalMs?: number;
  /** @default 2 */
  maxPingOut?: number;
  /** Wait between reconnect attempts to the same server. @default 500 */
  reconnectWaitMs?: number;
}

/** A `nats://` or `tls://` URL (the hub's `cluster.nats` key uses it too). */
export const natsUrl = z.string().refine((value) => {
  try {
    return ['nats:', 'tls:'].includes(new URL(value).protocol);
  } catch {
    return false;
  }
}, { message: 'expected a nats:// or tls:// URL' });

const schema = z.strictObject({
  servers: z.union([natsUrl, z.array(natsUrl).min(1)]),
  user: z.string().min(1).optional(),
  pass: z.string().optional(),
  token: z.string().min(1).optional(),
  tls: z.strictObject({
    ca: z.union([z.string(), z.array(z.string())]).optional(),
    cert: z.string().optional(),
    key: z.string().optional(),
    rejectUnauthorized: z.boolean().default(true),
    handshakeFirst: z.boolean().default(false),
  }).optional(),
  name: z.string().min(1).default('wshub'),
  connectTimeoutMs: z.number().int().positive().default(DEFAULT_NATS_CONNECT_TIMEOUT_MS),
  pingIntervalMs: z.number().int().positive().default(DEFAULT_NATS_PING_INTERVAL_MS),
  maxPingOut: z.number().int().positive().default(DEFAULT_NATS_MAX_PING_OUT),
  reconnectWaitMs: z.number().int().min(0).default(DEFAULT_NATS_RECONNECT_WAIT_MS),
}).refine((o) => !(o.token !== undefined && o.user !== undefined), { message: 'token and user are exclusive', path: ['token'] })
  .refine((o) => (o.user === undefined) === (o.pass === undefined), { message: 'user and pass go together', path: ['pass'] });

/** A change of the NATS connection, delivered as the `status` event. */
export type ClusterConnectionStatus =
  | { type: 'disconnected'; server: string; at: number }
  | { type: 'reconnecting'; at: number }
  | { type: 'reconnected'; server: string; version: string; at: number }
  /** The server refused something or the reconnected server fails the checks (then `closed` follows). */
  | { type: 'error'; error: WshubError; at: number }
  | { type: 'closed'; at: number };

export interface ClusterConnectionEvents {
  status: [ClusterConnectionStatus];
}

/** An open, checked NATS connection. Create with {@link connectCluster}. */
export class ClusterConnection extends EventEmitter<ClusterConnectionEvents> {
  /** The nats.js connection, for the other cluster modules. */
  readonly nc: NatsConnection;
  /** The loaded NATS modules (loaded only once a cluster is configured). */
  readonly lib: NatsLib;
  #connected = true;
  #closing: Promise<void> | undefined;
  /** Operations creating subscriptions that `close()` lets finish first ({@link whileOpen}). */
  readonly #inFlight = new Set<Promise<unknown>>();

  /** @internal use {@link connectCluster} */
  constructor(nc: NatsConnection, lib: NatsLib) {
    super();
    this.nc = nc;
    this.lib = lib;
    void this.#watch();
  }

  /** True while the connection is up (false while reconnecting and after close). */
  get connected(): boolean {
    return this.#connected;
  }

  /** The version of the server the connection is on now. */
  get serverVersion(): string {
    return this.nc.info?.version ?? 'unknown';
  }

  /** The largest message the server accepts, in bytes. */
  get maxPayload(): number {
    return this.nc.info?.max_payload ?? 1024 * 1024;
  }

  /** One round trip to the server, in ms (rejects while disconnected). */
  rtt(): Promise<number> {
    return this.nc.rtt();
  }

  /** True once `close()` was called or the connection closed on its own: nothing new should start on it. */
  get closing(): boolean {
    return this.#closing !== undefined || this.nc.isClosed();
  }

  /**
   * Run `op`, which creates subscriptions (a KV watch), so that `close()`
   * waits for it before it drains; refused once the connection is closing.
   * nats.js 3 starts a push consumer's heartbeat timer before it subscribes,
   * and a subscribe refused by a draining connection leaves that timer
   * running for good: it logs ClosedConnectionError every few seconds and
   * keeps the process alive after the hub closed. Each such operation is
   * bounded by the JetStream timeout, so the wait is too.
   */
  whileOpen<T>(op: () => Promise<T>): Promise<T> {
    // Internal: the one caller (a KV watch) retries or stops; the error never reaches a user.
    if (this.closing) return Promise.reject(new Error('the NATS connection is closing'));
    const running = op();
    this.#inFlight.add(running);
    const done = (): void => void this.#inFlight.delete(running);
    running.then(done, done);
    return running;
  }

  /** Flush what is buffered and close (idempotent); subscriptions being created are let finish first. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      await Promise.allSettled([...this.#inFlight]);
      if (!this.nc.isClosed()) await this.nc.drain().catch(() => this.nc.close());
      await this.nc.closed();
    })();
    return this.#closing;
  }

  async #watch(): Promise<void> {
    try {
      await this.#follow();
    } catch {
      // The status iterator of a connection that is going away; `closed` follows below.
    }
    this.#connected = false;
    this.emit('status', { type: 'closed', at: Date.now() });
  }

  async #follow(): Promise<void> {
    for await (const s of this.nc.status()) {
      const at = Date.now();
      switch (s.type) {
        case 'disconnect':
          this.#connected = false;
          this.emit('status', { type: 'disconnected', server: s.server, at });
          break;
        case 'reconnecting':
          this.emit('status', { type: 'reconnecting', at });
          break;
        case 'reconnect': {
          const problem = checkServer(this.nc);
          if (problem) {
            this.emit('status', { type: 'error', error: problem, at });
            await this.close();
            break;
          }
          this.#connected = true;
          this.emit('status', { type: 'reconnected', server: s.server, version: this.serverVersion, at });
          break;
        }
        case 'error':
          this.emit('status', { type: 'error', error: mapNatsError(s.error, this.lib), at });
          break;
        default:
          break;
      }
    }
  }
}

/**
 * Connect to NATS, check the server (≥ 2.9.0, JetStream on for the account)
 * and return the connection. Rejects with `ERR_INVALID_OPTION`,
 * `ERR_NATS_CONNECT`, `ERR_NATS_AUTH`, `ERR_NATS_VERSION` or
 * `ERR_NATS_NO_JETSTREAM`; a failed check closes the connection first.
 */
export async function connectCluster(options: ClusterConnectOptions): Promise<ClusterConnection> {
  const o = parseOptions(schema, options, 'cluster');
  const lib = await loadNats();
  let nc: NatsConnection;
  try {
    nc = await lib.core.connect({
      servers: o.servers,
      name: o.name,
      timeout: o.connectTimeoutMs,
      pingInterval: o.pingIntervalMs,
      maxPingOut: o.maxPingOut,
      reconnect: true,
      maxReconnectAttempts: -1,
      reconnectTimeWait: o.reconnectWaitMs,
      ...(o.user !== undefined ? { user: o.user, pass: o.pass } : {}),
      ...(o.token !== undefined ? { token: o.token } : {}),
      ...(o.tls ? {
        tls: {
          ...(o.tls.ca !== undefined ? { ca: Array.isArray(o.tls.ca) ? o.tls.ca.join('\n') : o.tls.ca } : {}),
          ...(o.tls.cert !== undefined ? { cert: o.tls.cert } : {}),
          ...(o.tls.key !== undefined ? { key: o.tls.key } : {}),
          rejectUnauthorized: o.tls.rejectUnauthorized,
          handshakeFirst: o.tls.handshakeFirst,
        },
      } : {}),
    });
  } catch (err) {
    throw mapNatsError(err, lib);
  }
  const problem = checkServer(nc) ?? await checkJetStream(nc, lib);
  if (problem) {
    await nc.close().catch(() => undefined);
    throw problem;
  }
  return new ClusterConnection(nc, lib);
}

/** `ERR_NATS_VERSION` or `ERR_NATS_NO_JETSTREAM` when the server the connection is on cannot serve the cluster mode. */
function checkServer(nc: NatsConnection): WshubError | undefined {
  const version = nc.info?.version ?? '0.0.0';
  if (compareVersions(version, MIN_NATS_SERVER_VERSION) < 0) {
    return new WshubError('ERR_NATS_VERSION', `ERR_NATS_VERSION nats-server ${version} is older than ${MIN_NATS_SERVER_VERSION}`, { details: { version } });
  }
  // INFO says whether JetStream runs on the server; checkJetStream asks whether the account has it.
  if (nc.info?.jetstream !== true) {
    return new WshubError('ERR_NATS_NO_JETSTREAM', `ERR_NATS_NO_JETSTREAM nats-server ${version} runs without JetStream (start it with -js)`, { details: { version } });
  }
  return undefined;
}

async function checkJetStream(nc: NatsConnection, lib: NatsLib): Promise<WshubError | undefined> {
  try {
    await lib.jetstream.jetstreamManager(nc);
    return undefined;
  } catch (err) {
    if (err instanceof lib.jetstream.JetStreamError || err instanceof lib.jetstream.JetStreamApiError
      || (err instanceof Error && err.name === 'JetStreamNotEnabled')) {
      return new WshubError('ERR_NATS_NO_JETSTREAM', `ERR_NATS_NO_JETSTREAM JetStream is not enabled for this account: ${err.message}`, { cause: err });
    }
    return mapNatsError(err, lib);
  }
}

/** A nats.js connect or status error as a wshub error. */
export function mapNatsError(err: unknown, lib: NatsLib): WshubError {
  if (isWshubError(err)) return err;
  const message = err instanceof Error ? err.message : String(err);
  if (err instanceof lib.core.AuthorizationError || err instanceof lib.core.UserAuthenticationExpiredError) {
    return new WshubError('ERR_NATS_AUTH', `ERR_NATS_AUTH the NATS server refused the credentials: ${message}`, { cause: err });
  }
  const cause = (err as { cause?: { code?: unknown; message?: unknown } } | null)?.cause;
  const errno = typeof cause?.code === 'string' ? cause.code : undefined;
  const detail = typeof cause?.message === 'string' ? `${message} (${cause.message})` : message;
  return new WshubError('ERR_NATS_CONNECT', `ERR_NATS_CONNECT ${detail}`, { cause: err, ...(errno ? { details: { errno } } : {}) });
}

/** Compare dotted versions numerically (`2.10.0` > `2.9.10`); a pre-release suffix is ignored. */
export function compareVersions(a: string, b: string): number {
  const parse = (v: string): number[] => v.split(/[-+]/)[0]!.split('.').map((part) => Number.parseInt(part, 10) || 0);
  const pa = parse(a);
  const pb = parse(b);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}
