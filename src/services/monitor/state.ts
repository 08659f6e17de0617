/**
 * The Position Monitor's state, with no I/O: the accounting ledger (core/ledger.ts,
 * the only place positions and balances are computed), the marks, and the guards
 * that apply each order once.
 */
import { z } from 'zod';
import { compareIds } from '../../bus/bus.js';
import { SourceBook, SourceBookSnapshot, type SourceReport } from '../../core/analytics/attribution.js';
import type { DriftWindows } from '../../core/analytics/drift.js';
import { div, fx, mul, toNumber, type Fixed } from '../../core/fixed.js';
import { Ledger, LedgerSnapshot, ledgerFillOf, type FillEffect, type RoundTrip } from '../../core/ledger.js';
import {
  ExitLevels,
  SCHEMA_VERSION,
  type DecisionCounts,
  type ExecutionResult,
  type ModelDrift,
  type RiskApprovedSignal,
  type RiskRejection,
  type TradeFeedback,
  type PositionCause,
  type PositionUpdate,
  type PositionView,
  type PriceTick,
} from '../../core/messages.js';
import { instrumentTable } from '../../core/instruments.js';
import { MembersCache, VersionedMap, jsonByParts } from '../../core/json-cache.js';
import { DuplicateGuard } from '../../core/recent-set.js';
import { DEFAULT_TICK_RULES, TickGate, TickGateSnapshot, type TickVerdict } from '../../core/tick-rules.js';
import { DEFAULT_INSTRUMENTS } from '../../platform/config.js';
import type { MonitorReading } from '../../platform/metrics.js';

export const DEFAULT_APPLIED_CAPACITY = 200_000;

/** Bumped whenever the snapshot's shape changes: a snapshot of another version is rebuilt from the streams. */
export const MONITOR_SNAPSHOT_VERSION = 2;

/** The drift windows when none are configured (config feedback.*). */
export const DEFAULT_DRIFT_WINDOWS: DriftWindows = { referenceTrades: 200, recentTrades: 50, ksAlpha: 0.01 };

/** The source a position is attributed to when the result that opened it carried none. */
export const UNKNOWN_SOURCE = 'unknown';

/**
 * What the monitor keeps of an open position for its rl.feedback message: the first
 * entry's attribution (a scale-in keeps it) and the excursions from the average entry.
 */
const OpenTrade = z.object({
  trade_id: z.string(),
  entry_signal_id: z.string(),
  source: z.string(),
  confidence: z.number().nullable(),
  kelly_applied: z.number().nullable(),
  mae_pct: z.number(),
  mfe_pct: z.number(),
});
type OpenTrade = z.infer<typeof OpenTrade>;

export const MonitorSnapshot = z.object({
  version: z.literal(MONITOR_SNAPSHOT_VERSION),
  ledger: LedgerSnapshot,
  /** Id of the last trade.execution.res entry applied: entries at or before it are done. */
  last_fill_id: z.string(),
  price_ts: z.record(z.string(), z.number()),
  /** The risk service's latest armed exit levels per symbol (trade.exit.levels). */
  exit_levels: z.record(z.string(), ExitLevels).default({}),
  /** The tick gate's state (null in an older snapshot: seeded from the marks and price_ts). */
  tick_gate: TickGateSnapshot.nullable().default(null),
  /** Per open position: its entry's attribution and excursions (rl.feedback). */
  trades: z.record(z.string(), OpenTrade),
  /** Per-source attribution, calibration and drift state (GET /sources). */
  sources: SourceBookSnapshot,
  counters: z.object({
    fills_applied: z.number(),
    rejected_results: z.number(),
    duplicates: z.number(),
    ticks: z.number(),
  }),
});
export type MonitorSnapshot = z.infer<typeof MonitorSnapshot>;

/** The snapshot's parts whose text snapshotJson keeps between batches. */
type MonitorSnapshotPart = 'ledger' | 'price_ts' | 'exit_levels' | 'tick_gate' | 'trades' | 'sources';

