import { describe, expect, it } from 'vitest';
import { fx, toNumber } from './fixed.js';
import type { ExitReason } from './messages.js';
import {
  activeLocks,
  approvalsInWindow,
  dailyLoss,
  lockFor,
  locksAfterClose,
  newSourceCurve,
  profitRatioSum,
  resumeSource,
  sourceAfterClose,
  windowDrawdown,
  type ClosedTrade,
  type Lock,
  type ProtectionConfig,
} from './protections.js';

const MIN = 60_000;
const T0 = Date.UTC(2024, 4, 1, 12);

function trade(over: Partial<Omit<ClosedTrade, 'net' | 'entryNotional' | 'balanceAfter'>> & { net?: number; entry?: number; balance?: number } = {}): ClosedTrade {
  return {
    symbol: over.symbol ?? 'BTCUSDT',
    source: over.source ?? 'xgb',
    closedAt: over.closedAt ?? T0,
    net: fx(over.net ?? -10),
    entryNotional: fx(over.entry ?? 1_000),
    exitReason: over.exitReason === undefined ? 'stop_loss' : over.exitReason,
    balanceAfter: fx(over.balance ?? 10_000),
  };
}

const guard = (over: Partial<ProtectionConfig> = {}): ProtectionConfig => ({
  kind: 'stoploss_guard',
  lookback_minutes: 60,
  trade_limit: 2,
  stop_minutes: 30,
  only_per_symbol: true,
  ...over,
});

/** Locks set by the last of `trades` (all of them in the history). */
const after = (configs: ProtectionConfig[], trades: ClosedTrade[]): Lock[] => locksAfterClose(configs, trades, trades[trades.length - 1]!);

describe('stoploss_guard', () => {
  it.each([
    // [exit reasons, expected locks]
    [['stop_loss'], 0],
    [['stop_loss', 'stop_loss'], 1],
    [['stop_loss', 'take_profit'], 0], // the newest close is no stop: nothing new to count
    [['take_profit', 'stop_loss'], 0],
    [['stop_loss', 'signal', 'stop_loss'], 1],
  ] as Array<[ExitReason[], number]>)('exits %j with trade_limit 2 → %s lock', (exits, n) => {
    const trades = exits.map((exitReason, i) => trade({ exitReason, closedAt: T0 + i * MIN }));
    expect(after([guard()], trades)).toHaveLength(n);
  });

  it('a trailing stop counts only when it lost', () => {
    const lost = [trade({ closedAt: T0 }), trade({ exitReason: 'trailing_stop', net: -1, closedAt: T0 + MIN })];
    const won = [trade({ closedAt: T0 }), trade({ exitReason: 'trailing_stop', net: 5, closedAt: T0 + MIN })];
    expect(after([guard()], lost)).toHaveLength(1);
    expect(after([guard()], won)).toHaveLength(0);
  });

  it.each([
    // the first stop this long before the second: inside (closedAt − lookback, closedAt]?
    [59 * MIN, 1],
    [60 * MIN - 1, 1],
    [60 * MIN, 0],
    [61 * MIN, 0],
  ])('a first stop %s ms before the second, lookback 60 min → %s lock', (gap, n) => {
    expect(after([guard()], [trade({ closedAt: T0 }), trade({ closedAt: T0 + gap })])).toHaveLength(n);
  });

  it('locks the symbol until the close + stop_minutes, named after the protection', () => {
    const [lock] = after([guard()], [trade({ closedAt: T0 }), trade({ closedAt: T0 + MIN })]);
    expect(lock).toMatchObject({ protection: 'stoploss_guard#0', symbol: 'BTCUSDT', since: T0 + MIN, until: T0 + MIN + 30 * MIN });
  });

  it('per symbol counts only the symbol; global counts every symbol and locks everything', () => {
    const trades = [trade({ symbol: 'ETHUSDT', closedAt: T0 }), trade({ closedAt: T0 + MIN })];
    expect(after([guard()], trades)).toHaveLength(0);
    const [lock] = after([guard({ only_per_symbol: false })], trades);
    expect(lock?.symbol).toBeNull();
  });
});

describe('max_drawdown', () => {
  const md = (pct: number, trade_limit = 2): ProtectionConfig => ({
    kind: 'max_drawdown', lookback_minutes: 60, trade_limit, stop_minutes: 10, only_per_symbol: false, max_allowed_drawdown_pct: pct,
  });
  // Balance 10 000 → 9 900 → 9 800: 2 % below the start.
  const trades = [trade({ net: -100, balance: 9_900, closedAt: T0 }), trade({ net: -100, balance: 9_800, closedAt: T0 + MIN })];
  it.each([
    [0.019, 1],
    [0.02, 0], // above the allowed drawdown only
    [0.021, 0],
  ])('allowed %s → %s lock', (pct, n) => {
    expect(after([md(pct)], trades)).toHaveLength(n);
  });
  it('needs trade_limit round trips in the window', () => {
    expect(after([md(0.01, 3)], trades)).toHaveLength(0);
    expect(after([md(0.01, 2)], trades)[0]?.symbol).toBeNull();
  });
  it('measures from the running peak', () => {
    const curve = [trade({ net: 500, balance: 10_500 }), trade({ net: -210, balance: 10_290 })];
    expect(toNumber(windowDrawdown(curve))).toBe(0.02);
  });
});

