import { describe, expect, it } from 'vitest';
import { fx } from './fixed.js';
import { instrumentTable } from './instruments.js';
import { MembersCache, VersionedMap, isOrderedKey, jsonByParts, partMarker, spliceParts } from './json-cache.js';
import { Ledger } from './ledger.js';
import { keyedRandom } from './random.js';
import { TickGate } from './tick-rules.js';

describe('isOrderedKey', () => {
  it('is false for array indices and __proto__, true for every other key', () => {
    for (const key of ['0', '7', '1000', '4294967294', '__proto__']) expect(isOrderedKey(key)).toBe(false);
    for (const key of ['BTCUSDT', '1000SHIBUSDT', '01', '4294967295', '-1', '1.5', '', 'proto']) expect(isOrderedKey(key)).toBe(true);
    // The definition: a plain object lists exactly these keys out of insertion order.
    const keys = ['b', '10', 'a', '2', '01', '4294967295', '4294967294'];
    const ordered = Object.keys(Object.fromEntries(keys.map((k) => [k, 1])));
    expect(keys.filter(isOrderedKey)).toEqual(ordered.filter(isOrderedKey));
  });
});

describe('MembersCache', () => {
  const stringify = (map: Map<string, unknown>) => JSON.stringify(Object.fromEntries(map));

  it('writes a map as JSON.stringify(Object.fromEntries(map)) through sets, replacements and deletes', () => {
    const cache = new MembersCache<number>((v) => JSON.stringify(v));
    const map = new Map<string, number>();
    const rng = keyedRandom(1, 'members');
    const keys = ['A', 'B', 'C', 'D', 'E', 'FOO', 'x"y', 'é'];
    for (let i = 0; i < 2000; i++) {
      const key = keys[Math.floor(rng.next() * keys.length)] as string;
      if (rng.next() < 0.3) map.delete(key);
      else map.set(key, Math.floor(rng.next() * 5));
      expect(cache.object(map, () => Object.fromEntries(map))).toBe(stringify(map));
    }
  });

  it('compares values mutated in place by content when told how', () => {
    const cache = new MembersCache<{ n: number }>((v) => JSON.stringify(v), (a, b) => a.n === b.n, (v) => ({ ...v }));
    const value = { n: 1 };
    const map = new Map([['A', value]]);
    expect(cache.object(map, () => Object.fromEntries(map))).toBe('{"A":{"n":1}}');
    value.n = 2;
    expect(cache.object(map, () => Object.fromEntries(map))).toBe('{"A":{"n":2}}');
  });

  it('gives an unchanged VersionedMap its text again, and sees every set, delete, clear and touch', () => {
    const cache = new MembersCache<{ n: number }>((v) => JSON.stringify(v), (a, b) => a.n === b.n, (v) => ({ ...v }));
    const map = new VersionedMap<string, { n: number }>();
    const rng = keyedRandom(2, 'versioned');
    for (let i = 0; i < 2000; i++) {
      const key = `K${Math.floor(rng.next() * 6)}`;
      const r = rng.next();
      if (r < 0.3) map.set(key, { n: i });
      else if (r < 0.4) map.delete(key);
      else if (r < 0.42) map.clear();
      else if (r < 0.6 && map.has(key)) {
        map.get(key)!.n += 1;
        map.touch();
      }
      expect(cache.object(map, () => Object.fromEntries(map))).toBe(stringify(map));
    }
  });

  it('falls back to the definition for keys a plain object reorders', () => {
    const cache = new MembersCache<number>((v) => JSON.stringify(v));
    const map = new Map([['B', 1], ['10', 2], ['2', 3]]);
    expect(cache.members(map)).toBeNull();
    expect(cache.object(map, () => Object.fromEntries(map))).toBe(stringify(map));
    expect(cache.object(map, () => Object.fromEntries(map))).toBe('{"2":3,"10":2,"B":1}');
  });
});

describe('spliceParts', () => {
  it('puts each part in place of its marker', () => {
    const shell = JSON.stringify({ a: partMarker('a'), b: 1, c: partMarker('c') });
    expect(spliceParts(shell, { a: () => '[1,2]', c: () => '{"x":null}' })).toBe('{"a":[1,2],"b":1,"c":{"x":null}}');
  });

  it('gives up when a string of the state equals a marker, or one is missing', () => {
    const twice = JSON.stringify({ a: partMarker('a'), reason: partMarker('a') });
    expect(spliceParts(twice, { a: () => '1' })).toBeNull();
    const other = JSON.stringify({ a: partMarker('a'), reason: partMarker('zz') });
    expect(spliceParts(other, { a: () => '1' })).toBeNull();
    expect(spliceParts(JSON.stringify({ a: 1 }), { a: () => '1' })).toBeNull();
    // Not at the start of a string: not a marker.
    const inside = JSON.stringify({ a: partMarker('a'), reason: `x${partMarker('a')}` });
    expect(spliceParts(inside, { a: () => '1' })).toBe(`{"a":1,"reason":${JSON.stringify(`x${partMarker('a')}`)}}`);
  });
});

