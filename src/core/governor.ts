/**
 * The risk governor (SPEC §4): a pure function from (signal, account view, instrument,
 * price, limits, now) to a decision. It owns no state, does no I/O and reads no clock;
 * the Risk service builds the account view (ledger + in-flight approved orders) and
 * publishes the result. A rejection is data: reason codes plus the decision record.
 *
 * All money, quantity and limit comparisons are in `Fixed` (bigint units of 1e-18), so
 * boundaries are exact: confidence 0.65 vs min 0.65 passes, drawdown 0.15 vs max 0.15
 * trips the breaker. Times are integer epoch milliseconds.
 */
import { ONE, SCALE, ZERO, abs, floorToStep, fx, max, mul, toDecimalString, toNumber, type Fixed } from './fixed.js';
import { NO_EXIT_DEFAULTS, hasExitInputs, resolveEntryLevels, type ExitDefaults } from './exits.js';
import type { InstrumentSpec } from './instruments.js';
import { approvalsInWindow, dailyLoss, type Lock } from './protections.js';
import type {
  CheckEntry,
  ExitReason,
  OrderSide,
  Origin,
  ReasonCode,
  RiskApprovedSignal,
  RiskRejection,
  SizingRecord,
  TradeSignal,
} from './messages.js';
import {
  kellyApplied,
  kellyOptimal,
  payoffRatio,
  sizeOrder,
  stopDistance,
  type OrderSize,
  type RoundTripStats,
} from './sizing.js';

export type { RoundTripStats } from './sizing.js';

export const MS_PER_DAY = 86_400_000;
const MS_PER_MINUTE = 60_000;

/** The UTC day number of an epoch-ms instant (day 0 = 1970-01-01). */
export function utcDay(ms: number): number {
  return Math.floor(ms / MS_PER_DAY);
}

/**
 * What the governor sees of the account. Plain data built by the Risk service from the
 * accounting fold of `trade.execution.res` + `market.tick`, plus the orders it approved
 * that have not filled yet (in-flight orders count everywhere quantities appear).
 */
export interface AccountView {
  readonly equity: Fixed;
  readonly peakEquity: Fixed;
  /** (peak − equity) / peak, as a fraction: fx(0.15) is 15%. */
  readonly drawdown: Fixed;
  /** Trading state HALTED (sticky; the service persists it and leaves it on POST /resume). */
  readonly halted: boolean;
  /** Σ over all symbols of |net quantity incl. in-flight| × reference price. */
  readonly exposure: Fixed;
  /** Signed net quantity in a symbol, in-flight orders included (+ long, − short, 0 flat). */
  netQuantity(symbol: string): Fixed;
  readonly roundTrips: RoundTripStats;
  /** Epoch ms when the last losing round trip closed; null when there was none. */
  readonly lastLossClosedAt: number | null;
  /** Entries approved on that UTC day (see `utcDay`). */
  entriesOnDay(utcDay: number): number;
  // The protections (docs/protections.md); each absent or null = its rule sees nothing.
  /** The operator's kill switch (POST /halt): entries refused KILL_SWITCH with this reason. */
  readonly killSwitch?: { readonly reason: string; readonly since: number } | null;
  /** The equity the UTC day of `now` started at (risk.max_daily_loss_pct). */
  readonly dayStartEquity?: Fixed | null;
  /** When the UTC day of `now` first saw its loss reach risk.max_daily_loss_pct (a tick, a fill or a signal); null: not yet. */
  readonly dailyLossReachedAt?: number | null;
  /** Approval times of the entries in the last minute, ascending (the rate limits). */
  readonly recentEntryTimes?: readonly number[];
  /** Open positions, in-flight orders included (risk.max_open_positions). */
  readonly openPositions?: number;
  /** The lock holding entries in `symbol` at `now` (config `protections`); null when none. */
  lockFor?(symbol: string, now: number): Lock | null;
  /** Why `source` is stopped (risk.max_source_drawdown_pct) until POST /sources/{source}/resume; null when it trades. */
  sourceStop?(source: string): { readonly since: number; readonly reason: string } | null;
}

