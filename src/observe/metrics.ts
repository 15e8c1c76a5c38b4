/**
 * Prometheus metrics at `/metrics`, with prom-client and a registry per hub
 * (never the global one: two hubs in one process must not share series).
 *
 * Nothing is counted here. Every value is read at scrape time from one
 * {@link ObservedStats} snapshot (taken once per scrape), so `/metrics` and
 * `/status` can never disagree.
 *
 * Cardinality is bounded: per-topic series exist for the first
 * `maxTopicLabels` topics of each upstream (in the order they were first
 * seen, so a topic keeps its series for the process's life and counters stay
 * monotonic); every later topic is summed under `topic="_other"`.
 */
import { Counter, Gauge, Histogram, Registry, type MetricObjectWithValues, type MetricValueWithName } from 'prom-client';
import { z } from '../zod.js';
import { OTHER_TOPIC } from '../hub/route.js';
import { parseOptions } from '../options.js';
import { CONNECT_PHASE_BUCKETS_MS, CONNECT_PHASES } from '../upstream/phases.js';
import type { PhaseHistogram, UpstreamState } from '../upstream/types.js';
import type { ObservedStats, TopicTraffic } from './snapshot.js';

/** Per-topic label values per upstream before the rest go to `_other`. @default 50 */
export const DEFAULT_MAX_TOPIC_LABELS = 50;

export interface MetricsOptions {
  /** @default 50 ({@link DEFAULT_MAX_TOPIC_LABELS}) */
  maxTopicLabels?: number;
  /** Prefix of every metric name. @default 'wshub_' */
  prefix?: string;
}

const metricsOptionsSchema = z.strictObject({
  maxTopicLabels: z.number().int().min(0).default(DEFAULT_MAX_TOPIC_LABELS),
  prefix: z.string().regex(/^[a-zA-Z_:][a-zA-Z0-9_:]*$/, 'a Prometheus name prefix').default('wshub_'),
});

const STATES: readonly UpstreamState[] = ['idle', 'connecting', 'open', 'reconnecting', 'closed'];

type Labels = Record<string, string>;
type Emit = (labels: Labels, value: number) => void;
type Fill = (s: ObservedStats, emit: Emit) => void;
/** A cumulative histogram as the snapshot holds one (bounds and sum in `unit`s). */
type EmitHistogram = (labels: Labels, histogram: PhaseHistogram) => void;
type FillHistogram = (s: ObservedStats, emit: EmitHistogram) => void;

/**
 * A histogram whose samples come whole from the snapshot at scrape time.
 * prom-client's own Histogram only accumulates `observe()` calls, and
 * nothing is counted in this layer; so `get()` (what the registry renders,
 * through `getForPromString()` when a metric has one) is replaced and the
 * parent's state stays empty. Bounds and sums arrive in ms and leave in
 * seconds, as Prometheus names them.
 */
class SnapshotHistogram extends Histogram<string> {
  readonly #name: string;
  readonly #help: string;
  readonly #fill: (emit: EmitHistogram) => void;

  constructor(name: string, help: string, labelNames: string[], registry: Registry, fill: (emit: EmitHistogram) => void) {
    super({ name, help, labelNames, buckets: CONNECT_PHASE_BUCKETS_MS.map((ms) => ms / 1000), registers: [registry] });
    this.#name = name;
    this.#help = help;
    this.#fill = fill;
  }

  override get(): Promise<MetricObjectWithValues<MetricValueWithName<string>>> {
    const name = this.#name;
    const values: Array<MetricValueWithName<string>> = [];
    this.#fill((labels, h) => {
      if (h.counts.length !== h.buckets.length) return;
      h.buckets.forEach((ms, i) => values.push({ metricName: `${name}_bucket`, labels: { ...labels, le: ms / 1000 }, value: h.counts[i] ?? 0 }));
      values.push({ metricName: `${name}_bucket`, labels: { ...labels, le: '+Inf' }, value: h.count });
      values.push({ metricName: `${name}_sum`, labels, value: h.sum / 1000 });
      values.push({ metricName: `${name}_count`, labels, value: h.count });
    });
    // prom-client's typings say `type` is a numeric enum; at run time (and in what the registry prints) it is the string.
    const metric = { name, help: this.#help, type: 'histogram', values, aggregator: 'sum' };
    return Promise.resolve(metric as unknown as MetricObjectWithValues<MetricValueWithName<string>>);
  }

  /** What the registry renders when present (prom-client's Histogram has one): the same samples. */
  getForPromString(): Promise<MetricObjectWithValues<MetricValueWithName<string>>> {
    return this.get();
  }
}

