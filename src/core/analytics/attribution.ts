/**
 * Per-source attribution (docs/feedback.md): what each signal source's decisions and
 * round trips came to, its calibration and its drift state. Deterministic, no I/O: the
 * monitor feeds it the risk service's decisions, counted per batch (trade.signal.decisions), and its
 * own closed round trips (rl.feedback) and keeps it in its snapshot. Memory is bounded:
 * sums per source, at most 20-odd calibration buckets, and the last reference + recent
 * round trips for the drift tests; at most MAX_SOURCES sources (later ones are counted
 * under OTHER_SOURCE).
 */
import { z } from 'zod';
import { fx, toDecimalString, toNumber, ZERO, type Fixed } from '../fixed.js';
import { SCHEMA_VERSION, type DriftState, type DriftTestName, type ModelDrift, type SourceDecisions, type TradeFeedback } from '../messages.js';
import { bucketIndex, calibrationTable, type BucketSums, type CalibrationRow } from './calibration.js';
import { DriftWindow, type DriftWindows } from './drift.js';

export const MAX_SOURCES = 1000;
export const OTHER_SOURCE = '(other)';

const decimal = z.string().regex(/^-?\d+(\.\d+)?$/);

const DriftStatus = z.object({
  state: z.enum(['ok', 'drift']),
  /** The last judgement (null until the windows were full). */
  statistic: z.number().nullable(),
  p_value: z.number().nullable(),
  predicted: z.number().nullable(),
  interval: z.object({ low: z.number(), high: z.number() }).nullable(),
  since_ts: z.number().nullable(),
});
type DriftStatus = z.infer<typeof DriftStatus>;

const SourceRecord = z.object({
  approved: z.number().int().nonnegative(),
  rejected: z.number().int().nonnegative(),
  rejected_by_reason: z.record(z.string(), z.number().int().nonnegative()),
  trades: z.number().int().nonnegative(),
  wins: z.number().int().nonnegative(),
  losses: z.number().int().nonnegative(),
  net: decimal,
  gross_profit: decimal,
  gross_loss: decimal,
  hold_ms_sum: z.number(),
  mae_sum: z.number(),
  mfe_sum: z.number(),
  /** Trades with a confidence (the calibration, Brier and drift figures count only these). */
  scored: z.number().int().nonnegative(),
  brier_sum: z.number(),
  buckets: z.record(z.string(), z.object({ count: z.number(), confidence_sum: z.number(), wins: z.number() })),
  /** The last reference + recent scored trades, oldest first: [confidence, 1 win | 0 not]. */
  window: z.array(z.tuple([z.number(), z.number()])),
  drift: z.object({ ks: DriftStatus, calibration: DriftStatus }),
});

export const SourceBookSnapshot = z.record(z.string(), SourceRecord);
export type SourceBookSnapshot = z.infer<typeof SourceBookSnapshot>;

interface Sums {
  approved: number;
  rejected: number;
  rejectedByReason: Map<string, number>;
  trades: number;
  wins: number;
  losses: number;
  net: Fixed;
  grossProfit: Fixed;
  grossLoss: Fixed;
  holdMsSum: number;
  maeSum: number;
  mfeSum: number;
  scored: number;
  brierSum: number;
  buckets: Map<number, BucketSums>;
  window: DriftWindow;
  drift: Record<DriftTestName, DriftStatus>;
}

const freshStatus = (): DriftStatus => ({ state: 'ok', statistic: null, p_value: null, predicted: null, interval: null, since_ts: null });

function emptySums(windows: DriftWindows): Sums {
  return {
    approved: 0,
    rejected: 0,
    rejectedByReason: new Map(),
    trades: 0,
    wins: 0,
    losses: 0,
    net: ZERO,
    grossProfit: ZERO,
    grossLoss: ZERO,
    holdMsSum: 0,
    maeSum: 0,
    mfeSum: 0,
    scored: 0,
    brierSum: 0,
    buckets: new Map(),
    window: new DriftWindow(windows),
    drift: { ks: freshStatus(), calibration: freshStatus() },
  };
}