/** The `risk` config keys the governor uses (numbers as in config; fractions for percentages). */
export interface RiskLimits {
  readonly min_confidence: number;
  readonly max_position_pct: number;
  readonly max_exposure_pct: number;
  readonly max_drawdown_pct: number;
  readonly kelly_fraction: number;
  readonly cooldown_minutes: number;
  readonly max_daily_entries: number;
  readonly min_order_notional_usd: number;
  readonly default_stop_pct: number;
  /**
   * The expiry horizon of an approval (`risk.inflight_timeout_ms`): approvals carry
   * `expires_ts` = decision time + this, after which execution never fills them.
   * Undefined: approvals carry no expiry.
   */
  readonly inflight_timeout_ms?: number;
  /**
   * `risk.max_signal_age_ms`: an entry signal older than this (now − ts), or stamped more
   * than this in the future, is rejected STALE_SIGNAL; 0 or undefined = off. Closes are
   * exempt: a close that waited out an outage still closes (it only lowers risk).
   */
  readonly max_signal_age_ms?: number;
  // Protections (docs/protections.md): 0 or undefined = off.
  /** Entries refused DAILY_LOSS_LIMIT once the UTC day's loss reaches this fraction of its starting equity. */
  readonly max_daily_loss_pct?: number;
  /** At most this many entries approved in any 1000 ms (sliding window); RATE_LIMIT. */
  readonly max_orders_per_second?: number;
  /** At most this many entries approved in any 60 000 ms (sliding window); RATE_LIMIT. */
  readonly max_orders_per_minute?: number;
  /** An entry whose sized notional is above this is refused ORDER_NOTIONAL_LIMIT. */
  readonly max_notional_per_order_usd?: number;
  /** An OPEN when this many positions are open (in flight included) is refused MAX_OPEN_POSITIONS. */
  readonly max_open_positions?: number;
}

export interface DecideInput {
  signal: TradeSignal;
  account: AccountView;
  /** Undefined when the symbol has no instrument spec. */
  instrument: InstrumentSpec | undefined;
  /**
   * Latest market.tick price; undefined when none has been seen yet. With quotes, the
   * side the order would take (the ask for a BUY, the bid for a SELL), so the size is
   * computed at the price execution will fill at.
   */
  price: Fixed | undefined;
  /** How old that tick is (now − tick ts, ms) and the most allowed for an entry (0 = off). */
  priceAge?: { ageMs: number; limitMs: number };
  /** Treated as immutable: converted to exact decimals once per object and cached. */
  limits: RiskLimits;
  /** Epoch ms of the decision. */
  now: number;
  /** Exit-level defaults (config `exits`); none when omitted. */
  exits?: ExitDefaults;
  /**
   * `execution.max_slippage_pct`: entries are checked against the minimum order at the
   * worst fill execution can give them (default 0).
   */
  maxSlippagePct?: number;
}

export type Decision =
  | { kind: 'skip'; reason: 'HOLD' }
  | { kind: 'approve'; message: RiskApprovedSignal }
  | { kind: 'reject'; message: RiskRejection };

/** The `rule` names used in `checks`, in the order they appear. */
export const CHECK_RULES = {
  knownSymbol: 'known_symbol',
  price: 'price',
  openPosition: 'open_position',
  reduceOnlyClose: 'reduce_only_close',
  priceAge: 'price_age',
  signalAge: 'signal_age',
  killSwitch: 'kill_switch',
  confidence: 'confidence',
  circuitBreaker: 'circuit_breaker',
  dailyLoss: 'daily_loss',
  sourceDrawdown: 'source_drawdown',
  lock: 'lock',
  cooldown: 'cooldown',
  dailyEntries: 'daily_entries',
  rateLimit: 'rate_limit',
  openPositions: 'open_positions',
  edge: 'edge',
  position: 'position',
  exposure: 'exposure',
  minNotional: 'min_notional',
  orderNotional: 'order_notional',
} as const;

export type TradingState = 'ACTIVE' | 'HALTED';

/** HALTED once drawdown >= max; stays HALTED (only the service's resume leaves it). */
export function tradingStateAfter(current: TradingState, drawdown: Fixed, maxDrawdown: Fixed): TradingState {
  return current === 'HALTED' || drawdown >= maxDrawdown ? 'HALTED' : 'ACTIVE';
}

// ---------------------------------------------------------------------------------
// Limits in exact decimals, computed once per limits object.

interface CompiledLimits {
  minConfidence: Fixed;
  maxPositionPct: Fixed;
  maxExposurePct: Fixed;
  maxDrawdownPct: Fixed;
  kellyFraction: Fixed;
  /** cooldown_minutes × 60 000, rounded up to whole ms (exact for integer timestamps). */
  cooldownMs: number;
  maxDailyEntries: number;
  minOrderNotional: Fixed;
  defaultStopPct: Fixed;
  /** Null: the rule is off. */
  maxDailyLossPct: Fixed | null;
  maxNotionalPerOrder: Fixed | null;
}

const compiledCache = new WeakMap<RiskLimits, CompiledLimits>();

