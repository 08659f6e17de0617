import { describe, expect, it } from 'vitest';
import { fx, ONE, ZERO } from './fixed.js';
import { kellyApplied, kellyOptimal, payoffRatio, sizeOrder, stopDistance, type RoundTripStats } from './sizing.js';

const noTrips: RoundTripStats = { count: 0, sumWins: ZERO, sumLosses: ZERO, wins: 0, losses: 0 };
const trips = (count: number, sumWins: number, wins: number, sumLosses: number, losses: number): RoundTripStats => ({
  count,
  sumWins: fx(sumWins),
  sumLosses: fx(sumLosses),
  wins,
  losses,
});

describe('payoffRatio', () => {
  const price = fx(50_000);
  it.each([
    ['10 round trips: avg win 50 / avg loss 25', trips(10, 300, 6, 100, 4), undefined, undefined, '2', 'round_trips'],
    ['9 round trips fall through to default', trips(9, 300, 6, 100, 3), undefined, undefined, '1', 'default'],
    ['9 round trips fall through to tp/sl', trips(9, 300, 6, 100, 3), 52_000, 49_000, '2', 'take_profit_stop_loss'],
    ['round trips win over tp/sl', trips(10, 300, 6, 100, 4), 53_000, 49_000, '2', 'round_trips'],
    ['10 round trips without a loss fall through', trips(10, 300, 10, 0, 0), undefined, undefined, '1', 'default'],
    ['10 round trips without a win: b = 0 from them', trips(10, 0, 0, 100, 10), 51_000, 49_000, '0', 'round_trips'],
    ['9 round trips without a win fall through', trips(9, 0, 0, 100, 9), 51_000, 49_000, '1', 'take_profit_stop_loss'],
    ['tp/sl distances: 2000 / 1000', noTrips, 52_000, 49_000, '2', 'take_profit_stop_loss'],
    ['only tp: default', noTrips, 52_000, undefined, '1', 'default'],
    ['only sl: default', noTrips, undefined, 49_000, '1', 'default'],
    ['stop at the price: default', noTrips, 52_000, 50_000, '1', 'default'],
    ['take-profit at the price: default', noTrips, 50_000, 49_000, '1', 'default'],
  ] as const)('%s', (_name, roundTrips, tp, sl, b, source) => {
    const payoff = payoffRatio({
      roundTrips,
      side: 'BUY',
      price,
      takeProfit: tp === undefined ? undefined : fx(tp),
      stopLoss: sl === undefined ? undefined : fx(sl),
    });
    expect(payoff.b).toBe(fx(b));
    expect(payoff.source).toBe(source);
  });

  it('flags take-profit / stop-loss on the wrong side of the price but still uses the distances', () => {
    const ok = payoffRatio({ roundTrips: noTrips, side: 'SELL', price, takeProfit: fx(48_000), stopLoss: fx(51_000) });
    expect(ok.warning).toBeUndefined();
    const wrong = payoffRatio({ roundTrips: noTrips, side: 'SELL', price, takeProfit: fx(52_000), stopLoss: fx(49_000) });
    expect(wrong.b).toBe(fx(2));
    expect(wrong.warning).toMatch(/not on the expected sides/);
  });
});

describe('kelly', () => {
  it.each([
    [0.65, 1, '0.3', '0.075'],
    [0.85, 1, '0.7', '0.1'],
    [0.5, 1, '0', '0'],
    [0.55, 2, '0.325', '0.08125'],
  ])('p=%s b=%s → optimal %s, applied %s', (p, b, optimal, applied) => {
    const k = kellyOptimal(fx(p), fx(b));
    expect(k).toBe(fx(optimal));
    expect(kellyApplied(k, fx(0.25), fx(0.1))).toBe(fx(applied));
  });
});

describe('sizeOrder', () => {
  it.each([
    ['exact', 750, 50_000, 0.00001, '0.015', '750'],
    ['rounds down to step', 750, 0.7, 0.1, '1071.4', '749.98'],
    ['never above the target', 10, 150, 0.1, '0', '0'],
    ['zero target', 0, 150, 0.01, '0', '0'],
    ['negative target', -5, 150, 0.01, '0', '0'],
  ])('%s', (_name, target, price, step, quantity, notional) => {
    const o = sizeOrder(fx(target), fx(price), fx(step));
    expect(o.quantity).toBe(fx(quantity));
    expect(o.notional).toBe(fx(notional));
  });
});

describe('stopDistance', () => {
  it('uses the stop-loss distance, else the default', () => {
    expect(stopDistance(fx(50_000), fx(49_000), fx(0.02))).toBe(fx(0.02));
    expect(stopDistance(fx(50_000), fx(51_000), fx(0.02))).toBe(fx(0.02));
    expect(stopDistance(fx(50_000), fx(49_500), fx(0.02))).toBe(fx(0.01));
    expect(stopDistance(fx(50_000), undefined, fx(0.03))).toBe(fx(0.03));
    expect(stopDistance(fx(100), undefined, ONE)).toBe(ONE);
  });
});