export interface DriftView {
  state: DriftState;
  statistic: number | null;
  p_value: number | null;
  predicted: number | null;
  interval: { low: number; high: number } | null;
  /** When the current state began (null: ok since the start). */
  since_ts: number | null;
}

/** One row of GET /sources. */
export interface SourceReport {
  source: string;
  /** Signals the risk service decided (approved + rejected; HOLDs publish no decision). */
  signals: number;
  approved: number;
  rejected: number;
  /** A rejection can carry several reasons: each is counted. */
  rejected_by_reason: Record<string, number>;
  trades: number;
  wins: number;
  losses: number;
  /** wins / trades (a trade with net exactly 0 is neither); null without trades. */
  win_rate: number | null;
  net_pnl_usd: number;
  gross_profit_usd: number;
  gross_loss_usd: number;
  /** gross profit / gross loss of the round trips' net PnL; null without a losing trade. */
  profit_factor: number | null;
  avg_hold_ms: number | null;
  avg_mae_pct: number | null;
  avg_mfe_pct: number | null;
  /** Trades with a confidence (round trips opened by a result that carried it). */
  scored_trades: number;
  /** Mean (confidence − win)² over the scored trades; null without any. */
  brier_score: number | null;
  calibration: CalibrationRow[];
  drift: { ks: DriftView; calibration: DriftView };
}

export class SourceBook {
  private readonly sources = new Map<string, Sums>();

  constructor(private readonly windows: DriftWindows) {}

  /** The name a source is counted under (OTHER_SOURCE once MAX_SOURCES are known). */
  private nameOf(source: string): string {
    return this.sources.has(source) || this.sources.size < MAX_SOURCES ? source : OTHER_SOURCE;
  }

  private sums(source: string): Sums {
    const name = this.nameOf(source);
    let sums = this.sources.get(name);
    if (sums === undefined) {
      sums = emptySums(this.windows);
      this.sources.set(name, sums);
    }
    return sums;
  }

  /** A signal the risk service approved (an entry of trade.signal.safe). */
  onApproved(source: string): void {
    this.sums(source).approved += 1;
  }

  /** A signal the risk service rejected (an entry of trade.signal.rejected). */
  onRejected(source: string, reasons: readonly string[]): void {
    const sums = this.sums(source);
    sums.rejected += 1;
    for (const reason of reasons) sums.rejectedByReason.set(reason, (sums.rejectedByReason.get(reason) ?? 0) + 1);
  }

  /**
   * One source's counts of a trade.signal.decisions message: the same sums as its
   * approvals and rejections one by one (onApproved / onRejected) would make.
   */
  onDecisions(counts: SourceDecisions): void {
    const sums = this.sums(counts.source);
    sums.approved += counts.approved;
    sums.rejected += counts.rejected;
    for (const [reason, n] of Object.entries(counts.rejected_by_reason)) {
      sums.rejectedByReason.set(reason, (sums.rejectedByReason.get(reason) ?? 0) + (n ?? 0));
    }
  }

  /**
   * A closed round trip (`net` is its exact net PnL, the number in `trip` rounded).
   * Returns the drift state changes it caused, as model.drift messages stamped `now`.
   */
  onRoundTrip(trip: TradeFeedback, net: Fixed, now: number): ModelDrift[] {
    const name = this.nameOf(trip.source);
    const sums = this.sums(name);
    sums.trades += 1;
    sums.net += net;
    if (net > 0n) {
      sums.wins += 1;
      sums.grossProfit += net;
    } else if (net < 0n) {
      sums.losses += 1;
      sums.grossLoss -= net;
    }
    sums.holdMsSum += trip.hold_ms;
    sums.maeSum += trip.mae_pct;
    sums.mfeSum += trip.mfe_pct;
    if (trip.confidence === null) return [];
    const win = net > 0n;
    sums.scored += 1;
    sums.brierSum += (trip.confidence - (win ? 1 : 0)) ** 2;
    const index = bucketIndex(trip.confidence, 0);
    const bucket = sums.buckets.get(index) ?? { count: 0, confidence_sum: 0, wins: 0 };
    bucket.count += 1;
    bucket.confidence_sum += trip.confidence;
    if (win) bucket.wins += 1;
    sums.buckets.set(index, bucket);
    sums.window.push({ confidence: trip.confidence, win });
    return this.judge(name, sums, now);
  }

