/**
 * Every message on the bus, defined once: each zod schema gives the TypeScript type
 * and the runtime check. Keys are snake_case on the wire (SPEC §2) so a Python
 * producer can publish with plain XADD. JSON Schemas are exported from here by
 * `npm run schemas` into docs/schemas/.
 */
import { z } from 'zod';

export const SCHEMA_VERSION = 1 as const;

export const SYMBOL_PATTERN = /^[A-Z0-9]{2,20}$/;

const symbol = z.string().regex(SYMBOL_PATTERN, { error: 'symbol must be 2-20 upper-case letters or digits' });
const epochMs = z.number().int().nonnegative();
const schemaVersion = z.number().int().min(1);
const positive = z.number().positive().finite();
const nonNegative = z.number().nonnegative().finite();
const finite = z.number().finite();
const fraction = z.number().min(0).max(1);

export const SignalAction = z.enum(['BUY', 'SELL', 'HOLD', 'CLOSE']);
export type SignalAction = z.infer<typeof SignalAction>;
export const OrderSide = z.enum(['BUY', 'SELL']);
export type OrderSide = z.infer<typeof OrderSide>;
export const Intent = z.enum(['OPEN', 'INCREASE', 'CLOSE']);
export type Intent = z.infer<typeof Intent>;
export const Origin = z.enum(['signal', 'manual_close', 'protective_exit']);
export type Origin = z.infer<typeof Origin>;
export const PositionSide = z.enum(['LONG', 'SHORT', 'FLAT']);
export type PositionSide = z.infer<typeof PositionSide>;
export const TickSource = z.enum(['simulator', 'manual', 'feed']);
export type TickSource = z.infer<typeof TickSource>;
/**
 * Why a position was closed: an opposite or CLOSE signal, a manual close (POST /close),
 * one of the protective exits the risk service enforces (docs/exits.md), or the
 * operator's kill switch flattening everything (POST /halt, docs/protections.md).
 */
export const ExitReason = z.enum(['signal', 'manual', 'stop_loss', 'take_profit', 'trailing_stop', 'time_limit', 'kill_switch']);
export type ExitReason = z.infer<typeof ExitReason>;
/** The exit reasons of protective exits (origin protective_exit). */
export const ProtectiveExitReason = z.enum(['stop_loss', 'take_profit', 'trailing_stop', 'time_limit']);
export type ProtectiveExitReason = z.infer<typeof ProtectiveExitReason>;

export const ReasonCode = z.enum([
  'UNKNOWN_SYMBOL',
  'NO_PRICE',
  'NO_POSITION',
  'LOW_CONFIDENCE',
  'CIRCUIT_BREAKER',
  'COOLDOWN',
  'DAILY_LIMIT',
  'NEGATIVE_EDGE',
  'POSITION_LIMIT',
  'EXPOSURE_LIMIT',
  'STALE_PRICE',
  'STALE_SIGNAL',
  'BELOW_MIN_ORDER',
  // Protections (docs/protections.md)
  'KILL_SWITCH',
  'DAILY_LOSS_LIMIT',
  'SOURCE_DRAWDOWN',
  'LOCKED',
  'RATE_LIMIT',
  'MAX_OPEN_POSITIONS',
  'ORDER_NOTIONAL_LIMIT',
]);
export type ReasonCode = z.infer<typeof ReasonCode>;

/** Limits of a signal's `metadata`: it is copied into approvals, rejections and risk snapshots. */
export const METADATA_LIMITS = { maxKeys: 32, maxKeyLength: 64, maxStringLength: 256, maxJsonLength: 4096 } as const;

