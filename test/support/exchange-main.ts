/**
 * The test exchange (exchange.ts) as a child process, so a test can kill it
 * for real (SIGKILL: no close frame, no goodbye). Started by
 * exchange-process.ts with its options as JSON in argv[2]:
 * `{host?, port?, limits…, clock?, start?}` (a clock or a start map makes
 * seqs continue across restarts, see exchange-feed.ts).
 *
 * IPC out: `{type: 'listening', port}`, then answers `{type: 'reply', id, …}`.
 * IPC in: `{op: 'tick', id, topic?}` → `{seqs}`; `{op: 'stats', id}` →
 * `{stats}`; `{op: 'drop', id, code?, reason?}`; `{op: 'close', id}` (graceful, then exit).
 * Dies with its parent: a crashed test leaves no exchange behind.
 */
import { Exchange, SharedFeed, type ExchangeLimits, type FeedClock } from './exchange.js';

export interface ExchangeMainOptions extends ExchangeLimits {
  host?: string;
  port?: number;
  clock?: FeedClock;
  start?: number | Record<string, number>;
}

interface Command {
  op: 'tick' | 'stats' | 'drop' | 'close';
  id: number;
  topic?: string | string[];
  code?: number;
  reason?: string;
}

const options = JSON.parse(process.argv[2] ?? '{}') as ExchangeMainOptions;
const { clock, start, ...rest } = options;
const feed = new SharedFeed({ ...(clock ? { clock } : {}), ...(start !== undefined ? { start } : {}) });
const exchange = await Exchange.start({ ...rest, feed });
const send = (msg: unknown): void => {
  process.send?.(msg);
};
send({ type: 'listening', port: exchange.port });

process.on('message', (raw) => {
  const cmd = raw as Command;
  try {
    switch (cmd.op) {
      case 'tick':
        send({ type: 'reply', id: cmd.id, seqs: exchange.tick(cmd.topic) });
        return;
      case 'stats':
        send({ type: 'reply', id: cmd.id, stats: exchange.stats() });
        return;
      case 'drop':
        exchange.dropConnections(cmd.code, cmd.reason);
        send({ type: 'reply', id: cmd.id });
        return;
      case 'close':
        void exchange.close().then(() => {
          send({ type: 'reply', id: cmd.id });
          process.exit(0);
        });
        return;
    }
  } catch (err) {
    send({ type: 'reply', id: cmd.id, error: (err as Error).message });
  }
});
process.on('disconnect', () => process.exit(0));