  private judge(source: string, sums: Sums, now: number): ModelDrift[] {
    const verdicts = sums.window.verdicts();
    const changes: ModelDrift[] = [];
    const base = {
      schema_version: SCHEMA_VERSION,
      source,
      reference_trades: this.windows.referenceTrades,
      recent_trades: this.windows.recentTrades,
      ts: now,
    };
    if (verdicts.ks !== null) {
      const status = sums.drift.ks;
      const state: DriftState = verdicts.ks.drift ? 'drift' : 'ok';
      Object.assign(status, { statistic: verdicts.ks.statistic, p_value: verdicts.ks.pValue });
      if (state !== status.state) {
        status.state = state;
        status.since_ts = now;
        changes.push({
          ...base,
          test: 'ks',
          state,
          statistic: verdicts.ks.statistic,
          p_value: verdicts.ks.pValue,
          alpha: this.windows.ksAlpha,
          predicted: null,
          interval: null,
        });
      }
    }
    if (verdicts.calibration !== null) {
      const status = sums.drift.calibration;
      const { statistic, predicted, interval } = verdicts.calibration;
      const state: DriftState = verdicts.calibration.drift ? 'drift' : 'ok';
      Object.assign(status, { statistic, predicted, interval: { ...interval } });
      if (state !== status.state) {
        status.state = state;
        status.since_ts = now;
        changes.push({ ...base, test: 'calibration', state, statistic, p_value: null, alpha: null, predicted, interval: { ...interval } });
      }
    }
    return changes;
  }

  /** How many sources are in drift now, per test (the qt_model_drift_sources gauge). */
  driftCounts(): Record<DriftTestName, number> {
    const counts = { ks: 0, calibration: 0 };
    for (const sums of this.sources.values()) {
      if (sums.drift.ks.state === 'drift') counts.ks += 1;
      if (sums.drift.calibration.state === 'drift') counts.calibration += 1;
    }
    return counts;
  }

  /**
   * Every source, by name. Calibration buckets start at `minConfidence` (risk.min_confidence):
   * the trades are kept in buckets of 0.05 from 0 and regrouped from it here, so the table
   * follows the configuration without losing history when the minimum is a multiple of 0.05.
   */
  report(minConfidence: number): SourceReport[] {
    return [...this.sources.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([source, s]) => ({
        source,
        signals: s.approved + s.rejected,
        approved: s.approved,
        rejected: s.rejected,
        rejected_by_reason: Object.fromEntries([...s.rejectedByReason.entries()].sort(([a], [b]) => (a < b ? -1 : 1))),
        trades: s.trades,
        wins: s.wins,
        losses: s.losses,
        win_rate: s.trades > 0 ? s.wins / s.trades : null,
        net_pnl_usd: toNumber(s.net),
        gross_profit_usd: toNumber(s.grossProfit),
        gross_loss_usd: toNumber(s.grossLoss),
        profit_factor: s.grossLoss > 0n ? Number((s.grossProfit * 1_000_000_000n) / s.grossLoss) / 1e9 : null,
        avg_hold_ms: s.trades > 0 ? s.holdMsSum / s.trades : null,
        avg_mae_pct: s.trades > 0 ? s.maeSum / s.trades : null,
        avg_mfe_pct: s.trades > 0 ? s.mfeSum / s.trades : null,
        scored_trades: s.scored,
        brier_score: s.scored > 0 ? s.brierSum / s.scored : null,
        calibration: calibrationTable(regroup(s.buckets, minConfidence), minConfidence),
        drift: { ks: { ...s.drift.ks }, calibration: { ...s.drift.calibration } },
      }));
  }

