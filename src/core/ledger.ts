/**
 * Portfolio accounting: the one place positions and balances are computed (SPEC §6).
 * The Position Monitor publishes it; the Risk service folds the same fills to decide.
 * Pure and deterministic: no I/O, no clock (every time is an argument), no randomness.
 *
 * Representation: every amount (money, price, quantity, fraction) is a `Fixed` — a
 * bigint counting units of 1e-18 (src/core/fixed.ts). No JS float is used inside;
 * `toNumber` converts at the edge, in the views that produce wire messages.
 *
 * Where rounding happens (always to 1e-18, half away from zero), and nowhere else:
 *  - divisions: a position's average entry (cost / quantity, after each same-side
 *    fill), the cost basis taken off by a partial close (cost × closed / size), the
 *    split of a flip fill's fee (fee × closed / fill quantity; the opening part is the
 *    fee minus the closing part, so the two add up to the fee exactly), average close
 *    and round-trip entry prices, and the fractions (exposure, drawdown, win rate);
 *  - price × quantity products, which are exact whenever the two factors have at most
 *    18 decimals together (a 2-decimal price × an 8-decimal quantity, say); only a
 *    product with more decimals than that is rounded, by `mul`.
 * PnL does not go through the rounded average: a position carries its exact cost
 * basis (Σ price × signed quantity of the open part), unrealized PnL is
 * mark × quantity − cost, and a close takes its share of the cost off. A partial close
 * rounds its realized amount to 1e-18 and leaves the difference in the remaining cost,
 * so by the time the position is flat its realized gross is exactly
 * Σ close notional − Σ open notional. Balance, realized and fee totals are sums of
 * exact amounts: they do not drift, however many fills.
 */
import { z } from 'zod';
import { abs, div, fx, mul, toDecimalString, toNumber, ONE, ZERO, type Fixed } from './fixed.js';
import { MembersCache, VersionedMap, itemsJson, jsonByParts } from './json-cache.js';
import {
  SCHEMA_VERSION,
  type ExecutionResult,
  type OrderSide,
  type PortfolioSummary,
  type PositionCause,
  type PositionSide,
  type PositionView,
  describeIssues,
  ExitReason,
} from './messages.js';

/** One filled order as the ledger needs it (the fields of a FILLED ExecutionResult). */
export interface LedgerFill {
  order_id: string;
  symbol: string;
  side: OrderSide;
  /** Positive. */
  quantity: Fixed;
  /** Positive. */
  price: Fixed;
  /** Non-negative, in USD. */
  fee: Fixed;
  /** Epoch ms of the fill. */
  ts: number;
  /** Why the order was placed, when it was a close (recorded on the round trip it closes). */
  exitReason?: ExitReason;
}

/** The ledger's view of a FILLED ExecutionResult, in exact decimals. */
export function ledgerFillOf(result: ExecutionResult): LedgerFill {
  return {
    order_id: result.order_id,
    symbol: result.symbol,
    side: result.side,
    quantity: fx(result.quantity),
    price: fx(result.fill_price),
    fee: fx(result.fee_usd),
    ts: result.ts,
    exitReason: result.exit_reason,
  };
}

/** A position as of now (quantity 0 and side FLAT once it has been closed). */
export interface PositionState {
  readonly symbol: string;
  readonly side: PositionSide;
  /** Signed: positive long, negative short. */
  readonly quantity: Fixed;
  /** Quantity-weighted average entry; unchanged by reducing fills. */
  readonly entryAvg: Fixed;
  readonly mark: Fixed;
  /** (mark − entry) × signed quantity, no fees. */
  readonly unrealizedPnl: Fixed;
  /** Realized gross minus every fee paid since it opened (−entry fee right after opening). */
  readonly realizedPnl: Fixed;
  readonly realizedGross: Fixed;
  readonly fees: Fixed;
  /** Quantity-weighted average price of the reducing fills; 0 if none. */
  readonly closeAvg: Fixed;
  readonly openedTs: number;
}

