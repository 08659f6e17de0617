/**
 * Paper fills (SPEC §5): the pure core of the Execution service.
 *
 * A fill takes the latest mark, applies an adverse slippage, rounds to the tick (BUY
 * up, SELL down, so rounding never helps the trader) and charges a fee. Slippage and
 * fee are models behind narrow interfaces with one parameter object each, picked from
 * config by `createFillModels` and nowhere else.
 *
 * All arithmetic is exact (`Fixed`, units of 1e-18); numbers appear only in the
 * returned `ExecutionResult`. Randomness is `keyedRandom(seed, signal_id)`, so a
 * signal gets the same fill whatever was filled before it, and a restart changes no
 * fill. A bad order is a REJECTED result, never an exception; exceptions are kept for
 * bugs (a model breaking its contract).
 */
import { div, floorToStep, fx, mul, toDecimalString, toNumber, ONE, SCALE, type Fixed } from './fixed.js';
import type { InstrumentSpec } from './instruments.js';
import { SCHEMA_VERSION, type ExecutionResult, type OrderSide, type QuoteSide, type RiskApprovedSignal } from './messages.js';
import { keyedRandom, type Random } from './random.js';

// ---------------------------------------------------------------------------------
// Models

export interface SlippageParams {
  side: OrderSide;
  /** The mark the fill is priced from (> 0). */
  mark: Fixed;
  /** Keyed to the order's signal: draw from it, never from anything shared. */
  rng: Random;
  instrument: InstrumentSpec;
}

/**
 * Returns the slippage fraction s (ONE = 100 %), 0 <= s < 1. It is always against the
 * trader: `paperFill` applies BUY × (1 + s) and SELL × (1 − s). A negative or >= 1
 * value is a bug in the model and makes `paperFill` throw a RangeError.
 */
export interface SlippageModel {
  slippage(params: SlippageParams): Fixed;
}

export interface FeeParams {
  /** Fill price × filled quantity, USD (> 0). */
  notional: Fixed;
  side: OrderSide;
  instrument: InstrumentSpec;
}

export interface FeeQuote {
  /** USD, >= 0. */
  fee: Fixed;
  /** The rate applied, as a fraction (reported as `fee_rate`). */
  rate: Fixed;
}

/** A negative fee is a bug in the model and makes `paperFill` throw a RangeError. */
export interface FeeModel {
  fee(params: FeeParams): FeeQuote;
}

export interface FillModels {
  slippage: SlippageModel;
  fee: FeeModel;
}

const TWO_32 = 4294967296;

/**
 * The default: s uniform in [0, maxPct) — one 32-bit draw scaled exactly,
 * floor((maxPct × k) / 2^32) for k uniform in [0, 2^32).
 */
export class UniformAdverseSlippage implements SlippageModel {
  /** maxPct in units of 1e-18. */
  readonly max: Fixed;

  constructor(maxPct: number) {
    if (!Number.isFinite(maxPct) || maxPct < 0 || maxPct >= 1) {
      throw new RangeError(`max slippage must be a fraction in [0, 1), got ${maxPct}`);
    }
    this.max = fx(maxPct);
  }

  slippage({ rng }: SlippageParams): Fixed {
    return (this.max * BigInt(Math.floor(rng.next() * TWO_32))) >> 32n;
  }
}

/** 1e-8 USD in units of 1e-36 (the scale of notional × rate before rounding). */
const FEE_QUANTUM = 10n ** 28n;
const FEE_HALF = FEE_QUANTUM / 2n;
/** 1e-8 USD in units of 1e-18. */
const FEE_UNIT = 10n ** 10n;

/**
 * The default: a flat taker fee, fee = notional × rate computed exactly, then rounded
 * to 1e-8 USD half up (0.000000005 → 0.00000001). Notionals are positive, so half up
 * and half away from zero agree.
 */
export class TakerFee implements FeeModel {
  /** The rate in units of 1e-18. */
  readonly rate: Fixed;

  constructor(rate: number) {
    if (!Number.isFinite(rate) || rate < 0 || rate >= 1) {
      throw new RangeError(`fee rate must be a fraction in [0, 1), got ${rate}`);
    }
    this.rate = fx(rate);
  }

  fee({ notional }: FeeParams): FeeQuote {
    return { fee: ((notional * this.rate + FEE_HALF) / FEE_QUANTUM) * FEE_UNIT, rate: this.rate };
  }
}

/** The `execution` config keys the fill models read (structurally `Config['execution']`). */
export interface FillModelConfig {
  fee_rate: number;
  max_slippage_pct: number;
}

