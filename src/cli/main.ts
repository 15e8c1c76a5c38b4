/**
 * The `wshub` command line: serve, check, demo, status, tail. Exit codes and
 * the one-line error format are in report.ts (documented in docs/cli.md).
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { check } from './check.js';
import { demo } from './demo.js';
import { demoCluster } from './demo-cluster.js';
import { CliFailure, EXIT_USAGE, errorLine, exitCodeOf } from './report.js';
import { serve, type ServeFlags } from './serve.js';
import { fetchStatus, formatStatus } from './status.js';
import { tail, tailUrl, type TailFlags } from './tail.js';

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('expected a whole number');
  return n;
}

/** The package's version, read from its package.json (dist/src/cli → the package root). */
export function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
  return typeof pkg.version === 'string' ? pkg.version : '0.0.0';
}

/** The options `serve` and `check` share: what `check` validates is exactly what `serve` would run. */
function hubOptions(command: Command): Command {
  return command
    .option('-c, --config <file>', 'YAML or JSON config file')
    .option('-u, --upstream <name=url>', 'an upstream (repeatable)', collect)
    .option('-a, --adapter <kind>', 'adapter of the --upstream entries: raw | json | jsonrpc')
    .option('-l, --listen <path>', 'Unix socket for workers (mode 0660)')
    .option('-t, --tcp <host:port>', 'TCP listener for workers (loopback unless --token or --allow-remote-without-token)')
    .option('--http <host:port>', 'status page, /status, /metrics, /healthz')
    .option('--token <token>', 'bearer token required on the TCP listener')
    .option('--allow-remote-without-token', 'let --tcp listen on a non-loopback address without a token (trusted networks only)')
    .option('--log-level <level>', 'fatal | error | warn | info | debug | trace | silent')
    .option('--ready-when <rule>', '/healthz is 200 when: all (required upstreams open; default) | any | none | name,name');
}

export function buildProgram(): Command {
  const program = new Command('wshub')
    .description('Hold upstream WebSocket connections robustly and share each with many local workers.')
    .version(packageVersion(), '-V, --version', 'print the version and exit')
    // One line of hint, not the whole help, under a usage error.
    .showHelpAfterError('(wshub <command> --help shows the usage)')
    .exitOverride();

  hubOptions(program.command('serve').description('run the hub from a config file and/or flags'))
    .action(async (opts: ServeFlags) => serve(opts));

  hubOptions(program.command('check').description('validate a config (and its ${VAR} references) without starting anything; exit 0 valid, 2 invalid'))
    .action((opts: ServeFlags) => check(opts));

  program
    .command('demo')
    .description('the hub in front of an embedded demo feed, with example workers')
    .option('-l, --listen <path>', 'Unix socket for workers (not with --cluster: each hub\'s is in the demo\'s temp dir)')
    .option('-t, --tcp <host:port>', 'TCP listener (default 127.0.0.1:7070, or any free port; --cluster: hub-a\'s, hub-b takes any free port)')
    .option('--http <host:port>', 'status (default 127.0.0.1:7071, or any free port; --cluster: as --tcp)')
    .option('--workers <n>', 'example workers to start (0-3)', positiveInt)
    .option('--log-level <level>', 'hub log level', 'warn')
    .option('--cluster', 'two hubs sharing the feed through a local nats-server (needs nats-server on PATH or $NATS_SERVER)')
    .action(async (opts: Parameters<typeof demo>[0]) => (opts.cluster ? demoCluster(opts) : demo(opts)));

  program
    .command('status')
    .description('show what a running hub is doing')
    .option('--http <host:port>', 'the hub\'s HTTP address', '127.0.0.1:7071')
    .option('--json', 'print the raw /status JSON')
    .option('--token <token>', 'the hub\'s httpToken (default: $WSHUB_TOKEN)')
    .action(async (opts: { http: string; json?: boolean; token?: string }) => {
      const stats = await fetchStatus(opts.http, opts.token ?? process.env.WSHUB_TOKEN);
      console.log(opts.json ? JSON.stringify(stats, null, 2) : formatStatus(stats));
    });

  program
    .command('tail')
    .description('attach like a worker and print every message; exit 0 when stopped (Ctrl-C) or closed 1000, 1 otherwise')
    .argument('<target>', 'a ws:// or ws+unix:// URL, or an upstream name')
    .option('-l, --listen <path>', 'the hub\'s Unix socket (with an upstream name)')
    .option('-t, --tcp <host:port>', 'the hub\'s TCP listener (with an upstream name)')
    .option('-s, --send <frame>', 'a frame to send after attaching, e.g. a subscribe (repeatable)', collect)
    .option('-b, --binary', 'send the --send frames as binary messages, each given in hex (as tail prints binary)')
    .option('-p, --protocol <name>', 'subprotocol to ask for (repeatable)', collect)
    .option('--token <token>', 'bearer token for the hub\'s TCP listener (default: $WSHUB_TOKEN)')
    .action(async (target: string, opts: TailFlags) => {
      process.exitCode = await tail(tailUrl(target, opts), opts);
    });
  return program;
}

/** Run the CLI; errors become one line on stderr and an exit code: 2 for usage and config, 1 for the rest. */
export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and --version exit 0; every usage error (unknown option, missing argument) is 2, like a bad config.
      process.exitCode = err.exitCode === 0 ? 0 : EXIT_USAGE;
      return;
    }
    const failure = err instanceof CliFailure ? err.error : err;
    console.error(errorLine(failure));
    process.exitCode = err instanceof CliFailure && err.exitCode !== undefined ? err.exitCode : exitCodeOf(failure);
    if (err instanceof CliFailure) err.afterReport();
  }
}
