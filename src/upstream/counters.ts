/**
 * Everything a `ResilientWebSocket` counts, kept in one place so that
 * `stats()` — which feeds /status and /metrics alike — is one snapshot.
 */
import { PhaseRecorder } from './phases.js';
import type { UpstreamState, UpstreamStats } from './types.js';

export class Counters {
  /** Successful opens; every one after the first is a reconnection. */
  connections = 0;
  /** Open connections that ended by a failure (pong timeout, server close, reset, …). */
  disconnects = 0;
  readonly disconnectsByCause: Record<string, number> = {};
  /** Attempts (dial or upgrade) that failed before the connection opened. */
  failedAttempts = 0;
  readonly failedAttemptsByCause: Record<string, number> = {};
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
  /** Connect-phase durations of every successful attempt. */
  readonly phases = new PhaseRecorder();

  countDisconnect(cause: string): void {
    this.disconnects++;
    this.disconnectsByCause[cause] = (this.disconnectsByCause[cause] ?? 0) + 1;
  }

  countFailedAttempt(cause: string): void {
    this.failedAttempts++;
    this.failedAttemptsByCause[cause] = (this.failedAttemptsByCause[cause] ?? 0) + 1;
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
      reconnects: Math.max(0, this.connections - 1),
      disconnects: this.disconnects,
      disconnectsByCause: { ...this.disconnectsByCause },
      failedAttempts: this.failedAttempts,
      failedAttemptsByCause: { ...this.failedAttemptsByCause },
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
      connectPhases: this.phases.snapshot(),
    };
  }
}
