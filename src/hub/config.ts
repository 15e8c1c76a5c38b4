/**
 * The daemon's configuration: a YAML or JSON file, flags on top, every key
 * validated (unknown keys refused with their path), `${VAR}` and
 * `${VAR:-default}` in any string taken from the environment so secrets stay
 * out of the file.
 *
 * ```yaml
 * listen: /run/wshub/wshub.sock
 * tcp: 127.0.0.1:7070
 * http: 127.0.0.1:7071
 * upstreams:
 *   feed:
 *     url: wss://stream.example.com/ws
 *     protocols: [feed-v1]
 *     headers: { Authorization: "Bearer ${FEED_TOKEN}" }
 *     adapter: json
 *     topic: stream
 *     subscribe: '{"method":"SUBSCRIBE","params":["{topic}"],"id":{id}}'
 *     unsubscribe: '{"method":"UNSUBSCRIBE","params":["{topic}"],"id":{id}}'
 *     slowConsumer: conflate
 * ```
 *
 * An upstream entry holds the hub's keys (adapter, topic, templates, queue
 * policy) and any option of `ResilientWebSocket` (pingIntervalMs, backoff,
 * queue, tcpTimeoutMs, …), which that class validates itself.
 */
import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from '../zod.js';
import { WshubError, errnoOf, isWshubError, type ErrorCode } from '../errors.js';
import { describeIssues } from '../options.js';
import { resolveOptions as resolveClientOptions } from '../upstream/options.js';
import { FrameTemplate } from '../adapters/template.js';
import { SLOW_CONSUMER_POLICIES } from './backlog.js';
import { poolKeys, resolvePool, type PoolConfig } from './pool-config.js';
import { natsUrl } from '../cluster/connect.js';
import { DEFAULT_FORWARD_TIMEOUT_MS } from '../cluster/requests.js';
import { DEFAULT_LEASE_TTL_MS, MIN_LEASE_TTL_MS } from '../cluster/store.js';

/**
 * What transparent sessions see of an upstream outage, by adapter, unless
 * configured. `raw` and `json` feeds: `close` (1012, once the outage is
 * reported) — a worker that only sees silence cannot know its order book or
 * subscription state went stale, while a close makes its own
 * reconnect-and-resync code run, as it would against the upstream itself.
 * `jsonrpc`: `hold` — the hub answers every request in flight with a
 * JSON-RPC error and makes every subscription again under the same local ids,
 * so a worker's state stays valid but for the gap, which its own block
 * numbers show.
 */
export const DEFAULT_ON_UPSTREAM_LOSS = Object.freeze({ raw: 'close', json: 'close', jsonrpc: 'hold' } as const);

const HOST_PORT = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/;
export const UPSTREAM_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/** `127.0.0.1:7070` → `{ host, port }`; bare `:7070` means loopback. */
export function parseHostPort(value: string, where: string): { host: string; port: number } {
  const v = value.startsWith(':') ? `127.0.0.1${value}` : value;
  const m = HOST_PORT.exec(v);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port > 65535) throw new WshubError('ERR_INVALID_OPTION', `${where}: expected HOST:PORT (e.g. 127.0.0.1:7070), got "${value}"`);
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port };
}

const hostPort = z.string().refine((v) => HOST_PORT.test(v.startsWith(':') ? `127.0.0.1${v}` : v), 'expected HOST:PORT, e.g. 127.0.0.1:7070');

