/**
 * `/events`: Server-Sent Events pushing the observed snapshot to status pages,
 * every `intervalMs` and at once when an upstream changes state (a page must
 * show an outage the moment it starts, not up to a second later). A client
 * that connects first gets `event: history`, the last minutes of traffic, so
 * its charts do not start empty.
 *
 * One snapshot is taken and serialized per push for all clients. A client
 * that does not read (its response buffer is full) is skipped until it
 * drains: a stalled browser tab costs one buffered event, never memory
 * growing per second; skipped pushes are counted.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Hub } from '../hub/hub.js';

/** @default 1000 */
export const DEFAULT_EVENTS_INTERVAL_MS = 1000;
/** Concurrent `/events` clients; more are answered 503. @default 32 */
export const DEFAULT_MAX_EVENT_CLIENTS = 32;

interface Client {
  res: ServerResponse;
  waitingForDrain: boolean;
}

export interface StatsEventsOptions {
  hub: Hub;
  /** The payload of one push (the snapshot as the page wants it). */
  payload: () => unknown;
  /** Sent once to each client on connect, before the first snapshot (`event: history`): the charts' recent past. */
  history?: () => unknown;
  intervalMs: number;
  maxClients: number;
}

export class StatsEvents {
  readonly #clients = new Set<Client>();
  readonly #options: StatsEventsOptions;
  #timer: NodeJS.Timeout | undefined;
  #pushScheduled = false;
  #closed = false;
  /** Pushes not written to a client that had not drained the previous one. */
  skipped = 0;
  /** Pushes that failed to build (a snapshot that threw); each is skipped, the stream goes on. */
  failed = 0;
  lastError: unknown;
  readonly #onState = (): void => this.#schedulePush();

  constructor(options: StatsEventsOptions) {
    this.#options = options;
    options.hub.on('state', this.#onState);
  }

  get clients(): number {
    return this.#clients.size;
  }

  handle(req: IncomingMessage, res: ServerResponse): void {
    if (req.method === 'HEAD') {
      res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store' });
      res.end();
      return;
    }
    if (this.#closed || this.#clients.size >= this.#options.maxClients) {
      res.writeHead(503, { 'content-type': 'text/plain; charset=utf-8', 'retry-after': '5' });
      res.end(this.#closed ? 'shutting down\n' : `too many /events clients (max ${this.#options.maxClients})\n`);
      return;
    }
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-content-type-options': 'nosniff',
    });
    const client: Client = { res, waitingForDrain: false };
    this.#clients.add(client);
    res.on('drain', () => (client.waitingForDrain = false));
    const drop = (): void => {
      this.#clients.delete(client);
      if (this.#clients.size === 0) this.#stopTimer();
    };
    req.on('close', drop);
    res.on('error', drop);
    // The browser reconnects by itself after this long if the hub restarts.
    const history = this.#options.history ? `event: history\ndata: ${JSON.stringify(this.#options.history())}\n\n` : '';
    this.#write(client, `retry: 2000\n\n${history}${this.#event(this.#serialize())}`);
    this.#timer ??= setInterval(() => this.#push(), this.#options.intervalMs);
    this.#timer.unref();
  }

  /** End every stream and stop pushing. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#options.hub.off('state', this.#onState);
    this.#stopTimer();
    for (const c of this.#clients) c.res.end();
    this.#clients.clear();
  }

  #schedulePush(): void {
    if (this.#pushScheduled || this.#clients.size === 0) return;
    this.#pushScheduled = true;
    // Coalesce a burst of transitions (open → reconnecting → connecting) into one push.
    setImmediate(() => {
      this.#pushScheduled = false;
      this.#push();
    });
  }

  #push(): void {
    if (this.#clients.size === 0 || this.#closed) return;
    let frame: string;
    try {
      frame = this.#event(this.#serialize());
    } catch (err) {
      // This runs from a timer: a snapshot that throws costs one push, never the process.
      this.failed++;
      this.lastError = err;
      return;
    }
    for (const c of this.#clients) {
      if (c.waitingForDrain) {
        this.skipped++;
        continue;
      }
      this.#write(c, frame);
    }
  }

  #write(client: Client, text: string): void {
    if (!client.res.write(text)) client.waitingForDrain = true;
  }

  #serialize(): string {
    return JSON.stringify(this.#options.payload());
  }

  #event(json: string): string {
    return `event: stats\ndata: ${json}\n\n`;
  }

  #stopTimer(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
