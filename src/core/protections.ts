/**
 * Protections (docs/protections.md): locks a trader sets once and trusts, after Freqtrade's
 * stackable protections. Pure: closed round trips and `now` in, locks out. The risk
 * service feeds every round trip it sees close on trade.execution.res (timed by the
 * closing fill's ts, so a backtest on a simulated clock gets the same locks) and keeps
 * the locks in its snapshot; the governor refuses an entry under a lock (`LOCKED`).
 *
 * Also here, because they are the same kind of rule over the same round trips and
 * clock: the sliding windows of the rate limits, the UTC day's loss and the per-source
 * drawdown. All comparisons on money are exact (`Fixed`).
 */
import { ONE, ZERO, div, fx, type Fixed } from './fixed.js';
import type { ExitReason } from './messages.js';

export const MS_PER_MINUTE = 60_000;

export type ProtectionKind = 'stoploss_guard' | 'max_drawdown' | 'low_profit' | 'cooldown';

/** One entry of config `protections` (numbers as in config; percentages as fractions). */
export interface ProtectionConfig {
  readonly kind: ProtectionKind;
  /** The window of round trips looked at (minutes before the newest close). */
  readonly lookback_minutes: number;
  /** How many round trips it takes (stoploss_guard: stop-loss exits; max_drawdown, low_profit: at least this many). */
  readonly trade_limit: number;
  /** How long a lock lasts from the close that set it. */
  readonly stop_minutes: number;
  /** stoploss_guard: lock only the symbol (true) or every entry (false). The other kinds ignore it. */
  readonly only_per_symbol: boolean;
  /** max_drawdown: the drawdown over the window above which every entry is locked. */
  readonly max_allowed_drawdown_pct?: number;
  /** low_profit: a symbol whose round trips over the window sum below this (fraction of their entry notionals) is locked. */
  readonly required_profit_pct?: number;
}

/** A closed round trip as the protections see it. */
export interface ClosedTrade {
  readonly symbol: string;
  /** The source of the signal that opened it ('unknown' when the opening approval is not known). */
  readonly source: string;
  /** Epoch ms of its closing fill. */
  readonly closedAt: number;
  /** Net PnL (gross − fees). */
  readonly net: Fixed;
  /** Entry notional: average entry price × the largest size (the base of its profit ratio). */
  readonly entryNotional: Fixed;
  readonly exitReason: ExitReason | null;
  /** The account's realized balance right after the close (the max_drawdown curve). */
  readonly balanceAfter: Fixed;
}

/** An entry lock: one symbol, or every entry (symbol null), until `until` (exclusive). */
export interface Lock {
  /** The protection that set it, e.g. `stoploss_guard#0` (kind and index in config `protections`). */
  readonly protection: string;
  readonly symbol: string | null;
  /** Epoch ms the lock was set (the closing fill's time). */
  readonly since: number;
  /** Epoch ms when entries pass again: the lock holds while now < until. */
  readonly until: number;
  readonly reason: string;
}

export function protectionName(config: ProtectionConfig, index: number): string {
  return `${config.kind}#${index}`;
}

/** A stop-loss exit as stoploss_guard counts it: a stop_loss exit, or a trailing_stop exit that lost. */
export function isStopLossExit(trade: ClosedTrade): boolean {
  return trade.exitReason === 'stop_loss' || (trade.exitReason === 'trailing_stop' && trade.net < ZERO);
}

const pctText = (x: Fixed): string => `${(Number(x) / 1e16).toFixed(2)}%`;

/**
 * The locks set by the close of `trade` (the newest of `trades`, which holds every round
 * trip closed within the longest lookback, oldest first, `trade` included). Each
 * protection looks at the round trips closed in (closedAt − lookback, closedAt].
 */
export function locksAfterClose(configs: readonly ProtectionConfig[], trades: readonly ClosedTrade[], trade: ClosedTrade): Lock[] {
  const locks: Lock[] = [];
  const now = trade.closedAt;
  configs.forEach((config, index) => {
    const from = now - config.lookback_minutes * MS_PER_MINUTE;
    const inWindow = (t: ClosedTrade): boolean => t.closedAt > from && t.closedAt <= now;
    const until = now + Math.ceil(config.stop_minutes * MS_PER_MINUTE);
    const name = protectionName(config, index);
    const lock = (symbol: string | null, reason: string): void => {
      locks.push({ protection: name, symbol, since: now, until, reason });
    };
    switch (config.kind) {
      case 'cooldown':
        lock(trade.symbol, `cooldown after the ${trade.symbol} exit`);
        return;
      case 'stoploss_guard': {
        const perSymbol = config.only_per_symbol;
        const stops = trades.filter((t) => inWindow(t) && isStopLossExit(t) && (!perSymbol || t.symbol === trade.symbol)).length;
        if (isStopLossExit(trade) && stops >= config.trade_limit) {
          lock(perSymbol ? trade.symbol : null, `${stops} stop-loss exits${perSymbol ? ` in ${trade.symbol}` : ''} within ${config.lookback_minutes} min (trade_limit ${config.trade_limit})`);
        }
        return;
      }
      case 'max_drawdown': {
        const window = trades.filter(inWindow);
        if (window.length < config.trade_limit) return;
        const dd = windowDrawdown(window);
        const allowed = fx(config.max_allowed_drawdown_pct ?? 1);
        if (dd > allowed) {
          lock(null, `drawdown ${pctText(dd)} over ${window.length} round trips within ${config.lookback_minutes} min is above ${pctText(allowed)}`);
        }
        return;
      }
      case 'low_profit': {
        const window = trades.filter((t) => inWindow(t) && t.symbol === trade.symbol);
        if (window.length < config.trade_limit) return;
        const profit = profitRatioSum(window);
        const required = fx(config.required_profit_pct ?? 0);
        if (profit < required) {
          lock(trade.symbol, `${trade.symbol} made ${pctText(profit)} over ${window.length} round trips within ${config.lookback_minutes} min (required ${pctText(required)})`);
        }
        return;
      }
    }
  });
  return locks;
}