export type FillOutcome =
  /** `feedback`: the round trip this fill closed; `drift`: the drift state changes it caused. */
  | { kind: 'applied'; effect: FillEffect; update: PositionUpdate; feedback: TradeFeedback | null; drift: ModelDrift[] }
  | { kind: 'duplicate' }
  | { kind: 'rejected' }
  /** The ledger cannot apply it (e.g. a price below 1e-18): nothing changed; dead-letter it. */
  | { kind: 'refused'; reason: string };

export class MonitorState {
  private ledger: Ledger;
  private readonly applied: DuplicateGuard;
  private lastFillId = '0-0';
  private readonly priceTs = new VersionedMap<string, number>();
  private readonly exitLevels = new VersionedMap<string, ExitLevels>();
  private readonly trades = new VersionedMap<string, OpenTrade>();
  readonly sources: SourceBook;
  private counters = { fills_applied: 0, rejected_results: 0, duplicates: 0, ticks: 0 };

  constructor(
    private readonly initialBalance: number,
    appliedCapacity = DEFAULT_APPLIED_CAPACITY,
    /** The market-data rules every service applies (services/common/ticks.ts builds it from config). */
    readonly tickGate: TickGate = new TickGate(instrumentTable(DEFAULT_INSTRUMENTS), DEFAULT_TICK_RULES),
    /**
     * Order ids are also kept this long after their result (risk.inflight_timeout_ms +
     * market.max_clock_skew_ms): execution cannot fill a copy of an order after that.
     */
    private readonly appliedWindowMs = 0,
    driftWindows: DriftWindows = DEFAULT_DRIFT_WINDOWS,
  ) {
    this.ledger = new Ledger(fx(initialBalance));
    this.applied = new DuplicateGuard(appliedCapacity);
    this.sources = new SourceBook(driftWindows);
  }

  /**
   * Applies one execution result (entry `entryId` of trade.execution.res), once per order_id.
   * `now` stamps the PositionUpdate (SPEC §2: `ts` is when the message was made); the
   * fill's own `ts` is what the books record. Stamping the update with the fill's time
   * would date it before mark updates already published, and a reader keeping the
   * latest update per symbol would then ignore it (e.g. never see a position close).
   */
  onExecution(result: ExecutionResult, entryId: string, now: number): FillOutcome {
    this.applied.evict(now);
    if (compareIds(entryId, this.lastFillId) <= 0 || this.applied.has(result.order_id)) {
      this.counters.duplicates += 1;
      return { kind: 'duplicate' };
    }
    let effect: FillEffect | null = null;
    if (result.status === 'FILLED') {
      const fill = ledgerFillOf(result);
      try {
        // A reducing fill's price is the last price the trade saw: its excursion counts.
        const before = this.ledger.position(result.symbol);
        effect = this.ledger.applyFill(fill);
        if (before !== undefined && before.quantity !== 0n && (before.quantity > 0n) !== (result.side === 'BUY')) {
          this.observeExcursion(result.symbol, fill.price, before.entryAvg, before.quantity > 0n);
        }
      } catch (error) {
        // The ledger validates before it changes anything; the watermark stays put.
        return { kind: 'refused', reason: `LEDGER: ${(error as Error).message}` };
      }
    }
    // Only now is the result done: a retry of a result that failed above is not a duplicate.
    this.lastFillId = entryId;
    this.applied.add(result.order_id, this.appliedWindowMs > 0 ? result.ts + this.appliedWindowMs : undefined);
    if (effect === null) {
      this.counters.rejected_results += 1;
      return { kind: 'rejected' };
    }
    this.counters.fills_applied += 1;
    let feedback: TradeFeedback | null = null;
    let drift: ModelDrift[] = [];
    if (effect.closedRoundTrip !== null) {
      feedback = this.feedbackOf(effect.closedRoundTrip, result, now);
      this.trades.delete(result.symbol);
      drift = this.sources.onRoundTrip(feedback, effect.closedRoundTrip.net, now);
    }
    if (effect.opened) {
      this.trades.set(result.symbol, {
        trade_id: result.order_id,
        entry_signal_id: result.signal_id,
        source: result.source ?? UNKNOWN_SOURCE,
        confidence: result.confidence ?? null,
        kelly_applied: result.kelly_applied ?? null,
        mae_pct: 0,
        mfe_pct: 0,
      });
      const mark = this.ledger.mark(result.symbol);
      const position = this.ledger.position(result.symbol);
      if (mark !== undefined && position !== undefined) this.observeExcursion(result.symbol, mark, position.entryAvg, position.quantity > 0n);
    }
    const cause: PositionCause = effect.closedRoundTrip && !effect.opened ? 'close' : 'fill';
    return { kind: 'applied', effect, update: this.update(result.symbol, cause, now, result.order_id), feedback, drift };
  }