/** Keys of an upstream entry that belong to the hub; everything else goes to ResilientWebSocket. */
const hubUpstreamKeys = {
  adapter: z.enum(['raw', 'json', 'jsonrpc']).default('raw'),
  /** json: field path of the topic. */
  topic: z.string().min(1).optional(),
  subscribe: z.string().min(1).optional(),
  unsubscribe: z.string().min(1).optional(),
  ack: z.string().min(1).optional(),
  idField: z.string().min(1).optional(),
  /** json: an answer with this field present and not null/false is a refusal. */
  errorField: z.string().min(1).optional(),
  requestTimeoutMs: z.number().int().positive().optional(),
  /** json, jsonrpc: requests one session may have waiting for answers. */
  maxInFlight: z.number().int().positive().optional(),
  maxSubscriptions: z.number().int().positive().optional(),
  slowConsumer: z.enum(SLOW_CONSUMER_POLICIES as [string, ...string[]]).optional(),
  maxQueueBytes: z.number().int().positive().optional(),
  /** Transparent sessions when the upstream is lost: `close` them with 1012 once the outage is reported, or `hold` them. */
  onUpstreamLoss: z.enum(['close', 'hold']).optional(),
  /** /healthz is 503 while a required upstream is not open. @default true */
  required: z.boolean().default(true),
  /** PEM file with extra CA certificates. */
  caFile: z.string().min(1).optional(),
  ...poolKeys,
};

export type UpstreamConfig = {
  name: string;
  adapter: 'raw' | 'json' | 'jsonrpc';
  topic?: string | undefined;
  subscribe?: string | undefined;
  unsubscribe?: string | undefined;
  ack?: string | undefined;
  idField?: string | undefined;
  errorField?: string | undefined;
  requestTimeoutMs?: number | undefined;
  maxInFlight?: number | undefined;
  maxSubscriptions?: number | undefined;
  slowConsumer?: 'drop-oldest' | 'conflate' | 'disconnect' | undefined;
  maxQueueBytes?: number | undefined;
  /** @default by adapter: DEFAULT_ON_UPSTREAM_LOSS */
  onUpstreamLoss: 'close' | 'hold';
  required: boolean;
  /** Options for ResilientWebSocket, already validated (`url`: the first of `pool.urls`). */
  client: Record<string, unknown> & { url: string };
  /** Endpoints, sharding and pacing (a single `url` is a pool of one endpoint). */
  pool: PoolConfig;
  /** json: dotted path of a per-topic sequence number in messages (deduplication across a failback). */
  sequenceField?: string | undefined;
  /** jsonrpc: methods safe to send again on another endpoint when their connection dies. */
  idempotentMethods?: string[] | undefined;
};

/** An upstream entry's hub keys; the rest are ResilientWebSocket options (`UPSTREAM_OPTIONS_SCHEMA`). */
export const upstreamSchema = z.looseObject(hubUpstreamKeys);

const serverKeys = z.strictObject({
  handshakeTimeoutMs: z.number().int().positive().optional(),
  maxPayload: z.number().int().positive().optional(),
  maxConnections: z.number().int().positive().optional(),
  maxPendingHandshakes: z.number().int().positive().optional(),
  maxMessagesPerSecond: z.number().min(0).optional(),
  /** Pongs a session may owe before it counts as a ping flood (1008, ERR_PING_FLOOD); 0: no limit. */
  maxPendingPongs: z.number().int().min(0).optional(),
  pingIntervalMs: z.number().int().min(0).optional(),
  idleTimeoutMs: z.number().int().min(0).optional(),
  drainTimeoutMs: z.number().int().min(0).optional(),
  tokenOnUnix: z.boolean().optional(),
});

/** `cluster:` — hubs on several machines share each upstream through NATS (docs/cluster.md). */
const clusterKeys = z.strictObject({
  /** `nats://host:port` (or `tls://`), or a list tried in order. */
  nats: z.union([natsUrl, z.array(natsUrl).min(1)]),
  /** Names the KV bucket (`wshub-<name>`) and the subject prefix: every hub of one cluster uses the same. */
  name: z.string().regex(/^[A-Za-z0-9_-]+$/, 'expected [A-Za-z0-9_-]+').default('wshub'),
  /** This hub's name as the others see it. @default host name and pid */
  hubName: z.string().min(1).optional(),
  /** How long a silent holder keeps an upstream; every hub of the cluster must use the same. */
  leaseTtlMs: z.number().int().min(MIN_LEASE_TTL_MS).default(DEFAULT_LEASE_TTL_MS),
  /** What a hub that loses NATS does: `hold` (its workers see the outage) or `local` (connect upstream itself after the TTL). */
  onNatsLoss: z.enum(['hold', 'local']).default('hold'),
  user: z.string().min(1).optional(),
  pass: z.string().optional(),
  token: z.string().min(1).optional(),
  tls: z.strictObject({
    ca: z.union([z.string(), z.array(z.string())]).optional(),
    cert: z.string().optional(),
    key: z.string().optional(),
    rejectUnauthorized: z.boolean().optional(),
  }).optional(),
  /** How long a hub waits for the holder to accept a forwarded worker frame. */
  forwardTimeoutMs: z.number().int().positive().default(DEFAULT_FORWARD_TIMEOUT_MS),
});