export class HubMetrics {
  readonly registry = new Registry();
  readonly options: Readonly<Required<MetricsOptions>>;
  readonly #source: () => ObservedStats;
  /** The snapshot of the scrape in progress; every collect() of one scrape reads the same one. */
  #current: ObservedStats | undefined;

  constructor(source: () => ObservedStats, options: MetricsOptions = {}) {
    this.#source = source;
    this.options = parseOptions(metricsOptionsSchema, options, 'metrics');
    this.#define();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The text exposition of one snapshot. */
  async render(snapshot: ObservedStats = this.#source()): Promise<string> {
    this.#current = snapshot;
    try {
      return await this.registry.metrics();
    } finally {
      this.#current = undefined;
    }
  }

  #snapshot(): ObservedStats {
    return this.#current ?? this.#source();
  }

  #gauge(name: string, help: string, labelNames: string[], fill: Fill): void {
    const snapshot = (): ObservedStats => this.#snapshot();
    new Gauge({
      name: this.options.prefix + name,
      help,
      labelNames,
      registers: [this.registry],
      collect() {
        this.reset();
        fill(snapshot(), (labels, value) => {
          if (Number.isFinite(value)) this.set(labels, value);
        });
      },
    });
  }

  #counter(name: string, help: string, labelNames: string[], fill: Fill): void {
    const snapshot = (): ObservedStats => this.#snapshot();
    new Counter({
      name: this.options.prefix + name,
      help,
      labelNames,
      registers: [this.registry],
      collect() {
        this.reset();
        fill(snapshot(), (labels, value) => {
          if (Number.isFinite(value) && value >= 0) this.inc(labels, value);
        });
      },
    });
  }

  #histogram(name: string, help: string, labelNames: string[], fill: FillHistogram): void {
    new SnapshotHistogram(this.options.prefix + name, help, labelNames, this.registry, (emit) => fill(this.#snapshot(), emit));
  }

  #define(): void {
    const perUpstream = (pick: (u: ObservedStats['upstreams'][number]) => number | undefined): Fill => (s, emit) => {
      for (const u of s.upstreams) {
        const v = pick(u);
        if (v !== undefined) emit({ upstream: u.name }, v);
      }
    };
    const byKey = (label: string, pick: (u: ObservedStats['upstreams'][number]) => Record<string, number>): Fill => (s, emit) => {
      for (const u of s.upstreams) for (const [k, v] of Object.entries(pick(u))) emit({ upstream: u.name, [label]: k }, v);
    };
    const topics = (pick: (t: TopicTraffic) => number): Fill => (s, emit) => {
      for (const u of s.upstreams) for (const t of this.#capTraffic(u.traffic)) emit({ upstream: u.name, topic: t.topic }, pick(t));
    };

    // ── hub ──────────────────────────────────────────────────────────────
    this.#gauge('start_time_seconds', 'When the hub started, in seconds since the epoch.', [], (s, emit) => emit({}, s.startedAt / 1000));
    this.#gauge('ready', '1 when /healthz answers 200 (see --ready-when), else 0.', [], (s, emit) => emit({}, s.health.ok ? 1 : 0));
    this.#gauge('event_loop_delay_seconds', 'Event-loop delay over the last measuring window (perf_hooks.monitorEventLoopDelay).', ['stat'], (s, emit) => {
      if (!s.eventLoop) return;
      emit({ stat: 'mean' }, s.eventLoop.meanSeconds);
      emit({ stat: 'p50' }, s.eventLoop.p50Seconds);
      emit({ stat: 'p99' }, s.eventLoop.p99Seconds);
      emit({ stat: 'max' }, s.eventLoop.maxSeconds);
    });

    // ── upstream connections ────────────────────────────────────────────
    this.#gauge('upstream_state', 'Upstream connection state: 1 for the current state, 0 for the others.', ['upstream', 'state'], (s, emit) => {
      for (const u of s.upstreams) for (const state of STATES) emit({ upstream: u.name, state }, u.client.state === state ? 1 : 0);
    });
    this.#counter('upstream_connections_total', 'Successful upstream opens.', ['upstream'], perUpstream((u) => u.client.connections));
    this.#counter('upstream_reconnects_total', 'Upstream reconnections: opens after an earlier open (failed attempts are not counted).', ['upstream'], perUpstream((u) => u.client.reconnects));
    this.#counter('upstream_disconnects_total', 'Open upstream connections ended by a failure, by its error code.', ['upstream', 'cause'], byKey('cause', (u) => u.client.disconnectsByCause));
    this.#counter('upstream_failed_attempts_total', 'Upstream connection attempts that failed before opening, by error code.', ['upstream', 'cause'], byKey('cause', (u) => u.client.failedAttemptsByCause));
    this.#gauge('upstream_seconds_since_open', 'Seconds since the upstream last opened (absent until it first opens).', ['upstream'], (s, emit) => {
      for (const u of s.upstreams) if (u.client.lastOpenAt !== undefined) emit({ upstream: u.name }, Math.max(0, s.now - u.client.lastOpenAt) / 1000);
    });
    this.#gauge('upstream_rtt_seconds', 'Round-trip time of the last answered ping.', ['upstream'], perUpstream((u) => (u.client.lastRttMs === undefined ? undefined : u.client.lastRttMs / 1000)));
    this.#counter('upstream_received_messages_total', 'Messages received from the upstream.', ['upstream'], perUpstream((u) => u.client.messagesIn));
    this.#counter('upstream_received_bytes_total', 'Payload bytes received from the upstream.', ['upstream'], perUpstream((u) => u.client.bytesIn));
    this.#counter('upstream_sent_messages_total', 'Messages sent to the upstream (worker sends, subscribes).', ['upstream'], perUpstream((u) => u.client.messagesOut));
    this.#counter('upstream_sent_bytes_total', 'Payload bytes sent to the upstream.', ['upstream'], perUpstream((u) => u.client.bytesOut));
    this.#gauge('upstream_queue_messages', 'Messages waiting to be sent while the upstream is not open.', ['upstream'], perUpstream((u) => u.client.queue.messages));
    this.#gauge('upstream_queue_bytes', 'Bytes waiting to be sent while the upstream is not open.', ['upstream'], perUpstream((u) => u.client.queue.bytes));
    this.#histogram('upstream_connect_phase_seconds', 'How long each connect phase (dns, tcp, tls, upgrade) of successful upstream connection attempts took.',
      ['upstream', 'phase'], (s, emit) => {
        for (const u of s.upstreams) {
          const phases = u.client.connectPhases;
          if (phases) for (const phase of CONNECT_PHASES) emit({ upstream: u.name, phase }, phases[phase]);
        }
      });
    this.#counter('upstream_dropped_messages_total', 'Messages to the upstream not sent, by reason (queue full, expired, ...).', ['upstream', 'reason'], byKey('reason', (u) => u.client.dropped));

    // ── pools (docs/pools.md) ───────────────────────────────────────────
    this.#counter('upstream_failovers_total', 'Moves to the next endpoint of an upstream pool.', ['upstream'], perUpstream((u) => u.pool.failovers));
    this.#counter('upstream_failbacks_total', 'Moves back to a more preferred endpoint (make-before-break).', ['upstream'], perUpstream((u) => u.pool.failbacks));
    this.#gauge('upstream_shards', 'Connections the upstream pool uses now (more than one when topics are sharded).', ['upstream'], perUpstream((u) => u.pool.connections.length));
    this.#counter('upstream_paced_frames_total', 'Frames the hub sent upstream that waited for their connection\'s controlRate.', ['upstream'], perUpstream((u) => u.pool.pacedFrames));
    this.#gauge('upstream_endpoint_current', '1 for the endpoint the pool is on, 0 for its others (URLs redacted).', ['upstream', 'endpoint'], (s, emit) => {
      for (const u of s.upstreams) for (const e of u.pool.endpoints) emit({ upstream: u.name, endpoint: e.url }, e.current ? 1 : 0);
    });

    // ── routing ─────────────────────────────────────────────────────────
    this.#gauge('sessions', 'Sessions attached to the upstream.', ['upstream'], perUpstream((u) => u.sessions));
    this.#gauge('topics', 'Topics with at least one subscriber.', ['upstream'], perUpstream((u) => u.topics.length));
    this.#counter('routed_messages_total', 'Upstream messages handed to the router.', ['upstream'], perUpstream((u) => u.messagesIn));
    this.#counter('deliveries_total', 'Copies of upstream messages delivered to sessions (one message to 16 sessions counts 16).', ['upstream'], perUpstream((u) => u.deliveries));
    this.#counter('unrouted_messages_total', 'Upstream messages no session was subscribed to.', ['upstream'], perUpstream((u) => u.unrouted));
    this.#counter('session_errors_total', 'Bad input from sessions, by error code.', ['upstream', 'code'], byKey('code', (u) => u.sessionErrors));
    this.#counter('topic_messages_total', 'Upstream messages per topic.', ['upstream', 'topic'], topics((t) => t.messages));
    this.#counter('topic_received_bytes_total', 'Upstream payload bytes per topic.', ['upstream', 'topic'], topics((t) => t.bytes));
    this.#counter('topic_deliveries_total', 'Copies delivered to sessions per topic.', ['upstream', 'topic'], topics((t) => t.deliveries));
    this.#counter('topic_delivered_bytes_total', 'Payload bytes delivered to sessions per topic.', ['upstream', 'topic'], topics((t) => t.deliveredBytes));
    this.#gauge('topic_subscribers', 'Subscribers per topic (the largest topics; the rest summed under topic="_other").', ['upstream', 'topic'], (s, emit) => {
      for (const u of s.upstreams) {
        const sorted = [...u.topics].sort((a, b) => b.subscribers - a.subscribers);
        let other = 0;
        sorted.forEach((t, i) => {
          if (i < this.options.maxTopicLabels && t.topic !== OTHER_TOPIC) emit({ upstream: u.name, topic: t.topic }, t.subscribers);
          else other += t.subscribers;
        });
        if (sorted.length > this.options.maxTopicLabels) emit({ upstream: u.name, topic: OTHER_TOPIC }, other);
      }
    });

    this.#defineCluster();

    // ── worker connections ──────────────────────────────────────────────
    this.#gauge('connections', 'Attached worker connections.', ['mode', 'transport'], (s, emit) => {
      const counts = new Map<string, { mode: string; transport: string; n: number }>();
      for (const mode of ['transparent', 'envelope']) for (const transport of ['unix', 'tcp']) counts.set(`${mode}/${transport}`, { mode, transport, n: 0 });
      for (const c of s.connections) {
        const entry = counts.get(`${c.mode}/${c.transport}`);
        if (entry) entry.n++;
      }
      for (const { mode, transport, n } of counts.values()) emit({ mode, transport }, n);
    });
    this.#gauge('queue_messages', 'Messages waiting in worker connections\' queues, summed.', [], (s, emit) => emit({}, s.connections.reduce((a, c) => a + c.queuedMessages, 0)));
    this.#gauge('queue_bytes', 'Bytes waiting in worker connections\' queues, summed.', [], (s, emit) => emit({}, s.connections.reduce((a, c) => a + c.queuedBytes, 0)));
    this.#gauge('queue_max_bytes', 'Bytes waiting in the deepest worker connection queue.', [], (s, emit) => emit({}, s.connections.reduce((a, c) => Math.max(a, c.queuedBytes), 0)));
    this.#counter('dropped_messages_total', 'Messages not delivered to workers, by reason (slow-consumer policy, session closed).', ['reason'], (s, emit) => {
      for (const [reason, n] of Object.entries(s.dropped)) emit({ reason }, n);
    });

    // ── listener ────────────────────────────────────────────────────────
    this.#gauge('server_sessions', 'Open sessions on the listener.', [], (s, emit) => emit({}, s.server.open));
    this.#gauge('server_handshaking', 'Sockets accepted and not yet upgraded.', [], (s, emit) => emit({}, s.server.handshaking));
    this.#gauge('server_fd_exhausted', '1 while accept() fails for lack of file descriptors.', [], (s, emit) => emit({}, s.server.fdExhausted ? 1 : 0));
    this.#counter('server_accepted_total', 'Sessions accepted by the listener.', [], (s, emit) => emit({}, s.server.accepted));
    this.#counter('handshakes_rejected_total', 'Peers refused before or during the handshake, by error code.', ['reason'], (s, emit) => {
      for (const [reason, n] of Object.entries(s.server.rejected)) emit({ reason }, n);
    });
    this.#counter('server_errors_total', 'Listener errors by code (sessions ended by a violation, a limit or a reset; fd exhaustion).', ['code'], (s, emit) => {
      for (const [code, n] of Object.entries(s.server.errors)) emit({ code }, n);
    });
    this.#counter('server_dropped_messages_total', 'Messages from workers received but not delivered to the hub, by reason.', ['reason'], (s, emit) => {
      for (const [reason, n] of Object.entries(s.server.dropped)) emit({ reason }, n);
    });
  }

  /** Cluster mode (docs/cluster.md): absent without `cluster:`. */
  #defineCluster(): void {
    type Member = NonNullable<ObservedStats['cluster']>['upstreams'][number];
    const perMember = (pick: (m: Member) => number | undefined): Fill => (s, emit) => {
      for (const m of s.cluster?.upstreams ?? []) {
        const v = pick(m);
        if (v !== undefined) emit({ upstream: m.upstream }, v);
      }
    };
    // Labelled by the cluster's name: an unlabelled series would be printed (as 0) even without a cluster.
    this.#gauge('cluster_nats_connected', '1 while the hub\'s NATS connection is up.', ['cluster'], (s, emit) => { if (s.cluster) emit({ cluster: s.cluster.name }, s.cluster.nats.connected ? 1 : 0); });
    this.#gauge('cluster_nats_rtt_seconds', 'Round trip to the NATS server (measured every 5 s).', ['cluster'], (s, emit) => {
      const ms = s.cluster?.nats.rttMs;
      if (s.cluster && ms !== undefined) emit({ cluster: s.cluster.name }, ms / 1000);
    });
    this.#counter('cluster_nats_disconnects_total', 'Times the NATS connection was lost.', ['cluster'], (s, emit) => { if (s.cluster) emit({ cluster: s.cluster.name }, s.cluster.nats.disconnects); });
    this.#gauge('cluster_role', 'This hub\'s role for the upstream: 1 for the current one (holder, follower, local), 0 for the others.', ['upstream', 'role'], (s, emit) => {
      for (const m of s.cluster?.upstreams ?? []) for (const role of ['holder', 'follower', 'local']) emit({ upstream: m.upstream, role }, m.role === role ? 1 : 0);
    });
    this.#gauge('cluster_epoch', 'Lease epoch of the holder this hub last saw.', ['upstream'], perMember((m) => m.holder?.epoch));
    this.#gauge('cluster_hubs', 'Hubs seen in the interest view (reported by the holder).', ['upstream'], perMember((m) => (m.role === 'holder' ? m.hubs.length : undefined)));
    this.#counter('cluster_takeovers_total', 'Times this hub acquired the upstream\'s lease.', ['upstream'], perMember((m) => m.lease.acquisitions));
    this.#counter('cluster_fences_total', 'Times this hub\'s holding ran out before a renew succeeded (it stopped acting as the holder).', ['upstream'], perMember((m) => m.lease.fences));
    this.#counter('cluster_fenced_publishes_prevented_total', 'Messages this hub did not publish because its lease had run out (a fenced holder\'s).', ['upstream'], perMember((m) => m.bus.publishRefusedNotHolder));
    this.#counter('cluster_published_messages_total', 'Upstream messages this hub published to the other hubs (as the holder).', ['upstream'], perMember((m) => m.bus.published));
    this.#counter('cluster_received_messages_total', 'Messages and answers this hub received from the holder over NATS.', ['upstream'], perMember((m) => m.bus.received + m.bus.unicastReceived));
    this.#counter('cluster_missed_messages_total', 'Messages of subscribed subjects NATS never delivered to this hub (jumps in the per-subject sequence).', ['upstream'], perMember((m) => m.bus.missed));
    this.#counter('cluster_stale_dropped_total', 'Messages from a replaced holder (older epoch) dropped.', ['upstream'], perMember((m) => m.bus.droppedStaleEpoch));
    this.#counter('cluster_forwarded_total', 'Worker frames forwarded to the holder, by result.', ['upstream', 'result'], (s, emit) => {
      for (const m of s.cluster?.upstreams ?? []) {
        emit({ upstream: m.upstream, result: 'ok' }, m.requests.forwarded);
        emit({ upstream: m.upstream, result: 'failed' }, m.requests.forwardFailed);
      }
    });
  }

  /** The first `maxTopicLabels` topics by first appearance, then one `_other` summing the rest. */
  #capTraffic(traffic: TopicTraffic[]): TopicTraffic[] {
    const max = this.options.maxTopicLabels;
    const out: TopicTraffic[] = [];
    let other: TopicTraffic | undefined;
    for (const t of traffic) {
      if (t.topic !== OTHER_TOPIC && out.length < max) {
        out.push(t);
        continue;
      }
      other ??= { topic: OTHER_TOPIC, messages: 0, bytes: 0, deliveries: 0, deliveredBytes: 0 };
      other.messages += t.messages;
      other.bytes += t.bytes;
      other.deliveries += t.deliveries;
      other.deliveredBytes += t.deliveredBytes;
    }
    if (other) out.push(other);
    return out;
  }
}
