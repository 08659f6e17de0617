import { describe, expect, it } from 'vitest';
import {
  EXIT_CHECK_RULES,
  NO_EXIT_DEFAULTS,
  applyLevelPatch,
  evaluateExit,
  exitSidePrice,
  protectiveExitSignalId,
  resolveEntryLevels,
  trailingStopLevel,
  type ArmedExits,
  type Direction,
} from './exits.js';
import { fx, toNumber } from './fixed.js';
import type { OrderSide, ProtectiveExitReason } from './messages.js';

const T0 = Date.UTC(2026, 0, 1);

function levels(direction: Direction, over: { stop?: number; target?: number; trail?: number; mark?: number; expires?: number } = {}): ArmedExits {
  return {
    entrySignalId: 'entry-1',
    direction,
    stopLoss: over.stop === undefined ? null : fx(over.stop),
    takeProfit: over.target === undefined ? null : fx(over.target),
    trailingPct: over.trail === undefined ? null : fx(over.trail),
    highWater: over.trail === undefined ? null : fx(over.mark ?? 100),
    expiresTs: over.expires ?? null,
  };
}

/** Feeds prices one by one; returns the first trigger (reason and price) and the levels then. */
function run(start: ArmedExits, prices: number[], times: number[] = []) {
  let current = start;
  for (const [i, p] of prices.entries()) {
    const result = evaluateExit(current, fx(p), times[i] ?? T0);
    current = result.levels;
    if (result.trigger) return { reason: result.trigger.reason, price: toNumber(result.trigger.price), at: i, levels: current };
  }
  return { reason: null, price: null, at: -1, levels: current };
}

describe('evaluateExit', () => {
  // Entry at 100 each time.
  const cases: Array<{ name: string; start: ArmedExits; prices: number[]; times?: number[]; reason: ProtectiveExitReason | null; at: number; price?: number }> = [
    { name: 'long stop: fires at the stop', start: levels('LONG', { stop: 95 }), prices: [99, 96, 95], reason: 'stop_loss', at: 2 },
    { name: 'long stop: not above it', start: levels('LONG', { stop: 95 }), prices: [99, 95.01, 120], reason: null, at: -1 },
    { name: 'short stop: fires at the stop', start: levels('SHORT', { stop: 105 }), prices: [101, 105], reason: 'stop_loss', at: 1 },
    { name: 'short stop: not below it', start: levels('SHORT', { stop: 105 }), prices: [104.99, 80], reason: null, at: -1 },
    { name: 'long target', start: levels('LONG', { target: 110 }), prices: [105, 110.5], reason: 'take_profit', at: 1 },
    { name: 'long target: a fall does not take profit', start: levels('LONG', { target: 110 }), prices: [90, 80], reason: null, at: -1 },
    { name: 'short target', start: levels('SHORT', { target: 90 }), prices: [95, 90], reason: 'take_profit', at: 1 },
    { name: 'short target: a rise does not take profit', start: levels('SHORT', { target: 90 }), prices: [110, 120], reason: null, at: -1 },
    // Trailing 5% from entry 100: a rise to 120 lifts the stop to 114; the fall to 114 fires it.
    { name: 'long trailing: in favour then against', start: levels('LONG', { trail: 0.05 }), prices: [110, 120, 115, 114], reason: 'trailing_stop', at: 3 },
    { name: 'long trailing: a dip above the trail holds', start: levels('LONG', { trail: 0.05 }), prices: [120, 114.5, 125], reason: null, at: -1 },
    // Short: a fall to 80 lowers the stop to 84; the rise to 84 fires it.
    { name: 'short trailing: in favour then against', start: levels('SHORT', { trail: 0.05 }), prices: [90, 80, 83, 84], reason: 'trailing_stop', at: 3 },
    { name: 'short trailing: without a move in favour, 5% against', start: levels('SHORT', { trail: 0.05 }), prices: [104, 105], reason: 'trailing_stop', at: 1 },
    { name: 'long time limit', start: levels('LONG', { expires: T0 + 1000 }), prices: [100, 100, 100], times: [T0, T0 + 999, T0 + 1000], reason: 'time_limit', at: 2 },
    { name: 'short time limit', start: levels('SHORT', { expires: T0 + 1000 }), prices: [100, 101], times: [T0 + 500, T0 + 2000], reason: 'time_limit', at: 1 },
    // A gap through the stop reports the price that crossed (the close fills near it), not the stop.
    { name: 'long gap through the stop', start: levels('LONG', { stop: 95 }), prices: [99, 80], reason: 'stop_loss', at: 1, price: 80 },
    { name: 'short gap through the stop', start: levels('SHORT', { stop: 105 }), prices: [130], reason: 'stop_loss', at: 0, price: 130 },
    // Stop and target both crossed by one tick (levels set crossed): the stop wins.
    { name: 'long stop and target in one tick', start: levels('LONG', { stop: 101, target: 100 }), prices: [100.5], reason: 'stop_loss', at: 0 },
    { name: 'short stop and target in one tick', start: levels('SHORT', { stop: 99, target: 100 }), prices: [99.5], reason: 'stop_loss', at: 0 },
    { name: 'stop before the time limit at the same moment', start: levels('LONG', { stop: 95, expires: T0 }), prices: [90], reason: 'stop_loss', at: 0 },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const result = run(c.start, c.prices, c.times);
      expect(result.reason).toBe(c.reason);
      expect(result.at).toBe(c.at);
      if (c.price !== undefined) expect(result.price).toBe(c.price);
    });
  }

  it('moves the high-water mark only in favour, and reports when the trail moved', () => {
    const start = levels('LONG', { trail: 0.1 });
    const up = evaluateExit(start, fx(110), T0);
    expect(up.trailed).toBe(true);
    expect(toNumber(trailingStopLevel(up.levels)!)).toBe(99);
    const down = evaluateExit(up.levels, fx(105), T0);
    expect(down.trailed).toBe(false);
    expect(down.levels.highWater).toBe(fx(110));
  });
});