/** A position from open to flat. */
export interface RoundTrip {
  readonly symbol: string;
  readonly side: 'LONG' | 'SHORT';
  readonly openedTs: number;
  readonly closedTs: number;
  /** Largest absolute size the position reached. */
  readonly quantity: Fixed;
  /** Quantity-weighted average price of every fill that opened or grew it. */
  readonly entryAvg: Fixed;
  /** Quantity-weighted average price of every fill that reduced it. */
  readonly closeAvg: Fixed;
  readonly gross: Fixed;
  /** All fees paid on it: entry fills, reducing fills, the closing share of a flip fill. */
  readonly fees: Fixed;
  /** gross − fees. */
  readonly net: Fixed;
  /** net > 0. */
  readonly win: boolean;
  /** The exit_reason of the fill that closed it; null when that fill carried none. */
  readonly exitReason: ExitReason | null;
}

/** Bounded aggregates of the closed round trips (for win rate, payoff ratio, cooldown). */
export interface RoundTripStats {
  readonly count: number;
  /** net > 0. */
  readonly wins: number;
  /** net < 0 (a round trip with net exactly 0 is neither a win nor a loss). */
  readonly losses: number;
  readonly sumWins: Fixed;
  /** Sum of the losing nets, as a positive amount. */
  readonly sumLosses: Fixed;
  readonly last: RoundTrip | null;
  /** When the last losing round trip closed. */
  readonly lastLossClosedAt: number | null;
}

/** What one fill did. */
export interface FillEffect {
  /** Gross PnL this fill realized (0 for a fill that only opens or grows). */
  realizedGross: Fixed;
  /** The fill's fee, charged to the balance. */
  fee: Fixed;
  /** The round trip this fill closed, if it took the position to zero or through it. */
  closedRoundTrip: RoundTrip | null;
  /** True when the fill opened a position (from flat, or the new side of a flip). */
  opened: boolean;
  /** The symbol's position after the fill. */
  position: PositionState;
}

export interface LedgerTotals {
  /** Lifetime gross realized minus lifetime fees. */
  realized_pnl_usd: number;
  unrealized_pnl_usd: number;
  fees_usd: number;
}

/**
 * Exposure / equity is reported as at most this (1,000,000 = 100,000,000 %), and as
 * this when equity is zero or negative while something is open: a finite value every
 * exposure limit fails.
 */
export const EXPOSURE_FRACTION_CAP: Fixed = fx(1_000_000);

/** Mutable per-symbol record; never handed out (see `stateOf`). */
interface PositionRecord {
  symbol: string;
  /** Signed. */
  qty: Fixed;
  /** Σ price × signed quantity of the open part (negative for a short). */
  cost: Fixed;
  entryAvg: Fixed;
  mark: Fixed;
  unrealized: Fixed;
  exposure: Fixed;
  realizedGross: Fixed;
  fees: Fixed;
  /** Σ quantity / Σ price × quantity of the fills that opened or grew it. */
  openQty: Fixed;
  openNotional: Fixed;
  /** Σ quantity / Σ price × quantity of the reducing fills. */
  closeQty: Fixed;
  closeNotional: Fixed;
  closeAvg: Fixed;
  maxQty: Fixed;
  openedTs: number;
  /** Its snapshot JSON, made when a snapshot first includes it since its last fill (toSnapshotJson). */
  json?: string;
}

type MutableStats = { -readonly [K in keyof RoundTripStats]: RoundTripStats[K] };

/** a × b / c rounded half away from zero (c ≠ 0). */
function mulDiv(a: bigint, b: bigint, c: bigint): bigint {
  const n = a * b;
  const negative = (n < 0n) !== (c < 0n);
  const absN = n < 0n ? -n : n;
  const absC = c < 0n ? -c : c;
  const q = (absN + absC / 2n) / absC;
  return negative ? -q : q;
}

function sideOf(qty: Fixed): PositionSide {
  return qty > 0n ? 'LONG' : qty < 0n ? 'SHORT' : 'FLAT';
}

function stateOf(r: PositionRecord): PositionState {
  return {
    symbol: r.symbol,
    side: sideOf(r.qty),
    quantity: r.qty,
    entryAvg: r.entryAvg,
    mark: r.mark,
    unrealizedPnl: r.unrealized,
    realizedPnl: r.realizedGross - r.fees,
    realizedGross: r.realizedGross,
    fees: r.fees,
    closeAvg: r.closeAvg,
    openedTs: r.openedTs,
  };
}

