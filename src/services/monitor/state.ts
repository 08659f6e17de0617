/**
 * The Position Monitor's state, with no I/O: the accounting ledger (core/ledger.ts,
 * the only place positions and balances are computed), the marks, and the guards
 * that apply each order once.
 */
import { z } from 'zod';
import { compareIds } from '../../bus/bus.js';
import { fx, toNumber } from '../../core/fixed.js';
import { Ledger, LedgerSnapshot, ledgerFillOf, type FillEffect } from '../../core/ledger.js';
import type { ExecutionResult, PositionCause, PositionUpdate, PositionView, PriceTick } from '../../core/messages.js';
import { RecentSet } from '../../core/recent-set.js';

export const DEFAULT_APPLIED_CAPACITY = 200_000;

/** Bumped whenever the snapshot's shape changes: a snapshot of another version is rebuilt from the streams. */
export const MONITOR_SNAPSHOT_VERSION = 1;

export const MonitorSnapshot = z.object({
  version: z.literal(MONITOR_SNAPSHOT_VERSION),
  ledger: LedgerSnapshot,
  /** Id of the last trade.execution.res entry applied: entries at or before it are done. */
  last_fill_id: z.string(),
  price_ts: z.record(z.string(), z.number()),
  counters: z.object({
    fills_applied: z.number(),
    rejected_results: z.number(),
    duplicates: z.number(),
    ticks: z.number(),
  }),
});
export type MonitorSnapshot = z.infer<typeof MonitorSnapshot>;

export type FillOutcome =
  | { kind: 'applied'; effect: FillEffect; update: PositionUpdate }
  | { kind: 'duplicate' }
  | { kind: 'rejected' };

export class MonitorState {
  private ledger: Ledger;
  private readonly applied: RecentSet;
  private lastFillId = '0-0';
  private readonly priceTs = new Map<string, number>();
  private counters = { fills_applied: 0, rejected_results: 0, duplicates: 0, ticks: 0 };

  constructor(
    private readonly initialBalance: number,
    appliedCapacity = DEFAULT_APPLIED_CAPACITY,
  ) {
    this.ledger = new Ledger(fx(initialBalance));
    this.applied = new RecentSet(appliedCapacity);
  }

  /**
   * Applies one execution result (entry `entryId` of trade.execution.res), once per order_id.
   * `now` stamps the PositionUpdate (SPEC §2: `ts` is when the message was made); the
   * fill's own `ts` is what the books record. Stamping the update with the fill's time
   * would date it before mark updates already published, and a reader keeping the
   * latest update per symbol would then ignore it (e.g. never see a position close).
   */
  onExecution(result: ExecutionResult, entryId: string, now: number): FillOutcome {
    if (compareIds(entryId, this.lastFillId) <= 0 || this.applied.has(result.order_id)) {
      this.counters.duplicates += 1;
      return { kind: 'duplicate' };
    }
    this.lastFillId = entryId;
    this.applied.add(result.order_id);
    if (result.status !== 'FILLED') {
      this.counters.rejected_results += 1;
      return { kind: 'rejected' };
    }
    const effect = this.ledger.applyFill(ledgerFillOf(result));
    this.counters.fills_applied += 1;
    const cause: PositionCause = effect.closedRoundTrip && !effect.opened ? 'close' : 'fill';
    return { kind: 'applied', effect, update: this.update(result.symbol, cause, now, result.order_id) };
  }

  /** Remembers an order applied before the last snapshot (rebuilding the guard at start-up). */
  rememberApplied(orderId: string, entryId: string): void {
    if (compareIds(entryId, this.lastFillId) <= 0) this.applied.add(orderId);
  }

  /** Latest tick per symbol wins. Returns true when the mark changed. */
  onTick(tick: PriceTick): boolean {
    const last = this.priceTs.get(tick.symbol);
    if (last !== undefined && tick.ts < last) return false;
    this.priceTs.set(tick.symbol, tick.ts);
    this.ledger.setMark(tick.symbol, fx(tick.price));
    this.counters.ticks += 1;
    return true;
  }

  hasOpenPosition(symbol: string): boolean {
    const position = this.ledger.position(symbol);
    return position !== undefined && position.quantity !== 0n;
  }

  update(symbol: string, cause: PositionCause, ts: number, orderId?: string): PositionUpdate {
    return { ...this.ledger.positionView(symbol, cause, ts, orderId), portfolio: this.ledger.summary() };
  }

  /** One mark-to-market update per open position. */
  markUpdates(ts: number): PositionUpdate[] {
    const portfolio = this.ledger.summary();
    return this.ledger.openPositionViews(ts).map((view) => ({ ...view, cause: 'mark' as const, portfolio }));
  }

  positions(ts: number): PositionView[] {
    return this.ledger.openPositionViews(ts);
  }

  portfolio() {
    return { ...this.ledger.summary(), ...this.ledger.totals(), initial_balance_usd: this.initialBalance };
  }

  prices(): Record<string, number> {
    return Object.fromEntries([...this.ledger.marksView()].map(([s, p]) => [s, toNumber(p)]));
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

  toSnapshot(): MonitorSnapshot {
    return {
      version: MONITOR_SNAPSHOT_VERSION,
      ledger: this.ledger.toSnapshot(),
      last_fill_id: this.lastFillId,
      price_ts: Object.fromEntries(this.priceTs),
      counters: { ...this.counters },
    };
  }

  restore(input: unknown): void {
    const snap = MonitorSnapshot.parse(input);
    this.ledger = Ledger.fromSnapshot(snap.ledger);
    this.lastFillId = snap.last_fill_id;
    this.priceTs.clear();
    for (const [s, t] of Object.entries(snap.price_ts)) this.priceTs.set(s, t);
    this.counters = { ...snap.counters };
  }
}