function compile(limits: RiskLimits): CompiledLimits {
  let c = compiledCache.get(limits);
  if (c) return c;
  const cooldown = fx(limits.cooldown_minutes) * BigInt(MS_PER_MINUTE);
  // For integer now and t: now < t + x  ⇔  now − t < ceil(x).
  const cooldownMs = Number(cooldown / SCALE + (cooldown % SCALE > ZERO ? 1n : 0n));
  c = {
    minConfidence: fx(limits.min_confidence),
    maxPositionPct: fx(limits.max_position_pct),
    maxExposurePct: fx(limits.max_exposure_pct),
    maxDrawdownPct: fx(limits.max_drawdown_pct),
    kellyFraction: fx(limits.kelly_fraction),
    cooldownMs,
    maxDailyEntries: limits.max_daily_entries,
    minOrderNotional: fx(limits.min_order_notional_usd),
    defaultStopPct: fx(limits.default_stop_pct),
    maxDailyLossPct: limits.max_daily_loss_pct ? fx(limits.max_daily_loss_pct) : null,
    maxNotionalPerOrder: limits.max_notional_per_order_usd ? fx(limits.max_notional_per_order_usd) : null,
  };
  compiledCache.set(limits, c);
  return c;
}

// ---------------------------------------------------------------------------------

const usd = (value: Fixed): string => `${toDecimalString(value)} USDT`;

// Conversions at the edge, tuned for `decide`'s hot path (exported for their tests).

const E10 = 10n ** 10n;
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/**
 * `toNumber` with a fast path: a value with at most 8 decimals whose digits fit a safe
 * integer converts as (integer) / 1e8, a correctly rounded division of two exact doubles,
 * which is the same double `toNumber` returns, without building a string. Used for the
 * fields downstream services act on (quantity, notional, price) and the check values.
 */
export function num(value: Fixed): number {
  if (value % E10 === ZERO) {
    const q = value / E10;
    if (q <= MAX_SAFE && q >= -MAX_SAFE) return Number(q) / 1e8;
  }
  return toNumber(value);
}

/**
 * For derived, informational numbers (Kelly values, rooms, risk amount, stop distance):
 * the fast path of `num`, else within one ulp of `toNumber` without building a string.
 */
export function approx(value: Fixed): number {
  if (value % E10 === ZERO) {
    const q = value / E10;
    if (q <= MAX_SAFE && q >= -MAX_SAFE) return Number(q) / 1e8;
  }
  return Number(value) / 1e18;
}

/**
 * `fx` for a JSON number with a fast path: when x has at most 8 decimals (|x| < 1e7, so
 * no other 8-decimal value maps to the same double), round(x × 1e8) is its exact digits.
 */
export function fxNumber(x: number): Fixed {
  if (x < 1e7 && x > -1e7) {
    const n = Math.round(x * 1e8);
    if (n / 1e8 === x) return BigInt(n) * E10;
  }
  return fx(x);
}

/*
 * Messages are built as literals listing every field (not `{ ...signal, ... }`): V8
 * builds a literal in one step but grows a spread copy key by key, which made `decide`
 * four times slower. Optional signal fields the producer left out are present as
 * `undefined`, which JSON.stringify (the bus codec) omits.
 */
function reject(signal: TradeSignal, now: number, reasons: ReasonCode[], checks: CheckEntry[], sizing: SizingRecord | null): Decision {
  return {
    kind: 'reject',
    message: {
      schema_version: signal.schema_version,
      signal_id: signal.signal_id,
      symbol: signal.symbol,
      action: signal.action,
      confidence: signal.confidence,
      source: signal.source,
      ts: now,
      price: signal.price,
      stop_loss: signal.stop_loss,
      take_profit: signal.take_profit,
      trailing_stop_pct: signal.trailing_stop_pct,
      max_hold_ms: signal.max_hold_ms,
      metadata: signal.metadata,
      signal_ts: signal.ts,
      reasons,
      checks,
      sizing,
    },
  };
}

let lastSlippage: { pct: number; fixed: Fixed } = { pct: 0, fixed: ZERO };

/** The slippage fraction in exact decimals (one config value: converted once). */
function maxSlippageOf(pct: number | undefined): Fixed {
  const value = pct ?? 0;
  if (value !== lastSlippage.pct) lastSlippage = { pct: value, fixed: fx(value) };
  return lastSlippage.fixed;
}

/** Decides one signal (SPEC §4, steps 1–8). Never throws for a business outcome. */
export function decide({ signal, account, instrument, price, priceAge, limits, now, exits, maxSlippagePct }: DecideInput): Decision {
  // 1. HOLD: skipped, not a rejection.
  if (signal.action === 'HOLD') return { kind: 'skip', reason: 'HOLD' };

  // 2. Unknown symbol, then no price.
  if (instrument === undefined) {
    return reject(signal, now, ['UNKNOWN_SYMBOL'], [
      { rule: CHECK_RULES.knownSymbol, passed: false, value: signal.symbol, limit: null, note: `no instrument spec for ${signal.symbol}` },
    ], null);
  }
  if (price === undefined || price <= ZERO) {
    return reject(signal, now, ['NO_PRICE'], [
      { rule: CHECK_RULES.price, passed: false, value: price === undefined ? null : num(price), limit: null, note: `no market price for ${signal.symbol} yet` },
    ], null);
  }

  // 3. Intent from the net position, in-flight orders included.
  const net = account.netQuantity(signal.symbol);
  const isClose = signal.action === 'CLOSE' || (net > ZERO && signal.action === 'SELL') || (net < ZERO && signal.action === 'BUY');
  if (isClose) {
    if (net === ZERO) {
      return reject(signal, now, ['NO_POSITION'], [
        { rule: CHECK_RULES.openPosition, passed: false, value: 0, limit: null, note: `CLOSE requested but ${signal.symbol} is flat (in-flight orders included)` },
      ], null);
    }
    return approveClose(signal, net, price, now, expiryOf(limits, now));
  }

  return decideEntry(signal, account, instrument, price, compile(limits), limits, net, now, maxSlippageOf(maxSlippagePct), exits ?? NO_EXIT_DEFAULTS, priceAge);
}

