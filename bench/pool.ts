/**
 * Upstream pools (issue 13), measured against the limit-enforcing test
 * exchange (test/support/exchange.ts) in its own process and the whole hub in
 * another (fixtures/hub-host.ts), with the hub's defaults except the pool
 * keys a user of such an exchange would set.
 *
 * - **Storm**: 5 workers want 1,000 distinct topics (overlapping sets of
 *   300), each sending one SUBSCRIBE per topic as a naive worker does, to an
 *   exchange that allows 200 topics and 5 frames a second per connection.
 *   Measured: time from the first worker frame to every topic subscribed at
 *   the exchange and to every worker frame answered, frames and connections
 *   the exchange saw, limit closes (must be 0), and the first tick reaching
 *   every subscriber. The lower bound for one connection is
 *   topics / (R × topics per frame) = 1,000 / (5 × 50) = 4 s; sharding over
 *   five connections works in parallel, so the hub may beat it. Reference in
 *   the same run: the same 5 workers connected to the exchange directly —
 *   what a user gets without the hub (limit closes, topics never subscribed).
 * - **Failover**: three endpoints on one clock feed (a tick every 10 ms), the
 *   preferred one SIGKILLed: time from the kill to the first message of a
 *   later tick at a worker, with the default backoff and `failoverAfter`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { ExchangeProcess } from '../test/support/exchange-process.js';
import { ProcessGroup, sleep, type Fixture } from './lib/procs.js';
import { percentile, round, type BenchResult, type BenchScenario } from './scenario.js';

const SUBSCRIBE = '{"method":"SUBSCRIBE","params":["{topic}"],"id":{id}}';
const UNSUBSCRIBE = '{"method":"UNSUBSCRIBE","params":["{topic}"],"id":{id}}';
const LIMITS = { maxSubscriptions: 200, maxControlPerSecond: 5, maxConnectionsPerSecond: 10 };
const TOPICS = 1000;
const WORKERS = 5;
const PER_WORKER = 300;
const TOPICS_PER_FRAME = 50;
const TICK_MS = 10;

function topicsOf(worker: number): string[] {
  // Worker i wants 300 topics from 200·i: neighbours overlap by 100, the five cover t0…t999.
  return Array.from({ length: PER_WORKER }, (_, k) => `t${(worker * 200 + k) % TOPICS}`);
}

/** A worker in this process: one SUBSCRIBE per topic; counts answers, closes and the latest seq per topic. */
class Worker {
  readonly ws: WebSocket;
  answers = 0;
  errors = 0;
  closeCode: number | undefined;
  readonly seqs = new Map<string, number>();
  /** performance.now() of the first message whose seq is past `watchSeq`. */
  firstPast: number | undefined;
  watchSeq = Infinity;

  constructor(url: string) {
    this.ws = new WebSocket(url);
    this.ws.on('message', (raw: Buffer) => {
      const m = JSON.parse(raw.toString()) as { stream?: string; data?: { seq: number }; id?: unknown; error?: unknown };
      if (typeof m.stream === 'string' && m.data) {
        this.seqs.set(m.stream, m.data.seq);
        if (this.firstPast === undefined && m.data.seq > this.watchSeq) this.firstPast = performance.now();
      } else if (m.id !== undefined) {
        this.answers++;
        if (m.error !== undefined) this.errors++;
      }
    });
    this.ws.on('close', (code) => (this.closeCode = code));
    this.ws.on('error', () => undefined);
  }

  open(): Promise<this> {
    return new Promise((resolve, reject) => {
      this.ws.once('open', () => resolve(this));
      this.ws.once('error', reject);
    });
  }

  subscribeEach(topics: readonly string[]): void {
    let id = 1;
    for (const t of topics) this.ws.send(JSON.stringify({ method: 'SUBSCRIBE', params: [t], id: id++ }));
  }
}

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs: number, everyMs = 20): Promise<number> {
  const start = performance.now();
  for (;;) {
    if (await check()) return performance.now() - start;
    if (performance.now() - start > timeoutMs) throw new Error(`pool: ${what} not within ${timeoutMs} ms`);
    await sleep(everyMs);
  }
}

interface StormRun {
  subscribedMs: number;
  answeredMs: number;
  firstTickMs: number;
  connections: number;
  subscribeFrames: number;
  maxFramesInWindow: number;
  limitCloses: number;
  subscribedTwice: number;
  pacedFrames: number;
}

