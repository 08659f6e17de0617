/**
 * The report: report.json (built by `buildReport`, pure), trades.csv, one self-contained
 * report.html (inline SVG charts drawn by a small inline script: no CDN, opens offline),
 * and the terminal summary table.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RawResult, TradeRecord } from './driver.js';
import { cagr, calmar, expectancy, profitFactor, round, sharpe, simpleReturns, sortino, winRate } from './metrics.js';

export interface GroupRow {
  trades: number;
  wins: number;
  win_rate: number | null;
  net_pnl_usd: number | null;
  fees_usd: number | null;
  profit_factor: number | null;
}

function groupBy(trades: readonly TradeRecord[], key: (t: TradeRecord) => string): Record<string, GroupRow> {
  const groups = new Map<string, TradeRecord[]>();
  for (const t of trades) {
    const k = key(t);
    const list = groups.get(k) ?? [];
    list.push(t);
    groups.set(k, list);
  }
  const out: Record<string, GroupRow> = {};
  for (const k of [...groups.keys()].sort()) {
    const list = groups.get(k)!;
    const nets = list.map((t) => t.net_pnl_usd);
    out[k] = {
      trades: list.length,
      wins: nets.filter((n) => n > 0).length,
      win_rate: round(winRate(nets), 6),
      net_pnl_usd: round(nets.reduce((a, b) => a + b, 0)),
      fees_usd: round(list.reduce((a, t) => a + t.fees_usd, 0)),
      profit_factor: round(profitFactor(nets), 6),
    };
  }
  return out;
}

/** Month-end equity over the previous month-end (the first month: over the initial balance). */
export function monthlyReturns(daily: readonly (readonly [number, number])[], initial: number): Record<string, number | null> {
  const out: Record<string, number | null> = {};
  let previous = initial;
  let month: string | null = null;
  let last = initial;
  for (const [ts, equity] of daily) {
    // The sample at 00:00 UTC of day d closes day d − 1.
    const m = new Date(ts - 1).toISOString().slice(0, 7);
    if (month !== null && m !== month) {
      out[month] = round(last / previous - 1);
      previous = last;
    }
    month = m;
    last = equity;
  }
  if (month !== null) out[month] = round(last / previous - 1);
  return out;
}

export function buildReport(raw: RawResult, meta: { config_hash?: string; inputs: string[] }) {
  const nets = raw.trades.map((t) => t.net_pnl_usd);
  const duration = raw.endTs - raw.startTs;
  const dailyValues = [raw.initialBalance, ...raw.dailyEquity.map(([, e]) => e)];
  const returns = simpleReturns(dailyValues);
  const growth = cagr(raw.initialBalance, raw.finalEquity, duration);
  return {
    summary: {
      start_ts: raw.startTs,
      end_ts: raw.endTs,
      start: new Date(raw.startTs).toISOString(),
      end: new Date(raw.endTs).toISOString(),
      initial_balance_usd: raw.initialBalance,
      final_balance_usd: round(raw.finalBalance),
      final_equity_usd: round(raw.finalEquity),
      net_pnl_usd: round(raw.finalEquity - raw.initialBalance),
      return_pct: round(raw.finalEquity / raw.initialBalance - 1),
      cagr_pct: round(growth),
      max_drawdown_pct: round(raw.drawdown.maxDrawdownPct),
      max_drawdown_duration_ms: raw.drawdown.maxDrawdownDurationMs,
      sharpe: round(sharpe(returns), 6),
      sortino: round(sortino(returns), 6),
      calmar: round(calmar(growth, raw.drawdown.maxDrawdownPct), 6),
      profit_factor: round(profitFactor(nets), 6),
      expectancy_usd: round(expectancy(nets)),
      win_rate: round(winRate(nets), 6),
      trades: raw.trades.length,
      fees_usd: round(raw.fees),
      exposure_time_pct: round(duration > 0 ? raw.exposureMs / duration : 0),
    },
    signals: raw.signals,
    trades: raw.trades,
    equity_curve: raw.equityCurve.map(([ts, e]) => [ts, round(e)] as [number, number | null]),
    per_symbol: groupBy(raw.trades, (t) => t.symbol),
    per_source: groupBy(raw.trades, (t) => t.source),
    per_exit_reason: groupBy(raw.trades, (t) => t.exit_reason),
    monthly_returns: monthlyReturns(raw.dailyEquity, raw.initialBalance),
    rejections_sample: raw.rejections,
    counts: raw.counts,
    inputs: meta.inputs,
  };
}