/** When an approval made at `now` expires, or undefined when approvals do not expire. */
function expiryOf(limits: RiskLimits, now: number): number | undefined {
  return limits.inflight_timeout_ms === undefined ? undefined : now + limits.inflight_timeout_ms;
}

// 4. A close is reduce-only and always approved: no risk gate may trap a trader in a position.
function approveClose(signal: TradeSignal, net: Fixed, price: Fixed, now: number, expiresTs: number | undefined): Decision {
  const quantity = abs(net);
  const long = net > ZERO;
  const side: OrderSide = long ? 'SELL' : 'BUY';
  const origin: Origin =
    signal.source === 'manual_close' ? 'manual_close' : signal.source === 'protective_exit' ? 'protective_exit' : 'signal';
  // A protective close gets its own reason (stop_loss, ...) from the risk service that fires it.
  const exitReason: ExitReason = origin === 'manual_close' ? 'manual' : 'signal';
  const why = signal.action === 'CLOSE' ? 'CLOSE requested' : `${signal.action} signal against a ${long ? 'LONG' : 'SHORT'} position`;
  const quantityNumber = num(quantity);
  return {
    kind: 'approve',
    message: {
      schema_version: signal.schema_version,
      signal_id: signal.signal_id,
      symbol: signal.symbol,
      action: signal.action,
      confidence: signal.confidence,
      source: signal.source,
      ts: signal.ts,
      price: signal.price,
      stop_loss: signal.stop_loss,
      take_profit: signal.take_profit,
      trailing_stop_pct: signal.trailing_stop_pct,
      max_hold_ms: signal.max_hold_ms,
      metadata: signal.metadata,
      intent: 'CLOSE',
      side,
      quantity: quantityNumber,
      notional_usd: num(mul(quantity, price)),
      reference_price: num(price),
      kelly_optimal: 0,
      kelly_applied: 0,
      risk_amount_usd: 0,
      reduce_only: true,
      approved_ts: now,
      expires_ts: expiresTs,
      origin,
      exit_reason: exitReason,
      checks: [
        {
          rule: CHECK_RULES.reduceOnlyClose,
          passed: true,
          value: quantityNumber,
          limit: quantityNumber,
          note: `${why}: ${side} the whole ${long ? 'LONG' : 'SHORT'} ${toDecimalString(quantity)} ${signal.symbol} (in-flight orders included); reduce-only, entry rules do not apply`,
        },
      ],
      sizing: null,
    },
  };
}

// 5–8. An entry (OPEN / INCREASE) must pass every rule; all failures are collected.
// Each rule group below adds its reason codes and its checks, in the order of CHECK_RULES.

/** What the entry rules share: the signal, the account and the limits. */
interface EntryContext {
  signal: TradeSignal;
  account: AccountView;
  instrument: InstrumentSpec;
  price: Fixed;
  L: CompiledLimits;
  limits: RiskLimits;
  net: Fixed;
  now: number;
  /** The largest adverse slippage a fill may get (execution.max_slippage_pct). */
  maxSlippage: Fixed;
  /** How old the price is and the most allowed for an entry; undefined: not checked. */
  priceAge: DecideInput['priceAge'];
  reasons: ReasonCode[];
  checks: CheckEntry[];
}

function decideEntry(
  signal: TradeSignal,
  account: AccountView,
  instrument: InstrumentSpec,
  price: Fixed,
  L: CompiledLimits,
  limits: RiskLimits,
  net: Fixed,
  now: number,
  maxSlippage: Fixed,
  exitDefaults: ExitDefaults,
  priceAge: DecideInput['priceAge'],
): Decision {
  const ctx: EntryContext = { signal, account, instrument, price, L, limits, net, now, maxSlippage, priceAge, reasons: [], checks: [] };
  checkPriceAge(ctx);
  checkSignalAge(ctx);
  checkKillSwitch(ctx);
  const p = checkConfidence(ctx);
  checkCircuitBreaker(ctx);
  checkDailyLoss(ctx);
  checkSourceDrawdown(ctx);
  checkLock(ctx);
  checkCooldown(ctx);
  checkDailyEntries(ctx);
  checkRateLimits(ctx);
  checkOpenPositions(ctx);
  const edge = checkEdge(ctx, p);
  const size = checkSize(ctx, edge);
  checkOrderNotional(ctx, size);
  checkExitLevels(ctx, exitDefaults);
  const sizing = sizingRecord(ctx, edge, size);
  if (ctx.reasons.length > 0) return reject(signal, now, ctx.reasons, ctx.checks, sizing);
  return approveEntry(ctx, edge, size, sizing);
}