describe('exitSidePrice', () => {
  it('uses the bid for a long, the ask for a short, the last price without quotes', () => {
    const quoted = { last: fx(100), bid: fx('99.9'), ask: fx('100.1') };
    expect(exitSidePrice(quoted, 'LONG')).toBe(fx('99.9'));
    expect(exitSidePrice(quoted, 'SHORT')).toBe(fx('100.1'));
    expect(exitSidePrice({ last: fx(100) }, 'LONG')).toBe(fx(100));
    expect(exitSidePrice({ last: fx(100), bid: fx(99) }, 'SHORT')).toBe(fx(100));
  });
});

describe('resolveEntryLevels', () => {
  const base = { signal_id: 'sig-1' };
  const cases: Array<{
    name: string;
    side: OrderSide;
    signal: { stop_loss?: number; take_profit?: number; trailing_stop_pct?: number; max_hold_ms?: number };
    defaults?: Partial<typeof NO_EXIT_DEFAULTS>;
    stop: number | null;
    target: number | null;
    refused: string[];
  }> = [
    { name: 'long: stop below, target above are armed', side: 'BUY', signal: { stop_loss: 95, take_profit: 110 }, stop: 95, target: 110, refused: [] },
    { name: 'long: stop above the price is refused', side: 'BUY', signal: { stop_loss: 105, take_profit: 110 }, stop: null, target: 110, refused: [EXIT_CHECK_RULES.stopLoss] },
    { name: 'long: target below the price is refused', side: 'BUY', signal: { take_profit: 90 }, stop: null, target: null, refused: [EXIT_CHECK_RULES.takeProfit] },
    { name: 'long: a stop at the price is refused', side: 'BUY', signal: { stop_loss: 100 }, stop: null, target: null, refused: [EXIT_CHECK_RULES.stopLoss] },
    { name: 'short: stop above, target below are armed', side: 'SELL', signal: { stop_loss: 105, take_profit: 90 }, stop: 105, target: 90, refused: [] },
    { name: 'short: both on the wrong side are refused', side: 'SELL', signal: { stop_loss: 95, take_profit: 110 }, stop: null, target: null, refused: [EXIT_CHECK_RULES.stopLoss, EXIT_CHECK_RULES.takeProfit] },
    { name: 'long: config defaults', side: 'BUY', signal: {}, defaults: { stop_loss_pct: 0.05, take_profit_pct: 0.1 }, stop: 95, target: 110, refused: [] },
    { name: 'short: config defaults', side: 'SELL', signal: {}, defaults: { stop_loss_pct: 0.05, take_profit_pct: 0.1 }, stop: 105, target: 90, refused: [] },
    { name: 'the signal wins over the defaults', side: 'BUY', signal: { stop_loss: 90 }, defaults: { stop_loss_pct: 0.05 }, stop: 90, target: null, refused: [] },
    { name: 'nothing given, defaults off: no levels, no checks', side: 'BUY', signal: {}, stop: null, target: null, refused: [] },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const { levels: armed, checks } = resolveEntryLevels({
        signal: { ...base, ...c.signal },
        side: c.side,
        price: fx(100),
        defaults: { ...NO_EXIT_DEFAULTS, ...c.defaults },
        now: T0,
      });
      expect(armed.stopLoss === null ? null : toNumber(armed.stopLoss)).toBe(c.stop);
      expect(armed.takeProfit === null ? null : toNumber(armed.takeProfit)).toBe(c.target);
      expect(checks.filter((x) => !x.passed).map((x) => x.rule)).toEqual(c.refused);
      for (const check of checks.filter((x) => !x.passed)) expect(check.note).toMatch(/not armed/);
      if (Object.keys(c.signal).length === 0 && c.defaults === undefined) expect(checks).toEqual([]);
    });
  }

  it('arms a trailing stop from the entry price and a time limit from now', () => {
    const { levels: armed } = resolveEntryLevels({
      signal: { ...base, trailing_stop_pct: 0.02, max_hold_ms: 60_000 },
      side: 'BUY',
      price: fx(100),
      defaults: NO_EXIT_DEFAULTS,
      now: T0,
    });
    expect(toNumber(trailingStopLevel(armed)!)).toBe(98);
    expect(armed.expiresTs).toBe(T0 + 60_000);
    const fromDefaults = resolveEntryLevels({ signal: base, side: 'SELL', price: fx(100), defaults: { ...NO_EXIT_DEFAULTS, trailing_stop_pct: 0.1, max_hold_minutes: 2 }, now: T0 });
    expect(toNumber(trailingStopLevel(fromDefaults.levels)!)).toBe(110);
    expect(fromDefaults.levels.expiresTs).toBe(T0 + 120_000);
  });
});

