/**
 * One connection attempt of a `ResilientWebSocket`, from the caller's gate
 * to an open WebSocket: connectGate → DNS → TCP → TLS → HTTP upgrade, each
 * phase timed. Aborting the signal ends the attempt wherever it is (waiting
 * at the gate included) and leaves nothing behind: no socket, no timer, and
 * a gate that honours the signal drops the waiter.
 */
import { performance } from 'node:perf_hooks';
import type WebSocket from 'ws';
import { WshubError } from '../errors.js';
import { dial, formatAddress, type Dialed } from './dial.js';
import type { ResolvedOptions } from './options.js';
import type { ConnectGate, ConnectPhases } from './types.js';
import { upgrade } from './upgrade.js';

export interface Attempted {
  /** Open and paused (see upgrade.ts): the caller resumes once listening. */
  ws: WebSocket;
  dialed: Dialed;
  phases: ConnectPhases;
}

/** Gate, dial and upgrade to `url`. Rejects with the phase's error code, `ERR_CONNECT_GATE`, or the signal's reason. */
export async function attempt(url: URL, options: Readonly<ResolvedOptions>, signal: AbortSignal): Promise<Attempted> {
  if (options.connectGate) await passGate(options.connectGate, signal, url.host);
  const secure = url.protocol === 'wss:';
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  const port = url.port ? Number(url.port) : secure ? 443 : 80;
  const dialed = await dial({
    host, port, secure, signal,
    lookup: options.lookup,
    localAddress: options.localAddress,
    happyEyeballsDelayMs: options.happyEyeballsDelayMs,
    dnsTimeoutMs: options.dnsTimeoutMs,
    tcpTimeoutMs: options.tcpTimeoutMs,
    tlsTimeoutMs: options.tlsTimeoutMs,
    ca: options.ca,
    rejectUnauthorized: options.rejectUnauthorized,
  });
  const start = performance.now();
  const ws = await upgrade({
    url: options.url,
    socket: dialed.socket,
    label: formatAddress(dialed.address, dialed.port),
    protocols: options.protocols,
    headers: options.headers,
    perMessageDeflate: options.perMessageDeflate,
    maxPayload: options.maxPayload,
    upgradeTimeoutMs: options.upgradeTimeoutMs,
    signal,
  });
  return { ws, dialed, phases: { ...dialed.phases, upgradeMs: performance.now() - start } };
}

/**
 * Wait for the gate, or for the abort, whichever comes first. The gate's own
 * promise is not trusted to honour the signal: an abandoned attempt stops
 * here at once, and a late resolution is ignored.
 */
function passGate(gate: ConnectGate, signal: AbortSignal, host: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onAbort = (): void => reject(abortError(signal));
    if (signal.aborted) {
      onAbort();
      return;
    }
    signal.addEventListener('abort', onAbort, { once: true });
    const failed = (err: unknown): void => {
      signal.removeEventListener('abort', onAbort);
      if (signal.aborted) return;
      reject(new WshubError('ERR_CONNECT_GATE', `ERR_CONNECT_GATE ${host} (connectGate rejected: ${err instanceof Error ? err.message : String(err)})`,
        { cause: err, details: { address: host } }));
    };
    let waiting: Promise<void> | void;
    try {
      waiting = gate(signal);
    } catch (err) {
      failed(err);
      return;
    }
    Promise.resolve(waiting).then(() => {
      signal.removeEventListener('abort', onAbort);
      if (!signal.aborted) resolve();
    }, failed);
  });
}

function abortError(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  return reason instanceof Error ? reason : new Error('connection attempt aborted');
}
