/**
 * Descriptor exhaustion watchdog.
 *
 * What Node really does (measured on Node 20 / libuv 1.4x, see docs/server.md):
 * when accept() fails with EMFILE/ENFILE, libuv closes a descriptor it keeps
 * in reserve, accepts every pending peer and closes it at once, then re-opens
 * the reserve. The peers see their connection closed; JavaScript is told
 * nothing: no 'error', no 'drop', no 'connection'. So exhaustion cannot be
 * observed from the server's events. This watchdog probes instead: opening
 * /dev/null fails with EMFILE exactly when accept() would. The probe runs on
 * the event loop thread, as accept() does, so the two never race.
 */
import { closeSync, openSync } from 'node:fs';
import { errnoOf } from '../errors.js';

export function isFdExhaustion(err: unknown): boolean {
  const errno = errnoOf(err);
  return errno === 'EMFILE' || errno === 'ENFILE';
}

/** True when the process can open one more descriptor now. */
export function canOpenDescriptor(): boolean {
  try {
    closeSync(openSync('/dev/null', 'r'));
    return true;
  } catch (err) {
    if (isFdExhaustion(err)) return false;
    // Another failure (no /dev/null in a chroot) says nothing about descriptors.
    return true;
  }
}

export class FdWatch {
  #timer: NodeJS.Timeout | undefined;
  #exhausted = false;
  readonly #intervalMs: number;
  readonly #onChange: (exhausted: boolean) => void;

  constructor(intervalMs: number, onChange: (exhausted: boolean) => void) {
    this.#intervalMs = intervalMs;
    this.#onChange = onChange;
  }

  get exhausted(): boolean {
    return this.#exhausted;
  }

  start(): void {
    if (this.#timer) return;
    this.#timer = setInterval(() => this.check(), this.#intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Probe now; report a change of state. */
  check(): boolean {
    const exhausted = !canOpenDescriptor();
    if (exhausted !== this.#exhausted) {
      this.#exhausted = exhausted;
      this.#onChange(exhausted);
    }
    return exhausted;
  }
}
