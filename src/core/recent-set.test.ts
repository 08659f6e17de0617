import { describe, expect, it } from 'vitest';
import { seededRandom } from './random.js';
import { DuplicateGuard, RecentSet, TimedSet } from './recent-set.js';

/** The definition: a Set in insertion order, the oldest key dropped beyond capacity. */
class ReferenceSet {
  readonly keys = new Set<string>();
  constructor(readonly capacity: number) {}
  add(key: string): boolean {
    if (this.keys.has(key)) return false;
    this.keys.add(key);
    if (this.keys.size > this.capacity) this.keys.delete(this.keys.values().next().value as string);
    return true;
  }
}

describe('RecentSet', () => {
  it('recognises keys it has seen and reports duplicates', () => {
    const set = new RecentSet(3);
    expect(set.add('a')).toBe(true);
    expect(set.add('a')).toBe(false);
    expect(set.has('a')).toBe(true);
    expect(set.has('b')).toBe(false);
  });

  it('forgets the oldest key beyond its capacity', () => {
    const set = new RecentSet(3);
    for (const key of ['a', 'b', 'c', 'd']) set.add(key);
    expect(set.size).toBe(3);
    expect(set.has('a')).toBe(false);
    expect(set.values()).toEqual(['b', 'c', 'd']);
  });

  it('behaves exactly like a Set that drops its oldest key, through random adds, repeats and clears', () => {
    const rng = seededRandom('recent-set');
    for (const capacity of [1, 2, 7, 100]) {
      const set = new RecentSet(capacity);
      const reference = new ReferenceSet(capacity);
      for (let i = 0; i < 5000; i++) {
        if (rng.next() < 0.001) {
          set.clear();
          reference.keys.clear();
        }
        const key = `k${Math.floor(rng.next() * capacity * 3)}`;
        expect(set.add(key)).toBe(reference.add(key));
        const probe = `k${Math.floor(rng.next() * capacity * 3)}`;
        expect(set.has(probe)).toBe(reference.keys.has(probe));
        expect(set.size).toBe(reference.keys.size);
      }
      expect(set.values()).toEqual([...reference.keys]);
    }
  });

  it('refuses a non-positive capacity', () => {
    expect(() => new RecentSet(0)).toThrow(RangeError);
  });
});

describe('TimedSet and DuplicateGuard', () => {
  it('keeps a key until its time, then forgets it', () => {
    const set = new TimedSet();
    set.add('a', 100);
    set.add('b', 200);
    set.evict(100);
    expect(set.has('a')).toBe(false);
    expect(set.has('b')).toBe(true);
    set.evict(199);
    expect(set.has('b')).toBe(true);
    set.evict(200);
    expect(set.size).toBe(0);
  });

  it('extends a key added again with a later time', () => {
    const set = new TimedSet();
    set.add('a', 100);
    set.add('a', 300);
    set.evict(150);
    expect(set.has('a')).toBe(true);
    set.evict(300);
    expect(set.has('a')).toBe(false);
  });

  it('keeps every key within the time window, far beyond the count window', () => {
    const guard = new DuplicateGuard(10);
    guard.add('old', 1_000);
    for (let i = 0; i < 10_000; i++) guard.add(`other-${i}`, 1_000);
    guard.evict(999);
    expect(guard.has('old')).toBe(true);
    guard.evict(1_000);
    expect(guard.has('old')).toBe(false);
    expect(guard.has('other-9999')).toBe(true); // still in the count window
  });
});

/** The first TimedSet (a Map of times and a queue of {key, until}): the definition the compact one keeps. */
class ReferenceTimedSet {
  private readonly until = new Map<string, number>();
  private queue: Array<{ key: string; until: number }> = [];
  private head = 0;
  has(key: string): boolean {
    return this.until.has(key);
  }
  add(key: string, until: number): void {
    const known = this.until.get(key);
    if (known !== undefined && known >= until) return;
    this.until.set(key, until);
    this.queue.push({ key, until });
  }
  evict(now: number): void {
    while (this.head < this.queue.length) {
      const item = this.queue[this.head]!;
      if (item.until > now) break;
      if (this.until.get(item.key) === item.until) this.until.delete(item.key);
      this.head += 1;
    }
  }
  get size(): number {
    return this.until.size;
  }
}

describe('TimedSet against its reference', () => {
  it('answers like the Map-and-queue definition over random adds, re-adds and evictions', () => {
    let seed = 7;
    const random = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (let round = 0; round < 20; round++) {
      const set = new TimedSet();
      const reference = new ReferenceTimedSet();
      let now = 1_700_000_000_000;
      for (let op = 0; op < 5_000; op++) {
        const r = random();
        const key = `k${Math.floor(random() * 300)}`;
        if (r < 0.6) {
          const until = now + Math.floor(random() * 2_000) - 200;
          set.add(key, until);
          reference.add(key, until);
        } else if (r < 0.75) {
          now += Math.floor(random() * 300);
          set.evict(now);
          reference.evict(now);
        } else if (r < 0.77) {
          set.clear();
          (reference as unknown as { until: Map<string, number> }).until.clear();
          Object.assign(reference, { queue: [], head: 0 });
        }
        expect(set.has(key)).toBe(reference.has(key));
        expect(set.size).toBe(reference.size);
      }
    }
  });
});
