/* global document, window, EventSource, uPlot, CSS */
// The wshub status page: renders the snapshot pushed over /events (the same
// object /status and /metrics are computed from). Every value from the hub is
// inserted with textContent, never as HTML: topic names and close reasons come
// from upstream servers and workers.
'use strict';

const POINTS = 300; // five minutes of one-second samples: what the hub keeps (event: history)
const MIN_SAMPLE_MS = 500; // state-change pushes arrive between ticks; too close to rate
const STALE_AFTER_MS = 5000; // no snapshot for this long (pushes come every second) → the page is stale
const charts = new Map(); // upstream name → { plot, data, prev }
let history = {}; // upstream name → the hub's recent rates, applied when its chart is made
let lastUpdate = 0; // when the last snapshot arrived (browser clock)

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null) continue;
    if (k === 'class') node.className = v;
    else if (k === 'text') node.textContent = v;
    else node.setAttribute(k, v);
  }
  for (const c of children) if (c !== undefined && c !== null) node.append(c);
  return node;
}

function fmtNum(n) {
  if (n === undefined || n === null) return '–';
  if (Math.abs(n) >= 1e9) return (n / 1e9).toFixed(2) + 'G';
  if (Math.abs(n) >= 1e6) return (n / 1e6).toFixed(2) + 'M';
  if (Math.abs(n) >= 1e4) return (n / 1e3).toFixed(1) + 'k';
  return String(Math.round(n * 10) / 10);
}

function fmtBytes(n) {
  if (!n) return '0 B';
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i === 0 ? n : n.toFixed(1)) + ' ' + units[i];
}

function fmtAgo(ms) {
  if (ms === undefined || ms === null) return '–';
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 120) return s + 's';
  if (s < 7200) return Math.round(s / 60) + 'm';
  if (s < 172800) return Math.round(s / 3600) + 'h';
  return Math.round(s / 86400) + 'd';
}

function fmtDuration(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return s + 's';
  if (s < 3600) return Math.floor(s / 60) + 'm ' + (s % 60) + 's';
  if (s < 86400) return Math.floor(s / 3600) + 'h ' + Math.floor((s % 3600) / 60) + 'm';
  return Math.floor(s / 86400) + 'd ' + Math.floor((s % 86400) / 3600) + 'h';
}

function fmtTime(at) {
  return new Date(at).toLocaleTimeString([], { hour12: false });
}

function fact(k, v, role) {
  return el('div', { class: 'fact' }, el('span', { class: 'k', text: k }), el('span', { class: 'v', text: v, 'data-role': role }));
}

// A count per reason (`ERR_…=n`), one reason per line: long codes wrap inside their own cell, never over the next one.
function listFact(k, obj, role) {
  const parts = Object.entries(obj || {}).filter(([, n]) => n > 0).map(([r, n]) => r + '=' + n);
  const v = el('span', { class: 'v list', 'data-role': role });
  if (!parts.length) v.textContent = '0';
  for (const p of parts) v.append(el('span', { class: 'item', text: p }));
  return el('div', { class: 'fact' + (parts.length ? ' wide' : '') }, el('span', { class: 'k', text: k }), v);
}

function sum(obj) {
  return Object.values(obj || {}).reduce((a, b) => a + (b || 0), 0);
}

function drops(obj) {
  const parts = Object.entries(obj || {}).filter(([, n]) => n > 0).map(([k, n]) => k + '=' + n);
  return parts.length ? parts.join(' ') : '0';
}

// ── upstream cards ───────────────────────────────────────────────────────

/** The hub's recent rates for `name` as uPlot data, and the counters to continue from. */
function seed(name) {
  const h = history[name];
  if (!h) return { data: [[], [], []], prev: undefined };
  const n = Math.max(0, h.t.length - POINTS);
  const prev = h.last ? { now: h.last.at, messagesIn: h.last.messagesIn, deliveries: h.last.deliveries } : undefined;
  return { data: [h.t.slice(n), h.in.slice(n), h.delivered.slice(n)], prev };
}

function applyHistory(data) {
  history = (data && data.upstreams) || {};
  for (const [name, entry] of charts) {
    const seeded = seed(name);
    entry.data = seeded.data;
    entry.prev = seeded.prev;
    entry.plot.setData(entry.data);
    entry.container.closest('[data-upstream]').dataset.points = String(entry.data[0].length);
  }
}

