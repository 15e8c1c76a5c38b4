/**
 * The `wshub` command line: serve, demo, status, tail.
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { isWshubError } from '../errors.js';
import { demo } from './demo.js';
import { serve } from './serve.js';
import { fetchStatus, formatStatus, tail, tailUrl } from './status.js';

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

export function buildProgram(): Command {
  const program = new Command('wshub')
    .description('Hold upstream WebSocket connections robustly and share each with many local workers.')
    .version(packageVersion(), '-V, --version', 'print the version and exit')
    .showHelpAfterError()
    .exitOverride();

  program
    .command('serve')
    .description('run the hub from a config file and/or flags')
    .option('-c, --config <file>', 'YAML or JSON config file')
    .option('-u, --upstream <name=url>', 'an upstream (repeatable)', collect)
    .option('-a, --adapter <kind>', 'adapter of the --upstream entries: raw | json | jsonrpc')
    .option('-l, --listen <path>', 'Unix socket for workers (mode 0660)')
    .option('-t, --tcp <host:port>', 'loopback TCP listener for workers')
    .option('--http <host:port>', 'status page, /status, /metrics, /healthz')
    .option('--token <token>', 'bearer token required on the TCP listener')
    .option('--log-level <level>', 'fatal | error | warn | info | debug | trace | silent')
    .option('--ready-when <rule>', '/healthz is 200 when: all (required upstreams open; default) | any | none | name,name')
    .action(async (opts: Parameters<typeof serve>[0]) => serve(opts));

  program
    .command('demo')
    .description('the hub in front of an embedded demo feed, with example workers')
    .option('-l, --listen <path>', 'Unix socket for workers')
    .option('-t, --tcp <host:port>', 'TCP listener (default 127.0.0.1:7070, or any free port)')
    .option('--http <host:port>', 'status (default 127.0.0.1:7071, or any free port)')
    .option('--workers <n>', 'example workers to start (0-3)', positiveInt)
    .option('--log-level <level>', 'hub log level', 'warn')
    .action(async (opts: Parameters<typeof demo>[0]) => demo(opts));

  program
    .command('status')
    .description('show what a running hub is doing')
    .option('--http <host:port>', 'the hub\'s HTTP address', '127.0.0.1:7071')
    .option('--json', 'print the raw /status JSON')
    .action(async (opts: { http: string; json?: boolean }) => {
      const stats = await fetchStatus(opts.http);
      console.log(opts.json ? JSON.stringify(stats, null, 2) : formatStatus(stats));
    });

  program
    .command('tail')
    .description('attach like a worker and print every message')
    .argument('<target>', 'a ws:// or ws+unix:// URL, or an upstream name')
    .option('-l, --listen <path>', 'the hub\'s Unix socket (with an upstream name)')
    .option('-t, --tcp <host:port>', 'the hub\'s TCP listener (with an upstream name)')
    .option('-s, --send <frame>', 'a frame to send after attaching, e.g. a subscribe (repeatable)', collect)
    .option('-p, --protocol <name>', 'subprotocol to ask for (repeatable)', collect)
    .action(async (target: string, opts: { listen?: string; tcp?: string; send?: string[]; protocol?: string[] }) => {
      await tail(tailUrl(target, opts), { ...(opts.send ? { send: opts.send } : {}), ...(opts.protocol ? { protocols: opts.protocol } : {}) });
    });
  return program;
}

/** Run the CLI; errors become one line on stderr and a non-zero exit code (2 for bad config). */
export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      process.exitCode = err.exitCode;
      return;
    }
    if (isWshubError(err)) {
      console.error(`wshub: ${err.code}: ${err.message}`);
      process.exitCode = err.code === 'ERR_INVALID_OPTION' || err.code === 'ERR_CONFIG_FILE' ? 2 : 1;
      return;
    }
    console.error(`wshub: ${(err as Error).stack ?? String(err)}`);
    process.exitCode = 1;
  }
}
