/** Read Server-Sent Events from the hub's /events with node:http, with a deadline. */
import { get } from 'node:http';

/** The raw text of /events up to and including the `count`-th `stats` event. */
export function readEvents(base: string, count = 1, timeoutMs = 10_000, token?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = get(`${base}/events`, token === undefined ? {} : { headers: { authorization: `Bearer ${token}` } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        text += chunk;
        if ((text.match(/event: stats\ndata: [^\n]*\n\n/g) ?? []).length >= count) {
          clearTimeout(timer);
          req.destroy();
          resolve(text);
        }
      });
    });
    const timer = setTimeout(() => {
      req.destroy();
      reject(new Error(`no ${count} stats events from ${base}/events within ${timeoutMs} ms`));
    }, timeoutMs);
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}
