/**
 * Public types of {@link HubClient}.
 */
import type { HubFrame } from '../hub/envelope-codec.js';

/** One upstream message as a subscriber sees it. Exactly one of `data`, `text`, `binary` is set. */
export interface HubMessage {
  upstream: string;
  topic: string | undefined;
  /** The message, parsed, when the upstream sent JSON text. */
  data?: unknown;
  /** The message when the upstream sent text that is not JSON. */
  text?: string;
  /** The message when the upstream sent binary, byte for byte. */
  binary?: Buffer;
  /** The upstream connection it came from: a new epoch means a new stream (a reconnect or a failover). */
  epoch?: number;
  /** Its number among the topic's messages from this hub: a jump means the hub dropped some for this client. */
  seq?: number;
}

/**
 * The stream of a topic broke: resync. `epoch`: a new upstream connection
 * (what happened meanwhile is unknown); `seq`: the hub dropped `missed`
 * messages for this client (its slow-consumer policy). Emitted before the
 * first message after the break.
 */
export interface GapEvent {
  type: 'gap';
  upstream: string;
  topic: string | undefined;
  reason: 'epoch' | 'seq';
  /** `seq` gaps: how many messages are missing. */
  missed?: number;
  epoch: number;
  seq: number;
}

export type HubConnectionState = 'connecting' | 'open' | 'reconnecting' | 'closed';

/** The client's own connection to the hub. */
export interface HubStateEvent {
  type: 'hub';
  from: HubConnectionState;
  to: HubConnectionState;
  reason: string;
  attempt: number;
  delayMs?: number;
}

/** An upstream's state, as the hub reports it (`state` frame). */
export type UpstreamStateEvent = Extract<HubFrame, { op: 'state' }>;
/** The hub dropped messages for this client under its slow-consumer policy. */
export type LaggedEvent = Extract<HubFrame, { op: 'lagged' }>;
/** The hub refused something this client sent (without an id of a pending request). */
export type HubErrorEvent = Extract<HubFrame, { op: 'error' }>;

export interface HubClientEvents {
  hub: [HubStateEvent];
  upstream: [UpstreamStateEvent];
  lagged: [LaggedEvent];
  gap: [GapEvent];
  hubError: [HubErrorEvent];
  welcome: [Extract<HubFrame, { op: 'welcome' }>];
  drain: [];
}

export interface HubClientOptions {
  /** The hub's Unix socket path (`listen` in the hub's config). */
  socketPath?: string;
  /** Or a full URL: `ws://127.0.0.1:7070/hub`, `ws+unix:///run/wshub.sock:/hub`. */
  url?: string;
  /** Bearer token, when the hub's TCP listener requires one. */
  token?: string;
  /** Reconnect backoff. @default { minDelayMs: 100, maxDelayMs: 5000, factor: 2 } */
  backoff?: { minDelayMs?: number; maxDelayMs?: number; factor?: number };
  /** Messages buffered per subscription before the client stops reading from the hub. @default 10000 */
  maxBuffered?: number;
  /** Bytes buffered in the socket before `send()` returns false (wait for `drain`). @default 1 MiB */
  highWaterMarkBytes?: number;
  /** Sends kept while not connected, flushed in order on (re)connect. @default 1000 */
  maxQueuedSends?: number;
  /** @default 30000 */
  requestTimeoutMs?: number;
}
