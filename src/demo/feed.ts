/**
 * The embedded demo upstream: a small exchange-style feed (the shape of
 * Binance's combined streams) used by `wshub demo` and by the tests as a real
 * upstream server.
 *
 * - `{"method":"SUBSCRIBE","params":["btcusdt@trade"],"id":1}` → `{"result":null,"id":1}`,
 *   then ticks `{"stream":"btcusdt@trade","data":{"s":"BTCUSDT","p":"…","q":"…","T":…,"seq":N}}`
 *   every `tickMs` for every subscribed topic;
 * - `UNSUBSCRIBE` likewise; `LIST_SUBSCRIPTIONS` → `{"result":[…],"id":N}`;
 * - anything else → `{"error":{"code":-1,"msg":"unknown method"},"id":…}`;
 * - with `topics` set, a SUBSCRIBE naming any other topic is refused the way
 *   Binance refuses an unknown stream: `{"error":{"code":2,"msg":"Invalid request: unknown stream x"},"id":N}`,
 *   and nothing of it is subscribed.
 *
 * It counts every subscribe and unsubscribe it receives, so a test can check
 * that the hub deduplicated them.
 */
import { EventEmitter } from 'node:events';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';

export const DEMO_TOPICS = ['btcusdt@trade', 'ethusdt@trade', 'solusdt@trade', 'btcusdt@ticker'] as const;

const BASE_PRICES: Record<string, number> = { btc: 97000, eth: 3400, sol: 240 };

export interface DemoFeedOptions {
  host?: string;
  /** 0 picks a free port. @default 0 */
  port?: number;
  /** Interval between ticks of each subscribed topic. @default 500 */
  tickMs?: number;
  /** Subprotocols the feed accepts (the first one offered is chosen). @default ['feed-v1'] */
  protocols?: string[];
  /** The streams it knows; a SUBSCRIBE naming another is refused. @default any */
  topics?: readonly string[];
  /** How long it takes to answer a SUBSCRIBE/UNSUBSCRIBE (an exchange's own latency). @default 0 */
  answerDelayMs?: number;
}

export interface DemoFeedEvents {
  subscribe: [topics: string[]];
  unsubscribe: [topics: string[]];
  connection: [];
}

export class DemoFeed extends EventEmitter<DemoFeedEvents> {
  readonly wss: WebSocketServer;
  /** Every SUBSCRIBE received, per topic. */
  readonly subscribes = new Map<string, number>();
  readonly unsubscribes = new Map<string, number>();
  connections = 0;
  readonly #tickMs: number;
  readonly #known: ReadonlySet<string> | undefined;
  readonly #answerDelayMs: number;
  readonly #subs = new Map<WebSocket, Set<string>>();
  readonly #seq = new Map<string, number>();
  #timer: NodeJS.Timeout | undefined;

