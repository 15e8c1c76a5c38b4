/**
 * `wshub tail`: attach like a worker and print every message, one per line
 * (binary as `<binary N bytes> hex`).
 *
 * - The hub's refusal is shown as the hub gave it: its error code (the
 *   `X-Wshub-Error` header), HTTP status and reason; a hub that is not there
 *   is ERR_HUB_UNREACHABLE naming the socket or address.
 * - Ctrl-C (SIGINT/SIGTERM) sends a close frame (1000) and exits 0 once the
 *   hub answers (or after a short wait); a closed stdout (`| head`) does the
 *   same instead of crashing on EPIPE.
 * - Exit code: 0 when stopped by the user or closed 1000 by the hub, 1 for a
 *   refusal, an unreachable hub or any other close.
 */
import type { IncomingMessage } from 'node:http';
import WebSocket from 'ws';
import { ERROR_CATALOG, WshubError, errnoOf, type ErrorCode } from '../errors.js';
import { quoteSafely } from '../redact.js';
import { readBodyStart, REFUSAL_BODY_BYTES } from '../upstream/upgrade.js';
import { EXIT_FAILURE, EXIT_OK } from './report.js';

export interface TailFlags {
  listen?: string;
  tcp?: string;
  send?: string[];
  /** The `send` frames are hex, sent as binary messages. */
  binary?: boolean;
  protocol?: string[];
  /** Bearer token; `WSHUB_TOKEN` from the environment when not given. */
  token?: string;
}

/** How long a stopping tail waits for the hub's close frame. */
const CLOSE_WAIT_MS = 1000;

/** Resolve what `wshub tail` was given: a full ws URL, or an upstream name on a local hub. */
export function tailUrl(target: string, opts: { listen?: string; tcp?: string }): string {
  if (/^wss?(\+unix)?:\/\//.test(target)) return target;
  const path = `/u/${encodeURIComponent(target)}`;
  if (opts.tcp) return `ws://${opts.tcp}${path}`;
  if (opts.listen) return `ws+unix://${opts.listen}:${path}`;
  throw new WshubError('ERR_INVALID_OPTION', 'tail: give a ws:// or ws+unix:// URL, or an upstream name with --listen PATH or --tcp HOST:PORT');
}

/** The frames to send, as given (text) or decoded from hex (`--binary`); bad hex is a usage error. */
export function framesToSend(flags: Pick<TailFlags, 'send' | 'binary'>): Array<string | Buffer> {
  const frames = flags.send ?? [];
  if (!flags.binary) return frames;
  return frames.map((hex, i) => {
    const clean = hex.replace(/\s+/g, '');
    if (!/^([0-9a-fA-F]{2})*$/.test(clean)) throw new WshubError('ERR_INVALID_OPTION', `--send #${i + 1}: --binary frames are hex (e.g. 0a1b2c), got "${hex.slice(0, 40)}"`);
    return Buffer.from(clean, 'hex');
  });
}

/**
 * Attach, send `send`, print every message until the session ends or the
 * user stops it. Resolves with the exit code; rejects (before any message)
 * when the hub refuses or cannot be reached.
 */
export async function tail(url: string, flags: TailFlags, out: (line: string) => void = (line) => process.stdout.write(`${line}\n`)): Promise<number> {
  const frames = framesToSend(flags);
  const token = flags.token ?? (process.env.WSHUB_TOKEN || undefined);
  const ws = new WebSocket(url, flags.protocol ?? [], token ? { headers: { authorization: `Bearer ${token}` } } : {});
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) ws.close(1000, 'tail stopped');
    setTimeout(() => ws.terminate(), CLOSE_WAIT_MS).unref();
  };
  const onStdoutError = (err: NodeJS.ErrnoException): void => {
    if (err.code === 'EPIPE') stop();
  };
  process.stdout.on('error', onStdoutError);
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  try {
    return await new Promise<number>((resolve, reject) => {
      let opened = false;
      ws.on('open', () => {
        opened = true;
        for (const frame of frames) ws.send(frame, { binary: typeof frame !== 'string' });
      });
      ws.on('message', (data: Buffer, isBinary: boolean) => {
        if (!stopping) out(isBinary ? `<binary ${data.length} bytes> ${data.toString('hex')}` : data.toString());
      });
      ws.on('unexpected-response', (_req, res: IncomingMessage) => {
        void refusalOf(url, res).then(reject, reject);
      });
      ws.on('error', (err) => {
        if (!opened) reject(unreachable(url, err));
      });
      ws.on('close', (code, reason) => {
        if (!opened) return;
        if (!stopping) out(`-- closed ${code} ${reason.toString()}`.trimEnd());
        resolve(stopping || code === 1000 ? EXIT_OK : EXIT_FAILURE);
      });
    });
  } finally {
    process.stdout.off('error', onStdoutError);
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}

/** The hub's refusal, with its own code when it sent one (X-Wshub-Error) and the start of its body. */
async function refusalOf(url: string, res: IncomingMessage): Promise<WshubError> {
  const status = res.statusCode ?? 0;
  const header = res.headers['x-wshub-error'];
  const code: ErrorCode = typeof header === 'string' && header in ERROR_CATALOG ? (header as ErrorCode) : 'ERR_UPGRADE_REJECTED';
  const body = await readBodyStart(res, REFUSAL_BODY_BYTES * 2);
  const text = quoteSafely(body.replace(new RegExp(`^${code}:\\s*`), ''), [], REFUSAL_BODY_BYTES);
  return new WshubError(code, `tail ${url}: the hub refused: HTTP ${status} ${res.statusMessage ?? ''}${text ? ` — ${text}` : ''}`.replace(/ +—/, ' —'),
    { details: { status } });
}

function unreachable(url: string, err: Error): WshubError {
  const errno = errnoOf(err);
  const hint = errno === 'ENOENT' ? ' (no socket file there: is the hub running with this --listen?)'
    : errno === 'ECONNREFUSED' ? ' (nothing listens there: is the hub running?)'
      : errno === 'EACCES' ? ' (no permission: the socket is mode 0660, join its group)' : '';
  return new WshubError('ERR_HUB_UNREACHABLE', `tail ${url}: cannot reach the hub: ${errno ?? err.message}${hint}`, { cause: err, details: { errno } });
}
