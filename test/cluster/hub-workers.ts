/**
 * Workers of the cluster tests, each a real WebSocket client on a hub's Unix
 * socket: transparent Node clients (`/u/<upstream>`, the demo feed's own
 * frames), envelope Node clients (`/hub`, `msg` frames with the hub's
 * epoch/seq stamps and `state` frames), and python3-websockets processes.
 * Each keeps, per topic, the demo feed's `seq` of every tick it received, in
 * order of arrival, and the feed's send time `T` (so a test can tell ticks
 * sent after an event from those sent before).
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { eventually } from '../hub/helpers.js';

/** One tick as a worker received it. */
export interface Tick {
  topic: string;
  /** The demo feed's per-topic sequence number. */
  seq: number;
  /** When the feed sent it (its clock: this machine's). */
  T: number;
  /** When the worker received it. */
  at: number;
  /** Envelope only: the hub's stamps. */
  epoch?: number;
  hubSeq?: number;
}

/** What every kind of worker can tell. */
export abstract class SeqWorker {
  readonly label: string;
  readonly ticks: Tick[] = [];

  constructor(label: string) {
    this.label = label;
  }

  seqs(topic: string): number[] {
    return this.ticks.filter((t) => t.topic === topic).map((t) => t.seq);
  }

  /** Ticks the feed sent after `at` (its clock). */
  after(at: number, topic?: string): Tick[] {
    return this.ticks.filter((t) => t.T > at && (topic === undefined || t.topic === topic));
  }

  topics(): string[] {
    return [...new Set(this.ticks.map((t) => t.topic))];
  }

  /** Wait until at least `n` ticks of every one of `topics` were sent after `since` and received. */
  async receives(topics: readonly string[], n = 3, since = 0, timeoutMs = 10_000): Promise<void> {
    await eventually(() => topics.every((t) => this.after(since, t).length >= n), `${this.label} receiving ${topics.join(', ')} (${n} ticks after ${since})`, timeoutMs);
  }
}

function parseTick(text: string, at: number): Tick | undefined {
  const m = JSON.parse(text) as { stream?: unknown; data?: { seq?: unknown; T?: unknown } };
  if (typeof m.stream !== 'string' || typeof m.data?.seq !== 'number') return undefined;
  return { topic: m.stream, seq: m.data.seq, T: Number(m.data.T), at };
}

/** A transparent Node worker: the feed's protocol as is. */
export class FeedWorker extends SeqWorker {
  readonly ws: WebSocket;
  /** Frames that are not ticks (answers to this worker's requests), parsed. */
  readonly answers: Array<Record<string, unknown>> = [];
  closed: { code: number; reason: string; at: number } | undefined;
  readonly #open: Promise<void>;

  constructor(url: string, label: string) {
    super(label);
    this.ws = new WebSocket(url);
    this.ws.on('message', (data: Buffer) => {
      const text = data.toString();
      const tick = parseTick(text, Date.now());
      if (tick) this.ticks.push(tick);
      else this.answers.push(JSON.parse(text) as Record<string, unknown>);
    });
    this.ws.on('close', (code, reason) => { this.closed = { code, reason: reason.toString(), at: Date.now() }; });
    this.ws.on('error', () => undefined);
    this.#open = new Promise((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('close', (code) => reject(new Error(`${label}: closed (${code}) before opening`)));
      this.ws.once('unexpected-response', (_req, res) => reject(new Error(`${label}: HTTP ${res.statusCode} instead of an upgrade`)));
    });
  }

  opened(): Promise<void> {
    return this.#open;
  }

  send(frame: Record<string, unknown>): void {
    this.ws.send(JSON.stringify(frame));
  }

  /** Subscribe, and wait for the answer to this id. */
  async subscribe(topics: readonly string[], id = 1): Promise<void> {
    await this.#open;
    const before = this.answers.length;
    this.send({ method: 'SUBSCRIBE', params: topics, id });
    await eventually(() => this.answers.slice(before).some((a) => a.id === id), `${this.label}: the answer to SUBSCRIBE ${topics.join(',')}`);
  }

  close(): void {
    this.ws.terminate();
  }
}

/** An envelope Node worker (`/hub`, wshub.v1). */
export class EnvelopeWorker extends SeqWorker {
  readonly ws: WebSocket;
  readonly upstream: string;
  /** Every `state` frame, with when it arrived. */
  readonly states: Array<{ state: string; reason?: string; gap?: { start: number; end?: number }; at: number }> = [];
  /** Other control frames (ack, error, welcome). */
  readonly frames: Array<Record<string, unknown>> = [];
  closed: { code: number; at: number } | undefined;
  readonly #open: Promise<void>;

