/**
 * The node flags `wshub serve` runs with, and how the `wshub` launcher
 * (bin/wshub.js) makes sure it has them.
 *
 * `--no-incremental-marking`. Every large message is a new ArrayBuffer: Node
 * reads into a fresh 64 KiB buffer each time, and ws copies a message that
 * spans two reads into one more. V8 (11.3, Node 20) counts ArrayBuffer bytes
 * allocated since the last full collection against the old generation's
 * allowance, although these die young and the next scavenge frees them; and
 * it starts incremental marking from a task once less than a new space's
 * capacity (16 MB) of that allowance is left. For the hub's small heap (old
 * generation ~13 MB, allowance ~24 MB) that is ~8 MB of ArrayBuffers — less
 * than what arrives between two scavenges at 64 KiB × 6k msg/s. Relaying
 * 64 KiB messages, the hub fell, a few seconds into a stream, into
 * back-to-back full collections (`--trace-incremental-marking`: "Start (task)"
 * at 13 MB of a 36 MB limit; 51–57 per 2.5 s run) and stayed at about half its
 * throughput (4.0–4.8k msg/s against 9.5–11.8k direct, in the relay bench's
 * own sequence). With this flag the same sequence ran at 6.1–8.0k msg/s with
 * 0–5 full collections per run: V8 then collects the old generation when it
 * is full or when external memory grows by its own 64 MB limit, not whenever
 * young ArrayBuffers pass 8 MB.
 *
 * Measured and not enough: `--incremental-marking-soft-trigger=95` (clean in
 * short sequences, 175 full collections in a full bench),
 * `--no-concurrent-array-buffer-sweeping`, `--single-threaded-gc`, a 4 MiB or
 * 64 MiB semi-space, `--no-memory-reducer`, `--no-allocation-site-pretenuring`.
 *
 * The costs: a full collection runs in one pause instead of in steps — a few
 * milliseconds for the hub's usual 10–50 MB heap, longer for a hub holding
 * tens of thousands of sessions; and garbage waits longer for it. In the
 * bench's flood scenario (one worker sending 1 KiB frames as fast as it can
 * for 10 s) the hub's RSS rose by 49–54 MiB (peak 168–171 MiB) with the flag
 * against 16–37 MiB (peak 129–131 MiB) without, two runs each; every frame
 * arrived either way. At 10,000 msg/s the hub's p99 latency against the
 * byte pipe's spread over ×0.6–3.6 in six 3 s windows with the flag and
 * ×0.6–2.6 without: no difference the machine could show.
 *
 * Why a relaunch: V8 takes this flag only on node's command line (set in a
 * running process with `v8.setFlagsFromString` it aborted two daemons in CI
 * with "Fatal error: unreachable code"), and Node refuses it in
 * NODE_OPTIONS. So when `wshub serve` starts without it, the launcher runs
 * the same command in a child node that has it:
 * - the child gets a process group of its own, so a terminal's Ctrl-C reaches
 *   the launcher only, which forwards it once (serve's second signal means
 *   "exit now");
 * - being a session of its own (`detached` is setsid), the child is also a
 *   scheduling autogroup of its own where the kernel has them
 *   (/proc/sys/kernel/sched_autogroup_enabled, on by default in Debian), as
 *   a hub started by systemd is. Against 16 workers in one other session, on
 *   2 cores, that made the hub run in shorter slices: 15.6–18.8 syscalls and
 *   3.3–3.9 context switches per thousand deliveries (16 × 1 KiB,
 *   free-running) against 9.0–9.5 and 1.2 for the same package run without
 *   the relaunch (`WSHUB_NODE_FLAGS=off`) or with autogroups off, and
 *   ×1.1–1.4 the CPU per delivery (bench `daemon` against `relay`). Kept: the
 *   single Ctrl-C is the contract, and a supervised hub meets the same
 *   scheduling anyway;
 * - SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 sent to the
 *   launcher are forwarded; the launcher exits with the child's exit code, or
 *   dies of the child's signal. SIGUSR1 is node's "start the inspector": the
 *   pid a user knows is the launcher's, and the process worth inspecting is
 *   the hub (`--inspect-port` on the launcher's command line reaches the
 *   child too);
 * - if the launcher itself is killed (SIGKILL), the child notices its IPC
 *   channel close and kills itself the same way, so no hub outlives its pid.
 * Starting node with the flags (`node --no-incremental-marking
 * $(command -v wshub) serve …`) runs the hub in that process, with no
 * relaunch; so does `WSHUB_NODE_FLAGS=off` (without the flags). Other
 * commands never relaunch.
 */
import { spawn } from 'node:child_process';

/** The node flags `wshub serve` runs with. */
export const DAEMON_NODE_FLAGS: readonly string[] = ['--no-incremental-marking'];

/** Set in the relaunched child's environment: it must not relaunch again, and it follows its launcher. */
const RELAUNCHED_ENV = 'WSHUB_RELAUNCHED';

const FORWARDED: readonly NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'];

/** The daemon flags missing from this node's command line, when `args` is a command that needs them. */
export function missingNodeFlags(args: readonly string[], execArgv: readonly string[] = process.execArgv, env: NodeJS.ProcessEnv = process.env): string[] {
  if (args[0] !== 'serve' || env.WSHUB_NODE_FLAGS === 'off' || env[RELAUNCHED_ENV] === '1') return [];
  return DAEMON_NODE_FLAGS.filter((flag) => !execArgv.includes(flag));
}

/** Run `script args` in a child node with `flags` added; this process forwards signals and exits as the child exits. */
export function relaunch(script: string, args: readonly string[], flags: readonly string[]): void {
  const child = spawn(process.execPath, [...process.execArgv, ...flags, script, ...args], {
    stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
    detached: true,
    env: { ...process.env, [RELAUNCHED_ENV]: '1' },
  });
  const forward = (signal: NodeJS.Signals): void => {
    child.kill(signal);
  };
  for (const signal of FORWARDED) process.on(signal, forward);
  child.once('error', (err) => {
    console.error(`wshub: cannot start node for serve: ${err.message}`);
    process.exit(1);
  });
  child.once('exit', (code, signal) => {
    for (const s of FORWARDED) process.off(s, forward);
    if (signal) process.kill(process.pid, signal);
    else process.exit(code ?? 1);
  });
}

/** In a relaunched child: leave the relaunch marker out of what this process starts, and die with the launcher. */
export function followLauncher(): void {
  if (process.env[RELAUNCHED_ENV] !== '1') return;
  delete process.env[RELAUNCHED_ENV];
  const channel = process.channel;
  if (!channel) return;
  channel.unref();
  process.once('disconnect', () => process.kill(process.pid, 'SIGKILL'));
}
