/**
 * The Risk service's state, with no I/O: what the governor is shown and what the
 * service must remember across restarts.
 *
 * Two folds of the same accounting core (core/ledger.ts):
 * - `confirmed`: the real fills from trade.execution.res, plus market.tick marks;
 * - `view`: `confirmed` plus a projected fill for every approved order that has not
 *   filled yet. The projection is the execution model itself (core/fills.ts, same
 *   seed and mark), so when the real fill arrives it normally equals the projection
 *   and the view does not move. That makes in-flight exposure count in full (a burst
 *   of signals can never break a limit) and makes decisions independent of how fast
 *   fills come back: a restarted or slow execution service changes no decision.
 * When a fill differs from its projection (the mark moved in between) or an order is
 * rejected or times out, the view is rebuilt from `confirmed` and the remaining
 * in-flight orders.
 */
import { z } from 'zod';
import { compareIds } from '../../bus/bus.js';
import { ONE, ZERO, div, fx, toNumber, type Fixed } from '../../core/fixed.js';
import { createFillModels, paperFill, type FillModels } from '../../core/fills.js';
import {
  decide,
  tradingStateAfter,
  utcDay,
  type AccountView,
  type Decision,
  type RiskLimits,
  type TradingState,
} from '../../core/governor.js';
import type { InstrumentTable } from '../../core/instruments.js';
import { Ledger, LedgerSnapshot, ledgerFillOf } from '../../core/ledger.js';
import {
  RiskApprovedSignal as ApprovalSchema,
  type ExecutionResult,
  type PriceTick,
  type ReasonCode,
  type RiskApprovedSignal,
  type TradeSignal,
} from '../../core/messages.js';
import { RecentSet } from '../../core/recent-set.js';

export interface RiskStateOptions {
  initialBalance: number;
  instruments: InstrumentTable;
  limits: RiskLimits;
  execution: { fee_rate: number; max_slippage_pct: number };
  seed: number;
  inflightTimeoutMs: number;
  /** How many decided signal ids are remembered to drop duplicates. */
  decidedCapacity?: number;
}

interface InFlight {
  order: RiskApprovedSignal;
  projection: ExecutionResult | null;
  /** Snapshot JSON of `order` (which never changes), made the first time a snapshot includes it. */
  json?: string;
}

/** Stands in for the in-flight list while the rest of the snapshot is serialised. */
const INFLIGHT_PLACEHOLDER = '\u0000inflight';
const INFLIGHT_PLACEHOLDER_JSON = JSON.stringify([INFLIGHT_PLACEHOLDER]);

export interface Counters {
  received: number;
  skipped: number;
  approved: number;
  rejected: number;
  rejected_by_reason: Partial<Record<ReasonCode, number>>;
  duplicates: number;
  fills_seen: number;
  fill_rejections_seen: number;
  inflight_expired: number;
}

const emptyCounters = (): Counters => ({
  received: 0,
  skipped: 0,
  approved: 0,
  rejected: 0,
  rejected_by_reason: {},
  duplicates: 0,
  fills_seen: 0,
  fill_rejections_seen: 0,
  inflight_expired: 0,
});

export type SignalOutcome = Decision | { kind: 'duplicate' };

/** Bumped whenever the snapshot's shape changes: a snapshot of another version is rebuilt from the streams. */
export const RISK_SNAPSHOT_VERSION = 1;

export const RiskSnapshot = z.object({
  version: z.literal(RISK_SNAPSHOT_VERSION),
  confirmed: LedgerSnapshot,
  inflight: z.array(ApprovalSchema),
  prices: z.record(z.string(), z.string()),
  price_ts: z.record(z.string(), z.number()),
  entries_by_day: z.record(z.string(), z.number()),
  trading_state: z.enum(['ACTIVE', 'HALTED']),
  halted_at: z.number().nullable(),
  halt_reason: z.string().nullable().default(null),
  /** The peak of the view's equity (decimal string; null in an older snapshot: taken from the view). */
  peak_equity: z.string().nullable().default(null),
  /** The newest trade.signal.v5 entry this snapshot covers (null: none yet, or an older snapshot). */
  last_signal_entry_id: z.string().nullable().default(null),
  counters: z.object({
    received: z.number(),
    skipped: z.number(),
    approved: z.number(),
    rejected: z.number(),
    rejected_by_reason: z.record(z.string(), z.number()),
    duplicates: z.number(),
    fills_seen: z.number(),
    fill_rejections_seen: z.number(),
    inflight_expired: z.number(),
  }),
});
export type RiskSnapshot = z.infer<typeof RiskSnapshot>;

