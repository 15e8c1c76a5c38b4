/**
 * The status page in a real headless Chromium: it loads with no console
 * errors, follows the upstream live over /events (open → down → open again,
 * with the reason and the history), renders hostile names as text, and leaves
 * a screenshot in test-artifacts/status-page.png. At 1280 px, long reason
 * lists stay inside their cells; an outage shows how long it has lasted; the
 * charts start with the hub's kept history; a hub that stops answering turns
 * the whole page stale.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { once } from 'node:events';
import type { Browser, Page } from 'playwright-core';
import { CHROMIUM, launchChromium } from '../support/chromium.js';
import WebSocket, { WebSocketServer } from 'ws';
import { DemoFeed, demoUpstreamConfig } from '../../src/demo/feed.js';
import { HubHttpServer } from '../../src/observe/http.js';
import { NatsServer } from '../cluster/helpers.js';
import { eventually, startTestHub, Worker } from '../hub/helpers.js';

const ARTIFACTS = fileURLToPath(new URL('../../../test-artifacts/', import.meta.url));
const HOSTILE_TOPIC = '<img src=x onerror="window.__xss=1">@trade';

const cleanups: Array<() => Promise<void> | void> = [];
const workers: Worker[] = [];
after(async () => {
  for (const w of workers) w.kill('SIGKILL');
  for (const c of cleanups.reverse()) await c();
});

const sub = (topics: string[], id: number): string => JSON.stringify({ method: 'SUBSCRIBE', params: topics, id });

test('status page: loads clean, shows the upstream going down and coming back live, renders names as text; screenshot saved', async () => {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: install Debian's chromium package to run the status page test`);

  let feed = new DemoFeed({ tickMs: 100 });
  await feed.ready();
  feed.start();
  const port = feed.port;
  cleanups.push(() => feed.close());
  const hub = await startTestHub({
    feed: { ...demoUpstreamConfig(feed.url), pingIntervalMs: 0, backoff: { minDelayMs: 1500, maxDelayMs: 1500, floorMs: 1500 } },
  });
  cleanups.push(() => hub.close());
  const http = new HubHttpServer(hub.hub);
  const { port: httpPort } = await http.listen('127.0.0.1', 0);
  cleanups.push(() => http.close());
  const base = `http://127.0.0.1:${httpPort}`;

  const a = new Worker(hub.url('feed'), { protocol: 'feed-v1' });
  const b = new Worker(hub.url('feed', 'group=strategies'), { protocol: 'feed-v1' });
  workers.push(a, b);
  await Promise.all([a.opened(), b.opened()]);
  a.send(sub(['btcusdt@trade', 'ethusdt@trade', HOSTILE_TOPIC], 1));
  b.send(sub(['btcusdt@trade', 'solusdt@trade'], 1));
  await eventually(async () => (await a.report()).responses.length === 1 && (await b.report()).responses.length === 1, 'both acks');

  const browser: Browser = await launchChromium();
  cleanups.push(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
  const problems: string[] = [];
  page.on('console', (msg) => {
    if (msg.type() === 'error' || msg.type() === 'warning') problems.push(`console ${msg.type()}: ${msg.text()}`);
  });
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('requestfailed', (req) => {
    // The EventSource is cut when the browser closes; anything else failing is a defect.
    if (!req.url().endsWith('/events')) problems.push(`request failed: ${req.url()} ${req.failure()?.errorText ?? ''}`);
  });

  const response = await page.goto(`${base}/`, { waitUntil: 'load', timeout: 15_000 });
  assert.equal(response?.status(), 200);
  const card = page.locator('[data-upstream="feed"]');
  await card.and(page.locator('[data-state="open"]')).waitFor({ timeout: 10_000 });
  assert.equal(await card.locator('[data-role="state"]').textContent(), 'open');
  assert.equal(await page.locator('#ready').textContent(), 'ready');
  assert.equal(await page.locator('#live').textContent(), 'live');

  // Topics and connections are listed; the hostile topic name is text, not markup.
  await page.locator('#topics tbody tr').nth(3).waitFor({ timeout: 10_000 });
  const topicCells = await page.locator('#topics tbody td:nth-child(2)').allTextContents();
  assert.deepEqual([...topicCells].sort(), [HOSTILE_TOPIC, 'btcusdt@trade', 'ethusdt@trade', 'solusdt@trade'].sort());
  assert.equal(await page.evaluate(() => (globalThis as { __xss?: number }).__xss), undefined, 'no script from a topic name ran');
  assert.equal(await page.locator('#topics img').count(), 0);
  assert.equal(await page.locator('#connections tbody tr').count(), 2);
  assert.match((await page.locator('#connections tbody').textContent()) ?? '', /feed \(strategies\)/);

  // Kill the upstream: the page shows it at once (pushed on the state change), with the reason.
  await feed.close();
  const downAt = Date.now();
  await card.and(page.locator('[data-state="reconnecting"], [data-state="connecting"]')).waitFor({ timeout: 5000 });
  const downState = await card.locator('[data-role="state"]').textContent();
  assert.ok(downState === 'reconnecting' || downState === 'connecting', `state shown: ${downState}`);
  assert.ok(Date.now() - downAt < 5000);
  assert.match((await card.locator('[data-role="reason"]').textContent()) ?? '', /\S/, 'a reason is shown');
  assert.equal(await page.locator('#ready').textContent(), 'not ready');

  // Bring it back on the same port: open again, and the history tells the story.
  feed = new DemoFeed({ tickMs: 100, port });
  await feed.ready();
  feed.start();
  await card.and(page.locator('[data-state="open"]')).waitFor({ timeout: 15_000 });
  assert.equal(await page.locator('#ready').textContent(), 'ready');
  const history = (await card.locator('[data-role="history"] li').allTextContents()).join('\n');
  assert.match(history, /open → reconnecting/);
  assert.match(history, /connecting → open/);
  assert.equal(await card.locator('[data-role="reconnects"]').textContent(), '1');

  // A few seconds of live traffic for the chart, then the screenshot.
  await eventually(async () => (await card.locator('.uplot').count()) === 1, 'the uPlot chart');
  await page.waitForTimeout(3000);
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: `${ARTIFACTS}status-page.png`, fullPage: true });
  assert.ok(existsSync(`${ARTIFACTS}status-page.png`));

  assert.deepEqual(problems, [], 'no console errors, page errors or failed requests');
});


async function openPage(base: string): Promise<Page> {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: install Debian's chromium package to run the status page test`);
  const browser = await launchChromium();
  cleanups.push(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
  const response = await page.goto(`${base}/`, { waitUntil: 'load', timeout: 15_000 });
  assert.equal(response?.status(), 200);
  return page;
}

/** An upgrade request answered with a refusal (the hub counts it under `rejected`). */
async function refusedUpgrade(url: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    ws.on('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      ws.terminate();
    });
    ws.on('open', () => reject(new Error(`${url} was not refused`)));
    ws.on('error', () => undefined);
  });
}