  toSnapshot(): SourceBookSnapshot {
    const out: SourceBookSnapshot = {};
    for (const [source, s] of this.sources) {
      out[source] = {
        ...sourceTotals(s),
        window: s.window.list().map((t) => [t.confidence, t.win ? 1 : 0]),
        drift: { ks: { ...s.drift.ks }, calibration: { ...s.drift.calibration } },
      };
    }
    return out;
  }

  /**
   * Exactly JSON.stringify(this.toSnapshot()), without re-encoding each drift window
   * (kept as text until its next trade). Names a plain object orders or keeps apart
   * (array indices, `__proto__`) take the definition itself.
   */
  toSnapshotJson(): string {
    let out = '';
    for (const [source, s] of this.sources) {
      if (source === '__proto__' || /^\d+$/.test(source)) return JSON.stringify(this.toSnapshot());
      const head = JSON.stringify(sourceTotals(s));
      const drift = JSON.stringify({ ks: s.drift.ks, calibration: s.drift.calibration });
      out += `${out === '' ? '' : ','}${JSON.stringify(source)}:${head.slice(0, -1)},"window":${s.window.pairsJson()},"drift":${drift}}`;
    }
    return `{${out}}`;
  }

  restore(input: unknown): void {
    const snap = SourceBookSnapshot.parse(input);
    this.sources.clear();
    const capacity = this.windows.referenceTrades + this.windows.recentTrades;
    for (const [source, r] of Object.entries(snap)) {
      const window = new DriftWindow(this.windows);
      for (const [confidence, win] of r.window.slice(Math.max(0, r.window.length - capacity))) window.push({ confidence, win: win === 1 });
      this.sources.set(source, {
        approved: r.approved,
        rejected: r.rejected,
        rejectedByReason: new Map(Object.entries(r.rejected_by_reason)),
        trades: r.trades,
        wins: r.wins,
        losses: r.losses,
        net: fx(r.net),
        grossProfit: fx(r.gross_profit),
        grossLoss: fx(r.gross_loss),
        holdMsSum: r.hold_ms_sum,
        maeSum: r.mae_sum,
        mfeSum: r.mfe_sum,
        scored: r.scored,
        brierSum: r.brier_sum,
        buckets: new Map(Object.entries(r.buckets).map(([k, b]) => [Number(k), { ...b }])),
        window,
        drift: { ks: { ...r.drift.ks }, calibration: { ...r.drift.calibration } },
      });
    }
  }
}

/**
 * Buckets of 0.05 from 0 (how trades are kept) regrouped into buckets of 0.05 from
 * `minConfidence`: exact when the minimum is a multiple of 0.05 (the default 0.65 is);
 * otherwise each stored bucket goes where its lower edge falls.
 */
/** A source's running totals as stored in the snapshot (everything but its drift window and state). */
function sourceTotals(s: Sums) {
  return {
    approved: s.approved,
    rejected: s.rejected,
    rejected_by_reason: Object.fromEntries(s.rejectedByReason),
    trades: s.trades,
    wins: s.wins,
    losses: s.losses,
    net: toDecimalString(s.net),
    gross_profit: toDecimalString(s.grossProfit),
    gross_loss: toDecimalString(s.grossLoss),
    hold_ms_sum: s.holdMsSum,
    mae_sum: s.maeSum,
    mfe_sum: s.mfeSum,
    scored: s.scored,
    brier_sum: s.brierSum,
    buckets: Object.fromEntries([...s.buckets.entries()].map(([k, b]) => [String(k), { ...b }])),
  };
}

function regroup(stored: ReadonlyMap<number, BucketSums>, minConfidence: number): Map<number, BucketSums> {
  const out = new Map<number, BucketSums>();
  for (const [index, b] of stored) {
    const target = bucketIndex(Math.min(1, index * 0.05 + 1e-12), minConfidence);
    const into = out.get(target) ?? { count: 0, confidence_sum: 0, wins: 0 };
    into.count += b.count;
    into.confidence_sum += b.confidence_sum;
    into.wins += b.wins;
    out.set(target, into);
  }
  return out;
}
