/**
 * `wshub serve`: run the hub from a config file and/or flags until a signal.
 * SIGTERM/SIGINT drain (sessions closed 1001 after flushing, exit 0; a second
 * signal exits at once), SIGHUP re-reads the config file.
 */
import { WshubError } from '../errors.js';
import { envSecrets, resolveConfig, readConfigFile, type HubConfig } from '../hub/config.js';
import { Hub } from '../hub/hub.js';
import { parseReadyWhen, type ReadyWhen } from '../observe/health.js';
import { HubHttpServer } from '../observe/http.js';
import { createLogger, type Logger } from '../observe/log.js';
import { Redactor } from '../redact.js';
import { CliFailure, HeldStdout } from './report.js';

export interface ServeFlags {
  config?: string;
  upstream?: string[];
  adapter?: string;
  listen?: string;
  tcp?: string;
  http?: string;
  logLevel?: string;
  token?: string;
  /** Which upstreams must be open for /healthz to answer 200: all | any | none | name,name. */
  readyWhen?: string;
  /** `--allow-remote-without-token`: a non-loopback `--tcp` without `--token` (trusted networks only). */
  allowRemoteWithoutToken?: boolean;
}

/** Merge flags over the file's contents; flags win. */
export function buildRawConfig(flags: ServeFlags): Record<string, unknown> {
  const raw = (flags.config ? readConfigFile(flags.config) : {}) ?? {};
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new WshubError('ERR_CONFIG_FILE', `${flags.config}: expected a mapping at the top level`);
  const out: Record<string, unknown> = { ...(raw as Record<string, unknown>) };
  if (flags.listen) out.listen = flags.listen;
  if (flags.tcp) out.tcp = flags.tcp;
  if (flags.http) out.http = flags.http;
  if (flags.logLevel) out.logLevel = flags.logLevel;
  if (flags.token) out.token = flags.token;
  if (flags.readyWhen) out.readyWhen = flags.readyWhen;
  if (flags.allowRemoteWithoutToken) out.allowRemoteWithoutToken = true;
  const upstreams = { ...((out.upstreams as Record<string, Record<string, unknown>> | undefined) ?? {}) };
  for (const spec of flags.upstream ?? []) {
    const eq = spec.indexOf('=');
    if (eq <= 0) throw new WshubError('ERR_INVALID_OPTION', `--upstream: expected NAME=URL, got "${spec}"`);
    const name = spec.slice(0, eq);
    upstreams[name] = { ...(upstreams[name] ?? {}), url: spec.slice(eq + 1), ...(flags.adapter ? { adapter: flags.adapter } : {}) };
  }
  if (flags.adapter && !flags.upstream?.length) {
    for (const name of Object.keys(upstreams)) upstreams[name] = { ...upstreams[name], adapter: flags.adapter };
  }
  out.upstreams = upstreams;
  return out;
}

export interface RunningHub {
  hub: Hub;
  http: HubHttpServer | undefined;
  httpAddress: { host: string; port: number } | undefined;
  logger: Logger;
  /** The secrets kept out of logs and the HTTP side; a reload adds the new config's. */
  redactor: Redactor;
  close(): Promise<void>;
}

/**
 * The daemon's logger: human-readable (pino-pretty) on a terminal, JSON lines
 * into pipes and files; every `${VAR}` value of the config redacted.
 */
export function daemonLogger(config: HubConfig, redactor: Redactor = new Redactor(config.secrets ?? []), destination?: HeldStdout): Logger {
  return createLogger({ level: config.logLevel, pretty: process.stdout.isTTY === true, redactor, ...(destination ? { destination } : {}) });
}

export interface StartHubOptions {
  /** @default 'all' */
  readyWhen?: ReadyWhen;
  /** Shared by the logger and the HTTP side. @default built from `config.secrets` */
  redactor?: Redactor;
}

