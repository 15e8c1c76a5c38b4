/**
 * One upstream in cluster mode (docs/cluster.md, "How the hub wires them"):
 * the lease decides whether this hub connects the upstream; the bus, the
 * requests and the interest keys carry everything else.
 *
 * - **Holder** (lease acquired): the upstream connects here
 *   (`HubUpstream.connectHere`); every routed upstream message is published
 *   once — to its topic's subject (json), or to the `_raw` subject (raw, and
 *   messages for everyone) — stamped with the lease epoch; the upstream's
 *   state goes out on every change and every renew interval; frames
 *   forwarded by other hubs come in as their {@link RemoteSession}'s. A hub
 *   that disappears from the interest view (its key deleted, or not refreshed
 *   for TTL + TTL/3) loses its RemoteSession, so what only it wanted is
 *   unsubscribed upstream.
 * - **Follower**: no upstream connection. Topic messages come from the bus
 *   (subscribed to the topics this hub's workers want, and `_raw`), the
 *   holder's answers from its unicast subject; both are routed exactly as
 *   upstream messages. The upstream's state is the holder's as it reports
 *   it: `open` while the holder says so; `reconnecting` (an outage) when the
 *   holder goes silent for two renew intervals, when NATS is lost
 *   (`onNatsLoss: hold`), or when the holder changes — then the new holder's
 *   first state or message opens the stream again and the adapter replays
 *   its subscriptions there.
 * - **Fenced or superseded**: the holder stops serving and publishing at
 *   once; with NATS up it follows whoever holds next (its connection
 *   closes), without NATS it keeps the connection for its own workers
 *   (`local`) and gives it back once another holder is seen.
 * - **`onNatsLoss: local`**: a follower without NATS for `leaseTtlMs`
 *   connects the upstream itself (one more upstream connection) and gives
 *   it back when NATS returns and a holder is seen.
 */
import type { Publish } from '../adapters/types.js';
import { RAW_TOPIC } from '../adapters/raw.js';
import {
  ClusterBus, ClusterRequests, InterestAnnouncer, InterestView, Lease,
  type BusMessage, type BusUnicast, type ClusterConnection, type ClusterConnectionStatus, type ClusterStore, type ForwardedFrame, type HolderStatus, type LeaseHolder, type Replier,
} from '../cluster/index.js';
import { WshubError } from '../errors.js';
import type { Logger } from '../observe/log.js';
import type { UpstreamState } from '../upstream/types.js';
import { ForwardLink, RemotePacing, RemoteSession } from './cluster-remote.js';
import type { ClusterConfig } from './config.js';
import type { HubUpstream, UpstreamRole } from './upstream.js';

export interface UpstreamClusterOptions {
  up: HubUpstream;
  conn: ClusterConnection;
  store: ClusterStore;
  hubId: string;
  hubName: string;
  config: ClusterConfig;
  logger: Logger;
}

/** One upstream's cluster figures, for /status and /metrics. */
export interface UpstreamClusterStats {
  upstream: string;
  role: UpstreamRole;
  /** Who holds the upstream, as last seen (this hub included). */
  holder: { hubId: string; hub: string; epoch: number; startedAt: number; self: boolean } | undefined;
  /** This hub's holding: its epoch and age (0 when not holding). */
  epoch: number;
  leaseAgeMs: number;
  /** The holder's last reported upstream state (followers). */
  holderState: string | undefined;
  /** Hubs seen in the interest view (holder only: the view runs there). */
  hubs: Array<{ hubId: string; hub: string; topics: number; ageMs: number }>;
  /** Following hubs with a session on this holder. */
  remoteSessions: number;
  /** Holder: following hubs whose workers are behind and hold the upstream's reading now. */
  remotePacing: number;
  lease: Lease['stats'];
  bus: ClusterBus['stats'];
  requests: ClusterRequests['stats'];
}

const STATES: ReadonlySet<string> = new Set(['idle', 'connecting', 'open', 'reconnecting', 'closed']);

