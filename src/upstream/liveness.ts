/**
 * Liveness of one open connection: a connection is alive only while the peer
 * answers. Every pingIntervalMs a ping goes out; if no proof of life arrives
 * within pongTimeoutMs of it, `onDead` is called. Sending is never proof (a
 * write into a dead TCP connection succeeds for minutes).
 *
 * What counts as proof: in `ping` mode a pong or any frame from the peer; in
 * `app` mode a pong or `markAlive()` (the application saw the upstream's own
 * heartbeat) — ordinary data frames do not count there, because an upstream
 * with an application heartbeat can keep streaming stale data while its
 * session is dead.
 *
 * A probe (after the socket's local address disappeared) is an immediate
 * ping with its own, shorter timeout; it reports instead of killing.
 */
export interface LivenessOptions {
  pingIntervalMs: number;
  pongTimeoutMs: number;
  mode: 'ping' | 'app';
  /** Send a ping frame; false when the socket cannot take it. */
  ping: (payload: Buffer) => boolean;
  onDead: (sinceMs: number) => void;
}

export interface ProbeResult {
  ok: boolean;
  rttMs?: number;
}

export class Liveness {
  readonly #options: LivenessOptions;
  #interval: NodeJS.Timeout | undefined;
  #pongTimer: NodeJS.Timeout | undefined;
  #pingSentAt = 0;
  #lastRttMs: number | undefined;
  #probes: Array<{ startedAt: number; timer: NodeJS.Timeout; done: (result: ProbeResult) => void }> = [];
  #stopped = false;
  #held = false;
  #deadWhileHeld = false;

  constructor(options: LivenessOptions) {
    this.#options = options;
    if (options.pingIntervalMs > 0) {
      this.#interval = setInterval(() => this.#sendPing(), options.pingIntervalMs);
      // The open socket keeps the process alive; the timer must not outlive it.
      this.#interval.unref();
    }
  }

  get lastRttMs(): number | undefined {
    return this.#lastRttMs;
  }

  /** A pong arrived (both modes). */
  pong(payload: Buffer): void {
    if (payload.length === 8) {
      const sentAt = Number(payload.readBigUInt64BE(0));
      const rtt = Date.now() - sentAt;
      if (rtt >= 0 && rtt < 3_600_000) this.#lastRttMs = rtt;
    }
    this.#proof();
  }

  /** A data frame or a ping arrived from the peer: proof only in `ping` mode. */
  frame(): void {
    if (this.#options.mode === 'ping') this.#proof();
  }

  /** The application saw the upstream's own heartbeat. */
  markAlive(): void {
    this.#proof();
  }

  /** Ping now and report whether any proof arrives within `timeoutMs`. Never kills the connection itself. */
  probe(timeoutMs: number): Promise<ProbeResult> {
    return new Promise((resolve) => {
      if (this.#stopped) {
        resolve({ ok: false });
        return;
      }
      const startedAt = Date.now();
      const entry = {
        startedAt,
        done: resolve,
        timer: setTimeout(() => {
          this.#probes = this.#probes.filter((p) => p !== entry);
          resolve({ ok: false });
        }, timeoutMs),
      };
      entry.timer.unref();
      this.#probes.push(entry);
      if (!this.#options.ping(this.#payload())) {
        clearTimeout(entry.timer);
        this.#probes = this.#probes.filter((p) => p !== entry);
        resolve({ ok: false });
      }
    });
  }

  /**
   * Reading is paused by the caller: a pong may be sitting unread in the
   * socket, so a deadline passing now is not proof of death. It is deferred:
   * `unhold()` gives the peer a fresh pongTimeoutMs from then.
   */
  hold(): void {
    this.#held = true;
  }

  unhold(): void {
    if (!this.#held) return;
    this.#held = false;
    if (!this.#deadWhileHeld || this.#stopped) return;
    this.#deadWhileHeld = false;
    this.#armPongTimer(Date.now());
  }

  /** Stop every timer; pending probes resolve as failed. Idempotent. */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    clearInterval(this.#interval);
    clearTimeout(this.#pongTimer);
    const probes = this.#probes;
    this.#probes = [];
    for (const p of probes) {
      clearTimeout(p.timer);
      p.done({ ok: false });
    }
  }

  #payload(): Buffer {
    const payload = Buffer.alloc(8);
    payload.writeBigUInt64BE(BigInt(Date.now()));
    return payload;
  }

  #sendPing(): void {
    if (this.#stopped) return;
    this.#pingSentAt = Date.now();
    this.#options.ping(this.#payload());
    // Armed once per outstanding ping: a later ping must not push the deadline out.
    if (!this.#pongTimer && !this.#deadWhileHeld) this.#armPongTimer(this.#pingSentAt);
  }

  #armPongTimer(since: number): void {
    this.#pongTimer = setTimeout(() => {
      this.#pongTimer = undefined;
      if (this.#stopped) return;
      if (this.#held) this.#deadWhileHeld = true;
      else this.#options.onDead(Date.now() - since);
    }, this.#options.pongTimeoutMs);
    this.#pongTimer.unref();
  }

  #proof(): void {
    this.#deadWhileHeld = false;
    if (this.#pongTimer) {
      clearTimeout(this.#pongTimer);
      this.#pongTimer = undefined;
    }
    const now = Date.now();
    const probes = this.#probes;
    if (probes.length === 0) return;
    this.#probes = [];
    for (const p of probes) {
      clearTimeout(p.timer);
      p.done({ ok: true, rttMs: now - p.startedAt });
    }
  }
}
