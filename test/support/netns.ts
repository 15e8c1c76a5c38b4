/**
 * Network-namespace lab for fault tests: uniquely named namespaces, veth pairs,
 * IPv4/IPv6 addresses usable at once (no DAD), and Node processes run inside a
 * namespace that talk to the test as JSON lines.
 *
 * Why namespaces: faults such as "the socket's local address disappears" or "the
 * IPv6 path silently drops packets" must happen for real, and must never touch
 * the machine's own interfaces. Every address a test uses (10.213.x.x,
 * fd00:213::/64) exists only inside namespaces made here, and a process that
 * dials them is only started in a namespace with NO default route
 * ({@link Netns.spawnNode} checks), so nothing can leave the machine.
 *
 * Teardown: {@link NetnsLab.destroy} kills the processes it started and deletes
 * the namespaces (which deletes their veths); it is idempotent, meant for
 * `after()`, and also runs synchronously at process exit as a backstop.
 * Namespaces left behind by a lab whose process died (SIGKILL) are deleted by
 * the next {@link NetnsLab.create}.
 *
 * Needs root, iproute2's `ip` and IPv6 in the kernel: {@link NetnsLab.create} throws an Error naming
 * what is missing, so a test using it FAILS rather than skips.
 *
 * Usage:
 * ```ts
 * const lab = await NetnsLab.create('netchange');
 * after(() => lab.destroy());
 * const server = await lab.namespace('srv');
 * const client = await lab.namespace('cli');
 * const link = await lab.link(client, server, { a: ['10.213.1.1/24', 'fd00:213::1/64'], b: ['10.213.1.2/24', 'fd00:213::2/64'] });
 * const echo = await server.spawnNode(fixture('echo-server.js'), ['--host', '::']);
 * const ready = await echo.waitFor((e) => e.type === 'listening', 5000, 'server listening');
 * ```
 */
import { execFile, execFileSync, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { existsSync, readdirSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

/** Prefix of every namespace a lab creates; used to find stale ones. */
export const NETNS_PREFIX = 'wshubt';
/** Where iproute2 keeps named namespaces. */
const NETNS_DIR = '/run/netns';
/** Bound on every `ip` invocation so a wedged command cannot hang a test. */
const IP_TIMEOUT_MS = 10_000;

/** One JSON line a child process wrote on stdout. Lines that are not JSON objects arrive as `{type: 'text', line}`. */
export interface NsEvent {
  type: string;
  /** Epoch ms when the test process read the line (the child may add its own `at`). */
  receivedAt: number;
  [key: string]: unknown;
}

/** Run a command, resolve with stdout; reject with an Error carrying the command line and stderr. */
export function run(cmd: string, args: readonly string[], timeoutMs = IP_TIMEOUT_MS): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: timeoutMs, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err) {
        const e = new Error(`${cmd} ${args.join(' ')} failed: ${stderr.trim() || err.message}`, { cause: err });
        reject(e);
      } else resolve(stdout);
    });
  });
}

/**
 * Throw an Error naming what is missing when this machine cannot run namespace
 * tests: not root, no `ip`, or no IPv6 in the kernel.
 */
export async function assertNetnsCapable(): Promise<void> {
  const uid = process.getuid?.();
  if (uid !== 0) {
    throw new Error(`network-namespace tests need root (uid 0); this process runs as uid ${uid ?? 'unknown (no getuid on this platform)'}`);
  }
  try {
    await run('ip', ['-V']);
  } catch (err) {
    const code = (err as { cause?: { code?: unknown } }).cause?.code;
    throw new Error(code === 'ENOENT'
      ? 'network-namespace tests need the `ip` command from iproute2 (apt-get install iproute2); it is not on PATH'
      : `\`ip -V\` failed: ${(err as Error).message}`);
  }
  if (!existsSync('/proc/sys/net/ipv6')) {
    throw new Error('network-namespace tests need IPv6 in the kernel; /proc/sys/net/ipv6 is missing (booted with ipv6.disable=1?)');
  }
}

let labCounter = 0;
const liveLabs = new Set<NetnsLab>();

// Backstop for a test process that exits without running after(): synchronous
// cleanup, because nothing asynchronous runs in an 'exit' handler.
process.once('exit', () => {
  for (const lab of liveLabs) lab.destroySync();
});

/** Delete namespaces named by a lab whose process no longer exists. */
function removeStaleNamespaces(): void {
  if (!existsSync(NETNS_DIR)) return;
  const pattern = new RegExp(`^${NETNS_PREFIX}-(\\d+)-`);
  for (const name of readdirSync(NETNS_DIR)) {
    const pid = Number(pattern.exec(name)?.[1]);
    if (!pid || pid === process.pid || isAlive(pid)) continue;
    try {
      execFileSync('ip', ['netns', 'del', name], { stdio: 'ignore', timeout: IP_TIMEOUT_MS });
    } catch {
      // Already gone or busy: not this lab's concern.
    }
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as { code?: unknown }).code === 'EPERM';
  }
}

