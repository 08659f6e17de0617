/**
 * Drift of a source's model, over its last round trips (pure): the `recent` window is
 * the last `recentTrades` trades, the reference the `referenceTrades` before them.
 *  - ks: two-sample Kolmogorov–Smirnov test of the recent confidences against the
 *    reference ones; drift when p < alpha.
 *  - calibration: drift when the recent realized win rate falls outside the 95% Wilson
 *    interval around the recent mean confidence (n = recentTrades).
 * Nothing is judged until the windows are full.
 */
import { ksTwoSampleSorted, wilsonInterval, type Interval } from './statistics.js';

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
  const window = new DriftWindow(windows);
  for (const trade of trades.slice(Math.max(0, trades.length - windows.referenceTrades - windows.recentTrades))) window.push(trade);
  return window.verdicts();
}

/** Index of the first element ≥ x in an ascending array. */
function lowerBound(sorted: readonly number[], x: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function insertSorted(sorted: number[], x: number): void {
  sorted.splice(lowerBound(sorted, x), 0, x);
}

function removeSorted(sorted: number[], x: number): void {
  const at = lowerBound(sorted, x);
  if (sorted[at] !== x) throw new Error(`drift window out of step: ${x} is not in it`);
  sorted.splice(at, 1);
}

/**
 * A source's last reference + recent trades, with both windows' confidences kept sorted
 * as trades come and go (a binary search and a short move per trade), so judging costs
 * O(reference + recent) rather than a sort per trade. Same verdicts as judgeDrift.
 */
export class DriftWindow {
  private readonly trades: ScoredTrade[] = [];
  private readonly reference: number[] = [];
  private readonly recent: number[] = [];
  /** pairsJson()'s text until the next push (a snapshot is written with every batch, a trade closes far less often). */
  private pairsText: string | null = null;

  constructor(private readonly windows: DriftWindows) {}

  /** The trades held, oldest first (what a snapshot keeps). */
  list(): readonly ScoredTrade[] {
    return this.trades;
  }

  /** Exactly JSON.stringify of the snapshot's pairs, [confidence, 1 win | 0 not] oldest first; kept until the next push. */
  pairsJson(): string {
    this.pairsText ??= JSON.stringify(this.trades.map((t) => [t.confidence, t.win ? 1 : 0]));
    return this.pairsText;
  }

  push(trade: ScoredTrade): void {
    const { referenceTrades, recentTrades } = this.windows;
    this.pairsText = null;
    this.trades.push(trade);
    insertSorted(this.recent, trade.confidence);
    if (this.trades.length > recentTrades) {
      // The trade that just left the recent window joins the reference.
      const moved = this.trades[this.trades.length - 1 - recentTrades]!;
      removeSorted(this.recent, moved.confidence);
      insertSorted(this.reference, moved.confidence);
    }
    if (this.trades.length > referenceTrades + recentTrades) removeSorted(this.reference, this.trades.shift()!.confidence);
  }

  verdicts(): DriftVerdicts {
    const { referenceTrades, recentTrades, ksAlpha } = this.windows;
    const count = this.trades.length;
    if (count < recentTrades) return { ks: null, calibration: null };
    let wins = 0;
    let sum = 0;
    for (let i = count - recentTrades; i < count; i += 1) {
      const t = this.trades[i]!;
      if (t.win) wins += 1;
      sum += t.confidence;
    }
    const predicted = sum / recentTrades;
    const interval = wilsonInterval(Math.min(1, Math.max(0, predicted)), recentTrades);
    const realized = wins / recentTrades;
    const calibration: CalibrationVerdict = {
      statistic: realized,
      predicted,
      interval,
      drift: realized < interval.low || realized > interval.high,
    };
    if (count < referenceTrades + recentTrades) return { ks: null, calibration };
    const ks = ksTwoSampleSorted(this.reference, this.recent);
    return { ks: { statistic: ks.statistic, pValue: ks.pValue, drift: ks.pValue < ksAlpha }, calibration };
  }
}