export const DEFAULT_DECIDED_CAPACITY = 200_000;

export class RiskState {
  private confirmed: Ledger;
  private view: Ledger;
  private viewStale = false;
  private readonly inflight = new Map<string, InFlight>();
  private readonly prices = new Map<string, Fixed>();
  private readonly priceTs = new Map<string, number>();
  private readonly entriesByDay = new Map<number, number>();
  private tradingState: TradingState = 'ACTIVE';
  private haltedAt: number | null = null;
  private haltReason: string | null = null;
  private lastSignalEntryId: string | null = null;
  /**
   * Peak equity of the view (in-flight orders included), kept here rather than in the view
   * ledger: the view is rebuilt whenever a fill differs from its projection and at a
   * restart, and a rebuilt ledger only knows the peak of the confirmed fills. Raised at
   * each input (tick, fill, signal), persisted, and reset only by resume.
   */
  private peak: Fixed;
  private counters: Counters = emptyCounters();
  private readonly decided: RecentSet;
  private readonly models: FillModels;
  private readonly maxDrawdown: Fixed;

  constructor(private readonly options: RiskStateOptions) {
    this.confirmed = new Ledger(fx(options.initialBalance));
    this.view = this.confirmed.clone();
    this.peak = this.view.equity();
    this.decided = new RecentSet(options.decidedCapacity ?? DEFAULT_DECIDED_CAPACITY);
    this.models = createFillModels(options.execution);
    this.maxDrawdown = fx(options.limits.max_drawdown_pct);
  }

  // -- inputs -------------------------------------------------------------------

  /** Latest tick wins; an older tick arriving late changes nothing. */
  onTick(tick: PriceTick): void {
    const last = this.priceTs.get(tick.symbol);
    if (last !== undefined && tick.ts < last) return;
    const price = fx(tick.price);
    this.prices.set(tick.symbol, price);
    this.priceTs.set(tick.symbol, tick.ts);
    this.confirmed.setMark(tick.symbol, price);
    this.view.setMark(tick.symbol, price);
    this.updateTradingState(tick.ts);
  }

  onExecution(result: ExecutionResult): void {
    const pending = this.inflight.get(result.signal_id);
    if (pending) this.inflight.delete(result.signal_id);
    if (result.status !== 'FILLED') {
      this.counters.fill_rejections_seen += 1;
      if (pending?.projection?.status === 'FILLED') this.viewStale = true;
      return;
    }
    this.counters.fills_seen += 1;
    this.confirmed.applyFill(ledgerFillOf(result));
    if (!pending || !sameFill(pending.projection, result)) this.viewStale = true;
    this.updateTradingState(result.ts);
  }

  /** Decides one signal, once per signal_id. */
  onSignal(signal: TradeSignal, now: number): SignalOutcome {
    if (this.decided.has(signal.signal_id)) {
      this.counters.duplicates += 1;
      return { kind: 'duplicate' };
    }
    this.counters.received += 1;
    this.refreshView();
    this.updateTradingState(now);
    const decision = decide({
      signal,
      account: this.accountView(),
      instrument: this.options.instruments.get(signal.symbol),
      price: this.prices.get(signal.symbol),
      limits: this.options.limits,
      now,
    });
    this.decided.add(signal.signal_id);
    if (decision.kind === 'skip') {
      this.counters.skipped += 1;
    } else if (decision.kind === 'reject') {
      this.counters.rejected += 1;
      for (const reason of decision.message.reasons) {
        this.counters.rejected_by_reason[reason] = (this.counters.rejected_by_reason[reason] ?? 0) + 1;
      }
    } else {
      this.counters.approved += 1;
      const order = decision.message;
      if (order.intent !== 'CLOSE') {
        const day = utcDay(now);
        this.entriesByDay.set(day, (this.entriesByDay.get(day) ?? 0) + 1);
        for (const d of this.entriesByDay.keys()) if (d < day - 2) this.entriesByDay.delete(d);
      }
      this.addInflight(order, this.prices.get(order.symbol), now);
    }
    return decision;
  }