/**
 * Stale price (only when a limit is set): no entry on a price older than the limit;
 * exactly at the limit passes. Closes never get here.
 */
function checkPriceAge({ signal, priceAge, reasons, checks }: EntryContext): void {
  if (priceAge === undefined || priceAge.limitMs <= 0) return;
  const fresh = priceAge.ageMs <= priceAge.limitMs;
  if (!fresh) reasons.push('STALE_PRICE');
  const check: CheckEntry = { rule: CHECK_RULES.priceAge, passed: fresh, value: priceAge.ageMs, limit: priceAge.limitMs };
  if (!fresh) check.note = `latest ${signal.symbol} tick is ${priceAge.ageMs} ms old (market.stale_after_ms ${priceAge.limitMs}): is the price feed down?`;
  checks.push(check);
}

/** Signal age: a signal exactly max_signal_age_ms old passes; off when the limit is 0. */
function checkSignalAge({ signal, limits, now, reasons, checks }: EntryContext): void {
  const maxAge = limits.max_signal_age_ms ?? 0;
  if (maxAge <= 0) return;
  const age = now - signal.ts;
  const ok = age <= maxAge && -age <= maxAge;
  if (!ok) reasons.push('STALE_SIGNAL');
  const entry: CheckEntry = { rule: CHECK_RULES.signalAge, passed: ok, value: age, limit: maxAge };
  if (!ok) {
    entry.note =
      age > maxAge
        ? `signal is ${age} ms old (risk.max_signal_age_ms ${maxAge}): it waited too long to be traded`
        : `signal is stamped ${-age} ms in the future (more than risk.max_signal_age_ms ${maxAge})`;
  }
  checks.push(entry);
}

/** Confidence: exactly the minimum passes. Returns p in exact decimals. */
function checkConfidence({ signal, L, limits, reasons, checks }: EntryContext): Fixed {
  const p = fxNumber(signal.confidence);
  const ok = p >= L.minConfidence;
  if (!ok) reasons.push('LOW_CONFIDENCE');
  checks.push({ rule: CHECK_RULES.confidence, passed: ok, value: signal.confidence, limit: limits.min_confidence });
  return p;
}

/** Circuit breaker: halted, or drawdown at or beyond the maximum. */
function checkCircuitBreaker({ account, L, limits, reasons, checks }: EntryContext): void {
  const ok = !account.halted && account.drawdown < L.maxDrawdownPct;
  if (!ok) reasons.push('CIRCUIT_BREAKER');
  const breaker: CheckEntry = { rule: CHECK_RULES.circuitBreaker, passed: ok, value: approx(account.drawdown), limit: limits.max_drawdown_pct };
  if (!ok) {
    breaker.note = `${account.halted ? 'trading HALTED (leave with POST /resume)' : 'drawdown reached the maximum'}; equity ${usd(account.equity)}, peak ${usd(account.peakEquity)}`;
  }
  checks.push(breaker);
}

/** Cooldown after a losing round trip (timed by its closing fill): exactly at its end it passes. */
function checkCooldown({ account, L, limits, now, reasons, checks }: EntryContext): void {
  const lastLoss = account.lastLossClosedAt;
  const ok = lastLoss === null || now - lastLoss >= L.cooldownMs;
  if (!ok) reasons.push('COOLDOWN');
  const cooldown: CheckEntry = {
    rule: CHECK_RULES.cooldown,
    passed: ok,
    value: lastLoss === null ? null : (now - lastLoss) / MS_PER_MINUTE,
    limit: limits.cooldown_minutes,
  };
  cooldown.note =
    lastLoss === null
      ? 'no losing round trip'
      : ok
        ? 'minutes since the last losing round trip'
        : `minutes since the last losing round trip; cooling down until ${new Date(lastLoss + L.cooldownMs).toISOString()}`;
  checks.push(cooldown);
}

/** Daily entries (UTC day of `now`): the max-th entry passes, the next one fails. */
function checkDailyEntries({ account, L, limits, now, reasons, checks }: EntryContext): void {
  const day = utcDay(now);
  const entriesToday = account.entriesOnDay(day);
  const ok = entriesToday < L.maxDailyEntries;
  if (!ok) reasons.push('DAILY_LIMIT');
  const daily: CheckEntry = { rule: CHECK_RULES.dailyEntries, passed: ok, value: entriesToday, limit: limits.max_daily_entries };
  if (!ok) daily.note = `entries already approved on UTC day ${new Date(day * MS_PER_DAY).toISOString().slice(0, 10)}; the count restarts at 00:00 UTC`;
  checks.push(daily);
}

