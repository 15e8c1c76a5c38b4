/**
 * Many idle WebSocket sessions held by a few holder processes, against either
 * the hub or a plain ws server (both on a Unix socket in a temp dir, both
 * started with --expose-gc so RSS can be read after a full collection).
 */
import { join } from 'node:path';
import type { Fixture } from './procs.js';
import { sleep } from './procs.js';
import { RelayLab } from './relay-lab.js';

export type Target = 'hub' | 'ws';

export interface OpenResult {
  opened: number;
  failures: Record<string, number>;
  /** From the first holder starting to the last session open. */
  allOpenMs: number;
}

/** A hub (raw upstream on the lab's ws source) or a plain ws server, plus holders. */
export class SessionLab {
  readonly lab = new RelayLab();
  server!: Fixture;
  url = '';
  readonly holders: Fixture[] = [];

  /** `hubExtra` defaults to listener limits that let 10,000 sessions in (memory); attach-storm passes the defaults. */
  async start(target: Target, holders: number, hubExtra: Record<string, unknown> = { server: { maxConnections: 20_000, maxPendingHandshakes: 2000 } }): Promise<void> {
    if (target === 'hub') {
      await this.lab.start();
      this.server = await this.lab.startHub(hubExtra, ['--expose-gc']);
      this.url = `ws+unix://${this.lab.hubSocket}:/u/feed`;
    } else {
      const path = join(this.lab.dir, 'plain.sock');
      this.server = await this.lab.group.fork('plain-server', { path }, 'plain ws server', ['--expose-gc']);
      this.url = `ws+unix://${path}:/`;
    }
    this.holders.push(...(await Promise.all(Array.from({ length: holders }, (_, i) => this.lab.group.fork('holder', {}, `holder ${i}`)))));
  }

  /** Open `total` sessions spread over the holders, at most `concurrency` handshakes in flight per holder. */
  async open(total: number, concurrency: number): Promise<OpenResult> {
    const per = this.holders.map((_, i) => Math.floor(total / this.holders.length) + (i < total % this.holders.length ? 1 : 0));
    const results = await Promise.all(
      this.holders.map((h, i) => h.call<{ startedAt: number; lastOpenAt: number; opened: number; failures: Record<string, number> }>('open', { url: this.url, count: per[i], concurrency }, 120_000)),
    );
    const failures: Record<string, number> = {};
    for (const r of results) for (const [k, v] of Object.entries(r.failures)) failures[k] = (failures[k] ?? 0) + v;
    const start = Math.min(...results.map((r) => r.startedAt));
    const end = Math.max(...results.map((r) => r.lastOpenAt));
    return { opened: results.reduce((a, r) => a + r.opened, 0), failures, allOpenMs: Math.round((end - start) / 100) / 10 };
  }

  async closeAll(): Promise<void> {
    await Promise.all(this.holders.map((h) => h.call('close', undefined, 60_000)));
    await this.waitConnections(0);
  }

  async connections(): Promise<number> {
    return (await this.server.call<{ connections: number }>('stats')).connections;
  }

  /** Wait until the server counts exactly `n` connections. */
  async waitConnections(n: number, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let seen = -1;
    while ((seen = await this.connections()) !== n) {
      if (Date.now() > deadline) throw new Error(`server holds ${seen} connections, expected ${n} after ${timeoutMs} ms`);
      await sleep(50);
    }
  }

  /** RSS after two full collections. */
  async rssAfterGc(): Promise<number> {
    return (await this.server.call<{ rss: number }>('gc')).rss;
  }

  async destroy(): Promise<void> {
    await this.lab.destroy();
  }
}