  constructor(url: string, label: string, upstream = 'feed') {
    super(label);
    this.upstream = upstream;
    this.ws = new WebSocket(url, ['wshub.v1']);
    this.ws.on('message', (data: Buffer) => {
      const f = JSON.parse(data.toString()) as Record<string, unknown>;
      const at = Date.now();
      if (f.op === 'msg') {
        const tick = parseTick(JSON.stringify(f.data), at);
        if (tick) this.ticks.push({ ...tick, epoch: f.epoch as number, hubSeq: f.seq as number });
      } else if (f.op === 'state') {
        this.states.push({ ...(f as { state: string; reason?: string; gap?: { start: number; end?: number } }), at });
      } else this.frames.push(f);
    });
    this.ws.on('close', (code) => { this.closed = { code, at: Date.now() }; });
    this.ws.on('error', () => undefined);
    this.#open = new Promise((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('close', (code) => reject(new Error(`${label}: closed (${code}) before opening`)));
    });
  }

  async sub(topics: readonly string[]): Promise<void> {
    await this.#open;
    for (const [i, topic] of topics.entries()) this.ws.send(JSON.stringify({ op: 'sub', id: `s${i}`, upstream: this.upstream, topic }));
    await eventually(() => topics.every((_, i) => this.frames.some((f) => f.op === 'ack' && f.id === `s${i}`)), `${this.label}: acks of its subs`);
  }

  /** Epochs of the ticks received, in order of first appearance. */
  epochs(): number[] {
    return [...new Set(this.ticks.map((t) => t.epoch!))];
  }

  /** States received since `at`. */
  statesSince(at: number): string[] {
    return this.states.filter((s) => s.at >= at).map((s) => s.state);
  }

  close(): void {
    this.ws.terminate();
  }
}

/** The python3 with python3-websockets (Debian's); the test fails naming it when missing. */
const PYTHON = '/usr/bin/python3';
const PY_WORKER = fileURLToPath(new URL('../../../test/cluster/fixtures/py_seq_worker.py', import.meta.url));

/** A python3-websockets worker process in transparent mode. */
export class PyWorker extends SeqWorker {
  readonly proc: ChildProcess;
  readonly answers: unknown[] = [];
  closeCode: number | undefined;
  #stderr = '';
  #opened = false;

  constructor(socketPath: string, path: string, topics: readonly string[], label: string) {
    super(label);
    assert.ok(existsSync(PYTHON), `${PYTHON} is missing: install Debian's python3 and python3-websockets`);
    this.proc = spawn(PYTHON, [PY_WORKER, socketPath, path, topics.join(',')], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc.stderr!.setEncoding('utf8').on('data', (c: string) => { this.#stderr = (this.#stderr + c).slice(-4000); });
    createInterface({ input: this.proc.stdout! }).on('line', (line) => {
      const e = JSON.parse(line) as { ev: string; topic?: string; seq?: number; T?: number; body?: unknown; code?: number };
      if (e.ev === 'open') this.#opened = true;
      else if (e.ev === 'msg') this.ticks.push({ topic: e.topic!, seq: e.seq!, T: e.T!, at: Date.now() });
      else if (e.ev === 'answer') this.answers.push(e.body);
      else if (e.ev === 'close') this.closeCode = e.code;
    });
  }

  /** The process runs and the hub has not closed its connection. */
  get attached(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null && this.closeCode === undefined;
  }

  async opened(): Promise<void> {
    await eventually(() => {
      if (this.proc.exitCode !== null) throw new Error(`${this.label} exited ${this.proc.exitCode}: ${this.#stderr}`);
      return this.#opened && this.answers.length > 0;
    }, `${this.label} attached and subscribed`);
  }

  close(): void {
    if (this.proc.exitCode === null) this.proc.kill('SIGKILL');
  }
}

/** Every topic's seqs of `w` go up by exactly one: nothing missed, nothing twice, in order. */
export function assertContiguous(w: SeqWorker, topics: readonly string[] = w.topics()): void {
  for (const topic of topics) {
    const s = w.seqs(topic);
    assert.ok(s.length > 0, `${w.label}: no ticks of ${topic}`);
    for (let i = 1; i < s.length; i++) {
      assert.equal(s[i], s[i - 1]! + 1, `${w.label} ${topic}: seq ${s[i]} after ${s[i - 1]} (index ${i} of ${s.length}; around: ${s.slice(Math.max(0, i - 3), i + 3).join(',')})`);
    }
  }
}

/** Every topic's seqs of `w` strictly increase (nothing twice, nothing out of order); returns the seqs skipped. */
export function assertIncreasing(w: SeqWorker, topics: readonly string[] = w.topics()): number {
  let skipped = 0;
  for (const topic of topics) {
    const s = w.seqs(topic);
    for (let i = 1; i < s.length; i++) {
      assert.ok(s[i]! > s[i - 1]!, `${w.label} ${topic}: seq ${s[i]} after ${s[i - 1]} (delivered twice or out of order; around: ${s.slice(Math.max(0, i - 3), i + 3).join(',')})`);
      skipped += s[i]! - s[i - 1]! - 1;
    }
  }
  return skipped;
}