  /**
   * Rebuilding without a snapshot: an approval found in trade.signal.safe counts towards
   * its day's entries, and (when `inFlight`: no result yet, not timed out) is in flight
   * again, projected at the mark it was approved at, as a restored snapshot would have it.
   */
  noteApproval(order: RiskApprovedSignal, inFlight: boolean): void {
    if (order.intent !== 'CLOSE') {
      const day = utcDay(order.approved_ts);
      this.entriesByDay.set(day, (this.entriesByDay.get(day) ?? 0) + 1);
    }
    if (inFlight) {
      this.addInflight(order, fx(order.reference_price), order.approved_ts, false);
      this.viewStale = true;
    }
  }

  /** Remembers a decision found in the output streams at start-up (duplicates guard). */
  rememberDecided(signalId: string): void {
    this.decided.add(signalId);
  }

  /**
   * Notes a trade.signal.v5 entry handled (decided, skipped or dropped as a duplicate);
   * the newest one goes into the snapshot, so a restarted service knows which HOLDs it
   * already skipped (they leave no trace in the output streams).
   */
  noteSignalEntry(entryId: string): void {
    if (this.lastSignalEntryId === null || compareIds(entryId, this.lastSignalEntryId) > 0) this.lastSignalEntryId = entryId;
  }

  /** The newest trade.signal.v5 entry the state covers; null when none. */
  get signalWatermark(): string | null {
    return this.lastSignalEntryId;
  }

  /** Drops in-flight orders older than the timeout; returns the expired orders. */
  expireInflight(now: number): RiskApprovedSignal[] {
    const expired: RiskApprovedSignal[] = [];
    for (const [id, entry] of this.inflight) {
      if (now - entry.order.approved_ts < this.options.inflightTimeoutMs) continue;
      this.inflight.delete(id);
      expired.push(entry.order);
    }
    if (expired.length) {
      this.counters.inflight_expired += expired.length;
      this.viewStale = true;
    }
    return expired;
  }

  /** Leaves HALTED; peak equity restarts at current equity. */
  resume(): void {
    this.refreshView();
    this.tradingState = 'ACTIVE';
    this.haltedAt = null;
    this.haltReason = null;
    this.confirmed.resetPeak();
    this.view.resetPeak();
    this.peak = this.view.equity();
  }

  resetStatistics(): void {
    this.counters = emptyCounters();
  }

  // -- views ----------------------------------------------------------------------

  get state(): TradingState {
    return this.tradingState;
  }

  isHalted(): boolean {
    return this.tradingState === 'HALTED';
  }

  inflightCount(): number {
    return this.inflight.size;
  }

  approvalRate(): number | null {
    const decided = this.counters.approved + this.counters.rejected;
    return decided === 0 ? null : this.counters.approved / decided;
  }