/** The whole hub in its own process on a Unix socket in a fresh temp dir. */
async function hubFor(group: ProcessGroup, upstream: Record<string, unknown>): Promise<{ hub: Fixture; url: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'wshub-pool-'));
  dirs.push(dir);
  const socket = join(dir, 'hub.sock');
  const hub = await group.forkHub({ listen: socket, logLevel: 'silent', upstreams: { feed: upstream } });
  return { hub, url: `ws+unix://${socket}:/u/feed` };
}

const dirs: string[] = [];

async function stormThroughHub(group: ProcessGroup): Promise<StormRun> {
  const exchange = await ExchangeProcess.start(LIMITS);
  try {
    const { hub, url } = await hubFor(group, {
      url: exchange.url, adapter: 'json', topic: 'stream', subscribe: SUBSCRIBE, unsubscribe: UNSUBSCRIBE,
      maxTopicsPerConnection: 200,
      // Under the exchange's 5: the client's own pings count there too, as Binance counts them.
      controlRate: { messages: 4, perMs: 1000 },
      connectRate: { connections: 5, perMs: 1000 },
    });
    const workers = await Promise.all(Array.from({ length: WORKERS }, () => new Worker(url).open()));
    const start = performance.now();
    workers.forEach((w, i) => w.subscribeEach(topicsOf(i)));
    const subscribedMs = await until('1,000 topics subscribed at the exchange', async () => Object.keys((await exchange.stats()).subscribes).length === TOPICS, 60_000).catch(async (err: Error) => {
      // Say what the exchange saw: a limit close is the usual cause.
      const st = await exchange.stats();
      throw new Error(`${err.message}: ${Object.keys(st.subscribes).length} topics, ${st.connections} connections, limit closes ${JSON.stringify(st.limitCloses)}`);
    });
    await until('every worker frame answered', () => workers.every((w) => w.answers === PER_WORKER), 30_000);
    const answeredMs = performance.now() - start;
    const tickStart = performance.now();
    const first = await exchange.tick();
    await until('the first tick at every subscriber', () => workers.every((w, i) => topicsOf(i).every((t) => w.seqs.get(t) === first[t])), 30_000, 5);
    const firstTickMs = performance.now() - tickStart;
    const stats = await exchange.stats();
    const snap = await hub.call<{ upstreams: Array<{ pool: { pacedFrames: number } }> }>('snapshot');
    for (const w of workers) w.ws.terminate();
    return {
      subscribedMs: round(subscribedMs, 1)!,
      answeredMs: round(answeredMs, 1)!,
      firstTickMs: round(firstTickMs, 1)!,
      connections: stats.connections,
      subscribeFrames: stats.subscribeFrames,
      maxFramesInWindow: stats.maxControlInWindow,
      limitCloses: stats.limitCloses.maxSubscriptions + stats.limitCloses.maxControlPerSecond,
      subscribedTwice: Object.values(stats.subscribes).filter((n) => n > 1).length,
      pacedFrames: snap.upstreams[0]?.pool.pacedFrames ?? 0,
    };
  } finally {
    await group.killAll();
    await exchange.kill();
  }
}

interface DirectRun {
  limitCloses: number;
  topicsSubscribed: number;
  workersClosed: number;
}

/** The same workers on the exchange itself: what the hub saves them from. */
async function stormDirect(): Promise<DirectRun> {
  const exchange = await ExchangeProcess.start(LIMITS);
  try {
    const workers = await Promise.all(Array.from({ length: WORKERS }, () => new Worker(exchange.url).open()));
    workers.forEach((w, i) => w.subscribeEach(topicsOf(i)));
    await until('every direct worker answered or closed', () => workers.every((w) => w.closeCode !== undefined || w.answers === PER_WORKER), 30_000);
    const stats = await exchange.stats();
    for (const w of workers) w.ws.terminate();
    return {
      limitCloses: stats.limitCloses.maxSubscriptions + stats.limitCloses.maxControlPerSecond,
      topicsSubscribed: Object.keys(stats.subscribes).length,
      workersClosed: workers.filter((w) => w.closeCode !== undefined).length,
    };
  } finally {
    await exchange.kill();
  }
}

interface FailoverRun {
  failoverMs: number;
  failovers: number;
}

