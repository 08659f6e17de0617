import { describe, expect, it } from 'vitest';
import type { PositionUpdate } from '../../core/messages.js';
import {
  HISTORY_BOUNDS,
  appendEquity,
  applyPosition,
  figuresFromMonitor,
  figuresFromUpdate,
  fillOf,
  positionRowOf,
  prependBounded,
  type EquityPoint,
  type PositionRow,
} from './model.js';

const portfolio = {
  balance_usd: 9990,
  equity_usd: 10_015.5,
  exposure_usd: 1000,
  exposure_pct: 0.0998,
  drawdown_pct: 0,
  open_positions: 1,
  win_rate: 0,
  closed_trades: 0,
};

function update(symbol: string, side: PositionUpdate['side'], quantity: number, ts: number): PositionUpdate {
  return {
    schema_version: 1,
    symbol,
    side,
    quantity,
    avg_entry_price: 100,
    mark_price: 101,
    unrealized_pnl_usd: quantity,
    realized_pnl_usd: 0,
    fees_usd: 0.4,
    cause: 'fill',
    ts,
    portfolio,
  };
}

const point = (time: number, equity: number): EquityPoint => ({ time, equity_usd: equity, drawdown_pct: 0 });

describe('appendEquity', () => {
  it.each([
    { name: 'appends later seconds', curve: [point(1, 10)], add: [point(2, 11), point(3, 12)], times: [1, 2, 3], last: 12 },
    { name: 'keeps the last value of a second', curve: [point(1, 10)], add: [point(1, 11), point(1, 12)], times: [1], last: 12 },
    { name: 'drops points older than the end', curve: [point(5, 10)], add: [point(4, 99)], times: [5], last: 10 },
  ])('$name', ({ curve, add, times, last }) => {
    const result = appendEquity(curve, add);
    expect(result.curve.map((p) => p.time)).toEqual(times);
    expect(result.curve.at(-1)?.equity_usd).toBe(last);
  });

  it('keeps at most the bound, dropping the oldest', () => {
    const points = Array.from({ length: HISTORY_BOUNDS.equityPoints + 10 }, (_, i) => point(i, i));
    const { curve, changed } = appendEquity([], points);
    expect(curve).toHaveLength(HISTORY_BOUNDS.equityPoints);
    expect(curve[0]!.time).toBe(10);
    expect(changed).toHaveLength(points.length);
  });
});

describe('applyPosition', () => {
  it('adds, replaces and removes on FLAT; ignores an older update', () => {
    let positions: Map<string, PositionRow> = new Map();
    positions = applyPosition(positions, update('BTCUSDT', 'LONG', 1, 1000));
    positions = applyPosition(positions, update('BTCUSDT', 'LONG', 2, 2000));
    expect(positions.get('BTCUSDT')?.quantity).toBe(2);
    expect(positions.get('BTCUSDT')).not.toHaveProperty('portfolio');
    positions = applyPosition(positions, update('BTCUSDT', 'LONG', 5, 1500));
    expect(positions.get('BTCUSDT')?.quantity).toBe(2);
    positions = applyPosition(positions, update('BTCUSDT', 'FLAT', 0, 3000));
    expect(positions.size).toBe(0);
  });
});

describe('header figures', () => {
  it('derives realized and unrealized PnL from a PositionUpdate (balance = initial + realized; equity = balance + unrealized)', () => {
    const figures = figuresFromUpdate(portfolio, 5000, 10_000);
    expect(figures).toMatchObject({ realized_pnl_usd: -10, unrealized_pnl_usd: 25.5, source: 'bus', as_of: 5000, fees_usd: null });
  });

  it('takes the monitor /portfolio as it is, and refuses a body without balance or equity', () => {
    const body = { ...portfolio, realized_pnl_usd: -10, unrealized_pnl_usd: 25.5, fees_usd: 0.8, initial_balance_usd: 10_000 };
    expect(figuresFromMonitor(body, 7, 10_000)).toMatchObject({ ...body, source: 'monitor', as_of: 7 });
    expect(figuresFromMonitor({ error: 'x' }, 7, 10_000)).toBeNull();
  });
});

describe('prependBounded', () => {
  it('puts the newest first and keeps the limit', () => {
    expect(prependBounded([3, 2, 1], [5, 4], 4)).toEqual([5, 4, 3, 2]);
    expect(prependBounded([1], [9, 8, 7], 2)).toEqual([9, 8]);
  });
});

describe('exit levels and exit reasons', () => {
  it('a position row keeps its armed levels; a closing fill keeps its exit_reason', () => {
    const row = positionRowOf({
      schema_version: 1, symbol: 'SOLUSDT', side: 'LONG', quantity: 1, avg_entry_price: 150, mark_price: 151,
      unrealized_pnl_usd: 1, realized_pnl_usd: 0, fees_usd: 0, cause: 'mark', ts: 1, stop_loss: 140, trailing_stop: 145.5, expires_ts: 99,
    });
    expect(row).toMatchObject({ stop_loss: 140, trailing_stop: 145.5, expires_ts: 99 });
    expect(row).not.toHaveProperty('take_profit');
    const fill = fillOf({
      schema_version: 1, order_id: 'PAPER-000000000001', signal_id: 'exit-stop_loss-0-s', symbol: 'SOLUSDT', side: 'SELL', quantity: 1,
      reference_price: 139, fill_price: 138.9, slippage_pct: 0.0007, fee_usd: 0.05, fee_rate: 0.0004, notional_usd: 138.9,
      status: 'FILLED', signal_ts: 1, ts: 2, reduce_only: true, origin: 'protective_exit', exit_reason: 'stop_loss',
    });
    expect(fill.exit_reason).toBe('stop_loss');
  });
});