export type ClusterConfig = z.output<typeof clusterKeys>;

/** The config file's schema; docs/config.md documents every key (a test walks this). */
export const configSchema = z.strictObject({
  listen: z.string().min(1).optional(),
  tcp: hostPort.optional(),
  http: hostPort.optional(),
  /** Bearer token for /status, /events and /metrics (and the page's data); /healthz stays open. */
  httpToken: z.string().min(1).optional(),
  /** Host names the HTTP side answers to besides its bound address (and `localhost` on loopback). */
  httpAllowedHosts: z.array(z.string().min(1)).optional(),
  token: z.string().min(1).optional(),
  /** Let `tcp` listen on a non-loopback address without a token (a trusted network only). @default false */
  allowRemoteWithoutToken: z.boolean().default(false),
  /** /healthz is 200 when: `all` required upstreams are open (default), `any`, `none`, or `name,name`. */
  readyWhen: z.string().min(1).optional(),
  allowedOrigins: z.array(z.string().min(1)).optional(),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  slowConsumer: z.enum(SLOW_CONSUMER_POLICIES as [string, ...string[]]).default('drop-oldest'),
  maxQueueBytes: z.number().int().positive().optional(),
  /** Default `onUpstreamLoss` of every upstream. */
  onUpstreamLoss: z.enum(['close', 'hold']).optional(),
  /** How long a session may hold an upstream's reading paused before it counts as slow (pacer.ts). */
  slowAfterMs: z.number().int().positive().optional(),
  server: serverKeys.default({}),
  upstreams: z.record(z.string(), upstreamSchema).default({}),
  cluster: clusterKeys.optional(),
});

export interface HubConfig {
  listen?: string | undefined;
  tcp?: { host: string; port: number } | undefined;
  http?: { host: string; port: number } | undefined;
  httpToken?: string | undefined;
  httpAllowedHosts?: string[] | undefined;
  token?: string | undefined;
  allowRemoteWithoutToken: boolean;
  readyWhen?: string | undefined;
  allowedOrigins?: string[] | undefined;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  slowConsumer: 'drop-oldest' | 'conflate' | 'disconnect';
  maxQueueBytes?: number | undefined;
  onUpstreamLoss?: 'close' | 'hold' | undefined;
  slowAfterMs?: number | undefined;
  server: z.output<typeof serverKeys>;
  upstreams: UpstreamConfig[];
  /** Cluster mode (absent: this hub holds its upstreams alone). */
  cluster?: ClusterConfig | undefined;
  /** Every value taken from the environment (`${VAR}`), and the tokens: redacted wherever wshub shows anything. */
  secrets?: ReadonlySet<string>;
}

const ENV_REFERENCE = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/**
 * Replace `${VAR}` / `${VAR:-default}` in every string, naming the key of a
 * missing variable. Every value taken from the environment is added to
 * `secrets` (when given): `${VAR}` is how secrets stay out of the file, so
 * each such value is redacted wherever wshub would show it. A `:-default`
 * written in the file is not a secret.
 */
