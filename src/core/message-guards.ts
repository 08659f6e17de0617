/**
 * Fast acceptance checks for the messages every service decodes on its hot path. The
 * zod schemas in messages.ts stay the one definition: a guard only ever answers
 * "certainly valid, and exactly what the schema would output" (a plain JSON object
 * with no unknown keys and every field within its schema), and the codec then skips
 * zod. Anything else (a bad field, an unknown key zod would strip, an odd shape) goes
 * to zod, which decides and words the error. So a decoder accepts and rejects exactly
 * what zod does; message-guards.test.ts checks that, guard by guard, on valid messages
 * and on thousands of mutations of them.
 *
 * Each check may be stricter than its schema (that only costs a zod call), never looser.
 */
import type { z } from 'zod';
import {
  METADATA_LIMITS,
  ExecutionResult,
  ORDER_ID_PATTERN,
  PriceTick,
  RiskApprovedSignal,
  RiskRejection,
  SYMBOL_PATTERN,
  TradeSignalInput,
} from './messages.js';

type Json = Record<string, unknown>;
export type Guard = (value: unknown) => boolean;

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && Object.getPrototypeOf(value) === Object.prototype;
}

/** Every own key is one of `allowed` (zod strips the others: its output would differ). */
function onlyKeys(value: Json, allowed: ReadonlySet<string>): boolean {
  for (const key in value) if (!allowed.has(key)) return false;
  return true;
}

// Field checks, each implying its zod counterpart in messages.ts.
const isFinite = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const positive = (v: unknown): boolean => isFinite(v) && v > 0;
const nonNegative = (v: unknown): boolean => isFinite(v) && v >= 0;
const fraction = (v: unknown): boolean => isFinite(v) && v >= 0 && v <= 1;
const epochMs = (v: unknown): boolean => Number.isSafeInteger(v) && (v as number) >= 0;
const schemaVersion = (v: unknown): boolean => Number.isSafeInteger(v) && (v as number) >= 1;
const string = (v: unknown, min: number, max: number): boolean => typeof v === 'string' && v.length >= min && v.length <= max;
const symbol = (v: unknown): boolean => typeof v === 'string' && SYMBOL_PATTERN.test(v);
const oneOf = (v: unknown, options: readonly string[]): boolean => typeof v === 'string' && options.includes(v);
const optional = (v: unknown, check: (v: unknown) => boolean): boolean => v === undefined || check(v);
const scalar = (v: unknown): boolean => v === null || typeof v === 'string' || typeof v === 'boolean' || isFinite(v);

const ACTIONS = ['BUY', 'SELL', 'HOLD', 'CLOSE'] as const;
const SIDES = ['BUY', 'SELL'] as const;
const INTENTS = ['OPEN', 'INCREASE', 'CLOSE'] as const;
const ORIGINS = ['signal', 'manual_close', 'protective_exit'] as const;
const REASONS = [
  'UNKNOWN_SYMBOL', 'NO_PRICE', 'NO_POSITION', 'LOW_CONFIDENCE', 'CIRCUIT_BREAKER',
  'COOLDOWN', 'DAILY_LIMIT', 'NEGATIVE_EDGE', 'POSITION_LIMIT', 'EXPOSURE_LIMIT', 'STALE_PRICE', 'STALE_SIGNAL', 'BELOW_MIN_ORDER',
  'KILL_SWITCH', 'DAILY_LOSS_LIMIT', 'SOURCE_DRAWDOWN', 'LOCKED', 'RATE_LIMIT', 'MAX_OPEN_POSITIONS', 'ORDER_NOTIONAL_LIMIT',
] as const;
const QUOTE_SIDES = ['ask', 'bid', 'last'] as const;
const B_SOURCES = ['round_trips', 'take_profit_stop_loss', 'default'] as const;
const TICK_SOURCES = ['simulator', 'manual', 'feed'] as const;
const EXIT_REASONS = ['signal', 'manual', 'stop_loss', 'take_profit', 'trailing_stop', 'time_limit', 'kill_switch'] as const;
const positiveInt = (v: unknown): boolean => Number.isSafeInteger(v) && (v as number) > 0;
const openFraction = (v: unknown): boolean => isFinite(v) && v > 0 && v < 1;
const STATUSES = ['FILLED', 'REJECTED'] as const;

