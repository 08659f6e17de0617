/* The dashboard accounts view (docs/scale-out.md). Values written with textContent, never as HTML. */
/* global document, fetch, sessionStorage, setInterval */
'use strict';
// The accounts view: GET /api/accounts every 2 s, one column per account.
(() => {
  const TOKEN_KEY = 'quantum-trader.api_token';
  const $ = (id) => document.getElementById(id);
  const pct = (v) => (typeof v === 'number' ? `${(v * 100).toFixed(2)}%` : '–');
  const num = (v, d = 2) => (typeof v === 'number' ? v.toFixed(d) : '–');
  const ROWS = [
    ['equity USD', (a) => num(a.equity_usd)],
    ['return', (a) => pct(a.return)],
    ['drawdown', (a) => pct(a.drawdown_pct)],
    ['max drawdown', (a) => pct(a.max_drawdown_pct)],
    ['win rate', (a) => pct(a.win_rate)],
    ['trades', (a) => num(a.closed_trades, 0)],
    ['signals', (a) => num(a.received, 0)],
    ['approval rate', (a) => pct(a.approval_rate)],
  ];

  function cell(tag, text, title) {
    const el = document.createElement(tag);
    el.textContent = text;
    if (title) el.title = title;
    return el;
  }

  function render(accounts) {
    $('accounts-empty').hidden = accounts.length > 0;
    const head = $('accounts-head');
    head.replaceChildren(cell('th', 'account'), ...accounts.map((a) => cell('th', a.name + (a.shadow ? ' (shadow)' : ''), a.error || '')));
    const reasons = [...new Set(accounts.flatMap((a) => Object.keys(a.rejected_by_reason || {})))].sort();
    const rows = [...ROWS, ...reasons.map((r) => [`rejected ${r}`, (a) => String((a.rejected_by_reason || {})[r] || 0)])];
    $('accounts-body').replaceChildren(
      ...rows.map(([label, value]) => {
        const tr = document.createElement('tr');
        tr.append(cell('th', label), ...accounts.map((a) => cell('td', a.error ? '?' : value(a), a.error || '')));
        return tr;
      }),
    );
  }

  async function refresh() {
    const token = sessionStorage.getItem(TOKEN_KEY) || '';
    try {
      const response = await fetch('/api/accounts', { headers: { accept: 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) } });
      if (!response.ok) throw new Error(response.status === 401 ? 'token needed (enter it on the loop dashboard)' : `HTTP ${response.status}`);
      const body = await response.json();
      render(body.accounts);
      $('accounts-status').textContent = `updated ${new Date().toLocaleTimeString()}`;
    } catch (err) {
      $('accounts-status').textContent = `not updated: ${err.message}`;
    }
  }

  refresh();
  setInterval(refresh, 2000);
})();
