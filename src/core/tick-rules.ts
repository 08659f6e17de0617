/**
 * Market data integrity (SPEC §11, "Prices"): the one rule set every service applies to
 * `market.tick`, so risk, execution and the monitor agree on the latest price by
 * construction (each folds the same stream through the same gate).
 *
 * A tick is, in this order:
 * - refused UNKNOWN_SYMBOL when the symbol is not a configured instrument;
 * - refused BAD_PRICE when its price, rounded to the tick size (half away from zero), is
 *   not a positive multiple of the tick (0.004 at tick 0.01, 1e-300, ...);
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
 * has nothing to jump from and skips it too.
 *
 * Pure: `now` is passed in; the gate's state is plain data with a snapshot form.
 */
import { z } from 'zod';
import { abs, fx, mul, roundToStep, toDecimalString, type Fixed } from './fixed.js';
import type { InstrumentTable } from './instruments.js';
import type { PriceTick } from './messages.js';

export const TICK_REFUSAL_CODES = ['UNKNOWN_SYMBOL', 'BAD_PRICE', 'FUTURE_TS', 'UNCONFIRMED_JUMP'] as const;
export type TickRefusalCode = (typeof TICK_REFUSAL_CODES)[number];

export interface TickRules {
  /** `market.max_clock_skew_ms`: how far in the future a tick's ts may be. */
  maxClockSkewMs: number;
  /** `market.max_tick_jump_pct`: the largest unconfirmed move, as a fraction of the last price. */
  maxJumpPct: number;
}

/** The config defaults (market.max_clock_skew_ms, market.max_tick_jump_pct). */
export const DEFAULT_TICK_RULES: TickRules = { maxClockSkewMs: 5000, maxJumpPct: 0.2 };

export type TickVerdict =
  | { kind: 'accept'; symbol: string; price: Fixed; ts: number }
  | { kind: 'stale' }
  | { kind: 'refuse'; code: TickRefusalCode; reason: string };

interface SymbolState {
  price: Fixed;
  ts: number;
  /** The last refused jump, which the next tick may confirm. */
  candidate: Fixed | null;
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
  private readonly state = new Map<string, SymbolState>();
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
    return { kind: 'accept', symbol: tick.symbol, price, ts: tick.ts };
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
      out[symbol] = { price: s.price.toString(), ts: s.ts, candidate: s.candidate === null ? null : s.candidate.toString() };
    }
    return out;
  }

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
