/** The one-screen live summary of `quantum up` (pure: figures in, text out). */

export interface SummaryFigures {
  uptimeS: number;
  bus: string;
  urls: { risk: string; execution: string; monitor: string; dashboard?: string };
  signals: { received: number; skipped: number; approved: number; rejected: number; approvalRate: number | null };
  /** Reason codes by how many rejections carried them (a rejection may carry several). */
  topReasons: Array<[string, number]>;
  /** What blocks entries now: "ACTIVE", "COOLDOWN until 14:05", "DAILY LIMIT …", "HALTED (…)". */
  tradingState: string;
  /** What the protections hold (day loss, locks, stopped sources), when any is on (docs/protections.md). */
  protections?: string;
  /** "connected", "DOWN since 12:03:04 …", "connected, back since 12:04:10 (down 1m06s)". */
  busState: string;
  /** The demo profile line, when `up` runs with it. */
  profile?: string;
  fills: { orders: number; fills: number; rejects: number; fillRate: number | null; avgSlippagePct: number };
  portfolio: {
    equity: number;
    balance: number;
    realized: number;
    unrealized: number;
    fees: number;
    drawdownPct: number;
    exposurePct: number;
    winRate: number;
    closedTrades: number;
  };
  positions: Array<{ symbol: string; side: string; quantity: number; avgEntry: number; mark: number; unrealized: number }>;
  demo: boolean;
  logFile?: string;
  /** The price source in words, e.g. "binance connected · reconnects 0 · gaps 0". */
  prices?: string;
}

const usd = (x: number) => `${x < 0 ? '-' : ''}$${Math.abs(x).toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`;
const signed = (x: number) => `${x >= 0 ? '+' : '-'}${usd(Math.abs(x))}`;
const pct = (x: number | null) => (x === null ? '—' : `${(x * 100).toFixed(1)}%`);

export function renderSummary(f: SummaryFigures): string {
  const s = f.signals;
  const lines = [
    `quantum-trader · paper loop · bus ${f.bus} · up ${formatUptime(f.uptimeS)} · ${f.demo ? 'demo source on' : 'no demo source'}`,
    ...(f.prices ? [`Prices    ${f.prices}`] : []),
    `risk ${f.urls.risk}   execution ${f.urls.execution}   monitor ${f.urls.monitor}${f.urls.dashboard ? `   dashboard ${f.urls.dashboard}` : ''}`,
    ...(f.profile ? [f.profile] : []),
    '',
    `Trading   [${f.tradingState}]   bus ${f.busState}`,
    ...(f.protections ? [`Protect   ${f.protections}`] : []),
    `Signals   ${s.received} received · ${s.skipped} HOLD skipped · ${s.approved} approved · ${s.rejected} rejected · approval ${pct(s.approvalRate)}`,
    `Rejected  ${f.topReasons.length ? `reasons (a rejection may have several): ${f.topReasons.map(([r, n]) => `${r} ${n}`).join(' · ')}` : '—'}`,
    `Fills     ${f.fills.fills} filled of ${f.fills.orders} orders (${pct(f.fills.fillRate)}) · avg slippage ${(f.fills.avgSlippagePct * 100).toFixed(3)}%`,
    '',
    `Equity    ${usd(f.portfolio.equity)}   balance ${usd(f.portfolio.balance)}   realized ${signed(f.portfolio.realized)}   unrealized ${signed(f.portfolio.unrealized)}   fees ${usd(f.portfolio.fees)}`,
    `Risk      drawdown ${pct(f.portfolio.drawdownPct)} · exposure ${pct(f.portfolio.exposurePct)} · win rate ${pct(f.portfolio.winRate)} over ${f.portfolio.closedTrades} round trips`,
    '',
    f.positions.length ? 'Positions' : 'Positions none open',
  ];
  for (const p of f.positions) {
    lines.push(
      `  ${p.symbol.padEnd(10)} ${p.side.padEnd(5)} ${String(p.quantity).padStart(12)} @ ${String(p.avgEntry).padEnd(12)} mark ${String(p.mark).padEnd(12)} ${signed(p.unrealized)}`,
    );
  }
  lines.push('', `Ctrl-C stops cleanly.${f.logFile ? ` Logs: ${f.logFile}` : ''}`);
  return lines.join('\n');
}

/** One line for logs and pipes (not a terminal). */
export function renderSummaryLine(f: SummaryFigures): string {
  const s = f.signals;
  return (
    `[up ${formatUptime(f.uptimeS)}] signals ${s.received} (approved ${s.approved}, rejected ${s.rejected}, ` +
    `approval ${pct(s.approvalRate)}) fills ${f.fills.fills} · open ${f.positions.length} · equity ${usd(f.portfolio.equity)} ` +
    `· realized ${signed(f.portfolio.realized)} · unrealized ${signed(f.portfolio.unrealized)} · ${f.tradingState} · bus ${f.busState}` +
    (f.prices ? ` · prices ${f.prices}` : '')
  );
}

export function formatUptime(seconds: number): string {
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = Math.floor(seconds % 60);
  return h > 0 ? `${h}h${String(m).padStart(2, '0')}m` : `${m}m${String(s).padStart(2, '0')}s`;
}