/**
 * The one place that picks fill models from config. Today there is one of each; a new
 * model (e.g. depth-based slippage, maker/taker tiers) is chosen here by a config key.
 * Throws a RangeError on an out-of-range rate (config is validated before this).
 */
export function createFillModels(config: FillModelConfig): FillModels {
  return {
    slippage: new UniformAdverseSlippage(config.max_slippage_pct),
    fee: new TakerFee(config.fee_rate),
  };
}

// ---------------------------------------------------------------------------------
// Order ids

/**
 * `PAPER-` + 12 lowercase hex digits, from keyedRandom(seed, 'order:' + signalId):
 * the same signal always gets the same order id (idempotent across restarts). The
 * 48 bits come from two 24-bit draws.
 */
export function orderIdFor(seed: number | string, signalId: string): string {
  const rng = keyedRandom(seed, `order:${signalId}`);
  const hi = Math.floor(rng.next() * 0x1000000);
  const lo = Math.floor(rng.next() * 0x1000000);
  return `PAPER-${hex6(hi)}${hex6(lo)}`;
}

function hex6(value: number): string {
  return (value + 0x1000000).toString(16).slice(1);
}

// ---------------------------------------------------------------------------------
// Fills

/** Why a paper order was rejected; `reject_reason` is `CODE: human text`. */
export const FILL_REJECT_CODES = [
  'UNKNOWN_SYMBOL',
  'NO_PRICE',
  'BAD_QUANTITY',
  'MIN_NOTIONAL',
  'EXPIRED',
  'PRICE_DEVIATION',
  'NOT_REDUCING',
] as const;
export type FillRejectCode = (typeof FILL_REJECT_CODES)[number];

/** The code of a `reject_reason` ("NO_PRICE: ..." → "NO_PRICE"), or undefined. */
export function rejectCodeOf(reason: string | undefined): FillRejectCode | undefined {
  if (reason === undefined) return undefined;
  const colon = reason.indexOf(':');
  const code = colon < 0 ? reason : reason.slice(0, colon);
  return (FILL_REJECT_CODES as readonly string[]).includes(code) ? (code as FillRejectCode) : undefined;
}

export interface PaperFillParams {
  order: RiskApprovedSignal;
  /** The latest mark (last price) for order.symbol (from a PriceSource); undefined when none yet. */
  mark: Fixed | undefined;
  /** Best bid and ask of the latest tick, when it carried quotes: a BUY fills from the ask, a SELL from the bid. */
  bid?: Fixed;
  ask?: Fixed;
  /** When the latest tick was made (epoch ms): the result's `price_age_ms` is now − priceTs. */
  priceTs?: number;
  /** The spec of order.symbol; undefined when the symbol is not configured. */
  instrument: InstrumentSpec | undefined;
  seed: number | string;
  models: FillModels;
  /** Epoch ms, becomes the result's `ts`; an order past its `expires_ts` is not filled. */
  now: number;
  /**
   * `execution.max_price_deviation_pct` as a fraction: a fill further than this from the
   * approval's reference_price is REJECTED PRICE_DEVIATION. Undefined: no check.
   */
  maxPriceDeviation?: Fixed;
}

/**
 * Fills one approved order on paper. Never throws for a bad order; checks, in order:
 *
 * - EXPIRED: `now` is past the order's `expires_ts` (risk stopped counting it in flight).
 * - UNKNOWN_SYMBOL: no instrument spec.
 * - NO_PRICE: no mark, a non-positive mark, or a mark so small a SELL rounds to 0.
 * - BAD_QUANTITY: quantity not a positive finite number, or 0 once rounded down to
 *   the step size (a quantity off the step is rounded down, not rejected).
 * - MIN_NOTIONAL: fill notional below the instrument's min notional, unless the order
 *   is reduce_only (a close must never be trapped by a minimum).
 * - PRICE_DEVIATION (checked before MIN_NOTIONAL): with `maxPriceDeviation`, a fill price
 *   further than that fraction from the order's `reference_price`.
 * (NOT_REDUCING is the execution service's own check against its fold of positions.)
 *
 * The mark below is the price the fill starts from (`priceToFillFrom`): the ask for a
 * BUY and the bid for a SELL when the latest tick carried quotes, else the last price;
 * `quote_side` says which, `price_age_ms` how old that tick was.
 *
 * FILLED: `quantity` is the filled (step-rounded) quantity; `reference_price` the mark;
 * `fill_price` mark × (1 ± s) rounded to the tick against the trader; `slippage_pct`
 * the realized |fill − mark| / mark after rounding, as a fraction (0.0005 = 0.05 %),
 * so it can exceed the model's max by up to one tick / mark; `notional_usd` fill ×
 * quantity; `fee_usd`/`fee_rate` from the fee model.
 *
 * REJECTED: `reject_reason` "CODE: text"; `quantity` echoes the requested quantity
 * (0 when it is not a non-negative finite number); `reference_price` the mark when it
 * is positive, else 0; fill price, slippage, fee, fee rate and notional are 0.
 *
 * Throws a RangeError only when a model breaks its contract (slippage outside [0, 1),
 * negative fee): that is a bug, not an order problem.
 */
