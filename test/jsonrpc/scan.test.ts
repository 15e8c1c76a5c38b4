/**
 * The byte scanner the jsonrpc adapter splices ids with: it agrees with
 * JSON.parse on where members are, and on bytes an upstream might send that
 * are not JSON it returns undefined — never throws, never hangs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { arrayElements, canonicalJson, objectMembers, splice, SplicePoint, spanText, spanValue } from '../../src/adapters/json-scan.js';

/** A seeded generator (mulberry32), so a failure can be replayed. */
function rng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomJson(r: () => number, depth = 0): unknown {
  const pick = Math.floor(r() * (depth > 3 ? 4 : 6));
  switch (pick) {
    case 0: return Math.floor(r() * 1e6) - 5e5;
    case 1: return ['', 'a"b', 'x\\y', '}{][,:', 'caf\u00e9', '\u0000\n'][Math.floor(r() * 6)];
    case 2: return r() < 0.5 ? null : r() < 0.5;
    case 3: return r() * 100;
    case 4: return Array.from({ length: Math.floor(r() * 4) }, () => randomJson(r, depth + 1));
    default: {
      const out: Record<string, unknown> = {};
      for (let i = Math.floor(r() * 4); i > 0; i--) out[['id', 'params', 'result', 'k"ey', 'sub\\scription'][Math.floor(r() * 5)]!] = randomJson(r, depth + 1);
      return out;
    }
  }
}

/** JSON.stringify with random insignificant whitespace. */
function spaced(value: unknown, r: () => number): string {
  const ws = (): string => [' ', '', '\n', '\t ', ''][Math.floor(r() * 5)]!;
  if (Array.isArray(value)) return `${ws()}[${ws()}${value.map((v) => spaced(v, r)).join(`${ws()},${ws()}`)}${ws()}]${ws()}`;
  if (value !== null && typeof value === 'object') {
    return `${ws()}{${Object.entries(value).map(([k, v]) => `${ws()}${JSON.stringify(k)}${ws()}:${spaced(v, r)}`).join(',')}${ws()}}${ws()}`;
  }
  return `${ws()}${JSON.stringify(value)}${ws()}`;
}

test('scan: member and element spans agree with JSON.parse on 2000 random documents', () => {
  const r = rng(20261121);
  for (let n = 0; n < 2000; n++) {
    const value = randomJson(r);
    const buf = Buffer.from(spaced(value, r));
    if (Array.isArray(value)) {
      const spans = arrayElements(buf);
      assert.ok(spans, buf.toString());
      assert.deepEqual(spans.map((s) => spanValue(buf, s)), value);
    } else if (value !== null && typeof value === 'object') {
      const members = objectMembers(buf);
      assert.ok(members, buf.toString());
      assert.deepEqual(Object.fromEntries([...members].map(([k, s]) => [k, spanValue(buf, s)])), value);
    } else {
      assert.equal(objectMembers(buf), undefined);
      assert.equal(arrayElements(buf), undefined);
    }
  }
});

test('scan: splicing replaces exactly the value and keeps every other byte', () => {
  const buf = Buffer.from('{"jsonrpc":"2.0", "id" : 12345678901234567890 ,"result":{"id":1,"big":1.0}}');
  const id = objectMembers(buf)!.get('id')!;
  assert.equal(spanText(buf, id), '12345678901234567890');
  assert.equal(splice(buf, id, '"w-1"').toString(), '{"jsonrpc":"2.0", "id" : "w-1" ,"result":{"id":1,"big":1.0}}');
  const note = Buffer.from('{"method":"eth_subscription","params":{"result":{"subscription":"0xaa"},"subscription":"0xaa"}}');
  const params = objectMembers(note)!.get('params')!;
  const point = new SplicePoint(note, objectMembers(note, params[0])!.get('subscription')!);
  assert.equal(point.with(Buffer.from('"0xbb"')).toString(), '{"method":"eth_subscription","params":{"result":{"subscription":"0xaa"},"subscription":"0xbb"}}');
  // A duplicated key: the last one counts, as in JSON.parse.
  const dup = Buffer.from('{"id":1,"id":2}');
  assert.equal(spanText(dup, objectMembers(dup)!.get('id')!), '2');
});

test('scan: truncated, mutated and random bytes give undefined or a span, never a throw or a hang', () => {
  const r = rng(7);
  const seeds = ['{"jsonrpc":"2.0","id":1,"result":{"a":[1,2,{"b":"c\\"d"}]}}', '[{"id":1},{"id":"x"}]', '{"params":{"subscription":"0x1","result":null}}'];
  let undefinedCount = 0;
  for (let n = 0; n < 20_000; n++) {
    const seed = Buffer.from(seeds[n % seeds.length]!);
    let buf: Buffer;
    if (n % 3 === 0) buf = seed.subarray(0, Math.floor(r() * seed.length));
    else if (n % 3 === 1) {
      buf = Buffer.from(seed);
      for (let k = 0; k < 3; k++) buf[Math.floor(r() * buf.length)] = Math.floor(r() * 256);
    } else buf = Buffer.from(Array.from({ length: Math.floor(r() * 40) }, () => '{}[],:"\\ a1'.charCodeAt(Math.floor(r() * 12))));
    const members = objectMembers(buf);
    const elements = arrayElements(buf);
    if (!members && !elements) undefinedCount++;
    for (const [, [s, e]] of members ?? []) assert.ok(s >= 0 && e <= buf.length && s < e);
    for (const [s, e] of elements ?? []) assert.ok(s >= 0 && e <= buf.length && s < e);
  }
  assert.ok(undefinedCount > 1000, 'broken input is recognised as broken');
});

test('scan: canonical JSON sorts keys at every depth and keeps array order', () => {
  assert.equal(canonicalJson(['logs', { topics: ['0x2', null], address: '0x1' }]), '["logs",{"address":"0x1","topics":["0x2",null]}]');
  assert.equal(canonicalJson({ b: { d: 1, c: 2 }, a: [3, { z: 0, y: 0 }] }), '{"a":[3,{"y":0,"z":0}],"b":{"c":2,"d":1}}');
  assert.equal(canonicalJson({ a: undefined, b: 1 }), '{"b":1}');
});