/** Flat key → scalar map carried along unchanged, within METADATA_LIMITS. */
const metadata = z
  .record(
    z.string().max(METADATA_LIMITS.maxKeyLength, { error: `metadata keys must be at most ${METADATA_LIMITS.maxKeyLength} characters` }),
    z.union([
      z.string().max(METADATA_LIMITS.maxStringLength, { error: `metadata strings must be at most ${METADATA_LIMITS.maxStringLength} characters` }),
      z.number(),
      z.boolean(),
      z.null(),
    ]),
  )
  .refine((m) => Object.keys(m).length <= METADATA_LIMITS.maxKeys, { error: `metadata may hold at most ${METADATA_LIMITS.maxKeys} keys` })
  .refine((m) => JSON.stringify(m).length <= METADATA_LIMITS.maxJsonLength, {
    error: `metadata must be at most ${METADATA_LIMITS.maxJsonLength} characters as JSON`,
  });

const signalFields = {
  schema_version: schemaVersion,
  signal_id: z.string().min(1).max(128),
  symbol,
  action: SignalAction,
  confidence: fraction,
  source: z.string().min(1).max(64),
  ts: epochMs,
  price: positive.optional(),
  stop_loss: positive.optional(),
  take_profit: positive.optional(),
  /** The stop trails the best price since entry by this fraction (0.02 = 2%). */
  trailing_stop_pct: z.number().positive().lt(1).optional(),
  /** Close the position this long after the entry (milliseconds). */
  max_hold_ms: z.number().int().positive().optional(),
  metadata: metadata.optional(),
};

/** A signal as a producer may publish it: id, timestamp and version can be left out. */
export const TradeSignalInput = z.object({
  ...signalFields,
  schema_version: schemaVersion.optional(),
  signal_id: signalFields.signal_id.optional(),
  ts: epochMs.optional(),
});
export type TradeSignalInput = z.infer<typeof TradeSignalInput>;

/** A signal after normalisation: every field the loop relies on is present. */
export const TradeSignal = z.object(signalFields);
export type TradeSignal = z.infer<typeof TradeSignal>;

/** One rule's verdict in a decision record. */
export const CheckEntry = z.object({
  rule: z.string(),
  passed: z.boolean(),
  value: z.union([z.number(), z.string(), z.boolean(), z.null()]),
  limit: z.union([z.number(), z.string(), z.boolean(), z.null()]),
  note: z.string().optional(),
});
export type CheckEntry = z.infer<typeof CheckEntry>;

/** The inputs of the Kelly sizing, so a user can recompute the size by hand. */
export const SizingRecord = z.object({
  p: fraction,
  b: z.number().nonnegative(),
  b_source: z.enum(['round_trips', 'take_profit_stop_loss', 'default']),
  kelly_fraction: fraction,
  kelly_optimal: finite,
  kelly_applied: finite,
  equity_usd: finite,
  symbol_room_usd: finite,
  exposure_room_usd: finite,
  target_notional_usd: finite,
  reference_price: positive,
  step_size: positive,
  stop_distance_pct: nonNegative,
});
export type SizingRecord = z.infer<typeof SizingRecord>;

export const RiskApprovedSignal = z.object({
  ...signalFields,
  intent: Intent,
  side: OrderSide,
  quantity: positive,
  notional_usd: nonNegative,
  reference_price: positive,
  kelly_optimal: finite,
  kelly_applied: finite,
  risk_amount_usd: nonNegative,
  reduce_only: z.boolean(),
  approved_ts: epochMs,
  /** Execution never fills this order after this instant (epoch ms); absent: no expiry. */
  expires_ts: epochMs.optional(),
  origin: Origin,
  /** Set on every close (intent CLOSE): why the position is being closed. */
  exit_reason: ExitReason.optional(),
  // The decision record: the risk service always writes it, but it is for people, not
  // for execution, so SPEC §2 leaves it optional on the wire.
  checks: z.array(CheckEntry).optional(),
  sizing: SizingRecord.nullable().optional(),
});
export type RiskApprovedSignal = z.infer<typeof RiskApprovedSignal>;

export const RiskRejection = z.object({
  ...signalFields,
  /** When the rejection was made; the signal's own time is `signal_ts`. */
  ts: epochMs,
  signal_ts: epochMs,
  reasons: z.array(ReasonCode).min(1),
  checks: z.array(CheckEntry),
  sizing: SizingRecord.nullable(),
});
export type RiskRejection = z.infer<typeof RiskRejection>;