function newRecord(symbol: string, signedQty: Fixed, price: Fixed, fee: Fixed, ts: number, mark: Fixed): PositionRecord {
  const q = abs(signedQty);
  return {
    symbol,
    qty: signedQty,
    cost: mul(price, signedQty),
    entryAvg: price,
    mark,
    unrealized: ZERO,
    exposure: ZERO,
    realizedGross: ZERO,
    fees: fee,
    openQty: q,
    openNotional: mul(price, q),
    closeQty: ZERO,
    closeNotional: ZERO,
    closeAvg: ZERO,
    maxQty: q,
    openedTs: ts,
  };
}

/** Sets the record's unrealized PnL and exposure at its mark; exact for flat records (0). */
function revalue(r: PositionRecord): void {
  r.unrealized = mul(r.mark, r.qty) - r.cost;
  r.exposure = abs(mul(r.mark, r.qty));
}

// ---------------------------------------------------------------------------
// Snapshot (persisted JSON: amounts as plain decimal strings, read back exactly)

const decimal = z.string().regex(/^-?\d+(\.\d{1,18})?$/, { error: 'must be a decimal string with at most 18 decimals' });
const epochMs = z.number().int().nonnegative();

const RoundTripSnapshot = z.object({
  symbol: z.string(),
  side: z.enum(['LONG', 'SHORT']),
  opened_ts: epochMs,
  closed_ts: epochMs,
  quantity: decimal,
  entry_avg: decimal,
  close_avg: decimal,
  gross: decimal,
  fees: decimal,
  net: decimal,
  win: z.boolean(),
  exit_reason: ExitReason.nullable().default(null),
});

const PositionSnapshot = z.object({
  symbol: z.string(),
  quantity: decimal,
  cost: decimal,
  entry_avg: decimal,
  realized_gross: decimal,
  fees: decimal,
  open_quantity: decimal,
  open_notional: decimal,
  close_quantity: decimal,
  close_notional: decimal,
  max_quantity: decimal,
  opened_ts: epochMs,
});

export const LedgerSnapshot = z.object({
  version: z.literal(1),
  initial_balance: decimal,
  balance: decimal,
  realized_gross: decimal,
  fees: decimal,
  peak_equity: decimal,
  marks: z.record(z.string(), decimal),
  positions: z.array(PositionSnapshot),
  round_trips: z.object({
    count: z.number().int().nonnegative(),
    wins: z.number().int().nonnegative(),
    losses: z.number().int().nonnegative(),
    sum_wins: decimal,
    sum_losses: decimal,
    last: RoundTripSnapshot.nullable(),
    last_loss_closed_at: epochMs.nullable(),
  }),
});
export type LedgerSnapshot = z.infer<typeof LedgerSnapshot>;

const str = toDecimalString;

function roundTripToJson(t: RoundTrip): z.infer<typeof RoundTripSnapshot> {
  return {
    symbol: t.symbol,
    side: t.side,
    opened_ts: t.openedTs,
    closed_ts: t.closedTs,
    quantity: str(t.quantity),
    entry_avg: str(t.entryAvg),
    close_avg: str(t.closeAvg),
    gross: str(t.gross),
    fees: str(t.fees),
    net: str(t.net),
    win: t.win,
    exit_reason: t.exitReason,
  };
}

function roundTripFromJson(t: z.infer<typeof RoundTripSnapshot>): RoundTrip {
  return {
    symbol: t.symbol,
    side: t.side,
    openedTs: t.opened_ts,
    closedTs: t.closed_ts,
    quantity: fx(t.quantity),
    entryAvg: fx(t.entry_avg),
    closeAvg: fx(t.close_avg),
    gross: fx(t.gross),
    fees: fx(t.fees),
    net: fx(t.net),
    win: t.win,
    exitReason: t.exit_reason,
  };
}

function positionSnapshotOf(r: PositionRecord): LedgerSnapshot['positions'][number] {
  return {
    symbol: r.symbol,
    quantity: str(r.qty),
    cost: str(r.cost),
    entry_avg: str(r.entryAvg),
    realized_gross: str(r.realizedGross),
    fees: str(r.fees),
    open_quantity: str(r.openQty),
    open_notional: str(r.openNotional),
    close_quantity: str(r.closeQty),
    close_notional: str(r.closeNotional),
    max_quantity: str(r.maxQty),
    opened_ts: r.openedTs,
  };
}

