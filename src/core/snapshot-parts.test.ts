import { describe, expect, it } from 'vitest';
import { PartsMirror } from '../../test/helpers/parts.js';
import { MembersCache, VersionedMap, itemsJson, jsonByParts, partMarker } from './json-cache.js';
import { keyedRandom } from './random.js';
import { PartsTracker, assembleState, type PartsChange } from './snapshot-parts.js';

/** A small state with the three kinds of collection: an object map, its members inside a template, an array of items. */
class Toy {
  readonly prices = new VersionedMap<string, number>();
  readonly levels = new VersionedMap<string, { n: number }>();
  readonly orders = new Map<string, { id: string; json?: string }>();
  note = 'x';
  count = 0;
  readonly pricesText = new MembersCache<number>((p) => JSON.stringify(p));
  readonly levelsText = new MembersCache<{ n: number }>(
    (l) => JSON.stringify(l),
    (a, b) => a.n === b.n,
    (l) => ({ ...l }),
  );

  toSnapshot() {
    return {
      count: this.count,
      note: this.note,
      prices: Object.fromEntries(this.prices),
      book: { levels: Object.fromEntries([...this.levels].map(([k, v]) => [k, { ...v }])) },
      orders: [...this.orders.values()].map((o) => ({ id: o.id })),
    };
  }

  snapshotJson(): string {
    return jsonByParts(
      {
        prices: () => this.pricesText.object(this.prices, () => this.toSnapshot().prices),
        book: () => {
          const levels = this.levelsText.members(this.levels);
          return levels === null ? JSON.stringify(this.toSnapshot().book) : `{"levels":{${levels}}}`;
        },
        orders: () => itemsJson(this.orders, (o) => (o.json ??= JSON.stringify({ id: o.id }))),
      },
      (m) => ({ count: this.count, note: this.note, prices: m.prices, book: m.book, orders: m.orders }),
      () => this.toSnapshot(),
    );
  }
}

function apply(fields: Map<string, string>, change: PartsChange): void {
  if (change.replace) fields.clear();
  for (const field of change.del) fields.delete(field);
  for (let i = 0; i < change.set.length; i += 2) fields.set(change.set[i]!, change.set[i + 1]!);
}

