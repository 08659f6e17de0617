/**
 * The report's ratios, as pure functions (docs/backtest.md defines each; metrics.test.ts
 * checks each against a case worked out by hand). Returns are simple returns of equity
 * sampled at the end of each UTC day; the risk-free rate is 0; crypto trades every day,
 * so a year has 365 periods. A ratio that is undefined (no variance, no loss, no
 * drawdown) is null, never Infinity or NaN (JSON has neither).
 */

export const PERIODS_PER_YEAR = 365;
export const DAY_MS = 86_400_000;
const YEAR_MS = 365 * DAY_MS;

/** r_i = v_i / v_(i−1) − 1 for consecutive samples. */
export function simpleReturns(values: readonly number[]): number[] {
  const out: number[] = [];
  for (let i = 1; i < values.length; i += 1) out.push(values[i]! / values[i - 1]! - 1);
  return out;
}

function mean(xs: readonly number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

/** Sharpe = mean(r) / stdev(r) × √365, stdev with n − 1; null below two returns or with zero stdev. */
export function sharpe(returns: readonly number[], periodsPerYear = PERIODS_PER_YEAR): number | null {
  if (returns.length < 2) return null;
  const m = mean(returns);
  const variance = returns.reduce((a, r) => a + (r - m) ** 2, 0) / (returns.length - 1);
  const sd = Math.sqrt(variance);
  return sd > 0 ? (m / sd) * Math.sqrt(periodsPerYear) : null;
}

/** Sortino = mean(r) / √(Σ min(r, 0)² / n) × √365; null without a losing period. */
export function sortino(returns: readonly number[], periodsPerYear = PERIODS_PER_YEAR): number | null {
  if (returns.length < 2) return null;
  const downside = Math.sqrt(returns.reduce((a, r) => a + Math.min(r, 0) ** 2, 0) / returns.length);
  return downside > 0 ? (mean(returns) / downside) * Math.sqrt(periodsPerYear) : null;
}

/** Compound annual growth: (final / initial)^(365 days / duration) − 1; null for a zero duration or a non-positive end. */
export function cagr(initial: number, final: number, durationMs: number): number | null {
  if (!(durationMs > 0) || !(initial > 0) || !(final > 0)) return null;
  return (final / initial) ** (YEAR_MS / durationMs) - 1;
}

/** Calmar = CAGR / max drawdown; null when there was no drawdown. */
export function calmar(cagrValue: number | null, maxDrawdown: number): number | null {
  if (cagrValue === null || !(maxDrawdown > 0)) return null;
  return cagrValue / maxDrawdown;
}

/** Σ winning nets / |Σ losing nets|; null without a losing trade. */
export function profitFactor(nets: readonly number[]): number | null {
  let wins = 0;
  let losses = 0;
  for (const n of nets) {
    if (n > 0) wins += n;
    else if (n < 0) losses -= n;
  }
  return losses > 0 ? wins / losses : null;
}

/** Mean net PnL per trade; null without trades. */
export function expectancy(nets: readonly number[]): number | null {
  return nets.length === 0 ? null : mean(nets);
}

/** Trades with net > 0 over all trades; null without trades. */
export function winRate(nets: readonly number[]): number | null {
  return nets.length === 0 ? null : nets.filter((n) => n > 0).length / nets.length;
}

/**
 * Max drawdown over an equity path, streamed: the largest (peak − equity) / peak, and the
 * longest time spent below a previous peak (from the peak's time until equity is back at
 * or above it, or until the end).
 */
export class DrawdownTracker {
  #peak = Number.NEGATIVE_INFINITY;
  #peakTs = 0;
  #maxPct = 0;
  #maxDurationMs = 0;
  #under = false;

  add(ts: number, equity: number): void {
    if (equity >= this.#peak) {
      if (this.#under) this.#maxDurationMs = Math.max(this.#maxDurationMs, ts - this.#peakTs);
      this.#under = false;
      this.#peak = equity;
      this.#peakTs = ts;
      return;
    }
    this.#under = true;
    if (this.#peak > 0) this.#maxPct = Math.max(this.#maxPct, (this.#peak - equity) / this.#peak);
  }

  result(endTs: number): { maxDrawdownPct: number; maxDrawdownDurationMs: number } {
    const open = this.#under ? endTs - this.#peakTs : 0;
    return { maxDrawdownPct: this.#maxPct, maxDrawdownDurationMs: Math.max(this.#maxDurationMs, open) };
  }
}

/** DrawdownTracker over a whole path. */
export function maxDrawdown(points: readonly (readonly [number, number])[], endTs?: number): { maxDrawdownPct: number; maxDrawdownDurationMs: number } {
  const tracker = new DrawdownTracker();
  for (const [ts, equity] of points) tracker.add(ts, equity);
  return tracker.result(endTs ?? points[points.length - 1]?.[0] ?? 0);
}

/**
 * Keeps at most `max` points of an unbounded [ts, value] series, evenly spread: once full
 * it keeps every other point and doubles its stride. The first point is always kept;
 * `finish` adds the last. Deterministic for the same input.
 */
export class Downsampler {
  readonly #max: number;
  #points: [number, number][] = [];
  #stride = 1;
  #seen = 0;
  #last: [number, number] | null = null;

  constructor(max: number) {
    this.#max = Math.max(4, max);
  }

  add(ts: number, value: number): void {
    this.#last = [ts, value];
    if (this.#seen++ % this.#stride !== 0) return;
    this.#points.push([ts, value]);
    if (this.#points.length >= this.#max) {
      this.#points = this.#points.filter((_, i) => i % 2 === 0);
      this.#stride *= 2;
    }
  }

  finish(): [number, number][] {
    const out = [...this.#points];
    const last = this.#last;
    if (last !== null && (out.length === 0 || out[out.length - 1]![0] !== last[0] || out[out.length - 1]![1] !== last[1])) out.push(last);
    return out;
  }
}

/** Rounds for the report (stable text in report.json). */
export function round(value: number | null, digits = 8): number | null {
  if (value === null || !Number.isFinite(value)) return null;
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}
