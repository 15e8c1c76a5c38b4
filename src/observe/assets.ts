/**
 * The status page's static files: plain HTML/JS/CSS from `src/observe/page/`
 * and uPlot's prebuilt files straight from its npm package, so nothing is
 * built at run time. Files are read once, on first request.
 */
import { readFileSync, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { ServerResponse } from 'node:http';

interface Asset {
  file: () => string;
  type: string;
}

/** The page directory: next to this module when copied there, else the source tree (dist/src/observe → src/observe/page). */
function pageDir(): string {
  for (const candidate of ['./page/', '../../../src/observe/page/']) {
    const dir = fileURLToPath(new URL(candidate, import.meta.url));
    if (existsSync(`${dir}index.html`)) return dir;
  }
  throw new Error('status page files not found (src/observe/page/index.html)');
}

const require = createRequire(import.meta.url);

/** URL path → file. */
export const ASSETS: ReadonlyMap<string, Asset> = new Map<string, Asset>([
  ['/', { file: () => `${pageDir()}index.html`, type: 'text/html; charset=utf-8' }],
  ['/app.js', { file: () => `${pageDir()}app.js`, type: 'text/javascript; charset=utf-8' }],
  ['/style.css', { file: () => `${pageDir()}style.css`, type: 'text/css; charset=utf-8' }],
  ['/favicon.svg', { file: () => `${pageDir()}favicon.svg`, type: 'image/svg+xml' }],
  ['/vendor/uplot.js', { file: () => require.resolve('uplot/dist/uPlot.iife.min.js'), type: 'text/javascript; charset=utf-8' }],
  ['/vendor/uplot.css', { file: () => require.resolve('uplot/dist/uPlot.min.css'), type: 'text/css; charset=utf-8' }],
]);

const cache = new Map<string, Buffer>();

/** Answer a request for one of {@link ASSETS}. */
export function sendAsset(path: string, res: ServerResponse, head: boolean): void {
  const asset = ASSETS.get(path);
  if (!asset) throw new Error(`no asset ${path}`);
  let body = cache.get(path);
  if (!body) {
    body = readFileSync(asset.file());
    cache.set(path, body);
  }
  res.writeHead(200, {
    'content-type': asset.type,
    'content-length': body.length,
    'cache-control': 'no-cache',
    'x-content-type-options': 'nosniff',
    // Everything the page needs comes from the hub itself; inline scripts are never run.
    'content-security-policy': "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
  });
  res.end(head ? undefined : body);
}