  stats(now: number) {
    this.refreshView();
    const view = this.view;
    const rt = view.roundTripStats();
    const cooldownMs = this.options.limits.cooldown_minutes * 60_000;
    const cooldownUntil = rt.lastLossClosedAt === null ? null : rt.lastLossClosedAt + cooldownMs;
    return {
      trading_state: this.tradingState,
      halted_at: this.haltedAt,
      halt_reason: this.haltReason,
      balance_usd: toNumber(view.balance()),
      equity_usd: toNumber(view.equity()),
      peak_equity_usd: toNumber(this.peak),
      drawdown_pct: toNumber(this.drawdown()),
      exposure_usd: toNumber(view.exposure()),
      exposure_pct: toNumber(view.exposureFraction()),
      win_rate: toNumber(view.winRate()),
      closed_trades: rt.count,
      entries_today: this.entriesByDay.get(utcDay(now)) ?? 0,
      max_daily_entries: this.options.limits.max_daily_entries,
      cooldown_until: cooldownUntil !== null && cooldownUntil > now ? cooldownUntil : null,
      inflight_orders: this.inflight.size,
      open_positions: view.openPositionCount(),
      confirmed_balance_usd: toNumber(this.confirmed.balance()),
      counts: structuredClone(this.counters),
      approval_rate: this.approvalRate(),
    };
  }

  // -- persistence ------------------------------------------------------------------

  toSnapshot(): RiskSnapshot {
    return {
      version: RISK_SNAPSHOT_VERSION,
      confirmed: this.confirmed.toSnapshot(),
      inflight: [...this.inflight.values()].map((e) => inflightRecord(e.order)),
      prices: Object.fromEntries([...this.prices].map(([s, p]) => [s, p.toString()])),
      price_ts: Object.fromEntries(this.priceTs),
      entries_by_day: Object.fromEntries([...this.entriesByDay].map(([d, n]) => [String(d), n])),
      trading_state: this.tradingState,
      halted_at: this.haltedAt,
      halt_reason: this.haltReason,
      peak_equity: this.peak.toString(),
      last_signal_entry_id: this.lastSignalEntryId,
      counters: structuredClone(this.counters) as RiskSnapshot['counters'],
    };
  }

  /**
   * Exactly JSON.stringify(this.toSnapshot()), written with every batch: each in-flight
   * order (hundreds are in flight under load, most of them across two or more batches)
   * is serialised once and reused, not once per batch.
   */
  snapshotJson(): string {
    const snap = this.toSnapshot();
    snap.inflight = [INFLIGHT_PLACEHOLDER as unknown as RiskApprovedSignal];
    const parts: string[] = [];
    for (const entry of this.inflight.values()) parts.push((entry.json ??= JSON.stringify(inflightRecord(entry.order))));
    return JSON.stringify(snap).replace(INFLIGHT_PLACEHOLDER_JSON, () => `[${parts.join(',')}]`);
  }

  restore(input: unknown): void {
    const snap = RiskSnapshot.parse(input);
    this.confirmed = Ledger.fromSnapshot(snap.confirmed);
    this.inflight.clear();
    this.prices.clear();
    this.priceTs.clear();
    this.entriesByDay.clear();
    for (const [s, p] of Object.entries(snap.prices)) this.prices.set(s, BigInt(p));
    for (const [s, t] of Object.entries(snap.price_ts)) this.priceTs.set(s, t);
    for (const [d, n] of Object.entries(snap.entries_by_day)) this.entriesByDay.set(Number(d), n);
    this.tradingState = snap.trading_state;
    this.haltedAt = snap.halted_at;
    this.haltReason = snap.halt_reason;
    this.lastSignalEntryId = snap.last_signal_entry_id;
    this.counters = snap.counters as Counters;
    // Projected at the mark each order was approved at (its reference_price), exactly as
    // before the restart: today's marks would give other fills, another view, other decisions.
    for (const order of snap.inflight) this.addInflight(order, fx(order.reference_price), order.approved_ts, false);
    this.viewStale = true;
    this.refreshView();
    this.peak = snap.peak_equity === null ? this.view.peakEquity() : BigInt(snap.peak_equity);
  }

  // -- internals --------------------------------------------------------------------

  /** `mark`: the price the order was approved at, which its projected fill is priced from. */
  private addInflight(order: RiskApprovedSignal, mark: Fixed | undefined, now: number, applyToView = true): void {
    const projection = paperFill({
      order,
      mark,
      instrument: this.options.instruments.get(order.symbol),
      seed: this.options.seed,
      models: this.models,
      now,
    });
    const entry: InFlight = { order, projection: projection.status === 'FILLED' ? projection : null };
    this.inflight.set(order.signal_id, entry);
    if (applyToView && entry.projection) applyResult(this.view, entry.projection);
  }

