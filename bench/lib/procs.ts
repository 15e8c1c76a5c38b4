/**
 * Child processes for benchmarks: every process a scenario starts is forked
 * through {@link ProcessGroup}, spoken to over IPC with request/response calls
 * that time out (a stuck child fails the scenario instead of hanging it), and
 * killed in the scenario's `finally` through the group.
 *
 * CPU time and RSS are read from /proc so they are the child's own, whatever
 * it is (a Node fixture or nats-server).
 */
import { execFileSync, fork, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { DAEMON_NODE_FLAGS } from '../../src/cli/launch.js';

/** Request sent to a fixture over IPC. */
export interface IpcRequest {
  id: number;
  op: string;
  args?: unknown;
}

/** A fixture's answer. */
export interface IpcResponse {
  id: number;
  ok: boolean;
  result?: unknown;
  error?: string;
}

/** Default time a fixture gets to answer one call. */
export const DEFAULT_CALL_TIMEOUT_MS = 30_000;

/** The compiled fixture `name` (bench/fixtures/<name>.ts → dist/bench/fixtures/<name>.js). */
export function fixturePath(name: string): string {
  return fileURLToPath(new URL(`../fixtures/${name}.js`, import.meta.url));
}

/** A forked fixture answering {@link IpcRequest}s. */
export class Fixture {
  readonly proc: ChildProcess;
  readonly name: string;
  /** What the fixture's `ready` call answered (its port, pid, …). */
  info: unknown;
  #nextId = 1;
  readonly #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  #exited: string | undefined;

  constructor(proc: ChildProcess, name: string) {
    this.proc = proc;
    this.name = name;
    proc.on('message', (m: IpcResponse) => {
      const p = this.#pending.get(m.id);
      if (!p) return;
      this.#pending.delete(m.id);
      clearTimeout(p.timer);
      if (m.ok) p.resolve(m.result);
      else p.reject(new Error(`${this.name}: ${m.error ?? 'failed'}`));
    });
    proc.on('exit', (code, signal) => {
      this.#exited = `exited (code ${code}, signal ${signal})`;
      for (const p of this.#pending.values()) {
        clearTimeout(p.timer);
        p.reject(new Error(`${this.name} ${this.#exited}`));
      }
      this.#pending.clear();
    });
    // A dying child's EPIPE on a late send must not take the bench down.
    proc.on('error', () => undefined);
  }

  get pid(): number {
    return this.proc.pid ?? -1;
  }

  /** Ask the fixture to do `op`; rejects on its error, its exit, or after `timeoutMs`. */
  call<T = unknown>(op: string, args?: unknown, timeoutMs = DEFAULT_CALL_TIMEOUT_MS): Promise<T> {
    if (this.#exited) return Promise.reject(new Error(`${this.name} ${this.#exited}`));
    const id = this.#nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`${this.name}: ${op} got no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
      this.proc.send({ id, op, args } satisfies IpcRequest);
    });
  }
}

/** Every live child of every group, for {@link killEverything}. */
const everyChild = new Set<ChildProcess>();

/**
 * SIGKILL every child any group started, at once (synchronous: for a signal
 * handler, where no `finally` will run). Fixtures would exit on their own when
 * the IPC channel closes; nats-server has no channel and would not.
 */
export function killEverything(): void {
  for (const proc of everyChild) proc.kill('SIGKILL');
}

/** Every process a scenario started; `killAll()` in its finally leaves none behind. */
export class ProcessGroup {
  readonly #procs = new Set<ChildProcess>();

