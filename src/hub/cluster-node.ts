/**
 * This hub as a member of a cluster (`cluster:` in the config;
 * docs/cluster.md): its NATS connection, the cluster's KV bucket, and one
 * {@link UpstreamCluster} per configured upstream. Created by `Hub.start()`
 * only when the config has a `cluster:` key; nothing of NATS loads otherwise.
 *
 * A hub whose NATS servers cannot be reached at start fails to start with
 * `ERR_NATS_CONNECT` (or `ERR_NATS_AUTH`, `ERR_NATS_VERSION`,
 * `ERR_NATS_NO_JETSTREAM`, `ERR_CLUSTER_BUCKET`), naming what to fix: a
 * cluster member that silently ran alone would open the extra upstream
 * connections the cluster exists to avoid. Once started, NATS outages are
 * ridden out (`onNatsLoss`).
 */
import { hostname } from 'node:os';
import { ClusterStore, connectCluster, newHubId, type ClusterConnection } from '../cluster/index.js';
import type { Logger } from '../observe/log.js';
import { UpstreamCluster, type UpstreamClusterStats } from './cluster-upstream.js';
import type { ClusterConfig } from './config.js';
import type { HubUpstream } from './upstream.js';

/** How often the NATS round trip is measured for /status and /metrics. */
const RTT_INTERVAL_MS = 5000;

export interface HubClusterStats {
  name: string;
  hubId: string;
  hubName: string;
  onNatsLoss: 'hold' | 'local';
  leaseTtlMs: number;
  nats: { connected: boolean; server: string; version: string; rttMs: number | undefined; disconnects: number };
  upstreams: UpstreamClusterStats[];
}

export class HubCluster {
  readonly hubId: string;
  readonly hubName: string;
  readonly conn: ClusterConnection;
  readonly store: ClusterStore;
  readonly #config: ClusterConfig;
  readonly #log: Logger;
  readonly #upstreams = new Map<string, UpstreamCluster>();
  readonly #rttTimer: NodeJS.Timeout;
  #rttMs: number | undefined;
  #disconnects = 0;
  #server = '';

  private constructor(config: ClusterConfig, conn: ClusterConnection, store: ClusterStore, log: Logger) {
    this.#config = config;
    this.conn = conn;
    this.store = store;
    this.#log = log;
    this.hubId = newHubId();
    this.hubName = config.hubName ?? `${hostname()}-${process.pid}`;
    this.#server = conn.nc.getServer();
    conn.on('status', (s) => {
      if (s.type === 'disconnected') this.#disconnects++;
      if (s.type === 'reconnected') this.#server = s.server;
      if (s.type === 'error') log.error({ err: s.error }, 'NATS connection refused by the cluster checks');
    });
    this.#rttTimer = setInterval(() => this.#measure(), RTT_INTERVAL_MS);
    this.#rttTimer.unref();
    this.#measure();
  }

  /** Connect to NATS and open the cluster's bucket; rejects with the code that says what to fix. */
  static async connect(config: ClusterConfig, log: Logger): Promise<HubCluster> {
    const conn = await connectCluster({
      servers: config.nats,
      ...(config.user === undefined ? {} : { user: config.user, pass: config.pass ?? '' }),
      ...(config.token === undefined ? {} : { token: config.token }),
      ...(config.tls === undefined ? {} : { tls: config.tls }),
      name: `wshub ${config.hubName ?? hostname()}`,
    });
    try {
      const store = await ClusterStore.open(conn, { cluster: config.name, leaseTtlMs: config.leaseTtlMs });
      const node = new HubCluster(config, conn, store, log.child({ part: 'cluster' }));
      node.#log.info({ event: 'joined', cluster: config.name, hubId: node.hubId, hub: node.hubName, server: conn.serverVersion }, `joined cluster ${config.name} as ${node.hubName}`);
      return node;
    } catch (err) {
      await conn.close().catch(() => undefined);
      throw err;
    }
  }

  /** Take part in holding `up` (before `up.start()`). */
  attach(up: HubUpstream): void {
    const member = new UpstreamCluster({ up, conn: this.conn, store: this.store, hubId: this.hubId, hubName: this.hubName, config: this.#config, logger: this.#log });
    this.#upstreams.set(up.name, member);
    member.start();
  }

  /** Stop taking part for `name` (removed by a reload, or the hub is closing): the lease is released first. */
  async detach(name: string): Promise<void> {
    const member = this.#upstreams.get(name);
    if (!member) return;
    this.#upstreams.delete(name);
    await member.close();
  }

  stats(): HubClusterStats {
    return {
      name: this.#config.name,
      hubId: this.hubId,
      hubName: this.hubName,
      onNatsLoss: this.#config.onNatsLoss,
      leaseTtlMs: this.#config.leaseTtlMs,
      nats: { connected: this.conn.connected, server: this.#server, version: this.conn.serverVersion, rttMs: this.#rttMs, disconnects: this.#disconnects },
      upstreams: [...this.#upstreams.values()].map((m) => m.stats()),
    };
  }

  /** Leave: every upstream's lease released (handover in milliseconds), then the NATS connection drained and closed. */
  async close(): Promise<void> {
    clearInterval(this.#rttTimer);
    await Promise.all([...this.#upstreams.keys()].map((name) => this.detach(name)));
    await this.conn.close().catch(() => undefined);
  }

  #measure(): void {
    if (!this.conn.connected) return;
    this.conn.rtt().then((ms) => { this.#rttMs = ms; }, () => { this.#rttMs = undefined; });
  }
}