/** Addresses for the two ends of a veth pair, as CIDR strings (`10.213.1.1/24`, `fd00:213::1/64`). */
export interface LinkAddresses {
  a?: string[];
  b?: string[];
}

/** One end of a veth pair. */
export interface LinkEnd {
  ns: Netns;
  dev: string;
}

/** A veth pair between two namespaces. */
export interface VethPair {
  a: LinkEnd;
  b: LinkEnd;
}

/** A set of namespaces and processes torn down together. */
export class NetnsLab {
  /** Unique per lab: `wshubt-<pid>-<n>`. */
  readonly id: string;
  readonly #namespaces: Netns[] = [];
  readonly #processes = new Set<NsProcess>();
  #linkCounter = 0;
  #destroyed = false;

  private constructor(label: string) {
    this.id = `${NETNS_PREFIX}-${process.pid}-${++labCounter}${label ? '-' + label.replace(/[^a-zA-Z0-9]/g, '').slice(0, 12) : ''}`;
  }

  /** Check the machine can run namespace tests (throws naming what is missing), clean up stale labs, make a new one. */
  static async create(label = ''): Promise<NetnsLab> {
    await assertNetnsCapable();
    removeStaleNamespaces();
    const lab = new NetnsLab(label);
    liveLabs.add(lab);
    return lab;
  }