/**
 * Every `.fact` under a selector: pairwise disjoint boxes, and all of each one's text inside its own box.
 * Plain JS run in the page (the test compiles without DOM types).
 */
const FACT_LAYOUT = `(sel) => {
  const problems = [];
  const facts = [...document.querySelectorAll(sel + ' .fact')];
  const boxes = facts.map((f) => f.getBoundingClientRect());
  const name = (i) => (facts[i].querySelector('.k') || {}).textContent || String(i);
  for (let i = 0; i < boxes.length; i++) {
    for (let j = i + 1; j < boxes.length; j++) {
      const a = boxes[i], b = boxes[j];
      if (a.left < b.right - 0.5 && b.left < a.right - 0.5 && a.top < b.bottom - 0.5 && b.top < a.bottom - 0.5) problems.push(name(i) + ' overlaps ' + name(j));
    }
    const range = document.createRange();
    range.selectNodeContents(facts[i]);
    for (const r of range.getClientRects()) {
      if (r.width > 0 && (r.left < boxes[i].left - 0.5 || r.right > boxes[i].right + 0.5)) problems.push('the text of ' + name(i) + ' runs out of its cell by ' + Math.round(r.right - boxes[i].right) + ' px');
    }
  }
  if (facts.length === 0) problems.push('no .fact under ' + sel);
  return problems;
}`;

