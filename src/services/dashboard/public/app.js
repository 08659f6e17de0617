/* quantum-trader dashboard: the browser side. Plain JavaScript, no build step.
 * First paint from GET /api/state, then live changes from GET /api/events (SSE).
 * Every value from the server is written with textContent, never as HTML. */
/* global document, window, fetch, EventSource, sessionStorage, setTimeout, clearTimeout, setInterval, LightweightCharts */
'use strict';

(function main() {
  const TOKEN_KEY = 'quantum-trader.api_token';
  const RECONNECT_MS = 2000;
  const STALE_HEALTH_MS = 7000;

  const ui = {
    token: sessionStorage.getItem(TOKEN_KEY) || '',
    state: null,
    equity: [],
    fills: [],
    selectedKey: null,
    source: null,
    reconnectTimer: null,
    lastEventAt: 0,
  };

  const $ = (id) => document.getElementById(id);

  // -- formatting -------------------------------------------------------------------
  const nf = (min, max) => new Intl.NumberFormat('en-US', { minimumFractionDigits: min, maximumFractionDigits: max });
  const usdFmt = nf(2, 2);
  const qtyFmt = nf(0, 8);
  const priceFmt = nf(2, 8);
  const pctFmt = nf(2, 2);
  const isNum = (v) => typeof v === 'number' && Number.isFinite(v);
  const money = (v) => (isNum(v) ? usdFmt.format(v) : '—');
  const signed = (v) => (isNum(v) ? (v > 0 ? '+' : v < 0 ? '−' : '') + usdFmt.format(Math.abs(v)) : '—');
  const pct = (v) => (isNum(v) ? `${pctFmt.format(v * 100)}%` : '—');
  const qty = (v) => (isNum(v) ? qtyFmt.format(v) : '—');
  const price = (v) => (isNum(v) ? priceFmt.format(v) : '—');
  const pnlClass = (v) => (isNum(v) && v > 0 ? 'pos' : isNum(v) && v < 0 ? 'neg' : '');
  const pad = (n) => String(n).padStart(2, '0');
  const hms = (ms) => {
    if (!isNum(ms)) return '—';
    const d = new Date(ms);
    return `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
  };
  const ago = (ms) => {
    if (!isNum(ms)) return '';
    const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
    return s < 60 ? `${s}s ago` : s < 3600 ? `${Math.floor(s / 60)}m ago` : `${Math.floor(s / 3600)}h ago`;
  };

  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    if (props) {
      for (const [key, value] of Object.entries(props)) {
        if (value === undefined || value === null || value === false) continue;
        if (key === 'className') node.className = value;
        else if (key === 'text') node.textContent = value;
        else if (key === 'title') node.title = value;
        else if (key.startsWith('data-')) node.setAttribute(key, String(value));
        else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
        else node.setAttribute(key, String(value));
      }
    }
    for (const child of children) if (child !== null && child !== undefined) node.append(child);
    return node;
  }

  function setFigure(id, text, value, cls) {
    const out = $(id);
    out.textContent = text;
    out.className = cls || '';
    if (isNum(value)) out.dataset.value = String(value);
    else delete out.dataset.value;
  }

  // -- API --------------------------------------------------------------------------
  function authHeaders() {
    return ui.token ? { authorization: `Bearer ${ui.token}` } : {};
  }

  async function api(path, init) {
    const extra = (init && init.headers) || {};
    const response = await fetch(path, { ...(init || {}), headers: { accept: 'application/json', ...extra, ...authHeaders() } });
    let body = null;
    try {
      body = await response.json();
    } catch {
      body = null;
    }
    if (response.status === 401) {
      askToken(ui.token ? 'That token was not accepted.' : '');
      const err = new Error('unauthorized');
      err.status = 401;
      throw err;
    }
    return { status: response.status, ok: response.ok, body };
  }

  function askToken(message) {
    $('token-dialog').hidden = false;
    $('token-error').hidden = !message;
    $('token-error').textContent = message || '';
    $('token-input').focus();
  }

  $('token-form').addEventListener('submit', (event) => {
    event.preventDefault();
    ui.token = $('token-input').value.trim();
    sessionStorage.setItem(TOKEN_KEY, ui.token);
    $('token-dialog').hidden = true;
    connect();
  });

  // -- kill switch (docs/protections.md): a button, then a confirm step ---------------
  function haltError(message) {
    $('halt-error').hidden = !message;
    $('halt-error').textContent = message || '';
  }

  $('halt-button').addEventListener('click', () => {
    haltError('');
    $('halt-dialog').hidden = false;
    $('halt-reason').focus();
  });
  $('halt-cancel').addEventListener('click', () => {
    $('halt-dialog').hidden = true;
  });
  $('halt-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const body = { flatten: $('halt-flatten').checked };
    const reason = $('halt-reason').value.trim();
    if (reason) body.reason = reason;
    $('halt-confirm').disabled = true;
    try {
      const { status, body: answer } = await api('/api/halt', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      if (status === 200) {
        $('halt-dialog').hidden = true;
        const n = answer && Array.isArray(answer.closes) ? answer.closes.length : 0;
        showCloseResult(`HALTED${body.flatten ? `: ${n} close${n === 1 ? '' : 's'} published` : ''}`, 'error');
      } else {
        haltError((answer && answer.message) || `HTTP ${status}`);
      }
    } catch (err) {
      haltError(err.status === 401 ? 'token needed' : err.message);
    } finally {
      $('halt-confirm').disabled = false;
    }
  });
  $('resume-button').addEventListener('click', async () => {
    const button = $('resume-button');
    if (!button.classList.contains('armed')) {
      button.classList.add('armed');
      button.textContent = 'Confirm resume';
      setTimeout(() => {
        button.classList.remove('armed');
        button.textContent = 'Resume';
      }, 4000);
      return;
    }
    button.classList.remove('armed');
    button.textContent = 'Resume';
    try {
      const { status, body } = await api('/api/resume', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
      showCloseResult(status === 200 ? 'trading resumed' : (body && body.message) || `HTTP ${status}`, status === 200 ? 'muted' : 'error');
    } catch (err) {
      showCloseResult(err.status === 401 ? 'token needed' : err.message, 'error');
    }
  });

  // -- chart ------------------------------------------------------------------------
  const chart = (() => {
    const container = $('chart');
    if (typeof LightweightCharts === 'undefined') {
      container.append(el('div', { className: 'empty', text: 'chart library not loaded' }));
      return null;
    }
    const LC = LightweightCharts;
    const api = LC.createChart(container, {
      autoSize: true,
      layout: {
        background: { type: 'solid', color: '#11151c' },
        textColor: '#7d8794',
        fontSize: 11,
        fontFamily: "ui-monospace, Menlo, Consolas, 'DejaVu Sans Mono', monospace",
        panes: { separatorColor: '#232a35', separatorHoverColor: '#2c3440' },
        // The library's licence asks for a link to TradingView; this logo is that link.
        attributionLogo: true,
      },
      grid: { vertLines: { color: '#161b23' }, horzLines: { color: '#161b23' } },
      rightPriceScale: { borderColor: '#232a35' },
      timeScale: { borderColor: '#232a35', timeVisible: true, secondsVisible: true, rightOffset: 3 },
      crosshair: { mode: LC.CrosshairMode.Normal },
    });
    const equity = api.addSeries(
      LC.AreaSeries,
      {
        lineColor: '#4c9aff',
        topColor: 'rgba(76,154,255,0.28)',
        bottomColor: 'rgba(76,154,255,0.02)',
        lineWidth: 2,
        priceFormat: { type: 'price', precision: 2, minMove: 0.01 },
        title: 'equity',
      },
      0,
    );
    const drawdown = api.addSeries(
      LC.BaselineSeries,
      {
        baseValue: { type: 'price', price: 0 },
        topLineColor: 'rgba(246,70,93,0.9)',
        topFillColor1: 'rgba(246,70,93,0)',
        topFillColor2: 'rgba(246,70,93,0)',
        bottomLineColor: 'rgba(246,70,93,0.9)',
        bottomFillColor1: 'rgba(246,70,93,0.05)',
        bottomFillColor2: 'rgba(246,70,93,0.35)',
        lineWidth: 1,
        priceFormat: { type: 'custom', formatter: (v) => `${v.toFixed(2)}%`, minMove: 0.01 },
        title: 'drawdown',
      },
      1,
    );
    const markers = LC.createSeriesMarkers(equity, []);
    const panes = api.panes();
    if (panes[1]) panes[1].setHeight(90);
    return { api, equity, drawdown, markers };
  })();

  function toEquity(p) {
    return { time: p.time, value: p.equity_usd };
  }
  function toDrawdown(p) {
    return { time: p.time, value: -p.drawdown_pct * 100 };
  }

  function setCurve(points) {
    ui.equity = points.slice();
    if (chart) {
      chart.equity.setData(ui.equity.map(toEquity));
      chart.drawdown.setData(ui.equity.map(toDrawdown));
      chart.api.timeScale().fitContent();
    }
    curveStats();
    renderMarkers();
  }

  /** True while the whole curve is in view (the user has not zoomed or scrolled into it). */
  function showingAll() {
    if (!chart) return false;
    const range = chart.api.timeScale().getVisibleLogicalRange();
    return !range || range.from <= 0.5;
  }

  function addPoints(points) {
    const limit = (ui.state && ui.state.bounds && ui.state.bounds.equityPoints) || 2000;
    const follow = showingAll();
    for (const p of points) {
      const last = ui.equity[ui.equity.length - 1];
      if (last && p.time < last.time) continue;
      if (last && p.time === last.time) ui.equity[ui.equity.length - 1] = p;
      else ui.equity.push(p);
      if (chart) {
        try {
          chart.equity.update(toEquity(p));
          chart.drawdown.update(toDrawdown(p));
        } catch {
          chart.equity.setData(ui.equity.map(toEquity));
          chart.drawdown.setData(ui.equity.map(toDrawdown));
        }
      }
    }
    if (ui.equity.length > limit) {
      ui.equity = ui.equity.slice(ui.equity.length - limit);
      if (chart) {
        chart.equity.setData(ui.equity.map(toEquity));
        chart.drawdown.setData(ui.equity.map(toDrawdown));
      }
    }
    if (follow && chart) chart.api.timeScale().fitContent();
    curveStats();
    renderMarkers();
  }

  function curveStats() {
    $('chart-points').textContent = String(ui.equity.length);
    $('chart').dataset.points = String(ui.equity.length);
  }

  /** Fills as markers, each on the curve's point at or before its second. */
  function renderMarkers() {
    const times = ui.equity.map((p) => p.time);
    const snap = (sec) => {
      if (times.length === 0) return null;
      let lo = 0;
      let hi = times.length - 1;
      if (sec <= times[0]) return times[0];
      while (lo < hi) {
        const mid = (lo + hi + 1) >> 1;
        if (times[mid] <= sec) lo = mid;
        else hi = mid - 1;
      }
      return times[lo];
    };
    const list = [];
    for (const f of ui.fills) {
      if (f.status !== 'FILLED') continue;
      const time = snap(Math.floor(f.ts / 1000));
      if (time === null) continue;
      const buy = f.side === 'BUY';
      const sym = f.symbol.replace(/USDT$/, '');
      list.push({
        time,
        position: buy ? 'belowBar' : 'aboveBar',
        shape: buy ? 'arrowUp' : 'arrowDown',
        color: buy ? '#2ebd85' : '#f6465d',
        text: f.origin === 'signal' ? sym : `${sym} ✕`,
        id: f.order_id,
      });
    }
    list.sort((a, b) => a.time - b.time);
    if (chart) chart.markers.setMarkers(list);
    $('chart').dataset.markers = String(list.length);
  }

  // -- header -----------------------------------------------------------------------
  function renderPortfolio(p) {
    if (!p) return;
    setFigure('f-equity', money(p.equity_usd), p.equity_usd);
    const change = p.equity_usd - p.initial_balance_usd;
    $('f-equity-change').textContent = `${signed(change)} (${pct(p.initial_balance_usd ? change / p.initial_balance_usd : 0)})`;
    $('f-equity-change').className = `mono ${pnlClass(change)}`;
    setFigure('f-balance', money(p.balance_usd), p.balance_usd);
    $('f-fees').textContent = isNum(p.fees_usd) ? `fees ${money(p.fees_usd)}` : '';
    setFigure('f-unrealized', signed(p.unrealized_pnl_usd), p.unrealized_pnl_usd, pnlClass(p.unrealized_pnl_usd));
    $('f-open').textContent = `${p.open_positions} open`;
    setFigure('f-realized', signed(p.realized_pnl_usd), p.realized_pnl_usd, pnlClass(p.realized_pnl_usd));
    $('f-winrate').textContent = `win ${pct(p.win_rate)} of ${p.closed_trades}`;
    setFigure('f-drawdown', pct(p.drawdown_pct), p.drawdown_pct, p.drawdown_pct > 0 ? 'neg' : '');
    const s = ui.state && ui.state.settings;
    $('f-dd-limit').textContent = s ? `halt at ${pct(s.max_drawdown_pct)}` : '';
    setFigure('f-exposure', pct(p.exposure_pct), p.exposure_pct);
    $('f-exposure-usd').textContent = `${money(p.exposure_usd)}${s ? ` / max ${pct(s.max_exposure_pct)}` : ''}`;
    const src = $('figures-source');
    src.hidden = p.source === 'monitor';
    src.textContent =
      p.source === 'bus'
        ? `monitor not answering: figures from the last position update (${hms(p.as_of)} UTC)`
        : p.source === 'none'
          ? 'no figures yet'
          : '';
  }

  function renderStats(risk, execution) {
    const state = $('trading-state');
    const banner = $('halt-banner');
    if (risk) {
      // What blocks entries now; a cooldown that ran out since the last poll no longer does.
      const es = risk.entry_state || { state: risk.trading_state, until: null };
      const blocking = es.state === 'COOLDOWN' && isNum(es.until) && es.until <= Date.now() ? 'ACTIVE' : es.state;
      const label = blocking === 'DAILY_LIMIT' ? 'DAILY LIMIT' : blocking === 'DAILY_LOSS_LIMIT' ? 'DAILY LOSS LIMIT' : blocking;
      state.dataset.state = risk.stale ? 'UNKNOWN' : blocking;
      state.textContent = risk.stale ? `${label}?` : label;
      state.title = risk.stale ? 'risk service not answering: last known state' : 'What blocks entries now (closes always pass)';
      banner.hidden = risk.trading_state !== 'HALTED';
      banner.textContent =
        risk.trading_state === 'HALTED' ? `HALTED${isNum(risk.halted_at) ? ` since ${hms(risk.halted_at)} UTC` : ''} — ${risk.halt_reason || ''}` : '';
      setFigure('f-approval', pct(risk.approval_rate), risk.approval_rate);
      const c = risk.counts;
      $('f-counts').textContent = c ? `${c.approved} ✓ · ${c.rejected} ✕ · ${c.skipped} hold` : '';
      const cd = $('cooldown');
      const cooling = isNum(risk.cooldown_until) && risk.cooldown_until > Date.now();
      cd.hidden = !(cooling || blocking === 'DAILY_LIMIT');
      cd.textContent =
        blocking === 'DAILY_LIMIT'
          ? `DAILY LIMIT ${risk.entries_today}/${risk.max_daily_entries} until 00:00 UTC`
          : cooling
            ? `COOLDOWN until ${hms(risk.cooldown_until)} UTC`
            : '';
      $('f-approval').parentElement.classList.toggle('stale', Boolean(risk.stale));
      // Protection locks with their end times; the kill switch's buttons.
      const locks = (risk.locks || []).filter((l) => isNum(l.until) && l.until > Date.now());
      $('locks').hidden = locks.length === 0;
      $('locks').textContent = locks.map((l) => `${l.symbol || 'ALL'} LOCKED until ${hms(l.until)} UTC`).join(' · ');
      $('locks').title = locks.map((l) => `${l.protection}: ${l.reason}`).join('\n') || 'Entry locks set by the protections';
      $('resume-button').hidden = risk.trading_state !== 'HALTED';
      $('halt-button').hidden = Boolean(risk.kill_switch);
    } else {
      state.dataset.state = 'UNKNOWN';
      state.textContent = '—';
      banner.hidden = true;
      setFigure('f-approval', '—', null);
    }
    if (execution) {
      setFigure('f-fillrate', pct(execution.fill_rate), execution.fill_rate);
      $('f-fills').textContent = `${execution.fills} fills · ${execution.rejects} rej`;
      $('f-fillrate').parentElement.classList.toggle('stale', Boolean(execution.stale));
    } else {
      setFigure('f-fillrate', '—', null);
    }
  }

  // -- positions ----------------------------------------------------------------------
  const armed = new Map();

  let positionsDrawn = '';

  function renderPositions(positions, force) {
    // Unchanged rows are left alone, so a click never lands on a button being replaced.
    const key = JSON.stringify(positions) + [...armed.keys()].join(',');
    if (!force && key === positionsDrawn) return;
    positionsDrawn = key;
    const body = $('positions').querySelector('tbody');
    const rows = positions.map((p) => {
      const button = el('button', { className: 'close-btn', type: 'button', text: 'Close', 'data-symbol': p.symbol });
      if (armed.has(p.symbol)) {
        button.classList.add('armed');
        button.textContent = armed.get(p.symbol).closing ? 'Closing…' : 'Confirm';
        button.disabled = Boolean(armed.get(p.symbol).closing);
      }
      button.addEventListener('click', () => onClose(p.symbol, button));
      return el(
        'tr',
        { 'data-symbol': p.symbol, 'data-side': p.side },
        el('td', { className: 'sym', text: p.symbol }),
        el('td', { className: `side-${p.side}`, text: p.side }),
        el('td', { className: 'num', text: qty(p.quantity) }),
        el('td', { className: 'num', text: price(p.avg_entry_price) }),
        el('td', { className: 'num', text: price(p.mark_price) }),
        el('td', { className: 'exits small', text: exitLevelsText(p) }),
        el('td', { className: `num ${pnlClass(p.unrealized_pnl_usd)}`, text: signed(p.unrealized_pnl_usd), 'data-value': p.unrealized_pnl_usd }),
        el('td', { className: `num ${pnlClass(p.realized_pnl_usd)}`, text: signed(p.realized_pnl_usd) }),
        el('td', { className: 'num' }, button),
      );
    });
    body.replaceChildren(...rows);
    $('positions-empty').hidden = positions.length > 0;
  }

  /** The armed exit levels of a position, e.g. "SL 140 · TP 160 · TS 180 · until 12:00:05"; "—" when none. */
  function exitLevelsText(p) {
    const parts = [];
    if (p.stop_loss !== undefined) parts.push(`SL ${price(p.stop_loss)}`);
    if (p.take_profit !== undefined) parts.push(`TP ${price(p.take_profit)}`);
    if (p.trailing_stop !== undefined) parts.push(`TS ${price(p.trailing_stop)}`);
    if (p.expires_ts !== undefined) parts.push(`until ${hms(p.expires_ts)}`);
    return parts.length ? parts.join(' · ') : '—';
  }

  function showCloseResult(text, cls) {
    const box = $('close-result');
    box.hidden = false;
    box.textContent = text;
    box.title = text;
    box.className = `close-result small ${cls || ''}`;
  }

  async function onClose(symbol, button) {
    const state = armed.get(symbol);
    if (!state) {
      // First click arms the button; a second within 4 s sends the close.
      const timer = setTimeout(() => {
        armed.delete(symbol);
        if (ui.state) renderPositions(ui.state.positions, true);
      }, 4000);
      armed.set(symbol, { timer, closing: false });
      button.classList.add('armed');
      button.textContent = 'Confirm';
      return;
    }
    if (state.closing) return;
    clearTimeout(state.timer);
    state.closing = true;
    button.textContent = 'Closing…';
    button.disabled = true;
    showCloseResult(`closing ${symbol}…`, 'muted');
    try {
      const { status, body } = await api(`/api/close/${encodeURIComponent(symbol)}`, { method: 'POST' });
      if (status === 200 && body && body.closed) {
        const f = body.fill || {};
        showCloseResult(
          `${symbol} closed: ${f.side || ''} ${qty(f.quantity)} @ ${price(f.fill_price)} · realized ${signed(body.realized_pnl_usd)} USDT`,
          pnlClass(body.realized_pnl_usd),
        );
        $('close-result').dataset.outcome = 'closed';
      } else {
        showCloseResult(`${symbol}: ${(body && body.message) || `HTTP ${status}`}`, 'error');
        $('close-result').dataset.outcome = 'error';
      }
    } catch (err) {
      showCloseResult(`${symbol}: ${err.status === 401 ? 'token needed' : err.message}`, 'error');
      $('close-result').dataset.outcome = 'error';
    } finally {
      armed.delete(symbol);
      if (ui.state) renderPositions(ui.state.positions, true);
    }
  }

  // -- fills --------------------------------------------------------------------------
  function renderFills(fills) {
    ui.fills = fills;
    const rows = fills.map((f) =>
      el(
        'tr',
        { 'data-order': f.order_id, title: `${f.order_id} · signal ${f.signal_id} · ${f.origin}${f.exit_reason ? ` · ${f.exit_reason}` : ''}` },
        el('td', { text: hms(f.ts) }),
        el('td', { className: 'sym', text: f.symbol }),
        el('td', { className: `side-${f.side}`, text: f.side }),
        el('td', { className: 'num', text: qty(f.quantity) }),
        el('td', { className: 'num', text: price(f.fill_price) }),
        el('td', { className: 'num', text: money(f.notional_usd) }),
        el('td', { className: 'num', text: money(f.fee_usd) }),
        el('td', { className: 'num', text: pct(f.slippage_pct) }),
        el('td', { className: 'num', text: `${f.latency_ms} ms` }),
        el('td', {
          className: f.status === 'FILLED' ? 'pos' : 'neg',
          // A closing fill shows why it closed (stop_loss, take_profit, trailing_stop, time_limit, signal, manual).
          text: f.status === 'FILLED' ? (f.exit_reason ? `CLOSE ${f.exit_reason}` : f.origin === 'signal' ? 'FILLED' : 'CLOSE') : `REJ ${f.reject_reason || ''}`,
        }),
      ),
    );
    $('fills').querySelector('tbody').replaceChildren(...rows);
    $('fills-count').textContent = `latest ${fills.length}`;
    renderMarkers();
  }

  // -- decisions ------------------------------------------------------------------------
  function renderDecisions(items) {
    const rows = items.map((d) => {
      const verdict = el('span', { className: 'verdict' });
      if (d.verdict === 'APPROVED') {
        verdict.append(el('span', { className: 'tag ok', text: d.intent || 'APPROVED' }));
        if (isNum(d.quantity)) verdict.append(el('span', { className: 'tag info', text: `${d.side} ${qty(d.quantity)} · $${money(d.notional_usd)}` }));
      } else {
        verdict.append(el('span', { className: 'tag no', text: 'REJECTED' }));
        for (const r of d.reasons) verdict.append(el('span', { className: 'tag reason', text: r, 'data-reason': r }));
      }
      const li = el(
        'li',
        { 'data-key': d.key, 'data-verdict': d.verdict, 'data-symbol': d.symbol, title: `${d.signal_id} from ${d.source}` },
        el('span', { className: 't', text: hms(d.ts) }),
        el('span', { className: 's', text: d.symbol }),
        el('span', { className: `side-${d.action === 'BUY' ? 'BUY' : d.action === 'SELL' ? 'SELL' : ''}`, text: d.action }),
        el('span', { className: 'c', text: isNum(d.confidence) ? d.confidence.toFixed(2) : '' }),
        verdict,
      );
      if (d.key === ui.selectedKey) li.classList.add('selected');
      li.addEventListener('click', () => selectDecision(d.key));
      return li;
    });
    $('decisions').replaceChildren(...rows);
    const approved = items.filter((d) => d.verdict === 'APPROVED').length;
    $('decisions-count').textContent = `latest ${items.length} · ${approved} approved · ${items.length - approved} rejected`;
  }

  async function selectDecision(key) {
    ui.selectedKey = key;
    for (const li of $('decisions').children) li.classList.toggle('selected', li.dataset.key === key);
    const box = $('decision-detail');
    try {
      const { status, body } = await api(`/api/decisions/${encodeURIComponent(key)}`);
      if (status !== 200) {
        box.replaceChildren(el('div', { className: 'empty', text: (body && body.message) || `HTTP ${status}` }));
        return;
      }
      renderDecision(body);
    } catch (err) {
      box.replaceChildren(el('div', { className: 'empty', text: err.message }));
    }
  }

  function cell(value) {
    if (value === null || value === undefined) return '—';
    if (typeof value === 'number') return Math.abs(value) >= 1000 ? usdFmt.format(value) : String(Number(value.toPrecision(6)));
    return String(value);
  }

  function renderDecision(d) {
    $('detail-id').textContent = d.signal_id;
    const summary = el(
      'div',
      { className: 'summary' },
      el('span', { className: `tag ${d.verdict === 'APPROVED' ? 'ok' : 'no'}`, text: d.verdict }),
      el('strong', { text: d.symbol }),
      el('span', { text: `${d.action} · confidence ${isNum(d.confidence) ? d.confidence.toFixed(2) : '—'} · from ${d.source}` }),
      el('span', { className: 'muted', text: `${hms(d.ts)} UTC` }),
    );
    if (d.verdict === 'APPROVED') {
      summary.append(
        el('span', { className: 'tag info', text: `${d.intent} ${d.side} ${qty(d.quantity)} @ ${price(d.reference_price)} = $${money(d.notional_usd)}` }),
      );
      if (d.origin && d.origin !== 'signal') summary.append(el('span', { className: 'tag info', text: d.origin }));
    } else {
      for (const r of d.reasons) summary.append(el('span', { className: 'tag reason', text: r }));
    }
    const checks = el(
      'table',
      { className: 'table compact', id: 'checks' },
      el('thead', null, el('tr', null, el('th', { text: 'Rule' }), el('th', { text: 'Passed' }), el('th', { className: 'num', text: 'Value' }), el('th', { className: 'num', text: 'Limit' }), el('th', { text: 'Note' }))),
      el(
        'tbody',
        null,
        ...(d.checks || []).map((c) =>
          el(
            'tr',
            { className: c.passed ? '' : 'failed', 'data-rule': c.rule },
            el('td', { text: c.rule }),
            el('td', { className: `passed-${c.passed}`, text: c.passed ? '✓' : '✕' }),
            el('td', { className: 'num', text: cell(c.value) }),
            el('td', { className: 'num', text: cell(c.limit) }),
            el('td', { className: 'note', text: c.note || '' }),
          ),
        ),
      ),
    );
    const parts = [summary, el('h3', { text: 'Checks' }), checks];
    if (d.sizing) {
      const rows = Object.entries(d.sizing).map(([k, v]) => el('tr', null, el('td', { text: k }), el('td', { className: 'num', text: cell(v) })));
      parts.push(el('h3', { text: 'Sizing' }), el('table', { className: 'table compact', id: 'sizing' }, el('tbody', null, ...rows)));
    }
    $('decision-detail').replaceChildren(...parts);
  }

  // -- market (price source and quotes) -------------------------------------------------
  function renderMarket(m) {
    const box = $('market');
    if (!m) {
      box.replaceChildren();
      return;
    }
    const state = m.source === 'simulator' ? 'simulated' : m.connected ? 'connected' : `DOWN ${Math.round(m.down_ms / 1000)} s`;
    const head = el('div', {
      className: m.connected ? '' : 'bad',
      'data-feed': m.source,
      text: `prices: ${m.source} · ${state} · reconnects ${m.reconnects} · gaps ${m.gaps}`,
    });
    const quotes = Object.entries(m.quotes).map(([symbol, q]) =>
      el('span', { className: 'tag info', 'data-quote': symbol, text: `${symbol} ${q.bid} / ${q.ask}` }),
    );
    box.replaceChildren(head, el('div', { className: 'quotes' }, ...quotes));
  }

  // -- health ---------------------------------------------------------------------------
  function renderHealth(h) {
    if (!h) return;
    const services = h.services.map((s) =>
      el(
        'li',
        { 'data-service': s.name, 'data-status': s.status, title: `${s.url}/health` },
        el('div', { className: 'name' }, el('i'), el('span', { text: s.name }), el('span', { className: 'st', text: s.status })),
        el('div', { className: 'det', text: `${s.detail}${isNum(s.since) ? ` · since ${hms(s.since)}` : ''}` }),
      ),
    );
    $('services').replaceChildren(...services);
    renderMarket(h.market);
    const streams = h.streams.map((st) => {
      const groups = el('span', { className: 'groups' });
      for (const g of st.groups) {
        const hot = (isNum(g.lag) && g.lag > 100) || g.pending > 100;
        groups.append(el('span', { className: `tag info${hot ? ' lag-hot' : ''}`, text: `${g.name} ${isNum(g.lag) ? g.lag : '?'} / ${g.pending}`, 'data-group': g.name }));
      }
      if (st.groups.length === 0) groups.append(el('span', { className: 'muted', text: '—' }));
      return el('tr', { 'data-topic': st.topic }, el('td', { text: st.topic }), el('td', { className: 'num', text: String(st.length) }), el('td', null, groups));
    });
    $('streams').querySelector('tbody').replaceChildren(...streams);
    $('dlq').replaceChildren(
      ...h.dlq.map((d) => el('li', { className: d.length > 0 ? 'bad' : '', 'data-topic': d.topic, text: `${d.topic.replace(/\.dlq$/, '')} ${d.length}` })),
    );
    const notes = [
      h.bus.connected
        ? `bus ${h.bus.kind} connected${isNum(h.bus.back_at) ? ` (back since ${hms(h.bus.back_at)} UTC)` : ''}`
        : `bus ${h.bus.kind} UNREACHABLE${isNum(h.bus.down_since) ? ` since ${hms(h.bus.down_since)} UTC` : ''}`,
    ];
    if (!h.feed.ok) notes.push(`reading the streams failed: ${h.feed.error}`);
    if (h.feed.jumps > 0) notes.push(`skipped ahead ${h.feed.jumps}× under load`);
    if (h.feed.invalid_entries > 0) notes.push(`${h.feed.invalid_entries} invalid entries skipped`);
    $('feed-note').textContent = notes.join(' · ');
    $('health-age').dataset.checkedAt = String(h.checked_at || '');
    tick();
  }

  // -- whole state ----------------------------------------------------------------------
  function renderAll(state) {
    ui.state = state;
    renderPortfolio(state.portfolio);
    renderStats(state.risk, state.execution);
    renderPositions(state.positions);
    ui.fills = state.fills;
    setCurve(state.equity);
    renderFills(state.fills);
    renderDecisions(state.decisions);
    renderHealth(state.health);
    document.body.dataset.ready = 'true';
  }

  function onEvent(name, handler) {
    ui.source.addEventListener(name, (event) => {
      ui.lastEventAt = Date.now();
      let data;
      try {
        data = JSON.parse(event.data);
      } catch {
        return;
      }
      handler(data);
    });
  }

  function setConn(state, text) {
    $('conn').dataset.state = state;
    $('conn').querySelector('span').textContent = text;
  }

  function openStream() {
    if (ui.source) ui.source.close();
    const url = ui.token ? `/api/events?token=${encodeURIComponent(ui.token)}` : '/api/events';
    const source = new EventSource(url);
    ui.source = source;
    onEvent('state', (s) => renderAll(s));
    onEvent('portfolio', (d) => {
      if (!ui.state) return;
      ui.state.portfolio = d.portfolio;
      ui.state.positions = d.positions;
      renderPortfolio(d.portfolio);
      renderPositions(d.positions);
    });
    onEvent('stats', (d) => {
      if (!ui.state) return;
      ui.state.risk = d.risk;
      ui.state.execution = d.execution;
      renderStats(d.risk, d.execution);
    });
    onEvent('equity', (d) => addPoints(d.points));
    onEvent('fills', (d) => {
      if (ui.state) ui.state.fills = d.items;
      renderFills(d.items);
    });
    onEvent('decisions', (d) => {
      if (ui.state) ui.state.decisions = d.items;
      renderDecisions(d.items);
    });
    onEvent('health', (h) => {
      if (ui.state) ui.state.health = h;
      renderHealth(h);
    });
    source.addEventListener('open', () => setConn('live', 'live'));
    source.addEventListener('error', () => {
      if (source.readyState === EventSource.CLOSED) {
        // The server refused the stream (or is gone): start over after a pause.
        setConn('offline', 'offline · retrying');
        scheduleReconnect();
      } else {
        setConn('reconnecting', 'reconnecting');
      }
    });
  }

  function scheduleReconnect() {
    clearTimeout(ui.reconnectTimer);
    ui.reconnectTimer = setTimeout(connect, RECONNECT_MS);
  }

  async function connect() {
    clearTimeout(ui.reconnectTimer);
    try {
      const { status, body } = await api('/api/state');
      if (status !== 200) throw new Error(`HTTP ${status}`);
      renderAll(body);
      openStream();
    } catch (err) {
      if (err.status === 401) {
        setConn('offline', 'token needed');
        return;
      }
      setConn('offline', 'offline · retrying');
      scheduleReconnect();
    }
  }

  /** Once a second: the clock, the age of the health picture, a silent stream. */
  function tick() {
    const now = new Date();
    $('clock').textContent = `${pad(now.getUTCHours())}:${pad(now.getUTCMinutes())}:${pad(now.getUTCSeconds())} UTC`;
    const checkedAt = Number($('health-age').dataset.checkedAt);
    $('health-age').textContent = checkedAt ? `checked ${ago(checkedAt)}` : '';
    if (ui.source && ui.source.readyState === EventSource.OPEN && ui.lastEventAt && Date.now() - ui.lastEventAt > STALE_HEALTH_MS) {
      setConn('reconnecting', 'stalled');
    }
  }
  setInterval(tick, 1000);

  window.addEventListener('beforeunload', () => {
    if (ui.source) ui.source.close();
  });

  tick();
  connect();
})();
