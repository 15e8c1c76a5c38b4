/**
 * The `json` adapter's book of upstream subscriptions: one upstream subscribe
 * per topic however many sessions want it, and each topic's upstream answer
 * recorded and followed.
 *
 * A topic is `pending` (a subscribe is on its way, or will be sent when the
 * upstream opens) or `live` (the upstream accepted it). Sessions join a topic
 * at once — data may follow the upstream's acceptance immediately — and a
 * session's subscribe frame is answered when every topic it named has an
 * answer: with the upstream's own answer (its id replaced by the session's),
 * or the `ack` template when the topic was live already. Then, and only then,
 * the snapshot it asked for (`?snapshot=1`).
 *
 * A refusal (an answer whose `errorField` is present and not null/false)
 * reaches every session that asked, each with its own id; the topic is not
 * live, its subscribers leave it (envelope sessions get an `error`), nothing
 * is ever unsubscribed that was not subscribed, and a later ask tries again.
 * A topic left by its last subscriber is unsubscribed only once live; if it
 * was still pending, the unsubscribe follows the acceptance. An upstream that
 * answers no subscribe within `timeoutMs` is taken to have accepted it (some
 * feeds never acknowledge).
 *
 * Subscribes and unsubscribes leave as control intents: the pool places each
 * topic on a connection, paces the frames with the connection's control rate
 * and may combine waiting intents into one frame; `render` builds that frame
 * (and only then is a hub id spent). Each connection that (re)opens replays
 * exactly its own topics.
 */
import { WshubError } from '../errors.js';
import { objectMembers, splice } from './json-scan.js';
import { merge } from './outcome.js';
import type { FrameTemplate } from './template.js';
import type { AdapterHost, ControlIntent, Membership, Outcome, Reply, SessionHandle, UpstreamFrame } from './types.js';

export interface TopicBookOptions {
  subscribe: FrameTemplate;
  unsubscribe: FrameTemplate;
  ack: string;
  idField: string;
  errorField: string;
  timeoutMs: number;
  newId: () => number;
  armSweeper: () => void;
}

export interface JsonTopicStats {
  upstreamTopics: number;
  upstreamSubscribes: number;
  upstreamUnsubscribes: number;
  subscribeRefused: number;
  resubscribeRefused: number;
}

/** A session's subscribe or unsubscribe frame, answered once every part of it has an answer. */
interface Join {
  readonly session: SessionHandle;
  readonly idText: string | undefined;
  readonly topics: string[];
  /** Topics (subscribe), or unsubscribe intents and then their hub ids, still without an answer. */
  readonly waitingOn: Set<unknown>;
  /** The last upstream answer seen for it, and the first refusal. */
  answer: Buffer | undefined;
  failure: Buffer | undefined;
  readonly failed: string[];
  /** An envelope `sub`: acknowledged by the envelope layer, told only of a refusal. */
  readonly envelope: boolean;
  readonly snapshot: boolean;
}

interface TopicState {
  status: 'pending' | 'live';
  /** The subscribe in flight for it. */
  hubId: number | undefined;
  waiting: Join[];
  /** Its last subscriber left while pending: unsubscribe once accepted. */
  leaving: boolean;
}

type Pending =
  | { kind: 'subscribe'; topics: string[]; deadline: number; replay: boolean }
  | { kind: 'unsubscribe'; topics: string[]; deadline: number; joins: Join[] };

/** What an intent of the book carries back when it is rendered or dropped. */
interface IntentRef {
  readonly join: Join | undefined;
  readonly replay: boolean;
  /** The token a waiting unsubscribe join holds until the intent gets a hub id. */
  readonly token: object;
}

export class TopicBook {
  readonly #host: AdapterHost;
  readonly #o: TopicBookOptions;
  readonly #topics = new Map<string, TopicState>();
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  #subscribes = 0;
  #unsubscribes = 0;
  #refused = 0;
  #resubscribeRefused = 0;

  constructor(host: AdapterHost, options: TopicBookOptions) {
    this.#host = host;
    this.#o = options;
  }

  /** Hub-unique ids for every frame the adapter sends (requests share the sequence). */
  nextId(): number {
    const id = this.#nextId;
    this.#nextId = id >= Number.MAX_SAFE_INTEGER ? 1 : id + 1;
    return id;
  }

  get waiting(): boolean {
    return this.#pending.size > 0;
  }

  sessionSubscribe(session: SessionHandle, topics: readonly string[], idText: string | undefined): Outcome {
    return this.#join(session, unique(topics), idText, false, session.wantsSnapshot);
  }

  envelopeSubscribe(session: SessionHandle, topic: string, snapshot: boolean): Outcome {
    return this.#join(session, [topic], undefined, true, snapshot);
  }

