/**
 * Dialing, one phase at a time, each under its own timeout and failing with
 * its own error code that names the phase and the address:
 *
 *   dns  → lookup(all: true) under dnsTimeoutMs           ERR_DNS / ERR_DNS_TIMEOUT
 *   tcp  → Happy Eyeballs (RFC 8305) over every answer     ERR_TCP_CONNECT / ERR_TCP_TIMEOUT
 *   tls  → tls.connect over the won socket (wss only)      ERR_TLS / ERR_TLS_TIMEOUT
 *
 * The HTTP upgrade is the last phase and lives in upgrade.ts: ws takes the
 * ready socket through its `createConnection` option.
 */
import { lookup as dnsLookup } from 'node:dns';
import { performance } from 'node:perf_hooks';
import type { LookupAddress } from 'node:dns';
import { connect as netConnect, isIP } from 'node:net';
import type { LookupFunction, Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { SecureContextOptions, TLSSocket } from 'node:tls';
import { WshubError, errnoOf } from '../errors.js';

export interface DialOptions {
  host: string;
  port: number;
  secure: boolean;
  lookup: LookupFunction | undefined;
  localAddress: string | undefined;
  happyEyeballsDelayMs: number;
  dnsTimeoutMs: number;
  tcpTimeoutMs: number;
  tlsTimeoutMs: number;
  ca: SecureContextOptions['ca'] | undefined;
  rejectUnauthorized: boolean;
  /** Aborting destroys every socket of the attempt and rejects with the signal's reason. */
  signal: AbortSignal;
}

export interface Dialed {
  socket: Socket | TLSSocket;
  address: string;
  port: number;
  family: 'IPv4' | 'IPv6';
  /** Every address tried, in order, as `host:port` / `[v6]:port`. */
  tried: string[];
  /** How long each phase took, in ms: no `dnsMs` for an IP literal, no `tlsMs` for `ws:`. */
  phases: DialPhases;
}

export interface DialPhases {
  dnsMs?: number;
  /** The whole Happy Eyeballs race, failed addresses included. */
  tcpMs: number;
  tlsMs?: number;
}

export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}

/** `127.0.0.1:80`, `[::1]:80`. */
export function formatAddress(address: string, port: number): string {
  return isIP(address) === 6 ? `[${address}]:${port}` : `${address}:${port}`;
}

/** DNS, TCP (Happy Eyeballs) and, for wss, TLS. Resolves with a connected (and secured) socket. */
export async function dial(options: DialOptions): Promise<Dialed> {
  const phases: DialPhases = { tcpMs: 0 };
  let start = performance.now();
  const addresses = await resolve(options);
  if (isIP(options.host) === 0) phases.dnsMs = performance.now() - start;
  start = performance.now();
  const won = await raceConnect(options, interleave(addresses));
  phases.tcpMs = performance.now() - start;
  if (!options.secure) return { ...won, phases };
  try {
    start = performance.now();
    const socket = await secure(options, won);
    phases.tlsMs = performance.now() - start;
    return { ...won, socket, phases };
  } catch (err) {
    won.socket.destroy();
    throw err;
  }
}

/** Resolve the host to every address, under dnsTimeoutMs. An IP literal skips DNS. */
export function resolve(options: Pick<DialOptions, 'host' | 'port' | 'lookup' | 'dnsTimeoutMs' | 'signal'>): Promise<ResolvedAddress[]> {
  const { host, port } = options;
  const literal = isIP(host);
  if (literal !== 0) return Promise.resolve([{ address: host, family: literal as 4 | 6 }]);
  const lookup = options.lookup ?? dnsLookup;
  return new Promise((resolvePromise, reject) => {
    const settle = settleOnce(
      options.signal,
      options.dnsTimeoutMs,
      () => reject(new WshubError('ERR_DNS_TIMEOUT', `ERR_DNS_TIMEOUT ${host}:${port} (no answer from the resolver after ${options.dnsTimeoutMs} ms)`,
        { details: { phase: 'dns', address: `${host}:${port}` } })),
      () => reject(abortError(options.signal)),
    );
    try {
      lookup(host, { all: true }, (err, result, family) => {
        if (err) {
          const errno = errnoOf(err);
          settle(() => reject(new WshubError('ERR_DNS', `ERR_DNS ${host}:${port} (${errno ?? err.message})`,
            { cause: err, details: { phase: 'dns', address: `${host}:${port}`, errno } })));
          return;
        }
        // A custom lookup may answer in the single-address shape even when asked for all.
        const list: LookupAddress[] = Array.isArray(result) ? result : [{ address: result, family: family ?? isIP(result) }];
        const addresses = list
          .map((a): ResolvedAddress => ({ address: a.address, family: a.family === 6 || isIP(a.address) === 6 ? 6 : 4 }))
          .filter((a) => isIP(a.address) !== 0);
        if (addresses.length === 0) {
          settle(() => reject(new WshubError('ERR_DNS', `ERR_DNS ${host}:${port} (no addresses)`,
            { details: { phase: 'dns', address: `${host}:${port}` } })));
          return;
        }
        settle(() => resolvePromise(addresses));
      });
    } catch (err) {
      settle(() => reject(new WshubError('ERR_DNS', `ERR_DNS ${host}:${port} (${(err as Error).message})`,
        { cause: err, details: { phase: 'dns', address: `${host}:${port}`, errno: errnoOf(err) } })));
    }
  });
}

