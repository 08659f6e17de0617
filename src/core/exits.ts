/**
 * Protective exits (docs/exits.md): the pure rules behind stop-loss, take-profit,
 * trailing stop and time limit. No I/O and no clock: prices and `now` are arguments.
 *
 * - An entry arms levels from its signal (`stop_loss`, `take_profit` prices,
 *   `trailing_stop_pct`, `max_hold_ms`), else from the `exits.*` config defaults. A level on
 *   the wrong side of the price is refused in the decision record and not armed, so a typo
 *   can never close a position at once. A later entry into the same position replaces the
 *   levels (its signal, or the defaults, say what protects the whole position now).
 * - `evaluateExit` checks the armed levels against the exit-side price (`exitSidePrice`:
 *   the bid for a long, the ask for a short, the last price without quotes). The trail's
 *   high-water mark moves first, then the levels are checked in a fixed order: stop_loss,
 *   trailing_stop, take_profit, time_limit. So when one tick crosses a stop and a target,
 *   the stop wins: the cautious reading of an ambiguous tick.
 * - A trigger reports the price that crossed, not the level: the close is a market order
 *   filled at the next price execution sees, so a gap through the stop fills worse.
 *
 * Amounts are `Fixed` (exact decimals); comparisons are exact.
 */
import { ONE, fx, mul, toDecimalString, toNumber, type Fixed } from './fixed.js';
import type { CheckEntry, OrderSide, ProtectiveExitReason, TradeSignal } from './messages.js';

export type Direction = 'LONG' | 'SHORT';

/** The `exits` config keys: defaults for signals that carry no level of their own; 0 = off. */
export interface ExitDefaults {
  readonly stop_loss_pct: number;
  readonly take_profit_pct: number;
  readonly trailing_stop_pct: number;
  readonly max_hold_minutes: number;
}

export const NO_EXIT_DEFAULTS: ExitDefaults = Object.freeze({
  stop_loss_pct: 0,
  take_profit_pct: 0,
  trailing_stop_pct: 0,
  max_hold_minutes: 0,
});

/** One position's armed levels; null = not armed. */
export interface ArmedExits {
  /** The signal_id of the entry that armed them (names the protective close, see `protectiveExitSignalId`). */
  readonly entrySignalId: string;
  readonly direction: Direction;
  readonly stopLoss: Fixed | null;
  readonly takeProfit: Fixed | null;
  /** The fraction the trailing stop keeps behind the best price (null: no trailing stop). */
  readonly trailingPct: Fixed | null;
  /** Best exit-side price since the trail was armed: the highest for a long, the lowest for a short. */
  readonly highWater: Fixed | null;
  readonly expiresTs: number | null;
}

export interface ExitTrigger {
  readonly reason: ProtectiveExitReason;
  /** The exit-side price that crossed the level (what a market close would meet). */
  readonly price: Fixed;
  /** The level crossed (for a time limit: null). */
  readonly level: Fixed | null;
}

export interface ExitEvaluation {
  /** The levels after this price (the high-water mark may have moved). */
  readonly levels: ArmedExits;
  /** True when the trailing stop's level moved. */
  readonly trailed: boolean;
  readonly trigger: ExitTrigger | null;
}

/** The `rule` names of exit checks in a decision record. */
export const EXIT_CHECK_RULES = {
  stopLoss: 'exit_stop_loss',
  takeProfit: 'exit_take_profit',
  trailingStop: 'exit_trailing_stop',
  timeLimit: 'exit_time_limit',
} as const;

const MS_PER_MINUTE = 60_000;

export function directionOf(side: OrderSide): Direction {
  return side === 'BUY' ? 'LONG' : 'SHORT';
}

/** The price a close would meet: the bid for a long, the ask for a short, else the last price. */
export function exitSidePrice(quote: { last: Fixed; bid?: Fixed; ask?: Fixed }, direction: Direction): Fixed {
  return (direction === 'LONG' ? quote.bid : quote.ask) ?? quote.last;
}

/** The trailing stop's price level now, or null without a trail. */
export function trailingStopLevel(levels: ArmedExits): Fixed | null {
  if (levels.trailingPct === null || levels.highWater === null) return null;
  const factor = levels.direction === 'LONG' ? ONE - levels.trailingPct : ONE + levels.trailingPct;
  return mul(levels.highWater, factor);
}

/** True when any level is armed. */
export function hasArmedLevel(levels: ArmedExits): boolean {
  return levels.stopLoss !== null || levels.takeProfit !== null || levels.trailingPct !== null || levels.expiresTs !== null;
}

/**
 * The wrong-side problem of a price level, or null when it is on the right side: a long's
 * stop must be below the price and its target above; a short's the other way round.
 */