function chartFor(name, container) {
  let entry = charts.get(name);
  if (entry) return entry;
  const seeded = seed(name);
  const data = seeded.data;
  const width = Math.max(300, container.clientWidth || 480);
  const plot = new uPlot({
    width,
    height: 150,
    legend: { show: true, live: false },
    cursor: { show: true, drag: { x: false, y: false } },
    scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(1, max * 1.15)] } },
    axes: [
      {
        stroke: '#6b7385', grid: { stroke: '#eef0f4' }, ticks: { stroke: '#e3e6ec' }, space: 70,
        incrs: [1, 2, 5, 10, 15, 30, 60, 120, 300, 600], // whole seconds: a label never repeats
        values: (u, splits) => splits.map((v) => new Date(v * 1000).toLocaleTimeString([], { hour12: false })),
      },
      { stroke: '#6b7385', grid: { stroke: '#eef0f4' }, ticks: { stroke: '#e3e6ec' }, size: 50, label: 'msg/s', labelSize: 14 },
    ],
    series: [
      {},
      { label: 'in/s', stroke: '#3a6ff7', width: 2, fill: 'rgba(58,111,247,0.08)', points: { show: false } },
      { label: 'delivered/s', stroke: '#1f9d55', width: 1.5, points: { show: false } },
    ],
  }, data, container);
  entry = { plot, data, prev: seeded.prev, container };
  charts.set(name, entry);
  return entry;
}

function sample(entry, u, now) {
  const prev = entry.prev;
  if (prev && now - prev.now < MIN_SAMPLE_MS) return;
  entry.prev = { now, messagesIn: u.messagesIn, deliveries: u.deliveries };
  if (!prev) return;
  const dt = (now - prev.now) / 1000;
  const [t, rin, rout] = entry.data;
  t.push(now / 1000);
  rin.push(Math.max(0, (u.messagesIn - prev.messagesIn) / dt));
  rout.push(Math.max(0, (u.deliveries - prev.deliveries) / dt));
  if (t.length > POINTS) { t.shift(); rin.shift(); rout.shift(); }
  entry.plot.setData(entry.data);
}

function upstreamCard(u) {
  const card = el('article', { class: 'card upstream', 'data-upstream': u.name },
    el('div', { class: 'card-head' },
      el('h3', { text: u.name }),
      el('span', { class: 'badge', 'data-role': 'state' }),
      el('span', { class: 'outage', 'data-role': 'outage' }),
      el('span', { class: 'muted', 'data-role': 'adapter' }),
      el('span', { class: 'url', 'data-role': 'url' })),
    el('div', { class: 'reason', 'data-role': 'reason' }),
    el('div', { class: 'facts', 'data-role': 'facts' }),
    el('div', { class: 'pool', 'data-role': 'pool' }),
    el('div', { class: 'facts', 'data-role': 'cluster' }),
    el('div', { class: 'chart', 'data-role': 'chart' }),
    el('ul', { class: 'history', 'data-role': 'history' }));
  return card;
}

