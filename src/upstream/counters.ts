/**
 * Everything a `ResilientWebSocket` counts, kept in one place so that
 * `stats()` — which feeds /status and /metrics alike — is one snapshot.
 */
import type { UpstreamState, UpstreamStats } from './types.js';

export class Counters {
  connections = 0;
  reconnects = 0;
  readonly reconnectsByCause: Record<string, number> = {};
  readonly dropped: Record<string, number> = {};
  lastOpenAt: number | undefined;
  lastCloseAt: number | undefined;
  lastClose: UpstreamStats['lastClose'];
  protocol = '';
  remoteAddress: string | undefined;
  family: string | undefined;
  messagesIn = 0;
  messagesOut = 0;
  bytesIn = 0;
  bytesOut = 0;
  lastRttMs: number | undefined;

  countReconnect(cause: string): void {
    this.reconnects++;
    this.reconnectsByCause[cause] = (this.reconnectsByCause[cause] ?? 0) + 1;
  }

  countDrop(reason: string): void {
    this.dropped[reason] = (this.dropped[reason] ?? 0) + 1;
  }

  snapshot(live: { state: UpstreamState; url: string; attempt: number; queue: { messages: number; bytes: number } }): UpstreamStats {
    return {
      state: live.state,
      url: live.url,
      attempt: live.attempt,
      connections: this.connections,
      reconnects: this.reconnects,
      reconnectsByCause: { ...this.reconnectsByCause },
      lastOpenAt: this.lastOpenAt,
      lastCloseAt: this.lastCloseAt,
      lastClose: this.lastClose ? { ...this.lastClose } : undefined,
      protocol: this.protocol,
      remoteAddress: this.remoteAddress,
      family: this.family,
      messagesIn: this.messagesIn,
      messagesOut: this.messagesOut,
      bytesIn: this.bytesIn,
      bytesOut: this.bytesOut,
      lastRttMs: this.lastRttMs,
      queue: { ...live.queue },
      dropped: { ...this.dropped },
    };
  }
}