/**
 * Sources one trade.signal.decisions message may carry (the monitor's attribution keeps at
 * most as many): a publisher with more splits its counts over several messages.
 */
export const DECISION_COUNTS_MAX_SOURCES = 1000;

/** One source's decisions in one trade.signal.decisions message. */
export const SourceDecisions = z.object({
  source: signalFields.source,
  approved: z.number().int().nonnegative(),
  rejected: z.number().int().nonnegative(),
  /** Per reason code, the rejections that carried it (a rejection with several reasons counts once per reason). */
  rejected_by_reason: z.partialRecord(ReasonCode, z.number().int().positive()),
});
export type SourceDecisions = z.infer<typeof SourceDecisions>;

/**
 * trade.signal.decisions: what one batch of the risk service (or one of its publications
 * between batches: a protective exit on the clock, POST /halt's closes) decided, counted
 * per source, written in the same transaction as those decisions on trade.signal.safe /
 * .rejected (docs/feedback.md). Sources in the order their first decision was made.
 */
export const DecisionCounts = z.object({
  schema_version: schemaVersion,
  sources: z.array(SourceDecisions).min(1).max(DECISION_COUNTS_MAX_SOURCES),
  ts: epochMs,
});
export type DecisionCounts = z.infer<typeof DecisionCounts>;

export const ExecutionStatus = z.enum(['FILLED', 'REJECTED']);
export type ExecutionStatus = z.infer<typeof ExecutionStatus>;

export const QuoteSide = z.enum(['ask', 'bid', 'last']);
export type QuoteSide = z.infer<typeof QuoteSide>;

export const ORDER_ID_PATTERN = /^PAPER-[0-9a-f]{12}$/;

export const ExecutionResult = z.object({
  schema_version: schemaVersion,
  order_id: z.string().regex(ORDER_ID_PATTERN, { error: 'order_id must be PAPER- and 12 lowercase hex digits' }),
  signal_id: z.string().min(1),
  symbol,
  side: OrderSide,
  quantity: nonNegative,
  reference_price: nonNegative,
  fill_price: nonNegative,
  slippage_pct: nonNegative,
  fee_usd: nonNegative,
  fee_rate: nonNegative,
  notional_usd: nonNegative,
  status: ExecutionStatus,
  reject_reason: z.string().optional(),
  signal_ts: epochMs,
  ts: epochMs,
  reduce_only: z.boolean(),
  origin: Origin,
  /** Which price the fill was priced from: the ask (BUY with quotes), the bid (SELL with quotes) or the last price. */
  quote_side: QuoteSide.optional(),
  /** Age of that price when the order was filled (fill ts − tick ts), ms. */
  price_age_ms: z.number().int().nonnegative().optional(),
  /** Copied from the approved order: set on every close. */
  exit_reason: ExitReason.optional(),
  /**
   * Copied from the approved order (and so from its signal): who sent it, how sure it was,
   * and the Kelly fraction risk applied. The monitor attributes round trips by them
   * (rl.feedback); absent in results written before they were added.
   */
  source: z.string().min(1).max(64).optional(),
  confidence: fraction.optional(),
  kelly_applied: finite.optional(),
}).superRefine((r, ctx) => {
  // A fill the ledger could not apply must never pass as FILLED.
  if (r.status !== 'FILLED') return;
  for (const key of ['quantity', 'fill_price', 'notional_usd'] as const) {
    if (!(r[key] > 0)) ctx.addIssue({ code: 'custom', path: [key], message: `must be positive when status is FILLED` });
  }
});
export type ExecutionResult = z.infer<typeof ExecutionResult>;

export const PortfolioSummary = z.object({
  balance_usd: finite,
  equity_usd: finite,
  exposure_usd: nonNegative,
  exposure_pct: nonNegative,
  drawdown_pct: nonNegative,
  open_positions: z.number().int().nonnegative(),
  win_rate: fraction,
  closed_trades: z.number().int().nonnegative(),
});
export type PortfolioSummary = z.infer<typeof PortfolioSummary>;