function renderUpstreams(s) {
  const root = document.getElementById('upstreams');
  const seen = new Set();
  for (const u of s.upstreams) {
    seen.add(u.name);
    let card = root.querySelector(`[data-upstream="${CSS.escape(u.name)}"]`);
    if (!card) {
      card = upstreamCard(u);
      root.append(card);
    }
    const c = u.client;
    const q = (role) => card.querySelector(`[data-role="${role}"]`);
    const badge = q('state');
    badge.textContent = c.state;
    badge.className = 'badge badge-' + c.state;
    card.dataset.state = c.state;
    q('adapter').textContent = u.adapter + (u.required ? '' : ' · optional');
    q('url').textContent = c.url;
    q('url').title = c.url;
    const last = u.history[u.history.length - 1];
    q('reason').textContent = c.state === 'open' ? '' : (last ? last.reason : '');
    // How long the upstream has been down: since it left `open` (gapStart), or since its first attempt if it never opened.
    const downSince = c.state === 'open' ? undefined : (u.gapStart ?? (u.history[0] ? u.history[0].at : s.startedAt));
    q('outage').textContent = downSince === undefined ? '' : 'down for ' + fmtDuration(s.now - downSince);
    q('outage').title = downSince === undefined ? '' : 'since ' + fmtTime(downSince);
    const entry = chartFor(u.name, q('chart'));
    sample(entry, u, s.now);
    card.dataset.points = String(entry.data[0].length);
    const rate = entry.data[1].length ? entry.data[1][entry.data[1].length - 1] : 0;
    q('facts').replaceChildren(
      fact(c.state === 'open' ? 'up for' : 'last attempt', c.state === 'open' ? fmtAgo(s.now - c.lastOpenAt) : fmtAgo(c.lastCloseAt ? s.now - c.lastCloseAt : undefined) + ' ago'),
      fact('sessions', fmtNum(u.sessions)),
      fact('topics', fmtNum(u.topics.length)),
      fact('msg in', fmtNum(u.messagesIn), 'messagesIn'),
      fact('in/s', fmtNum(rate)),
      fact('delivered', fmtNum(u.deliveries), 'deliveries'),
      fact('rtt', c.lastRttMs === undefined ? '–' : c.lastRttMs.toFixed(1) + ' ms'),
      fact('opens', fmtNum(c.connections)),
      fact('reconnects', fmtNum(c.reconnects), 'reconnects'),
      fact('lost', fmtNum(c.disconnects), 'disconnects'),
      fact('failed attempts', fmtNum(c.failedAttempts), 'failedAttempts'),
      fact('send queue', c.queue.messages + ' / ' + fmtBytes(c.queue.bytes)),
      listFact('dropped', c.dropped),
      fact('peer', c.remoteAddress ? c.remoteAddress + (c.family ? ' (' + c.family + ')' : '') : '–'),
    );
    renderPool(q('pool'), u.pool);
    renderClusterUpstream(q('cluster'), s.cluster && s.cluster.upstreams.find((m) => m.upstream === u.name));
    const items = u.history.slice(-20).reverse().map((h) =>
      el('li', null,
        el('span', { class: 't', text: fmtTime(h.at) }),
        el('span', { class: 'move', text: h.from + ' → ' + h.to }),
        el('span', { class: 'why', text: h.reason, title: h.reason })));
    q('history').replaceChildren(...items);
  }
  for (const card of [...root.children]) {
    const name = card.getAttribute('data-upstream');
    if (!seen.has(name)) {
      charts.get(name)?.plot.destroy();
      charts.delete(name);
      card.remove();
    }
  }
}

/** Endpoints (current one marked) and connections of a pool; nothing for one endpoint on one connection. */
function renderPool(root, pool) {
  if (!pool || (pool.endpoints.length < 2 && pool.connections.length < 2)) {
    root.replaceChildren();
    return;
  }
  const endpoints = el('ul', { class: 'endpoints' }, ...pool.endpoints.map((e) =>
    el('li', { class: e.current ? 'current' : '', 'data-current': String(e.current), title: e.failures + ' consecutive failures' },
      el('span', { class: 'url', text: e.url }),
      el('span', { class: 'muted', text: e.current ? ' ← current' : (e.failures ? ' · ' + e.failures + ' failures' : '') }))));
  const rows = pool.connections.map((c) => el('tr', null,
    el('td', { text: '#' + c.shard }),
    el('td', null, el('span', { class: 'badge badge-' + c.state, text: c.state })),
    el('td', { class: 'num', text: fmtNum(c.topics) }),
    el('td', { class: 'num', text: c.tokensLeft === undefined || c.tokensLeft === null ? '–' : String(c.tokensLeft) }),
    el('td', { class: 'num', text: fmtNum(c.queuedFrames) })));
  const table = el('table', { class: 'grid shards' },
    el('thead', null, el('tr', null, el('th', { text: 'connection' }), el('th', { text: 'state' }), el('th', { class: 'num', text: 'topics' }), el('th', { class: 'num', text: 'tokens left' }), el('th', { class: 'num', text: 'paced waiting' }))),
    el('tbody', null, ...rows));
  root.replaceChildren(
    el('div', { class: 'facts' },
      fact('failovers', fmtNum(pool.failovers), 'failovers'),
      fact('failbacks', fmtNum(pool.failbacks), 'failbacks'),
      fact('paced frames', fmtNum(pool.pacedFrames)),
      fact('handover', pool.handover ? 'in progress' : '–')),
    endpoints, table);
}