// -- protections (docs/protections.md): each adds a check only when it is on ----------

const isoTime = (ms: number): string => new Date(ms).toISOString();

/** Kill switch (POST /halt): every entry is refused with the operator's reason until POST /resume. */
function checkKillSwitch({ account, reasons, checks }: EntryContext): void {
  const halt = account.killSwitch;
  if (!halt) return;
  reasons.push('KILL_SWITCH');
  checks.push({ rule: CHECK_RULES.killSwitch, passed: false, value: halt.since, limit: null, note: `halted by the operator: ${halt.reason} (since ${isoTime(halt.since)}; leave with POST /resume)` });
}

/** Daily loss: refused once the UTC day's loss (realized + unrealized) reaches the limit, for the rest of that day; just below passes. */
function checkDailyLoss({ account, L, limits, now, reasons, checks }: EntryContext): void {
  const maxLoss = L.maxDailyLossPct;
  const start = account.dayStartEquity;
  if (maxLoss === null || start === undefined || start === null) return;
  const { pnl, lossFraction } = dailyLoss(start, account.equity);
  // Once reached the limit holds for the rest of the UTC day, even if prices recover.
  const reachedAt = account.dailyLossReachedAt ?? null;
  const ok = lossFraction < maxLoss && reachedAt === null;
  if (!ok) reasons.push('DAILY_LOSS_LIMIT');
  const next = (utcDay(now) + 1) * MS_PER_DAY;
  const reached = reachedAt === null ? '' : `; the limit was reached at ${isoTime(reachedAt)}`;
  checks.push({
    rule: CHECK_RULES.dailyLoss,
    passed: ok,
    value: approx(lossFraction),
    limit: limits.max_daily_loss_pct ?? null,
    note: `UTC day PnL ${usd(pnl)} from a starting equity of ${usd(start)}${reached}${ok ? '' : `; entries refused until ${isoTime(next)}`}`,
  });
}

/** Per-source drawdown: a stopped source is refused until POST /sources/{source}/resume. */
function checkSourceDrawdown({ signal, account, reasons, checks }: EntryContext): void {
  const stop = account.sourceStop?.(signal.source);
  if (!stop) return;
  reasons.push('SOURCE_DRAWDOWN');
  checks.push({
    rule: CHECK_RULES.sourceDrawdown,
    passed: false,
    value: signal.source,
    limit: null,
    note: `source ${signal.source} stopped at ${isoTime(stop.since)}: ${stop.reason}; resume with POST /sources/${signal.source}/resume`,
  });
}

/** Locks set by the protections: held while now < until (exactly at the end it passes). */
function checkLock({ signal, account, now, reasons, checks }: EntryContext): void {
  const lock = account.lockFor?.(signal.symbol, now);
  if (!lock) return;
  reasons.push('LOCKED');
  checks.push({
    rule: CHECK_RULES.lock,
    passed: false,
    value: lock.protection,
    limit: lock.until,
    note: `${lock.symbol === null ? 'every entry' : lock.symbol} locked by ${lock.protection} until ${isoTime(lock.until)}: ${lock.reason}`,
  });
}

/** Rate limits over entries approved: the limit-th entry in a window passes, the next one fails. */
function checkRateLimits({ account, limits, now, reasons, checks }: EntryContext): void {
  if (!limits.max_orders_per_second && !limits.max_orders_per_minute) return;
  const times = account.recentEntryTimes ?? [];
  let refused = false;
  const windows: Array<[number | undefined, number, string]> = [
    [limits.max_orders_per_second, 1000, 'risk.max_orders_per_second'],
    [limits.max_orders_per_minute, MS_PER_MINUTE, 'risk.max_orders_per_minute'],
  ];
  for (const [limit, windowMs, key] of windows) {
    if (!limit) continue;
    const count = approvalsInWindow(times, now, windowMs);
    const ok = count < limit;
    if (!ok) refused = true;
    const entry: CheckEntry = { rule: CHECK_RULES.rateLimit, passed: ok, value: count, limit };
    entry.note = `entries approved in the last ${windowMs} ms (${key})`;
    checks.push(entry);
  }
  if (refused) reasons.push('RATE_LIMIT');
}

/** Open positions: an OPEN with max_open_positions already open is refused; an INCREASE passes. */
function checkOpenPositions({ account, limits, net, reasons, checks }: EntryContext): void {
  const max = limits.max_open_positions;
  if (!max) return;
  const open = account.openPositions ?? 0;
  const ok = net !== ZERO || open < max;
  if (!ok) reasons.push('MAX_OPEN_POSITIONS');
  const entry: CheckEntry = { rule: CHECK_RULES.openPositions, passed: ok, value: open, limit: max };
  if (!ok) entry.note = `${open} positions open (in-flight orders included): no new one`;
  checks.push(entry);
}

