import { describe, expect, it } from 'vitest';
import { Conflator } from './conflation.js';

describe('Conflator', () => {
  it('lets the first update through, holds the rest of the interval, flushes the last one after it', () => {
    const c = new Conflator(100);
    expect(c.offer('BTC', 1000)).toBe(true);
    expect(c.offer('BTC', 1010)).toBe(false);
    expect(c.offer('BTC', 1090)).toBe(false);
    expect(c.nextDue()).toBe(1100);
    expect(c.due(1099)).toEqual([]);
    expect(c.due(1100)).toEqual(['BTC']);
    expect(c.due(1300)).toEqual([]);
    expect(c.nextDue()).toBeUndefined();
    // The flush counted as an emission: the next update waits until 1200.
    expect(c.offer('BTC', 1150)).toBe(false);
    expect(c.offer('BTC', 1200)).toBe(true);
    expect(c.nextDue()).toBeUndefined();
  });

  it('keeps symbols apart', () => {
    const c = new Conflator(100);
    expect(c.offer('BTC', 0)).toBe(true);
    expect(c.offer('ETH', 10)).toBe(true);
    expect(c.offer('BTC', 20)).toBe(false);
    expect(c.offer('ETH', 30)).toBe(false);
    expect(c.nextDue()).toBe(100);
    expect(c.due(100)).toEqual(['BTC']);
    expect(c.due(110)).toEqual(['ETH']);
  });

  it('interval 0 lets every update through', () => {
    const c = new Conflator(0);
    expect([1, 1, 1].map((t) => c.offer('BTC', t))).toEqual([true, true, true]);
  });

  it('at most one emission per interval under a flood, and the last update always goes out', () => {
    const c = new Conflator(100);
    const emitted: number[] = [];
    for (let t = 0; t < 1000; t += 3) {
      if (c.offer('BTC', t)) emitted.push(t);
      for (const _ of c.due(t)) emitted.push(t);
    }
    const flushAt = c.nextDue();
    if (flushAt !== undefined) for (const _ of c.due(flushAt)) emitted.push(flushAt);
    for (let i = 1; i < emitted.length; i++) expect(emitted[i]! - emitted[i - 1]!).toBeGreaterThanOrEqual(100);
    expect(emitted[emitted.length - 1]).toBeGreaterThanOrEqual(999);
  });
});
