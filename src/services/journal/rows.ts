/**
 * From bus messages to journal rows, with no I/O. Column names are the message field
 * names; amounts become exact decimal strings (never a float in the database).
 *
 * Round trips are not computed here: fills are folded through the same accounting
 * ledger the monitor keeps (core/ledger.ts), so a round trip's PnL, fees and hold time
 * are exactly the monitor's. The fold's state (ledger snapshot, last fill entry, the
 * order that opened each position) is saved in the journal's own database in the same
 * transaction as the rows, so after a crash it matches exactly the rows committed.
 */
import { z } from 'zod';
import { compareIds } from '../../bus/bus.js';
import { fx, toDecimalString } from '../../core/fixed.js';
import { Ledger, LedgerSnapshot, ledgerFillOf, type RoundTrip } from '../../core/ledger.js';
import type { ExecutionResult, Origin, PositionUpdate, RiskApprovedSignal, RiskRejection, TradeSignal } from '../../core/messages.js';

export type Cell = string | number | boolean | null;
export type Row = Record<string, Cell>;

export interface TableSpec {
  name: JournalTable;
  columns: readonly string[];
  /** The primary key, for ON CONFLICT DO NOTHING. */
  key: readonly string[];
  /** The time column readers filter and sort on. */
  time: string;
}

export type JournalTable = 'decisions' | 'fills' | 'round_trips' | 'equity' | 'dead_letters';

export const TABLES: Record<JournalTable, TableSpec> = {
  decisions: {
    name: 'decisions',
    columns: ['signal_id', 'outcome', 'symbol', 'action', 'confidence', 'source', 'reasons', 'intent', 'side', 'quantity',
      'notional_usd', 'reference_price', 'origin', 'signal_ts', 'ts', 'record', 'entry_id'],
    key: ['signal_id'],
    time: 'ts',
  },
  fills: {
    name: 'fills',
    columns: ['order_id', 'signal_id', 'symbol', 'side', 'quantity', 'reference_price', 'fill_price', 'slippage_pct', 'fee_usd',
      'fee_rate', 'notional_usd', 'status', 'reject_reason', 'signal_ts', 'ts', 'reduce_only', 'origin', 'exit_reason', 'entry_id'],
    key: ['order_id'],
    time: 'ts',
  },
  round_trips: {
    name: 'round_trips',
    columns: ['trade_id', 'symbol', 'side', 'quantity', 'entry_price', 'exit_price', 'gross_pnl_usd', 'fees_usd',
      'realized_pnl_usd', 'win', 'opened_ts', 'closed_ts', 'hold_ms', 'exit_reason', 'open_order_id', 'open_signal_id',
      'close_signal_id'],
    key: ['trade_id'],
    time: 'closed_ts',
  },
  equity: {
    name: 'equity',
    columns: ['symbol', 'second', 'ts', 'side', 'quantity', 'avg_entry_price', 'mark_price', 'unrealized_pnl_usd',
      'realized_pnl_usd', 'fees_usd', 'cause', 'order_id', 'balance_usd', 'equity_usd', 'exposure_usd', 'exposure_pct',
      'drawdown_pct', 'open_positions', 'win_rate', 'closed_trades', 'entry_id'],
    key: ['symbol', 'second'],
    time: 'ts',
  },
  dead_letters: {
    name: 'dead_letters',
    columns: ['topic', 'entry_id', 'dlq_source_id', 'dlq_group', 'dlq_attempts', 'dlq_ts', 'dlq_error', 'payload'],
    key: ['topic', 'entry_id'],
    time: 'dlq_ts',
  },
};

export const TABLE_NAMES = Object.keys(TABLES) as JournalTable[];

/** Rows of one batch, per table, in stream order. */
export type RowBatch = Record<JournalTable, Row[]>;

export function emptyBatch(): RowBatch {
  return { decisions: [], fills: [], round_trips: [], equity: [], dead_letters: [] };
}

export function batchSize(batch: RowBatch): number {
  let n = 0;
  for (const name of TABLE_NAMES) n += batch[name].length;
  return n;
}

/** A wire number as an exact decimal string (its shortest decimal form). */
export function decimal(value: number): string {
  return toDecimalString(fx(value));
}