/** Start a hub (and its HTTP side) from a resolved config. */
export async function startHub(config: HubConfig, logger: Logger = daemonLogger(config), options: StartHubOptions = {}): Promise<RunningHub> {
  const hub = new Hub({ config, logger });
  const redactor = options.redactor ?? new Redactor(config.secrets ?? []);
  let http: HubHttpServer | undefined;
  let httpAddress: { host: string; port: number } | undefined;
  // Built before start(): a bad --ready-when must fail before anything listens or dials.
  if (config.http) {
    http = new HubHttpServer(hub, {
      redactor,
      ...(options.readyWhen === undefined ? {} : { readyWhen: options.readyWhen }),
      ...(config.httpToken === undefined ? {} : { token: config.httpToken }),
      ...(config.httpAllowedHosts === undefined ? {} : { allowedHosts: config.httpAllowedHosts }),
    });
  }
  else if (options.readyWhen !== undefined) logger.warn('--ready-when has no effect without --http');
  // The HTTP address is bound first: a port in use must stop the start before any upstream is dialed.
  if (config.http && http) {
    try {
      httpAddress = await http.listen(config.http.host, config.http.port);
    } catch (err) {
      await http.close();
      throw err;
    }
  }
  try {
    await hub.start();
  } catch (err) {
    await http?.close();
    throw err;
  }
  if (httpAddress) logger.info({ http: `http://${httpAddress.host}:${httpAddress.port}/` }, 'status and metrics listening');
  let closing: Promise<void> | undefined;
  return {
    hub,
    http,
    httpAddress,
    logger,
    redactor,
    close: () => (closing ??= Promise.all([hub.close(), http?.close()]).then(() => undefined)),
  };
}

/** Wire SIGTERM/SIGINT (drain, exit 0; again → exit 1 at once) and SIGHUP (reload). */
export function handleSignals(running: RunningHub, reload: (() => HubConfig) | undefined): void {
  let draining = false;
  const drain = (signal: NodeJS.Signals): void => {
    if (draining) {
      running.logger.warn({ signal }, 'second signal: exiting without drain');
      running.hub.destroy();
      process.exit(1);
    }
    draining = true;
    running.logger.info({ signal }, 'draining');
    running.close().then(
      () => {
        running.logger.info('drained, exiting');
        process.exit(0);
      },
      (err: unknown) => {
        running.logger.error({ err }, 'drain failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', drain);
  process.on('SIGINT', drain);
  process.on('SIGHUP', () => {
    if (!reload) {
      running.logger.warn('SIGHUP: no config file to reload');
      return;
    }
    let next: HubConfig;
    try {
      next = reload();
    } catch (err) {
      running.logger.error({ err: err instanceof WshubError ? err.toJSON() : err }, 'SIGHUP: config invalid, keeping the running one');
      return;
    }
    running.hub.reload(next).catch((err: unknown) => running.logger.error({ err }, 'reload failed'));
  });
}

export async function serve(flags: ServeFlags): Promise<void> {
  const raw = buildRawConfig(flags);
  // Known before validation, so even an error about a bad value cannot print a secret.
  const redactor = new Redactor(envSecrets(raw));
  let config: HubConfig;
  try {
    config = resolveConfig(raw);
  } catch (err) {
    throw redactor.error(err);
  }
  const readyWhen = config.readyWhen === undefined ? undefined : parseReadyWhen(config.readyWhen);
  // Log lines of a failed start come after the one-line error, not before it.
  const stdout = new HeldStdout();
  let running: RunningHub;
  try {
    running = await startHub(config, daemonLogger(config, redactor, stdout), { redactor, ...(readyWhen === undefined ? {} : { readyWhen }) });
  } catch (err) {
    throw new CliFailure(redactor.error(err), () => stdout.release());
  }
  // Signals are wired before the held log (its "hub started") goes out: whoever acts on that line — a supervisor,
  // a test — may signal at once, and a SIGTERM or SIGINT that came before the handlers would kill the hub undrained.
  handleSignals(running, flags.config ? () => {
    const next = buildRawConfig(flags);
    redactor.add(envSecrets(next));
    return resolveConfig(next);
  } : undefined);
  stdout.release();
}