async function factLayout(page: Page, selector: string): Promise<string[]> {
  return page.evaluate(`(${FACT_LAYOUT})(${JSON.stringify(selector)})`);
}

test('status page at 1280 px: listener cells never overlap with long reason lists; a reconnecting upstream shows how long it has been down', async () => {
  const token = 'page-test-token-0123456789';
  // An upstream that never answers: it stays reconnecting, with a new failed attempt every 200 ms.
  const dead = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  await once(dead, 'listening');
  const deadPort = (dead.address() as { port: number }).port;
  await new Promise((resolve) => dead.close(resolve));
  const hub = await startTestHub({ feed: { url: `ws://127.0.0.1:${deadPort}/`, pingIntervalMs: 0, backoff: { minDelayMs: 200, maxDelayMs: 200, floorMs: 200 } } }, { tcp: '127.0.0.1:0', token });
  cleanups.push(() => hub.close());
  const startedAt = Date.now();
  const tcp = hub.hub.server.addresses().tcp!;
  const base = `ws://127.0.0.1:${tcp.port}`;
  assert.equal(await refusedUpgrade(`${base}/u/feed`, {}), 401);
  assert.equal(await refusedUpgrade(`${base}/u/feed`, { authorization: `Bearer ${token}`, origin: 'http://elsewhere.example' }), 403);
  assert.equal(await refusedUpgrade(`${base}/u/no-such-upstream-with-a-long-name`, { authorization: `Bearer ${token}` }), 404);
  const http = new HubHttpServer(hub.hub);
  const { port: httpPort } = await http.listen('127.0.0.1', 0);
  cleanups.push(() => http.close());

  const page = await openPage(`http://127.0.0.1:${httpPort}`);
  await page.locator('[data-role="rejected"] .item').nth(2).waitFor({ timeout: 10_000 });
  assert.deepEqual(await factLayout(page, '#server'), []);
  assert.deepEqual(await factLayout(page, '[data-upstream="feed"] .facts'), []);

  // The outage is counted from its start, not from the last failed attempt (one every 200 ms).
  await eventually(async () => /^down for [2-9]s$/.test((await page.locator('[data-upstream="feed"] [data-role="outage"]').textContent()) ?? ''), 'down for ≥ 2 s', 10_000);
  const shown = Number(/(\d+)s/.exec((await page.locator('[data-upstream="feed"] [data-role="outage"]').textContent()) ?? '')?.[1]);
  assert.ok(shown <= Math.ceil((Date.now() - startedAt) / 1000), `${shown}s shown, the hub started ${Date.now() - startedAt} ms ago`);
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: `${ARTIFACTS}status-page-listener.png`, fullPage: true });
});

test('status page: the charts start with the traffic history the hub kept before the page was opened', async () => {
  const feed = new DemoFeed({ tickMs: 50 });
  await feed.ready();
  feed.start();
  cleanups.push(() => feed.close());
  const hub = await startTestHub({ feed: { ...demoUpstreamConfig(feed.url), pingIntervalMs: 0 } });
  cleanups.push(() => hub.close());
  const http = new HubHttpServer(hub.hub, { eventsIntervalMs: 250 });
  const { port: httpPort } = await http.listen('127.0.0.1', 0);
  cleanups.push(() => http.close());
  const w = new Worker(hub.url('feed'), { protocol: 'feed-v1' });
  workers.push(w);
  await w.opened();
  w.send(sub(['btcusdt@trade'], 1));
  // Three seconds of samples every 250 ms, with no page open.
  await eventually(() => http.history.size >= 12, 'a dozen samples kept by the hub');

  const page = await openPage(`http://127.0.0.1:${httpPort}`);
  const card = page.locator('[data-upstream="feed"][data-points]');
  await card.waitFor({ timeout: 10_000 });
  // Read at once: live pushes alone would add one point per 250 ms, starting from none.
  const points = Number(await card.getAttribute('data-points'));
  assert.ok(points >= 8, `the chart starts with the kept history (${points} points)`);
});

