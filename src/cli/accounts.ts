/**
 * `quantum accounts`: the accounts side by side, read from each account's monitor
 * (GET /portfolio) and risk service (GET /stats) over HTTP.
 */
import type { Config } from '../platform/config.js';
import { collectAccounts, returnOf, type AccountFigures } from '../services/accounts-compare.js';

const pct = (value: number | null): string => (value === null ? '-' : `${(value * 100).toFixed(2)}%`);
const num = (value: number | null, digits = 2): string => (value === null ? '-' : value.toFixed(digits));

/** The comparison table: one column per account. */
export function formatAccounts(accounts: readonly AccountFigures[]): string {
  const reasons = [...new Set(accounts.flatMap((a) => Object.keys(a.rejected_by_reason)))].sort();
  const rows: [string, (a: AccountFigures) => string][] = [
    ['account', (a) => a.name + (a.shadow ? ' (shadow)' : '')],
    ['equity USD', (a) => num(a.equity_usd)],
    ['return', (a) => pct(returnOf(a))],
    ['drawdown', (a) => pct(a.drawdown_pct)],
    ['max drawdown', (a) => pct(a.max_drawdown_pct)],
    ['win rate', (a) => pct(a.win_rate)],
    ['trades', (a) => num(a.closed_trades, 0)],
    ['signals', (a) => num(a.received, 0)],
    ['approval rate', (a) => pct(a.approval_rate)],
    ...reasons.map((reason): [string, (a: AccountFigures) => string] => [`rejected ${reason}`, (a) => String(a.rejected_by_reason[reason] ?? 0)]),
  ];
  const table = rows.map(([label, cell]) => [label, ...accounts.map((a) => (a.error && label !== 'account' ? '?' : cell(a)))]);
  const widths = table[0]!.map((_, column) => Math.max(...table.map((row) => row[column]!.length)));
  const lines = table.map((row) => row.map((cell, column) => (column === 0 ? cell.padEnd(widths[0]!) : cell.padStart(widths[column]!))).join('  '));
  for (const a of accounts) if (a.error) lines.push(`${a.name}: ${a.error}`);
  return lines.join('\n');
}

export async function runAccounts(config: Config, options: { json: boolean }): Promise<number> {
  if (config.accounts.length === 0) {
    console.error('quantum accounts: no accounts in the config (docs/scale-out.md)');
    return 2;
  }
  const figures = await collectAccounts(config);
  console.log(options.json ? JSON.stringify(figures.map((f) => ({ ...f, return: returnOf(f) })), null, 2) : formatAccounts(figures));
  return figures.some((f) => f.error) ? 1 : 0;
}