export function wrongSide(kind: 'stop_loss' | 'take_profit', level: Fixed, direction: Direction, price: Fixed): string | null {
  const mustBeBelow = (kind === 'stop_loss') === (direction === 'LONG');
  if (mustBeBelow ? level < price : level > price) return null;
  return `a ${direction}'s ${kind} must be ${mustBeBelow ? 'below' : 'above'} the price ${toDecimalString(price)}, got ${toDecimalString(level)}`;
}

/** True when an entry would consider any level (the signal carries one, or a default is on). */
export function hasExitInputs(signal: EntryLevelsInput['signal'], defaults: ExitDefaults): boolean {
  return (
    signal.stop_loss !== undefined ||
    signal.take_profit !== undefined ||
    signal.trailing_stop_pct !== undefined ||
    signal.max_hold_ms !== undefined ||
    defaults.stop_loss_pct > 0 ||
    defaults.take_profit_pct > 0 ||
    defaults.trailing_stop_pct > 0 ||
    defaults.max_hold_minutes > 0
  );
}

export interface EntryLevelsInput {
  signal: Pick<TradeSignal, 'signal_id' | 'stop_loss' | 'take_profit' | 'trailing_stop_pct' | 'max_hold_ms'>;
  side: OrderSide;
  /** The price the entry is decided at (exact). */
  price: Fixed;
  defaults: ExitDefaults;
  /** Epoch ms of the entry decision: the time limit counts from here. */
  now: number;
}

/**
 * The levels an entry arms, and one decision-record entry per level considered: passed
 * when armed, failed (with the reason, and "not armed") when on the wrong side. A failed
 * entry adds no reason code: the entry itself is decided by the risk rules as before.
 */
export function resolveEntryLevels({ signal, side, price, defaults, now }: EntryLevelsInput): { levels: ArmedExits; checks: CheckEntry[] } {
  const direction = directionOf(side);
  const long = direction === 'LONG';
  const checks: CheckEntry[] = [];
  const priceNumber = toNumber(price);

  const priceLevel = (kind: 'stop_loss' | 'take_profit', given: number | undefined, defaultPct: number): Fixed | null => {
    const rule = kind === 'stop_loss' ? EXIT_CHECK_RULES.stopLoss : EXIT_CHECK_RULES.takeProfit;
    let level: Fixed;
    let from: string;
    if (given !== undefined) {
      level = fx(given);
      from = 'from the signal';
    } else if (defaultPct > 0) {
      const away = kind === 'stop_loss' ? !long : long; // the target is above for a long, the stop above for a short
      level = mul(price, away ? ONE + fx(defaultPct) : ONE - fx(defaultPct));
      from = `exits.${kind}_pct ${defaultPct} from the price`;
    } else {
      return null;
    }
    const problem = wrongSide(kind, level, direction, price);
    checks.push({
      rule,
      passed: problem === null,
      value: toNumber(level),
      limit: priceNumber,
      note: problem === null ? `armed (${from})` : `${problem}: not armed (${from}); the entry is decided as without it`,
    });
    return problem === null ? level : null;
  };

  const stopLoss = priceLevel('stop_loss', signal.stop_loss, defaults.stop_loss_pct);
  const takeProfit = priceLevel('take_profit', signal.take_profit, defaults.take_profit_pct);

  const trailingPct = signal.trailing_stop_pct ?? (defaults.trailing_stop_pct > 0 ? defaults.trailing_stop_pct : undefined);
  if (trailingPct !== undefined) {
    checks.push({
      rule: EXIT_CHECK_RULES.trailingStop,
      passed: true,
      value: trailingPct,
      limit: null,
      note: `armed ${signal.trailing_stop_pct !== undefined ? 'from the signal' : '(exits.trailing_stop_pct)'}: trails the best price by ${trailingPct}`,
    });
  }

  const holdMs = signal.max_hold_ms ?? (defaults.max_hold_minutes > 0 ? Math.ceil(defaults.max_hold_minutes * MS_PER_MINUTE) : undefined);
  if (holdMs !== undefined) {
    checks.push({
      rule: EXIT_CHECK_RULES.timeLimit,
      passed: true,
      value: holdMs,
      limit: null,
      note: `armed ${signal.max_hold_ms !== undefined ? 'from the signal' : '(exits.max_hold_minutes)'}: closes at ${new Date(now + holdMs).toISOString()}`,
    });
  }

  return {
    levels: {
      entrySignalId: signal.signal_id,
      direction,
      stopLoss,
      takeProfit,
      trailingPct: trailingPct === undefined ? null : fx(trailingPct),
      highWater: trailingPct === undefined ? null : price,
      expiresTs: holdMs === undefined ? null : now + holdMs,
    },
    checks,
  };
}

/** A change of levels (POST /positions/{symbol}/exits): a value sets, null clears, absent keeps. */
export interface LevelPatch {
  stop_loss?: number | null;
  take_profit?: number | null;
  trailing_stop_pct?: number | null;
  max_hold_ms?: number | null;
}