describe('jsonByParts', () => {
  it('is JSON.stringify of the whole, from the parts, and falls back to it when a state string equals a marker', () => {
    const whole = { a: [1, 2], b: 'x', c: { y: null } };
    const parts = { a: () => JSON.stringify(whole.a), c: () => JSON.stringify(whole.c) };
    expect(jsonByParts(parts, (m) => ({ a: m.a, b: whole.b, c: m.c }), () => whole)).toBe(JSON.stringify(whole));
    const odd = { ...whole, b: partMarker('a') };
    expect(jsonByParts(parts, (m) => ({ a: m.a, b: odd.b, c: m.c }), () => odd)).toBe(JSON.stringify(odd));
  });
});

const SYMBOLS = ['BTCUSDT', 'ETHUSDT', 'H0001USDT', 'H0002USDT', 'SOLUSDT'];

describe('Ledger.toSnapshotJson', () => {
  it('is exactly JSON.stringify(toSnapshot()) through fills, flips, marks, clones and a restore', () => {
    let ledger = new Ledger(fx(100_000));
    const rng = keyedRandom(7, 'ledger');
    const same = (l: Ledger) => expect(l.toSnapshotJson()).toBe(JSON.stringify(l.toSnapshot()));
    same(ledger);
    for (let i = 0; i < 3000; i++) {
      const symbol = SYMBOLS[Math.floor(rng.next() * SYMBOLS.length)] as string;
      const price = fx((100 + Math.floor(rng.next() * 20)).toString());
      if (rng.next() < 0.4) ledger.setMark(symbol, price);
      else {
        const side = rng.next() < 0.5 ? 'BUY' : 'SELL';
        ledger.applyFill({ order_id: `o${i}`, symbol, side, quantity: fx((1 + Math.floor(rng.next() * 3)).toString()), price, fee: fx('0.01'), ts: i });
      }
      same(ledger);
      if (i % 500 === 499) {
        const clone = ledger.clone();
        same(clone);
        expect(clone.toSnapshotJson()).toBe(ledger.toSnapshotJson());
        const restored = Ledger.fromSnapshot(JSON.parse(ledger.toSnapshotJson()));
        expect(restored.toSnapshotJson()).toBe(ledger.toSnapshotJson());
        ledger = rng.next() < 0.5 ? clone : restored;
      }
    }
  });

  it('stays exact with a symbol a plain object reorders', () => {
    const ledger = new Ledger(fx(100_000));
    ledger.applyFill({ order_id: 'a', symbol: 'ETHUSDT', side: 'BUY', quantity: fx(1), price: fx(10), fee: fx(0), ts: 1 });
    ledger.applyFill({ order_id: 'b', symbol: '1000', side: 'BUY', quantity: fx(1), price: fx(10), fee: fx(0), ts: 2 });
    expect(ledger.toSnapshotJson()).toBe(JSON.stringify(ledger.toSnapshot()));
  });
});

describe('TickGate.toSnapshotJson', () => {
  it('is exactly JSON.stringify(toSnapshot()) through accepted, refused (a candidate set in place) and stale ticks, and a restore', () => {
    const table = instrumentTable(['BTCUSDT', 'ETHUSDT', '1000', 'H0001USDT'].map((symbol) => ({ symbol, tick_size: 0.01, step_size: 0.001, min_notional_usd: 10, start_price: 100 })));
    const gate = new TickGate(table, { maxClockSkewMs: 5000, maxJumpPct: 0.2 });
    const rng = keyedRandom(3, 'gate');
    const symbols = ['BTCUSDT', 'ETHUSDT', 'H0001USDT'];
    const same = (g: TickGate) => expect(g.toSnapshotJson()).toBe(JSON.stringify(g.toSnapshot()));
    same(gate);
    for (let i = 0; i < 2000; i++) {
      const symbol = symbols[Math.floor(rng.next() * symbols.length)] as string;
      const price = 100 * (rng.next() < 0.2 ? 2 : 1) + Math.floor(rng.next() * 5);
      gate.offer({ schema_version: 1, symbol, price, ts: 1000 + i - Math.floor(rng.next() * 3), source: 'simulator' }, 10_000);
      same(gate);
    }
    const copy = new TickGate(table, { maxClockSkewMs: 5000, maxJumpPct: 0.2 });
    copy.restore(JSON.parse(gate.toSnapshotJson()));
    expect(copy.toSnapshotJson()).toBe(gate.toSnapshotJson());
    gate.offer({ schema_version: 1, symbol: '1000', price: 100, ts: 5000, source: 'manual' }, 10_000);
    same(gate);
  });
});
