/* global document, fetch, sessionStorage, setInterval */
/*
 * The dashboard's per-source panel (docs/feedback.md): the monitor's GET /sources through
 * the dashboard's /api/sources, as a table (decisions, round trips, Brier score, a drift
 * badge per test) and a calibration chart of the selected source (mean confidence against
 * realized win rate per bucket, with the 95% Wilson interval and the diagonal of a
 * perfectly calibrated model). Self-contained: it shares only the page's api_token
 * (sessionStorage) with app.js. Refreshed every few seconds; round trips are rare.
 */
(function () {
  'use strict';
  const TOKEN_KEY = 'quantum-trader.api_token';
  const REFRESH_MS = 3000;
  const SVG = 'http://www.w3.org/2000/svg';
  const ui = { selected: null, last: null };
  const $ = (id) => document.getElementById(id);

  const num = (v, digits) => (v === null || v === undefined ? '—' : Number(v).toFixed(digits));
  const pct = (v, digits = 1) => (v === null || v === undefined ? '—' : `${(v * 100).toFixed(digits)}%`);
  const usd = (v) => {
    if (v === null || v === undefined) return '—';
    const text = Math.abs(v).toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 });
    return `${v > 0 ? '+' : v < 0 ? '−' : ''}${text}`;
  };
  const hold = (ms) => {
    if (ms === null || ms === undefined) return '—';
    if (ms < 1000) return `${Math.round(ms)} ms`;
    if (ms < 120_000) return `${(ms / 1000).toFixed(1)} s`;
    if (ms < 7_200_000) return `${(ms / 60_000).toFixed(1)} min`;
    return `${(ms / 3_600_000).toFixed(1)} h`;
  };

  function cell(row, text, className, title) {
    const td = document.createElement('td');
    td.textContent = text;
    if (className) td.className = className;
    if (title) td.title = title;
    row.appendChild(td);
    return td;
  }

  function badge(test, drift) {
    const span = document.createElement('span');
    span.className = `badge drift-badge ${drift.state === 'drift' ? 'bad' : 'good'}`;
    span.dataset.test = test;
    span.dataset.state = drift.state;
    span.textContent = `${test === 'ks' ? 'KS' : 'CAL'} ${drift.state}`;
    const figures =
      test === 'ks'
        ? `D=${num(drift.statistic, 3)} p=${drift.p_value === null ? '—' : Number(drift.p_value).toPrecision(3)}`
        : `realized ${pct(drift.statistic)} vs predicted ${pct(drift.predicted)}` +
          (drift.interval ? ` [${pct(drift.interval.low)}, ${pct(drift.interval.high)}]` : '');
    span.title = drift.statistic === null ? `${test}: not judged yet (windows not full)` : `${test}: ${figures}`;
    return span;
  }

  function renderTable(sources) {
    const body = $('sources-table').querySelector('tbody');
    body.replaceChildren();
    for (const s of sources) {
      const row = document.createElement('tr');
      row.dataset.source = s.source;
      row.dataset.trades = String(s.trades);
      if (s.source === ui.selected) row.className = 'selected';
      const name = cell(row, '', 'src');
      const label = document.createElement('span');
      label.className = 'name';
      label.textContent = s.source;
      name.append(label, badge('ks', s.drift.ks), badge('calibration', s.drift.calibration));
      cell(row, String(s.signals), 'num');
      cell(row, String(s.approved), 'num');
      const reasons = Object.entries(s.rejected_by_reason).map(([r, n]) => `${r} ${n}`).join(', ');
      cell(row, String(s.rejected), 'num', reasons || 'no rejections');
      cell(row, String(s.trades), 'num trades');
      cell(row, pct(s.win_rate), 'num win-rate').dataset.value = s.win_rate === null ? '' : String(s.win_rate);
      const net = cell(row, usd(s.net_pnl_usd), `num net ${s.net_pnl_usd > 0 ? 'pos' : s.net_pnl_usd < 0 ? 'neg' : ''}`);
      net.dataset.value = String(s.net_pnl_usd);
      cell(row, s.profit_factor === null ? (s.trades > 0 ? '∞' : '—') : num(s.profit_factor, 2), 'num');
      cell(row, hold(s.avg_hold_ms), 'num');
      cell(row, `${pct(s.avg_mae_pct, 2)} / ${pct(s.avg_mfe_pct, 2)}`, 'num');
      cell(row, num(s.brier_score, 3), 'num brier');
      row.addEventListener('click', () => {
        ui.selected = s.source;
        render(ui.last);
      });
      body.appendChild(row);
    }
    $('sources-empty').hidden = sources.length > 0;
  }

  function el(name, attrs, parent) {
    const node = document.createElementNS(SVG, name);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
    if (parent) parent.appendChild(node);
    return node;
  }

  /** Predicted (x) against realized (y), both 0..1, with the diagonal and Wilson bars. */
  function renderChart(source) {
    const svg = $('calibration-chart');
    svg.replaceChildren();
    const W = 260;
    const H = 220;
    const pad = { l: 34, r: 10, t: 10, b: 28 };
    const x = (v) => pad.l + v * (W - pad.l - pad.r);
    const y = (v) => H - pad.b - v * (H - pad.t - pad.b);
    svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
    for (const v of [0, 0.25, 0.5, 0.75, 1]) {
      el('line', { x1: x(0), x2: x(1), y1: y(v), y2: y(v), class: 'grid-line' }, svg);
      el('text', { x: pad.l - 4, y: y(v) + 3, class: 'tick', 'text-anchor': 'end' }, svg).textContent = v.toFixed(2);
      el('text', { x: x(v), y: H - pad.b + 12, class: 'tick', 'text-anchor': 'middle' }, svg).textContent = v.toFixed(2);
    }
    el('text', { x: x(0.5), y: H - 4, class: 'axis', 'text-anchor': 'middle' }, svg).textContent = 'predicted (mean confidence)';
    el('line', { x1: x(0), y1: y(0), x2: x(1), y2: y(1), class: 'diagonal' }, svg);
    const rows = source ? source.calibration : [];
    svg.dataset.source = source ? source.source : '';
    svg.dataset.buckets = String(rows.length);
    const maxCount = Math.max(1, ...rows.map((r) => r.count));
    for (const r of rows) {
      el('line', { x1: x(r.mean_confidence), x2: x(r.mean_confidence), y1: y(r.wilson_low), y2: y(r.wilson_high), class: 'wilson' }, svg);
      const dot = el('circle', { cx: x(r.mean_confidence), cy: y(r.win_rate), r: 3 + 4 * Math.sqrt(r.count / maxCount), class: 'bucket' }, svg);
      dot.dataset.from = String(r.from);
      dot.dataset.predicted = String(r.mean_confidence);
      dot.dataset.realized = String(r.win_rate);
      dot.dataset.count = String(r.count);
      el('title', {}, dot).textContent =
        `[${r.from.toFixed(2)}, ${r.to.toFixed(2)}): ${r.count} trades, mean confidence ${pct(r.mean_confidence)}, ` +
        `won ${pct(r.win_rate)} (95% ${pct(r.wilson_low)}–${pct(r.wilson_high)})`;
    }
    $('calibration-title').textContent = source ? `${source.source} · Brier ${num(source.brier_score, 3)}` : '';
  }

  function render(data) {
    if (!data) return;
    const sources = data.sources;
    if (!sources.some((s) => s.source === ui.selected)) {
      const first = sources.find((s) => s.scored_trades > 0) || sources[0];
      ui.selected = first ? first.source : null;
    }
    renderTable(sources);
    renderChart(sources.find((s) => s.source === ui.selected) || null);
    const w = data.drift_windows;
    $('sources-note').textContent = `drift: last ${w.recent_trades} vs ${w.reference_trades} before · KS α ${w.ks_alpha}`;
    $('sources-panel').dataset.loaded = 'true';
  }

  async function refresh() {
    const token = sessionStorage.getItem(TOKEN_KEY) || '';
    try {
      const response = await fetch('/api/sources', { headers: { accept: 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) } });
      if (!response.ok) {
        $('sources-note').textContent = response.status === 401 ? 'token needed' : `monitor: HTTP ${response.status}`;
        return;
      }
      ui.last = await response.json();
      render(ui.last);
    } catch (err) {
      $('sources-note').textContent = `monitor unreachable (${err.message})`;
    }
  }

  refresh();
  setInterval(refresh, REFRESH_MS);
})();