  /** The pids of its live processes. */
  get pids(): number[] {
    return [...this.#procs].flatMap((p) => (p.pid === undefined || p.exitCode !== null || p.signalCode !== null ? [] : [p.pid]));
  }

  /**
   * Fork the hub host (fixtures/hub-host.ts) with a hub config, under the node
   * flags `wshub serve` runs with (src/cli/launch.ts), then `execArgv`.
   */
  forkHub(config: unknown, label = 'hub', execArgv: string[] = []): Promise<Fixture> {
    return this.fork('hub-host', config, label, [...DAEMON_NODE_FLAGS, ...execArgv]);
  }

  /**
   * Fork a fixture that stands in for a server or another relay (a source, a
   * reference) under the node flags the hub runs with. Without them a node
   * process that allocates a 64 KiB buffer per message falls into V8's
   * back-to-back full collections (src/cli/launch.ts): the ws source did, and
   * at 1 × 64 KiB it then spent 92–122 µs per message instead of 29–50, so
   * the direct reference ran at 9–11k msg/s instead of 17–28k — a handicapped
   * reference, not what a feed server does. Workers keep node's defaults:
   * they are users' processes, the same ones in every system.
   */
  forkPeer(name: string, args: unknown = {}, label = name): Promise<Fixture> {
    return this.fork(name, args, label, [...DAEMON_NODE_FLAGS]);
  }

  /** Fork a fixture and wait for its `ready` call to answer (its setup done). */
  async fork(name: string, args: unknown = {}, label = name, execArgv: string[] = []): Promise<Fixture> {
    const proc = fork(fixturePath(name), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv });
    this.#track(proc);
    const fx = new Fixture(proc, label);
    fx.info = await fx.call('ready', args);
    return fx;
  }

  /** Spawn a plain program (nats-server); its output is kept for error messages. */
  spawn(command: string, args: string[]): { proc: ChildProcess; output: () => string } {
    const proc = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.#track(proc);
    let out = '';
    const keep = (b: Buffer): void => {
      out = (out + b.toString()).slice(-4000);
    };
    proc.stdout?.on('data', keep);
    proc.stderr?.on('data', keep);
    return { proc, output: () => out };
  }

  #track(proc: ChildProcess): void {
    this.#procs.add(proc);
    everyChild.add(proc);
    proc.once('exit', () => {
      this.#procs.delete(proc);
      everyChild.delete(proc);
    });
  }

  /** Kill one process and wait (bounded) for it to exit. */
  async kill(proc: ChildProcess): Promise<void> {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    proc.kill('SIGKILL');
    await Promise.race([exited, sleep(5000)]);
  }

  /** SIGKILL every live child and wait for them. */
  async killAll(): Promise<void> {
    await Promise.all([...this.#procs].map((p) => this.kill(p)));
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Ticks per second of /proc/<pid>/stat times (USER_HZ; 100 on every Linux that matters). */
const USER_HZ = 100;

/** CPU seconds (user + system) a process has used so far, from /proc. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name may contain spaces: fields are counted after its closing ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return (utime + stime) / USER_HZ;
}

/** Resident set size of a process in bytes, from /proc. */
export function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /VmRSS:\s+(\d+) kB/.exec(status);
  return m ? Number(m[1]) * 1024 : NaN;
}

/**
 * Run processes `pids` (every thread of each) on the CPUs `cpus` only
 * (`taskset`, util-linux), e.g. `'0'` or `'1-3'`. Throws, naming what is
 * missing, on a machine without `taskset`.
 */
export function pinToCpus(pids: readonly number[], cpus: string): void {
  for (const pid of pids) {
    try {
      execFileSync('taskset', ['--all-tasks', '--cpu-list', '--pid', cpus, String(pid)], { stdio: ['ignore', 'ignore', 'pipe'] });
    } catch (err) {
      const e = err as NodeJS.ErrnoException & { stderr?: Buffer };
      if (e.code === 'ENOENT') throw new Error('taskset (util-linux) is needed to place benchmark processes on CPUs; install util-linux');
      throw new Error(`taskset ${cpus} ${pid}: ${e.stderr?.toString().trim() || e.message}`);
    }
  }
}

/** The CPUs process `pid` may run on (its `Cpus_allowed_list` in /proc), in order. */
export function allowedCpus(pid: number | 'self' = 'self'): number[] {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const list = /Cpus_allowed_list:\s*(\S+)/.exec(status)?.[1];
  if (!list) throw new Error(`/proc/${pid}/status has no Cpus_allowed_list`);
  const cpus: number[] = [];
  for (const range of list.split(',')) {
    const [a, b] = range.split('-').map(Number);
    for (let c = a!; c <= (b ?? a!); c++) cpus.push(c);
  }
  return cpus;
}
