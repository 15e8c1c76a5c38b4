/**
 * Backpressure for `send()`: once ws's `bufferedAmount` passes the
 * high-water mark the caller is told `wait: true`, and `drain` fires when it
 * is back at or below the mark. ws emits no drain of its own, so the amount
 * is re-checked on the socket's 'drain' event and, because ws can hold
 * frames the socket has not seen yet (e.g. while compressing), on a short
 * timer as well. One watch at a time; it ends with the connection.
 */
import type { Socket } from 'node:net';
import type WebSocket from 'ws';

/** How often `bufferedAmount` is re-checked while someone waits, besides the socket's own 'drain'. */
export const DRAIN_POLL_MS = 50;

export class DrainWatch {
  readonly #highWaterMark: number;
  readonly #onDrain: () => void;
  #timer: NodeJS.Timeout | undefined;
  #cleanup: (() => void) | undefined;

  constructor(highWaterMark: number, onDrain: () => void) {
    this.#highWaterMark = highWaterMark;
    this.#onDrain = onDrain;
  }

  get waiting(): boolean {
    return this.#cleanup !== undefined;
  }

  /** Start watching `ws` (no-op if already watching). */
  watch(ws: WebSocket, socket: Socket): void {
    if (this.#cleanup) return;
    const check = (): void => {
      if (ws.bufferedAmount <= this.#highWaterMark && this.stop()) this.#onDrain();
    };
    socket.on('drain', check);
    this.#timer = setInterval(check, DRAIN_POLL_MS);
    this.#timer.unref();
    this.#cleanup = () => socket.off('drain', check);
  }

  /** Stop watching; true when someone was waiting (the caller decides whether to emit `drain`). */
  stop(): boolean {
    if (!this.#cleanup) return false;
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#cleanup();
    this.#cleanup = undefined;
    return true;
  }
}
