import { describe, expect, it } from 'vitest';
import { fx } from './fixed.js';
import { instrumentTable } from './instruments.js';
import type { PriceTick, TickSource } from './messages.js';
import { DEFAULT_TICK_RULES, TickGate, checkTickPrice } from './tick-rules.js';

const instruments = instrumentTable([
  { symbol: 'BNBUSDT', tick_size: 0.01, step_size: 0.001, min_notional_usd: 10, start_price: 600 },
]);
const NOW = 1_764_000_000_000;

function tick(price: number, ts = NOW, source: TickSource = 'feed', symbol = 'BNBUSDT'): PriceTick {
  return { schema_version: 1, symbol, price, ts, source };
}

function gate(): TickGate {
  return new TickGate(instruments, DEFAULT_TICK_RULES);
}

describe('checkTickPrice', () => {
  it.each([
    [600, 'ok'],
    [600.004, 'ok'], // rounds to 600.00
    [0.005, 'ok'], // half away from zero: one tick
    [0.004, 'BAD_PRICE'],
    [1e-300, 'BAD_PRICE'],
    [0, 'BAD_PRICE'],
    [-1, 'BAD_PRICE'],
  ])('%s → %s', (price, expected) => {
    const result = checkTickPrice(instruments, 'BNBUSDT', price);
    expect(result.ok ? 'ok' : result.code).toBe(expected);
  });

  it('rounds to the tick', () => {
    expect(checkTickPrice(instruments, 'BNBUSDT', 600.004)).toEqual({ ok: true, price: fx('600') });
  });

  it('refuses an unknown symbol', () => {
    expect(checkTickPrice(instruments, 'DOGEUSDT', 1)).toMatchObject({ ok: false, code: 'UNKNOWN_SYMBOL' });
  });
});

describe('TickGate', () => {
  it('refuses a sub-tick price without touching state (the 1e-300 and 0.004 ticks)', () => {
    const g = gate();
    expect(g.offer(tick(598.1), NOW).kind).toBe('accept');
    expect(g.offer(tick(1e-300, NOW + 1), NOW + 1)).toMatchObject({ kind: 'refuse', code: 'BAD_PRICE' });
    expect(g.offer(tick(0.004, NOW + 2), NOW + 2)).toMatchObject({ kind: 'refuse', code: 'BAD_PRICE' });
    expect(g.price('BNBUSDT')).toBe(fx('598.1'));
    expect(g.ts('BNBUSDT')).toBe(NOW);
  });

  it('refuses a tick further in the future than the skew, and never lets it freeze prices', () => {
    const g = gate();
    expect(g.offer(tick(600, NOW + 5000), NOW).kind).toBe('accept'); // exactly the skew: accepted
    expect(g.offer(tick(601, NOW + 5001 + 120_000), NOW + 1)).toMatchObject({ kind: 'refuse', code: 'FUTURE_TS' });
    expect(g.offer(tick(602, NOW + 6000), NOW + 2000).kind).toBe('accept');
    expect(g.price('BNBUSDT')).toBe(fx(602));
  });

  it('ignores a tick older than the last accepted one', () => {
    const g = gate();
    g.offer(tick(600, NOW), NOW);
    expect(g.offer(tick(601, NOW - 1), NOW)).toEqual({ kind: 'stale' });
    expect(g.offer(tick(601, NOW), NOW).kind).toBe('accept'); // same ts: stream order decides
  });

  it('refuses an unconfirmed jump; a single outlier is never applied', () => {
    const g = gate();
    g.offer(tick(600, NOW), NOW);
    expect(g.offer(tick(480, NOW + 1), NOW + 1).kind).toBe('accept'); // −20%: at the band
    expect(g.offer(tick(383.9, NOW + 2), NOW + 2)).toMatchObject({ kind: 'refuse', code: 'UNCONFIRMED_JUMP' });
    expect(g.offer(tick(481, NOW + 3), NOW + 3).kind).toBe('accept'); // back in band: the outlier is gone
    expect(g.offer(tick(1000, NOW + 4), NOW + 4).kind).toBe('refuse');
    expect(g.offer(tick(490, NOW + 5), NOW + 5).kind).toBe('accept');
    // the candidate was forgotten: 1000 again is a new unconfirmed jump
    expect(g.offer(tick(1000, NOW + 6), NOW + 6).kind).toBe('refuse');
  });

  it('accepts a jump the next tick confirms (within the band of the jumped price)', () => {
    const g = gate();
    g.offer(tick(600, NOW), NOW);
    expect(g.offer(tick(900, NOW + 1), NOW + 1).kind).toBe('refuse');
    expect(g.offer(tick(910, NOW + 2), NOW + 2)).toMatchObject({ kind: 'accept', price: fx(910) });
    expect(g.price('BNBUSDT')).toBe(fx(910));
  });

  it('takes a manual tick as given (but still a positive tick multiple, not future)', () => {
    const g = gate();
    g.offer(tick(600, NOW), NOW);
    expect(g.offer(tick(100, NOW + 1, 'manual'), NOW + 1).kind).toBe('accept');
    expect(g.offer(tick(0.001, NOW + 2, 'manual'), NOW + 2).kind).toBe('refuse');
    expect(g.offer(tick(100, NOW + 60_000, 'manual'), NOW + 3).kind).toBe('refuse');
  });

  it('gives the same verdicts after a snapshot round trip (candidate included)', () => {
    const a = gate();
    a.offer(tick(600, NOW), NOW);
    a.offer(tick(900, NOW + 1), NOW + 1);
    const b = gate();
    b.restore(JSON.parse(JSON.stringify(a.toSnapshot())));
    for (const g of [a, b]) expect(g.offer(tick(905, NOW + 2), NOW + 2).kind).toBe('accept');
  });

  it('stamps its own ticks no earlier than the last accepted one', () => {
    const g = gate();
    g.offer(tick(600, NOW + 3000), NOW);
    expect(g.stampFor('BNBUSDT', NOW + 10)).toBe(NOW + 3000);
    expect(g.stampFor('BNBUSDT', NOW + 4000)).toBe(NOW + 4000);
  });
});
