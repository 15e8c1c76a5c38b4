/**
 * `wshub check`: validate what `wshub serve` would run — the config file,
 * the flags over it, `${VAR}` references, readyWhen, the Unix socket's
 * directory — without binding, dialing or starting anything. Every problem
 * is reported at once on one line; exit 0 when valid, 2 when not.
 */
import { resolveConfig } from '../hub/config.js';
import { checkReadyWhen, parseReadyWhen } from '../observe/health.js';
import { unixDirectoryProblem } from '../server/unix-socket.js';
import { CliFailure, EXIT_USAGE } from './report.js';
import { buildRawConfig, type ServeFlags } from './serve.js';

export function check(flags: ServeFlags, out: (line: string) => void = (line) => console.log(line)): void {
  try {
    const config = resolveConfig(buildRawConfig(flags));
    if (config.readyWhen !== undefined) checkReadyWhen(parseReadyWhen(config.readyWhen), config.upstreams.map((u) => u.name));
    const directory = config.listen === undefined || /^\\\\[.?]\\pipe\\/i.test(config.listen) ? undefined : unixDirectoryProblem(config.listen);
    if (directory) throw directory;
    const where = [
      config.listen && `listen ${config.listen}`,
      config.tcp && `tcp ${config.tcp.host}:${config.tcp.port}`,
      config.http && `http ${config.http.host}:${config.http.port}`,
    ].filter(Boolean).join(', ');
    const names = config.upstreams.map((u) => `${u.name} (${u.adapter})`).join(', ') || 'none';
    out(`${flags.config ?? 'flags'}: valid; ${where}; upstreams: ${names}`);
  } catch (err) {
    throw new CliFailure(err, undefined, EXIT_USAGE);
  }
}