describe('applyLevelPatch', () => {
  it('sets, keeps and clears levels; names the field of a wrong-side level', () => {
    const start = levels('LONG', { stop: 95, target: 110 });
    const moved = applyLevelPatch(start, { stop_loss: 97 }, fx(100), T0);
    expect(moved.ok && toNumber(moved.levels.stopLoss!)).toBe(97);
    expect(moved.ok && toNumber(moved.levels.takeProfit!)).toBe(110);
    const cleared = applyLevelPatch(start, { take_profit: null, trailing_stop_pct: 0.05, max_hold_ms: 1000 }, fx(100), T0);
    expect(cleared.ok && cleared.levels.takeProfit).toBeNull();
    expect(cleared.ok && toNumber(trailingStopLevel(cleared.levels)!)).toBe(95);
    expect(cleared.ok && cleared.levels.expiresTs).toBe(T0 + 1000);
    const wrong = applyLevelPatch(start, { take_profit: 99 }, fx(100), T0);
    expect(wrong).toMatchObject({ ok: false, field: 'take_profit' });
    const wrongShort = applyLevelPatch(levels('SHORT'), { stop_loss: 99 }, fx(100), T0);
    expect(wrongShort).toMatchObject({ ok: false, field: 'stop_loss' });
  });
});

describe('protectiveExitSignalId', () => {
  it('is the same for the same entry, reason and attempt, and fits a signal_id', () => {
    expect(protectiveExitSignalId('sig-1', 'stop_loss', 0)).toBe(protectiveExitSignalId('sig-1', 'stop_loss', 0));
    expect(protectiveExitSignalId('sig-1', 'stop_loss', 0)).not.toBe(protectiveExitSignalId('sig-1', 'stop_loss', 1));
    expect(protectiveExitSignalId('x'.repeat(128), 'trailing_stop', 12).length).toBeLessThanOrEqual(128);
  });
});
