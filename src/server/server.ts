/**
 * The hardened WebSocket listener every local attach goes through.
 *
 * One http.Server per listener (Unix socket and/or loopback TCP), upgrades
 * handed to ws's `WebSocketServer({ noServer: true })`: ws does all framing.
 * The rule everything here follows (the libdatachannel lesson): one bad peer
 * closes its own socket and nothing else. An error listener is on every
 * socket before any other code sees it, every callback is guarded, and every
 * refusal is answered with an exact status and counted under a stable code.
 */
import { EventEmitter } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import { WshubError, errnoOf, type ErrorCode } from '../errors.js';
import type { Logger } from '../observe/log.js';
import { FdWatch, isFdExhaustion } from './fd-watch.js';
import { checkOrigin, checkToken, checkWebSocketRequest, finishUnknown, peerInfo, refusal, selectProtocol, writeRefusal } from './handshake.js';
import { closeListener, createHttpServer, listenTcp, scheduleReopen, type Listener, type Transport } from './listeners.js';
import { resolveServerOptions, type HardenedServerOptions, type ResolvedServerOptions } from './options.js';
import { GatedWebSocket, SessionGuard, startLiveness } from './session.js';
import { Counters } from './stats.js';
import type { HardenedServerEvents, PeerInfo, Refusal, ServerAddresses, ServerState, ServerStats } from './types.js';
import { freeUnixPath, listenUnix } from './unix-socket.js';

interface Pending {
  transport: Transport;
  timer: NodeJS.Timeout;
}

const ALLOWED_MOVES: Record<ServerState, readonly ServerState[]> = {
  idle: ['listening', 'closed'],
  listening: ['closing', 'closed'],
  closing: ['closed'],
  closed: [],
};

/**
 * The hardened WebSocket listener.
 *
 * ```ts
 * const server = new HardenedServer({ listen: '/run/wshub.sock', tcp: { port: 7070 } });
 * server.on('session', ({ id, ws, req, peer }) => { … });
 * await server.listen();
 * ```
 *
 * Events: `session` (an accepted WebSocket), `sessionClose` (why it ended),
 * `warning` (descriptor exhaustion, a paused listener). Never emits `error`:
 * every failure is answered to its peer and counted in {@link HardenedServer.stats}.
 */
export class HardenedServer extends EventEmitter<HardenedServerEvents> {
  readonly options: ResolvedServerOptions;
  #state: ServerState = 'idle';
  readonly #log: Logger;
  readonly #wss: WebSocketServer;
  readonly #listeners: Listener[] = [];
  readonly #pending = new Map<Duplex, Pending>();
  readonly #sessions = new Map<string, SessionGuard>();
  readonly #counters = new Counters();
  readonly #fdWatch: FdWatch;
  #nextId = 0;
  #livenessTimer: NodeJS.Timeout | undefined;
  #drainTimer: NodeJS.Timeout | undefined;
  #closed: Promise<void> | undefined;
  #onAllSessionsGone: (() => void) | undefined;

