/**
 * The status page in a real headless Chromium: it loads with no console
 * errors, follows the upstream live over /events (open → down → open again,
 * with the reason and the history), renders hostile names as text, and leaves
 * a screenshot in test-artifacts/status-page.png.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser } from 'playwright-core';
import { DemoFeed, demoUpstreamConfig } from '../../src/demo/feed.js';
import { HubHttpServer } from '../../src/observe/http.js';
import { eventually, startTestHub, Worker } from '../hub/helpers.js';

const CHROMIUM = '/usr/bin/chromium';
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

  const browser: Browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    timeout: 30_000,
  });
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
