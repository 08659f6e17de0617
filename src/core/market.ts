/**
 * The paper market (SPEC §5): current prices for the configured instruments and a
 * seeded random walk. Pure: no timers, no clock, no I/O; the Execution service calls
 * `step(rng)` on its interval and publishes what changed.
 *
 * Prices are exact decimals (`Fixed`, units of 1e-18), always a positive multiple of
 * the instrument's tick size.
 */
import { fx, roundToStep, toDecimalString, toNumber, SCALE, type Fixed } from './fixed.js';
import type { InstrumentSpec, InstrumentTable } from './instruments.js';
import { SCHEMA_VERSION, type PriceTick, type TickSource } from './messages.js';
import type { Random } from './random.js';

/**
 * Where execution gets its mark. The simulator implements it; a real feed plugs in
 * behind the same interface. `undefined` means "no price for this symbol (yet)".
 */
export interface PriceSource {
  price(symbol: string): Fixed | undefined;
}

export type PriceSourceKind = 'simulator' | 'binance';

/** A running source's state, as execution's /health reports it. */
export interface FeedStatus {
  source: PriceSourceKind;
  /** Every connection of the source is open (always true for the simulator). */
  connected: boolean;
  /** Since when the feed has been down (epoch ms); null while connected. */
  down_since: number | null;
  /** How long it has been down, ms (0 while connected). */
  down_ms: number;
  /** Unplanned reconnects (after a drop or an error) since start. */
  reconnects: number;
  /** Planned reconnects (before the venue's connection time limit). */
  planned_reconnects: number;
  /** Detected gaps in the venue's trade ids. */
  gaps: number;
  /** Frames that could not be parsed (logged and skipped). */
  malformed: number;
  /** The last connection error, e.g. "connect ECONNREFUSED 127.0.0.1:9443"; null when none. */
  last_error: string | null;
  /** Per configured symbol: ms since its last message; null before the first. */
  last_message_age_ms: Record<string, number | null>;
}

/** Where a running source delivers its ticks (execution publishes them to market.tick). */
export type TickSink = (ticks: PriceTick[]) => void;

/**
 * A price source the execution service runs: the simulator's timer, or a venue's live
 * feed. It emits ticks until stopped; nothing else in the loop knows which one it is
 * (they all read market.tick). Picked from `market.source` in one factory
 * (src/feeds/factory.ts).
 */
export interface RunningPriceSource extends PriceSource {
  readonly kind: PriceSourceKind;
  start(emit: TickSink): Promise<void>;
  stop(): Promise<void>;
  status(now: number): FeedStatus;
}

/** Best bid and ask, exact, on the tick grid. */
export interface Quote {
  bid: Fixed;
  ask: Fixed;
  bidSize?: Fixed;
  askSize?: Fixed;
}

/**
 * The simulator's synthetic quote around `price`: half the spread on each side, at least
 * one tick each (bid = price − n·tick, ask = price + n·tick, n = ceil(price × spread / 2 /
 * tick)), so `price` stays the mid. Undefined when spreadPct is 0 or the bid would not be
 * positive.
 */
export function syntheticQuote(price: Fixed, spreadPct: Fixed, tickSize: Fixed): Quote | undefined {
  if (spreadPct <= 0n) return undefined;
  const half = (price * spreadPct) / (2n * SCALE);
  const ticks = half <= 0n ? 1n : (half + tickSize - 1n) / tickSize;
  const bid = price - ticks * tickSize;
  if (bid <= 0n) return undefined;
  return { bid, ask: price + ticks * tickSize };
}

export interface PriceChange {
  symbol: string;
  price: Fixed;
}

export type SetPriceResult =
  | { ok: true; symbol: string; price: Fixed }
  | { ok: false; code: 'UNKNOWN_SYMBOL' | 'BAD_PRICE'; message: string };

export interface MarketSimulatorOptions {
  /**
   * Largest relative move per `step`, as a fraction (0.001 = ±0.1 %). Default 0.001.
   * Must be finite and in [0, 1).
   */
  stepPct?: number;
  /**
   * Prices to restore (e.g. the last `market.tick` per symbol). Each is rounded to the
   * tick size like `setPrice`; symbols that are not configured instruments are
   * ignored (the instrument list may have changed since they were recorded); an
   * unusable price (non-positive, below half a tick) throws a RangeError.
   */
  prices?: Iterable<readonly [string, Fixed]>;
}

/** 2^32: random draws are taken as 32-bit integers so the walk stays exact. */
const TWO_32 = 4294967296;
const TWO_32N = 4294967296n;

/**
 * Holds one price per configured instrument and moves them by a uniform random step.
 *
 * `step` draws r uniform in [−stepPct, +stepPct) per instrument (in the table's order,
 * one draw each) and moves the price to price × (1 + r) rounded to the tick size
 * *toward the old price*, so a move never exceeds stepPct of the old price, moves are
 * symmetric, and a price never falls below one tick. The same rng sequence always gives
 * the same walk.
 *
 * `setPrice` returns a result instead of throwing: it is fed by user input
 * (`POST /prices/{symbol}`), and a bad price is a rejection, not a bug.
 */