export function approvedRow(message: RiskApprovedSignal, entryId: string): Row {
  return {
    signal_id: message.signal_id,
    outcome: 'approved',
    symbol: message.symbol,
    action: message.action,
    confidence: decimal(message.confidence),
    source: message.source,
    reasons: '[]',
    intent: message.intent,
    side: message.side,
    quantity: decimal(message.quantity),
    notional_usd: decimal(message.notional_usd),
    reference_price: decimal(message.reference_price),
    origin: message.origin,
    signal_ts: message.ts,
    ts: message.approved_ts,
    record: JSON.stringify(message),
    entry_id: entryId,
  };
}

export function rejectedRow(message: RiskRejection, entryId: string): Row {
  return {
    signal_id: message.signal_id,
    outcome: 'rejected',
    symbol: message.symbol,
    action: message.action,
    confidence: decimal(message.confidence),
    source: message.source,
    reasons: JSON.stringify(message.reasons),
    intent: null,
    side: null,
    quantity: null,
    notional_usd: null,
    reference_price: null,
    origin: null,
    signal_ts: message.signal_ts,
    ts: message.ts,
    record: JSON.stringify(message),
    entry_id: entryId,
  };
}

/**
 * A HOLD, which the risk service skips without publishing anything (SPEC §4.1): the
 * journal reads it from trade.signal.v5 itself. Decided "at" the signal's own time.
 */
export function skippedRow(signal: TradeSignal, entryId: string): Row {
  return {
    signal_id: signal.signal_id,
    outcome: 'skipped',
    symbol: signal.symbol,
    action: signal.action,
    confidence: decimal(signal.confidence),
    source: signal.source,
    reasons: '["HOLD"]',
    intent: null,
    side: null,
    quantity: null,
    notional_usd: null,
    reference_price: null,
    origin: null,
    signal_ts: signal.ts,
    ts: signal.ts,
    record: JSON.stringify(signal),
    entry_id: entryId,
  };
}

export function fillRow(result: ExecutionResult, entryId: string): Row {
  return {
    order_id: result.order_id,
    signal_id: result.signal_id,
    symbol: result.symbol,
    side: result.side,
    quantity: decimal(result.quantity),
    reference_price: decimal(result.reference_price),
    fill_price: decimal(result.fill_price),
    slippage_pct: decimal(result.slippage_pct),
    fee_usd: decimal(result.fee_usd),
    fee_rate: decimal(result.fee_rate),
    notional_usd: decimal(result.notional_usd),
    status: result.status,
    reject_reason: result.reject_reason ?? null,
    signal_ts: result.signal_ts,
    ts: result.ts,
    reduce_only: result.reduce_only,
    origin: result.origin,
    exit_reason: result.exit_reason ?? null,
    entry_id: entryId,
  };
}

/** The exit reason of a closing fill: its own when it carries one, else what its origin says. */
export function exitReasonOf(result: ExecutionResult): string | null {
  if (result.exit_reason) return result.exit_reason;
  const byOrigin: Record<Origin, string | null> = { signal: 'signal', manual_close: 'manual', protective_exit: null };
  return byOrigin[result.origin];
}

export function equityRow(update: PositionUpdate, entryId: string): Row {
  const p = update.portfolio;
  return {
    symbol: update.symbol,
    second: Math.floor(update.ts / 1000),
    ts: update.ts,
    side: update.side,
    quantity: decimal(update.quantity),
    avg_entry_price: decimal(update.avg_entry_price),
    mark_price: decimal(update.mark_price),
    unrealized_pnl_usd: decimal(update.unrealized_pnl_usd),
    realized_pnl_usd: decimal(update.realized_pnl_usd),
    fees_usd: decimal(update.fees_usd),
    cause: update.cause,
    order_id: update.order_id ?? null,
    balance_usd: decimal(p.balance_usd),
    equity_usd: decimal(p.equity_usd),
    exposure_usd: decimal(p.exposure_usd),
    exposure_pct: decimal(p.exposure_pct),
    drawdown_pct: decimal(p.drawdown_pct),
    open_positions: p.open_positions,
    win_rate: decimal(p.win_rate),
    closed_trades: p.closed_trades,
    entry_id: entryId,
  };
}

