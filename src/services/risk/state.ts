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
import { ONE, ZERO, div, fx, mul, toNumber, type Fixed } from '../../core/fixed.js';
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
import { NO_EXIT_DEFAULTS, applyLevelPatch, directionOf, resolveEntryLevels, type Direction, type ExitDefaults, type LevelPatch } from '../../core/exits.js';
import type { InstrumentTable } from '../../core/instruments.js';
import { Ledger, LedgerSnapshot, ledgerFillOf } from '../../core/ledger.js';
import {
  RiskApprovedSignal as ApprovalSchema,
  type ExecutionResult,
  type ExitLevels,
  type PriceTick,
  type ReasonCode,
  type RiskApprovedSignal,
  type TradeSignal,
} from '../../core/messages.js';
import {
  MS_PER_MINUTE,
  activeLocks,
  dailyLoss,
  lockFor,
  locksAfterClose,
  longestLookbackMs,
  newSourceCurve,
  resumeSource,
  sourceAfterClose,
  sourceDrawdown,
  type ClosedTrade,
  type Lock,
  type ProtectionConfig,
  type SourceCurve,
} from '../../core/protections.js';
import { MembersCache, VersionedMap, itemsJson, jsonByParts } from '../../core/json-cache.js';
import { DuplicateGuard } from '../../core/recent-set.js';
import { TickGate, TickGateSnapshot, type TickVerdict } from '../../core/tick-rules.js';
import type { RiskReading } from '../../platform/metrics.js';
import { EMPTY_EXIT_BOOK, ExitBook, ExitBookSnapshot } from './exit-book.js';

export interface RiskStateOptions {
  initialBalance: number;
  instruments: InstrumentTable;
  limits: RiskLimits;
  execution: { fee_rate: number; max_slippage_pct: number; max_price_deviation_pct?: number };
  seed: number;
  /** Entries are refused STALE_PRICE on a tick older than this (ms); 0 = off. */
  staleAfterMs?: number;
  /** Approvals without `expires_ts` (from an older build) stop counting this long after approval. */
  inflightTimeoutMs: number;
  /**
   * Kept in flight this much past `expires_ts` (market.max_clock_skew_ms): execution's
   * clock may run behind ours, and an order it may still fill must still count.
   */
  expiryGraceMs?: number;
  /** The market-data rules (services/common/ticks.ts builds it from config). */
  tickGate: TickGate;
  /**
   * How many decided signal ids are always remembered (the count window); ids are also
   * kept by time, see `decidedUntil`.
   */
  decidedCapacity?: number;
  /** Exit-level defaults (config `exits`); none when omitted. */
  exits?: ExitDefaults;
  /** Config `protections` (docs/protections.md); none when omitted. */
  protections?: readonly ProtectionConfig[];
  /** risk.max_source_drawdown_pct; 0 or omitted = off. */
  maxSourceDrawdownPct?: number;
}

/** The operator's kill switch (POST /halt). */
export interface KillSwitch {
  reason: string;
  since: number;
}

interface InFlight {
  order: RiskApprovedSignal;
  projection: ExecutionResult | null;
  /** Snapshot JSON of `order` (which never changes), made the first time a snapshot includes it. */
  json?: string;
}

/** The snapshot's parts whose text snapshotJson keeps between batches. */
type SnapshotPart = 'confirmed' | 'inflight' | 'prices' | 'price_ts' | 'quotes' | 'tick_gate' | 'exits' | 'position_sources';

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

/**
 * Bumped whenever the snapshot's shape changes: a snapshot of another version is rebuilt
 * from the streams, except the older versions in RISK_SNAPSHOT_OLDER_VERSIONS, which
 * restore with the fields they lack at their defaults.
 * 2: the protections (kill switch, day start, entry times, locks, round trips, sources).
 */
export const RISK_SNAPSHOT_VERSION = 2;
export const RISK_SNAPSHOT_OLDER_VERSIONS: readonly number[] = [1];

const Fx = z.string().regex(/^-?\d+$/);
const LockSnapshot = z.object({ protection: z.string(), symbol: z.string().nullable(), since: z.number(), until: z.number(), reason: z.string() });
const TradeSnapshot = z.object({
  symbol: z.string(),
  source: z.string(),
  closed_at: z.number(),
  net: Fx,
  entry_notional: Fx,
  exit_reason: z.string().nullable(),
  balance_after: Fx,
});
const SourceSnapshot = z.object({ value: Fx, peak: Fx, stopped_at: z.number().nullable(), stop_reason: z.string().nullable() });