  constructor(options: DemoFeedOptions = {}) {
    super();
    this.#tickMs = options.tickMs ?? 500;
    this.#known = options.topics ? new Set(options.topics) : undefined;
    this.#answerDelayMs = options.answerDelayMs ?? 0;
    const protocols = options.protocols ?? ['feed-v1'];
    this.wss = new WebSocketServer({
      host: options.host ?? '127.0.0.1',
      port: options.port ?? 0,
      handleProtocols: (offered) => protocols.find((p) => offered.has(p)) ?? false,
    });
    this.wss.on('connection', (ws) => this.#onConnection(ws));
  }

  async ready(): Promise<void> {
    if (this.wss.address()) return;
    await new Promise<void>((resolve, reject) => {
      this.wss.once('listening', resolve);
      this.wss.once('error', reject);
    });
  }

  get port(): number {
    return (this.wss.address() as AddressInfo).port;
  }

  get url(): string {
    return `ws://127.0.0.1:${this.port}/ws`;
  }

  /** Publish one tick now on every subscribed topic (tests use it for exact counts). */
  tick(): void {
    for (const [ws, topics] of this.#subs) {
      for (const topic of topics) ws.send(this.#message(topic));
    }
  }

  /** Start ticking every tickMs. */
  start(): void {
    this.#timer ??= setInterval(() => this.#advanceAndTick(), this.#tickMs);
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    for (const ws of this.wss.clients) ws.terminate();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }

  #advanceAndTick(): void {
    const live = new Set<string>();
    for (const topics of this.#subs.values()) for (const t of topics) live.add(t);
    for (const topic of live) this.#seq.set(topic, (this.#seq.get(topic) ?? 0) + 1);
    for (const [ws, topics] of this.#subs) for (const topic of topics) ws.send(this.#message(topic, false));
  }

  #message(topic: string, advance = true): string {
    if (advance) this.#seq.set(topic, (this.#seq.get(topic) ?? 0) + 1);
    const seq = this.#seq.get(topic) ?? 0;
    const base = BASE_PRICES[topic.slice(0, 3)] ?? 100;
    const price = base * (1 + Math.sin(seq / 7) / 100);
    return JSON.stringify({
      stream: topic,
      data: { s: topic.split('@')[0]!.toUpperCase(), p: price.toFixed(2), q: ((seq % 13) / 10 + 0.01).toFixed(3), T: Date.now(), seq },
    });
  }

  #onConnection(ws: WebSocket): void {
    this.connections++;
    const topics = new Set<string>();
    this.#subs.set(ws, topics);
    this.emit('connection');
    ws.on('error', () => {});
    ws.on('close', () => this.#subs.delete(ws));
    ws.on('message', (raw: Buffer) => {
      let msg: { method?: unknown; params?: unknown; id?: unknown };
      try {
        msg = JSON.parse(raw.toString()) as typeof msg;
      } catch {
        ws.send(JSON.stringify({ error: { code: -2, msg: 'invalid JSON' }, id: null }));
        return;
      }
      const params = Array.isArray(msg.params) ? msg.params.filter((p): p is string => typeof p === 'string') : [];
      const answer = (body: unknown): void => {
        const text = JSON.stringify(body);
        if (this.#answerDelayMs > 0) setTimeout(() => ws.send(text), this.#answerDelayMs);
        else ws.send(text);
      };
      switch (msg.method) {
        case 'SUBSCRIBE': {
          for (const t of params) this.subscribes.set(t, (this.subscribes.get(t) ?? 0) + 1);
          this.emit('subscribe', params);
          const unknown = this.#known ? params.find((t) => !this.#known!.has(t)) : undefined;
          if (unknown !== undefined) {
            answer({ error: { code: 2, msg: `Invalid request: unknown stream ${unknown}` }, id: msg.id ?? null });
            break;
          }
          for (const t of params) topics.add(t);
          answer({ result: null, id: msg.id ?? null });
          break;
        }
        case 'UNSUBSCRIBE':
          for (const t of params) {
            topics.delete(t);
            this.unsubscribes.set(t, (this.unsubscribes.get(t) ?? 0) + 1);
          }
          this.emit('unsubscribe', params);
          answer({ result: null, id: msg.id ?? null });
          break;
        case 'LIST_SUBSCRIPTIONS':
          ws.send(JSON.stringify({ result: [...topics], id: msg.id ?? null }));
          break;
        default:
          ws.send(JSON.stringify({ error: { code: -1, msg: 'unknown method' }, id: msg.id ?? null }));
      }
    });
  }
}

/** The hub config entry for the demo feed (json adapter, Binance-style templates). */
export function demoUpstreamConfig(url: string): Record<string, unknown> {
  return {
    url,
    protocols: ['feed-v1'],
    adapter: 'json',
    topic: 'stream',
    subscribe: '{"method":"SUBSCRIBE","params":["{topic}"],"id":{id}}',
    unsubscribe: '{"method":"UNSUBSCRIBE","params":["{topic}"],"id":{id}}',
    slowConsumer: 'conflate',
  };
}
