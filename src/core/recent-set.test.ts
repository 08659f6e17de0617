import { describe, expect, it } from 'vitest';
import { RecentSet } from './recent-set.js';

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

  it('refuses a non-positive capacity', () => {
    expect(() => new RecentSet(0)).toThrow(RangeError);
  });
});
