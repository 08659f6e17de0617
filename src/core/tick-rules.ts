/**
 * Market data integrity (SPEC §11, "Prices"): the one rule set every service applies to
 * `market.tick`, so risk, execution and the monitor agree on the latest price by
 * construction (each folds the same stream through the same gate).
 *
 * A tick is, in this order:
 * - refused UNKNOWN_SYMBOL when the symbol is not a configured instrument;
 * - refused BAD_PRICE when its price, rounded to the tick size (half away from zero), is
 *   not a positive multiple of the tick (0.004 at tick 0.01, 1e-300, ...);
 * - refused BAD_QUOTE when it carries a bid and an ask and, put on the tick grid (the bid
 *   rounded down, the ask up: never better than the quote sent), the bid is not positive,
 *   the bid is above the ask, or either is more than `maxJumpPct` from the tick's own
 *   price (a quote that far off its price is a broken producer, not a market). A tick with
 *   only one side carries no quote (fills use its price);
 * - refused FUTURE_TS when its `ts` is more than `maxClockSkewMs` after `now` (a
 *   future-dated tick accepted would outrank every later tick: prices would freeze);
 * - ignored (`stale`, not an error) when older than the last accepted tick: late ticks
 *   lose to newer ones;
 * - refused UNCONFIRMED_JUMP when it is not `manual` and moves more than `maxJumpPct`
 *   from the last accepted price, unless it confirms the previous refused jump.
 *
 * "Confirmed" means: the next tick of the symbol (not stale) lies within `maxJumpPct`
 * of the refused jump's price. That tick is accepted (the market really moved); the
 * refused tick itself stays refused, so a single outlier is never applied and a real
 * move costs one tick of delay. A tick within the band of the last accepted price is
 * accepted as usual and forgets the candidate. A `manual` tick (POST /prices, an
 * operator's price) skips the jump rule but not the others. The first tick of a symbol
 * has nothing to jump from and skips it too: with a live feed no start price is ever
 * accepted, so the venue's first price is taken whatever the configured start price.
 *
 * Pure: `now` is passed in; the gate's state is plain data with a snapshot form.
 */
import { z } from 'zod';
import { abs, ceilToStep, floorToStep, fx, mul, roundToStep, toDecimalString, type Fixed } from './fixed.js';
import type { InstrumentTable } from './instruments.js';
import { MembersCache, VersionedMap } from './json-cache.js';
import type { PriceTick } from './messages.js';

export const TICK_REFUSAL_CODES = ['UNKNOWN_SYMBOL', 'BAD_PRICE', 'BAD_QUOTE', 'FUTURE_TS', 'UNCONFIRMED_JUMP'] as const;
export type TickRefusalCode = (typeof TICK_REFUSAL_CODES)[number];

export interface TickRules {
  /** `market.max_clock_skew_ms`: how far in the future a tick's ts may be. */
  maxClockSkewMs: number;
  /** `market.max_tick_jump_pct`: the largest unconfirmed move, as a fraction of the last price. */
  maxJumpPct: number;
}

/** The config defaults (market.max_clock_skew_ms, market.max_tick_jump_pct). */
export const DEFAULT_TICK_RULES: TickRules = { maxClockSkewMs: 5000, maxJumpPct: 0.2 };

/** Best bid and ask of an accepted tick, exact and on the tick grid. */
export interface TickQuote {
  bid: Fixed;
  ask: Fixed;
}

export type TickVerdict =
  /** `quote` only when the tick carried both a bid and an ask. */
  | { kind: 'accept'; symbol: string; price: Fixed; ts: number; quote?: TickQuote }
  | { kind: 'stale' }
  | { kind: 'refuse'; code: TickRefusalCode; reason: string };

interface SymbolState {
  price: Fixed;
  ts: number;
  /** The last refused jump, which the next tick may confirm. */
  candidate: Fixed | null;
}

function entrySnapshotOf(s: SymbolState): TickGateSnapshot[string] {
  return { price: s.price.toString(), ts: s.ts, candidate: s.candidate === null ? null : s.candidate.toString() };
}

export const TickGateSnapshot = z.record(
  z.string(),
  z.object({ price: z.string(), ts: z.number(), candidate: z.string().nullable() }),
);
export type TickGateSnapshot = z.infer<typeof TickGateSnapshot>;

/** Price and tick checks without state: the rounding every service uses. */
export function checkTickPrice(
  instruments: InstrumentTable,
  symbol: string,
  price: number | Fixed,
): { ok: true; price: Fixed } | { ok: false; code: 'UNKNOWN_SYMBOL' | 'BAD_PRICE'; reason: string } {
  const spec = instruments.get(symbol);
  if (spec === undefined) return { ok: false, code: 'UNKNOWN_SYMBOL', reason: `UNKNOWN_SYMBOL: ${symbol} is not a configured instrument` };
  if (typeof price === 'number' && !Number.isFinite(price)) {
    return { ok: false, code: 'BAD_PRICE', reason: `BAD_PRICE: price for ${symbol} must be a finite number, got ${price}` };
  }
  const exact = typeof price === 'number' ? fx(price) : price;
  const rounded = roundToStep(exact, spec.tickSize);
  if (rounded <= 0n) {
    return {
      ok: false,
      code: 'BAD_PRICE',
      reason: `BAD_PRICE: price ${String(price)} for ${symbol} is not a positive multiple of the tick size ${toDecimalString(spec.tickSize)} after rounding`,
    };
  }
  return { ok: true, price: rounded };
}

/** One gate per service: the per-symbol state of accepted ticks. */
export class TickGate {
  private readonly state = new VersionedMap<string, SymbolState>();
  private readonly maxJump: Fixed;

