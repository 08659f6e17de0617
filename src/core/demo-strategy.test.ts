import { describe, expect, it } from 'vitest';
import { DemoStrategy } from './demo-strategy.js';
import { TradeSignalInput } from './messages.js';
import { seededRandom } from './random.js';

function run(seed: number, prices: number[]) {
  const strategy = new DemoStrategy({ symbols: ['BTCUSDT'], priceStepPct: 0.001 });
  const rng = seededRandom(seed);
  return prices.map((price) => {
    strategy.onPrice('BTCUSDT', price);
    return strategy.next(rng);
  });
}

describe('DemoStrategy', () => {
  it('says nothing before it has a price', () => {
    const strategy = new DemoStrategy({ symbols: ['BTCUSDT'], priceStepPct: 0.001 });
    expect(strategy.next(seededRandom(1))).toBeNull();
  });

  it('buys into a rising market and sells into a falling one, with valid signals', () => {
    const up = run(1, Array.from({ length: 30 }, (_, i) => 100 * 1.002 ** i)).slice(10);
    const down = run(1, Array.from({ length: 30 }, (_, i) => 100 * 0.998 ** i)).slice(10);
    expect(up.filter((s) => s?.action === 'BUY').length).toBeGreaterThan(15);
    expect(down.filter((s) => s?.action === 'SELL').length).toBeGreaterThan(15);
    for (const signal of [...up, ...down]) expect(TradeSignalInput.safeParse(signal).success).toBe(true);
  });

  it('mostly holds in a flat market', () => {
    const flat = run(2, Array.from({ length: 40 }, () => 100));
    expect(flat.filter((s) => s?.action === 'HOLD').length).toBeGreaterThan(20);
  });

  it('is reproducible for a seed', () => {
    const prices = Array.from({ length: 20 }, (_, i) => 100 + Math.sin(i) * 0.5);
    expect(run(7, prices)).toEqual(run(7, prices));
  });
});