/** This hub's part in holding the upstream (cluster mode). */
function renderClusterUpstream(root, m) {
  if (!m) {
    root.replaceChildren();
    return;
  }
  const holder = m.holder ? (m.holder.self ? 'this hub' : m.holder.hub) + ' · epoch ' + m.holder.epoch : 'nobody';
  root.replaceChildren(
    fact('role', m.role, 'role'),
    fact('holder', holder, 'holder'),
    fact('held for', m.role === 'holder' ? fmtAgo(m.leaseAgeMs) : '–'),
    fact('hubs seen', m.role === 'holder' ? String(m.hubs.length) : '–', 'hubs'),
    fact('from NATS', fmtNum(m.bus.received + m.bus.unicastReceived), 'fromNats'),
    fact('to NATS', fmtNum(m.bus.published)),
    fact('takeovers', fmtNum(m.lease.acquisitions)),
    fact('fenced', fmtNum(m.lease.fences)),
    fact('forwarded', fmtNum(m.requests.forwarded) + (m.requests.forwardFailed ? ' (' + fmtNum(m.requests.forwardFailed) + ' failed)' : '')),
  );
}

// ── tables ───────────────────────────────────────────────────────────────

function renderTopics(s) {
  const rows = [];
  for (const u of s.upstreams) {
    const traffic = new Map((u.traffic || []).map((t) => [t.topic, t]));
    for (const t of [...u.topics].sort((a, b) => b.subscribers - a.subscribers || a.topic.localeCompare(b.topic))) {
      const tr = traffic.get(t.topic);
      rows.push(el('tr', { 'data-topic': t.topic },
        el('td', { text: u.name }),
        el('td', { class: 'wrap', text: t.topic }),
        el('td', { class: 'num', text: fmtNum(t.subscribers) }),
        el('td', { class: 'num', text: fmtNum(t.groups) }),
        el('td', { class: 'num', text: tr ? fmtNum(tr.messages) : '–' }),
        el('td', { class: 'num', text: tr ? fmtNum(tr.deliveries) : '–' })));
    }
  }
  document.querySelector('#topics tbody').replaceChildren(...rows);
  document.getElementById('topics').style.display = rows.length ? '' : 'none';
  document.getElementById('topics-empty').style.display = rows.length ? 'none' : '';
}

function renderConnections(s) {
  const rows = s.connections.map((c) => {
    const dropped = sum(c.dropped);
    return el('tr', { 'data-connection': c.id },
      el('td', { text: c.id }),
      el('td', { text: c.mode }),
      el('td', { text: c.sessions.map((m) => (m.group ? m.upstream + ' (' + m.group + ')' : m.upstream)).join(', ') || '–' }),
      el('td', { text: c.remoteAddress || c.transport }),
      el('td', { class: 'num', text: fmtNum(c.messagesOut) }),
      el('td', { class: 'num', text: fmtNum(c.messagesIn) }),
      el('td', { class: 'num', text: fmtNum(c.queuedMessages) }),
      el('td', { class: 'num', text: fmtBytes(c.queuedBytes) }),
      el('td', { class: dropped ? 'drops' : '', text: drops(c.dropped) }));
  });
  document.querySelector('#connections tbody').replaceChildren(...rows);
  document.getElementById('connections').style.display = rows.length ? '' : 'none';
  document.getElementById('connections-empty').style.display = rows.length ? 'none' : '';
  const total = s.connectionsTotal ?? s.connections.length;
  document.getElementById('connections-count').textContent =
    total > s.connections.length ? `(${s.connections.length} deepest queues of ${total})` : `(${total})`;
}

function renderServer(s) {
  const v = s.server;
  const loop = s.eventLoop;
  document.getElementById('server').replaceChildren(
    fact('state', v.state),
    fact('open sessions', fmtNum(v.open)),
    fact('handshaking', fmtNum(v.handshaking)),
    fact('accepted', fmtNum(v.accepted)),
    listFact('rejected', v.rejected, 'rejected'),
    listFact('errors', v.errors, 'errors'),
    listFact('hub drops', s.dropped, 'hub-drops'),
    fact('fd exhausted', v.fdExhausted ? 'yes' : 'no'),
    fact('loop p99', loop ? (loop.p99Seconds * 1000).toFixed(1) + ' ms' : '–'),
    fact('loop max', loop ? (loop.maxSeconds * 1000).toFixed(1) + ' ms' : '–'),
  );
}