/**
 * RFC 8305 section 4: alternate address families, starting with the family
 * of the first answer (the resolver's preference), keeping each family's order.
 */
export function interleave(addresses: readonly ResolvedAddress[]): ResolvedAddress[] {
  const first = addresses[0]?.family ?? 6;
  const preferred = addresses.filter((a) => a.family === first);
  const other = addresses.filter((a) => a.family !== first);
  const out: ResolvedAddress[] = [];
  for (let i = 0; i < Math.max(preferred.length, other.length); i++) {
    const a = preferred[i];
    const b = other[i];
    if (a) out.push(a);
    if (b) out.push(b);
  }
  return out;
}

/**
 * Happy Eyeballs: start the first address; start the next one after
 * happyEyeballsDelayMs or as soon as the previous one fails; the first to
 * connect wins and every loser is destroyed. Each address has its own
 * tcpTimeoutMs. When all fail, the error names every address tried.
 */
function raceConnect(options: DialOptions, addresses: ResolvedAddress[]): Promise<Omit<Dialed, 'phases'>> {
  const { port } = options;
  return new Promise((resolvePromise, reject) => {
    const pending = new Map<Socket, NodeJS.Timeout>();
    const failures: WshubError[] = [];
    const tried: string[] = [];
    let next = 0;
    let staggerTimer: NodeJS.Timeout | undefined;
    let settled = false;

    const cleanup = (): void => {
      settled = true;
      clearTimeout(staggerTimer);
      options.signal.removeEventListener('abort', onAbort);
      for (const [socket, timer] of pending) {
        clearTimeout(timer);
        socket.destroy();
      }
      pending.clear();
    };
    const onAbort = (): void => {
      if (settled) return;
      cleanup();
      reject(abortError(options.signal));
    };
    const failed = (socket: Socket, error: WshubError): void => {
      if (settled) return;
      const timer = pending.get(socket);
      clearTimeout(timer);
      pending.delete(socket);
      socket.destroy();
      failures.push(error);
      if (next < addresses.length) startNext();
      else if (pending.size === 0) {
        cleanup();
        reject(allFailed(failures, tried));
      }
    };
    const startNext = (): void => {
      clearTimeout(staggerTimer);
      staggerTimer = undefined;
      const target = addresses[next++];
      if (!target || settled) return;
      const label = formatAddress(target.address, port);
      tried.push(label);
      const socket = netConnect({ host: target.address, port, family: target.family, localAddress: options.localAddress, noDelay: true });
      const timer = setTimeout(() => failed(socket, new WshubError('ERR_TCP_TIMEOUT',
        `ERR_TCP_TIMEOUT ${label} (tcp connect not done after ${options.tcpTimeoutMs} ms)`,
        { details: { phase: 'tcp', address: label } })), options.tcpTimeoutMs);
      pending.set(socket, timer);
      const onError = (err: Error): void => {
        const errno = errnoOf(err);
        failed(socket, new WshubError('ERR_TCP_CONNECT', `ERR_TCP_CONNECT ${label} (${errno ?? err.message})`,
          { cause: err, details: { phase: 'tcp', address: label, errno } }));
      };
      socket.once('connect', () => {
        if (settled) return;
        clearTimeout(timer);
        pending.delete(socket);
        socket.off('error', onError);
        keepQuiet(socket);
        cleanup();
        resolvePromise({ socket, address: target.address, port, family: target.family === 6 ? 'IPv6' : 'IPv4', tried });
      });
      socket.on('error', onError);
      if (next < addresses.length) staggerTimer = setTimeout(startNext, options.happyEyeballsDelayMs);
    };

    options.signal.addEventListener('abort', onAbort, { once: true });
    if (options.signal.aborted) {
      onAbort();
      return;
    }
    startNext();
  });
}