export function substituteEnv(value: unknown, env: NodeJS.ProcessEnv, path = '', secrets?: Set<string>): unknown {
  if (typeof value === 'string') {
    return value.replace(ENV_REFERENCE, (_, name: string, fallback: string | undefined) => {
      const v = env[name];
      if (v !== undefined && v !== '') {
        secrets?.add(v);
        return v;
      }
      if (fallback !== undefined) return fallback;
      throw new WshubError('ERR_CONFIG_FILE', `${path || 'config'}: environment variable ${name} is not set`);
    });
  }
  if (Array.isArray(value)) return value.map((v, i) => substituteEnv(v, env, `${path}[${i}]`, secrets));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, substituteEnv(v, env, path ? `${path}.${k}` : k, secrets)]));
  }
  return value;
}

/** The values a raw config takes from the environment (its secrets), even from a config that will not validate. Never throws. */
export function envSecrets(raw: unknown, env: NodeJS.ProcessEnv = process.env): Set<string> {
  const secrets = new Set<string>();
  const walk = (value: unknown, depth: number): void => {
    if (typeof value === 'string') {
      for (const m of value.matchAll(ENV_REFERENCE)) {
        const v = env[m[1]!];
        if (v !== undefined && v !== '') secrets.add(v);
      }
    } else if (value && typeof value === 'object' && depth < 64) {
      for (const v of Object.values(value)) walk(v, depth + 1);
    }
  };
  walk(raw, 0);
  return secrets;
}

