import { describe, expect, it } from 'vitest';
import type { ExecutionResult } from '../../core/messages.js';
import { MonitorState } from './state.js';

let seq = 0;
function fill(side: 'BUY' | 'SELL', quantity: number, price: number, fee: number, extra: Partial<ExecutionResult> = {}): ExecutionResult {
  seq += 1;
  return {
    schema_version: 1,
    order_id: `PAPER-${seq.toString(16).padStart(12, '0')}`,
    signal_id: `s-${seq}`,
    symbol: 'BTCUSDT',
    side,
    quantity,
    reference_price: price,
    fill_price: price,
    slippage_pct: 0,
    fee_usd: fee,
    fee_rate: 0.0004,
    notional_usd: quantity * price,
    status: 'FILLED',
    signal_ts: 1,
    ts: 2,
    reduce_only: false,
    origin: 'signal',
    ...extra,
  };
}

describe('MonitorState', () => {
  it('applies a fill once, by entry id and by order id', () => {
    const state = new MonitorState(10_000);
    const f = fill('BUY', 0.01, 50_000, 0.2);
    expect(state.onExecution(f, '10-0', 100).kind).toBe('applied');
    expect(state.onExecution(f, '10-0', 100).kind).toBe('duplicate');
    expect(state.onExecution(f, '11-0', 110).kind).toBe('duplicate');
    expect(state.portfolio().balance_usd).toBe(9999.8);
  });

  it('publishes a fill update, then a close update with the realized result', () => {
    const state = new MonitorState(10_000);
    const open = state.onExecution(fill('BUY', 0.01, 50_000, 0.2), '1-0', 10);
    // Stamped when the update is made (10), not with the fill's own ts (2).
    expect(open.kind === 'applied' && open.update).toMatchObject({ side: 'LONG', quantity: 0.01, cause: 'fill', realized_pnl_usd: -0.2, ts: 10 });
    const close = state.onExecution(fill('SELL', 0.01, 51_000, 0.204), '2-0', 20);
    expect(close.kind === 'applied' && close.update).toMatchObject({ side: 'FLAT', cause: 'close', realized_pnl_usd: 9.596 });
    expect(close.kind === 'applied' && close.effect.closedRoundTrip?.win).toBe(true);
    expect(state.portfolio()).toMatchObject({ balance_usd: 10_009.596, closed_trades: 1, win_rate: 1 });
  });

  it('refuses a fill the ledger cannot apply without moving the watermark (a retry is not a duplicate)', () => {
    const state = new MonitorState(10_000);
    // 1e-300 is a positive number, so it passes the schema, but 0 at 18 decimals.
    const bad = fill('BUY', 0.01, 1e-300, 0);
    const outcome = state.onExecution(bad, '5-0', 10);
    expect(outcome.kind).toBe('refused');
    expect(outcome.kind === 'refused' && outcome.reason).toMatch(/^LEDGER: fill price must be positive/);
    expect(state.statistics().last_fill_id).toBe('0-0');
    expect(state.portfolio().balance_usd).toBe(10_000);
    expect(state.onExecution(fill('BUY', 0.01, 50_000, 0), '6-0', 20).kind).toBe('applied');
  });

  it('counts REJECTED results without touching the books', () => {
    const state = new MonitorState(10_000);
    expect(state.onExecution(fill('BUY', 0.01, 0, 0, { status: 'REJECTED', reject_reason: 'NO_PRICE: x' }), '1-0', 10).kind).toBe('rejected');
    expect(state.portfolio().balance_usd).toBe(10_000);
    expect(state.statistics().rejected_results).toBe(1);
  });

  it('marks to the latest tick and ignores late ones', () => {
    const state = new MonitorState(10_000);
    state.onExecution(fill('BUY', 0.01, 50_000, 0), '1-0', 10);
    expect(state.onTick({ schema_version: 1, symbol: 'BTCUSDT', price: 51_000, ts: 10, source: 'manual' }, 10).kind).toBe('accept');
    expect(state.onTick({ schema_version: 1, symbol: 'BTCUSDT', price: 49_000, ts: 9, source: 'manual' }, 10).kind).toBe('stale');
    expect(state.portfolio().unrealized_pnl_usd).toBe(10);
    expect(state.markUpdates(11)).toEqual([expect.objectContaining({ cause: 'mark', mark_price: 51_000, unrealized_pnl_usd: 10 })]);
  });

  it('restores from a snapshot and keeps refusing what it already applied', () => {
    const a = new MonitorState(10_000);
    const f = fill('BUY', 0.02, 3000, 0.024, { symbol: 'ETHUSDT' });
    a.onExecution(f, '5-0', 50);
    const b = new MonitorState(10_000);
    b.restore(JSON.parse(JSON.stringify(a.toSnapshot())));
    b.rememberApplied(f.order_id, '5-0');
    expect(b.portfolio()).toEqual(a.portfolio());
    expect(b.onExecution(f, '5-0', 50).kind).toBe('duplicate');
    expect(b.onExecution(f, '6-0', 60).kind).toBe('duplicate');
  });
});