export type PatchResult = { ok: true; levels: ArmedExits } | { ok: false; field: keyof LevelPatch; message: string };

/**
 * Applies a patch to a position's levels, checked against the exit-side `price` now.
 * A new trailing stop starts its high-water mark at `price`; a new time limit counts from `now`.
 */
export function applyLevelPatch(current: ArmedExits, patch: LevelPatch, price: Fixed, now: number): PatchResult {
  let { stopLoss, takeProfit, trailingPct, highWater, expiresTs } = current;
  for (const kind of ['stop_loss', 'take_profit'] as const) {
    const value = patch[kind];
    if (value === undefined) continue;
    let level: Fixed | null = null;
    if (value !== null) {
      level = fx(value);
      const problem = wrongSide(kind, level, current.direction, price);
      if (problem !== null) return { ok: false, field: kind, message: `${kind}: ${problem}` };
    }
    if (kind === 'stop_loss') stopLoss = level;
    else takeProfit = level;
  }
  if (patch.trailing_stop_pct !== undefined) {
    trailingPct = patch.trailing_stop_pct === null ? null : fx(patch.trailing_stop_pct);
    highWater = trailingPct === null ? null : price;
  }
  if (patch.max_hold_ms !== undefined) expiresTs = patch.max_hold_ms === null ? null : now + patch.max_hold_ms;
  return { ok: true, levels: { ...current, stopLoss, takeProfit, trailingPct, highWater, expiresTs } };
}

/**
 * One check of a position's levels at the exit-side `price` and time `now` (see the module
 * comment for the order). Pure: returns the new levels rather than changing them.
 */
export function evaluateExit(levels: ArmedExits, price: Fixed, now: number): ExitEvaluation {
  const long = levels.direction === 'LONG';
  let next = levels;
  let trailed = false;
  if (levels.highWater !== null && (long ? price > levels.highWater : price < levels.highWater)) {
    next = { ...levels, highWater: price };
    trailed = true;
  }
  const stopHit = (level: Fixed | null): boolean => level !== null && (long ? price <= level : price >= level);
  let trigger: ExitTrigger | null = null;
  const trail = trailingStopLevel(next);
  if (stopHit(next.stopLoss)) trigger = { reason: 'stop_loss', price, level: next.stopLoss };
  else if (stopHit(trail)) trigger = { reason: 'trailing_stop', price, level: trail };
  else if (next.takeProfit !== null && (long ? price >= next.takeProfit : price <= next.takeProfit)) {
    trigger = { reason: 'take_profit', price, level: next.takeProfit };
  } else if (next.expiresTs !== null && now >= next.expiresTs) trigger = { reason: 'time_limit', price, level: null };
  return { levels: next, trailed, trigger };
}

/** The longest `entrySignalId` part of a protective close's id (signal ids are at most 128 characters). */
const ENTRY_ID_ROOM = 96;

/**
 * The signal_id of a protective close: derived from the entry that armed the levels, the
 * reason and the attempt (raised only after execution rejected the previous attempt), so a
 * re-fire after a restart repeats the same id and execution's once-per-signal_id guard
 * drops it: a kill -9 never fires an exit twice.
 */
export function protectiveExitSignalId(entrySignalId: string, reason: ProtectiveExitReason, attempt: number): string {
  const entry = entrySignalId.length > ENTRY_ID_ROOM ? entrySignalId.slice(0, ENTRY_ID_ROOM) : entrySignalId;
  return `exit-${reason}-${attempt}-${entry}`;
}

// -- persistence (decimal strings, read back exactly) ---------------------------------

export interface ArmedExitsJson {
  entry_signal_id: string;
  direction: Direction;
  stop_loss: string | null;
  take_profit: string | null;
  trailing_pct: string | null;
  high_water: string | null;
  expires_ts: number | null;
}

const big = (v: Fixed | null): string | null => (v === null ? null : v.toString());
const unbig = (v: string | null): Fixed | null => (v === null ? null : BigInt(v));

export function armedExitsToJson(l: ArmedExits): ArmedExitsJson {
  return {
    entry_signal_id: l.entrySignalId,
    direction: l.direction,
    stop_loss: big(l.stopLoss),
    take_profit: big(l.takeProfit),
    trailing_pct: big(l.trailingPct),
    high_water: big(l.highWater),
    expires_ts: l.expiresTs,
  };
}

export function armedExitsFromJson(j: ArmedExitsJson): ArmedExits {
  return {
    entrySignalId: j.entry_signal_id,
    direction: j.direction,
    stopLoss: unbig(j.stop_loss),
    takeProfit: unbig(j.take_profit),
    trailingPct: unbig(j.trailing_pct),
    highWater: unbig(j.high_water),
    expiresTs: j.expires_ts,
  };
}