/** Order notional: the sized order above risk.max_notional_per_order_usd is refused; exactly at it passes. */
function checkOrderNotional({ L, limits, reasons, checks }: EntryContext, size: Size): void {
  const max = L.maxNotionalPerOrder;
  if (max === null) return;
  const notional = size.order.notional;
  const ok = notional <= max;
  if (!ok) reasons.push('ORDER_NOTIONAL_LIMIT');
  const entry: CheckEntry = { rule: CHECK_RULES.orderNotional, passed: ok, value: num(notional), limit: limits.max_notional_per_order_usd ?? null };
  if (!ok) entry.note = `the sized order ${usd(notional)} is above the per-order cap`;
  checks.push(entry);
}

interface Edge {
  ok: boolean;
  payoff: ReturnType<typeof payoffRatio>;
  optimal: Fixed;
  applied: Fixed;
  stopLoss: Fixed | undefined;
}

/** Edge: Kelly with p = confidence and b from round trips / take-profit & stop-loss / 1. */
function checkEdge({ signal, account, price, L, reasons, checks }: EntryContext, p: Fixed): Edge {
  const side = signal.action as OrderSide;
  const stopLoss = signal.stop_loss === undefined ? undefined : fxNumber(signal.stop_loss);
  const payoff = payoffRatio({
    roundTrips: account.roundTrips,
    side,
    price,
    takeProfit: signal.take_profit === undefined ? undefined : fxNumber(signal.take_profit),
    stopLoss,
  });
  const optimal = kellyOptimal(p, payoff.b);
  const ok = optimal > ZERO;
  if (!ok) reasons.push('NEGATIVE_EDGE');
  const applied = kellyApplied(optimal, L.kellyFraction, L.maxPositionPct);
  const edge: CheckEntry = { rule: CHECK_RULES.edge, passed: ok, value: approx(optimal), limit: 0 };
  if (!ok || payoff.warning !== undefined) {
    // On success the sizing record carries p and b; explain them here when it matters.
    edge.note = `kelly_optimal = p − (1 − p)/b with p=${signal.confidence}, b=${approx(payoff.b)} (${payoff.source})${payoff.warning ? `; ${payoff.warning}` : ''}`;
  }
  checks.push(edge);
  return { ok, payoff, optimal, applied, stopLoss };
}

interface Size {
  order: OrderSize;
  target: Fixed;
  symbolRoom: Fixed;
  exposureRoom: Fixed;
}

/**
 * The lowest notional a fill of `quantity` can have: BUY fills at or above the mark; a
 * SELL fills as low as mark × (1 − max slippage) rounded down to the tick. An order whose
 * worst case is below the minimum would be rejected MIN_NOTIONAL by execution.
 */
function worstNotional(quantity: Fixed, ctx: EntryContext): Fixed {
  if (ctx.signal.action !== 'SELL') return mul(quantity, ctx.price);
  const lowest = floorToStep(mul(ctx.price, ONE - ctx.maxSlippage), ctx.instrument.tickSize);
  return mul(quantity, lowest);
}