  sessionUnsubscribe(session: SessionHandle, topics: readonly string[], idText: string | undefined): Outcome {
    const join = newJoin(session, idText, [], false, false);
    const leave: Membership[] = [];
    const gone: string[] = [];
    for (const topic of unique(topics)) {
      if (!this.#host.isSubscribed(session, topic)) continue;
      leave.push({ session, topic });
      if (this.#host.subscribers(topic) === 1) gone.push(topic);
    }
    const control = this.#release(gone, join);
    const outcome: Outcome = { leave, control };
    if (join.waitingOn.size === 0) Object.assign(outcome, this.#complete(join));
    return outcome;
  }

  /** Topics whose last subscriber left with its session. */
  abandoned(topics: readonly string[]): Outcome | undefined {
    const control = this.#release(topics, undefined);
    return control.length > 0 ? { control } : undefined;
  }

  /** A session left: it waits for nothing any more. */
  forget(session: SessionHandle): void {
    for (const state of this.#topics.values()) {
      if (state.waiting.length > 0) state.waiting = state.waiting.filter((j) => j.session !== session);
    }
  }

  /**
   * A connection (re)opened: every topic someone wants is subscribed again —
   * of `only` (the topics that connection carries), else all.
   */
  replay(only?: readonly string[]): Outcome | undefined {
    const wanted = new Set<string>();
    for (const topic of only ?? this.#host.liveTopics()) if (this.#host.subscribers(topic) > 0) wanted.add(topic);
    for (const [topic, state] of this.#topics) if (state.waiting.length > 0 && (!only || only.includes(topic))) wanted.add(topic);
    if (!only) for (const topic of this.#topics.keys()) if (!wanted.has(topic)) this.#topics.delete(topic);
    if (wanted.size === 0) return undefined;
    const topics = [...wanted];
    for (const topic of topics) {
      const state = this.#topics.get(topic) ?? { status: 'pending', hubId: undefined, waiting: [], leaving: false };
      state.status = 'pending';
      state.hubId = undefined;
      this.#topics.set(topic, state);
    }
    return { control: [this.#intent('subscribe', topics, undefined, true)] };
  }

  /**
   * A connection went down: it forgets its subscriptions — of `only` (the
   * topics it carried), else all; its in-flight unsubscribes are done.
   */
  down(only?: readonly string[]): Outcome | undefined {
    const outcome: Outcome = {};
    for (const [hubId, pending] of this.#pending) {
      if (only && !pending.topics.some((t) => only.includes(t))) continue;
      this.#pending.delete(hubId);
      if (pending.kind === 'unsubscribe') for (const join of pending.joins) merge(outcome, this.#unsubscribed(join, hubId, undefined));
    }
    for (const [topic, state] of this.#topics) {
      if (only && !only.includes(topic)) continue;
      if (state.leaving) this.#topics.delete(topic);
      else {
        state.status = 'pending';
        state.hubId = undefined;
      }
    }
    return outcome;
  }

  /**
   * Build the frame for intents the pool combined (or split); a hub id is
   * spent only now. A subscribe carries only topics still wanted (a topic its
   * subscribers left while the intent waited is dropped from it); undefined
   * when none is left.
   */
  render(kind: ControlIntent['kind'], parts: readonly ControlIntent[]): UpstreamFrame | undefined {
    const refs = parts.map((p) => p.ref as IntentRef | undefined);
    const all = parts.flatMap((p) => p.topics);
    const topics = kind === 'subscribe' ? all.filter((t) => this.#topics.get(t)?.status === 'pending') : all;
    if (topics.length === 0) {
      return undefined;
    }
    const hubId = this.nextId();
    const deadline = Date.now() + this.#o.timeoutMs;
    if (kind === 'subscribe') {
      this.#pending.set(hubId, { kind, topics, deadline, replay: refs.some((r) => r?.replay === true) });
      for (const topic of topics) {
        const state = this.#topics.get(topic);
        if (state) state.hubId = hubId;
      }
      this.#subscribes++;
    } else {
      const joins: Join[] = [];
      for (const ref of refs) {
        if (!ref?.join) continue;
        ref.join.waitingOn.delete(ref.token);
        ref.join.waitingOn.add(hubId);
        if (!joins.includes(ref.join)) joins.push(ref.join);
      }
      this.#pending.set(hubId, { kind, topics, deadline, joins });
      this.#unsubscribes++;
    }
    this.#o.armSweeper();
    const template = kind === 'subscribe' ? this.#o.subscribe : this.#o.unsubscribe;
    return { data: template.render(topics, hubId), isBinary: false, tag: hubId };
  }

  /** Intents the pool dropped unsent: a subscribe is replayed by its connection's next open; an unsubscribe is moot. */
  dropped(parts: readonly ControlIntent[]): Outcome | undefined {
    const outcome: Outcome = {};
    for (const part of parts) {
      const ref = part.ref as IntentRef | undefined;
      if (part.kind !== 'unsubscribe' || !ref?.join) continue;
      ref.join.waitingOn.delete(ref.token);
      if (ref.join.waitingOn.size === 0) merge(outcome, this.#complete(ref.join));
    }
    return outcome;
  }

  /** Topics whose subscribe is not answered yet (sent, or waiting to be sent). */
  pendingSubscribes(): number {
    let n = 0;
    for (const state of this.#topics.values()) if (state.status === 'pending') n++;
    return n;
  }

  /** Topics one frame can carry: the template takes a list, or one topic. */
  get topicsPerFrame(): number {
    return this.#o.subscribe.multiTopic && this.#o.unsubscribe.multiTopic ? Infinity : 1;
  }

  /** One of the book's frames never reached the upstream: the topics stay pending and go with the next replay. */
  refused(hubId: number): Outcome | undefined {
    const pending = this.#pending.get(hubId);
    if (!pending) return undefined;
    this.#pending.delete(hubId);
    if (pending.kind === 'subscribe') {
      for (const topic of pending.topics) {
        const state = this.#topics.get(topic);
        if (state?.hubId === hubId) state.hubId = undefined;
      }
      return undefined;
    }
    const outcome: Outcome = {};
    for (const join of pending.joins) merge(outcome, this.#unsubscribed(join, hubId, undefined));
    return outcome;
  }

  /** An upstream message whose id is one of the book's; undefined when it is not. */
  upstreamAnswer(hubId: number, data: Buffer, message: Record<string, unknown>): Outcome | undefined {
    const pending = this.#pending.get(hubId);
    if (!pending) return undefined;
    this.#pending.delete(hubId);
    const errorValue = message[this.#o.errorField];
    const refusal = errorValue !== undefined && errorValue !== null && errorValue !== false;
    if (pending.kind === 'unsubscribe') {
      const outcome: Outcome = { publish: { to: 'hub' } };
      for (const join of pending.joins) merge(outcome, this.#unsubscribed(join, hubId, data));
      return outcome;
    }
    const outcome: Outcome = { publish: { to: 'hub' }, replies: [], snapshots: [], leave: [], errors: [], upstream: [] };
    for (const topic of pending.topics) {
      const state = this.#topics.get(topic);
      if (!state || state.hubId !== hubId) continue;
      state.hubId = undefined;
      if (refusal) this.#onRefused(topic, state, pending.replay, data, outcome);
      else this.#onAccepted(topic, state, data, outcome);
    }
    return outcome;
  }

  /** Subscribes the upstream never answered are taken as accepted; unsubscribes as done. */
  sweep(now: number): Outcome | undefined {
    let outcome: Outcome | undefined;
    for (const [hubId, pending] of this.#pending) {
      if (pending.deadline > now) continue;
      this.#pending.delete(hubId);
      outcome ??= { replies: [], snapshots: [], leave: [], errors: [], upstream: [] };
      if (pending.kind === 'unsubscribe') {
        for (const join of pending.joins) merge(outcome, this.#unsubscribed(join, hubId, undefined));
        continue;
      }
      for (const topic of pending.topics) {
        const state = this.#topics.get(topic);
        if (state?.hubId !== hubId) continue;
        state.hubId = undefined;
        this.#onAccepted(topic, state, undefined, outcome);
      }
    }
    return outcome;
  }

  stats(): JsonTopicStats {
    return { upstreamTopics: this.#topics.size, upstreamSubscribes: this.#subscribes, upstreamUnsubscribes: this.#unsubscribes, subscribeRefused: this.#refused, resubscribeRefused: this.#resubscribeRefused };
  }

  // ── internals ──────────────────────────────────────────────────────────

  #join(session: SessionHandle, topics: string[], idText: string | undefined, envelope: boolean, snapshot: boolean): Outcome {
    const join = newJoin(session, idText, topics, envelope, snapshot);
    const memberships: Membership[] = [];
    const fresh: string[] = [];
    for (const topic of topics) {
      if (!this.#host.isSubscribed(session, topic)) memberships.push({ session, topic });
      const state = this.#topics.get(topic);
      if (state?.status === 'live') continue;
      join.waitingOn.add(topic);
      if (state) {
        state.leaving = false;
        state.waiting.push(join);
      } else {
        this.#topics.set(topic, { status: 'pending', hubId: undefined, waiting: [join], leaving: false });
        fresh.push(topic);
      }
    }
    // The pool holds them for a connection that is not open yet (its open replays them instead).
    const control = fresh.length > 0 ? [this.#intent('subscribe', fresh, undefined, false)] : [];
    const outcome: Outcome = { join: memberships, control };
    if (join.waitingOn.size === 0) merge(outcome, this.#complete(join));
    return outcome;
  }

  /** Topics that lost their last subscriber: unsubscribe what is live, let go of what was never accepted. */
  #release(topics: readonly string[], join: Join | undefined): ControlIntent[] {
    const live: string[] = [];
    for (const topic of topics) {
      const state = this.#topics.get(topic);
      if (!state) continue;
      if (state.status === 'pending' && state.hubId !== undefined) {
        state.leaving = true;
        continue;
      }
      this.#topics.delete(topic);
      if (state.status === 'live') live.push(topic);
    }
    // A connection that is down forgot its subscriptions already: the pool drops the intent (controlDropped).
    return live.length > 0 ? [this.#intent('unsubscribe', live, join, false)] : [];
  }

  #onAccepted(topic: string, state: TopicState, answer: Buffer | undefined, outcome: Outcome): void {
    state.status = 'live';
    const waiting = state.waiting;
    state.waiting = [];
    if (state.leaving && this.#host.subscribers(topic) === 0) {
      this.#topics.delete(topic);
      (outcome.control ??= []).push(this.#intent('unsubscribe', [topic], undefined, false));
    }
    state.leaving = false;
    for (const join of waiting) {
      join.waitingOn.delete(topic);
      if (answer) join.answer = answer;
      if (join.waitingOn.size === 0) merge(outcome, this.#complete(join));
    }
  }

  #onRefused(topic: string, state: TopicState, replay: boolean, answer: Buffer, outcome: Outcome): void {
    this.#topics.delete(topic);
    if (replay && state.waiting.length === 0) {
      // Refused on a reconnect: the subscribers stay, a later reconnect or ask tries again.
      this.#resubscribeRefused++;
      return;
    }
    this.#refused++;
    // Every asker hears the refusal with its own id and leaves the topic (when its whole frame is answered).
    for (const join of state.waiting) {
      join.waitingOn.delete(topic);
      join.failure ??= answer;
      join.failed.push(topic);
      if (join.waitingOn.size === 0) merge(outcome, this.#complete(join));
    }
  }

  /** Answer a session's frame with its own id: the upstream's answer when there is one, else the ack template; then its snapshots. */
  #complete(join: Join): Outcome {
    const outcome: Outcome = {};
    const session = join.session;
    if (session.closed) return outcome;
    if (join.envelope) {
      if (join.failure) {
        outcome.leave = join.failed.map((topic) => ({ session, topic }));
        outcome.errors = [{ session, error: new WshubError('ERR_SUBSCRIBE_REFUSED', `upstream ${this.#host.upstream} refused the subscription to ${join.failed.join(', ')}: ${join.failure.toString('utf8').slice(0, 200)}`) }];
      } else if (join.snapshot) outcome.snapshots = join.topics.map((topic) => ({ session, topic }));
      return outcome;
    }
    if (join.idText !== undefined) outcome.replies = [this.#reply(join)];
    if (join.failure) outcome.leave = join.failed.map((topic) => ({ session, topic }));
    else if (join.snapshot) outcome.snapshots = join.topics.map((topic) => ({ session, topic }));
    return outcome;
  }

  #reply(join: Join): Reply {
    const source = join.failure ?? join.answer;
    const span = source ? objectMembers(source)?.get(this.#o.idField) : undefined;
    const idText = join.idText!;
    const data = source && span ? splice(source, span, idText) : this.#o.ack.replace('{id}', idText);
    return { session: join.session, data, answers: idText };
  }

  #unsubscribed(join: Join, hubId: number, answer: Buffer | undefined): Outcome {
    join.waitingOn.delete(hubId);
    if (answer) join.answer = answer;
    const outcome: Outcome = { publish: { to: 'hub' } };
    return join.waitingOn.size === 0 ? merge(outcome, this.#complete(join)) : outcome;
  }

  /** An intent for the pool; an unsubscribe's join waits on it until it is rendered (or dropped). */
  #intent(kind: ControlIntent['kind'], topics: string[], join: Join | undefined, replay: boolean): ControlIntent {
    const ref: IntentRef = { join, replay, token: {} };
    if (kind === 'unsubscribe') join?.waitingOn.add(ref.token);
    return { kind, topics, ref };
  }

}

function newJoin(session: SessionHandle, idText: string | undefined, topics: string[], envelope: boolean, snapshot: boolean): Join {
  return { session, idText, topics, waitingOn: new Set(), answer: undefined, failure: undefined, failed: [], envelope, snapshot };
}

function unique(topics: readonly string[]): string[] {
  return [...new Set(topics)];
}
