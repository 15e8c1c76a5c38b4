/**
 * The parent's handle on a test exchange running as a child process
 * (exchange-main.ts): start it on a port (0 or a given one to restart in
 * place), tick it, read its stats, kill it for real. `seqs` remembers the
 * last seq published per topic, so a restarted child can continue the
 * same feed (`start: old.seqs`); with a `clock` it continues by itself.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ExchangeStats } from './exchange.js';
import type { ExchangeMainOptions } from './exchange-main.js';

const MAIN = fileURLToPath(new URL('./exchange-main.js', import.meta.url));

interface Reply {
  type: 'reply';
  id: number;
  error?: string;
  seqs?: Record<string, number>;
  stats?: ExchangeStats;
}

export class ExchangeProcess {
  readonly child: ChildProcess;
  readonly port: number;
  readonly url: string;
  /** The last seq published per topic by `tick()` through this handle (plus the `start` it was given). */
  readonly seqs: Record<string, number>;
  /** Resolves with the exit code or signal once the child is gone. */
  readonly exited: Promise<number | NodeJS.Signals | null>;
  readonly #pending = new Map<number, { resolve: (r: Reply) => void; reject: (err: Error) => void }>();
  #nextId = 0;

  private constructor(child: ChildProcess, port: number, host: string, options: ExchangeMainOptions) {
    this.child = child;
    this.port = port;
    this.url = `ws://${host.includes(':') ? `[${host}]` : host}:${port}/`;
    this.seqs = typeof options.start === 'object' ? { ...options.start } : {};
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        for (const p of this.#pending.values()) p.reject(new Error(`the exchange child exited (${signal ?? code}) before answering`));
        this.#pending.clear();
        resolve(signal ?? code);
      });
    });
    child.on('message', (raw) => {
      const reply = raw as Reply;
      if (reply.type !== 'reply') return;
      const p = this.#pending.get(reply.id);
      this.#pending.delete(reply.id);
      if (reply.error) p?.reject(new Error(reply.error));
      else p?.resolve(reply);
    });
  }

  /** Fork the exchange and wait until it listens (rejects, naming why, if it exits or does not listen within 10 s). */
  static async start(options: ExchangeMainOptions = {}): Promise<ExchangeProcess> {
    const child = fork(MAIN, [JSON.stringify(options)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    try {
      const port = await new Promise<number>((resolve, reject) => {
        child.on('message', (msg: { type?: string; port?: number }) => {
          if (msg.type === 'listening' && typeof msg.port === 'number') resolve(msg.port);
        });
        child.once('exit', (code, signal) => reject(new Error(`the exchange child exited (${signal ?? code}) before listening on port ${options.port ?? 0}`)));
        child.once('error', reject);
      });
      return new ExchangeProcess(child, port, options.host ?? '127.0.0.1', options);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Manual feeds: advance and publish; resolves with the seq published per topic. */
  async tick(topic?: string | string[]): Promise<Record<string, number>> {
    const seqs = (await this.#ask({ op: 'tick', topic })).seqs ?? {};
    Object.assign(this.seqs, seqs);
    return seqs;
  }

  async stats(): Promise<ExchangeStats> {
    const stats = (await this.#ask({ op: 'stats' })).stats;
    if (!stats) throw new Error('the exchange child sent no stats');
    return stats;
  }

  /** Close every connection with `code` and keep listening. */
  async dropConnections(code = 1001, reason = 'going away'): Promise<void> {
    await this.#ask({ op: 'drop', code, reason });
  }

  /** Kill the child (SIGKILL by default: a crash) and wait until it is gone. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    await this.exited;
  }

  /** Graceful: 1001 to every client, then the child exits. */
  async close(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    await Promise.all([this.#ask({ op: 'close' }).catch(() => undefined), this.exited]);
  }

  #ask(cmd: { op: string; [key: string]: unknown }): Promise<Reply> {
    const id = ++this.#nextId;
    return new Promise<Reply>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.child.send({ ...cmd, id }, (err) => {
        if (!err) return;
        this.#pending.delete(id);
        reject(err);
      });
    });
  }
}
