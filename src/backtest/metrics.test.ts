/** Each ratio against a case worked out by hand (the arithmetic is in the comments). */
import { describe, expect, it } from 'vitest';
import { cagr, calmar, Downsampler, expectancy, maxDrawdown, profitFactor, sharpe, simpleReturns, sortino, winRate } from './metrics.js';
import { monthlyReturns } from './report.js';

describe('report ratios', () => {
  // Equity at four day ends: 100 → 110 → 99 → 108.9: returns +10%, −10%, +10%.
  const returns = simpleReturns([100, 110, 99, 108.9]);

  it('simple returns', () => {
    expect(returns.map((r) => Number(r.toFixed(12)))).toEqual([0.1, -0.1, 0.1]);
  });

  it('sharpe: mean / sample stdev × √365', () => {
    // mean = 0.1/3 = 0.033333; deviations 0.066667, −0.133333, 0.066667;
    // squares sum = 0.004444 + 0.017778 + 0.004444 = 0.026667; / (n−1 = 2) = 0.013333; sd = 0.115470
    // sharpe = 0.033333 / 0.115470 × 19.104973 = 5.515130
    expect(sharpe(returns)).toBeCloseTo(5.51513, 4);
    expect(sharpe([0.01, 0.01])).toBeNull(); // no variance
    expect(sharpe([0.01])).toBeNull();
  });

  it('sortino: mean / √(Σ min(r,0)² / n) × √365', () => {
    // downside = √(0.01 / 3) = 0.057735; 0.033333 / 0.057735 × 19.104973 = 11.030261
    expect(sortino(returns)).toBeCloseTo(11.030261, 4);
    expect(sortino([0.01, 0.02])).toBeNull(); // no losing period
  });

  it('max drawdown and its duration', () => {
    // Peak 110 at t=1, trough 99 at t=2: (110 − 99) / 110 = 0.1; below 110 from t=1 until t=4 (back at 121 ≥ 110): 3.
    const dd = maxDrawdown([[0, 100], [1, 110], [2, 99], [3, 105], [4, 121], [5, 120]], 10);
    expect(dd.maxDrawdownPct).toBeCloseTo(0.1, 12);
    // After t=4 the peak 121 is not regained by t=10: 6 > 3.
    expect(dd.maxDrawdownDurationMs).toBe(6);
    expect(maxDrawdown([[0, 100], [1, 101]]).maxDrawdownPct).toBe(0);
  });

  it('cagr and calmar', () => {
    // 100 → 121 over two years: 1.21^(1/2) − 1 = 0.1; calmar at 20% drawdown = 0.5
    const g = cagr(100, 121, 2 * 365 * 86_400_000);
    expect(g).toBeCloseTo(0.1, 12);
    expect(calmar(g, 0.2)).toBeCloseTo(0.5, 12);
    expect(calmar(g, 0)).toBeNull();
  });

  it('profit factor, expectancy, win rate', () => {
    // wins 30 + 10 = 40, losses 5 + 15 = 20: factor 2; mean (30 + 10 − 5 − 15) / 4 = 5; 2 of 4 win.
    const nets = [30, -5, 10, -15];
    expect(profitFactor(nets)).toBe(2);
    expect(expectancy(nets)).toBe(5);
    expect(winRate(nets)).toBe(0.5);
    expect(profitFactor([1, 2])).toBeNull();
    expect(expectancy([])).toBeNull();
  });

  it('monthly returns: month-end equity over the previous month-end', () => {
    const day = (y: number, m: number, d: number) => Date.UTC(y, m - 1, d);
    // Jan ends (sample at Feb 1 00:00) at 110: +10%; Feb ends at 99: −10%.
    expect(monthlyReturns([[day(2024, 1, 2), 105], [day(2024, 2, 1), 110], [day(2024, 2, 2), 100], [day(2024, 3, 1), 99]], 100)).toEqual({
      '2024-01': 0.1,
      '2024-02': -0.1,
    });
  });

  it('the downsampler keeps at most its size, first and last included', () => {
    const d = new Downsampler(100);
    for (let i = 0; i < 100_000; i += 1) d.add(i, i);
    const points = d.finish();
    expect(points.length).toBeLessThanOrEqual(101);
    expect(points[0]).toEqual([0, 0]);
    expect(points[points.length - 1]).toEqual([99_999, 99_999]);
  });
});
