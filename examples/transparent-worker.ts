/**
 * A worker in transparent mode: a plain `ws` client whose only change is its
 * URL — the hub's Unix socket instead of the exchange. It subscribes the way it
 * would subscribe to the exchange itself and prints what it receives.
 *
 * Usage: node dist/examples/transparent-worker.js <socket-path> [upstream] [name] [topic,topic,…]
 */
import WebSocket from 'ws';

const [socketPath, upstream = 'feed', name = 'worker', topicList = 'btcusdt@trade'] = process.argv.slice(2);
if (!socketPath) {
  console.error('usage: transparent-worker.js <socket-path> [upstream] [name] [topic,topic,…]');
  process.exit(2);
}
const topics = topicList.split(',').filter(Boolean);
const url = `ws+unix://${socketPath}:/u/${encodeURIComponent(upstream)}`;

function connect(attempt = 0): void {
  const ws = new WebSocket(url, ['feed-v1']);
  ws.on('open', () => {
    console.log(`[${name}] attached to ${upstream} (subprotocol "${ws.protocol}"), subscribing to ${topics.join(', ')}`);
    ws.send(JSON.stringify({ method: 'SUBSCRIBE', params: topics, id: 1 }));
  });
  ws.on('message', (data: Buffer) => {
    const msg = JSON.parse(data.toString()) as { stream?: string; data?: { p?: string; seq?: number }; result?: unknown; id?: unknown };
    if (msg.stream) console.log(`[${name}] ${msg.stream.padEnd(15)} price ${msg.data?.p} seq ${msg.data?.seq}`);
    else console.log(`[${name}] ${data.toString()}`);
  });
  ws.on('error', (err) => console.error(`[${name}] ${err.message}`));
  ws.on('close', (code) => {
    if (code === 1001) return; // the hub is shutting down
    setTimeout(() => connect(attempt + 1), Math.min(5000, 250 * 2 ** attempt));
  });
}
connect();
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