export class MarketSimulator implements PriceSource {
  private readonly current = new Map<string, Fixed>();
  private readonly specs: InstrumentSpec[];
  /** stepPct in units of 1e-18. */
  private readonly stepFixed: Fixed;

  constructor(
    private readonly instruments: InstrumentTable,
    options: MarketSimulatorOptions = {},
  ) {
    const stepPct = options.stepPct ?? 0.001;
    if (!Number.isFinite(stepPct) || stepPct < 0 || stepPct >= 1) {
      throw new RangeError(`stepPct must be a fraction in [0, 1), got ${stepPct}`);
    }
    this.stepFixed = fx(stepPct);
    this.specs = [...instruments.values()];
    for (const spec of this.specs) {
      const start = roundToStep(spec.startPrice, spec.tickSize);
      this.current.set(spec.symbol, start >= spec.tickSize ? start : spec.tickSize);
    }
    for (const [symbol, price] of options.prices ?? []) {
      if (!instruments.has(symbol)) continue;
      const result = this.setPrice(symbol, price);
      if (!result.ok) throw new RangeError(`cannot restore price: ${result.message}`);
    }
  }

  /** The current price, or undefined for a symbol that is not a configured instrument. */
  price(symbol: string): Fixed | undefined {
    return this.current.get(symbol);
  }

  /** A snapshot copy of all current prices, in the instrument table's order. */
  prices(): Map<string, Fixed> {
    return new Map(this.current);
  }

  /** The current prices without a copy (read-only; for the per-batch snapshot). */
  priceView(): ReadonlyMap<string, Fixed> {
    return this.current;
  }

  /**
   * Sets a price (manual or from a feed), rounded to the nearest tick (half away from
   * zero). Accepts an exact `Fixed` or a JSON number. Rejects, leaving the price
   * unchanged: UNKNOWN_SYMBOL for a symbol that is not configured; BAD_PRICE for a
   * non-finite or non-positive number, or a price that rounds to zero at the tick size.
   */
  setPrice(symbol: string, price: Fixed | number): SetPriceResult {
    const spec = this.instruments.get(symbol);
    if (spec === undefined) {
      return { ok: false, code: 'UNKNOWN_SYMBOL', message: `UNKNOWN_SYMBOL: ${symbol} is not a configured instrument` };
    }
    if (typeof price === 'number' && !Number.isFinite(price)) {
      return { ok: false, code: 'BAD_PRICE', message: `BAD_PRICE: price for ${symbol} must be a finite number, got ${price}` };
    }
    const exact = typeof price === 'number' ? fx(price) : price;
    if (exact <= 0n) {
      return {
        ok: false,
        code: 'BAD_PRICE',
        message: `BAD_PRICE: price for ${symbol} must be positive, got ${toDecimalString(exact)}`,
      };
    }
    const rounded = roundToStep(exact, spec.tickSize);
    if (rounded <= 0n) {
      return {
        ok: false,
        code: 'BAD_PRICE',
        message: `BAD_PRICE: price ${toDecimalString(exact)} for ${symbol} is below half a tick (${toDecimalString(spec.tickSize)})`,
      };
    }
    this.current.set(symbol, rounded);
    return { ok: true, symbol, price: rounded };
  }

  /**
   * Moves every price by one random step (see the class comment) and returns the
   * prices that changed, in the instrument table's order. Takes exactly one draw per
   * instrument from `rng`.
   */
  step(rng: Random): PriceChange[] {
    const changes: PriceChange[] = [];
    const step = this.stepFixed;
    for (const spec of this.specs) {
      const old = this.current.get(spec.symbol)!;
      // k uniform in [0, 2^32); r = step × (2k − 2^32) / 2^32, uniform in [−step, +step).
      const k = BigInt(Math.floor(rng.next() * TWO_32));
      // Raw move = old × r, kept exact in units of 1e-36 × 2^32; dividing by the tick
      // (in the same units) truncates toward zero, i.e. rounds toward the old price.
      const ticks = (old * step * (2n * k - TWO_32N)) / (SCALE * TWO_32N * spec.tickSize);
      if (ticks === 0n) continue;
      let next = old + ticks * spec.tickSize;
      if (next < spec.tickSize) next = spec.tickSize; // unreachable while stepPct < 1; kept as a floor
      if (next === old) continue;
      this.current.set(spec.symbol, next);
      changes.push({ symbol: spec.symbol, price: next });
    }
    return changes;
  }
}

/**
 * Builds a `market.tick` message; the one conversion from exact decimals to the wire's
 * numbers (prices already on the tick grid stay digit for digit).
 */
export function priceTick(
  symbol: string,
  price: Fixed,
  ts: number,
  source: TickSource,
  quote?: Quote,
  exchangeTs?: number,
): PriceTick {
  const tick: PriceTick = { schema_version: SCHEMA_VERSION, symbol, price: toNumber(price), ts, source };
  if (quote !== undefined) {
    tick.bid = toNumber(quote.bid);
    tick.ask = toNumber(quote.ask);
    if (quote.bidSize !== undefined && quote.bidSize > 0n) tick.bid_size = toNumber(quote.bidSize);
    if (quote.askSize !== undefined && quote.askSize > 0n) tick.ask_size = toNumber(quote.askSize);
  }
  if (exchangeTs !== undefined) tick.exchange_ts = exchangeTs;
  return tick;
}

