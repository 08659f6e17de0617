/**
 * Drift of a source's model, over its last round trips (pure): the `recent` window is
 * the last `recentTrades` trades, the reference the `referenceTrades` before them.
 *  - ks: two-sample Kolmogorov–Smirnov test of the recent confidences against the
 *    reference ones; drift when p < alpha.
 *  - calibration: drift when the recent realized win rate falls outside the 95% Wilson
 *    interval around the recent mean confidence (n = recentTrades).
 * Nothing is judged until the windows are full.
 */
import { ksTwoSample, wilsonInterval, type Interval } from './statistics.js';

export interface DriftWindows {
  readonly referenceTrades: number;
  readonly recentTrades: number;
  readonly ksAlpha: number;
}

/** One closed round trip as the drift tests see it. */
export interface ScoredTrade {
  readonly confidence: number;
  readonly win: boolean;
}

export interface KsVerdict {
  readonly statistic: number;
  readonly pValue: number;
  readonly drift: boolean;
}

export interface CalibrationVerdict {
  /** The recent realized win rate. */
  readonly statistic: number;
  /** The recent mean confidence. */
  readonly predicted: number;
  readonly interval: Interval;
  readonly drift: boolean;
}

export interface DriftVerdicts {
  readonly ks: KsVerdict | null;
  readonly calibration: CalibrationVerdict | null;
}

/** `trades` oldest first; only the last reference + recent count. */
export function judgeDrift(trades: readonly ScoredTrade[], windows: DriftWindows): DriftVerdicts {
  const { referenceTrades, recentTrades, ksAlpha } = windows;
  if (trades.length < recentTrades) return { ks: null, calibration: null };
  const recent = trades.slice(trades.length - recentTrades);
  const wins = recent.filter((t) => t.win).length;
  const predicted = recent.reduce((sum, t) => sum + t.confidence, 0) / recentTrades;
  const interval = wilsonInterval(Math.min(1, Math.max(0, predicted)), recentTrades);
  const realized = wins / recentTrades;
  const calibration: CalibrationVerdict = {
    statistic: realized,
    predicted,
    interval,
    drift: realized < interval.low || realized > interval.high,
  };
  if (referenceTrades === 0 || trades.length < referenceTrades + recentTrades) return { ks: null, calibration };
  const reference = trades.slice(trades.length - recentTrades - referenceTrades, trades.length - recentTrades);
  const ks = ksTwoSample(
    reference.map((t) => t.confidence),
    recent.map((t) => t.confidence),
  );
  return { ks: { statistic: ks.statistic, pValue: ks.pValue, drift: ks.pValue < ksAlpha }, calibration };
}
