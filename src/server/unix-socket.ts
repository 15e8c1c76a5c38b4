/**
 * The Unix socket listener's file: stale files of dead processes replaced,
 * live ones never stolen, the mode set before anyone can connect.
 */
import { chmodSync, lstatSync, statSync, unlinkSync } from 'node:fs';
import { dirname, resolve as resolvePath } from 'node:path';
import { connect } from 'node:net';
import type { Server } from 'node:net';
import { WshubError, errnoOf } from '../errors.js';

/** Pending connections the kernel may hold for accept(); capped by net.core.somaxconn. */
export const LISTEN_BACKLOG = 4096;

/** How long a probe connect to an existing socket file may take before the socket is considered live. */
const PROBE_TIMEOUT_MS = 1000;

/**
 * Make `path` free to bind: nothing there, or a socket file nobody listens on
 * (removed). A socket someone answers on, or a file that is not a socket, is
 * `ERR_LISTEN_ADDRESS_IN_USE`: never delete what might be someone else's.
 */
export async function freeUnixPath(path: string): Promise<void> {
  let isSocket: boolean;
  try {
    isSocket = lstatSync(path).isSocket();
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') return;
    throw new WshubError('ERR_LISTEN_FAILED', `cannot inspect ${path}: ${errnoOf(err) ?? String(err)}`, { cause: err, details: { address: path, errno: errnoOf(err) } });
  }
  if (!isSocket) {
    throw new WshubError('ERR_LISTEN_ADDRESS_IN_USE', `${path} exists and is not a socket`, { details: { address: path } });
  }
  const live = await probe(path);
  if (live) throw new WshubError('ERR_LISTEN_ADDRESS_IN_USE', `a live process listens on ${path}`, { details: { address: path } });
  try {
    unlinkSync(path);
  } catch (err) {
    if (errnoOf(err) !== 'ENOENT') throw new WshubError('ERR_LISTEN_FAILED', `cannot remove stale socket ${path}: ${errnoOf(err) ?? String(err)}`, { cause: err, details: { address: path } });
  }
}

/** True when something accepts a connection on `path` (or is too busy to refuse one). */
function probe(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(path);
    const done = (live: boolean): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(live);
    };
    const timer = setTimeout(() => done(true), PROBE_TIMEOUT_MS);
    socket.once('connect', () => done(true));
    // ECONNREFUSED: a socket file with no listener, the leftover of a dead process.
    // Anything else (EAGAIN: backlog full) means someone is there.
    socket.once('error', (err) => done(!['ECONNREFUSED', 'ENOENT'].includes(errnoOf(err) ?? '')));
  });
}

/**
 * Bind `server` to `path` with `mode`. The umask is narrowed around the
 * synchronous bind so the file never exists with wider permissions; chmod
 * afterwards covers a umask already narrower than `mode`.
 */
export function listenUnix(server: Server, path: string, mode: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => {
      server.off('listening', onListening);
      // The kernel answers a bind into a missing directory with EACCES or ENOENT; say which it is.
      reject(unixDirectoryProblem(path, err) ?? listenError(err, path));
    };
    const onListening = (): void => {
      server.off('error', onError);
      try {
        chmodSync(path, mode);
        resolve();
      } catch (err) {
        server.close();
        reject(new WshubError('ERR_LISTEN_FAILED', `cannot set mode ${mode.toString(8)} on ${path}`, { cause: err, details: { address: path } }));
      }
    };
    server.once('error', onError);
    server.once('listening', onListening);
    let previous: number | undefined;
    try {
      previous = process.umask(0o777 & ~mode);
    } catch {
      // process.umask() cannot be changed in worker threads; chmod still applies.
    }
    try {
      // Node's default backlog (511) overflows when a thousand workers attach at once (EAGAIN at
      // the peers); the kernel caps this at net.core.somaxconn anyway.
      server.listen({ path, backlog: LISTEN_BACKLOG });
    } finally {
      if (previous !== undefined) process.umask(previous);
    }
  });
}

/** ERR_LISTEN_FAILED when the directory of a Unix socket `path` is missing or not a directory; else undefined. */
export function unixDirectoryProblem(path: string, cause?: unknown): WshubError | undefined {
  const dir = dirname(resolvePath(path));
  let problem: string;
  try {
    if (statSync(dir).isDirectory()) return undefined;
    problem = 'is not a directory';
  } catch (err) {
    if (errnoOf(err) !== 'ENOENT' && errnoOf(err) !== 'ENOTDIR') return undefined;
    problem = 'does not exist';
  }
  return new WshubError('ERR_LISTEN_FAILED', `cannot listen on ${path}: the directory ${dir} ${problem} (create it, e.g. mkdir -p ${dir}, or choose another path)`,
    { cause, details: { address: path, errno: 'ENOENT' } });
}

export function listenError(err: unknown, address: string): WshubError {
  const errno = errnoOf(err);
  if (errno === 'EADDRINUSE') {
    return new WshubError('ERR_LISTEN_ADDRESS_IN_USE', `${address} is in use (another wshub or another program listens there; stop it or choose another address)`,
      { cause: err, details: { address, errno } });
  }
  return new WshubError('ERR_LISTEN_FAILED', `cannot listen on ${address}: ${errno ?? String(err)}`, { cause: err, details: { address, errno } });
}
