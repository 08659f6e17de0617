import { describe, expect, it } from 'vitest';
import { returnOf, type AccountFigures } from '../services/accounts-compare.js';
import { formatAccounts } from './accounts.js';

const figures = (over: Partial<AccountFigures>): AccountFigures => ({
  name: 'a',
  shadow: false,
  error: null,
  equity_usd: 10_500,
  initial_balance_usd: 10_000,
  drawdown_pct: 0.01,
  max_drawdown_pct: 0.032,
  win_rate: 0.5,
  closed_trades: 4,
  approval_rate: 0.75,
  received: 8,
  rejected_by_reason: { LOW_CONFIDENCE: 2 },
  ...over,
});

describe('quantum accounts table', () => {
  it('puts the accounts side by side, one row per figure and per rejection reason', () => {
    const text = formatAccounts([
      figures({}),
      figures({ name: 'shadow', shadow: true, equity_usd: 9_000, rejected_by_reason: { MAX_EXPOSURE: 1 } }),
    ]);
    expect(text.split('\n')).toEqual([
      'account                         a  shadow (shadow)',
      'equity USD               10500.00          9000.00',
      'return                      5.00%          -10.00%',
      'drawdown                    1.00%            1.00%',
      'max drawdown                3.20%            3.20%',
      'win rate                   50.00%           50.00%',
      'trades                          4                4',
      'signals                         8                8',
      'approval rate              75.00%           75.00%',
      'rejected LOW_CONFIDENCE         2                0',
      'rejected MAX_EXPOSURE           0                1',
    ]);
  });

  it('marks an account that does not answer, and says why', () => {
    const text = formatAccounts([figures({ error: 'not answering (connect ECONNREFUSED)', equity_usd: null })]);
    expect(text).toMatch(/^equity USD\s+\?$/m);
    expect(text).toMatch(/^a: not answering \(connect ECONNREFUSED\)$/m);
    expect(returnOf({ equity_usd: null, initial_balance_usd: 1 })).toBeNull();
  });
});
