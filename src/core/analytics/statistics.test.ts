import { describe, expect, it } from 'vitest';
import { brierScore, ksTwoSample, wilsonInterval } from './statistics.js';

/**
 * Reference values from SciPy 1.10.1 (Debian bookworm's python3-scipy), computed with
 *   /usr/bin/python3 -c "from scipy import stats; print(stats.ks_2samp(a, b, method='exact'))"
 * for each pair below (method='exact'; the default method='auto' gives the same values
 * at these sizes). ksTwoSample implements the exact method.
 */
const KS_REFERENCE: Array<[string, number[], number[], number, number]> = [
  ['unequal sizes', [0.1, 0.2, 0.3, 0.4, 0.5], [0.35, 0.45, 0.55, 0.65, 0.75, 0.85], 0.6666666666666666, 0.10822510822510821],
  ['equal sizes', [0.66, 0.7, 0.72, 0.75, 0.8, 0.81, 0.9], [0.65, 0.67, 0.69, 0.71, 0.73, 0.74, 0.76], 0.42857142857142855, 0.5751748251748252],
  ['ties across the samples', [0.7, 0.7, 0.8, 0.8, 0.9], [0.7, 0.8, 0.8, 0.95], 0.25, 0.9920634920634921],
  ['the same values', [0.7, 0.8, 0.9], [0.9, 0.8, 0.7], 0, 1],
  [
    '40 against 25',
    Array.from({ length: 40 }, (_, i) => Math.round((i * 37) % 100) / 100),
    Array.from({ length: 25 }, (_, i) => Math.round(30 + ((i * 53) % 70)) / 100),
    0.3,
    0.1013339946846,
  ],
  [
    'a shifted confidence distribution',
    Array.from({ length: 20 }, (_, i) => 0.65 + 0.01 * (i % 10)),
    Array.from({ length: 10 }, (_, i) => 0.85 + 0.01 * (i % 10)),
    1,
    6.656678320846238e-8,
  ],
];

describe('ksTwoSample (two-sided, exact)', () => {
  it.each(KS_REFERENCE)('%s matches scipy.stats.ks_2samp', (_name, a, b, statistic, pValue) => {
    const result = ksTwoSample(a, b);
    expect(result.statistic).toBeCloseTo(statistic, 12);
    expect(Math.abs(result.pValue - pValue)).toBeLessThanOrEqual(1e-12 * Math.max(1, pValue) + 1e-15);
    expect(Math.abs(result.pValue - pValue) / pValue).toBeLessThan(1e-9);
  });

  it('is symmetric in its samples', () => {
    const [, a, b] = KS_REFERENCE[0]!;
    expect(ksTwoSample(b, a)).toEqual(ksTwoSample(a, b));
  });

  it('refuses an empty or non-finite sample', () => {
    expect(() => ksTwoSample([], [1])).toThrow(/non-empty/);
    expect(() => ksTwoSample([Number.NaN], [1])).toThrow(/finite/);
  });
});

describe('wilsonInterval (95%)', () => {
  // Reference: SciPy 1.10.1, /usr/bin/python3 -c "from scipy import stats;
  // print(stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method='wilson'))"
  it.each([
    [5, 10, 0.236593090512564, 0.7634069094874361],
    [0, 10, 0.0, 0.27753279986288926],
    [10, 10, 0.7224672001371109, 1.0],
    [40, 50, 0.6696289406777458, 0.8875624998422389],
    [3, 7, 0.1582198552514697, 0.7495416354723428],
  ])('%s of %s', (k, n, low, high) => {
    const interval = wilsonInterval(k / n, n);
    expect(interval.low).toBeCloseTo(low, 12);
    expect(interval.high).toBeCloseTo(high, 12);
  });

  it('is the whole [0, 1] with no trials, and refuses a proportion out of range', () => {
    expect(wilsonInterval(0.7, 0)).toEqual({ low: 0, high: 1 });
    expect(() => wilsonInterval(1.2, 5)).toThrow(/proportion/);
  });
});

describe('brierScore', () => {
  it.each([
    ['no trades', [], null],
    ['a perfect forecaster', [{ confidence: 1, win: true }, { confidence: 0, win: false }], 0],
    ['always 0.7, wins 2 of 4', [0.7, 0.7, 0.7, 0.7].map((confidence, i) => ({ confidence, win: i < 2 })), (0.09 * 2 + 0.49 * 2) / 4],
  ])('%s', (_name, pairs, expected) => {
    const score = brierScore(pairs as Array<{ confidence: number; win: boolean }>);
    if (expected === null) expect(score).toBeNull();
    else expect(score).toBeCloseTo(expected as number, 12);
  });
});