// ---------------------------------------------------------------------------

export class Ledger {
  readonly initialBalance: Fixed;
  private bal: Fixed;
  private realizedGrossTotal: Fixed = ZERO;
  private feesTotal: Fixed = ZERO;
  /** Σ unrealized and Σ exposure over all records, kept incrementally. */
  private unrealizedTotal: Fixed = ZERO;
  private exposureTotal: Fixed = ZERO;
  private peak: Fixed;
  private openCount = 0;
  private readonly marks = new VersionedMap<string, Fixed>();
  /** One record per symbol ever traded; a flat one is kept until the symbol reopens. */
  private readonly records = new Map<string, PositionRecord>();
  private readonly stats: MutableStats = {
    count: 0,
    wins: 0,
    losses: 0,
    sumWins: ZERO,
    sumLosses: ZERO,
    last: null,
    lastLossClosedAt: null,
  };

  constructor(initialBalance: Fixed) {
    if (initialBalance <= 0n) throw new RangeError(`initial balance must be positive: ${str(initialBalance)}`);
    this.initialBalance = initialBalance;
    this.bal = initialBalance;
    this.peak = initialBalance;
  }

  // -- fills and marks -------------------------------------------------------

  /** Applies one fill (netting per symbol). Throws RangeError on a non-positive quantity or price or a negative fee. */
  applyFill(fill: LedgerFill): FillEffect {
    const { symbol, quantity: q, price, fee, ts } = fill;
    if (q <= 0n) throw new RangeError(`fill quantity must be positive: ${str(q)} (${fill.order_id})`);
    if (price <= 0n) throw new RangeError(`fill price must be positive: ${str(price)} (${fill.order_id})`);
    if (fee < 0n) throw new RangeError(`fill fee must not be negative: ${str(fee)} (${fill.order_id})`);

    let mark = this.marks.get(symbol);
    if (mark === undefined) {
      mark = price;
      this.marks.set(symbol, price);
    }
    const dir = fill.side === 'BUY' ? 1n : -1n;
    let rec = this.records.get(symbol);
    const oldUnrealized = rec ? rec.unrealized : ZERO;
    const oldExposure = rec ? rec.exposure : ZERO;
    let realized = ZERO;
    let closed: RoundTrip | null = null;
    let opened = false;

    if (rec === undefined || rec.qty === 0n) {
      rec = newRecord(symbol, dir * q, price, fee, ts, mark);
      this.records.set(symbol, rec);
      this.openCount += 1;
      opened = true;
    } else if ((rec.qty > 0n) === (dir > 0n)) {
      // Same side: grow at a quantity-weighted average entry.
      const notional = mul(price, q);
      rec.qty += dir * q;
      rec.cost += dir * notional;
      rec.entryAvg = div(abs(rec.cost), abs(rec.qty));
      rec.openQty += q;
      rec.openNotional += notional;
      if (abs(rec.qty) > rec.maxQty) rec.maxQty = abs(rec.qty);
      rec.fees += fee;
    } else {
      // Opposite side: reduce, close, or close and open the other side.
      const size = abs(rec.qty);
      const closeQty = q < size ? q : size;
      const closeFee = closeQty === q ? fee : mulDiv(fee, closeQty, q);
      const removedCost = closeQty === size ? rec.cost : mulDiv(rec.cost, closeQty, size);
      const closeNotional = mul(price, closeQty);
      // long: p×q − avg×q; short (cost < 0): avg×q − p×q
      realized = (rec.qty > 0n ? closeNotional : -closeNotional) - removedCost;
      rec.qty += dir * closeQty;
      rec.cost -= removedCost;
      rec.realizedGross += realized;
      rec.fees += closeFee;
      rec.closeQty += closeQty;
      rec.closeNotional += closeNotional;
      rec.closeAvg = div(rec.closeNotional, rec.closeQty);
      if (rec.qty === 0n) {
        closed = this.recordRoundTrip(rec, dir > 0n ? 'SHORT' : 'LONG', ts, fill.exitReason ?? null);
        this.openCount -= 1;
        if (closeQty < q) {
          rec = newRecord(symbol, dir * (q - closeQty), price, fee - closeFee, ts, mark);
          this.records.set(symbol, rec);
          this.openCount += 1;
          opened = true;
        }
      }
    }

    revalue(rec);
    rec.json = undefined;
    this.unrealizedTotal += rec.unrealized - oldUnrealized;
    this.exposureTotal += rec.exposure - oldExposure;
    this.bal += realized - fee;
    this.realizedGrossTotal += realized;
    this.feesTotal += fee;
    this.raisePeak();
    return { realizedGross: realized, fee, closedRoundTrip: closed, opened, position: stateOf(rec) };
  }

