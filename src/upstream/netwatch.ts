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
 *
 * Reading the interfaces can fail: under descriptor exhaustion libuv cannot
 * open the netlink socket and `os.networkInterfaces()` throws (EMFILE). A
 * failed read changes nothing — the watcher keeps its last view (so a failure
 * never looks like every address vanishing), counts it, tells subscribers
 * once per failure episode (`ERR_NETWATCH_FAILED`) and tries again at the
 * next poll.
 */
import { EventEmitter } from 'node:events';
import { constants, networkInterfaces } from 'node:os';
import { WshubError, errnoOf } from '../errors.js';

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
  /** Reading the interfaces started failing (`ERR_NETWATCH_FAILED`, errno in `details.errno`); once per episode. */
  failure: [WshubError];
  /** Reading the interfaces works again after a failure. */
  recovered: [];
}

/** Extra hooks of {@link NetWatcher.subscribe}. */
export interface NetWatchHooks {
  /** Reading the interfaces started failing; the watcher keeps its last view meanwhile. */
  failure?: (error: WshubError) => void;
  recovered?: () => void;
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

/** The errno name behind a failed read: libuv reports EMFILE as "Unknown system error 24" with `info.errno`. */
function errnoName(err: unknown): string | undefined {
  const info = (err as { info?: { errno?: unknown } } | null)?.info;
  const n = typeof info?.errno === 'number' ? Math.abs(info.errno) : undefined;
  if (n !== undefined) {
    const name = Object.entries(constants.errno).find(([, v]) => v === n)?.[0];
    if (name) return name;
  }
  return errnoOf(err);
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
  /** Failed reads of the interfaces (EMFILE and the like); each left the last view in place. */
  pollErrors = 0;
  lastPollError: WshubError | undefined;
  #failing = false;
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

  /** Whether `address` is currently assigned to a local interface (as of the last successful read). Never throws. */
  hasAddress(address: string): boolean {
    if (!this.#timer) this.#current = this.#read() ?? this.#current;
    return this.#current.has(normalizeAddress(address));
  }

  /** True while reading the interfaces fails (the watcher is working from its last view). */
  get failing(): boolean {
    return this.#failing;
  }

  /**
   * Listen for address changes; polling starts with the first subscriber and
   * stops with the last. Returns the function that unsubscribes.
   */
  subscribe(listener: (change: AddressChange) => void, hooks: NetWatchHooks = {}): () => void {
    const guarded = this.#guard(listener);
    const failure = hooks.failure && this.#guard(hooks.failure);
    const recovered = hooks.recovered && this.#guard(hooks.recovered);
    this.on('change', guarded);
    if (failure) this.on('failure', failure);
    if (recovered) this.on('recovered', recovered);
    if (this.#subscribers++ === 0) this.#start();
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.off('change', guarded);
      if (failure) this.off('failure', failure);
      if (recovered) this.off('recovered', recovered);
      if (--this.#subscribers === 0) this.#stop();
    };
  }

  /** Poll now (also called by the timer). Emits one `change` per address added or removed; never throws. */
  poll(): void {
    const next = this.#read();
    if (!next) return;
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

  /** Listeners run inside a timer: one that throws must not take the process (or the other listeners) down. */
  #guard<A extends unknown[]>(fn: (...args: A) => void): (...args: A) => void {
    return (...args: A) => {
      try {
        fn(...args);
      } catch (err) {
        this.listenerErrors++;
        this.lastListenerError = err;
      }
    };
  }

  /** One read of the interfaces; undefined (counted, reported once per episode) when the OS refuses. */
  #read(): Snapshot | undefined {
    let next: Snapshot;
    try {
      next = snapshot();
    } catch (err) {
      this.pollErrors++;
      const errno = errnoName(err);
      this.lastPollError = new WshubError('ERR_NETWATCH_FAILED',
        `ERR_NETWATCH_FAILED cannot read the local interfaces (${errno ?? (err as Error).message}); keeping the last view`,
        { cause: err, details: errno === undefined ? {} : { errno } });
      if (!this.#failing) {
        this.#failing = true;
        this.emit('failure', this.lastPollError);
      }
      return undefined;
    }
    if (this.#failing) {
      this.#failing = false;
      this.emit('recovered');
    }
    return next;
  }

  #start(): void {
    this.#current = this.#read() ?? this.#current;
    this.#timer = setInterval(() => this.poll(), this.intervalMs);
    this.#timer.unref();
  }

  #stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
