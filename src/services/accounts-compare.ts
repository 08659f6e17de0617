/**
 * The accounts compared (`quantum accounts`, the dashboard's accounts view): each account's
 * figures read from its monitor (GET /portfolio) and risk service (GET /stats) over HTTP.
 */
import { accountRuns, type Config } from '../platform/config.js';

export interface AccountFigures {
  name: string;
  shadow: boolean;
  /** Null when the account's services did not answer (with why). */
  error: string | null;
  equity_usd: number | null;
  initial_balance_usd: number | null;
  drawdown_pct: number | null;
  /** The largest drawdown from peak the account's risk service has seen (its /stats). */
  max_drawdown_pct: number | null;
  win_rate: number | null;
  closed_trades: number | null;
  approval_rate: number | null;
  received: number | null;
  rejected_by_reason: Record<string, number>;
}

/** Return on the initial balance, as a fraction. */
export function returnOf(figures: Pick<AccountFigures, 'equity_usd' | 'initial_balance_usd'>): number | null {
  if (figures.equity_usd === null || !figures.initial_balance_usd) return null;
  return figures.equity_usd / figures.initial_balance_usd - 1;
}

async function getJson(url: string, token: string | undefined): Promise<Record<string, unknown>> {
  const response = await fetch(url, { headers: token ? { authorization: `Bearer ${token}` } : {}, signal: AbortSignal.timeout(3000) });
  if (!response.ok) throw new Error(`${url} answered ${response.status}`);
  return (await response.json()) as Record<string, unknown>;
}

const numberOr = (value: unknown): number | null => (typeof value === 'number' && Number.isFinite(value) ? value : null);

export async function collectAccounts(config: Config): Promise<AccountFigures[]> {
  const host = config.host === '0.0.0.0' ? '127.0.0.1' : config.host;
  return Promise.all(
    accountRuns(config).map(async (run): Promise<AccountFigures> => {
      const base = { name: run.name, shadow: run.shadow };
      try {
        const [portfolio, stats] = await Promise.all([
          getJson(`http://${host}:${run.config.ports.monitor}/portfolio`, run.config.api_token),
          getJson(`http://${host}:${run.config.ports.risk}/stats`, run.config.api_token),
        ]);
        const counts = (stats.counts ?? {}) as Record<string, unknown>;
        return {
          ...base,
          error: null,
          equity_usd: numberOr(portfolio.equity_usd),
          initial_balance_usd: numberOr(portfolio.initial_balance_usd),
          drawdown_pct: numberOr(portfolio.drawdown_pct),
          max_drawdown_pct: numberOr(stats.max_drawdown_pct),
          win_rate: numberOr(portfolio.win_rate),
          closed_trades: numberOr(portfolio.closed_trades),
          approval_rate: numberOr(stats.approval_rate),
          received: numberOr(counts.received),
          rejected_by_reason: Object.fromEntries(
            Object.entries((counts.rejected_by_reason ?? {}) as Record<string, unknown>).filter((e): e is [string, number] => typeof e[1] === 'number'),
          ),
        };
      } catch (err) {
        const empty = { equity_usd: null, initial_balance_usd: null, drawdown_pct: null, max_drawdown_pct: null, win_rate: null, closed_trades: null, approval_rate: null, received: null };
        return { ...base, ...empty, rejected_by_reason: {}, error: `not answering (${(err as Error).message})` };
      }
    }),
  );
}