/** One error for a race every address lost: a timeout only if every address timed out. */
function allFailed(failures: WshubError[], tried: string[]): WshubError {
  const only = failures.length === 1 ? failures[0] : undefined;
  if (only) return only;
  const allTimeouts = failures.every((f) => f.code === 'ERR_TCP_TIMEOUT');
  const code = allTimeouts ? 'ERR_TCP_TIMEOUT' : 'ERR_TCP_CONNECT';
  const each = failures.map((f) => `${f.details.address} ${f.code === 'ERR_TCP_TIMEOUT' ? 'timeout' : (f.details.errno ?? 'failed')}`);
  const firstErrno = failures.find((f) => f.details.errno !== undefined)?.details.errno;
  return new WshubError(code, `${code} ${tried.join(', ')} (every address failed: ${each.join('; ')})`, {
    cause: failures[failures.length - 1],
    details: { phase: 'tcp', address: tried.join(', '), errno: firstErrno, addresses: tried, failures: failures.map((f) => f.toJSON()) },
  });
}

/** TLS over the won TCP socket, under tlsTimeoutMs. */
function secure(options: DialOptions, won: Omit<Dialed, 'phases'>): Promise<TLSSocket> {
  const label = formatAddress(won.address, won.port);
  return new Promise((resolvePromise, reject) => {
    const hostIsName = isIP(options.host) === 0;
    const socket = tlsConnect({
      socket: won.socket,
      // SNI must not carry an IP literal (RFC 6066 section 3); `host` still drives the certificate check.
      ...(hostIsName ? { servername: options.host } : {}),
      host: options.host,
      ca: options.ca,
      rejectUnauthorized: options.rejectUnauthorized,
      ALPNProtocols: ['http/1.1'],
    });
    const settle = settleOnce(
      options.signal,
      options.tlsTimeoutMs,
      () => {
        socket.destroy();
        reject(new WshubError('ERR_TLS_TIMEOUT', `ERR_TLS_TIMEOUT ${label} (tls handshake not done after ${options.tlsTimeoutMs} ms)`,
          { details: { phase: 'tls', address: label } }));
      },
      () => {
        socket.destroy();
        reject(abortError(options.signal));
      },
    );
    const onError = (err: Error): void => settle(() => {
      socket.destroy();
      const errno = errnoOf(err);
      reject(new WshubError('ERR_TLS', `ERR_TLS ${label} (${errno ?? 'handshake failed'}: ${err.message})`,
        { cause: err, details: { phase: 'tls', address: label, errno } }));
    });
    socket.once('secureConnect', () => settle(() => {
      socket.off('error', onError);
      keepQuiet(socket);
      resolvePromise(socket);
    }));
    socket.on('error', onError);
  });
}

/**
 * Between a dial phase handing the socket on and the next layer (TLS, then
 * ws and node:http) attaching its own 'error' listener, an error must not
 * find the socket without a listener: that would crash the process. The
 * next layer's listener still sees and handles every error.
 */
function keepQuiet(socket: Socket): void {
  socket.on('error', () => undefined);
}

/**
 * One dial phase's outcome, settled once: the first of its own result, its
 * timeout or the dial's abort wins, and the timer and abort listener go with it.
 * Returns `settle(fn)`, which runs `fn` only if nothing settled the phase yet.
 */
function settleOnce(signal: AbortSignal, timeoutMs: number, onTimeout: () => void, onAbort: () => void): (fn: () => void) => void {
  let settled = false;
  const settle = (fn: () => void): void => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    signal.removeEventListener('abort', abortListener);
    fn();
  };
  const abortListener = (): void => settle(onAbort);
  const timer = setTimeout(() => settle(onTimeout), timeoutMs);
  signal.addEventListener('abort', abortListener, { once: true });
  return settle;
}

function abortError(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  return reason instanceof Error ? reason : new Error('dial aborted');
}