/** A `<topic>.dlq` entry: the original fields plus the bus's `dlq_*` fields. */
export function deadLetterRow(topic: string, entryId: string, fields: Readonly<Record<string, string>>): Row {
  const int = (text: string | undefined): number | null => {
    const n = Number(text);
    return text !== undefined && Number.isSafeInteger(n) ? n : null;
  };
  const original: Record<string, string> = {};
  for (const [key, value] of Object.entries(fields)) if (!key.startsWith('dlq_')) original[key] = value;
  return {
    topic,
    entry_id: entryId,
    dlq_source_id: fields.dlq_source_id ?? null,
    dlq_group: fields.dlq_group ?? null,
    dlq_attempts: int(fields.dlq_attempts),
    dlq_ts: int(fields.dlq_ts),
    dlq_error: fields.dlq_error ?? null,
    payload: original.payload !== undefined && Object.keys(original).length === 1 ? original.payload : JSON.stringify(original),
  };
}

// ---------------------------------------------------------------------------
// The fill fold

const OpenedBy = z.object({ order_id: z.string(), signal_id: z.string() });

export const FoldState = z.object({
  version: z.literal(1),
  ledger: LedgerSnapshot,
  /** The last trade.execution.res entry folded: entries at or before it are done. */
  last_fill_id: z.string(),
  /** The fill that opened each symbol's current position. */
  opened_by: z.record(z.string(), OpenedBy),
});
export type FoldState = z.infer<typeof FoldState>;

/** Folds FILLED results through the ledger, once per entry, yielding a row per closed round trip. */
export class FillFold {
  private ledger: Ledger;
  private lastFillId = '0-0';
  private openedBy = new Map<string, z.infer<typeof OpenedBy>>();

  constructor(private readonly initialBalance: number) {
    this.ledger = new Ledger(fx(initialBalance));
  }

  /** The round trip this result closed, as a row; null when it closed none (or was folded already). */
  onResult(result: ExecutionResult, entryId: string): Row | null {
    if (compareIds(entryId, this.lastFillId) <= 0) return null;
    this.lastFillId = entryId;
    if (result.status !== 'FILLED') return null;
    const effect = this.ledger.applyFill(ledgerFillOf(result));
    const trip = effect.closedRoundTrip;
    const opener = this.openedBy.get(result.symbol);
    if (effect.opened) this.openedBy.set(result.symbol, { order_id: result.order_id, signal_id: result.signal_id });
    else if (trip) this.openedBy.delete(result.symbol);
    return trip ? roundTripRow(trip, result, opener) : null;
  }

  toState(): FoldState {
    return { version: 1, ledger: this.ledger.toSnapshot(), last_fill_id: this.lastFillId, opened_by: Object.fromEntries(this.openedBy) };
  }

  restore(input: unknown): void {
    const state = FoldState.parse(input);
    this.ledger = Ledger.fromSnapshot(state.ledger);
    this.lastFillId = state.last_fill_id;
    this.openedBy = new Map(Object.entries(state.opened_by));
  }

  reset(): void {
    this.ledger = new Ledger(fx(this.initialBalance));
    this.lastFillId = '0-0';
    this.openedBy.clear();
  }
}

function roundTripRow(trip: RoundTrip, closing: ExecutionResult, opener: { order_id: string; signal_id: string } | undefined): Row {
  return {
    trade_id: closing.order_id,
    symbol: trip.symbol,
    side: trip.side,
    quantity: toDecimalString(trip.quantity),
    entry_price: toDecimalString(trip.entryAvg),
    exit_price: toDecimalString(trip.closeAvg),
    gross_pnl_usd: toDecimalString(trip.gross),
    fees_usd: toDecimalString(trip.fees),
    realized_pnl_usd: toDecimalString(trip.net),
    win: trip.win,
    opened_ts: trip.openedTs,
    closed_ts: trip.closedTs,
    hold_ms: trip.closedTs - trip.openedTs,
    exit_reason: exitReasonOf(closing),
    open_order_id: opener?.order_id ?? null,
    open_signal_id: opener?.signal_id ?? null,
    close_signal_id: closing.signal_id,
  };
}
