/**
 * The dashboard's functional core: plain data in, plain data out, no I/O. The hub
 * (hub.ts) feeds it bus entries and service answers; the routes serve what it holds.
 *
 * Everything kept in memory is bounded (HISTORY_BOUNDS); the dashboard is a view, so
 * what falls off the end is simply no longer shown (the streams still hold it).
 */
import type {
  ExecutionResult,
  PortfolioSummary,
  PositionUpdate,
  PositionView,
  RiskApprovedSignal,
  RiskRejection,
} from '../../core/messages.js';

/** How much history the dashboard keeps in memory (and reads back from the streams at start). */
export const HISTORY_BOUNDS = {
  /** Equity/drawdown points, at most one per second (the last update of a second wins). */
  equityPoints: 2000,
  /** Latest approvals and rejections, merged, newest first. */
  decisions: 200,
  /** Latest execution results (fills and rejected orders), newest first. */
  fills: 200,
  /** trade.position.update entries read back at start to rebuild the curve and positions. */
  positionBackfill: 5000,
} as const;

export interface EquityPoint {
  /** Epoch seconds (the chart's time axis); unique and increasing. */
  time: number;
  equity_usd: number;
  drawdown_pct: number;
}

export type DecisionVerdict = 'APPROVED' | 'REJECTED';

export interface DecisionSummary {
  /** `<kind>:<stream entry id>`, stable; the key of GET /api/decisions/:key. */
  key: string;
  verdict: DecisionVerdict;
  signal_id: string;
  symbol: string;
  action: string;
  confidence: number;
  source: string;
  /** When the decision was made (approved_ts or the rejection's ts). */
  ts: number;
  /** Rejections: the reason codes; approvals: empty. */
  reasons: string[];
  /** Approvals only. */
  intent?: string;
  side?: string;
  quantity?: number;
  notional_usd?: number;
  origin?: string;
}

export type DecisionRecord = DecisionSummary & {
  checks: RiskApprovedSignal['checks'];
  sizing: RiskApprovedSignal['sizing'];
  kelly_optimal?: number;
  kelly_applied?: number;
  risk_amount_usd?: number;
  reference_price?: number;
};

export interface FillSummary {
  order_id: string;
  signal_id: string;
  symbol: string;
  side: string;
  status: string;
  quantity: number;
  fill_price: number;
  notional_usd: number;
  fee_usd: number;
  slippage_pct: number;
  reject_reason?: string;
  origin: string;
  /** Why a close closed (stop_loss, take_profit, trailing_stop, time_limit, signal, manual). */
  exit_reason?: string;
  ts: number;
  /** Signal creation to fill, milliseconds. */
  latency_ms: number;
}

/** The header's portfolio figures, with where they came from. */
export interface PortfolioFigures {
  balance_usd: number;
  equity_usd: number;
  realized_pnl_usd: number;
  unrealized_pnl_usd: number;
  fees_usd: number | null;
  exposure_usd: number;
  exposure_pct: number;
  drawdown_pct: number;
  open_positions: number;
  win_rate: number;
  closed_trades: number;
  initial_balance_usd: number;
  /** monitor = GET /portfolio (authoritative); bus = the latest PositionUpdate (monitor unreachable). */
  source: 'monitor' | 'bus' | 'none';
  /** Epoch ms of the figures. */
  as_of: number | null;
}

export type PositionRow = Omit<PositionView, 'schema_version'>;

/** A list that keeps the newest `limit` items, newest first. */
export function prependBounded<T>(list: readonly T[], newestFirst: readonly T[], limit: number): T[] {
  if (newestFirst.length >= limit) return newestFirst.slice(0, limit);
  return [...newestFirst, ...list].slice(0, limit);
}

/**
 * Adds points (oldest first) to the curve: one point per second, the last value of a
 * second wins; a point older than the curve's end is dropped (the chart needs
 * increasing time). Returns the new curve and the points that changed, for the live feed.
 */
export function appendEquity(
  curve: readonly EquityPoint[],
  points: readonly EquityPoint[],
  limit: number = HISTORY_BOUNDS.equityPoints,
): { curve: EquityPoint[]; changed: EquityPoint[] } {
  const next = curve.slice();
  const changed = new Map<number, EquityPoint>();
  for (const point of points) {
    const last = next[next.length - 1];
    if (last && point.time < last.time) continue;
    if (last && point.time === last.time) next[next.length - 1] = point;
    else next.push(point);
    changed.set(point.time, point);
  }
  const trimmed = next.length > limit ? next.slice(next.length - limit) : next;
  return { curve: trimmed, changed: [...changed.values()] };
}

export function equityPointOf(update: Pick<PositionUpdate, 'ts' | 'portfolio'>): EquityPoint {
  return {
    time: Math.floor(update.ts / 1000),
    equity_usd: update.portfolio.equity_usd,
    drawdown_pct: update.portfolio.drawdown_pct,
  };
}

/** A position row from an update (the message minus its portfolio). */
export function positionRowOf(update: PositionUpdate | PositionView): PositionRow {
  const { symbol, side, quantity, avg_entry_price, mark_price, unrealized_pnl_usd, realized_pnl_usd, fees_usd, cause, ts } = update;
  return {
    symbol,
    side,
    quantity,
    avg_entry_price,
    mark_price,
    unrealized_pnl_usd,
    realized_pnl_usd,
    fees_usd,
    cause,
    ts,
    ...(update.order_id === undefined ? {} : { order_id: update.order_id }),
    // The armed exit levels (the monitor adds them from trade.exit.levels).
    ...(update.stop_loss === undefined ? {} : { stop_loss: update.stop_loss }),
    ...(update.take_profit === undefined ? {} : { take_profit: update.take_profit }),
    ...(update.trailing_stop === undefined ? {} : { trailing_stop: update.trailing_stop }),
    ...(update.expires_ts === undefined ? {} : { expires_ts: update.expires_ts }),
  };
}