test('status page: when the hub stops answering, the whole page says it is stale — not a green "ready"', async () => {
  const feed = new DemoFeed({ tickMs: 100 });
  await feed.ready();
  feed.start();
  cleanups.push(() => feed.close());
  const hub = await startTestHub({ feed: { ...demoUpstreamConfig(feed.url), pingIntervalMs: 0 } });
  cleanups.push(() => hub.close());
  const http = new HubHttpServer(hub.hub);
  const { port: httpPort } = await http.listen('127.0.0.1', 0);
  const page = await openPage(`http://127.0.0.1:${httpPort}`);
  await page.locator('[data-upstream="feed"][data-state="open"]').waitFor({ timeout: 10_000 });
  assert.equal(await page.locator('#ready').textContent(), 'ready');
  assert.equal(await page.locator('#stale').isVisible(), false);

  await http.close();
  await page.locator('body.stale').waitFor({ timeout: 10_000 });
  assert.equal(await page.locator('#ready').textContent(), 'stale');
  assert.notEqual(await page.locator('#ready').getAttribute('class'), 'badge badge-ready');
  assert.match((await page.locator('#stale').textContent()) ?? '', /The hub is not answering: everything below is as of \d\d:\d\d:\d\d/);
  assert.equal(await page.locator('#stale').isVisible(), true);
  assert.equal(await page.evaluate('getComputedStyle(document.querySelector("main")).filter'), 'grayscale(1)');
});

test('status page: a pool shows its endpoints with the current one marked and its connections; cluster mode shows the role, the holder and NATS', async () => {
  const nats = await new NatsServer().start();
  cleanups.push(() => nats.dispose());
  const a = new DemoFeed({ tickMs: 100 });
  const b = new DemoFeed({ tickMs: 100 });
  await Promise.all([a.ready(), b.ready()]);
  a.start();
  cleanups.push(() => a.close(), () => b.close());
  const [urlA, urlB] = [a.url, b.url];
  const { url: _url, ...feed } = demoUpstreamConfig(urlA);
  const hub = await startTestHub(
    { feed: { ...feed, urls: [urlA, urlB], pingIntervalMs: 0 } },
    { cluster: { nats: nats.url, name: 'page', leaseTtlMs: 1500, hubName: 'page-hub' } },
  );
  cleanups.push(() => hub.close());
  const http = new HubHttpServer(hub.hub);
  const { port: httpPort } = await http.listen('127.0.0.1', 0);
  cleanups.push(() => http.close());
  const page = await openPage(`http://127.0.0.1:${httpPort}`);
  const card = page.locator('[data-upstream="feed"][data-state="open"]');
  await card.waitFor({ timeout: 15_000 });
  await eventually(async () => (await card.locator('[data-role="role"]').textContent()) === 'holder', 'the role shown as holder', 10_000);
  assert.equal(await card.locator('[data-role="holder"]').textContent(), `this hub · epoch ${hub.hub.cluster!.stats().upstreams[0]!.holder!.epoch}`);
  const endpoints = await card.locator('.endpoints li').allTextContents();
  assert.equal(endpoints.length, 2);
  assert.match(endpoints[0]!, /← current/);
  assert.doesNotMatch(endpoints[1]!, /current/);
  assert.equal(await card.locator('.endpoints li[data-current="true"] .url').textContent(), urlA);
  assert.equal(await card.locator('table.shards tbody tr').count(), 1);
  assert.match((await page.locator('#summary').textContent()) ?? '', /cluster page as page-hub \(NATS up/);
});