  /** The rl.feedback message of a round trip the fill `result` closed. */
  private feedbackOf(trip: RoundTrip, result: ExecutionResult, now: number): TradeFeedback {
    const trade = this.trades.get(trip.symbol);
    const entryNotional = mul(trip.entryAvg, trip.quantity);
    return {
      schema_version: SCHEMA_VERSION,
      trade_id: trade?.trade_id ?? `${trip.symbol}-${trip.openedTs}`,
      symbol: trip.symbol,
      side: trip.side,
      source: trade?.source ?? UNKNOWN_SOURCE,
      confidence: trade?.confidence ?? null,
      entry_signal_id: trade?.entry_signal_id ?? UNKNOWN_SOURCE,
      exit_signal_id: result.signal_id,
      entry_ts: trip.openedTs,
      exit_ts: trip.closedTs,
      hold_ms: Math.max(0, trip.closedTs - trip.openedTs),
      avg_entry_price: toNumber(trip.entryAvg),
      avg_exit_price: toNumber(trip.closeAvg),
      quantity: toNumber(trip.quantity),
      gross_pnl_usd: toNumber(trip.gross),
      fees_usd: toNumber(trip.fees),
      net_pnl_usd: toNumber(trip.net),
      return_pct: entryNotional > 0n ? toNumber(div(trip.net, entryNotional)) : 0,
      mae_pct: trade?.mae_pct ?? 0,
      mfe_pct: trade?.mfe_pct ?? 0,
      exit_reason: trip.exitReason,
      kelly_applied: trade?.kelly_applied ?? null,
      ts: now,
    };
  }

  /** Widens the open trade's excursions with a price it saw (relative to the average entry). */
  private observeExcursion(symbol: string, price: Fixed, entryAvg: Fixed, long: boolean): void {
    const trade = this.trades.get(symbol);
    if (trade === undefined || entryAvg <= 0n) return;
    const move = toNumber(div(long ? price - entryAvg : entryAvg - price, entryAvg));
    if (move > trade.mfe_pct) trade.mfe_pct = move;
    if (-move > trade.mae_pct) trade.mae_pct = -move;
    this.trades.touch();
  }

  /** A batch's decisions of the risk service (trade.signal.decisions), counted per source. */
  onDecisions(counts: DecisionCounts): void {
    for (const source of counts.sources) this.sources.onDecisions(source);
  }

  /** A decision of the risk service (trade.signal.safe: read only when retiring an older monitor's groups), counted for its source. */
  onApproved(approval: RiskApprovedSignal): void {
    this.sources.onApproved(approval.source);
  }

  /** A rejection of the risk service (trade.signal.rejected), counted for its source by reason. */
  onRejected(rejection: RiskRejection): void {
    this.sources.onRejected(rejection.source, rejection.reasons);
  }

  /** GET /sources: every source's attribution, calibration (buckets from `minConfidence`) and drift state. */
  sourceReports(minConfidence: number): SourceReport[] {
    return this.sources.report(minConfidence);
  }

