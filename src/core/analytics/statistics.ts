/**
 * The statistics the feedback analytics use, as pure functions over plain numbers:
 * the 95% Wilson score interval, the Brier score and the two-sample Kolmogorov–Smirnov
 * test (statistic and exact two-sided p-value, the method scipy.stats.ks_2samp uses
 * with method='exact', and with its default method='auto' for samples up to 10,000).
 * Floats are fine here: these are estimates, not money.
 */

/** The normal quantile of a two-sided 95% interval. */
export const Z_95 = 1.959963984540054;

export interface Interval {
  readonly low: number;
  readonly high: number;
}

/**
 * The Wilson score interval of a proportion `p` observed over `n` trials (Wilson 1927):
 * (p + z²/2n ± z·√(p(1−p)/n + z²/4n²)) / (1 + z²/n). With n = 0: the whole [0, 1].
 */
export function wilsonInterval(p: number, n: number, z: number = Z_95): Interval {
  if (!(n > 0)) return { low: 0, high: 1 };
  if (!(p >= 0 && p <= 1)) throw new RangeError(`proportion must be within [0, 1]: ${p}`);
  const z2 = z * z;
  const denominator = 1 + z2 / n;
  const centre = (p + z2 / (2 * n)) / denominator;
  const half = (z * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n))) / denominator;
  return { low: Math.max(0, centre - half), high: Math.min(1, centre + half) };
}

/** Mean of (forecast − outcome)² over the pairs; null when there are none. */
export function brierScore(pairs: ReadonlyArray<{ readonly confidence: number; readonly win: boolean }>): number | null {
  if (pairs.length === 0) return null;
  let sum = 0;
  for (const { confidence, win } of pairs) sum += (confidence - (win ? 1 : 0)) ** 2;
  return sum / pairs.length;
}

export interface KsResult {
  /** sup |F₁(x) − F₂(x)| of the two empirical distribution functions. */
  readonly statistic: number;
  /** P(D ≥ statistic) under the null that both samples come from one continuous distribution. */
  readonly pValue: number;
}

/**
 * Two-sample Kolmogorov–Smirnov test, two-sided. The statistic handles ties as the
 * empirical CDFs do (every value counted at once). The p-value is exact: the share of
 * the C(m+n, m) monotone lattice paths from (0,0) to (m,n) that leave the band
 * |i/m − j/n| < D (the path-counting method of scipy's `method='exact'`; like scipy it
 * treats the samples as if continuous, so with ties it is conservative). The walk
 * carries probabilities (each path equally likely) rather than counts, so it cannot
 * overflow; it costs O(m·n).
 */
export function ksTwoSample(a: readonly number[], b: readonly number[]): KsResult {
  const m = a.length;
  const n = b.length;
  if (m === 0 || n === 0) throw new RangeError('both samples must be non-empty');
  for (const sample of [a, b]) for (const x of sample) if (!Number.isFinite(x)) throw new RangeError(`samples must be finite numbers: ${x}`);
  return ksTwoSampleSorted(Float64Array.from(a).sort(), Float64Array.from(b).sort());
}

/** ksTwoSample of two samples already sorted ascending (non-empty, finite): no copy, no sort. */
export function ksTwoSampleSorted(sa: ArrayLike<number>, sb: ArrayLike<number>): KsResult {
  const m = sa.length;
  const n = sb.length;
  // D in units of 1/(m·n): |i·n − j·m| at each value, after every copy of it is counted.
  let i = 0;
  let j = 0;
  let h = 0;
  while (i < m || j < n) {
    const v = j >= n || (i < m && sa[i]! <= sb[j]!) ? sa[i]! : sb[j]!;
    while (i < m && sa[i] === v) i += 1;
    while (j < n && sb[j] === v) j += 1;
    h = Math.max(h, Math.abs(i * n - j * m));
  }
  const statistic = h / (m * n);
  if (h === 0) return { statistic: 0, pValue: 1 };
  return { statistic, pValue: exactPValue(m, n, h) };
}

/**
 * The p-value depends on (m, n, h) alone, and a source's windows are of fixed sizes, so
 * the O(m·n) walk is remembered: D takes at most lcm(m, n) + 1 values for given sizes,
 * which bounds the memo (cleared past MEMO_LIMIT entries all the same). The memo changes
 * no result, only how often the walk runs (once per distinct D instead of once per trade).
 */
const MEMO_LIMIT = 20_000;
const memo = new Map<string, number>();

function exactPValue(m: number, n: number, h: number): number {
  const key = `${m}:${n}:${h}`;
  const known = memo.get(key);
  if (known !== undefined) return known;
  // Probability that a uniformly random path leaves the band |i·n − j·m| < h: summed at
  // the first point outside it (summing there, not taking 1 − P(inside), keeps the
  // relative precision of a tiny p-value).
  const row = new Float64Array(n + 1);
  let outside = 0;
  for (let x = 0; x <= m; x += 1) {
    for (let y = 0; y <= n; y += 1) {
      let p: number;
      if (x === 0 && y === 0) {
        p = 1;
      } else {
        // Arrive from (x−1, y) (an a-step) or (x, y−1) (a b-step); the step from (u, w)
        // takes a with probability (m−u)/(m−u+n−w).
        const fromLeft = x > 0 ? row[y]! * ((m - x + 1) / (m - x + 1 + n - y)) : 0;
        const fromBelow = y > 0 ? row[y - 1]! * ((n - y + 1) / (m - x + n - y + 1)) : 0;
        p = fromLeft + fromBelow;
      }
      if (Math.abs(x * n - y * m) < h) {
        row[y] = p;
      } else {
        outside += p;
        row[y] = 0;
      }
    }
  }
  const pValue = Math.min(1, Math.max(0, outside));
  if (memo.size >= MEMO_LIMIT) memo.clear();
  memo.set(key, pValue);
  return pValue;
}