describe('low_profit', () => {
  const lp = (required: number): ProtectionConfig => ({
    kind: 'low_profit', lookback_minutes: 60, trade_limit: 2, stop_minutes: 10, only_per_symbol: true, required_profit_pct: required,
  });
  // Two round trips of 1 000 notional: +10 and −5 → +0.5 % in sum.
  const trades = [trade({ net: 10, exitReason: 'signal', closedAt: T0 }), trade({ net: -5, exitReason: 'signal', closedAt: T0 + MIN })];
  it.each([
    [0.004, 0],
    [0.005, 0], // below the required sum only
    [0.006, 1],
  ])('required %s → %s lock', (required, n) => {
    expect(after([lp(required)], trades)).toHaveLength(n);
  });
  it('sums the profit ratios', () => {
    expect(toNumber(profitRatioSum(trades))).toBe(0.005);
  });
  it('locks the symbol only, and needs trade_limit round trips of it', () => {
    expect(after([lp(0.02)], trades)[0]?.symbol).toBe('BTCUSDT');
    expect(after([lp(0.02)], [trade({ symbol: 'ETHUSDT', closedAt: T0 }), trade({ closedAt: T0 + MIN })])).toHaveLength(0);
  });
});

describe('cooldown', () => {
  it('any exit locks its symbol for stop_minutes', () => {
    const cd: ProtectionConfig = { kind: 'cooldown', lookback_minutes: 0, trade_limit: 1, stop_minutes: 5, only_per_symbol: true };
    const [lock] = after([cd], [trade({ net: 50, exitReason: 'take_profit' })]);
    expect(lock).toMatchObject({ symbol: 'BTCUSDT', until: T0 + 5 * MIN, protection: 'cooldown#0' });
  });
});

describe('lockFor and activeLocks', () => {
  const locks: Lock[] = [
    { protection: 'a#0', symbol: 'BTCUSDT', since: T0, until: T0 + 1000, reason: '' },
    { protection: 'b#1', symbol: null, since: T0, until: T0 + 500, reason: '' },
  ];
  it.each([
    ['BTCUSDT', T0 + 499, 'a#0'], // the one ending last
    ['ETHUSDT', T0 + 499, 'b#1'],
    ['ETHUSDT', T0 + 500, null], // exactly at its end it passes
    ['BTCUSDT', T0 + 999, 'a#0'],
    ['BTCUSDT', T0 + 1000, null],
  ])('%s at %s → %s', (symbol, now, expected) => {
    expect(lockFor(locks, symbol, now)?.protection ?? null).toBe(expected);
  });
  it('drops ended locks', () => {
    expect(activeLocks(locks, T0 + 500).map((l) => l.protection)).toEqual(['a#0']);
  });
});

describe('approvalsInWindow', () => {
  it.each([
    [[T0 - 1000, T0 - 999, T0], T0, 1000, 2],
    [[T0 - 2000, T0 - 1500], T0, 1000, 0],
    [[T0 + 1], T0, 1000, 0], // not yet
  ])('%j at %s over %s ms → %s', (times, now, windowMs, n) => {
    expect(approvalsInWindow(times, now, windowMs)).toBe(n);
  });

  it('refusing at the limit keeps every 1000 ms window at or below it (a burst of 50, limit 5)', () => {
    const approved: number[] = [];
    // 50 entries, 37 ms apart (a burst spread over ~1.8 s).
    for (let i = 0; i < 50; i += 1) {
      const now = T0 + i * 37;
      if (approvalsInWindow(approved, now, 1000) < 5) approved.push(now);
    }
    for (const start of approved) expect(approved.filter((t) => t >= start && t < start + 1000).length).toBeLessThanOrEqual(5);
    expect(approved).toHaveLength(10);
  });
});

describe('dailyLoss', () => {
  it.each([
    [10_000, 9_700, -300, 0.03],
    [10_000, 10_100, 100, 0],
    [0, -5, -5, 1],
  ])('start %s, equity %s → pnl %s, loss %s', (start, equity, pnl, loss) => {
    const d = dailyLoss(fx(start), fx(equity));
    expect(toNumber(d.pnl)).toBe(pnl);
    expect(toNumber(d.lossFraction)).toBe(loss);
  });
});

describe('source curves', () => {
  const base = newSourceCurve(fx(10_000));
  it.each([
    // a win to 10 100, then a loss: drawdown from 10 100 vs max 10 %
    [-1_010, false], // exactly 10 %: not above
    [-1_011, true],
  ])('after +100 then %s → stopped %s', (loss, stopped) => {
    const up = sourceAfterClose(base, fx(100), T0, fx(0.1));
    const down = sourceAfterClose(up, fx(loss), T0 + 1, fx(0.1));
    expect(down.stoppedAt !== null).toBe(stopped);
    if (stopped) expect(down.stoppedAt).toBe(T0 + 1);
  });
  it('stays stopped after a win; resume restarts the peak at the value', () => {
    const stopped = sourceAfterClose(base, fx(-2_000), T0, fx(0.1));
    const later = sourceAfterClose(stopped, fx(500), T0 + 1, fx(0.1));
    expect(later.stoppedAt).toBe(T0);
    const resumed = resumeSource(later);
    expect(resumed).toMatchObject({ stoppedAt: null, value: fx(8_500), peak: fx(8_500) });
  });
});