  constructor(
    private readonly instruments: InstrumentTable,
    private readonly rules: TickRules,
  ) {
    if (!(rules.maxJumpPct > 0) || !Number.isFinite(rules.maxJumpPct)) throw new RangeError('maxJumpPct must be positive');
    this.maxJump = fx(rules.maxJumpPct);
  }

  /** Judges `tick` at `now` and, when accepted, makes it the symbol's latest price. */
  offer(tick: PriceTick, now: number): TickVerdict {
    const checked = checkTickPrice(this.instruments, tick.symbol, tick.price);
    if (!checked.ok) return { kind: 'refuse', code: checked.code, reason: checked.reason };
    const quote = this.checkQuote(tick, checked.price);
    if (quote !== undefined && 'reason' in quote) return { kind: 'refuse', code: 'BAD_QUOTE', reason: quote.reason };
    if (tick.ts > now + this.rules.maxClockSkewMs) {
      return {
        kind: 'refuse',
        code: 'FUTURE_TS',
        reason: `FUTURE_TS: tick ts ${tick.ts} is ${tick.ts - now} ms ahead of this service's clock (max ${this.rules.maxClockSkewMs} ms, market.max_clock_skew_ms)`,
      };
    }
    const price = checked.price;
    const last = this.state.get(tick.symbol);
    if (last !== undefined && tick.ts < last.ts) return { kind: 'stale' };
    if (last !== undefined && tick.source !== 'manual' && !this.within(price, last.price)) {
      const confirms = last.candidate !== null && this.within(price, last.candidate);
      if (!confirms) {
        last.candidate = price;
        this.state.touch();
        return {
          kind: 'refuse',
          code: 'UNCONFIRMED_JUMP',
          reason:
            `UNCONFIRMED_JUMP: ${tick.symbol} ${toDecimalString(price)} moves more than ${this.rules.maxJumpPct * 100}% ` +
            `from the last accepted ${toDecimalString(last.price)} (market.max_tick_jump_pct); accepted once the next tick confirms it`,
        };
      }
    }
    this.state.set(tick.symbol, { price, ts: tick.ts, candidate: null });
    return quote === undefined ? { kind: 'accept', symbol: tick.symbol, price, ts: tick.ts } : { kind: 'accept', symbol: tick.symbol, price, ts: tick.ts, quote };
  }

  /** The tick's bid/ask on the grid, undefined without both sides, or why they are refused. */
  private checkQuote(tick: PriceTick, price: Fixed): TickQuote | { reason: string } | undefined {
    if (tick.bid === undefined || tick.ask === undefined) return undefined;
    const spec = this.instruments.get(tick.symbol)!; // checkTickPrice found it
    const refuse = (why: string) => ({ reason: `BAD_QUOTE: ${tick.symbol} bid ${tick.bid} / ask ${tick.ask}: ${why}` });
    if (!Number.isFinite(tick.bid) || !Number.isFinite(tick.ask)) return refuse('bid and ask must be finite numbers');
    const bid = floorToStep(fx(tick.bid), spec.tickSize);
    const ask = ceilToStep(fx(tick.ask), spec.tickSize);
    if (bid <= 0n) return refuse(`the bid is not positive at tick size ${toDecimalString(spec.tickSize)}`);
    if (bid > ask) return refuse('the bid is above the ask (a crossed book)');
    if (!this.within(bid, price) || !this.within(ask, price)) {
      return refuse(`more than ${this.rules.maxJumpPct * 100}% from the tick's price ${toDecimalString(price)} (market.max_tick_jump_pct)`);
    }
    return { bid, ask };
  }

  /** The latest accepted price, or undefined when none. */
  price(symbol: string): Fixed | undefined {
    return this.state.get(symbol)?.price;
  }

  /** The latest accepted tick's ts, or undefined when none. */
  ts(symbol: string): number | undefined {
    return this.state.get(symbol)?.ts;
  }

  /**
   * The ts for a tick this service makes itself (POST /prices, the simulator): `now`, but
   * never before the last accepted tick, so the gate of every service takes it as newest.
   */
  stampFor(symbol: string, now: number): number {
    const last = this.state.get(symbol)?.ts;
    return last !== undefined && last > now ? last : now;
  }

  /** Seeds a symbol from an older snapshot that predates the gate (no candidate). */
  seed(symbol: string, price: Fixed, ts: number): void {
    this.state.set(symbol, { price, ts, candidate: null });
  }

  toSnapshot(): TickGateSnapshot {
    const out: TickGateSnapshot = {};
    for (const [symbol, s] of this.state) {
      out[symbol] = entrySnapshotOf(s);
    }
    return out;
  }

  /** Exactly JSON.stringify(this.toSnapshot()), each symbol's text kept until its state changes (snapshots are written per batch). */
  toSnapshotJson(): string {
    return this.snapshotText.object(this.state, () => this.toSnapshot());
  }

  private readonly snapshotText = new MembersCache<SymbolState>(
    (s) => JSON.stringify(entrySnapshotOf(s)),
    // `candidate` is set in place: compared by content, cached as a copy.
    (a, b) => a.price === b.price && a.ts === b.ts && a.candidate === b.candidate,
    (s) => ({ ...s }),
  );

  restore(snapshot: TickGateSnapshot): void {
    this.state.clear();
    for (const [symbol, s] of Object.entries(snapshot)) {
      this.state.set(symbol, { price: BigInt(s.price), ts: s.ts, candidate: s.candidate === null ? null : BigInt(s.candidate) });
    }
  }

  /** |price − reference| ≤ maxJump × reference. */
  private within(price: Fixed, reference: Fixed): boolean {
    return abs(price - reference) <= mul(this.maxJump, reference);
  }
}