export function paperFill(params: PaperFillParams): ExecutionResult {
  const { order, instrument } = params;
  const { price: mark, quoteSide } = priceToFillFrom(params);
  const expires = order.expires_ts;
  if (expires !== undefined && params.now > expires) {
    return rejected(
      params,
      `EXPIRED: the approval expired at ${new Date(expires).toISOString()} (${params.now - expires} ms ago); risk no longer counts it in flight`,
    );
  }
  if (instrument === undefined) {
    return rejected(params, `UNKNOWN_SYMBOL: ${order.symbol} is not a configured instrument`);
  }
  if (mark === undefined || mark <= 0n) {
    return rejected(
      params,
      mark === undefined
        ? `NO_PRICE: no price for ${order.symbol} yet`
        : `NO_PRICE: price for ${order.symbol} is not positive (${toDecimalString(mark)})`,
    );
  }
  const requested = order.quantity;
  if (typeof requested !== 'number' || !Number.isFinite(requested) || requested <= 0) {
    return rejected(params, `BAD_QUANTITY: quantity must be a positive finite number, got ${String(requested)}`);
  }
  const requestedFixed = fx(requested);
  const quantity = floorToStep(requestedFixed, instrument.stepSize);
  if (quantity <= 0n) {
    return rejected(
      params,
      `BAD_QUANTITY: quantity ${requested} rounds down to 0 at step size ${toDecimalString(instrument.stepSize)} for ${order.symbol}`,
    );
  }

  const { side } = order;
  const s = params.models.slippage.slippage({ side, mark, rng: keyedRandom(params.seed, order.signal_id), instrument });
  if (s < 0n || s >= ONE) throw new RangeError(`slippage model returned ${toDecimalString(s)}, outside [0, 1)`);

  // mark × (1 ± s) is exact in units of 1e-36; divide by the tick in the same units,
  // rounding BUY up and SELL down (both against the trader).
  const tickScaled = instrument.tickSize * SCALE;
  let fillPrice: Fixed;
  if (side === 'BUY') {
    const raw = mark * (ONE + s);
    const q = raw / tickScaled;
    fillPrice = (q * tickScaled === raw ? q : q + 1n) * instrument.tickSize;
  } else {
    fillPrice = ((mark * (ONE - s)) / tickScaled) * instrument.tickSize;
    if (fillPrice <= 0n) {
      return rejected(
        params,
        `NO_PRICE: price ${toDecimalString(mark)} for ${order.symbol} is too small to sell at tick size ${toDecimalString(instrument.tickSize)}`,
      );
    }
  }

  // The price risk sized with is the approval's reference_price: a fill far from it (the
  // mark moved, or a bad tick reached one side only) must not happen at any size.
  if (params.maxPriceDeviation !== undefined && order.reference_price > 0) {
    const reference = fx(order.reference_price);
    const deviation = div(fillPrice > reference ? fillPrice - reference : reference - fillPrice, reference);
    if (deviation > params.maxPriceDeviation) {
      return rejected(
        params,
        `PRICE_DEVIATION: fill price ${toDecimalString(fillPrice)} is ${toDecimalString(deviation * 100n)}% from the approval's reference price ` +
          `${toDecimalString(reference)} (max ${toDecimalString(params.maxPriceDeviation * 100n)}%, execution.max_price_deviation_pct)`,
      );
    }
  }

  // Tick and step have few decimals, so this product is exact in practice; if not it
  // rounds at the 18th decimal.
  const notional = mul(fillPrice, quantity);
  if (!order.reduce_only && notional < instrument.minNotional) {
    return rejected(
      params,
      `MIN_NOTIONAL: notional ${toDecimalString(notional)} USD is below the minimum ${toDecimalString(instrument.minNotional)} USD for ${order.symbol}`,
    );
  }

  const fee = params.models.fee.fee({ notional, side, instrument });
  if (fee.fee < 0n || fee.rate < 0n) {
    throw new RangeError(`fee model returned fee ${toDecimalString(fee.fee)} at rate ${toDecimalString(fee.rate)}; must be >= 0`);
  }
  const slipped = fillPrice > mark ? fillPrice - mark : mark - fillPrice;

  return {
    schema_version: SCHEMA_VERSION,
    order_id: orderIdFor(params.seed, order.signal_id),
    signal_id: order.signal_id,
    symbol: order.symbol,
    side,
    quantity: quantity === requestedFixed ? requested : fastNumber(quantity),
    reference_price: fastNumber(mark),
    fill_price: fastNumber(fillPrice),
    slippage_pct: slipped === 0n ? 0 : fastNumber(div(slipped, mark)),
    fee_usd: fastNumber(fee.fee),
    fee_rate: fastNumber(fee.rate),
    notional_usd: fastNumber(notional),
    status: 'FILLED',
    signal_ts: order.ts,
    ts: params.now,
    reduce_only: order.reduce_only,
    origin: order.origin,
    quote_side: quoteSide,
    price_age_ms: params.priceTs === undefined ? undefined : Math.max(0, params.now - params.priceTs),
    exit_reason: order.exit_reason,
    // attributionOf's fields as a literal: a spread here cost a key-by-key copy per fill.
    source: order.source,
    confidence: order.confidence,
    kelly_applied: order.kelly_applied,
  };
}