  private refreshView(): void {
    if (!this.viewStale) return;
    const view = this.confirmed.clone();
    for (const entry of this.inflight.values()) if (entry.projection) applyResult(view, entry.projection);
    this.view = view;
    this.viewStale = false;
  }

  /** (peak − equity) / peak of the view, never negative; 1 below a peak ≤ 0 (as the ledger's). */
  private drawdown(): Fixed {
    const equity = this.view.equity();
    if (equity >= this.peak) return ZERO;
    if (this.peak <= ZERO) return ONE;
    return div(this.peak - equity, this.peak);
  }

  /** Raises the peak to the view's equity, then halts when the drawdown reached the maximum. */
  private updateTradingState(now: number): void {
    this.refreshView();
    const equity = this.view.equity();
    if (equity > this.peak) this.peak = equity;
    if (this.tradingState === 'HALTED') return;
    const drawdown = this.drawdown();
    const next = tradingStateAfter(this.tradingState, drawdown, this.maxDrawdown);
    if (next === 'HALTED') {
      this.tradingState = 'HALTED';
      this.haltedAt = now;
      const pct = (x: number) => `${(x * 100).toFixed(2)}%`;
      this.haltReason =
        `CIRCUIT_BREAKER: drawdown ${pct(toNumber(drawdown))} from peak equity ${toNumber(this.peak).toFixed(2)} ` +
        `reached the ${pct(this.options.limits.max_drawdown_pct)} limit; entries are refused until POST /resume`;
    }
  }

  private accountView(): AccountView {
    const view = this.view;
    const stats = view.roundTripStats();
    const entries = this.entriesByDay;
    return {
      equity: view.equity(),
      peakEquity: this.peak,
      drawdown: this.drawdown(),
      halted: this.tradingState === 'HALTED',
      exposure: view.exposure(),
      netQuantity: (symbol) => view.quantity(symbol),
      roundTrips: stats,
      lastLossClosedAt: stats.lastLossClosedAt,
      entriesOnDay: (day) => entries.get(day) ?? 0,
    };
  }
}

/**
 * An in-flight order as snapshots keep it: without its decision record (checks and
 * sizing, over half of its JSON), which nothing reads back; hundreds of orders are in
 * flight under load, and the snapshot is written with every batch.
 */
function inflightRecord(o: RiskApprovedSignal): RiskApprovedSignal {
  // A literal listing every field, in the message's order: V8 builds it in one step (a
  // spread copy grows key by key, see core/governor.ts). A new optional field of
  // RiskApprovedSignal must be added here to survive a restart.
  return {
    schema_version: o.schema_version, signal_id: o.signal_id, symbol: o.symbol, action: o.action, confidence: o.confidence,
    source: o.source, ts: o.ts, price: o.price, stop_loss: o.stop_loss, take_profit: o.take_profit, metadata: o.metadata,
    intent: o.intent, side: o.side, quantity: o.quantity, notional_usd: o.notional_usd, reference_price: o.reference_price,
    kelly_optimal: o.kelly_optimal, kelly_applied: o.kelly_applied, risk_amount_usd: o.risk_amount_usd, reduce_only: o.reduce_only,
    approved_ts: o.approved_ts, origin: o.origin, checks: [], sizing: null,
  };
}

function applyResult(ledger: Ledger, result: ExecutionResult): void {
  ledger.applyFill(ledgerFillOf(result));
}

function sameFill(projection: ExecutionResult | null, actual: ExecutionResult): boolean {
  return (
    projection !== null &&
    projection.side === actual.side &&
    projection.quantity === actual.quantity &&
    projection.fill_price === actual.fill_price &&
    projection.fee_usd === actual.fee_usd
  );
}