export type Report = ReturnType<typeof buildReport>;

const CSV_COLUMNS = [
  'symbol', 'side', 'entry_ts', 'entry_time', 'entry_price', 'exit_ts', 'exit_time', 'exit_price',
  'quantity', 'gross_pnl_usd', 'fees_usd', 'net_pnl_usd', 'exit_reason', 'source',
] as const;

function csvCell(value: unknown): string {
  const text = String(value);
  return /[",\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

export function tradesCsv(trades: readonly TradeRecord[]): string {
  const rows = [CSV_COLUMNS.join(',')];
  for (const t of trades) {
    const row: Record<string, unknown> = { ...t, entry_time: new Date(t.entry_ts).toISOString(), exit_time: new Date(t.exit_ts).toISOString() };
    rows.push(CSV_COLUMNS.map((c) => csvCell(row[c])).join(','));
  }
  return `${rows.join('\n')}\n`;
}

const fmt = (v: number | null | undefined, digits = 2): string => (v === null || v === undefined ? '—' : v.toFixed(digits));
const pctText = (v: number | null | undefined): string => (v === null || v === undefined ? '—' : `${(v * 100).toFixed(2)}%`);

/** The terminal summary table. */
export function summaryTable(report: Report): string {
  const s = report.summary;
  const rows: [string, string][] = [
    ['period', `${s.start.slice(0, 16)} → ${s.end.slice(0, 16)} UTC`],
    ['initial balance', `${fmt(s.initial_balance_usd)} USD`],
    ['final balance', `${fmt(s.final_balance_usd)} USD`],
    ['final equity', `${fmt(s.final_equity_usd)} USD`],
    ['net PnL', `${fmt(s.net_pnl_usd)} USD (${pctText(s.return_pct)})`],
    ['max drawdown', `${pctText(s.max_drawdown_pct)} (${(s.max_drawdown_duration_ms / 3_600_000).toFixed(1)} h)`],
    ['sharpe / sortino / calmar', `${fmt(s.sharpe)} / ${fmt(s.sortino)} / ${fmt(s.calmar)}`],
    ['trades', `${s.trades} (win rate ${pctText(s.win_rate)}, profit factor ${fmt(s.profit_factor)})`],
    ['expectancy', `${fmt(s.expectancy_usd)} USD per trade`],
    ['fees', `${fmt(s.fees_usd)} USD`],
    ['exposure time', pctText(s.exposure_time_pct)],
    ['signals', `${report.signals.received} received, ${report.signals.approved} approved, ${report.signals.rejected} rejected, ${report.signals.skipped} skipped`],
  ];
  const reasons = Object.entries(report.signals.rejected_by_reason).map(([k, v]) => `${k} ${v}`).join(', ');
  if (reasons) rows.push(['rejected by reason', reasons]);
  const width = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `  ${k.padEnd(width)}  ${v}`).join('\n');
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

function table(title: string, rows: Record<string, GroupRow>, id: string): string {
  const body = Object.entries(rows)
    .map(([k, r]) => `<tr><td>${escapeHtml(k)}</td><td>${r.trades}</td><td>${pctText(r.win_rate)}</td><td>${fmt(r.net_pnl_usd)}</td><td>${fmt(r.fees_usd)}</td><td>${fmt(r.profit_factor)}</td></tr>`)
    .join('');
  return `<h2>${title}</h2><table id="${id}"><thead><tr><th></th><th>trades</th><th>win rate</th><th>net PnL</th><th>fees</th><th>profit factor</th></tr></thead><tbody>${body}</tbody></table>`;
}

/** The chart script: draws SVG line charts from the embedded data (no library, no network). */
const CHART_SCRIPT = `
(function () {
  var data = JSON.parse(document.getElementById('report-data').textContent);
  var NS = 'http://www.w3.org/2000/svg';
  function el(name, attrs) { var e = document.createElementNS(NS, name); for (var k in attrs) e.setAttribute(k, attrs[k]); return e; }
  function chart(id, series, opts) {
    var host = document.getElementById(id); if (!host) return;
    var W = 900, H = opts.height || 220, P = 40;
    var svg = el('svg', { viewBox: '0 0 ' + W + ' ' + H, width: '100%', 'data-points': String(series.reduce(function (n, s) { return n + s.points.length; }, 0)) });
    var xs = [], ys = [];
    series.forEach(function (s) { s.points.forEach(function (p) { xs.push(p[0]); ys.push(p[1]); }); });
    (opts.markers || []).forEach(function (m) { xs.push(m[0]); ys.push(m[1]); });
    if (xs.length === 0) { host.textContent = 'no data'; return; }
    var x0 = Math.min.apply(null, xs), x1 = Math.max.apply(null, xs), y0 = Math.min.apply(null, ys), y1 = Math.max.apply(null, ys);
    if (x1 === x0) x1 = x0 + 1; if (y1 === y0) { y1 = y0 + 1; y0 = y0 - 1; }
    function X(v) { return P + (v - x0) / (x1 - x0) * (W - 2 * P); }
    function Y(v) { return H - P / 2 - (v - y0) / (y1 - y0) * (H - P); }
    svg.appendChild(el('line', { x1: P, y1: H - P / 2, x2: W - P, y2: H - P / 2, stroke: '#999' }));
    var lo = el('text', { x: 2, y: H - P / 2, 'font-size': 10 }); lo.textContent = y0.toPrecision(6); svg.appendChild(lo);
    var hi = el('text', { x: 2, y: P / 2, 'font-size': 10 }); hi.textContent = y1.toPrecision(6); svg.appendChild(hi);
    series.forEach(function (s) {
      var d = s.points.map(function (p, i) { return (i ? 'L' : 'M') + X(p[0]).toFixed(1) + ' ' + Y(p[1]).toFixed(1); }).join('');
      svg.appendChild(el('path', { d: d, fill: 'none', stroke: s.color, 'stroke-width': 1.5, 'class': 'series' }));
    });
    (opts.markers || []).forEach(function (m) {
      svg.appendChild(el('circle', { cx: X(m[0]), cy: Y(m[1]), r: 3, fill: m[2], 'class': 'marker' }));
    });
    host.appendChild(svg);
  }
  var equity = data.equity_curve;
  chart('equity-chart', [{ points: equity, color: '#2962ff' }], {});
  var peak = -Infinity;
  var dd = equity.map(function (p) { peak = Math.max(peak, p[1]); return [p[0], peak > 0 ? -(peak - p[1]) / peak * 100 : 0]; });
  chart('drawdown-chart', [{ points: dd, color: '#d32f2f' }], { height: 160 });
  Object.keys(data.prices).forEach(function (symbol) {
    var box = document.createElement('div'); box.id = 'price-' + symbol; box.className = 'price-chart';
    var h = document.createElement('h3'); h.textContent = symbol; document.getElementById('price-charts').appendChild(h);
    document.getElementById('price-charts').appendChild(box);
    var marks = [];
    data.trades.filter(function (t) { return t.symbol === symbol; }).forEach(function (t) {
      marks.push([t.entry_ts, t.entry_price, t.side === 'LONG' ? '#2e7d32' : '#c62828']);
      marks.push([t.exit_ts, t.exit_price, '#555']);
    });
    chart(box.id, [{ points: data.prices[symbol], color: '#444' }], { markers: marks });
  });
  document.body.setAttribute('data-rendered', 'true');
})();`;

export function reportHtml(report: Report, prices: Record<string, [number, number][]>): string {
  const s = report.summary;
  const data = JSON.stringify({ equity_curve: report.equity_curve, trades: report.trades, prices }).replace(/</g, '\\u003c');
  const summaryRows = Object.entries(s)
    .map(([k, v]) => `<tr><th>${escapeHtml(k)}</th><td>${escapeHtml(v === null ? '—' : String(v))}</td></tr>`)
    .join('');
  const rejected = Object.entries(report.signals.rejected_by_reason)
    .map(([k, v]) => `<tr><td>${escapeHtml(k)}</td><td>${v}</td></tr>`)
    .join('');
  const samples = report.rejections_sample
    .slice(0, 50)
    .map((r) => `<tr><td>${new Date(r.ts).toISOString()}</td><td>${escapeHtml(r.symbol)}</td><td>${escapeHtml(r.action)}</td><td>${escapeHtml(r.source)}</td><td>${escapeHtml(r.reasons.join(', '))}</td></tr>`)
    .join('');
  const monthly = Object.entries(report.monthly_returns)
    .map(([m, r]) => `<tr><td>${m}</td><td>${pctText(r)}</td></tr>`)
    .join('');
  const trades = report.trades
    .slice(0, 500)
    .map((t) => `<tr><td>${escapeHtml(t.symbol)}</td><td>${t.side}</td><td>${new Date(t.entry_ts).toISOString()}</td><td>${t.entry_price}</td><td>${new Date(t.exit_ts).toISOString()}</td><td>${t.exit_price}</td><td>${t.quantity}</td><td>${fmt(t.net_pnl_usd)}</td><td>${escapeHtml(t.exit_reason)}</td><td>${escapeHtml(t.source)}</td></tr>`)
    .join('');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>quantum backtest ${escapeHtml(s.start.slice(0, 10))} – ${escapeHtml(s.end.slice(0, 10))}</title>
<style>body{font:14px system-ui,sans-serif;margin:24px;max-width:960px}table{border-collapse:collapse;margin:8px 0 16px}td,th{border:1px solid #ddd;padding:3px 8px;text-align:left}h2{margin-top:28px}</style>
</head><body>
<h1>Backtest ${escapeHtml(s.start.slice(0, 10))} – ${escapeHtml(s.end.slice(0, 10))}</h1>
<p>Net PnL <b>${fmt(s.net_pnl_usd)} USD</b> (${pctText(s.return_pct)}), max drawdown ${pctText(s.max_drawdown_pct)}, ${s.trades} trades.</p>
<h2>Equity</h2><div id="equity-chart"></div>
<h2>Drawdown (%)</h2><div id="drawdown-chart"></div>
<h2>Trades on the price</h2><div id="price-charts"></div>
<h2>Summary</h2><table id="summary">${summaryRows}</table>
<h2>What the risk gate rejected, and why</h2>
<p>${report.signals.received} signals received, ${report.signals.approved} approved, ${report.signals.rejected} rejected, ${report.signals.skipped} skipped.</p>
<table id="rejected"><thead><tr><th>reason</th><th>signals</th></tr></thead><tbody>${rejected}</tbody></table>
<table id="rejection-samples"><thead><tr><th>time</th><th>symbol</th><th>action</th><th>source</th><th>reasons</th></tr></thead><tbody>${samples}</tbody></table>
${table('Per symbol', report.per_symbol, 'per-symbol')}
${table('Per source', report.per_source, 'per-source')}
${table('Per exit reason', report.per_exit_reason, 'per-exit-reason')}
<h2>Monthly returns</h2><table id="monthly">${monthly}</table>
<h2>Trades</h2><table id="trades"><thead><tr><th>symbol</th><th>side</th><th>entry</th><th>price</th><th>exit</th><th>price</th><th>qty</th><th>net PnL</th><th>exit reason</th><th>source</th></tr></thead><tbody>${trades}</tbody></table>
<script type="application/json" id="report-data">${data}</script>
<script>${CHART_SCRIPT}</script>
</body></html>
`;
}

/** Writes report.json, trades.csv and report.html into `dir`; returns their paths. */
export function writeReport(dir: string, report: Report, prices: Record<string, [number, number][]>): { json: string; csv: string; html: string } {
  mkdirSync(dir, { recursive: true });
  const paths = { json: join(dir, 'report.json'), csv: join(dir, 'trades.csv'), html: join(dir, 'report.html') };
  writeFileSync(paths.json, `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(paths.csv, tradesCsv(report.trades));
  writeFileSync(paths.html, reportHtml(report, prices));
  return paths;
}
