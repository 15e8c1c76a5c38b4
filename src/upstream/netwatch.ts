/**
 * Watches the machine's local addresses by polling `os.networkInterfaces()`
 * (portable, needs no netlink access) and reports addresses that appear or
 * disappear.
 *
 * The libwebsockets 4.3 lesson: a route added, an address added or an interface
 * flapping is never by itself a reason to close a connection. The watcher only
 * reports; `ResilientWebSocket` reacts to the disappearance of the *local
 * address of a live socket* by probing (a ping with a short timeout), and acts
 * only on the probe's answer.
 *
 * One watcher is shared by every client in the process (`NetWatcher.shared()`);
 * it polls only while someone listens, and its timer never keeps the process alive.
 */
import { EventEmitter } from 'node:events';
import { networkInterfaces } from 'node:os';

/** @default 1000 */
export const DEFAULT_NETWATCH_INTERVAL_MS = 1000;

export interface AddressChange {
  type: 'added' | 'removed';
  address: string;
  family: 'IPv4' | 'IPv6';
  iface: string;
  at: number;
}

export interface NetWatcherEvents {
  change: [AddressChange];
}

type Snapshot = Map<string, { family: 'IPv4' | 'IPv6'; iface: string }>;

function snapshot(): Snapshot {
  const out: Snapshot = new Map();
  for (const [iface, list] of Object.entries(networkInterfaces())) {
    for (const info of list ?? []) {
      out.set(normalizeAddress(info.address), { family: info.family, iface });
    }
  }
  return out;
}

/** Lower-case, zone-less, IPv4-mapped IPv6 unwrapped: how addresses are compared. */
export function normalizeAddress(address: string): string {
  let a = address.toLowerCase();
  const zone = a.indexOf('%');
  if (zone !== -1) a = a.slice(0, zone);
  if (a.startsWith('::ffff:') && a.includes('.')) a = a.slice(7);
  return a;
}

export class NetWatcher extends EventEmitter<NetWatcherEvents> {
  static #shared = new Map<number, NetWatcher>();

  /** The process-wide watcher polling at `intervalMs`. */
  static shared(intervalMs = DEFAULT_NETWATCH_INTERVAL_MS): NetWatcher {
    let watcher = NetWatcher.#shared.get(intervalMs);
    if (!watcher) {
      watcher = new NetWatcher(intervalMs);
      NetWatcher.#shared.set(intervalMs, watcher);
    }
    return watcher;
  }

  readonly intervalMs: number;
  /** Listener failures caught so far (each is a bug in the listener; counted so it can't hide). */
  listenerErrors = 0;
  lastListenerError: unknown;
  #current: Snapshot = new Map();
  #timer: NodeJS.Timeout | undefined;
  #subscribers = 0;

  constructor(intervalMs = DEFAULT_NETWATCH_INTERVAL_MS) {
    super();
    this.intervalMs = intervalMs;
    // One shared watcher has a listener per open upstream connection (70 upstreams are 70 listeners), and
    // subscribe() hands back the only way to remove one: a count limit would flag legitimate use, not a leak.
    this.setMaxListeners(0);
  }

  /** Whether `address` is currently assigned to a local interface (as of the last poll). */
  hasAddress(address: string): boolean {
    if (!this.#timer) this.#current = snapshot();
    return this.#current.has(normalizeAddress(address));
  }

  /**
   * Listen for address changes; polling starts with the first subscriber and
   * stops with the last. Returns the function that unsubscribes.
   */
  subscribe(listener: (change: AddressChange) => void): () => void {
    // Listeners run inside a timer: one that throws must not take the process (or the other listeners) down.
    const guarded = (change: AddressChange): void => {
      try {
        listener(change);
      } catch (err) {
        this.listenerErrors++;
        this.lastListenerError = err;
      }
    };
    this.on('change', guarded);
    if (this.#subscribers++ === 0) this.#start();
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.off('change', guarded);
      if (--this.#subscribers === 0) this.#stop();
    };
  }

  /** Poll now (also called by the timer). Emits one `change` per address added or removed. */
  poll(): void {
    const next = snapshot();
    const prev = this.#current;
    this.#current = next;
    const at = Date.now();
    for (const [address, info] of prev) {
      if (!next.has(address)) this.emit('change', { type: 'removed', address, ...info, at });
    }
    for (const [address, info] of next) {
      if (!prev.has(address)) this.emit('change', { type: 'added', address, ...info, at });
    }
  }

  #start(): void {
    this.#current = snapshot();
    this.#timer = setInterval(() => this.poll(), this.intervalMs);
    this.#timer.unref();
  }

  #stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