/** Applies an update to the open positions: FLAT removes the symbol; an older update is ignored. */
export function applyPosition(positions: ReadonlyMap<string, PositionRow>, update: PositionUpdate): Map<string, PositionRow> {
  const next = new Map(positions);
  const current = next.get(update.symbol);
  if (current && current.ts > update.ts) return next;
  if (update.side === 'FLAT' || update.quantity === 0) next.delete(update.symbol);
  else next.set(update.symbol, positionRowOf(update));
  return next;
}

/** Positions in symbol order (stable rows: a row does not jump when its PnL changes). */
export function sortedPositions(positions: ReadonlyMap<string, PositionRow>): PositionRow[] {
  return [...positions.values()].sort((a, b) => (a.symbol < b.symbol ? -1 : a.symbol > b.symbol ? 1 : 0));
}

/**
 * The header figures from a PositionUpdate alone, for when the monitor does not answer.
 * balance = initial + realized − fees (SPEC §6) gives realized (net of fees), and
 * equity = balance + unrealized gives unrealized.
 */
export function figuresFromUpdate(portfolio: PortfolioSummary, ts: number, initialBalance: number): PortfolioFigures {
  return {
    ...portfolio,
    realized_pnl_usd: roundCents(portfolio.balance_usd - initialBalance),
    unrealized_pnl_usd: roundCents(portfolio.equity_usd - portfolio.balance_usd),
    fees_usd: null,
    initial_balance_usd: initialBalance,
    source: 'bus',
    as_of: ts,
  };
}

/** GET /portfolio of the monitor, as header figures. */
export function figuresFromMonitor(body: Record<string, unknown>, at: number, initialBalance: number): PortfolioFigures | null {
  const num = (key: string): number | null => (typeof body[key] === 'number' && Number.isFinite(body[key]) ? (body[key] as number) : null);
  const balance = num('balance_usd');
  const equity = num('equity_usd');
  if (balance === null || equity === null) return null;
  return {
    balance_usd: balance,
    equity_usd: equity,
    realized_pnl_usd: num('realized_pnl_usd') ?? roundCents(balance - initialBalance),
    unrealized_pnl_usd: num('unrealized_pnl_usd') ?? roundCents(equity - balance),
    fees_usd: num('fees_usd'),
    exposure_usd: num('exposure_usd') ?? 0,
    exposure_pct: num('exposure_pct') ?? 0,
    drawdown_pct: num('drawdown_pct') ?? 0,
    open_positions: num('open_positions') ?? 0,
    win_rate: num('win_rate') ?? 0,
    closed_trades: num('closed_trades') ?? 0,
    initial_balance_usd: num('initial_balance_usd') ?? initialBalance,
    source: 'monitor',
    as_of: at,
  };
}

export function emptyFigures(initialBalance: number): PortfolioFigures {
  return {
    balance_usd: initialBalance,
    equity_usd: initialBalance,
    realized_pnl_usd: 0,
    unrealized_pnl_usd: 0,
    fees_usd: null,
    exposure_usd: 0,
    exposure_pct: 0,
    drawdown_pct: 0,
    open_positions: 0,
    win_rate: 0,
    closed_trades: 0,
    initial_balance_usd: initialBalance,
    source: 'none',
    as_of: null,
  };
}

function roundCents(value: number): number {
  return Math.round(value * 1e8) / 1e8;
}

export function approvalRecord(id: string, message: RiskApprovedSignal): DecisionRecord {
  return {
    key: `approved:${id}`,
    verdict: 'APPROVED',
    signal_id: message.signal_id,
    symbol: message.symbol,
    action: message.action,
    confidence: message.confidence,
    source: message.source,
    ts: message.approved_ts,
    reasons: [],
    intent: message.intent,
    side: message.side,
    quantity: message.quantity,
    notional_usd: message.notional_usd,
    origin: message.origin,
    checks: message.checks ?? [],
    sizing: message.sizing ?? null,
    kelly_optimal: message.kelly_optimal,
    kelly_applied: message.kelly_applied,
    risk_amount_usd: message.risk_amount_usd,
    reference_price: message.reference_price,
  };
}

export function rejectionRecord(id: string, message: RiskRejection): DecisionRecord {
  return {
    key: `rejected:${id}`,
    verdict: 'REJECTED',
    signal_id: message.signal_id,
    symbol: message.symbol,
    action: message.action,
    confidence: message.confidence,
    source: message.source,
    ts: message.ts,
    reasons: [...message.reasons],
    checks: message.checks,
    sizing: message.sizing,
  };
}

/** The list entry of a decision (the record without its checks and sizing). */
export function summaryOf(record: DecisionRecord): DecisionSummary {
  const { checks: _checks, sizing: _sizing, kelly_optimal: _ko, kelly_applied: _ka, risk_amount_usd: _r, reference_price: _p, ...summary } =
    record;
  return summary;
}

export function fillOf(result: ExecutionResult): FillSummary {
  return {
    order_id: result.order_id,
    signal_id: result.signal_id,
    symbol: result.symbol,
    side: result.side,
    status: result.status,
    quantity: result.quantity,
    fill_price: result.fill_price,
    notional_usd: result.notional_usd,
    fee_usd: result.fee_usd,
    slippage_pct: result.slippage_pct,
    ...(result.reject_reason === undefined ? {} : { reject_reason: result.reject_reason }),
    origin: result.origin,
    ...(result.exit_reason === undefined ? {} : { exit_reason: result.exit_reason }),
    ts: result.ts,
    latency_ms: Math.max(0, result.ts - result.signal_ts),
  };
}

