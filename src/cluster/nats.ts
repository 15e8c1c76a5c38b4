/**
 * The one place that loads the NATS client (the maintained nats.js line:
 * `@nats-io/transport-node`, `@nats-io/kv`, `@nats-io/jetstream`).
 *
 * It is loaded lazily with `import()`, once, so a hub without a `cluster:`
 * config never loads a line of NATS: every other module of src/cluster/
 * imports NATS *types* only (erased at compile time) and takes the runtime
 * objects from {@link loadNats}.
 */
export type * as NatsCore from '@nats-io/transport-node';
export type { NatsConnection, Msg, MsgHdrs, Subscription, Status } from '@nats-io/transport-node';
export type { KV, KvEntry, KvWatchEntry } from '@nats-io/kv';

/** The loaded NATS modules. */
export interface NatsLib {
  core: typeof import('@nats-io/transport-node');
  kv: typeof import('@nats-io/kv');
  jetstream: typeof import('@nats-io/jetstream');
}

let loading: Promise<NatsLib> | undefined;

/** Load the NATS client modules (once; later calls share the first load). */
export function loadNats(): Promise<NatsLib> {
  loading ??= (async () => {
    const [core, kv, jetstream] = await Promise.all([
      import('@nats-io/transport-node'),
      import('@nats-io/kv'),
      import('@nats-io/jetstream'),
    ]);
    return { core, kv, jetstream };
  })();
  return loading;
}