/**
 * The largest fall of the realized balance from its running peak over the window, as a
 * fraction of that peak; the curve starts at the balance before the window's first close.
 */
export function windowDrawdown(window: readonly ClosedTrade[]): Fixed {
  if (window.length === 0) return ZERO;
  let peak = window[0]!.balanceAfter - window[0]!.net;
  let worst = ZERO;
  for (const t of window) {
    const balance = t.balanceAfter;
    if (balance > peak) peak = balance;
    const dd = peak <= ZERO ? ONE : div(peak - balance, peak);
    if (dd > worst) worst = dd;
  }
  return worst;
}

/** Σ net / entry notional over the round trips (a round trip with no notional counts 0). */
export function profitRatioSum(trades: readonly ClosedTrade[]): Fixed {
  let sum = ZERO;
  for (const t of trades) if (t.entryNotional > ZERO) sum += div(t.net, t.entryNotional);
  return sum;
}

/** The lock that holds an entry in `symbol` at `now`: the one ending last; null when none. */
export function lockFor(locks: readonly Lock[], symbol: string, now: number): Lock | null {
  let found: Lock | null = null;
  for (const lock of locks) {
    if (lock.until <= now || (lock.symbol !== null && lock.symbol !== symbol)) continue;
    if (found === null || lock.until > found.until) found = lock;
  }
  return found;
}

/** Locks still holding at `now`. */
export function activeLocks(locks: readonly Lock[], now: number): Lock[] {
  return locks.filter((l) => l.until > now);
}

/** The longest lookback of the protections, ms (how long closed trades must be kept). */
export function longestLookbackMs(configs: readonly ProtectionConfig[]): number {
  let ms = 0;
  for (const c of configs) ms = Math.max(ms, c.lookback_minutes * MS_PER_MINUTE);
  return ms;
}

// ---------------------------------------------------------------------------------
// Rate limits: sliding windows over the times entries were approved.

/**
 * Entries approved in the sliding window of `windowMs` ending at `now`: approval times t
 * with now − windowMs < t ≤ now. Refusing an entry when this count is already at the
 * limit keeps every half-open window [s, s + windowMs) at or below the limit.
 * `times` is ascending.
 */
export function approvalsInWindow(times: readonly number[], now: number, windowMs: number): number {
  let n = 0;
  for (let i = times.length - 1; i >= 0; i -= 1) {
    const t = times[i]!;
    if (t <= now - windowMs) break;
    if (t <= now) n += 1;
  }
  return n;
}

// ---------------------------------------------------------------------------------
// The UTC day's loss.

/** The day's PnL (equity now − the day's starting equity) and the loss as a fraction of that start (0 when not losing). */
export function dailyLoss(startEquity: Fixed, equity: Fixed): { pnl: Fixed; lossFraction: Fixed } {
  const pnl = equity - startEquity;
  if (pnl >= ZERO) return { pnl, lossFraction: ZERO };
  return { pnl, lossFraction: startEquity <= ZERO ? ONE : div(-pnl, startEquity) };
}

// ---------------------------------------------------------------------------------
// Per-source drawdown: each source's own curve of realized round trips.

export interface SourceCurve {
  /** base + Σ net of the source's round trips. */
  readonly value: Fixed;
  readonly peak: Fixed;
  /** Epoch ms the source was stopped (SOURCE_DRAWDOWN until resumed); null while it trades. */
  readonly stoppedAt: number | null;
  readonly stopReason: string | null;
}

/** A new source's curve starts at `base` (the account's initial balance). */
export function newSourceCurve(base: Fixed): SourceCurve {
  return { value: base, peak: base, stoppedAt: null, stopReason: null };
}

export function sourceDrawdown(curve: SourceCurve): Fixed {
  if (curve.value >= curve.peak) return ZERO;
  if (curve.peak <= ZERO) return ONE;
  return div(curve.peak - curve.value, curve.peak);
}

/** After one of the source's round trips closed: the curve moves; a drawdown above `maxPct` stops it (sticky). */
export function sourceAfterClose(curve: SourceCurve, net: Fixed, closedAt: number, maxPct: Fixed | null): SourceCurve {
  const value = curve.value + net;
  const peak = value > curve.peak ? value : curve.peak;
  const next: SourceCurve = { value, peak, stoppedAt: curve.stoppedAt, stopReason: curve.stopReason };
  if (maxPct === null || next.stoppedAt !== null) return next;
  const dd = sourceDrawdown(next);
  if (dd <= maxPct) return next;
  return { ...next, stoppedAt: closedAt, stopReason: `drawdown ${pctText(dd)} of its round trips from their peak is above ${pctText(maxPct)}` };
}

/** POST /sources/{source}/resume: trading again, the peak restarts at the current value. */
export function resumeSource(curve: SourceCurve): SourceCurve {
  return { value: curve.value, peak: curve.value, stoppedAt: null, stopReason: null };
}