/**
 * The price a fill starts from: with quotes, the side the trader takes (a BUY lifts
 * the ask, a SELL hits the bid: top of book, no depth, no queue); without them, the
 * last price (today's rule).
 */
export function priceToFillFrom(params: Pick<PaperFillParams, 'order' | 'mark' | 'bid' | 'ask'>): { price: Fixed | undefined; quoteSide: QuoteSide } {
  if (params.order.side === 'BUY' && params.ask !== undefined && params.ask > 0n) return { price: params.ask, quoteSide: 'ask' };
  if (params.order.side === 'SELL' && params.bid !== undefined && params.bid > 0n) return { price: params.bid, quoteSide: 'bid' };
  return { price: params.mark, quoteSide: 'last' };
}

/** True once `now` is past the order's `expires_ts` (never for an order without one). */
export function isExpired(order: RiskApprovedSignal, now: number): boolean {
  return order.expires_ts !== undefined && now > order.expires_ts;
}

/** A REJECTED result for `order` with `reason` ("CODE: text"), as paperFill words its own. */
export function paperReject(params: Pick<PaperFillParams, 'order' | 'mark' | 'seed' | 'now'>, reason: string): ExecutionResult {
  return rejected(params, reason);
}

function rejected(params: Pick<PaperFillParams, 'order' | 'mark' | 'seed' | 'now'>, reason: string): ExecutionResult {
  const { order, mark } = params;
  const q = order.quantity;
  return {
    schema_version: SCHEMA_VERSION,
    order_id: orderIdFor(params.seed, order.signal_id),
    signal_id: order.signal_id,
    symbol: order.symbol,
    side: order.side,
    quantity: typeof q === 'number' && Number.isFinite(q) && q >= 0 ? q : 0,
    reference_price: mark !== undefined && mark > 0n ? toNumber(mark) : 0,
    fill_price: 0,
    slippage_pct: 0,
    fee_usd: 0,
    fee_rate: 0,
    notional_usd: 0,
    status: 'REJECTED',
    reject_reason: reason,
    signal_ts: order.ts,
    ts: params.now,
    reduce_only: order.reduce_only,
    origin: order.origin,
    exit_reason: order.exit_reason,
    ...attributionOf(order),
  };
}

/** What a result carries of its order's signal, for the monitor's attribution (rl.feedback). */
function attributionOf(order: RiskApprovedSignal): Pick<ExecutionResult, 'source' | 'confidence' | 'kelly_applied'> {
  return { source: order.source, confidence: order.confidence, kelly_applied: order.kelly_applied };
}

/** 2^53: integers up to this convert to a double exactly. */
const MAX_EXACT = 9007199254740992n;
const E10 = 10n ** 10n;

/**
 * Same result as `toNumber` (the double nearest the exact decimal), without the
 * decimal-string round trip in the common cases. Dividing an exactly representable
 * integer m by an exactly representable power of ten is one correctly rounded IEEE
 * operation, i.e. the double nearest m / 10^d: exactly what parsing the decimal gives.
 * Covers values below ~0.009 (d = 18) and values with at most 8 decimals below ~9e7
 * (d = 8: prices, notionals, fees); anything else takes the string path.
 */
function fastNumber(value: Fixed): number {
  if (value <= MAX_EXACT && value >= -MAX_EXACT) return Number(value) / 1e18;
  if (value % E10 === 0n) {
    const m = value / E10;
    if (m <= MAX_EXACT && m >= -MAX_EXACT) return Number(m) / 1e8;
  }
  return toNumber(value);
}