  /** Remembers an order applied before the last snapshot (rebuilding the guard at start-up). */
  rememberApplied(orderId: string, entryId: string, until?: number): void {
    if (compareIds(entryId, this.lastFillId) <= 0) this.applied.add(orderId, until);
  }

  /** Through the tick gate (the rules risk and execution apply); an accepted tick sets the mark. */
  onTick(tick: PriceTick, now: number): TickVerdict {
    const verdict = this.tickGate.offer(tick, now);
    if (verdict.kind !== 'accept') return verdict;
    this.priceTs.set(tick.symbol, verdict.ts);
    this.ledger.setMark(tick.symbol, verdict.price);
    if (this.trades.has(tick.symbol)) {
      const position = this.ledger.position(tick.symbol);
      if (position !== undefined && position.quantity !== 0n) this.observeExcursion(tick.symbol, verdict.price, position.entryAvg, position.quantity > 0n);
    }
    this.counters.ticks += 1;
    return verdict;
  }

  /**
   * The risk service's armed levels of a symbol (it owns them: entries arm them, the trail
   * moves them, POST /positions/{symbol}/exits changes them). One producer writes the
   * stream in order, so the latest entry wins (no clock comparison across services).
   */
  onExitLevels(levels: ExitLevels): void {
    if (levels.cause === 'cleared') this.exitLevels.delete(levels.symbol);
    else this.exitLevels.set(levels.symbol, levels);
  }

  hasOpenPosition(symbol: string): boolean {
    const position = this.ledger.position(symbol);
    return position !== undefined && position.quantity !== 0n;
  }

  update(symbol: string, cause: PositionCause, ts: number, orderId?: string): PositionUpdate {
    return { ...this.withLevels(this.ledger.positionView(symbol, cause, ts, orderId)), portfolio: this.ledger.summary() };
  }

  /** One mark-to-market update per open position. */
  markUpdates(ts: number): PositionUpdate[] {
    const portfolio = this.ledger.summary();
    return this.positions(ts).map((view) => ({ ...view, cause: 'mark' as const, portfolio }));
  }

  positions(ts: number): PositionView[] {
    return this.ledger.openPositionViews(ts).map((view) => this.withLevels(view));
  }

  /** An open position's view with its armed exit levels (each omitted when not armed). */
  private withLevels(view: PositionView): PositionView {
    const levels = this.exitLevels.get(view.symbol);
    if (levels === undefined || view.side === 'FLAT') return view;
    const out: PositionView = { ...view };
    if (levels.stop_loss !== null) out.stop_loss = levels.stop_loss;
    if (levels.take_profit !== null) out.take_profit = levels.take_profit;
    if (levels.trailing_stop !== null) out.trailing_stop = levels.trailing_stop;
    if (levels.expires_ts !== null) out.expires_ts = levels.expires_ts;
    return out;
  }

  portfolio() {
    return { ...this.ledger.summary(), ...this.ledger.totals(), initial_balance_usd: this.initialBalance };
  }

  prices(): Record<string, number> {
    return Object.fromEntries([...this.ledger.marksView()].map(([s, p]) => [s, toNumber(p)]));
  }

  /** What the monitor gauges show (qt_realized_pnl_usd, ...), read at each scrape. */
  metricsReading(): MonitorReading {
    const totals = this.ledger.totals();
    return {
      realizedPnlUsd: totals.realized_pnl_usd,
      unrealizedPnlUsd: totals.unrealized_pnl_usd,
      feesUsd: totals.fees_usd,
      openPositions: this.ledger.openPositionCount(),
      driftSources: this.sources.driftCounts(),
    };
  }

  openPositionCount(): number {
    return this.ledger.openPositionCount();
  }

  unrealizedPnl(): number {
    return toNumber(this.ledger.unrealized());
  }

  statistics() {
    return { ...this.counters, last_fill_id: this.lastFillId };
  }

