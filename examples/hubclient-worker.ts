/**
 * A hub-aware worker: HubClient in envelope mode. It subscribes to a topic,
 * prints each message, reports upstream outages with their gap times and any
 * messages the hub had to drop for it, and asks the upstream one question.
 *
 * Usage: node dist/examples/hubclient-worker.js <socket-path> [upstream] [topic] [name]
 *
 * In your own project: `import { HubClient } from 'wshub/client';`
 */
import { HubClient } from '../src/index.js';

const [socketPath, upstream = 'feed', topic = 'btcusdt@trade', name = 'hubclient'] = process.argv.slice(2);
if (!socketPath) {
  console.error('usage: hubclient-worker.js <socket-path> [upstream] [topic] [name]');
  process.exit(2);
}

const hub = new HubClient({ socketPath });
hub.on('hub', (e) => console.log(`[${name}] hub connection ${e.from} → ${e.to} (${e.reason})`));
hub.on('upstream', (s) => {
  const gap = s.gap?.end ? `, outage ${s.gap.end - s.gap.start} ms` : '';
  console.log(`[${name}] upstream ${s.upstream} is ${s.state}${gap}`);
});
hub.on('lagged', (l) => console.log(`[${name}] the hub dropped ${l.count} messages of ${l.topic ?? l.upstream} (${l.reason})`));

process.on('SIGTERM', () => void hub.close().then(() => process.exit(0)));
process.on('SIGINT', () => void hub.close().then(() => process.exit(0)));

await hub.ready();
console.log(`[${name}] attached to the hub in envelope mode, subscribing to ${upstream}/${topic}`);
hub
  .request(upstream, { method: 'LIST_SUBSCRIPTIONS' }, { timeoutMs: 5000 })
  .then((answer) => console.log(`[${name}] request answered: ${JSON.stringify(answer)}`))
  .catch((err: Error) => console.log(`[${name}] request failed: ${err.message}`));

for await (const m of hub.subscribe(upstream, topic)) {
  const tick = m.data as { stream?: string; data?: { p?: string; seq?: number } } | undefined;
  console.log(`[${name}] ${m.topic} price ${tick?.data?.p} seq ${tick?.data?.seq}`);
}