  /** Sets the symbol's mark price and revalues its position. Throws RangeError on a non-positive price. */
  setMark(symbol: string, price: Fixed): void {
    if (price <= 0n) throw new RangeError(`mark price must be positive: ${str(price)} (${symbol})`);
    this.marks.set(symbol, price);
    const rec = this.records.get(symbol);
    if (rec === undefined) return;
    rec.mark = price;
    if (rec.qty === 0n) return;
    const oldUnrealized = rec.unrealized;
    const oldExposure = rec.exposure;
    revalue(rec);
    this.unrealizedTotal += rec.unrealized - oldUnrealized;
    this.exposureTotal += rec.exposure - oldExposure;
    this.raisePeak();
  }

  mark(symbol: string): Fixed | undefined {
    return this.marks.get(symbol);
  }

  /** Every known mark, by symbol. */
  marksView(): ReadonlyMap<string, Fixed> {
    return this.marks;
  }

  /** Peak equity := current equity (the risk service's resume). */
  resetPeak(): void {
    this.peak = this.equity();
  }

  // -- figures (exact) -------------------------------------------------------

  /** initial + realized gross − fees. */
  balance(): Fixed {
    return this.bal;
  }

  unrealized(): Fixed {
    return this.unrealizedTotal;
  }

  equity(): Fixed {
    return this.bal + this.unrealizedTotal;
  }

  /** Σ |quantity| × mark over open positions. */
  exposure(): Fixed {
    return this.exposureTotal;
  }

  /** exposure / equity, capped at EXPOSURE_FRACTION_CAP (and that cap when equity ≤ 0 with exposure). */
  exposureFraction(): Fixed {
    if (this.exposureTotal === 0n) return ZERO;
    const equity = this.equity();
    if (equity <= 0n) return EXPOSURE_FRACTION_CAP;
    const f = div(this.exposureTotal, equity);
    return f > EXPOSURE_FRACTION_CAP ? EXPOSURE_FRACTION_CAP : f;
  }

  peakEquity(): Fixed {
    return this.peak;
  }

  /** (peak − equity) / peak, never negative; when peak ≤ 0 (a resume at ≤ 0 equity), 1 below it, else 0. */
  drawdownFraction(): Fixed {
    const equity = this.equity();
    if (equity >= this.peak) return ZERO;
    if (this.peak <= 0n) return ONE;
    return div(this.peak - equity, this.peak);
  }

  /** Lifetime gross realized PnL. */
  realizedGross(): Fixed {
    return this.realizedGrossTotal;
  }

  /** Lifetime fees. */
  feesPaid(): Fixed {
    return this.feesTotal;
  }

  openPositionCount(): number {
    return this.openCount;
  }

  /** A copy of the round-trip aggregates (structurally a sizing.ts RoundTripStats). */
  roundTripStats(): RoundTripStats {
    return { ...this.stats };
  }

  /** wins / closed round trips; 0 when none. */
  winRate(): Fixed {
    return this.stats.count === 0 ? ZERO : div(BigInt(this.stats.wins) * ONE, BigInt(this.stats.count) * ONE);
  }

  /** The symbol's position (FLAT after a close, until it reopens); undefined if never traded. */
  position(symbol: string): PositionState | undefined {
    const rec = this.records.get(symbol);
    return rec ? stateOf(rec) : undefined;
  }

  /** Signed open quantity in the symbol (0 when flat or never traded). */
  quantity(symbol: string): Fixed {
    return this.records.get(symbol)?.qty ?? ZERO;
  }

  /** Open positions, by symbol. */
  openPositions(): PositionState[] {
    const out: PositionState[] = [];
    for (const rec of this.records.values()) if (rec.qty !== 0n) out.push(stateOf(rec));
    return out.sort((a, b) => (a.symbol < b.symbol ? -1 : a.symbol > b.symbol ? 1 : 0));
  }