  /**
   * A new namespace with `lo` up, IPv6 enabled, duplicate address detection and
   * router advertisements off (addresses are usable at once and nothing
   * configures itself). It has no route except those of the links you add.
   */
  async namespace(role: string): Promise<Netns> {
    if (this.#destroyed) throw new Error('NetnsLab was destroyed');
    const name = `${this.id}-${role.replace(/[^a-zA-Z0-9]/g, '')}`;
    await run('ip', ['netns', 'add', name]);
    const ns = new Netns(this, name);
    this.#namespaces.push(ns);
    await ns.sysctl({
      'net.ipv6.conf.all.disable_ipv6': '0',
      'net.ipv6.conf.default.disable_ipv6': '0',
      'net.ipv6.conf.all.accept_dad': '0',
      'net.ipv6.conf.default.accept_dad': '0',
      'net.ipv6.conf.all.accept_ra': '0',
      'net.ipv6.conf.default.accept_ra': '0',
      'net.ipv6.conf.all.forwarding': '0',
      'net.ipv4.ip_forward': '0',
    });
    await ns.ip('link', 'set', 'lo', 'up');
    return ns;
  }

  /**
   * A veth pair with end `a` in namespace `a` and end `b` in namespace `b`, both
   * up, with the given addresses (IPv6 ones added `nodad`). Device names are
   * `veth<n>a` / `veth<n>b` by default; pass `names` to choose.
   */
  async link(a: Netns, b: Netns, addresses: LinkAddresses = {}, names?: { a: string; b: string }): Promise<VethPair> {
    const n = ++this.#linkCounter;
    const devA = names?.a ?? `veth${n}a`;
    const devB = names?.b ?? `veth${n}b`;
    // Created directly inside the namespaces: no name ever exists in the root namespace.
    await run('ip', ['-n', a.name, 'link', 'add', 'name', devA, 'type', 'veth', 'peer', 'name', devB, 'netns', b.name]);
    for (const [ns, dev] of [[a, devA], [b, devB]] as const) {
      await ns.sysctl({ [`net.ipv6.conf.${dev}.accept_dad`]: '0', [`net.ipv6.conf.${dev}.accept_ra`]: '0' });
      await ns.ip('link', 'set', dev, 'up');
    }
    // Addresses only once both ends are up: an IPv6 address added to a device
    // without carrier makes the first neighbour solicitation go nowhere, and the
    // first connect then waits a full SYN retransmit (1 s).
    for (const [ns, dev, list] of [[a, devA, addresses.a], [b, devB, addresses.b]] as const) {
      for (const cidr of list ?? []) await ns.addAddress(dev, cidr);
    }
    return { a: { ns: a, dev: devA }, b: { ns: b, dev: devB } };
  }

  /** @internal Called by Netns.spawnNode so the lab can kill what it started. */
  track(proc: NsProcess): void {
    this.#processes.add(proc);
    void proc.exited.then(() => this.#processes.delete(proc));
  }

  /** Kill every process started in the lab and delete its namespaces. Idempotent; never throws. */
  async destroy(): Promise<void> {
    if (this.#destroyed) return;
    this.#destroyed = true;
    liveLabs.delete(this);
    await Promise.all([...this.#processes].map((p) => p.kill()));
    for (const ns of this.#namespaces) {
      await run('ip', ['netns', 'del', ns.name]).catch(() => undefined);
    }
  }

  /** Synchronous teardown for the process 'exit' hook. */
  destroySync(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    liveLabs.delete(this);
    for (const p of this.#processes) p.killSync();
    for (const ns of this.#namespaces) {
      try {
        execFileSync('ip', ['netns', 'del', ns.name], { stdio: 'ignore', timeout: IP_TIMEOUT_MS });
      } catch {
        // Best effort at exit.
      }
    }
  }
}

/** Options of {@link Netns.spawnNode}. */
export interface SpawnNodeOptions {
  /** Extra environment variables. */
  env?: Record<string, string>;
  /**
   * Skip the no-default-route check. Only for processes that never dial out
   * (listening servers); a dialer must run where nothing can leave the machine.
   * @default false
   */
  listenOnly?: boolean;
}

/** One named network namespace of a lab. */
export class Netns {
  readonly lab: NetnsLab;
  readonly name: string;

  constructor(lab: NetnsLab, name: string) {
    this.lab = lab;
    this.name = name;
  }

  /** `ip -n <ns> ...args`, resolving with stdout. */
  ip(...args: string[]): Promise<string> {
    return run('ip', ['-n', this.name, ...args]);
  }

  /** Run any command inside the namespace. */
  exec(cmd: string, args: readonly string[] = [], timeoutMs = IP_TIMEOUT_MS): Promise<string> {
    return run('ip', ['netns', 'exec', this.name, cmd, ...args], timeoutMs);
  }

  /**
   * Set sysctls inside the namespace (`net.ipv6.conf.all.accept_dad` → `0`).
   * Written to /proc/sys by a shell run in the namespace rather than with
   * `sysctl`, which minimal Debian images lack (procps); /proc/sys/net shows
   * the network namespace of the process that opens it.
   */
  async sysctl(values: Record<string, string>): Promise<void> {
    const script = 'for kv do k=${kv%%=*}; v=${kv#*=}; printf %s "$v" > "/proc/sys/$(printf %s "$k" | tr . /)" || exit 1; done';
    await this.exec('sh', ['-c', script, 'sh', ...Object.entries(values).map(([k, v]) => `${k}=${v}`)]);
  }

  /** Add an address; IPv6 addresses get `nodad` so they are usable at once. */
  async addAddress(dev: string, cidr: string): Promise<void> {
    await this.ip('addr', 'add', cidr, 'dev', dev, ...(cidr.includes(':') ? ['nodad'] : []));
  }

  /** Remove an address. */
  async delAddress(dev: string, cidr: string): Promise<void> {
    await this.ip('addr', 'del', cidr, 'dev', dev);
  }

  /**
   * Make `address` a silent blackhole as seen from this namespace: packets to it
   * leave through `dev` addressed to a MAC address nobody has, so the peer's
   * interface discards them without a word (no RST, no ICMP), like a firewall
   * that drops. Unlike a `blackhole` route, which fails connect() at once with
   * an error, this makes a connect hang until its own timeout. The address must
   * be on the link's subnet (or routed via `dev`).
   */
  async blackhole(address: string, dev: string): Promise<void> {
    await this.ip(address.includes(':') ? '-6' : '-4', 'neigh', 'replace', address, 'lladdr', '02:00:5e:00:de:ad', 'nud', 'permanent', 'dev', dev);
  }

  /** Undo {@link blackhole}: remove the bogus neighbour entry. */
  async unblackhole(address: string, dev: string): Promise<void> {
    await this.ip(address.includes(':') ? '-6' : '-4', 'neigh', 'del', address, 'dev', dev);
  }

  /** Throw unless the namespace has no IPv4 and no IPv6 default route. */
  async assertNoDefaultRoute(): Promise<void> {
    const v4 = (await this.ip('-4', 'route', 'show', 'default')).trim();
    const v6 = (await this.ip('-6', 'route', 'show', 'default')).trim();
    if (v4 || v6) throw new Error(`namespace ${this.name} has a default route (${v4 || v6}); refusing to run a dialer there`);
  }

  /**
   * Run `node <script> ...args` inside the namespace. The child writes events
   * as JSON lines on stdout and reads commands as JSON lines on stdin (see
   * test/support/lines.ts). Unless `listenOnly`, the namespace must have no
   * default route.
   */
  async spawnNode(script: string | URL, args: readonly string[] = [], options: SpawnNodeOptions = {}): Promise<NsProcess> {
    if (!options.listenOnly) await this.assertNoDefaultRoute();
    const path = typeof script === 'string' ? script : fileURLToPath(script);
    // `ip netns exec` execs node in place, so the child's pid is node's own.
    const child = spawn('ip', ['netns', 'exec', this.name, process.execPath, path, ...args], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, ...options.env },
    });
    const proc = new NsProcess(child, `${this.name}:${path.split('/').pop() ?? path}`);
    this.lab.track(proc);
    return proc;
  }
}

/** Events of {@link NsProcess}. */
export interface NsProcessEvents {
  event: [NsEvent];
  exit: [{ code: number | null; signal: NodeJS.Signals | null }];
}

/** A Node process inside a namespace, speaking JSON lines. */
export class NsProcess extends EventEmitter<NsProcessEvents> {
  readonly label: string;
  /** Every event received so far, in order. */
  readonly events: NsEvent[] = [];
  /** Resolves when the process has exited. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  #child: ChildProcessWithoutNullStreams;
  #stderr = '';
  #exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;

  constructor(child: ChildProcessWithoutNullStreams, label: string) {
    super();
    this.#child = child;
    this.label = label;
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      // Keep the tail only: enough to explain a crash, bounded for chatty children.
      this.#stderr = (this.#stderr + chunk).slice(-16_384);
    });
    child.stdin.on('error', () => undefined); // the child may exit before reading
    createInterface({ input: child.stdout }).on('line', (line) => this.#onLine(line));
    this.exited = new Promise((resolve) => {
      child.once('error', (err) => {
        this.#stderr += `\nspawn failed: ${err.message}`;
      });
      child.once('close', (code, signal) => {
        this.#exit = { code, signal };
        this.emit('exit', this.#exit);
        resolve(this.#exit);
      });
    });
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  /** What the child wrote on stderr (last 16 KiB). */
  get stderr(): string {
    return this.#stderr;
  }

  /** Whether the process has exited, and how. */
  get exitStatus(): { code: number | null; signal: NodeJS.Signals | null } | undefined {
    return this.#exit;
  }

  #onLine(line: string): void {
    let event: NsEvent;
    try {
      const parsed: unknown = JSON.parse(line);
      if (typeof parsed !== 'object' || parsed === null || typeof (parsed as { type?: unknown }).type !== 'string') throw new Error('not an event');
      event = { ...(parsed as { type: string }), receivedAt: Date.now() };
    } catch {
      event = { type: 'text', line, receivedAt: Date.now() };
    }
    this.events.push(event);
    this.emit('event', event);
  }

  /** Send a command as one JSON line on the child's stdin. */
  send(command: Record<string, unknown>): void {
    if (this.#exit) throw new Error(`${this.label} has exited (${JSON.stringify(this.#exit)}); stderr: ${this.#stderr}`);
    this.#child.stdin.write(JSON.stringify(command) + '\n');
  }

  /**
   * The first event (already received or future) matching `predicate`. Rejects
   * after `timeoutMs`, or when the process exits first, with an Error naming
   * `what`, the last events and the child's stderr.
   */
  waitFor(predicate: (e: NsEvent) => boolean, timeoutMs: number, what: string, fromIndex = 0): Promise<NsEvent> {
    const found = this.events.slice(fromIndex).find(predicate);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const cleanup = (): void => {
        clearTimeout(timer);
        this.off('event', onEvent);
        this.off('exit', onExit);
      };
      const onEvent = (e: NsEvent): void => {
        if (!predicate(e)) return;
        cleanup();
        resolve(e);
      };
      const onExit = (): void => {
        cleanup();
        reject(this.#failure(`${what}: process exited (${JSON.stringify(this.#exit)}) first`));
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(this.#failure(`${what}: not seen within ${timeoutMs} ms`));
      }, timeoutMs);
      if (this.#exit) {
        onExit();
        return;
      }
      this.on('event', onEvent);
      this.on('exit', onExit);
    });
  }

  /** Send `command` and wait for the reply event `{type: replyType}` that follows it. */
  async request(command: Record<string, unknown>, replyType: string, timeoutMs = 5000): Promise<NsEvent> {
    const from = this.events.length;
    this.send(command);
    return this.waitFor((e) => e.type === replyType, timeoutMs, `reply ${replyType} to ${JSON.stringify(command)}`, from);
  }

  #failure(message: string): Error {
    const tail = this.events.slice(-10).map((e) => JSON.stringify(e)).join('\n  ');
    return new Error(`${this.label}: ${message}\n last events:\n  ${tail}\n stderr:\n${this.#stderr.slice(-4000)}`);
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. Idempotent. */
  async kill(graceMs = 2000): Promise<void> {
    if (this.#exit) return;
    this.#child.kill('SIGTERM');
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }

  /** @internal SIGKILL for the synchronous exit hook. */
  killSync(): void {
    if (!this.#exit) this.#child.kill('SIGKILL');
  }
}