function renderHeader(s) {
  const open = s.upstreams.filter((u) => u.client.state === 'open').length;
  const cluster = s.cluster
    ? ` · cluster ${s.cluster.name} as ${s.cluster.hubName} (NATS ${s.cluster.nats.connected ? 'up' : 'DOWN'}${s.cluster.nats.rttMs === undefined ? '' : ', rtt ' + s.cluster.nats.rttMs.toFixed(1) + ' ms'})`
    : '';
  document.getElementById('summary').textContent =
    `pid ${s.pid} · up ${fmtAgo(s.now - s.startedAt)} · ${open}/${s.upstreams.length} upstreams open · ${s.connectionsTotal ?? s.connections.length} workers${cluster}`;
  const ready = document.getElementById('ready');
  ready.textContent = s.health.ok ? 'ready' : 'not ready';
  ready.className = 'badge ' + (s.health.ok ? 'badge-ready' : 'badge-unready');
  ready.title = s.health.ok ? `/healthz 200 (ready when: ${s.health.readyWhen})` : s.health.reasons.join('\n');
}

function render(s) {
  renderHeader(s);
  renderUpstreams(s);
  renderTopics(s);
  renderConnections(s);
  renderServer(s);
  document.body.dataset.updated = String(s.now);
}

// ── live updates ─────────────────────────────────────────────────────────

function setLive(on) {
  const live = document.getElementById('live');
  live.textContent = on ? 'live' : 'offline, retrying';
  live.className = 'live ' + (on ? 'live-on' : 'live-off');
}

/**
 * The HTTP token, when the hub has one: given once in the fragment
 * (`/#token=…`, never sent to the server nor kept in its logs), then kept for
 * this tab only and taken out of the address bar. EventSource cannot set
 * headers, so /events takes it as `?token=`.
 */
function token() {
  const match = /(?:^#|&)token=([^&]*)/.exec(window.location.hash);
  if (match) {
    window.sessionStorage.setItem('wshub-token', decodeURIComponent(match[1]));
    window.history.replaceState(null, '', window.location.pathname + window.location.search);
  }
  return window.sessionStorage.getItem('wshub-token');
}

// The hub stopped answering (down, restarting, network): every value on the page is old. Say so over the
// whole page — the ready badge too, which must not stay a green "ready" the hub can no longer vouch for.
function setStale(stale) {
  if (document.body.classList.contains('stale') === stale) return;
  document.body.classList.toggle('stale', stale);
  const notice = document.getElementById('stale');
  const ready = document.getElementById('ready');
  if (stale) {
    const at = lastUpdate ? fmtTime(lastUpdate) : 'never';
    notice.textContent = 'The hub is not answering: everything below is as of ' + at + '. Retrying…';
    notice.hidden = false;
    ready.textContent = 'stale';
    ready.className = 'badge badge-stale';
    ready.title = 'no update from the hub since ' + at;
  } else {
    notice.hidden = true;
  }
}

function connect() {
  const t = token();
  const source = new EventSource(t ? '/events?token=' + encodeURIComponent(t) : '/events');
  source.addEventListener('open', () => setLive(true));
  source.addEventListener('error', () => {
    setLive(false);
    setStale(true);
    // EventSource hides the status; ask once whether the token is what is missing.
    const headers = t ? { authorization: 'Bearer ' + t } : {};
    window.fetch('/status', { method: 'HEAD', headers }).then((res) => {
      if (res.status !== 401) return;
      source.close();
      const live = document.getElementById('live');
      live.textContent = t ? 'token refused' : 'token required: open /#token=…';
    }, () => {});
  });
  source.addEventListener('history', (ev) => applyHistory(JSON.parse(ev.data)));
  source.addEventListener('stats', (ev) => {
    lastUpdate = Date.now();
    setLive(true);
    setStale(false);
    render(JSON.parse(ev.data));
  });
  // A hub that hangs keeps the connection open and sends nothing: no 'error' comes, so watch the clock too.
  window.setInterval(() => {
    if (lastUpdate && Date.now() - lastUpdate > STALE_AFTER_MS) setStale(true);
  }, 1000);
}

window.addEventListener('resize', () => {
  for (const entry of charts.values()) entry.plot.setSize({ width: Math.max(300, entry.container.clientWidth), height: 150 });
});

connect();