/** Read a YAML or JSON config file; throws ERR_CONFIG_FILE with the file and the reason. */
export function readConfigFile(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new WshubError('ERR_CONFIG_FILE', `${file}: cannot read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, { cause: err });
  }
  const json = extname(file).toLowerCase() === '.json';
  try {
    return json ? (JSON.parse(text) as unknown) : (parseYaml(text) as unknown);
  } catch (err) {
    const { where, reason } = json ? jsonProblem(err as Error, text) : yamlProblem(err as Error);
    throw new WshubError('ERR_CONFIG_FILE', `${file}${where}: not valid ${json ? 'JSON' : 'YAML'}: ${reason}`, { cause: err });
  }
}

/** `:line:col` and the reason of a yaml error, without yaml's trailing excerpt (it ends the first line with a colon). */
function yamlProblem(err: Error): { where: string; reason: string } {
  const pos = (err as { linePos?: Array<{ line: number; col: number }> }).linePos?.[0];
  const reason = (err.message.split('\n')[0] ?? '').replace(/ at line \d+, column \d+:?\s*$/, '').replace(/:\s*$/, '');
  return { where: pos ? `:${pos.line}:${pos.col}` : '', reason };
}

/** `:line:col` of a JSON.parse error (from "at position N", or the end for a cut-off file), and its reason on one line. */
function jsonProblem(err: Error, text: string): { where: string; reason: string } {
  const m = / at position (\d+)/.exec(err.message);
  const reason = err.message.replace(/ in JSON at position \d+.*$/s, '').replace(/\s+/g, ' ').trim();
  const at = m ? Number(m[1]) : /end of JSON input/.test(err.message) ? text.trimEnd().length : undefined;
  if (at === undefined) return { where: '', reason };
  const before = text.slice(0, at);
  const line = before.split('\n').length;
  const col = at - before.lastIndexOf('\n');
  return { where: `:${line}:${col}`, reason };
}

/**
 * Validate a raw config object (file contents with flags merged in). Every
 * problem is collected and reported at once, in one `ERR_INVALID_OPTION`
 * (or `ERR_CONFIG_FILE` when the first problem is a file that cannot be
 * read), so a user fixes the whole file in one pass.
 */
export function resolveConfig(raw: unknown, env: NodeJS.ProcessEnv = process.env): HubConfig {
  const secrets = new Set<string>();
  const substituted = substituteEnv(raw ?? {}, env, '', secrets);
  const problems = new Problems();
  const parsed = configSchema.safeParse(substituted);
  if (!parsed.success) {
    // Upstream entries are checked one by one below, with their client options; report their keys there, once.
    const issues = parsed.error.issues.filter((i) => !(i.path[0] === 'upstreams' && i.path.length > 1));
    if (issues.length) problems.add('ERR_INVALID_OPTION', describeIssues(new z.ZodError(issues), '', configSchema, raw));
  }
  const rawUpstreams = (substituted as { upstreams?: unknown }).upstreams;
  const entries = rawUpstreams && typeof rawUpstreams === 'object' && !Array.isArray(rawUpstreams) ? Object.entries(rawUpstreams) : [];
  const defaults = {
    slowConsumer: (parsed.success ? parsed.data.slowConsumer : 'drop-oldest') as UpstreamConfig['slowConsumer'],
    maxQueueBytes: parsed.success ? parsed.data.maxQueueBytes : undefined,
    onUpstreamLoss: parsed.success ? parsed.data.onUpstreamLoss : undefined,
  };
  const upstreams: UpstreamConfig[] = [];
  for (const [name, rawEntry] of entries) {
    const upstream = resolveUpstream(name, rawEntry, (raw as { upstreams?: Record<string, unknown> } | undefined)?.upstreams?.[name], defaults, problems);
    if (upstream) upstreams.push(upstream);
  }
  if (!parsed.success) {
    problems.throwIfAny();
    throw new WshubError('ERR_INVALID_OPTION', describeIssues(parsed.error, '', configSchema, raw).join('; '));
  }
  const c = parsed.data;
  if (c.listen === undefined && c.tcp === undefined) {
    problems.add('ERR_INVALID_OPTION', ['listen: set listen (Unix socket path) or tcp (HOST:PORT) so workers can attach']);
  }
  const tcp = c.tcp === undefined ? undefined : parseHostPort(c.tcp, 'tcp');
  if (tcp && !isLoopback(tcp.host) && c.token === undefined && !c.allowRemoteWithoutToken) {
    problems.add('ERR_INVALID_OPTION', [
      `tcp: ${c.tcp} is reachable from other machines and no token is set; set token (workers then send "Authorization: Bearer <token>"), `
      + 'listen on 127.0.0.1, or set allowRemoteWithoutToken: true if every machine that can reach it is trusted',
    ]);
  }
  problems.throwIfAny();
  return {
    listen: c.listen,
    tcp,
    http: c.http === undefined ? undefined : parseHostPort(c.http, 'http'),
    httpToken: c.httpToken,
    httpAllowedHosts: c.httpAllowedHosts,
    token: c.token,
    allowRemoteWithoutToken: c.allowRemoteWithoutToken,
    readyWhen: c.readyWhen,
    allowedOrigins: c.allowedOrigins,
    logLevel: c.logLevel,
    slowConsumer: c.slowConsumer as HubConfig['slowConsumer'],
    maxQueueBytes: c.maxQueueBytes,
    onUpstreamLoss: c.onUpstreamLoss,
    slowAfterMs: c.slowAfterMs,
    server: c.server,
    upstreams,
    cluster: c.cluster,
    // Tokens are secrets wherever they were written.
    secrets: new Set([...secrets, ...[c.token, c.httpToken, c.cluster?.token, c.cluster?.pass].filter((t): t is string => t !== undefined && t !== '')]),
  };
}

/** One upstream entry: hub keys, client options (validated by ResilientWebSocket's schema), adapter needs. Problems go to `problems`. */
function resolveUpstream(
  name: string, value: unknown, rawValue: unknown,
  defaults: Pick<UpstreamConfig, 'slowConsumer' | 'maxQueueBytes'> & { onUpstreamLoss: 'close' | 'hold' | undefined }, problems: Problems,
): UpstreamConfig | undefined {
  const where = `upstreams.${name}`;
  const before = problems.count;
  if (!UPSTREAM_NAME.test(name)) problems.add('ERR_INVALID_OPTION', [`${where}: upstream names are letters, digits, "_", "." and "-" (at most 64)`]);
  const checked = upstreamSchema.safeParse(value);
  if (!checked.success) problems.add('ERR_INVALID_OPTION', describeIssues(checked.error, where, upstreamSchema, rawValue));
  if (!value || typeof value !== 'object' || Array.isArray(value)) return undefined;
  // With a bad hub key, the client options are still checked: every problem is reported in one pass.
  const entry = checked.success ? checked.data : (value as z.output<typeof upstreamSchema>);
  const hubKeys = new Set(Object.keys(hubUpstreamKeys));
  const client: Record<string, unknown> = { name };
  for (const [k, v] of Object.entries(entry)) if (!hubKeys.has(k)) client[k] = v;
  if (typeof entry.caFile === 'string' && entry.caFile) {
    try {
      client.ca = readFileSync(entry.caFile, 'utf8');
    } catch (err) {
      problems.add('ERR_CONFIG_FILE', [`${where}.caFile: cannot read ${entry.caFile} (${errnoOf(err) ?? (err as Error).message})`]);
    }
  }
  let pool: PoolConfig | undefined;
  try {
    pool = resolvePool(entry, client, where);
    for (const url of pool.urls) resolveClientOptions({ ...client, url });
  } catch (err) {
    if (!isWshubError(err, 'ERR_INVALID_OPTION')) throw err;
    const list = Array.isArray(err.details.problems) ? (err.details.problems as string[]) : [err.message];
    problems.add('ERR_INVALID_OPTION', list.map((m) => m.replace(/^upstream(\.|:)/, `${where}$1`)));
  }
  if (entry.adapter === 'json') {
    for (const key of ['topic', 'subscribe', 'unsubscribe'] as const) {
      if (!entry[key]) problems.add('ERR_INVALID_OPTION', [`${where}.${key}: required by the json adapter`]);
    }
    for (const key of ['subscribe', 'unsubscribe'] as const) {
      const template = entry[key];
      if (typeof template !== 'string' || !template) continue;
      try {
        new FrameTemplate(template, `${where}.${key}`);
      } catch (err) {
        problems.add(isWshubError(err) ? err.code : 'ERR_INVALID_OPTION', [(err as Error).message]);
      }
    }
  }
  if (problems.count > before || !pool) return undefined;
  return {
    name,
    adapter: entry.adapter,
    topic: entry.topic,
    subscribe: entry.subscribe,
    unsubscribe: entry.unsubscribe,
    ack: entry.ack,
    idField: entry.idField,
    errorField: entry.errorField,
    requestTimeoutMs: entry.requestTimeoutMs,
    maxInFlight: entry.maxInFlight,
    maxSubscriptions: entry.maxSubscriptions,
    slowConsumer: (entry.slowConsumer ?? defaults.slowConsumer) as UpstreamConfig['slowConsumer'],
    maxQueueBytes: entry.maxQueueBytes ?? defaults.maxQueueBytes,
    onUpstreamLoss: entry.onUpstreamLoss ?? defaults.onUpstreamLoss ?? DEFAULT_ON_UPSTREAM_LOSS[entry.adapter],
    required: entry.required,
    client: client as UpstreamConfig['client'],
    pool,
    sequenceField: entry.sequenceField,
    idempotentMethods: entry.idempotentMethods,
  };
}

/** True for addresses only this machine can reach: 127.0.0.0/8, ::1, localhost. */
export function isLoopback(host: string): boolean {
  const h = host.toLowerCase();
  return h === 'localhost' || h === '::1' || /^127(\.\d{1,3}){3}$/.test(h) || /^::ffff:127(\.\d{1,3}){3}$/.test(h);
}

/** The problems found in a config, reported together. */
class Problems {
  readonly #lines: string[] = [];
  #code: ErrorCode | undefined;

  get count(): number {
    return this.#lines.length;
  }

  add(code: ErrorCode, lines: readonly string[]): void {
    for (const line of lines) if (!this.#lines.includes(line)) this.#lines.push(line);
    this.#code ??= code;
  }

  throwIfAny(): void {
    if (this.#lines.length === 0) return;
    throw new WshubError(this.#code ?? 'ERR_INVALID_OPTION', this.#lines.join('; '), { details: { problems: [...this.#lines] } });
  }
}