describe('PartsTracker and assembleState', () => {
  it('store exactly the snapshot text through random sets, deletes, re-adds, clears, touches and failed commits', () => {
    for (const keys of [['A', 'B', 'C', 'D', 'E'], ['A', 'B', '7', 'C']]) {
      const rng = keyedRandom(3, keys.join());
      const mirror = new PartsMirror(() => rng.next(), 0.25);
      const toy = new Toy();
      const pick = () => keys[Math.floor(rng.next() * keys.length)]!;
      for (let i = 0; i < 3000; i += 1) {
        const r = rng.next();
        const key = pick();
        if (r < 0.3) toy.prices.set(key, Math.floor(rng.next() * 5));
        else if (r < 0.4) toy.prices.delete(key);
        else if (r < 0.5) toy.levels.set(key, { n: Math.floor(rng.next() * 3) });
        else if (r < 0.6) {
          const level = toy.levels.get(key);
          if (level) {
            level.n += 1; // in place
            toy.levels.touch();
          }
        } else if (r < 0.65) toy.levels.delete(key);
        else if (r < 0.75) toy.orders.set(`o${Math.floor(rng.next() * 6)}`, { id: `id${i}` });
        else if (r < 0.82) toy.orders.delete(`o${Math.floor(rng.next() * 6)}`);
        else if (r < 0.84) toy.prices.clear();
        else if (r < 0.9) toy.count += 1;
        else if (r < 0.92) toy.note = rng.next() < 0.5 ? '\u0001o1' : 'x'; // a string equal to a marker: stored whole
        if (rng.next() < 0.7) mirror.commit(() => toy.snapshotJson());
      }
      expect(mirror.commits).toBeGreaterThan(1000);
      expect(mirror.failures).toBeGreaterThan(300);
      expect(mirror.replaces).toBeLessThan(mirror.commits);
    }
  });

  it('writes only what changed: one entry of a 500-entry map, the shell, nothing else', () => {
    const toy = new Toy();
    for (let i = 0; i < 500; i += 1) {
      toy.prices.set(`S${i}`, i);
      toy.levels.set(`S${i}`, { n: i });
      toy.orders.set(`S${i}`, { id: `S${i}` });
    }
    const tracker = new PartsTracker();
    const fields = new Map<string, string>();
    const first = tracker.build(() => toy.snapshotJson());
    expect(first.replace).toBe(true);
    apply(fields, first);
    tracker.landed();
    toy.prices.set('S17', 1.5);
    toy.count += 1;
    const change = tracker.build(() => toy.snapshotJson());
    expect(change.replace).toBe(false);
    expect(change.set.filter((_, i) => i % 2 === 0)).toEqual(['shell', '1:S17']); // the count is unchanged: not written
    expect(change.del).toEqual([]);
    apply(fields, change);
    tracker.landed();
    expect(assembleState({ fields })).toBe(toy.snapshotJson());

    // A key deleted and set again moves to the end of the map, and of the stored order.
    toy.levels.delete('S3');
    toy.levels.set('S3', { n: 3 });
    toy.orders.delete('S4');
    const moved = tracker.build(() => toy.snapshotJson());
    expect(moved.set.filter((_, i) => i % 2 === 0)).toEqual(['2:S3', 'count']);
    expect(moved.del).toEqual(['3:S4']);
    apply(fields, moved);
    tracker.landed();
    expect(assembleState({ fields })).toBe(toy.snapshotJson());
  });

  it('after a failed commit, the next one still writes every change since the last that landed', () => {
    const toy = new Toy();
    toy.prices.set('A', 1);
    toy.prices.set('B', 2);
    const tracker = new PartsTracker();
    const fields = new Map<string, string>();
    apply(fields, tracker.build(() => toy.snapshotJson()));
    tracker.landed();
    toy.prices.set('A', 10);
    tracker.build(() => toy.snapshotJson()); // the MULTI fails: not applied, not landed
    toy.prices.set('B', 20);
    const next = tracker.build(() => toy.snapshotJson());
    expect(next.set.filter((_, i) => i % 2 === 0)).toEqual(['1:A', '1:B']);
    apply(fields, next);
    tracker.landed();
    expect(assembleState({ fields })).toBe(toy.snapshotJson());
  });

  it('replaces the key when the state holds a string equal to a marker, and on the first commit', () => {
    const toy = new Toy();
    toy.prices.set('A', 1);
    toy.note = '\u0001o1';
    const tracker = new PartsTracker();
    const change = tracker.build(() => toy.snapshotJson());
    expect(change).toEqual({ replace: true, set: ['whole', toy.snapshotJson()], del: [] });
    tracker.landed();
    toy.note = partMarker('prices'); // a jsonByParts marker: that level falls back to JSON.stringify, still by parts above it
    const again = tracker.build(() => toy.snapshotJson());
    expect(again.replace).toBe(true);
    const fields = new Map<string, string>();
    apply(fields, again);
    expect(assembleState({ fields })).toBe(toy.snapshotJson());
  });

  it('reads a string as the whole snapshot, and refuses parts that do not fit', () => {
    expect(assembleState({ value: '{"a":1}' })).toBe('{"a":1}');
    expect(() => assembleState({ fields: new Map([['1:A', '1 "A":1']]) })).toThrow(/no shell/);
    const shell: [string, string] = ['shell', '{"a":"\\u0001o1"}'];
    expect(() => assembleState({ fields: new Map([shell, ['2:A', '1 "A":1'], ['count', '2']]) })).toThrow(/does not name/);
    expect(() => assembleState({ fields: new Map([shell, ['1:A', 'x'], ['count', '2']]) })).toThrow(/cannot place/);
    // Parts lost under the service (the key deleted while it ran) do not add up to the count.
    expect(() => assembleState({ fields: new Map([shell, ['1:A', '1 "A":1'], ['count', '3']]) })).toThrow(/count says 3/);
    expect(() => assembleState({ fields: new Map([shell, ['1:A', '1 "A":1']]) })).toThrow(/count says nothing/);
    expect(assembleState({ fields: new Map([shell, ['1:B', '2 "B":2'], ['1:A', '1 "A":1'], ['count', '3']]) })).toBe('{"a":{"A":1,"B":2}}');
  });
});