  /** The snapshot with these parts (one list of fields for toSnapshot and snapshotJson). */
  private snapshotWith(parts: Pick<MonitorSnapshot, MonitorSnapshotPart>): MonitorSnapshot {
    return {
      version: MONITOR_SNAPSHOT_VERSION,
      ledger: parts.ledger,
      last_fill_id: this.lastFillId,
      price_ts: parts.price_ts,
      exit_levels: parts.exit_levels,
      tick_gate: parts.tick_gate,
      trades: parts.trades,
      sources: parts.sources,
      counters: { ...this.counters },
    };
  }

  toSnapshot(): MonitorSnapshot {
    return this.snapshotWith({
      ledger: this.ledger.toSnapshot(),
      price_ts: Object.fromEntries(this.priceTs),
      exit_levels: Object.fromEntries(this.exitLevels),
      tick_gate: this.tickGate.toSnapshot(),
      trades: Object.fromEntries([...this.trades].map(([s, t]) => [s, { ...t }])),
      sources: this.sources.toSnapshot(),
    });
  }

  /**
   * Exactly JSON.stringify(this.toSnapshot()), written with every batch: the per-symbol
   * parts (ledger positions and marks, price times, exit levels, tick gate, open trades) keep
   * each entry's text until it changes (core/json-cache.ts), the sources' part comes from
   * SourceBook.toSnapshotJson; so its cost does not grow with open positions beyond a join.
   */
  snapshotJson(): string {
    return jsonByParts(
      {
        ledger: () => this.ledger.toSnapshotJson(),
        price_ts: () => this.text.priceTs.object(this.priceTs, () => this.toSnapshot().price_ts),
        exit_levels: () => this.text.exitLevels.object(this.exitLevels, () => this.toSnapshot().exit_levels),
        tick_gate: () => this.tickGate.toSnapshotJson(),
        trades: () => this.text.trades.object(this.trades, () => this.toSnapshot().trades),
        sources: () => this.sources.toSnapshotJson(),
      },
      (markers) => this.snapshotWith(markers),
      () => this.toSnapshot(),
    );
  }

  /** The snapshot text of each per-symbol map, by entry (snapshotJson). */
  private readonly text = {
    priceTs: new MembersCache<number>((t) => JSON.stringify(t)),
    // Levels are decoded messages, replaced whole by the next one: the same object is the same text.
    exitLevels: new MembersCache<ExitLevels>((l) => JSON.stringify(l)),
    // An open trade's excursions are widened in place: compared by content, cached as a copy.
    trades: new MembersCache<OpenTrade>(
      (t) => JSON.stringify({ ...t }),
      (a, b) =>
        a.mae_pct === b.mae_pct && a.mfe_pct === b.mfe_pct && a.trade_id === b.trade_id && a.entry_signal_id === b.entry_signal_id &&
        a.source === b.source && a.confidence === b.confidence && a.kelly_applied === b.kelly_applied,
      (t) => ({ ...t }),
    ),
  };

  restore(input: unknown): void {
    const snap = MonitorSnapshot.parse(input);
    this.ledger = Ledger.fromSnapshot(snap.ledger);
    this.lastFillId = snap.last_fill_id;
    this.priceTs.clear();
    for (const [s, t] of Object.entries(snap.price_ts)) this.priceTs.set(s, t);
    this.exitLevels.clear();
    for (const [s, l] of Object.entries(snap.exit_levels)) this.exitLevels.set(s, l);
    if (snap.tick_gate !== null) {
      this.tickGate.restore(snap.tick_gate);
    } else {
      this.tickGate.restore({});
      for (const [s, p] of this.ledger.marksView()) this.tickGate.seed(s, p, this.priceTs.get(s) ?? 0);
    }
    this.trades.clear();
    for (const [s, t] of Object.entries(snap.trades)) this.trades.set(s, { ...t });
    this.sources.restore(snap.sources);
    this.counters = { ...snap.counters };
  }
}