  // -- wire views (JS numbers) -----------------------------------------------

  /** The symbol's PositionView; FLAT with zeros (and the mark if known) if never traded. */
  positionView(symbol: string, cause: PositionCause, ts: number, orderId?: string): PositionView {
    const rec = this.records.get(symbol);
    const view: PositionView = {
      schema_version: SCHEMA_VERSION,
      symbol,
      side: rec ? sideOf(rec.qty) : 'FLAT',
      quantity: rec ? toNumber(abs(rec.qty)) : 0,
      avg_entry_price: rec ? toNumber(rec.entryAvg) : 0,
      mark_price: toNumber(this.marks.get(symbol) ?? ZERO),
      unrealized_pnl_usd: rec ? toNumber(rec.unrealized) : 0,
      realized_pnl_usd: rec ? toNumber(rec.realizedGross - rec.fees) : 0,
      fees_usd: rec ? toNumber(rec.fees) : 0,
      cause,
      ts,
    };
    if (orderId !== undefined) view.order_id = orderId;
    return view;
  }

  /** A 'mark' view of every open position, by symbol. */
  openPositionViews(ts: number): PositionView[] {
    return this.openPositions().map((p) => this.positionView(p.symbol, 'mark', ts));
  }

  summary(): PortfolioSummary {
    return {
      balance_usd: toNumber(this.bal),
      equity_usd: toNumber(this.equity()),
      exposure_usd: toNumber(this.exposureTotal),
      exposure_pct: toNumber(this.exposureFraction()),
      drawdown_pct: toNumber(this.drawdownFraction()),
      open_positions: this.openCount,
      win_rate: toNumber(this.winRate()),
      closed_trades: this.stats.count,
    };
  }

  totals(): LedgerTotals {
    return {
      realized_pnl_usd: toNumber(this.realizedGrossTotal - this.feesTotal),
      unrealized_pnl_usd: toNumber(this.unrealizedTotal),
      fees_usd: toNumber(this.feesTotal),
    };
  }

  // -- persistence -----------------------------------------------------------

  toSnapshot(): LedgerSnapshot {
    return this.snapshotWith(
      Object.fromEntries([...this.marks].map(([symbol, price]) => [symbol, str(price)])),
      [...this.records.values()].map(positionSnapshotOf),
    );
  }

  /**
   * Exactly JSON.stringify(this.toSnapshot()), written with every batch by the services that
   * hold a ledger: each mark's and each position's text is kept until it changes (a position
   * changes only on its fills), so the cost of a snapshot does not grow with open positions
   * beyond joining their texts.
   */
  toSnapshotJson(): string {
    return jsonByParts(
      {
        marks: () => this.marksJson.object(this.marks, () => this.toSnapshot().marks),
        positions: () => itemsJson(this.records, (r) => (r.json ??= JSON.stringify(positionSnapshotOf(r)))),
      },
      (markers) => this.snapshotWith(markers.marks, markers.positions),
      () => this.toSnapshot(),
    );
  }

  private readonly marksJson = new MembersCache<Fixed>((price) => JSON.stringify(str(price)));

  /** The snapshot with these marks and positions (one list of fields for toSnapshot and toSnapshotJson). */
  private snapshotWith(marks: LedgerSnapshot['marks'], positions: LedgerSnapshot['positions']): LedgerSnapshot {
    const s = this.stats;
    return {
      version: 1,
      initial_balance: str(this.initialBalance),
      balance: str(this.bal),
      realized_gross: str(this.realizedGrossTotal),
      fees: str(this.feesTotal),
      peak_equity: str(this.peak),
      marks,
      positions,
      round_trips: {
        count: s.count,
        wins: s.wins,
        losses: s.losses,
        sum_wins: str(s.sumWins),
        sum_losses: str(s.sumLosses),
        last: s.last ? roundTripToJson(s.last) : null,
        last_loss_closed_at: s.lastLossClosedAt,
      },
    };
  }