export const PositionCause = z.enum(['fill', 'mark', 'close']);
export type PositionCause = z.infer<typeof PositionCause>;

const positionFields = {
  schema_version: schemaVersion,
  symbol,
  side: PositionSide,
  quantity: nonNegative,
  avg_entry_price: nonNegative,
  mark_price: nonNegative,
  unrealized_pnl_usd: finite,
  realized_pnl_usd: finite,
  fees_usd: nonNegative,
  cause: PositionCause,
  order_id: z.string().optional(),
  ts: epochMs,
  /** The position's armed exit levels (from trade.exit.levels), each omitted when not armed. */
  stop_loss: positive.optional(),
  take_profit: positive.optional(),
  /** The trailing stop's current price level. */
  trailing_stop: positive.optional(),
  /** When the time limit closes the position (epoch ms). */
  expires_ts: epochMs.optional(),
};

/** A position's state without the portfolio (the elements of GET /positions). */
export const PositionView = z.object(positionFields);
export type PositionView = z.infer<typeof PositionView>;

export const PositionUpdate = z.object({ ...positionFields, portfolio: PortfolioSummary });
export type PositionUpdate = z.infer<typeof PositionUpdate>;

export const PriceTick = z.object({
  schema_version: schemaVersion,
  symbol,
  /** Last trade price, or the mid when only quotes are known. */
  price: positive,
  /** When the tick was made (the publisher's clock), epoch ms. */
  ts: epochMs,
  source: TickSource,
  /** Best bid / best ask (top of book) when the source knows them: a BUY fills from the ask, a SELL from the bid (a long exits at the bid, a short at the ask). */
  bid: positive.optional(),
  ask: positive.optional(),
  bid_size: positive.optional(),
  ask_size: positive.optional(),
  /** The venue's own event time, when it sends one, epoch ms. */
  exchange_ts: epochMs.optional(),
});
export type PriceTick = z.infer<typeof PriceTick>;

/**
 * trade.exit.levels: the risk service's armed exit levels of one symbol's position,
 * published whenever they change (armed by an entry, set by POST /positions/{symbol}/exits,
 * the trailing stop moved, a protective close fired, or cleared when the position is flat).
 * Prices are null when that level is not armed. The monitor folds these into /positions.
 */
export const ExitLevelsCause = z.enum(['armed', 'updated', 'trailed', 'triggered', 'cleared']);
export type ExitLevelsCause = z.infer<typeof ExitLevelsCause>;

export const ExitLevels = z.object({
  schema_version: schemaVersion,
  symbol,
  /** The signal_id of the entry that armed these levels (null once cleared). */
  entry_signal_id: z.string().min(1).nullable(),
  stop_loss: positive.nullable(),
  take_profit: positive.nullable(),
  /** The trailing stop's price level now, and the fraction it trails the best price by. */
  trailing_stop: positive.nullable(),
  trailing_stop_pct: z.number().positive().lt(1).nullable(),
  /** The best exit-side price since the levels were armed (the trail's high-water mark). */
  high_water_mark: positive.nullable(),
  expires_ts: epochMs.nullable(),
  cause: ExitLevelsCause,
  /** With cause `triggered`: which level fired. */
  exit_reason: ProtectiveExitReason.optional(),
  ts: epochMs,
});
export type ExitLevels = z.infer<typeof ExitLevels>;

/**
 * rl.feedback: one message per closed round trip (open → flat), published by the monitor
 * in the same transaction as the fill that closed it (docs/feedback.md). A scale-in
 * position is attributed to its first entry: `source`, `confidence`, `entry_signal_id`
 * and `kelly_applied` are those of the fill that opened it.
 */