/** Rooms: per symbol and in total, each must leave at least one minimum order (at the worst fill). */
function checkSize(ctx: EntryContext, edge: Edge): Size {
  const { signal, account, instrument, price, L, limits, net, reasons, checks } = ctx;
  const equity = account.equity;
  const symbolNotional = mul(abs(net), price);
  const symbolRoom = mul(L.maxPositionPct, equity) - symbolNotional;
  const exposureRoom = mul(L.maxExposurePct, equity) - account.exposure;
  const minNotional = max(instrument.minNotional, L.minOrderNotional);
  const step = instrument.stepSize;

  const kellyTarget = mul(edge.applied, equity);
  let target = kellyTarget;
  if (symbolRoom < target) target = symbolRoom;
  if (exposureRoom < target) target = exposureRoom;
  if (target < ZERO) target = ZERO;
  const order = sizeOrder(target, price, step);
  const fits = (o: OrderSize): boolean => o.quantity > ZERO && worstNotional(o.quantity, ctx) >= minNotional;
  const orderOk = fits(order);

  let positionOk = symbolRoom >= minNotional;
  let exposureOk = exposureRoom >= minNotional;
  let belowMinOrder = false;
  let minNote: string | undefined;
  if (!orderOk) {
    if (!edge.ok) {
      minNote = 'nothing to size: no positive edge';
    } else if (fits(sizeOrder(kellyTarget, price, step))) {
      // The Kelly target alone would make a valid order: the binding room(s) made it too small.
      if (!fits(sizeOrder(symbolRoom, price, step))) positionOk = false;
      if (!fits(sizeOrder(exposureRoom, price, step))) exposureOk = false;
      minNote = `capped by the ${!positionOk && !exposureOk ? 'symbol and exposure rooms' : !positionOk ? 'symbol room' : 'exposure room'} below one minimum order`;
    } else {
      // The Kelly target itself (or one step at this price) is below the minimum order;
      // when a room is already too small, that room is the reason given.
      belowMinOrder = positionOk && exposureOk;
      minNote = `Kelly target ${usd(kellyTarget)} rounds to ${toDecimalString(sizeOrder(kellyTarget, price, step).quantity)} at step ${toDecimalString(step)}: below one minimum order at the worst fill`;
    }
  }
  if (!positionOk) reasons.push('POSITION_LIMIT');
  if (!exposureOk) reasons.push('EXPOSURE_LIMIT');
  if (belowMinOrder) reasons.push('BELOW_MIN_ORDER');

  // Values are fractions of equity (display only: the decisions above are exact).
  const equityPositive = equity > ZERO;
  const position: CheckEntry = {
    rule: CHECK_RULES.position,
    passed: positionOk,
    value: equityPositive ? Number(symbolNotional) / Number(equity) : null,
    limit: limits.max_position_pct,
  };
  if (!positionOk) {
    position.note = `${signal.symbol} notional ${usd(symbolNotional)} of equity ${usd(equity)}; room ${usd(symbolRoom)}, min order ${usd(minNotional)}`;
  }
  checks.push(position);
  const exposure: CheckEntry = {
    rule: CHECK_RULES.exposure,
    passed: exposureOk,
    value: equityPositive ? Number(account.exposure) / Number(equity) : null,
    limit: limits.max_exposure_pct,
  };
  if (!exposureOk) {
    exposure.note = `exposure ${usd(account.exposure)} of equity ${usd(equity)}; room ${usd(exposureRoom)}, min order ${usd(minNotional)}`;
  }
  checks.push(exposure);
  const minCheck: CheckEntry = { rule: CHECK_RULES.minNotional, passed: orderOk, value: num(worstNotional(order.quantity, ctx)), limit: num(minNotional) };
  if (minNote !== undefined) minCheck.note = minNote;
  checks.push(minCheck);
  return { order, target, symbolRoom, exposureRoom };
}

/**
 * Exit levels (core/exits.ts): a wrong-side level is a failed entry here and is not
 * armed, but adds no reason code: the entry is decided by the rules above alone.
 */
function checkExitLevels({ signal, price, now, checks }: EntryContext, exitDefaults: ExitDefaults): void {
  if (!hasExitInputs(signal, exitDefaults)) return;
  const side = signal.action as OrderSide; // BUY or SELL here: HOLD and CLOSE are handled before
  for (const check of resolveEntryLevels({ signal, side, price, defaults: exitDefaults, now }).checks) checks.push(check);
}

function sizingRecord({ signal, account, price, L, limits, instrument }: EntryContext, edge: Edge, size: Size): SizingRecord {
  return {
    p: signal.confidence,
    b: approx(edge.payoff.b),
    b_source: edge.payoff.source,
    kelly_fraction: limits.kelly_fraction,
    kelly_optimal: approx(edge.optimal),
    kelly_applied: approx(edge.applied),
    equity_usd: approx(account.equity),
    symbol_room_usd: approx(size.symbolRoom),
    exposure_room_usd: approx(size.exposureRoom),
    target_notional_usd: approx(size.target),
    reference_price: num(price),
    step_size: num(instrument.stepSize),
    stop_distance_pct: approx(stopDistance(price, edge.stopLoss, L.defaultStopPct)),
  };
}

function approveEntry({ signal, price, L, limits, net, now, checks }: EntryContext, edge: Edge, size: Size, sizing: SizingRecord): Decision {
  const { order } = size;
  const stop = stopDistance(price, edge.stopLoss, L.defaultStopPct);
  return {
    kind: 'approve',
    message: {
      schema_version: signal.schema_version,
      signal_id: signal.signal_id,
      symbol: signal.symbol,
      action: signal.action,
      confidence: signal.confidence,
      source: signal.source,
      ts: signal.ts,
      price: signal.price,
      stop_loss: signal.stop_loss,
      take_profit: signal.take_profit,
      trailing_stop_pct: signal.trailing_stop_pct,
      max_hold_ms: signal.max_hold_ms,
      metadata: signal.metadata,
      intent: net === ZERO ? 'OPEN' : 'INCREASE',
      side: signal.action as OrderSide,
      quantity: num(order.quantity),
      notional_usd: num(order.notional),
      reference_price: sizing.reference_price,
      kelly_optimal: sizing.kelly_optimal,
      kelly_applied: sizing.kelly_applied,
      risk_amount_usd: approx(mul(order.notional, stop)),
      reduce_only: false,
      approved_ts: now,
      expires_ts: expiryOf(limits, now),
      origin: 'signal',
      checks,
      sizing,
    },
  };
}