  constructor(options: HardenedServerOptions) {
    super();
    this.options = resolveServerOptions(options);
    this.#log = this.options.logger.child({ component: 'server' });
    this.#wss = new WebSocketServer({
      noServer: true,
      clientTracking: false,
      maxPayload: this.options.maxPayload,
      // Off: memory per session and compression bombs; and the hub writes pre-framed
      // bytes to `session.socket`, which is only safe while ws never transforms frames.
      perMessageDeflate: false,
      // Pongs are ours (SessionGuard): ws's automatic ones end a ping flood with a bare
      // terminate() and no error, which would be logged as a lost session.
      autoPong: false,
      WebSocket: GatedWebSocket,
      handleProtocols: (protocols, req) => selectProtocol(protocols, req, this.options.handleProtocols),
    });
    // Anything ws still finds wrong after our own checks (e.g. a malformed
    // Sec-WebSocket-Protocol list) is answered here with a code.
    this.#wss.on('wsClientError', (err, socket) => this.#refuse(socket, refusal(400, 'ERR_HANDSHAKE_INVALID', err.message)));
    this.#wss.on('error', (err) => this.#log.error({ err }, 'ws server error'));
    this.#fdWatch = new FdWatch(this.options.emfileBackoffMs, (exhausted) => this.#onFdState(exhausted));
  }

  get state(): ServerState {
    return this.#state;
  }

  /** Bind every configured listener. Rejects with `ERR_LISTEN_ADDRESS_IN_USE` or `ERR_LISTEN_FAILED` (and binds nothing). */
  async listen(): Promise<void> {
    if (this.#state !== 'idle') throw new WshubError('ERR_INVALID_STATE', `listen() called while ${this.#state}`);
    try {
      if (this.options.listen !== undefined) {
        const listener = this.#createListener('unix');
        listener.unixPath = this.options.listen;
        await freeUnixPath(listener.unixPath);
        await listenUnix(listener.http, listener.unixPath, this.options.unixSocketMode);
      }
      if (!this.#is('idle')) throw new WshubError('ERR_CLOSED', 'closed while binding');
      if (this.options.tcp !== undefined) {
        const listener = this.#createListener('tcp');
        const { host, port } = this.options.tcp;
        await listenTcp(listener.http, host, port);
        const bound = listener.http.address();
        listener.tcp = { host, port: typeof bound === 'object' && bound !== null ? bound.port : port };
      }
      // close()/destroy() may have run while we were binding.
      if (!this.#is('idle')) throw new WshubError('ERR_CLOSED', 'closed while binding');
    } catch (err) {
      // Whatever got bound is closed again, also when close() ran meanwhile.
      if (!this.#is('closed')) this.#setState('closed', 'listen() failed');
      this.#teardown();
      throw err;
    }
    this.#setState('listening', 'bound');
    this.#livenessTimer = startLiveness(this.#sessions.values.bind(this.#sessions), this.options, this.#log);
    this.#fdWatch.start();
  }

  addresses(): ServerAddresses {
    const out: ServerAddresses = {};
    for (const listener of this.#listeners) {
      if (listener.unixPath !== undefined) out.unix = listener.unixPath;
      if (listener.tcp !== undefined) out.tcp = { ...listener.tcp };
    }
    return out;
  }

  stats(): ServerStats {
    return {
      state: this.#state,
      open: this.#sessions.size,
      handshaking: this.#pending.size,
      accepted: this.#counters.accepted,
      rejected: { ...this.#counters.rejected },
      errors: { ...this.#counters.errors },
      dropped: { ...this.#counters.dropped },
      fdExhausted: this.#fdWatch.exhausted,
    };
  }

  /**
   * Stop accepting; refuse handshakes in flight with 503; close each session
   * with 1001 after the data already given to it (close frames queue behind
   * data); terminate whoever has not finished after `drainTimeoutMs`.
   * Resolves when every session and listener is gone. Idempotent.
   */
  close(): Promise<void> {
    if (this.#closed) return this.#closed;
    if (this.#state === 'idle' || this.#state === 'closed') {
      if (this.#state === 'idle') this.#setState('closed', 'close() before listen()');
      this.#teardown();
      this.#closed = Promise.resolve();
      return this.#closed;
    }
    this.#setState('closing', 'close()');
    this.#stopTimers();
    const listenersClosed = Promise.all(this.#listeners.map((l) => closeListener(l)));
    for (const socket of [...this.#pending.keys()]) this.#refuse(socket, refusal(503, 'ERR_SHUTTING_DOWN', 'server shutting down'));
    const sessionsGone = new Promise<void>((resolve) => {
      if (this.#sessions.size === 0) resolve();
      else this.#onAllSessionsGone = resolve;
    });
    for (const guard of this.#sessions.values()) guard.end('ERR_SHUTTING_DOWN', 'server shutting down');
    this.#drainTimer = setTimeout(() => {
      if (this.#sessions.size > 0) this.#log.warn({ remaining: this.#sessions.size }, 'drain timeout: terminating sessions');
      for (const guard of this.#sessions.values()) guard.terminate();
    }, this.options.drainTimeoutMs);
    this.#drainTimer.unref();
    this.#closed = Promise.all([listenersClosed, sessionsGone]).then(() => {
      clearTimeout(this.#drainTimer);
      this.#setState('closed', 'drained');
    });
    return this.#closed;
  }

  /** Close every listener and socket now. Idempotent; a pending close() resolves once the sockets are gone. */
  destroy(): void {
    if (this.#state === 'closed') return;
    this.#setState('closed', 'destroy()');
    this.#teardown();
  }

  // ── state ────────────────────────────────────────────────────────────────

  /** A state check TypeScript does not narrow across the awaits in listen(). */
  #is(state: ServerState): boolean {
    return this.#state === state;
  }

  #setState(to: ServerState, reason: string): void {
    const from = this.#state;
    if (from === to) return;
    if (!ALLOWED_MOVES[from].includes(to)) throw new WshubError('ERR_INVALID_STATE', `server cannot move ${from} → ${to}`);
    this.#state = to;
    this.#log.debug({ from, to, reason }, 'server state');
  }

  #teardown(): void {
    this.#stopTimers();
    clearTimeout(this.#drainTimer);
    for (const listener of this.#listeners) {
      clearTimeout(listener.reopenTimer);
      listener.http.close();
      listener.http.closeAllConnections();
    }
    for (const socket of [...this.#pending.keys()]) {
      this.#forgetPending(socket);
      socket.destroy();
    }
    for (const guard of this.#sessions.values()) guard.terminate();
  }

  #stopTimers(): void {
    clearInterval(this.#livenessTimer);
    this.#livenessTimer = undefined;
    this.#fdWatch.stop();
  }

  // ── listeners ────────────────────────────────────────────────────────────

  #createListener(transport: Transport): Listener {
    const http = createHttpServer();
    const listener: Listener = { transport, http, reopenDelayMs: this.options.emfileBackoffMs };
    // Prepended so it runs before http's own connection listener: the socket has an
    // error listener before any parser or handler touches it.
    http.prependListener('connection', (socket: Socket) => this.#onConnection(socket, transport));
    http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.#guard('upgrade', socket, () => this.#onUpgrade(req, socket, head, transport)));
    http.on('request', (req: IncomingMessage, res: ServerResponse) => this.#guard('request', req.socket, () => this.#onPlainRequest(res)));
    http.on('clientError', (err: Error, socket: Duplex) => this.#guard('clientError', socket, () => this.#onClientError(err, socket)));
    http.on('error', (err) => this.#onListenerError(listener, err));
    this.#listeners.push(listener);
    return listener;
  }

  /**
   * An error on a bound listener. With libuv's reserve-descriptor trick this
   * is not how EMFILE usually shows (see fd-watch.ts); it shows here only
   * when the trick itself failed, and then libuv retries accept() in a loop
   * until the handle closes — so pause: close the handle, re-open with backoff.
   */
  #onListenerError(listener: Listener, err: Error): void {
    this.#log.error({ err, transport: listener.transport, errno: errnoOf(err) }, 'listener error');
    if (this.#state !== 'listening') return;
    if (isFdExhaustion(err)) this.#counters.error('ERR_FD_EXHAUSTED');
    this.#warn(isFdExhaustion(err) ? 'ERR_FD_EXHAUSTED' : 'ERR_LISTEN_FAILED', `listener ${listener.transport}: ${err.message}`);
    if (listener.reopenTimer !== undefined) return;
    // Only the listening handle closes; accepted sockets and sessions are untouched.
    listener.http.close();
    scheduleReopen(listener, { baseDelayMs: this.options.emfileBackoffMs, unixSocketMode: this.options.unixSocketMode, logger: this.#log, active: () => this.#state === 'listening' });
  }

  /** Warnings come from timers and socket events: a throwing listener must not escape to the process. */
  #warn(code: ErrorCode, message: string): void {
    try {
      this.emit('warning', { code, message });
    } catch (err) {
      this.#log.error({ err }, 'warning listener threw');
    }
  }

  #onFdState(exhausted: boolean): void {
    if (exhausted) {
      this.#counters.error('ERR_FD_EXHAUSTED');
      this.#log.warn({ open: this.#sessions.size, handshaking: this.#pending.size }, 'file descriptors exhausted: new peers are closed on accept until some are freed');
      this.#warn('ERR_FD_EXHAUSTED', 'file descriptors exhausted');
    } else {
      this.#log.info({ open: this.#sessions.size }, 'file descriptors available again');
    }
  }

  // ── handshake ────────────────────────────────────────────────────────────

  /** Run a handler so that nothing it throws escapes to the process: the socket concerned is answered 500 and closed. */
  #guard(where: string, socket: Duplex, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.#log.error({ err, where }, 'handler threw');
      this.#counters.error('ERR_CALLBACK_FAILED');
      this.#forgetPending(socket);
      writeRefusal(socket, 500, 'ERR_CALLBACK_FAILED', 'internal error');
    }
  }

  #onConnection(socket: Socket, transport: Transport): void {
    socket.on('error', (err) => this.#onPendingSocketError(socket, err));
    try {
      if (this.#state !== 'listening') {
        socket.destroy();
        return;
      }
      // The libdatachannel lesson: accept() succeeded but the peer is already gone.
      if (transport === 'tcp' && (socket.remoteAddress === undefined || socket.destroyed)) {
        this.#counters.error('ERR_PEER_GONE');
        socket.destroy();
        return;
      }
      if (this.#pending.size >= this.options.maxPendingHandshakes) {
        this.#counters.reject('ERR_TOO_MANY_HANDSHAKES');
        writeRefusal(socket, 503, 'ERR_TOO_MANY_HANDSHAKES', 'too many handshakes in progress');
        return;
      }
      const timer = setTimeout(() => this.#onHandshakeTimeout(socket), this.options.handshakeTimeoutMs);
      timer.unref();
      this.#pending.set(socket, { transport, timer });
      socket.once('close', () => this.#forgetPending(socket));
    } catch (err) {
      this.#log.error({ err }, 'connection handler threw');
      socket.destroy();
    }
  }

  #onPendingSocketError(socket: Duplex, err: Error): void {
    if (!this.#forgetPending(socket)) return; // sessions: ws handles its socket's errors
    this.#counters.error('ERR_PEER_GONE');
    this.#log.debug({ errno: errnoOf(err) }, 'peer gone during handshake');
    socket.destroy();
  }

  #onHandshakeTimeout(socket: Duplex): void {
    if (!this.#pending.has(socket)) return;
    this.#forgetPending(socket);
    this.#counters.reject('ERR_HANDSHAKE_TIMEOUT');
    this.#log.debug('handshake timeout');
    // Slowloris: no answer, the peer has had its chance.
    socket.destroy();
  }

  /** Remove from the handshake set; true when it was there. */
  #forgetPending(socket: Duplex): boolean {
    const pending = this.#pending.get(socket);
    if (!pending) return false;
    clearTimeout(pending.timer);
    this.#pending.delete(socket);
    return true;
  }

  #refuse(socket: Duplex, r: Refusal): void {
    this.#forgetPending(socket);
    this.#counters.reject(r.code);
    this.#log.debug({ status: r.status, code: r.code }, 'upgrade refused');
    const extra: Record<string, string> = r.status === 426 ? { 'Sec-WebSocket-Version': '13' } : {};
    writeRefusal(socket, r.status, r.code, r.message, 1000, extra);
  }

  #onClientError(err: Error, socket: Duplex): void {
    if (!this.#pending.has(socket)) {
      finishUnknown(socket);
      return;
    }
    const code = (err as { code?: unknown }).code;
    // The peer hung up in the middle of its request: gone, not malformed.
    if (typeof code === 'string' && code.startsWith('HPE_') && code !== 'HPE_INVALID_EOF_STATE') {
      const status = code === 'HPE_HEADER_OVERFLOW' ? 431 : 400;
      this.#refuse(socket, refusal(status, 'ERR_HANDSHAKE_INVALID', `malformed HTTP request (${code})`));
      return;
    }
    this.#forgetPending(socket);
    this.#counters.error('ERR_PEER_GONE');
    socket.destroy();
  }

  /** A plain HTTP request: this listener only speaks WebSocket. */
  #onPlainRequest(res: ServerResponse): void {
    const socket = res.socket;
    if (socket && !this.#pending.has(socket)) {
      finishUnknown(socket);
      return;
    }
    if (socket) this.#forgetPending(socket);
    this.#counters.reject('ERR_HANDSHAKE_INVALID');
    const body = 'ERR_HANDSHAKE_INVALID: this endpoint only accepts WebSocket upgrades\n';
    res.shouldKeepAlive = false;
    res.writeHead(426, { Connection: 'close', Upgrade: 'websocket', 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(body), 'X-Wshub-Error': 'ERR_HANDSHAKE_INVALID' });
    res.end(body);
  }

  #onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, transport: Transport): void {
    if (!this.#pending.has(socket) || socket.destroyed) {
      finishUnknown(socket);
      return;
    }
    const peer = peerInfo(req, transport);
    const refused = peer === undefined ? refusal(400, 'ERR_HANDSHAKE_INVALID', 'invalid request target') : this.#check(req, peer, transport);
    if (refused || peer === undefined) {
      this.#refuse(socket, refused ?? refusal(400, 'ERR_HANDSHAKE_INVALID', 'invalid request target'));
      return;
    }
    this.#wss.handleUpgrade(req, socket, head, (ws) => this.#onSession(ws as GatedWebSocket, req, peer, socket));
  }

  /** Every pre-upgrade check, in order; the first refusal wins. */
  #check(req: IncomingMessage, peer: PeerInfo, transport: Transport): Refusal | undefined {
    if (this.#state !== 'listening') return refusal(503, 'ERR_SHUTTING_DOWN', 'server shutting down');
    const invalid = checkWebSocketRequest(req);
    if (invalid) return invalid;
    const origin = checkOrigin(peer.origin, this.options.allowedOrigins);
    if (origin) return origin;
    if (this.options.token !== undefined && (transport === 'tcp' || this.options.tokenOnUnix)) {
      const token = checkToken(req, this.options.token);
      if (token) return token;
    }
    if (this.#sessions.size >= this.options.maxConnections) return refusal(503, 'ERR_TOO_MANY_CONNECTIONS', 'too many connections');
    return this.options.authorize?.(req, peer);
  }

  // ── sessions ─────────────────────────────────────────────────────────────

  #onSession(ws: GatedWebSocket, req: IncomingMessage, peer: PeerInfo, socket: Duplex): void {
    this.#forgetPending(socket);
    const id = `s${++this.#nextId}`;
    const guard = new SessionGuard(id, ws, {
      maxMessagesPerSecond: this.options.maxMessagesPerSecond,
      pingIntervalMs: this.options.pingIntervalMs,
      idleTimeoutMs: this.options.idleTimeoutMs,
      maxPendingPongs: this.options.maxPendingPongs,
      closeGraceMs: Math.min(5000, Math.max(1000, this.options.drainTimeoutMs)),
      counters: this.#counters,
      logger: this.#log,
    });
    this.#sessions.set(id, guard);
    this.#counters.accepted++;
    ws.on('close', (code, reason) => this.#onSessionClose(guard, code, reason));
    this.#log.debug({ session: id, transport: peer.transport, remoteAddress: peer.remoteAddress, path: peer.path }, 'session open');
    try {
      this.emit('session', { id, ws, req, peer, socket });
    } catch (err) {
      this.#log.error({ err, session: id }, 'session listener threw');
      guard.end('ERR_CALLBACK_FAILED', 'internal error');
    }
  }

  #onSessionClose(guard: SessionGuard, code: number, reason: Buffer): void {
    this.#sessions.delete(guard.id);
    // A session that just vanished (no close frame, no error we raised) lost its socket.
    if (code === 1006 && guard.errorCode === undefined) {
      guard.errorCode = 'ERR_SESSION_LOST';
      this.#counters.error('ERR_SESSION_LOST');
    }
    const errorCode: ErrorCode | undefined = guard.errorCode;
    this.#log.debug({ session: guard.id, code, errorCode }, 'session closed');
    try {
      this.emit('sessionClose', { id: guard.id, code, reason: reason.toString(), ...(errorCode ? { errorCode } : {}) });
    } catch (err) {
      this.#log.error({ err, session: guard.id }, 'sessionClose listener threw');
    }
    if (this.#sessions.size === 0 && this.#onAllSessionsGone) {
      const resolve = this.#onAllSessionsGone;
      this.#onAllSessionsGone = undefined;
      resolve();
    }
  }
}
