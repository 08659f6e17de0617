import { describe, expect, it } from 'vitest';
import { describeEntryState, describeProtections, entryState, type EntryStateInput } from './entry-state.js';

const NOW = Date.UTC(2026, 0, 5, 13, 30);
const hhmm = (ms: number) => new Date(ms).toISOString().slice(11, 16);
const base: EntryStateInput = { trading_state: 'ACTIVE', halt_reason: null, cooldown_until: null, entries_today: 3, max_daily_entries: 20 };

describe('entry state', () => {
  it.each([
    ['nothing blocks', base, 'ACTIVE'],
    ['a cooldown running', { ...base, cooldown_until: NOW + 35 * 60_000 }, 'COOLDOWN until 14:05'],
    ['a cooldown already over', { ...base, cooldown_until: NOW - 1 }, 'ACTIVE'],
    ['the daily limit reached', { ...base, entries_today: 20 }, 'DAILY LIMIT (until 00:00 UTC)'],
    ['the daily limit and a cooldown', { ...base, entries_today: 20, cooldown_until: NOW + 60_000 }, 'DAILY LIMIT (until 00:00 UTC)'],
    ['halted, with everything else too', { ...base, trading_state: 'HALTED', halt_reason: 'drawdown 15.2% >= 15%', entries_today: 25, cooldown_until: NOW + 1 }, 'HALTED (drawdown 15.2% >= 15%)'],
    ['halted without a reason recorded', { ...base, trading_state: 'HALTED' }, 'HALTED (circuit breaker)'],
    // Protections (docs/protections.md).
    ['the kill switch, with its reason', { ...base, trading_state: 'HALTED', halt_reason: 'KILL_SWITCH: news', kill_switch: { reason: 'news', since: NOW - 1 } }, 'HALTED (kill switch: news)'],
    ['the daily loss limit, over the daily entry limit', { ...base, entries_today: 20, daily_loss: { limit_reached: true, resets_at: Date.UTC(2026, 0, 6) } }, 'DAILY LOSS LIMIT (until 00:00 UTC)'],
    ['the daily loss limit not reached', { ...base, daily_loss: { limit_reached: false, resets_at: Date.UTC(2026, 0, 6) } }, 'ACTIVE'],
    ['a lock on every entry, over a cooldown', { ...base, cooldown_until: NOW + 60_000, locks: [{ protection: 'max_drawdown#1', symbol: null, until: NOW + 30 * 60_000 }] }, 'LOCKED by max_drawdown#1 until 14:00'],
    ['a lock on one symbol only', { ...base, locks: [{ protection: 'stoploss_guard#0', symbol: 'BTCUSDT', until: NOW + 60_000 }] }, 'ACTIVE'],
    ['a lock that ended', { ...base, locks: [{ protection: 'max_drawdown#1', symbol: null, until: NOW }] }, 'ACTIVE'],
  ])('%s: %s', (_what, input, label) => {
    expect(describeEntryState(entryState(input, NOW), hhmm)).toBe(label);
  });

  it('the daily limit lifts at the next UTC midnight', () => {
    expect(entryState({ ...base, entries_today: 20 }, NOW).until).toBe(Date.UTC(2026, 0, 6));
  });
});

describe('protections line', () => {
  it.each([
    ['nothing on', {}, null],
    ['the daily loss limit on', { daily_loss: { loss_pct: 0.0123, max_daily_loss_pct: 0.02 } }, 'day loss 1.2% of 2.0%'],
    [
      'a lock and a stopped source',
      { locks: [{ protection: 'stoploss_guard#0', symbol: 'BTCUSDT', until: NOW + 35 * 60_000 }, { protection: 'x#1', symbol: null, until: NOW }], sources: [{ source: 'xgb', stopped_at: NOW - 1 }, { source: 'lr', stopped_at: null }] },
      'BTCUSDT locked by stoploss_guard#0 until 14:05 · source xgb stopped (POST /sources/xgb/resume)',
    ],
  ])('%s', (_what, input, line) => {
    expect(describeProtections(input, NOW, hhmm)).toBe(line);
  });
});
