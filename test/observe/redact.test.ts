/**
 * The one redaction function: URLs by structure (user info, query values not
 * on the public list, path segments that are secrets), known secrets by
 * value in any text, in their encoded forms too.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { envSecrets, resolveConfig } from '../../src/hub/config.js';
import { WshubError } from '../../src/errors.js';
import { MIN_SECRET_TEXT_LENGTH, PUBLIC_QUERY_PARAMS, Redactor } from '../../src/redact.js';

const LISTEN_KEY = 'pqia91ma19a5s61cv6a81va65sdf19v8a65a1a5s61cv6a81va65sdf19v8a65a1';

test('URLs: user info and every query value not on the public list are redacted, public ones keep their spelling', () => {
  const r = new Redactor();
  assert.equal(
    r.url('wss://a:b@h.example/x?token=1&n=2&jwt=e.y.j&bearer=zz&streams=btcusdt@trade/ethusdt@trade&V=10'),
    'wss://[REDACTED]:[REDACTED]@h.example/x?token=[REDACTED]&n=[REDACTED]&jwt=[REDACTED]&bearer=[REDACTED]&streams=btcusdt@trade/ethusdt@trade&V=10',
  );
  assert.equal(r.url('not a url?token=1'), 'not a url?[REDACTED]');
  assert.ok(PUBLIC_QUERY_PARAMS.includes('streams'));
  assert.equal(new Redactor([], { publicQueryParams: ['n'] }).url('ws://h/?n=2&streams=x'), 'ws://h/?n=2&streams=[REDACTED]');
});

test('a URL path segment that came from ${VAR} is redacted, however short; a public query value equal to a secret too', () => {
  const r = new Redactor([LISTEN_KEY, 'k1', 'btc']);
  assert.equal(r.url(`wss://stream.example/ws/${LISTEN_KEY}`), 'wss://stream.example/ws/[REDACTED]');
  assert.equal(r.url('wss://stream.example/k1/x?streams=btc'), 'wss://stream.example/[REDACTED]/x?streams=[REDACTED]');
  // A secret inside a longer segment is cut out of it.
  assert.equal(r.url(`wss://stream.example/ws/key-${LISTEN_KEY}`), 'wss://stream.example/ws/[REDACTED]');
});

test('text: known secrets in raw, percent-encoded and JSON-escaped forms; short ones left alone in free text', () => {
  const odd = 'p@ss "word"/with spaces+plus';
  const r = new Redactor([LISTEN_KEY, odd, 'abc']);
  assert.equal(r.text(`closed: listenKey ${LISTEN_KEY} expired`), 'closed: listenKey [REDACTED] expired');
  assert.equal(r.text(`wss://h/ws/${encodeURIComponent(odd)}`), 'wss://h/ws/[REDACTED]');
  assert.equal(r.text(`?q=${new URLSearchParams({ q: odd }).toString().slice(2)}`), '?q=[REDACTED]');
  const line = JSON.stringify({ reason: `bad ${odd}` });
  const redacted = r.text(line);
  assert.deepEqual(JSON.parse(redacted), { reason: 'bad [REDACTED]' }, 'a JSON line stays valid JSON');
  assert.ok('abc'.length < MIN_SECRET_TEXT_LENGTH);
  assert.equal(r.text('abcdef'), 'abcdef', 'a short secret is not searched for in free text');
});

test('value: a deep copy with every string redacted, errors serialized, header maps by name', () => {
  const r = new Redactor([LISTEN_KEY]);
  const input = {
    n: 1,
    url: `wss://u:p@h/ws/${LISTEN_KEY}?jwt=x&streams=a`,
    list: [`x ${LISTEN_KEY}`],
    cause: new WshubError('ERR_SERVER_CLOSED', `ERR_SERVER_CLOSED h (server closed 4000 "${LISTEN_KEY} expired")`, { details: { address: 'h:443' } }),
    headers: { Authorization: 'Bearer x', 'X-Custom': `v ${LISTEN_KEY}`, Accept: 'json' },
    [LISTEN_KEY]: 2,
  };
  const out = r.value(input) as Record<string, unknown>;
  assert.equal(out.n, 1);
  assert.equal(out.url, 'wss://[REDACTED]:[REDACTED]@h/ws/[REDACTED]?jwt=[REDACTED]&streams=a');
  assert.deepEqual(out.list, ['x [REDACTED]']);
  assert.deepEqual(out.cause, { code: 'ERR_SERVER_CLOSED', message: 'ERR_SERVER_CLOSED h (server closed 4000 "[REDACTED] expired")', address: 'h:443' });
  assert.deepEqual(out.headers, { Authorization: '[REDACTED]', 'X-Custom': 'v [REDACTED]', Accept: 'json' });
  assert.equal(out['[REDACTED]'], 2, 'keys are redacted too');
  assert.ok(!JSON.stringify(out).includes(LISTEN_KEY));
  assert.ok(input.list[0]!.includes(LISTEN_KEY), 'the input is not modified');
});

test('error: a printable copy keeps the code and loses the secret', () => {
  const r = new Redactor([LISTEN_KEY]);
  const e = r.error(new WshubError('ERR_LISTEN_FAILED', `cannot listen on /run/${LISTEN_KEY}/x.sock: ENOENT`, { details: { address: `/run/${LISTEN_KEY}/x.sock` } })) as WshubError;
  assert.equal(e.code, 'ERR_LISTEN_FAILED');
  assert.equal(e.message, 'cannot listen on /run/[REDACTED]/x.sock: ENOENT');
  assert.equal(e.details.address, '/run/[REDACTED]/x.sock');
  const plain = r.error(new Error(`boom ${LISTEN_KEY}`)) as Error;
  assert.ok(!plain.message.includes(LISTEN_KEY) && !(plain.stack ?? '').includes(LISTEN_KEY));
});

test('the config carries every value it took from the environment, and no default written in the file', () => {
  const env = { LISTEN_KEY, FEED_TOKEN: 'feed-token-value', EMPTY: '' };
  const raw = {
    listen: '/tmp/x.sock',
    logLevel: '${LEVEL:-info}',
    upstreams: { feed: { url: 'wss://h/ws/${LISTEN_KEY}', headers: { Authorization: 'Bearer ${FEED_TOKEN}' }, protocols: ['p-${EMPTY:-none}'] } },
  };
  const config = resolveConfig(raw, env);
  assert.deepEqual([...config.secrets!].sort(), [LISTEN_KEY, 'feed-token-value'].sort());
  assert.deepEqual([...envSecrets(raw, env)].sort(), [LISTEN_KEY, 'feed-token-value'].sort());
  // envSecrets works on a config that will not validate, and never throws on a missing variable.
  assert.deepEqual([...envSecrets({ bad: ['${MISSING}', '${FEED_TOKEN}'] }, env)], ['feed-token-value']);
});
