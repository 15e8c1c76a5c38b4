/**
 * Graceful shutdown for daemons: the first SIGTERM/SIGINT drains, a second
 * one gives up and exits at once.
 */
import { silentLogger, type Logger } from '../observe/log.js';

/** @default ['SIGTERM', 'SIGINT'] */
export const DEFAULT_DRAIN_SIGNALS: readonly NodeJS.Signals[] = Object.freeze(['SIGTERM', 'SIGINT']);

export interface DrainOnSignalsOptions {
  /** @default ['SIGTERM', 'SIGINT'] */
  signals?: NodeJS.Signals[];
  /** @default a silent logger */
  logger?: Logger;
  /** How the process ends; tests and embedders may replace it. @default process.exit */
  exit?: (code: number) => void;
}

/** Anything that can be drained: a HardenedServer, or the hub wrapping one. */
export interface Drainable {
  close(): Promise<void>;
  destroy?(): void;
}

/**
 * First signal: `target.close()`, then exit 0 (1 if close failed). Second
 * signal while draining: `target.destroy()` and exit 1. Returns a function
 * that removes the signal handlers.
 */
export function drainOnSignals(target: Drainable, options: DrainOnSignalsOptions = {}): () => void {
  const signals = options.signals ?? [...DEFAULT_DRAIN_SIGNALS];
  const logger = options.logger ?? silentLogger;
  const exit = options.exit ?? ((code: number) => process.exit(code));
  let draining = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (draining) {
      logger.warn({ signal }, 'second signal while draining: destroying');
      try {
        target.destroy?.();
      } finally {
        exit(1);
      }
      return;
    }
    draining = true;
    logger.info({ signal }, 'signal received: draining');
    target.close().then(
      () => {
        logger.info('drained');
        exit(0);
      },
      (err: unknown) => {
        logger.error({ err }, 'drain failed');
        exit(1);
      },
    );
  };
  for (const signal of signals) process.on(signal, onSignal);
  return () => {
    for (const signal of signals) process.off(signal, onSignal);
  };
}