  /** Restores a ledger from `toSnapshot()` output (validated; throws on a malformed or inconsistent one). */
  static fromSnapshot(input: unknown): Ledger {
    const parsed = LedgerSnapshot.safeParse(input);
    if (!parsed.success) throw new Error(`invalid ledger snapshot: ${describeIssues(parsed.error)}`);
    const snap = parsed.data;
    const ledger = new Ledger(fx(snap.initial_balance));
    ledger.bal = fx(snap.balance);
    ledger.realizedGrossTotal = fx(snap.realized_gross);
    ledger.feesTotal = fx(snap.fees);
    if (ledger.bal !== ledger.initialBalance + ledger.realizedGrossTotal - ledger.feesTotal) {
      throw new Error('invalid ledger snapshot: balance is not initial + realized gross − fees');
    }
    ledger.peak = fx(snap.peak_equity);
    for (const [symbol, price] of Object.entries(snap.marks)) ledger.marks.set(symbol, fx(price));
    for (const p of snap.positions) {
      const mark = ledger.marks.get(p.symbol);
      if (mark === undefined) throw new Error(`invalid ledger snapshot: no mark for position ${p.symbol}`);
      const closeQty = fx(p.close_quantity);
      const closeNotional = fx(p.close_notional);
      const rec: PositionRecord = {
        symbol: p.symbol,
        qty: fx(p.quantity),
        cost: fx(p.cost),
        entryAvg: fx(p.entry_avg),
        mark,
        unrealized: ZERO,
        exposure: ZERO,
        realizedGross: fx(p.realized_gross),
        fees: fx(p.fees),
        openQty: fx(p.open_quantity),
        openNotional: fx(p.open_notional),
        closeQty,
        closeNotional,
        closeAvg: closeQty === 0n ? ZERO : div(closeNotional, closeQty),
        maxQty: fx(p.max_quantity),
        openedTs: p.opened_ts,
      };
      revalue(rec);
      ledger.records.set(p.symbol, rec);
      ledger.unrealizedTotal += rec.unrealized;
      ledger.exposureTotal += rec.exposure;
      if (rec.qty !== 0n) ledger.openCount += 1;
    }
    const rt = snap.round_trips;
    Object.assign(ledger.stats, {
      count: rt.count,
      wins: rt.wins,
      losses: rt.losses,
      sumWins: fx(rt.sum_wins),
      sumLosses: fx(rt.sum_losses),
      last: rt.last ? roundTripFromJson(rt.last) : null,
      lastLossClosedAt: rt.last_loss_closed_at,
    } satisfies MutableStats);
    return ledger;
  }

  /** An independent copy (e.g. to try in-flight orders without touching this one). */
  clone(): Ledger {
    const copy = new Ledger(this.initialBalance);
    copy.bal = this.bal;
    copy.realizedGrossTotal = this.realizedGrossTotal;
    copy.feesTotal = this.feesTotal;
    copy.unrealizedTotal = this.unrealizedTotal;
    copy.exposureTotal = this.exposureTotal;
    copy.peak = this.peak;
    copy.openCount = this.openCount;
    for (const [symbol, price] of this.marks) copy.marks.set(symbol, price);
    for (const [symbol, rec] of this.records) copy.records.set(symbol, { ...rec });
    Object.assign(copy.stats, this.stats);
    return copy;
  }

  // -- internals -------------------------------------------------------------

  private raisePeak(): void {
    const equity = this.bal + this.unrealizedTotal;
    if (equity > this.peak) this.peak = equity;
  }

  /** Records the round trip of a record that just went flat. */
  private recordRoundTrip(rec: PositionRecord, side: 'LONG' | 'SHORT', closedTs: number, exitReason: ExitReason | null): RoundTrip {
    const net = rec.realizedGross - rec.fees;
    const trip: RoundTrip = {
      symbol: rec.symbol,
      side,
      openedTs: rec.openedTs,
      closedTs,
      quantity: rec.maxQty,
      entryAvg: div(rec.openNotional, rec.openQty),
      closeAvg: rec.closeAvg,
      gross: rec.realizedGross,
      fees: rec.fees,
      net,
      win: net > 0n,
      exitReason,
    };
    const s = this.stats;
    s.count += 1;
    if (net > 0n) {
      s.wins += 1;
      s.sumWins += net;
    } else if (net < 0n) {
      s.losses += 1;
      s.sumLosses -= net;
      s.lastLossClosedAt = closedTs;
    }
    s.last = trip;
    return trip;
  }
}