export const RiskSnapshot = z.object({
  version: z.union([z.literal(RISK_SNAPSHOT_VERSION), z.literal(1)]),
  confirmed: LedgerSnapshot,
  inflight: z.array(ApprovalSchema),
  prices: z.record(z.string(), z.string()),
  price_ts: z.record(z.string(), z.number()),
  /** Best bid/ask per symbol of the latest tick (Fixed units as strings); absent in older snapshots. */
  quotes: z.record(z.string(), z.object({ bid: z.string(), ask: z.string() })).optional(),
  /** The tick gate's state (null in an older snapshot: seeded from prices and price_ts). */
  tick_gate: TickGateSnapshot.nullable().default(null),
  entries_by_day: z.record(z.string(), z.number()),
  trading_state: z.enum(['ACTIVE', 'HALTED']),
  halted_at: z.number().nullable(),
  halt_reason: z.string().nullable().default(null),
  /** The peak of the view's equity (decimal string; null in an older snapshot: taken from the view). */
  peak_equity: z.string().nullable().default(null),
  /** The largest drawdown from peak seen so far (decimal string; kept through POST /resume). */
  max_drawdown: z.string().default('0'),
  /** The newest trade.signal.v5 entry this snapshot covers (null: none yet, or an older snapshot). */
  last_signal_entry_id: z.string().nullable().default(null),
  /** Protective exits: armed levels, trail marks, the in-flight close per position (exit-book.ts). */
  exits: ExitBookSnapshot.default(EMPTY_EXIT_BOOK),
  // Version 2: the protections (docs/protections.md); defaults for a version-1 snapshot.
  kill_switch: z.object({ reason: z.string(), since: z.number() }).nullable().default(null),
  day_start: z.object({ day: z.number(), equity: Fx }).nullable().default(null),
  daily_loss_reached: z.object({ day: z.number(), at: z.number() }).nullable().default(null),
  entry_times: z.array(z.number()).default([]),
  locks: z.array(LockSnapshot).default([]),
  closed_trades: z.array(TradeSnapshot).default([]),
  position_sources: z.record(z.string(), z.string()).default({}),
  sources: z.record(z.string(), SourceSnapshot).default({}),
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
/** The most closed round trips kept for the protections' lookbacks. */
const MAX_CLOSED_TRADES = 10_000;

/**
 * Until when a decided signal id is kept (undefined when risk.max_signal_age_ms is 0).
 * A copy of the signal arriving later than its ts + window is rejected STALE_SIGNAL
 * (entries) anyway, so keeping the id until max(decided, ts) + window recognises every
 * copy that could still be traded. The signal's ts counts at most one window ahead (a
 * signal stamped further ahead is STALE_SIGNAL), so no id is kept past two windows:
 * memory ≤ decisions per second × 2 × window.
 */
export function decidedUntil(decidedAt: number, signalTs: number, windowMs: number): number | undefined {
  if (windowMs <= 0) return undefined;
  const from = Math.min(Math.max(decidedAt, signalTs), decidedAt + windowMs);
  return from + windowMs;
}

export class RiskState {
  private confirmed: Ledger;
  private view: Ledger;
  private viewStale = false;
  private readonly inflight = new Map<string, InFlight>();
  private readonly prices = new VersionedMap<string, Fixed>();
  private readonly priceTs = new VersionedMap<string, number>();
  /** Best bid/ask of the latest tick per symbol (absent when it had none). */
  private readonly quotes = new VersionedMap<string, { bid: Fixed; ask: Fixed }>();
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
  // -- protections (docs/protections.md) --
  private killSwitch: KillSwitch | null = null;
  /** The UTC day and the view's equity at its first input (risk.max_daily_loss_pct). */
  /** The largest drawdown from peak seen so far (a resume restarts the peak, not this). */
  private maxDrawdownSeen: Fixed = ZERO;
  private dayStart: { day: number; equity: Fixed } | null = null;
  /** When the day's loss first reached risk.max_daily_loss_pct (entries refused for the rest of that UTC day). */
  private dailyLossReached: { day: number; at: number } | null = null;
  /** Approval times of the entries of the last minute, ascending (the rate limits). */
  private entryTimes: number[] = [];
  private locks: Lock[] = [];
  /** Round trips closed within the longest protection lookback, oldest first. */
  private closedTrades: ClosedTrade[] = [];
  /** The source of the signal that opened each open position (confirmed fold). */
  private readonly positionSources = new VersionedMap<string, string>();
  private readonly sources = new Map<string, SourceCurve>();
  private readonly maxSourceDrawdown: Fixed | null;
  private readonly lockForView = (symbol: string, now: number): Lock | null => lockFor(this.locks, symbol, now);
  private readonly sourceStopView = (source: string): { since: number; reason: string } | null => {
    const curve = this.sources.get(source);
    return curve === undefined || curve.stoppedAt === null ? null : { since: curve.stoppedAt, reason: curve.stopReason ?? 'drawdown' };
  };
  private readonly decided: DuplicateGuard;
  private readonly models: FillModels;
  private readonly maxDrawdown: Fixed;
  private readonly exitBook = new ExitBook((symbol) => this.quotes.get(symbol));
  /** As execution checks it, so a projection is rejected exactly when the fill would be. */
  private readonly maxPriceDeviation: Fixed | undefined;

  constructor(private readonly options: RiskStateOptions) {
    this.confirmed = new Ledger(fx(options.initialBalance));
    this.view = this.confirmed.clone();
    this.peak = this.view.equity();
    this.decided = new DuplicateGuard(options.decidedCapacity ?? DEFAULT_DECIDED_CAPACITY);
    this.models = createFillModels(options.execution);
    this.maxDrawdown = fx(options.limits.max_drawdown_pct);
    const deviation = options.execution.max_price_deviation_pct;
    this.maxPriceDeviation = deviation === undefined ? undefined : fx(deviation);
    this.maxSourceDrawdown = options.maxSourceDrawdownPct ? fx(options.maxSourceDrawdownPct) : null;
  }

  // -- inputs -------------------------------------------------------------------

  /**
   * Through the tick gate (core/tick-rules.ts), the same rules execution and the monitor
   * apply: an accepted tick becomes the mark; a refused or stale one changes no price.
   */
  onTick(tick: PriceTick, now: number): TickVerdict {
    const verdict = this.options.tickGate.offer(tick, now);
    if (verdict.kind !== 'accept') return verdict;
    const price = verdict.price;
    this.rollDay(now);
    this.prices.set(tick.symbol, price);
    this.priceTs.set(tick.symbol, tick.ts);
    if (verdict.quote !== undefined) this.quotes.set(tick.symbol, verdict.quote);
    else this.quotes.delete(tick.symbol);
    this.confirmed.setMark(tick.symbol, price);
    this.view.setMark(tick.symbol, price);
    this.updateTradingState(tick.ts);
    return verdict;
  }

  /**
   * Applies one execution result. Returns the reason when the ledger cannot apply a fill
   * (nothing changed then, the order stays in flight: the service dead-letters the entry).
   */
  onExecution(result: ExecutionResult): string | undefined {
    const pending = this.inflight.get(result.signal_id);
    if (result.status !== 'FILLED') {
      if (pending) this.inflight.delete(result.signal_id);
      this.counters.fill_rejections_seen += 1;
      if (pending?.projection?.status === 'FILLED') this.viewStale = true;
      this.exitsAfterResult(result);
      return undefined;
    }
    this.rollDay(result.ts);
    let effect: ReturnType<Ledger['applyFill']>;
    try {
      effect = this.confirmed.applyFill(ledgerFillOf(result));
    } catch (error) {
      return `LEDGER: ${(error as Error).message}`;
    }
    if (pending) this.inflight.delete(result.signal_id);
    this.protectionsAfterFill(result, effect, pending?.order);
    this.counters.fills_seen += 1;
    // The view's projection of this fill is stamped with the approval time, so its round
    // trip closed earlier there; the cooldown clock takes the confirmed fold's close time
    // (accountView), which needs no rebuild of the view (a rebuild on every close made risk
    // six times slower).
    if (!pending || !sameFill(pending.projection, result)) this.viewStale = true;
    this.updateTradingState(result.ts);
    this.exitsAfterResult(result);
    return undefined;
  }

  /** Decides one signal, once per signal_id. */
  onSignal(signal: TradeSignal, now: number): SignalOutcome {
    this.decided.evict(now);
    if (this.decided.has(signal.signal_id)) {
      this.counters.duplicates += 1;
      return { kind: 'duplicate' };
    }
    this.counters.received += 1;
    this.refreshView();
    this.rollDay(now);
    this.updateTradingState(now);
    const priceTs = this.priceTs.get(signal.symbol);
    const staleAfter = this.options.staleAfterMs ?? 0;
    const decision = decide({
      signal,
      account: this.accountView(now),
      instrument: this.options.instruments.get(signal.symbol),
      price: this.priceToPay(signal),
      priceAge: staleAfter > 0 && priceTs !== undefined ? { ageMs: Math.max(0, now - priceTs), limitMs: staleAfter } : undefined,
      limits: this.options.limits,
      now,
      exits: this.options.exits,
      maxSlippagePct: this.options.execution.max_slippage_pct,
    });
    this.decided.add(signal.signal_id, decidedUntil(now, signal.ts, this.options.limits.max_signal_age_ms ?? 0));
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
        this.noteEntryTime(now);
        this.armEntryLevels(signal, order, now);
      }
      this.addInflight(order, this.prices.get(order.symbol), now);
    }
    return decision;
  }

  /**
   * The price an order on this signal would pay: with quotes the ask for a buy and the
   * bid for a sell (a CLOSE sells a long, buys back a short), else the last price; the
   * governor sizes with it, so execution's fill lands next to the approval's
   * reference_price.
   */
  private priceToPay(signal: TradeSignal): Fixed | undefined {
    const last = this.prices.get(signal.symbol);
    const quote = this.quotes.get(signal.symbol);
    if (quote === undefined || last === undefined) return last;
    const net = this.view.quantity(signal.symbol);
    const buys = signal.action === 'BUY' || (signal.action === 'CLOSE' && net < 0n);
    const sells = signal.action === 'SELL' || (signal.action === 'CLOSE' && net > 0n);
    return buys ? quote.ask : sells ? quote.bid : last;
  }

  /**
   * Rebuilding without a snapshot: an approval found in trade.signal.safe counts towards
   * its day's entries, and (when it has no result yet and execution could still fill it)
   * is in flight again, projected at the mark it was approved at, as a restored snapshot
   * would have it. Its exit levels are not re-armed: they are not in the streams.
   */
  noteApproval(order: RiskApprovedSignal, resolved: boolean, now: number): void {
    if (order.intent !== 'CLOSE') {
      const day = utcDay(order.approved_ts);
      this.entriesByDay.set(day, (this.entriesByDay.get(day) ?? 0) + 1);
    }
    if (!resolved && now <= this.fillableUntil(order)) {
      this.addInflight(order, fx(order.reference_price), order.approved_ts, false);
      this.viewStale = true;
    }
  }

  /**
   * Remembers a decision found in the streams at start-up (duplicates guard); with its
   * decision and signal times it is kept by time exactly as when it was decided.
   */
  rememberDecided(signalId: string, times?: { decidedAt: number; signalTs: number }): void {
    const window = this.options.limits.max_signal_age_ms ?? 0;
    this.decided.add(signalId, times === undefined ? undefined : decidedUntil(times.decidedAt, times.signalTs, window));
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

  /** The last moment execution may still fill `order`: its `expires_ts` plus the clock grace. */
  private fillableUntil(order: RiskApprovedSignal): number {
    const expires = order.expires_ts ?? order.approved_ts + this.options.inflightTimeoutMs;
    return expires + (this.options.expiryGraceMs ?? 0);
  }

  /**
   * Drops in-flight orders execution can no longer fill (past `expires_ts` plus the clock
   * grace; execution rejects them EXPIRED); returns them. Until then an unfilled order
   * counts in full, however long execution is away.
   */
  expireInflight(now: number): RiskApprovedSignal[] {
    const expired: RiskApprovedSignal[] = [];
    for (const [id, entry] of this.inflight) {
      const order = entry.order;
      if (now <= this.fillableUntil(order)) continue;
      this.inflight.delete(id);
      expired.push(entry.order);
      // Execution can only reject it EXPIRED now: a protective close is fired afresh.
      if (order.origin === 'protective_exit') this.exitBook.onExpired(order.symbol, order.signal_id);
    }
    if (expired.length) {
      this.counters.inflight_expired += expired.length;
      this.viewStale = true;
    }
    return expired;
  }

  /** Leaves HALTED (the circuit breaker and the kill switch); peak equity restarts at current equity. */
  resume(): void {
    this.refreshView();
    this.killSwitch = null;
    this.tradingState = 'ACTIVE';
    this.haltedAt = null;
    this.haltReason = null;
    this.confirmed.resetPeak();
    this.view.resetPeak();
    this.peak = this.view.equity();
  }

  // -- protections (docs/protections.md; the rules are in core/protections.ts) -------

  /**
   * POST /halt: entries are refused KILL_SWITCH with `reason` until POST /resume. A second
   * halt while halted keeps the first one's time and takes the new reason.
   */
  halt(reason: string, now: number): KillSwitch {
    this.killSwitch = { reason, since: this.killSwitch?.since ?? now };
    return { ...this.killSwitch };
  }

  /**
   * The kill switch's flatten: a reduce-only close (origin manual_close, exit_reason
   * kill_switch) for every position of the view, in-flight orders included, through the
   * governor's close path. A position already going flat (its close in flight) gets none,
   * so a second call, or one while execution is slow, never doubles a close.
   */
  flattenAll(now: number): RiskApprovedSignal[] {
    this.refreshView();
    const closes: RiskApprovedSignal[] = [];
    for (const position of this.view.openPositions()) {
      const symbol = position.symbol;
      if (this.view.quantity(symbol) === ZERO) continue;
      const signal: TradeSignal = {
        schema_version: 1,
        signal_id: `kill-switch-${symbol}-${position.openedTs}-${now}`,
        symbol,
        action: 'CLOSE',
        confidence: 1,
        source: 'manual_close',
        ts: now,
      };
      const decision = decide({
        signal,
        account: this.accountView(),
        instrument: this.options.instruments.get(symbol),
        price: this.priceToPay(signal),
        limits: this.options.limits,
        now,
      });
      if (decision.kind !== 'approve') continue;
      const order = decision.message;
      order.exit_reason = 'kill_switch';
      (order.checks ??= []).push({
        rule: 'kill_switch',
        passed: true,
        value: order.quantity,
        limit: null,
        note: `kill switch: flatten ${symbol} (${this.killSwitch?.reason ?? 'operator halt'})`,
      });
      this.decided.add(signal.signal_id, undefined);
      this.counters.approved += 1;
      this.addInflight(order, this.prices.get(symbol), now);
      closes.push(order);
    }
    return closes;
  }

  /** POST /sources/{source}/resume: the source trades again, its peak restarts at its current value. */
  resumeSource(source: string): { source: string; was_stopped: boolean } {
    const curve = this.sources.get(source);
    if (curve === undefined) return { source, was_stopped: false };
    this.sources.set(source, resumeSource(curve));
    return { source, was_stopped: curve.stoppedAt !== null };
  }

  /** Notices of rare events (a source stopped, a lock set) since the last call, for the log. */
  drainNotices(): string[] {
    const out = this.notices;
    this.notices = [];
    return out;
  }

  private notices: string[] = [];

  /**
   * After a rebuild from the streams (no snapshot): the day's starting equity is not in
   * the streams, so the day starts again at the equity the next input sees.
   */
  restartDay(): void {
    this.dayStart = null;
    this.dailyLossReached = null;
  }

  /** On the first input of a new UTC day: the day's starting equity is the view's equity now. */
  private rollDay(now: number): void {
    const day = utcDay(now);
    if (this.dayStart !== null && this.dayStart.day >= day) return;
    this.refreshView();
    this.dayStart = { day, equity: this.view.equity() };
  }

  /** How long entry approval times are kept: the longest rate-limit window in use (0 = none kept). */
  private rateWindowMs(): number {
    const l = this.options.limits;
    return l.max_orders_per_minute ? MS_PER_MINUTE : l.max_orders_per_second ? 1000 : 0;
  }

  private noteEntryTime(now: number): void {
    const windowMs = this.rateWindowMs();
    if (windowMs === 0) return;
    const times = this.entryTimes;
    times.push(now);
    let drop = 0;
    while (drop < times.length && times[drop]! <= now - windowMs) drop += 1;
    if (drop > 0) times.splice(0, drop);
  }

  private protectionsOn(): boolean {
    return (this.options.protections?.length ?? 0) > 0 || this.maxSourceDrawdown !== null;
  }

  /** After a confirmed fill: remembers who opened a position; feeds a closed round trip to the protections. */
  private protectionsAfterFill(result: ExecutionResult, effect: ReturnType<Ledger['applyFill']>, order: RiskApprovedSignal | undefined): void {
    const trip = effect.closedRoundTrip;
    const symbol = result.symbol;
    const source = this.positionSources.get(symbol) ?? 'unknown';
    if (trip !== null) this.positionSources.delete(symbol);
    if (effect.opened) this.positionSources.set(symbol, order?.source ?? 'unknown');
    if (trip === null || !this.protectionsOn()) return;
    const trade: ClosedTrade = {
      symbol,
      source,
      closedAt: trip.closedTs,
      net: trip.net,
      entryNotional: mul(trip.entryAvg, trip.quantity),
      exitReason: trip.exitReason,
      balanceAfter: this.confirmed.balance(),
    };
    const configs = this.options.protections ?? [];
    if (configs.length > 0) {
      const keepFrom = trade.closedAt - longestLookbackMs(configs);
      this.closedTrades = this.closedTrades.filter((t) => t.closedAt > keepFrom);
      this.closedTrades.push(trade);
      if (this.closedTrades.length > MAX_CLOSED_TRADES) this.closedTrades.splice(0, this.closedTrades.length - MAX_CLOSED_TRADES);
      const fresh = locksAfterClose(configs, this.closedTrades, trade);
      this.locks = activeLocks(this.locks, trade.closedAt).concat(fresh);
      for (const lock of fresh) {
        if (lock.protection.startsWith('cooldown#')) continue; // one per exit: not a rare event
        this.notices.push(`${lock.symbol ?? 'every entry'} locked by ${lock.protection} until ${new Date(lock.until).toISOString()}: ${lock.reason}`);
      }
    }
    if (this.maxSourceDrawdown !== null) {
      const before = this.sources.get(source) ?? newSourceCurve(fx(this.options.initialBalance));
      const after = sourceAfterClose(before, trade.net, trade.closedAt, this.maxSourceDrawdown);
      this.sources.set(source, after);
      if (before.stoppedAt === null && after.stoppedAt !== null) {
        this.notices.push(`source ${source} stopped (SOURCE_DRAWDOWN until POST /sources/${source}/resume): ${after.stopReason}`);
      }
    }
  }

  /** What /stats, /health and the live screen show of the protections. */
  private protectionStats(now: number) {
    const l = this.options.limits;
    const start = this.dayStart !== null && this.dayStart.day === utcDay(now) ? this.dayStart.equity : null;
    const day = start === null ? null : dailyLoss(start, this.view.equity());
    const reachedAt = this.dailyLossReachedAt(now);
    const windowCount = (ms: number) => this.entryTimes.filter((t) => t > now - ms && t <= now).length;
    return {
      kill_switch: this.killSwitch === null ? null : { ...this.killSwitch },
      daily_loss: {
        day_start_equity_usd: start === null ? null : toNumber(start),
        day_pnl_usd: day === null ? null : toNumber(day.pnl),
        loss_pct: day === null ? null : toNumber(day.lossFraction),
        max_daily_loss_pct: l.max_daily_loss_pct ?? 0,
        limit_reached: reachedAt !== null || (day !== null && !!l.max_daily_loss_pct && day.lossFraction >= fx(l.max_daily_loss_pct)),
        reached_at: reachedAt,
        resets_at: (utcDay(now) + 1) * 86_400_000,
      },
      rate_limits: {
        entries_last_second: windowCount(1000),
        entries_last_minute: windowCount(MS_PER_MINUTE),
        max_orders_per_second: l.max_orders_per_second ?? 0,
        max_orders_per_minute: l.max_orders_per_minute ?? 0,
      },
      max_open_positions: l.max_open_positions ?? 0,
      max_notional_per_order_usd: l.max_notional_per_order_usd ?? 0,
      locks: activeLocks(this.locks, now).map((lock) => ({ ...lock })),
      sources: [...this.sources].map(([source, c]) => ({
        source,
        value_usd: toNumber(c.value),
        peak_usd: toNumber(c.peak),
        drawdown_pct: toNumber(sourceDrawdown(c)),
        stopped_at: c.stoppedAt,
        stop_reason: c.stopReason,
      })),
      max_source_drawdown_pct: this.options.maxSourceDrawdownPct ?? 0,
    };
  }

  /** The kill switch (null when off). */
  killSwitchState(): KillSwitch | null {
    return this.killSwitch === null ? null : { ...this.killSwitch };
  }

  /** The trading state as shown: HALTED by the circuit breaker or the kill switch. */
  shownState(): { state: TradingState; since: number | null; reason: string | null } {
    if (this.killSwitch !== null) return { state: 'HALTED', since: this.killSwitch.since, reason: `KILL_SWITCH: ${this.killSwitch.reason}` };
    return { state: this.tradingState, since: this.haltedAt, reason: this.haltReason };
  }

  resetStatistics(): void {
    this.counters = emptyCounters();
    this.exitBook.resetStatistics();
  }

  // -- protective exits (docs/exits.md; the rules are in core/exits.ts) -------------

  /**
   * Checks the armed levels of `symbol` (or of every position, e.g. for time limits on a
   * timer) and returns the reduce-only closes to publish, at most one per position in
   * flight. A close passes whatever the trading state: it goes through the governor's
   * close path, which no risk rule blocks. Its signal_id is derived from the entry and
   * the trigger, so a re-fire after a restart is dropped by execution's guard.
   */
  checkExits(now: number, symbol?: string): RiskApprovedSignal[] {
    const closes: RiskApprovedSignal[] = [];
    for (const s of symbol === undefined ? this.exitBook.symbols() : [symbol]) {
      const last = this.prices.get(s);
      if (this.exitBook.get(s) === undefined || last === undefined) continue;
      const direction = this.confirmedDirection(s);
      if (direction === null) continue;
      const fired = this.exitBook.evaluate(s, direction, last, now);
      if (fired === null) continue;
      this.refreshView();
      // Another close in flight (a signal's or a manual one) already takes the position to flat.
      const net = this.view.quantity(s);
      if (net === ZERO || (net > ZERO) !== (direction === 'LONG')) continue;
      const signal: TradeSignal = {
        schema_version: 1,
        signal_id: fired.signalId,
        symbol: s,
        action: 'CLOSE',
        confidence: 1,
        source: 'protective_exit',
        ts: now,
      };
      const decision = decide({
        signal,
        account: this.accountView(),
        instrument: this.options.instruments.get(s),
        price: this.prices.get(s),
        limits: this.options.limits,
        now,
      });
      if (decision.kind !== 'approve') continue;
      const order = decision.message;
      order.exit_reason = fired.trigger.reason;
      const { trigger } = fired;
      (order.checks ??= []).push({
        rule: 'protective_exit',
        passed: true,
        value: toNumber(trigger.price),
        limit: trigger.level === null ? fired.levels.expiresTs : toNumber(trigger.level),
        note:
          trigger.level === null
            ? `time limit reached at ${new Date(now).toISOString()}; a market close at the next price`
            : `${trigger.reason}: exit-side price ${toNumber(trigger.price)} crossed ${toNumber(trigger.level)}; a market close at the next price, not at the level`,
      });
      this.exitBook.markClosing(fired, now);
      this.addInflight(order, this.prices.get(s), now);
      closes.push(order);
    }
    return closes;
  }

  /** The ExitLevels messages to publish (trade.exit.levels), queued since the last call. */
  drainExitLevels(): readonly ExitLevels[] {
    return this.exitBook.drain();
  }

  /**
   * True when a check on the clock alone can fire something: a time limit is armed, or a
   * protective close was refused by execution and waits to be fired again.
   */
  exitsDueOnClock(): boolean {
    return this.exitBook.hasTimeLimit() || this.exitBook.hasRetry();
  }

  /**
   * POST /positions/{symbol}/exits: sets (a value) or clears (null) levels of an open position,
   * checked against the exit-side price now.
   */
  setExitLevels(
    symbol: string,
    patch: LevelPatch,
    now: number,
  ): { ok: true; levels: ExitLevels } | { ok: false; status: 400 | 404; field?: string; message: string } {
    const direction = this.confirmedDirection(symbol);
    if (direction === null) return { ok: false, status: 404, message: `no open position in ${symbol}` };
    const last = this.prices.get(symbol);
    if (last === undefined) return { ok: false, status: 404, message: `no price for ${symbol} yet` };
    const price = this.exitBook.exitPrice(symbol, direction, last);
    const current = this.exitBook.get(symbol) ?? {
      // A position with no levels record (armed before exits existed): named after its opening.
      entrySignalId: `position-${symbol}-${this.confirmed.position(symbol)?.openedTs ?? now}`,
      direction,
      stopLoss: null,
      takeProfit: null,
      trailingPct: null,
      highWater: null,
      expiresTs: null,
    };
    const result = applyLevelPatch({ ...current, direction }, patch, price, now);
    if (!result.ok) return { ok: false, status: 400, field: result.field, message: result.message };
    this.exitBook.arm(symbol, result.levels, now, 'updated');
    return { ok: true, levels: this.exitBook.message(symbol, 'updated', now) };
  }

  /** Every position's armed levels. */
  exitLevels(now: number): ExitLevels[] {
    return this.exitBook.views(now);
  }

  private armEntryLevels(signal: TradeSignal, order: RiskApprovedSignal, now: number): void {
    const price = this.prices.get(order.symbol);
    if (price === undefined) return;
    const { levels } = resolveEntryLevels({ signal, side: order.side, price, defaults: this.options.exits ?? NO_EXIT_DEFAULTS, now });
    this.exitBook.arm(order.symbol, levels, now);
  }

  /** After an execution result: ends a protective close, counts exits, disarms a flat position. */
  private exitsAfterResult(result: ExecutionResult): void {
    const filled = result.status === 'FILLED';
    this.exitBook.onResult(result.symbol, result.signal_id, filled, result.exit_reason);
    if (!filled || this.confirmed.quantity(result.symbol) !== ZERO) return;
    const levels = this.exitBook.get(result.symbol);
    // Keep levels an entry still in flight armed (it reopens the position when it fills).
    if (levels !== undefined && !this.inflight.has(levels.entrySignalId)) this.exitBook.clear(result.symbol, result.ts);
  }

  private confirmedDirection(symbol: string): Direction | null {
    const q = this.confirmed.quantity(symbol);
    return q === ZERO ? null : directionOf(q > ZERO ? 'BUY' : 'SELL');
  }

  // -- views ----------------------------------------------------------------------

  get state(): TradingState {
    return this.shownState().state;
  }

  isHalted(): boolean {
    return this.tradingState === 'HALTED';
  }

  inflightCount(): number {
    return this.inflight.size;
  }

  /** What the risk gauges show (qt_trading_halted, qt_equity_usd, ...), read at each scrape. */
  metricsReading(now: number): RiskReading {
    this.refreshView();
    const shown = this.shownState();
    const start = this.dayStart !== null && this.dayStart.day === utcDay(now) ? this.dayStart.equity : null;
    return {
      halted: shown.state === 'HALTED',
      // The code before the explanation ("CIRCUIT_BREAKER: drawdown ..."): a label value from a small set.
      haltReason: shown.reason === null ? null : (shown.reason.split(':')[0] ?? null),
      killSwitch: this.killSwitch !== null,
      dailyLossRatio: start === null ? 0 : toNumber(dailyLoss(start, this.view.equity()).lossFraction),
      activeLocks: activeLocks(this.locks, now).length,
      sourcesStopped: [...this.sources.values()].filter((c) => c.stoppedAt !== null).length,
      equityUsd: toNumber(this.view.equity()),
      peakEquityUsd: toNumber(this.peak),
      drawdownRatio: toNumber(this.drawdown()),
      drawdownLimitRatio: this.options.limits.max_drawdown_pct,
      inflightOrders: this.inflight.size,
      priceTs: this.priceTs,
      now,
    };
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
    const shown = this.shownState();
    return {
      trading_state: shown.state,
      halted_at: shown.since,
      halt_reason: shown.reason,
      balance_usd: toNumber(view.balance()),
      equity_usd: toNumber(view.equity()),
      peak_equity_usd: toNumber(this.peak),
      drawdown_pct: toNumber(this.drawdown()),
      max_drawdown_pct: toNumber(this.maxDrawdownSeen),
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
      /** Filled closes by exit_reason (signal, manual, stop_loss, take_profit, trailing_stop, time_limit). */
      exits_by_reason: this.exitBook.exitCounts(),
      protective_closes_in_flight: this.exitBook.closingCount(),
      ...this.protectionStats(now),
    };
  }

  // -- persistence ------------------------------------------------------------------

  toSnapshot(): RiskSnapshot {
    return this.snapshotWith({
      confirmed: this.confirmed.toSnapshot(),
      inflight: [...this.inflight.values()].map((e) => inflightRecord(e.order)),
      prices: Object.fromEntries([...this.prices].map(([s, p]) => [s, p.toString()])),
      price_ts: Object.fromEntries(this.priceTs),
      quotes: Object.fromEntries([...this.quotes].map(([s, q]) => [s, quoteSnapshotOf(q)])),
      tick_gate: this.options.tickGate.toSnapshot(),
      exits: this.exitBook.toSnapshot(),
      position_sources: Object.fromEntries(this.positionSources),
    });
  }

  /** The snapshot with these per-symbol parts (one list of fields for toSnapshot and snapshotJson). */
  private snapshotWith(parts: Pick<RiskSnapshot, SnapshotPart>): RiskSnapshot {
    return {
      version: RISK_SNAPSHOT_VERSION,
      confirmed: parts.confirmed,
      inflight: parts.inflight,
      prices: parts.prices,
      price_ts: parts.price_ts,
      quotes: parts.quotes,
      tick_gate: parts.tick_gate,
      entries_by_day: Object.fromEntries([...this.entriesByDay].map(([d, n]) => [String(d), n])),
      trading_state: this.tradingState,
      halted_at: this.haltedAt,
      halt_reason: this.haltReason,
      peak_equity: this.peak.toString(),
      max_drawdown: this.maxDrawdownSeen.toString(),
      last_signal_entry_id: this.lastSignalEntryId,
      exits: parts.exits,
      kill_switch: this.killSwitch === null ? null : { ...this.killSwitch },
      day_start: this.dayStart === null ? null : { day: this.dayStart.day, equity: this.dayStart.equity.toString() },
      daily_loss_reached: this.dailyLossReached === null ? null : { ...this.dailyLossReached },
      entry_times: [...this.entryTimes],
      locks: this.locks.map((l) => ({ ...l })),
      closed_trades: this.closedTrades.map((t) => ({
        symbol: t.symbol,
        source: t.source,
        closed_at: t.closedAt,
        net: t.net.toString(),
        entry_notional: t.entryNotional.toString(),
        exit_reason: t.exitReason,
        balance_after: t.balanceAfter.toString(),
      })),
      position_sources: parts.position_sources,
      sources: Object.fromEntries(
        [...this.sources].map(([k, c]) => [k, { value: c.value.toString(), peak: c.peak.toString(), stopped_at: c.stoppedAt, stop_reason: c.stopReason }]),
      ),
      counters: structuredClone(this.counters) as RiskSnapshot['counters'],
    };
  }

  /**
   * Exactly JSON.stringify(this.toSnapshot()), written with every batch. Its per-symbol and
   * per-order parts keep their text until they change, so its cost does not grow with the
   * open positions and instruments beyond joining those texts: each in-flight order
   * (hundreds are in flight under load, most of them across two or more batches) is
   * serialised once; the ledger's positions and marks, the prices, quotes, tick gate, exit
   * levels and position sources once per change (see core/json-cache.ts).
   */
  snapshotJson(): string {
    return jsonByParts(
      {
        confirmed: () => this.confirmed.toSnapshotJson(),
        inflight: () => itemsJson(this.inflight, (entry) => (entry.json ??= JSON.stringify(inflightRecord(entry.order)))),
        prices: () => this.text.prices.object(this.prices, () => this.toSnapshot().prices),
        price_ts: () => this.text.priceTs.object(this.priceTs, () => this.toSnapshot().price_ts),
        quotes: () => this.text.quotes.object(this.quotes, () => this.toSnapshot().quotes),
        tick_gate: () => this.options.tickGate.toSnapshotJson(),
        exits: () => this.exitBook.toSnapshotJson(),
        position_sources: () => this.text.positionSources.object(this.positionSources, () => this.toSnapshot().position_sources),
      },
      (markers) => this.snapshotWith(markers),
      () => this.toSnapshot(),
    );
  }

  /** The snapshot text of each per-symbol map, by entry (snapshotJson). */
  private readonly text = {
    prices: new MembersCache<Fixed>((p) => JSON.stringify(p.toString())),
    priceTs: new MembersCache<number>((t) => JSON.stringify(t)),
    quotes: new MembersCache<{ bid: Fixed; ask: Fixed }>(
      (q) => JSON.stringify(quoteSnapshotOf(q)),
      (a, b) => a.bid === b.bid && a.ask === b.ask,
    ),
    positionSources: new MembersCache<string>((source) => JSON.stringify(source)),
  };

  restore(input: unknown): void {
    const snap = RiskSnapshot.parse(input);
    this.confirmed = Ledger.fromSnapshot(snap.confirmed);
    this.inflight.clear();
    this.prices.clear();
    this.priceTs.clear();
    this.entriesByDay.clear();
    for (const [s, p] of Object.entries(snap.prices)) this.prices.set(s, BigInt(p));
    for (const [s, t] of Object.entries(snap.price_ts)) this.priceTs.set(s, t);
    this.quotes.clear();
    for (const [s, q] of Object.entries(snap.quotes ?? {})) this.quotes.set(s, { bid: BigInt(q.bid), ask: BigInt(q.ask) });
    if (snap.tick_gate !== null) {
      this.options.tickGate.restore(snap.tick_gate);
    } else {
      this.options.tickGate.restore({});
      for (const [s, p] of this.prices) this.options.tickGate.seed(s, p, this.priceTs.get(s) ?? 0);
    }
    for (const [d, n] of Object.entries(snap.entries_by_day)) this.entriesByDay.set(Number(d), n);
    this.tradingState = snap.trading_state;
    this.haltedAt = snap.halted_at;
    this.haltReason = snap.halt_reason;
    this.lastSignalEntryId = snap.last_signal_entry_id;
    this.counters = snap.counters as Counters;
    this.exitBook.restore(snap.exits);
    this.killSwitch = snap.kill_switch === null ? null : { ...snap.kill_switch };
    this.dayStart = snap.day_start === null ? null : { day: snap.day_start.day, equity: BigInt(snap.day_start.equity) };
    this.dailyLossReached = snap.daily_loss_reached === null ? null : { ...snap.daily_loss_reached };
    this.entryTimes = [...snap.entry_times];
    this.locks = snap.locks.map((l) => ({ ...l }));
    this.closedTrades = snap.closed_trades.map((t) => ({
      symbol: t.symbol,
      source: t.source,
      closedAt: t.closed_at,
      net: BigInt(t.net),
      entryNotional: BigInt(t.entry_notional),
      exitReason: (t.exit_reason ?? null) as ClosedTrade['exitReason'],
      balanceAfter: BigInt(t.balance_after),
    }));
    this.positionSources.clear();
    for (const [sym, src] of Object.entries(snap.position_sources)) this.positionSources.set(sym, src);
    this.sources.clear();
    for (const [k, c] of Object.entries(snap.sources)) {
      this.sources.set(k, { value: BigInt(c.value), peak: BigInt(c.peak), stoppedAt: c.stopped_at, stopReason: c.stop_reason });
    }
    // Projected at the mark each order was approved at (its reference_price), exactly as
    // before the restart: today's marks would give other fills, another view, other decisions.
    for (const order of snap.inflight) this.addInflight(order, fx(order.reference_price), order.approved_ts, false);
    this.viewStale = true;
    this.refreshView();
    this.peak = snap.peak_equity === null ? this.view.peakEquity() : BigInt(snap.peak_equity);
    this.maxDrawdownSeen = BigInt(snap.max_drawdown);
  }

  // -- internals --------------------------------------------------------------------

  /** `mark`: the price the order was approved at, which its projected fill is priced from. */
  private addInflight(order: RiskApprovedSignal, mark: Fixed | undefined, now: number, applyToView = true): void {
    // Projected with the quote execution will see (restored orders: at their reference_price, see restore).
    const quote = applyToView ? this.quotes.get(order.symbol) : undefined;
    const projection = paperFill({
      order,
      mark,
      bid: quote?.bid,
      ask: quote?.ask,
      instrument: this.options.instruments.get(order.symbol),
      seed: this.options.seed,
      models: this.models,
      now,
      maxPriceDeviation: this.maxPriceDeviation,
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
    this.noteDailyLoss(now, equity);
    const drawdown = this.drawdown();
    if (drawdown > this.maxDrawdownSeen) this.maxDrawdownSeen = drawdown;
    if (this.tradingState === 'HALTED') return;
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

  /** Latches the day's loss limit the first time an input of that UTC day sees the loss reach it. */
  private noteDailyLoss(now: number, equity: Fixed): void {
    const limit = this.options.limits.max_daily_loss_pct;
    if (!limit || this.dayStart === null) return;
    const day = this.dayStart.day;
    if (utcDay(now) !== day || (this.dailyLossReached !== null && this.dailyLossReached.day === day)) return;
    const { pnl, lossFraction } = dailyLoss(this.dayStart.equity, equity);
    if (lossFraction < fx(limit)) return;
    this.dailyLossReached = { day, at: now };
    this.notices.push(
      `daily loss limit reached: UTC day PnL ${toNumber(pnl).toFixed(2)} USD (${(toNumber(lossFraction) * 100).toFixed(2)}% >= ` +
        `${(limit * 100).toFixed(2)}%); entries refused DAILY_LOSS_LIMIT until ${new Date((day + 1) * 86_400_000).toISOString()}`,
    );
  }

  /** The UTC day of `now`: its starting equity (null before its first input) and when its loss limit was reached. */
  dailyLossState(now: number): { start: Fixed | null; reachedAt: number | null } {
    const start = this.dayStart !== null && this.dayStart.day === utcDay(now) ? this.dayStart.equity : null;
    return { start, reachedAt: this.dailyLossReachedAt(now) };
  }

  /** When today's loss limit was reached (null: not reached on the UTC day of `now`). */
  private dailyLossReachedAt(now: number): number | null {
    const hit = this.dailyLossReached;
    return hit !== null && hit.day === utcDay(now) ? hit.at : null;
  }

  /** What the governor sees; `now` (the decision's time) picks the day whose starting equity counts. */
  private accountView(now?: number): AccountView {
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
      // A loss's time is its closing fill's in every fold (a restart must not move it):
      // the confirmed fold has the real time; the view adds losses projected in flight.
      lastLossClosedAt: latest(stats.lastLossClosedAt, this.confirmed.roundTripStats().lastLossClosedAt),
      entriesOnDay: (day) => entries.get(day) ?? 0,
      killSwitch: this.killSwitch,
      dayStartEquity: now !== undefined && this.dayStart !== null && this.dayStart.day === utcDay(now) ? this.dayStart.equity : null,
      dailyLossReachedAt: now === undefined ? null : this.dailyLossReachedAt(now),
      recentEntryTimes: this.entryTimes,
      openPositions: view.openPositionCount(),
      // Made once (not per signal): the decision path allocates as little as it can.
      lockFor: this.locks.length === 0 ? undefined : this.lockForView,
      sourceStop: this.sources.size === 0 ? undefined : this.sourceStopView,
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
    source: o.source, ts: o.ts, price: o.price, stop_loss: o.stop_loss, take_profit: o.take_profit,
    trailing_stop_pct: o.trailing_stop_pct, max_hold_ms: o.max_hold_ms, metadata: o.metadata,
    intent: o.intent, side: o.side, quantity: o.quantity, notional_usd: o.notional_usd, reference_price: o.reference_price,
    kelly_optimal: o.kelly_optimal, kelly_applied: o.kelly_applied, risk_amount_usd: o.risk_amount_usd, reduce_only: o.reduce_only,
    approved_ts: o.approved_ts, expires_ts: o.expires_ts, origin: o.origin, exit_reason: o.exit_reason, checks: [], sizing: null,
  };
}

function quoteSnapshotOf(q: { bid: Fixed; ask: Fixed }): { bid: string; ask: string } {
  return { bid: q.bid.toString(), ask: q.ask.toString() };
}

function latest(a: number | null, b: number | null): number | null {
  return a === null ? b : b === null ? a : Math.max(a, b);
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
