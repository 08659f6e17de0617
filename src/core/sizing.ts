/**
 * Kelly position sizing (SPEC §4.6), pure and exact: every quantity is a `Fixed`
 * (bigint units of 1e-18, see fixed.ts), so boundaries such as "exactly the min
 * notional" or "kelly 0.30 × 0.25 = 0.075" compare without float noise.
 */
import { ONE, SCALE, ZERO, abs, div, floorToStep, mul, type Fixed } from './fixed.js';
import type { OrderSide, SizingRecord } from './messages.js';

/** Closed round trips needed before the account's own payoff ratio replaces the signal's. */
export const MIN_ROUND_TRIPS_FOR_PAYOFF = 10;

export type PayoffSource = SizingRecord['b_source'];

/** The account's closed round trips; `sumLosses` is positive (a sum of magnitudes). */
export interface RoundTripStats {
  readonly count: number;
  readonly sumWins: Fixed;
  readonly sumLosses: Fixed;
  readonly wins: number;
  readonly losses: number;
}

export interface Payoff {
  /** b: average win / average loss, >= 0 (0: the account's round trips have no wins). */
  b: Fixed;
  source: PayoffSource;
  /** Set when take-profit / stop-loss were used but sit on the unexpected side of the price. */
  warning?: string;
}

export interface PayoffInput {
  roundTrips: RoundTripStats;
  side: OrderSide;
  price: Fixed;
  takeProfit: Fixed | undefined;
  stopLoss: Fixed | undefined;
}

/**
 * b, in order of preference: the account's average win / average loss once it has at
 * least MIN_ROUND_TRIPS_FOR_PAYOFF round trips with losses (b = 0 when none of them won:
 * the account's record says a win pays nothing, so the edge is negative); else the
 * signal's |take_profit − price| / |price − stop_loss| when both are given and both
 * distances are positive; else 1. With round trips but no loss at all b would be
 * infinite, and the signal's or the default b is used instead (the cautious choice).
 */
export function payoffRatio({ roundTrips: rt, side, price, takeProfit, stopLoss }: PayoffInput): Payoff {
  if (rt.count >= MIN_ROUND_TRIPS_FOR_PAYOFF && rt.losses > 0 && rt.sumLosses > ZERO) {
    if (rt.wins === 0 || rt.sumWins <= ZERO) return { b: ZERO, source: 'round_trips' };
    // (sumWins / wins) / (sumLosses / losses), with a single rounding.
    return { b: div(rt.sumWins * BigInt(rt.losses), rt.sumLosses * BigInt(rt.wins)), source: 'round_trips' };
  }
  if (takeProfit !== undefined && stopLoss !== undefined) {
    const reward = abs(takeProfit - price);
    const risk = abs(price - stopLoss);
    if (reward > ZERO && risk > ZERO) {
      const payoff: Payoff = { b: div(reward, risk), source: 'take_profit_stop_loss' };
      const wrongSide = side === 'BUY' ? !(stopLoss < price && price < takeProfit) : !(takeProfit < price && price < stopLoss);
      if (wrongSide) payoff.warning = `take_profit/stop_loss not on the expected sides of price for a ${side}`;
      return payoff;
    }
  }
  return { b: ONE, source: 'default' };
}

/**
 * kelly_optimal = p − (1 − p) / b, for b > 0. For b = 0 (a win pays nothing) the formula
 * goes to −∞ (0 at p = 1): reported as −1, which no sizing can turn into a stake.
 */
export function kellyOptimal(p: Fixed, b: Fixed): Fixed {
  if (b <= ZERO) return p >= ONE ? ZERO : -ONE;
  return p - div(ONE - p, b);
}

/** kelly_applied = min(kelly_fraction × kelly_optimal, max position fraction). */
export function kellyApplied(optimal: Fixed, kellyFraction: Fixed, maxPositionPct: Fixed): Fixed {
  const scaled = mul(kellyFraction, optimal);
  return scaled < maxPositionPct ? scaled : maxPositionPct;
}

export interface OrderSize {
  quantity: Fixed;
  notional: Fixed;
}

/**
 * The largest quantity on the step grid whose notional at `price` does not exceed
 * `targetNotional` (exact floor, never rounds up); zero when the target is not positive.
 */
export function sizeOrder(targetNotional: Fixed, price: Fixed, stepSize: Fixed): OrderSize {
  if (targetNotional <= ZERO) return { quantity: ZERO, notional: ZERO };
  const quantity = floorToStep((targetNotional * SCALE) / price, stepSize);
  return { quantity, notional: mul(quantity, price) };
}

/** Stop distance as a fraction of price: |price − stop_loss| / price, else the default. */
export function stopDistance(price: Fixed, stopLoss: Fixed | undefined, defaultStopPct: Fixed): Fixed {
  return stopLoss === undefined ? defaultStopPct : div(abs(price - stopLoss), price);
}