/** Flat key → scalar map within METADATA_LIMITS; `__proto__` is left to zod (it drops it from its output). */
function metadata(v: unknown): boolean {
  if (!isObject(v)) return false;
  let keys = 0;
  for (const key in v) {
    const value = v[key];
    if (key === '__proto__' || !scalar(value) || key.length > METADATA_LIMITS.maxKeyLength) return false;
    if (typeof value === 'string' && value.length > METADATA_LIMITS.maxStringLength) return false;
    keys += 1;
  }
  return keys <= METADATA_LIMITS.maxKeys && (keys === 0 || JSON.stringify(v).length <= METADATA_LIMITS.maxJsonLength);
}

const SIGNAL_KEYS = ['schema_version', 'signal_id', 'symbol', 'action', 'confidence', 'source', 'ts', 'price', 'stop_loss', 'take_profit', 'trailing_stop_pct', 'max_hold_ms', 'metadata'];

/** The signal fields; `required` says whether id, version and ts must be present. */
function signalFields(v: Json, required: boolean): boolean {
  return (
    (required ? schemaVersion(v.schema_version) : optional(v.schema_version, schemaVersion)) &&
    (required ? string(v.signal_id, 1, 128) : optional(v.signal_id, (x) => string(x, 1, 128))) &&
    symbol(v.symbol) &&
    oneOf(v.action, ACTIONS) &&
    fraction(v.confidence) &&
    string(v.source, 1, 64) &&
    (required ? epochMs(v.ts) : optional(v.ts, epochMs)) &&
    optional(v.price, positive) &&
    optional(v.stop_loss, positive) &&
    optional(v.take_profit, positive) &&
    optional(v.trailing_stop_pct, openFraction) &&
    optional(v.max_hold_ms, positiveInt) &&
    optional(v.metadata, metadata)
  );
}

const SIGNAL_INPUT = new Set(SIGNAL_KEYS);

export const isTradeSignalInput: Guard = (v) => isObject(v) && onlyKeys(v, SIGNAL_INPUT) && signalFields(v, false);

const CHECK_KEYS = new Set(['rule', 'passed', 'value', 'limit', 'note']);

function checks(v: unknown): boolean {
  if (!Array.isArray(v)) return false;
  for (const c of v) {
    if (!isObject(c) || !onlyKeys(c, CHECK_KEYS)) return false;
    if (typeof c.rule !== 'string' || typeof c.passed !== 'boolean' || !scalar(c.value) || !scalar(c.limit)) return false;
    if (c.note !== undefined && typeof c.note !== 'string') return false;
  }
  return true;
}

const SIZING_KEYS = new Set([
  'p', 'b', 'b_source', 'kelly_fraction', 'kelly_optimal', 'kelly_applied', 'equity_usd', 'symbol_room_usd',
  'exposure_room_usd', 'target_notional_usd', 'reference_price', 'step_size', 'stop_distance_pct',
]);

function sizing(v: unknown): boolean {
  if (v === null) return true;
  return (
    isObject(v) &&
    onlyKeys(v, SIZING_KEYS) &&
    fraction(v.p) &&
    nonNegative(v.b) &&
    oneOf(v.b_source, B_SOURCES) &&
    fraction(v.kelly_fraction) &&
    isFinite(v.kelly_optimal) &&
    isFinite(v.kelly_applied) &&
    isFinite(v.equity_usd) &&
    isFinite(v.symbol_room_usd) &&
    isFinite(v.exposure_room_usd) &&
    isFinite(v.target_notional_usd) &&
    positive(v.reference_price) &&
    positive(v.step_size) &&
    nonNegative(v.stop_distance_pct)
  );
}

const APPROVAL_KEYS = new Set([
  ...SIGNAL_KEYS, 'intent', 'side', 'quantity', 'notional_usd', 'reference_price', 'kelly_optimal', 'kelly_applied',
  'risk_amount_usd', 'reduce_only', 'approved_ts', 'expires_ts', 'origin', 'exit_reason', 'checks', 'sizing',
]);