async function failover(group: ProcessGroup): Promise<FailoverRun> {
  const clock = { startMs: Date.now(), intervalMs: TICK_MS };
  const endpoints = await Promise.all([0, 1, 2].map(() => ExchangeProcess.start({ clock })));
  try {
    const { hub, url } = await hubFor(group, {
      urls: endpoints.map((e) => e.url), adapter: 'json', topic: 'stream', subscribe: SUBSCRIBE, unsubscribe: UNSUBSCRIBE,
      sequenceField: 'data.seq', onUpstreamLoss: 'hold',
    });
    const worker = await new Worker(url).open();
    worker.subscribeEach(['btc', 'eth', 'sol']);
    await until('ticks from the preferred endpoint', () => worker.seqs.size === 3, 15_000);
    await sleep(200);
    // Every tick due by the kill came (or could have come) from the dead endpoint; a later one is the next endpoint's.
    const killedAt = performance.now();
    const dueAtKill = Math.floor((Date.now() - clock.startMs) / TICK_MS);
    worker.watchSeq = dueAtKill + 1;
    await endpoints[0]!.kill();
    await until('a message from the next endpoint', () => worker.firstPast !== undefined, 60_000, 5);
    const snap = await hub.call<{ upstreams: Array<{ pool: { failovers: number; endpoint: string } }> }>('snapshot');
    worker.ws.terminate();
    return { failoverMs: round(worker.firstPast! - killedAt, 1)!, failovers: snap.upstreams[0]?.pool.failovers ?? 0 };
  } finally {
    await group.killAll();
    await Promise.all(endpoints.map((e) => e.kill()));
  }
}

const median = (xs: number[]): number => percentile(xs, 50)!;

const scenario: BenchScenario = {
  name: 'pool',
  description: 'upstream pools against a limit-enforcing exchange: a 1,000-topic subscribe storm (vs the one-connection lower bound, and vs the same workers connected directly) and a failover across three endpoints',
  async run({ quick }): Promise<BenchResult> {
    const reps = quick ? 1 : 3;
    const group = new ProcessGroup();
    const log = (s: string): void => console.error(`  pool: ${s}`);
    const storms: StormRun[] = [];
    const failovers: FailoverRun[] = [];
    let direct: DirectRun | undefined;
    try {
      for (let i = 0; i < reps; i++) {
        const s = await stormThroughHub(group);
        log(`storm ${i + 1}: subscribed in ${s.subscribedMs} ms, answered in ${s.answeredMs} ms, ${s.subscribeFrames} frames on ${s.connections} connections, most in a window ${s.maxFramesInWindow}, limit closes ${s.limitCloses}, first tick ${s.firstTickMs} ms`);
        storms.push(s);
      }
      direct = await stormDirect();
      log(`direct: ${direct.workersClosed}/${WORKERS} workers closed by the exchange (${direct.limitCloses} limit closes), ${direct.topicsSubscribed} of ${TOPICS} topics subscribed`);
      for (let i = 0; i < reps; i++) {
        const f = await failover(group);
        log(`failover ${i + 1}: kill → next endpoint's first message ${f.failoverMs} ms`);
        failovers.push(f);
      }
    } finally {
      await group.killAll();
      for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
    }
    if (!direct) throw new Error('pool: the direct reference did not run');
    const boundMs = (TOPICS / (LIMITS.maxControlPerSecond * TOPICS_PER_FRAME)) * 1000;
    const subscribedMs = median(storms.map((s) => s.subscribedMs));
    const limitCloses = storms.reduce((a, s) => a + s.limitCloses, 0);
    const twice = storms.reduce((a, s) => a + s.subscribedTwice, 0);
    const failoverMs = median(failovers.map((f) => f.failoverMs));
    return {
      summary: `1,000-topic storm: all subscribed in ${subscribedMs} ms (×${round(subscribedMs / boundMs, 2)} of the one-connection bound ${boundMs} ms), limit closes ${limitCloses}, topics subscribed twice ${twice}; directly: ${direct.workersClosed}/${WORKERS} workers closed, ${direct.topicsSubscribed}/${TOPICS} topics; failover kill → next endpoint ${failoverMs} ms`,
      limits: LIMITS,
      boundMs,
      storm: { subscribedMs, answeredMs: median(storms.map((s) => s.answeredMs)), limitCloses, subscribedTwice: twice, runs: storms },
      direct,
      failover: { medianMs: failoverMs, runs: failovers },
    };
  },
};

export default scenario;