export class UpstreamCluster {
  readonly lease: Lease;
  readonly bus: ClusterBus;
  readonly requests: ClusterRequests;
  readonly announcer: InterestAnnouncer;
  readonly view: InterestView;
  readonly #up: HubUpstream;
  readonly #conn: ClusterConnection;
  readonly #config: ClusterConfig;
  readonly #hubId: string;
  readonly #hubName: string;
  readonly #log: Logger;
  readonly #link: ForwardLink;
  readonly #remotes = new Map<string, RemoteSession>();
  /** The epoch of the holder whose stream this hub follows (0: none yet). */
  #following = 0;
  /** When the holder was last heard (state or message), monotonic ms. */
  #heardAt = 0;
  #holderStatus: (HolderStatus & { epoch: number }) | undefined;
  #heartbeat: NodeJS.Timeout | undefined;
  #watchdog: NodeJS.Timeout | undefined;
  #localTimer: NodeJS.Timeout | undefined;
  #closed = false;
  #bytesIn = 0;
  /** Holder: following hubs whose workers hold the upstream's reading. */
  readonly #pacing: RemotePacing;
  /** Follower: this hub's workers are behind (told the holder). */
  #behind = false;
  readonly #onStatus = (s: ClusterConnectionStatus): void => this.#natsStatus(s);