export const isRiskApprovedSignal: Guard = (v) =>
  isObject(v) &&
  onlyKeys(v, APPROVAL_KEYS) &&
  signalFields(v, true) &&
  oneOf(v.intent, INTENTS) &&
  oneOf(v.side, SIDES) &&
  positive(v.quantity) &&
  nonNegative(v.notional_usd) &&
  positive(v.reference_price) &&
  isFinite(v.kelly_optimal) &&
  isFinite(v.kelly_applied) &&
  nonNegative(v.risk_amount_usd) &&
  typeof v.reduce_only === 'boolean' &&
  epochMs(v.approved_ts) &&
  optional(v.expires_ts, epochMs) &&
  oneOf(v.origin, ORIGINS) &&
  optional(v.exit_reason, (x) => oneOf(x, EXIT_REASONS)) &&
  (v.checks === undefined || checks(v.checks)) &&
  (v.sizing === undefined || sizing(v.sizing));

const REJECTION_KEYS = new Set([...SIGNAL_KEYS, 'signal_ts', 'reasons', 'checks', 'sizing']);

function reasons(v: unknown): boolean {
  if (!Array.isArray(v) || v.length === 0) return false;
  for (const r of v) if (!oneOf(r, REASONS)) return false;
  return true;
}

export const isRiskRejection: Guard = (v) =>
  isObject(v) && onlyKeys(v, REJECTION_KEYS) && signalFields(v, true) && epochMs(v.signal_ts) && reasons(v.reasons) && checks(v.checks) && sizing(v.sizing);

const RESULT_KEYS = new Set([
  'schema_version', 'order_id', 'signal_id', 'symbol', 'side', 'quantity', 'reference_price', 'fill_price', 'slippage_pct',
  'fee_usd', 'fee_rate', 'notional_usd', 'status', 'reject_reason', 'signal_ts', 'ts', 'reduce_only', 'origin', 'exit_reason',
  'quote_side', 'price_age_ms', 'source', 'confidence', 'kelly_applied',
]);

export const isExecutionResult: Guard = (v) =>
  isObject(v) &&
  onlyKeys(v, RESULT_KEYS) &&
  schemaVersion(v.schema_version) &&
  typeof v.order_id === 'string' &&
  ORDER_ID_PATTERN.test(v.order_id) &&
  string(v.signal_id, 1, Number.POSITIVE_INFINITY) &&
  symbol(v.symbol) &&
  oneOf(v.side, SIDES) &&
  nonNegative(v.quantity) &&
  nonNegative(v.reference_price) &&
  nonNegative(v.fill_price) &&
  nonNegative(v.slippage_pct) &&
  nonNegative(v.fee_usd) &&
  nonNegative(v.fee_rate) &&
  nonNegative(v.notional_usd) &&
  oneOf(v.status, STATUSES) &&
  optional(v.reject_reason, (x) => typeof x === 'string') &&
  epochMs(v.signal_ts) &&
  epochMs(v.ts) &&
  typeof v.reduce_only === 'boolean' &&
  oneOf(v.origin, ORIGINS) &&
  optional(v.quote_side, (x) => oneOf(x, QUOTE_SIDES)) &&
  optional(v.price_age_ms, epochMs) &&
  optional(v.exit_reason, (x) => oneOf(x, EXIT_REASONS)) &&
  optional(v.source, (x) => string(x, 1, 64)) &&
  optional(v.confidence, fraction) &&
  optional(v.kelly_applied, isFinite) &&
  (v.status !== 'FILLED' || ((v.quantity as number) > 0 && (v.fill_price as number) > 0 && (v.notional_usd as number) > 0));

const TICK_KEYS = new Set(['schema_version', 'symbol', 'price', 'ts', 'source', 'bid', 'ask', 'bid_size', 'ask_size', 'exchange_ts']);

export const isPriceTick: Guard = (v) =>
  isObject(v) &&
  onlyKeys(v, TICK_KEYS) &&
  schemaVersion(v.schema_version) &&
  symbol(v.symbol) &&
  positive(v.price) &&
  epochMs(v.ts) &&
  oneOf(v.source, TICK_SOURCES) &&
  optional(v.bid, positive) &&
  optional(v.ask, positive) &&
  optional(v.bid_size, positive) &&
  optional(v.ask_size, positive) &&
  optional(v.exchange_ts, epochMs);

const GUARDS = new Map<z.ZodType, Guard>([
  [TradeSignalInput, isTradeSignalInput],
  [RiskApprovedSignal, isRiskApprovedSignal],
  [RiskRejection, isRiskRejection],
  [ExecutionResult, isExecutionResult],
  [PriceTick, isPriceTick],
]);

/** The fast guard of a schema, if it has one. */
export function guardFor(schema: z.ZodType): Guard | undefined {
  return GUARDS.get(schema);
}