export const TradeFeedback = z.object({
  schema_version: schemaVersion,
  /** The order_id of the fill that opened the position. */
  trade_id: z.string().min(1),
  symbol,
  side: z.enum(['LONG', 'SHORT']),
  source: z.string().min(1).max(64),
  /** The entry signal's confidence; null for a position opened by a result that did not carry it. */
  confidence: fraction.nullable(),
  entry_signal_id: z.string().min(1),
  /** The signal_id of the fill that took the position to zero (or through it). */
  exit_signal_id: z.string().min(1),
  entry_ts: epochMs,
  exit_ts: epochMs,
  hold_ms: z.number().int().nonnegative(),
  /** Quantity-weighted average of the fills that opened or grew the position. */
  avg_entry_price: positive,
  /** Quantity-weighted average of the fills that reduced it. */
  avg_exit_price: positive,
  /** The largest size the position reached. */
  quantity: positive,
  gross_pnl_usd: finite,
  /** Every fee paid on the round trip (entries, reductions, the closing share of a flip). */
  fees_usd: nonNegative,
  net_pnl_usd: finite,
  /** net_pnl_usd / (avg_entry_price × quantity), a fraction (0.01 = 1%). */
  return_pct: finite,
  /** Maximum adverse / favourable excursion from the average entry over the marks and fills the monitor saw, fractions ≥ 0. */
  mae_pct: nonNegative,
  mfe_pct: nonNegative,
  /** The closing fill's exit_reason; null when it carried none. */
  exit_reason: ExitReason.nullable(),
  /** The entry's applied Kelly fraction; null when its result did not carry it. */
  kelly_applied: finite.nullable(),
  ts: epochMs,
});
export type TradeFeedback = z.infer<typeof TradeFeedback>;

export const DriftTestName = z.enum(['ks', 'calibration']);
export type DriftTestName = z.infer<typeof DriftTestName>;
export const DriftState = z.enum(['ok', 'drift']);
export type DriftState = z.infer<typeof DriftState>;

/**
 * model.drift: a source's drift state changed for one test (docs/feedback.md).
 * `ks`: the recent confidences against the reference ones (statistic D, p_value, alpha).
 * `calibration`: the recent realized win rate (statistic) against the 95% Wilson interval
 * around the recent mean confidence (predicted, interval).
 */
export const ModelDrift = z.object({
  schema_version: schemaVersion,
  source: z.string().min(1).max(64),
  test: DriftTestName,
  state: DriftState,
  statistic: finite,
  p_value: fraction.nullable(),
  alpha: fraction.nullable(),
  predicted: fraction.nullable(),
  interval: z.object({ low: fraction, high: fraction }).nullable(),
  reference_trades: z.number().int().nonnegative(),
  recent_trades: z.number().int().positive(),
  ts: epochMs,
});
export type ModelDrift = z.infer<typeof ModelDrift>;

/** The schema of each topic's payload, keyed by the topic's base name. */
export const TOPIC_SCHEMAS = {
  'trade.signal.v5': TradeSignalInput,
  'trade.signal.safe': RiskApprovedSignal,
  'trade.signal.rejected': RiskRejection,
  'trade.signal.decisions': DecisionCounts,
  'trade.execution.res': ExecutionResult,
  'trade.position.update': PositionUpdate,
  'market.tick': PriceTick,
  'trade.exit.levels': ExitLevels,
  'rl.feedback': TradeFeedback,
  'model.drift': ModelDrift,
} as const;

/** Every named schema, for the JSON Schema export and the OpenAPI components. */
export const NAMED_SCHEMAS = {
  TradeSignalInput,
  TradeSignal,
  RiskApprovedSignal,
  RiskRejection,
  DecisionCounts,
  SourceDecisions,
  ExecutionResult,
  PositionUpdate,
  PositionView,
  PortfolioSummary,
  PriceTick,
  ExitLevels,
  CheckEntry,
  SizingRecord,
  TradeFeedback,
  ModelDrift,
} as const;

/** Formats a zod error as "field: problem; field: problem" naming every field. */
export function describeIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) => `${issue.path.length ? issue.path.join('.') : '(root)'}: ${issue.message}`)
    .join('; ');
}