  constructor(options: UpstreamClusterOptions) {
    const { up, conn, store, hubId, hubName } = options;
    this.#up = up;
    this.#conn = conn;
    this.#config = options.config;
    this.#hubId = hubId;
    this.#hubName = hubName;
    this.#log = options.logger.child({ upstream: up.name, part: 'cluster' });
    this.lease = new Lease({ store, upstream: up.name, hubId, hubName });
    this.bus = new ClusterBus({ conn, cluster: store.cluster, upstream: up.name, guard: this.lease });
    this.requests = new ClusterRequests({ conn, cluster: store.cluster, upstream: up.name, hubId, guard: this.lease });
    this.announcer = new InterestAnnouncer({ store, upstream: up.name, hubId, hubName });
    this.view = new InterestView({ store, upstream: up.name });
    this.#link = new ForwardLink({
      upstream: up.name,
      requests: this.requests,
      bus: this.bus,
      route: up.route,
      client: up.config.client,
      timeoutMs: options.config.forwardTimeoutMs,
      drained: () => up.clusterDrained(),
    });
    this.#pacing = new RemotePacing(up.pacer);
  }

  /** Join: follow until the lease says otherwise, campaign, announce this hub's interest. */
  start(): void {
    const up = this.#up;
    const link = this.#link;
    up.joinCluster({
      routed: (data, isBinary, publish) => this.#publish(data, isBinary, publish),
      topic: (topic, live) => this.#topic(topic, live),
      link,
      streamOpen: (open) => (open ? link.opened() : link.closed()),
      pace: (behind) => {
        this.#behind = behind;
        this.bus.pace(this.#hubId, behind);
      },
      stats: () => {
        const bus = this.bus.stats;
        return { messagesIn: bus.received + bus.unicastReceived, bytesIn: this.#bytesIn, sends: link.stats() };
      },
    });
    this.bus.on('message', (m) => this.#fromBus(m));
    this.bus.on('unicast', (u) => this.#fromHolder(u));
    this.bus.on('state', (s) => this.#holderSaid(s));
    // Nothing is lost silently: what NATS did not deliver (a slow consumer cut off, a reconnect) is counted and said.
    this.bus.on('missed', ({ topic, count, epoch }) => this.#log.warn({ event: 'cluster-missed', topic, count, epoch }, `NATS did not deliver ${count} message(s) of ${topic ?? 'the raw stream'} from the holder (epoch ${epoch})`));
    this.bus.on('pace', ({ hub, behind }) => { if (up.role === 'holder' && hub !== this.#hubId) this.#pacing.pace(hub, behind); });
    this.bus.listen(this.#hubId);
    this.#followTopics();
    this.view.on('gone', ({ hubId, reason }) => this.#dropRemote(hubId, reason));
    this.lease.on('acquired', ({ epoch }) => this.#acquired(epoch));
    this.lease.on('fenced', ({ epoch, lateMs }) => this.#stopHolding(`lease of epoch ${epoch} fenced (renewals failed; ${Math.round(lateMs)} ms late)`));
    this.lease.on('lost', ({ epoch, reason }) => { if (reason !== 'closed') this.#stopHolding(`lease of epoch ${epoch} lost (${reason})`); });
    this.lease.on('holder', (h) => this.#holderSeen(h));
    this.#conn.on('status', this.#onStatus);
    up.on('state', () => { if (up.role === 'holder') this.#announceState(); });
    up.followerState('connecting', 'waiting for the hub that holds the upstream');
    this.announcer.start();
    this.lease.start();
    const every = this.lease.renewIntervalMs;
    this.#watchdog = setInterval(() => this.#watch(), Math.max(100, Math.floor(every / 2)));
  }

  stats(): UpstreamClusterStats {
    const h = this.lease.holder;
    return {
      upstream: this.#up.name,
      role: this.#up.role,
      holder: h ? { hubId: h.holder, hub: h.hub, epoch: h.epoch, startedAt: h.startedAt, self: h.self } : undefined,
      epoch: this.lease.epoch,
      leaseAgeMs: Math.round(this.lease.leaseAgeMs),
      holderState: this.#holderStatus?.state,
      hubs: this.#up.role === 'holder' ? this.view.hubs() : [],
      remoteSessions: this.#remotes.size,
      remotePacing: this.#pacing.holding,
      lease: this.lease.stats,
      bus: this.bus.stats,
      requests: this.requests.stats,
    };
  }

  /** Leave the cluster: release the lease first (another hub takes over in milliseconds), then stop. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#heartbeat);
    clearInterval(this.#watchdog);
    clearTimeout(this.#localTimer);
    this.#conn.off('status', this.#onStatus);
    this.requests.stopServing();
    this.view.close();
    this.#pacing.clear();
    for (const remote of this.#remotes.values()) remote.release(`hub ${this.#hubName} is leaving the cluster`);
    this.#remotes.clear();
    this.#link.close();
    await Promise.all([this.lease.close(), this.announcer.close()]);
    this.bus.close();
  }

  // ── holder ─────────────────────────────────────────────────────────────

  #acquired(epoch: number): void {
    if (this.#closed) return;
    clearTimeout(this.#localTimer);
    this.#log.info({ event: 'acquired', epoch }, `holding upstream ${this.#up.name} (epoch ${epoch})`);
    this.#dropBusTopics();
    this.#following = epoch;
    this.#holderStatus = undefined;
    this.#up.connectHere(true, `this hub holds the upstream (epoch ${epoch})`, this.#lastHeard());
    this.view.start();
    this.requests.serve((frame, replier) => this.#serve(frame, replier));
    this.bus.listenPace(true);
    this.#announceState();
    clearInterval(this.#heartbeat);
    this.#heartbeat = setInterval(() => this.#announceState(), this.lease.renewIntervalMs);
  }

  /**
   * A hub with its own upstream connection delivers that connection's
   * messages: the holder's stream would only echo them (and NATS keeps
   * subscriptions across a reconnect, so they would flow again the moment
   * NATS is back). Dropped here, subscribed again when the hub follows: a
   * give-back then takes up the holder's stream from the subscription's
   * start, rather than from messages already in flight to this hub — some
   * of which its own connection delivered just before the switch.
   */
  #dropBusTopics(): void {
    for (const topic of this.bus.topics()) this.bus.unsubscribe(topic);
  }

  #stopHolding(why: string): void {
    if (this.#closed) return;
    clearInterval(this.#heartbeat);
    this.requests.stopServing();
    this.bus.listenPace(false);
    this.#pacing.clear();
    this.view.close();
    // Detached while the connection is still ours: what only other hubs wanted is unsubscribed (it matters when it stays, NATS away).
    for (const remote of [...this.#remotes.values()]) this.#dropRemote(remote.hubId, 'unsubscribed');
    this.#log.warn({ event: 'stopped-holding', reason: why }, `stopped holding upstream ${this.#up.name}: ${why}`);
    if (this.#conn.connected) this.#follow(`${why}; following the next holder`);
    else this.#up.connectHere(false, `${why}; NATS is away, so this hub keeps its upstream connection for its own workers`);
  }

  /** Publish one routed upstream message for the other hubs. */
  #publish(data: Buffer, isBinary: boolean, publish: Publish | undefined): void {
    if (!publish || (publish.to !== 'topic' && publish.to !== 'everyone')) return;
    // raw: every hub's adapter finds topics itself; json: one subject per topic, so hubs get only what their workers want.
    const topic = publish.to === 'topic' && this.#up.adapter.kind === 'json' && publish.topic !== RAW_TOPIC ? publish.topic : null;
    const result = this.bus.publish({ topic, data, isBinary });
    if (!result.ok && result.reason === 'too-large') this.#log.warn({ bytes: data.length, topic }, 'upstream message over NATS max_payload: not sent to the other hubs');
  }

  #announceState(): void {
    const change = this.#up.lastChange;
    const status: HolderStatus = { state: this.#up.state, reason: change?.reason ?? '', outage: change?.outage === true, hub: this.#hubName, since: change?.at ?? Date.now() };
    this.bus.publishState(status);
  }

  #serve(frame: ForwardedFrame, replier: Replier): void {
    const route = this.#up.route;
    let remote = this.#remotes.get(frame.fromHub);
    if (!remote || remote.detached) {
      remote = new RemoteSession(this.#up.name, frame.fromHub, this.bus);
      this.#remotes.set(frame.fromHub, remote);
      route.attach(remote);
    }
    remote.handle(route, Buffer.from(frame.data.buffer, frame.data.byteOffset, frame.data.byteLength), frame.isBinary, replier);
  }

  #dropRemote(hubId: string, reason: string): void {
    this.#pacing.forget(hubId);
    const remote = this.#remotes.get(hubId);
    if (!remote) return;
    this.#remotes.delete(hubId);
    remote.release(`hub ${hubId} left (${reason})`);
    this.#up.route.detach(remote);
    this.#log.info({ event: 'remote-gone', hub: hubId, reason }, 'a following hub left: its topics are dropped from the upstream');
  }

  // ── follower ───────────────────────────────────────────────────────────

  #follow(why: string): void {
    this.#up.followCluster(why);
    this.#followTopics();
    this.#applyHolderState();
  }

  /** Subscribe the bus to what this hub's workers want (and to `_raw`), and announce it. */
  #followTopics(): void {
    const topics = [...this.#up.route.liveTopics()];
    this.announcer.set(topics);
    this.bus.subscribe(null);
    if (this.#up.adapter.kind === 'json') for (const topic of topics) this.bus.subscribe(topic);
  }

  #topic(topic: string, live: boolean): void {
    if (live) this.announcer.add(topic);
    else this.announcer.remove(topic);
    if (this.#up.role !== 'follower' || this.#up.adapter.kind !== 'json') return;
    if (live) this.bus.subscribe(topic);
    else this.bus.unsubscribe(topic);
  }

  #fromBus(m: BusMessage): void {
    if (this.#up.role !== 'follower') return;
    this.#heard(m.epoch);
    // A holder that publishes has its upstream open, whatever state message may still be on its way.
    if (this.#up.state !== 'open') this.#up.followerState('open', `the holder is streaming (epoch ${m.epoch})`);
    this.#bytesIn += m.data.byteLength;
    this.#up.fromCluster(Buffer.from(m.data.buffer, m.data.byteOffset, m.data.byteLength), m.isBinary);
  }

  #fromHolder(u: BusUnicast): void {
    if (this.#up.role !== 'follower') return;
    this.#heard(u.epoch);
    this.#bytesIn += u.data.byteLength;
    this.#up.fromCluster(Buffer.from(u.data.buffer, u.data.byteOffset, u.data.byteLength), u.isBinary);
  }

  #holderSaid(status: HolderStatus & { epoch: number }): void {
    if (status.epoch < this.#following) return;
    this.#heard(status.epoch);
    this.#holderStatus = status;
    // A hub that kept its own connection while NATS was away gives it back once another holder speaks.
    if (this.#up.role === 'local' && this.#conn.connected && status.epoch !== this.lease.epoch) {
      this.#follow(`hub ${status.hub} holds the upstream (epoch ${status.epoch}); giving back this hub's connection`);
      return;
    }
    this.#applyHolderState();
  }

  /** Something of `epoch` arrived from a holder: a newer one ends the stream followed so far. */
  /** Wall-clock ms of the last word from a holder (message, answer or state): where a gap starts when it stops. */
  #lastHeard(): number | undefined {
    return this.#heardAt > 0 ? Math.round(performance.timeOrigin + this.#heardAt) : undefined;
  }

  #heard(epoch: number): void {
    if (epoch > this.#following) this.#newHolder(epoch, 'a new holder took over');
    this.#heardAt = performance.now();
  }

  #newHolder(epoch: number, why: string): void {
    const first = this.#following === 0;
    this.#following = epoch;
    this.#holderStatus = undefined;
    if (this.#up.role !== 'follower' || first) return;
    // The new holder has not heard that this hub's workers are behind.
    if (this.#behind) this.bus.pace(this.#hubId, true);
    this.#up.followerState('reconnecting', `${why} (epoch ${epoch}); waiting for its stream`, { cause: new WshubError('ERR_UPSTREAM_UNAVAILABLE', `upstream ${this.#up.name}: the hub holding it changed`), since: this.#lastHeard() });
  }

  #applyHolderState(): void {
    const s = this.#holderStatus;
    if (this.#up.role !== 'follower' || !s || !this.#conn.connected) return;
    const to: UpstreamState = STATES.has(s.state) ? (s.state as UpstreamState) : 'reconnecting';
    // `idle` at the holder means it has not begun connecting: for workers here, connecting.
    // The holder's own outage began at its state change (`since`), not when this hub heard of it.
    this.#up.followerState(to === 'idle' ? 'connecting' : to, `holder ${s.hub}: ${s.reason || to}`, { ...(s.outage ? { outage: true } : {}), since: s.since > 0 ? s.since : undefined });
  }

  #holderSeen(h: LeaseHolder | undefined): void {
    if (!h || h.self || h.holder === this.#hubId) return;
    this.bus.advanceEpoch(h.epoch);
    if (h.epoch > this.#following) this.#newHolder(h.epoch, `hub ${h.hub} took over the upstream`);
    if (this.#up.role === 'local' && this.#conn.connected) this.#follow(`hub ${h.hub} holds the upstream (epoch ${h.epoch}); giving back this hub's connection`);
  }

  /** Periodic: a silent holder is an outage; a local connection is given back once a holder is known. */
  #watch(): void {
    if (this.#closed) return;
    const role = this.#up.role;
    const h = this.lease.holder;
    if (role === 'local' && this.#conn.connected && h && !h.self) {
      this.#follow(`hub ${h.hub} holds the upstream (epoch ${h.epoch}); giving back this hub's connection`);
      return;
    }
    if (role !== 'follower' || !this.#conn.connected) return;
    const silentMs = performance.now() - this.#heardAt;
    const limit = 2 * this.lease.renewIntervalMs + 100;
    if (this.#heardAt > 0 && silentMs > limit && this.#up.state !== 'reconnecting' && this.#up.state !== 'connecting') {
      this.#holderStatus = undefined;
      this.#up.followerState('reconnecting', `the holder of the upstream went silent ${Math.round(silentMs)} ms ago; waiting for a takeover`, {
        outage: true,
        cause: new WshubError('ERR_UPSTREAM_UNAVAILABLE', `upstream ${this.#up.name}: its holder went silent`),
        since: this.#lastHeard(),
      });
    }
  }

  #natsStatus(s: ClusterConnectionStatus): void {
    if (this.#closed) return;
    if (s.type === 'disconnected') {
      this.#log.warn({ event: 'nats-lost', onNatsLoss: this.#config.onNatsLoss }, 'NATS connection lost');
      if (this.#up.role === 'follower') {
        const hold = this.#config.onNatsLoss === 'hold';
        this.#up.followerState('reconnecting', hold ? 'NATS connection lost; waiting for it (onNatsLoss: hold)' : `NATS connection lost; connecting the upstream from this hub after ${this.lease.ttlMs} ms (onNatsLoss: local)`, {
          outage: true,
          cause: new WshubError('ERR_NATS_CONNECT', 'the hub lost its NATS connection'),
          since: this.#lastHeard(),
        });
        if (!hold) {
          clearTimeout(this.#localTimer);
          this.#localTimer = setTimeout(() => {
            if (this.#conn.connected || this.#up.role !== 'follower') return;
            this.#dropBusTopics();
            this.#up.connectHere(false, `NATS away for ${this.lease.ttlMs} ms: this hub connects the upstream itself (onNatsLoss: local)`, this.#lastHeard());
          }, this.lease.ttlMs);
        }
      }
    } else if (s.type === 'reconnected') {
      clearTimeout(this.#localTimer);
      this.#log.info({ event: 'nats-back' }, 'NATS connection back');
      this.#heardAt = performance.now();
      this.#applyHolderState();
    }
  }
}
