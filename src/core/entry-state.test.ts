import { describe, expect, it } from 'vitest';
import { describeEntryState, entryState, type EntryStateInput } from './entry-state.js';

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
  ])('%s: %s', (_what, input, label) => {
    expect(describeEntryState(entryState(input, NOW), hhmm)).toBe(label);
  });

  it('the daily limit lifts at the next UTC midnight', () => {
    expect(entryState({ ...base, entries_today: 20 }, NOW).until).toBe(Date.UTC(2026, 0, 6));
  });
});
