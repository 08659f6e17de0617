/**
 * The Position Monitor (SPEC §6) on a real Redis: fills published by hand to
 * trade.execution.res, prices set through POST /prices, the books read back over HTTP
 * (`inject`) and from trade.position.update. Expected figures are worked out by hand
 * below, never with the ledger. Every test has its own stream prefix; nothing sleeps.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { compareIds, type EventBus } from '../src/bus/bus.js';
import { publishTradeSignal } from '../src/bus/publish.js';
import { GROUPS, TOPICS } from '../src/bus/topics.js';
import {
  ExecutionResult,
  PositionUpdate,
  PositionView,
  PriceTick,
  RiskApprovedSignal,
  TradeSignal,
} from '../src/core/messages.js';
import type { Launched } from '../src/services/launch.js';
import { waitFor } from './helpers/redis.js';
import {
  fill,
  metricValue,
  readEntries,
  readPayloads,
  request,
  testConfig,
  testScope,
  waitForPayloads,
  waitForSettled,
} from './helpers/services.js';

const TOKEN = 'monitor-test-token';

const INSTRUMENTS = [
  { symbol: 'BTCUSDT', tick_size: 0.01, step_size: 0.0001, min_notional_usd: 10, start_price: 50_000 },
  { symbol: 'ETHUSDT', tick_size: 0.01, step_size: 0.001, min_notional_usd: 10, start_price: 3000 },
];

const scope = testScope('monitor');
afterEach(() => scope.teardown());

type Monitor = Launched<'monitor'>;
type Prices = { prices: Record<string, number> };

/** Sets a price through the monitor's POST /prices and waits until the tick has come back and been applied. */
async function markAt(monitor: Monitor, symbol: string, price: number): Promise<void> {
  const res = await request(monitor.app, 'POST', `/prices/${symbol}`, { body: { price } });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  await waitFor(async () => (await request<Prices>(monitor.app, 'GET', '/prices')).body.prices[symbol] === price, {
    what: `the monitor's mark of ${symbol} to be ${price}`,
  });
}

const usd = (value: number) => expect.closeTo(value, 8);

/** A position as GET /positions shows it, every amount to 1e-8. */
function positionView(p: { symbol: string; side: string; quantity: number; avg: number; mark: number; unrealized: number; realized: number; fees: number }) {
  return {
    schema_version: 1,
    symbol: p.symbol,
    side: p.side,
    quantity: usd(p.quantity),
    avg_entry_price: usd(p.avg),
    mark_price: usd(p.mark),
    unrealized_pnl_usd: usd(p.unrealized),
    realized_pnl_usd: usd(p.realized),
    fees_usd: usd(p.fees),
    cause: 'mark',
    ts: expect.any(Number),
  };
}

/*
 * The fills, worked out by hand. Initial balance 10,000; marks set before the fills:
 * BTCUSDT 50,000, ETHUSDT 3,000 (they stay there until the marks after the fills).
 * Fees are 0.04 % of the fill notional. Unrealized = (mark − avg entry) × signed qty.
 *
 *  #  fill                          position after         realized gross              fee    balance
 *  1  BTC BUY  0.1 @ 50,000         LONG  0.1 @ 50,000       0                          2.00   10,000 − 2.00          =  9,998.00
 *  2  BTC BUY  0.3 @ 52,000         LONG  0.4 @ 51,500 (a)   0                          6.24    9,998.00 − 6.24       =  9,991.76
 *  3  BTC SELL 0.2 @ 53,000         LONG  0.2 @ 51,500     (53,000 − 51,500) × 0.2 = +300   4.24    9,991.76 + 300 − 4.24 = 10,287.52
 *  4  BTC SELL 0.5 @ 54,000 (flip)  SHORT 0.3 @ 54,000     (54,000 − 51,500) × 0.2 = +500  10.80   10,287.52 + 500 − 10.80 = 10,776.72
 *  5  ETH SELL 2   @  3,000         SHORT 2   @  3,000       0                          2.40   10,776.72 − 2.40       = 10,774.32
 *  6  ETH BUY  3   @  3,100 (flip)  LONG  1   @  3,100     (3,000 − 3,100) × 2 = −200   3.72   10,774.32 − 200 − 3.72 = 10,570.60
 *
 *  (a) (0.1 × 50,000 + 0.3 × 52,000) / 0.4 = (5,000 + 15,600) / 0.4 = 51,500
 *  A flip fill's fee is split by quantity: #4 closes 0.2 of 0.5 → 10.80 × 0.2/0.5 = 4.32 closes, 6.48 opens the
 *  short; #6 closes 2 of 3 → 3.72 × 2/3 = 2.48 closes, 1.24 opens the long.
 *  Round trips: BTC LONG gross 300 + 500 = 800, fees 2 + 6.24 + 4.24 + 4.32 = 16.80, net 783.20 (win);
 *               ETH SHORT gross −200, fees 2.40 + 2.48 = 4.88, net −204.88 (loss) → win rate 1/2.
 *  A position's realized_pnl_usd is its realized gross minus its fees since it opened.
 */
const FILLS = [
  fill({ symbol: 'BTCUSDT', side: 'BUY', quantity: 0.1, fill_price: 50_000, fee_usd: 2.0 }),
  fill({ symbol: 'BTCUSDT', side: 'BUY', quantity: 0.3, fill_price: 52_000, fee_usd: 6.24 }),
  fill({ symbol: 'BTCUSDT', side: 'SELL', quantity: 0.2, fill_price: 53_000, fee_usd: 4.24 }),
  fill({ symbol: 'BTCUSDT', side: 'SELL', quantity: 0.5, fill_price: 54_000, fee_usd: 10.8 }),
  fill({ symbol: 'ETHUSDT', side: 'SELL', quantity: 2, fill_price: 3000, fee_usd: 2.4 }),
  fill({ symbol: 'ETHUSDT', side: 'BUY', quantity: 3, fill_price: 3100, fee_usd: 3.72 }),
];

/*
 * The PositionUpdate of each fill (marks BTC 50,000, ETH 3,000). Equity = balance + Σ unrealized; the peak
 * equity is 10,000 until #4; exposure = Σ |qty| × mark; drawdown = (peak − equity) / peak.
 *  #1 unrealized 0;                                   equity  9,998.00; exposure 0.1 × 50,000 = 5,000
 *  #2 0.4 × 50,000 − 20,600 = −600;                   equity  9,391.76; exposure 20,000
 *  #3 0.2 × 50,000 − 10,300 = −300;                   equity  9,987.52; exposure 10,000
 *  #4 short: (54,000 − 50,000) × 0.3 = +1,200;        equity 11,976.72 (new peak); exposure 15,000
 *  #5 BTC +1,200, ETH (3,000 − 3,000) × 2 = 0;        equity 11,974.32; exposure 15,000 + 6,000 = 21,000
 *  #6 BTC +1,200, ETH (3,000 − 3,100) × 1 = −100;     equity 11,670.60; exposure 15,000 + 3,000 = 18,000
 */
const AFTER_FILL = [
  { symbol: 'BTCUSDT', side: 'LONG', quantity: 0.1, avg: 50_000, unrealized: 0, realized: -2.0, fees: 2.0,
    balance: 9998.0, equity: 9998.0, exposure: 5000, drawdown: (10_000 - 9998) / 10_000, open: 1, closed: 0, winRate: 0 },
  { symbol: 'BTCUSDT', side: 'LONG', quantity: 0.4, avg: 51_500, unrealized: -600, realized: -(2.0 + 6.24), fees: 8.24,
    balance: 9991.76, equity: 9391.76, exposure: 20_000, drawdown: (10_000 - 9391.76) / 10_000, open: 1, closed: 0, winRate: 0 },
  { symbol: 'BTCUSDT', side: 'LONG', quantity: 0.2, avg: 51_500, unrealized: -300, realized: 300 - 12.48, fees: 12.48,
    balance: 10_287.52, equity: 9987.52, exposure: 10_000, drawdown: (10_000 - 9987.52) / 10_000, open: 1, closed: 0, winRate: 0 },
  { symbol: 'BTCUSDT', side: 'SHORT', quantity: 0.3, avg: 54_000, unrealized: 1200, realized: -6.48, fees: 6.48,
    balance: 10_776.72, equity: 11_976.72, exposure: 15_000, drawdown: 0, open: 1, closed: 1, winRate: 1 },
  { symbol: 'ETHUSDT', side: 'SHORT', quantity: 2, avg: 3000, unrealized: 0, realized: -2.4, fees: 2.4,
    balance: 10_774.32, equity: 11_974.32, exposure: 21_000, drawdown: (11_976.72 - 11_974.32) / 11_976.72, open: 2, closed: 1, winRate: 1 },
  { symbol: 'ETHUSDT', side: 'LONG', quantity: 1, avg: 3100, unrealized: -100, realized: -1.24, fees: 1.24,
    balance: 10_570.6, equity: 11_670.6, exposure: 18_000, drawdown: (11_976.72 - 11_670.6) / 11_976.72, open: 2, closed: 2, winRate: 0.5 },
] as const;

/*
 * Then the marks, one after the other (balance stays 10,570.60; BTC short 0.3 from 54,000, ETH long 1 from 3,100):
 *   BTC 49,000: BTC (54,000 − 49,000) × 0.3 = 1,500, ETH −100 → equity 10,570.60 + 1,400 = 11,970.60 (< peak 11,976.72)
 *   ETH  3,150: ETH (3,150 − 3,100) × 1 = 50          → equity 10,570.60 + 1,550 = 12,120.60 (new peak)
 *   BTC 50,500: BTC (54,000 − 50,500) × 0.3 = 1,050   → equity 10,570.60 + 1,100 = 11,670.60
 * Final: exposure 0.3 × 50,500 + 1 × 3,150 = 15,150 + 3,150 = 18,300; drawdown (12,120.60 − 11,670.60) / 12,120.60;
 * realized net 800 − 200 − 29.40 = 570.60 (fees 2 + 6.24 + 4.24 + 10.80 + 2.40 + 3.72 = 29.40).
 */
const FINAL_POSITIONS = [
  positionView({ symbol: 'BTCUSDT', side: 'SHORT', quantity: 0.3, avg: 54_000, mark: 50_500, unrealized: 1050, realized: -6.48, fees: 6.48 }),
  positionView({ symbol: 'ETHUSDT', side: 'LONG', quantity: 1, avg: 3100, mark: 3150, unrealized: 50, realized: -1.24, fees: 1.24 }),
];
const FINAL_PORTFOLIO = {
  balance_usd: usd(10_570.6),
  equity_usd: usd(11_670.6),
  exposure_usd: usd(18_300),
  exposure_pct: usd(18_300 / 11_670.6),
  drawdown_pct: usd((12_120.6 - 11_670.6) / 12_120.6),
  open_positions: 2,
  win_rate: 0.5,
  closed_trades: 2,
  realized_pnl_usd: usd(570.6),
  unrealized_pnl_usd: usd(1100),
  fees_usd: usd(29.4),
  initial_balance_usd: 10_000,
};

describe('Position Monitor: the books', () => {
  it('keeps the books by the netting rules through a restart, a duplicate fill and a REJECTED result', async () => {
    const config = testConfig({ instruments: INSTRUMENTS });
    const prefix = scope.newPrefix();
    const bus1 = await scope.openBus(prefix);
    const first = await scope.launch('monitor', { bus: bus1, config });
    await markAt(first, 'BTCUSDT', 50_000);
    await markAt(first, 'ETHUSDT', 3000);

    for (const f of FILLS.slice(0, 3)) await bus1.publish(TOPICS.execution, f);
    await waitForSettled(bus1, GROUPS.monitor, [TOPICS.execution]);
    expect((await request(first.app, 'GET', '/positions')).body).toEqual({
      positions: [positionView({ symbol: 'BTCUSDT', side: 'LONG', quantity: 0.2, avg: 51_500, mark: 50_000, unrealized: -300, realized: 287.52, fees: 12.48 })],
    });
    expect((await request(first.app, 'GET', '/portfolio')).body).toMatchObject({ balance_usd: usd(10_287.52), equity_usd: usd(9987.52) });
    await first.stop();

    // While it is down: the rest of the fills.
    for (const f of FILLS.slice(3)) await bus1.publish(TOPICS.execution, f);

    const bus2 = await scope.openBus(prefix);
    const second = await scope.launch('monitor', { bus: bus2, config });
    await waitForSettled(bus2, GROUPS.monitor, [TOPICS.execution]);
    expect(second.service.state.statistics()).toMatchObject({ fills_applied: 6, rejected_results: 0, duplicates: 0 });

    // A duplicate (fill #2 published again) and a REJECTED result: counted, the books do not move.
    const before = {
      positions: (await request(second.app, 'GET', '/positions')).body,
      portfolio: (await request(second.app, 'GET', '/portfolio')).body,
    };
    const rejected = fill({ symbol: 'BTCUSDT', side: 'BUY', quantity: 0.1, status: 'REJECTED', reject_reason: 'NO_PRICE: test', fill_price: 0, fee_usd: 0, fee_rate: 0, notional_usd: 0 });
    await bus2.publish(TOPICS.execution, FILLS[1]);
    await bus2.publish(TOPICS.execution, rejected);
    await waitForSettled(bus2, GROUPS.monitor, [TOPICS.execution]);
    expect(second.service.state.statistics()).toMatchObject({ fills_applied: 6, rejected_results: 1, duplicates: 1 });
    const normalizeTs = (body: Record<string, unknown>) => JSON.parse(JSON.stringify(body).replace(/"ts":\d+/g, '"ts":0')) as unknown;
    expect(normalizeTs((await request(second.app, 'GET', '/positions')).body)).toEqual(normalizeTs(before.positions));
    expect((await request(second.app, 'GET', '/portfolio')).body).toEqual(before.portfolio);
    const metrics = (await request(second.app, 'GET', '/metrics')).text;
    expect(metricValue(metrics, 'qt_outcomes_total', { outcome: 'rejected_fill' })).toBe(1);
    expect(metricValue(metrics, 'qt_outcomes_total', { outcome: 'duplicate' })).toBe(1);
    expect(metricValue(metrics, 'qt_outcomes_total', { outcome: 'applied' })).toBe(3);

    // One PositionUpdate per applied fill, at once, in order; none for the duplicate or the rejection.
    const updates = await readPayloads(bus2, TOPICS.position, PositionUpdate);
    expect(updates.map((u) => u.order_id)).toEqual(FILLS.map((f) => f.order_id));
    updates.forEach((u, i) => {
      const e = AFTER_FILL[i]!;
      expect(u, `update after fill #${i + 1}`).toEqual({
        schema_version: 1,
        symbol: e.symbol,
        side: e.side,
        quantity: usd(e.quantity),
        avg_entry_price: usd(e.avg),
        mark_price: usd(e.symbol === 'BTCUSDT' ? 50_000 : 3000),
        unrealized_pnl_usd: usd(e.unrealized),
        realized_pnl_usd: usd(e.realized),
        fees_usd: usd(e.fees),
        cause: 'fill',
        order_id: FILLS[i]!.order_id,
        ts: expect.any(Number),
        portfolio: {
          balance_usd: usd(e.balance),
          equity_usd: usd(e.equity),
          exposure_usd: usd(e.exposure),
          exposure_pct: usd(e.exposure / e.equity),
          drawdown_pct: usd(e.drawdown),
          open_positions: e.open,
          win_rate: e.winRate,
          closed_trades: e.closed,
        },
      });
    });

    // The marks, in order; each tick comes back through the bus before the next is set.
    await markAt(second, 'BTCUSDT', 49_000);
    expect((await request(second.app, 'GET', '/portfolio')).body).toMatchObject({ equity_usd: usd(11_970.6), drawdown_pct: usd((11_976.72 - 11_970.6) / 11_976.72) });
    await markAt(second, 'ETHUSDT', 3150);
    expect((await request(second.app, 'GET', '/portfolio')).body).toMatchObject({ equity_usd: usd(12_120.6), drawdown_pct: 0 });
    await markAt(second, 'BTCUSDT', 50_500);

    expect((await request(second.app, 'GET', '/positions')).body).toEqual({ positions: FINAL_POSITIONS });
    expect((await request(second.app, 'GET', '/portfolio')).body).toEqual(FINAL_PORTFOLIO);
    expect((await request(second.app, 'GET', '/health')).body).toMatchObject({ open_positions: 2, unrealized_pnl_usd: usd(1100) });
    const positions = (await request<{ positions: unknown[] }>(second.app, 'GET', '/positions')).body.positions;
    for (const p of positions) PositionView.parse(p);
  });

  it('publishes mark-to-market updates for open positions, and none for a position once it is closed', async () => {
    const config = testConfig({ instruments: INSTRUMENTS, monitor: { mark_interval_ms: 50 } });
    const bus = await scope.openBus();
    const monitor = await scope.launch('monitor', { bus, config });
    await markAt(monitor, 'BTCUSDT', 50_000);
    await markAt(monitor, 'ETHUSDT', 3000);

    // Fills made a moment ago (the monitor may read a fill later than it was made, e.g. after a restart).
    const made = Date.now() - 5000;
    const btc = fill({ symbol: 'BTCUSDT', side: 'BUY', quantity: 0.01, fill_price: 50_000, ts: made, signal_ts: made });
    const ethOpen = fill({ symbol: 'ETHUSDT', side: 'BUY', quantity: 1, fill_price: 3000, ts: made, signal_ts: made });
    await bus.publish(TOPICS.execution, btc);
    await bus.publish(TOPICS.execution, ethOpen);
    const marks = (u: PositionUpdate, symbol: string) => u.cause === 'mark' && u.symbol === symbol;
    await waitForPayloads(bus, TOPICS.position, PositionUpdate, 2, (u) => marks(u, 'ETHUSDT'));
    await markAt(monitor, 'ETHUSDT', 3100);
    const marked = await waitForPayloads(bus, TOPICS.position, PositionUpdate, 1, (u) => marks(u, 'ETHUSDT') && u.mark_price === 3100);
    expect(marked[0]).toMatchObject({ side: 'LONG', quantity: 1, avg_entry_price: 3000, unrealized_pnl_usd: usd(100), portfolio: { open_positions: 2 } });
    expect(marked[0]!.order_id).toBeUndefined();

    const ethClose = fill({ symbol: 'ETHUSDT', side: 'SELL', quantity: 1, fill_price: 3100, fee_usd: 1.24, ts: made + 1, signal_ts: made + 1 });
    await bus.publish(TOPICS.execution, ethClose);
    const closeEntry = await waitFor(
      async () => (await readEntries(bus, TOPICS.position)).find((e) => e.fields.payload?.includes(ethClose.order_id)),
      { what: 'the update of the ETH close' },
    );
    expect(PositionUpdate.parse(JSON.parse(closeEntry.fields.payload!))).toMatchObject({
      symbol: 'ETHUSDT',
      side: 'FLAT',
      quantity: 0,
      cause: 'close',
      realized_pnl_usd: usd(100 - 1.2 - 1.24), // gross (3,100 − 3,000) × 1 = 100, fees 1.20 (open) + 1.24 (close)
      order_id: ethClose.order_id,
    });
    // Two more marks of BTC after the close, none of ETH.
    const after = await waitFor(
      async () => {
        const entries = (await readEntries(bus, TOPICS.position)).filter((e) => compareIds(e.id, closeEntry.id) > 0);
        const later = entries.map((e) => PositionUpdate.parse(JSON.parse(e.fields.payload!)));
        return later.filter((u) => marks(u, 'BTCUSDT')).length >= 2 ? later : null;
      },
      { what: 'two BTC marks after the ETH close' },
    );
    expect(after.filter((u) => u.symbol === 'ETHUSDT')).toEqual([]);

    // In stream order each symbol's updates never go back in time, so a reader keeping the
    // latest update per symbol (the dashboard) ends with exactly the open positions.
    const all = await readPayloads(bus, TOPICS.position, PositionUpdate);
    const latest = new Map<string, PositionUpdate>();
    for (const u of all) {
      const previous = latest.get(u.symbol);
      if (previous) expect(u.ts, `${u.symbol} ${u.cause} after ${previous.cause}`).toBeGreaterThanOrEqual(previous.ts);
      if (!previous || u.ts >= previous.ts) latest.set(u.symbol, u);
    }
    const open = [...latest.values()].filter((u) => u.side !== 'FLAT').map((u) => u.symbol);
    const positions = (await request<{ positions: PositionView[] }>(monitor.app, 'GET', '/positions')).body.positions;
    expect(open).toEqual(positions.map((p) => p.symbol));
    expect(open).toEqual(['BTCUSDT']);
  });
});

describe('Position Monitor: manual close', () => {
  it('closes a position through the risk gate and execution: 200 with the fill and the realized PnL, then 404', async () => {
    const config = testConfig();
    const prefix = scope.newPrefix();
    // Each service on a connection of its own, like separate processes; systemd order.
    const risk = await scope.launch('risk', { bus: await scope.openBus(prefix), config });
    const execution = await scope.launch('execution', { bus: await scope.openBus(prefix), config });
    const monitor = await scope.launch('monitor', { bus: await scope.openBus(prefix), config });
    const bus = await scope.openBus(prefix);
    expect((await request(execution.app, 'POST', '/prices/BTCUSDT', { body: { price: 50_000 } })).status).toBe(200);

    const buy = await publishTradeSignal(bus, 'BTCUSDT', 'BUY', 0.9, 'test-model');
    const [open] = await waitForPayloads(bus, TOPICS.execution, ExecutionResult, 1, (r) => r.signal_id === buy.signal_id);
    expect(open).toMatchObject({ status: 'FILLED', side: 'BUY', origin: 'signal' });
    await waitFor(async () => (await request<{ positions: PositionView[] }>(monitor.app, 'GET', '/positions')).body.positions.length === 1, {
      what: 'the monitor to show the position',
    });

    const closed = await request<{ closed: boolean; symbol: string; fill: ExecutionResult; realized_pnl_usd: number; position: PositionUpdate }>(
      monitor.app,
      'POST',
      '/close/BTCUSDT',
    );
    expect(closed.status, JSON.stringify(closed.body)).toBe(200);
    const { fill: closing } = closed.body;
    expect(closed.body).toMatchObject({ closed: true, symbol: 'BTCUSDT' });
    expect(ExecutionResult.parse(closing)).toMatchObject({
      status: 'FILLED',
      symbol: 'BTCUSDT',
      side: 'SELL',
      quantity: open!.quantity,
      reduce_only: true,
      origin: 'manual_close',
    });
    expect(closing.fill_price).toBeLessThanOrEqual(50_000);
    // Round trip net: (close − open) × quantity − both fees.
    const expectedPnl = (closing.fill_price - open!.fill_price) * open!.quantity - open!.fee_usd - closing.fee_usd;
    expect(closed.body.realized_pnl_usd).toBeCloseTo(expectedPnl, 8);
    expect(closed.body.position).toMatchObject({ symbol: 'BTCUSDT', side: 'FLAT', quantity: 0, cause: 'close', order_id: closing.order_id });
    expect((await request(monitor.app, 'GET', '/positions')).body).toEqual({ positions: [] });
    expect((await request(monitor.app, 'GET', '/portfolio')).body).toMatchObject({ open_positions: 0, closed_trades: 1, realized_pnl_usd: usd(expectedPnl) });

    // The path it took: a CLOSE from manual_close on trade.signal.v5, a reduce-only approval on trade.signal.safe.
    const signals = await readPayloads(bus, TOPICS.signal, TradeSignal);
    expect(signals.filter((s) => s.source === 'manual_close')).toEqual([
      expect.objectContaining({ symbol: 'BTCUSDT', action: 'CLOSE', signal_id: closing.signal_id }),
    ]);
    const approvals = await readPayloads(bus, TOPICS.safe, RiskApprovedSignal);
    expect(approvals.find((a) => a.signal_id === closing.signal_id)).toMatchObject({
      intent: 'CLOSE',
      side: 'SELL',
      reduce_only: true,
      origin: 'manual_close',
      quantity: open!.quantity,
    });

    const again = await request(monitor.app, 'POST', '/close/BTCUSDT');
    expect(again.status).toBe(404);
    expect(again.body).toEqual({ error: 'no_position', message: 'no open position in BTCUSDT' });
    expect((await request(monitor.app, 'POST', '/close/ETHUSDT')).status).toBe(404);
    // The risk gate saw the fill too: nothing stays in flight.
    await waitFor(() => risk.service.state.inflightCount() === 0, { what: 'the risk service to see the closing fill' });
  });

  it('answers 504 with a clear message when the risk service is not running; the close is carried out once it is back', async () => {
    const config = testConfig({ instruments: INSTRUMENTS });
    const prefix = scope.newPrefix();
    const bus = await scope.openBus(prefix);
    const monitor = await scope.launch('monitor', { bus, config });
    await bus.publish(TOPICS.execution, fill({ symbol: 'BTCUSDT', side: 'BUY', quantity: 0.01, fill_price: 50_000 }));
    await waitForSettled(bus, GROUPS.monitor, [TOPICS.execution]);

    const res = await request(monitor.app, 'POST', '/close/BTCUSDT');
    expect(res.status).toBe(504);
    expect(res.body.error).toBe('close_timeout');
    expect(res.body.message).toMatch(/no fill for the close of BTCUSDT within 5 s/);
    expect(res.body.message).toMatch(/risk service/);
    expect(res.body.message).toMatch(/stays queued/);
    expect((await request<{ positions: PositionView[] }>(monitor.app, 'GET', '/positions')).body.positions).toHaveLength(1);
    const queued = (await readPayloads(bus, TOPICS.signal, TradeSignal)).filter((s) => s.source === 'manual_close');
    expect(queued).toEqual([expect.objectContaining({ symbol: 'BTCUSDT', action: 'CLOSE' })]);

    // As the message says: once execution and risk are back, the queued CLOSE goes through.
    await scope.launch('execution', { bus: await scope.openBus(prefix), config });
    await scope.launch('risk', { bus: await scope.openBus(prefix), config });
    const [closing] = await waitForPayloads(bus, TOPICS.execution, ExecutionResult, 1, (r) => r.signal_id === queued[0]!.signal_id);
    expect(closing).toMatchObject({ status: 'FILLED', side: 'SELL', quantity: 0.01, reduce_only: true, origin: 'manual_close' });
    await waitFor(async () => (await request<{ positions: PositionView[] }>(monitor.app, 'GET', '/positions')).body.positions.length === 0, {
      what: 'the position to be closed',
    });
  });
});

describe('Position Monitor: HTTP', () => {
  it('serves /health, /portfolio, /positions, /prices and POST /prices', async () => {
    const bus = await scope.openBus();
    const monitor = await scope.launch('monitor', { bus, config: testConfig({ instruments: INSTRUMENTS }) });
    const { app } = monitor;

    const health = await request(app, 'GET', '/health');
    expect(health.status).toBe(200);
    expect(health.body).toMatchObject({ status: 'ok', service: 'position-monitor', bus: { kind: 'redis', connected: true }, open_positions: 0, unrealized_pnl_usd: 0 });
    expect((await request(app, 'GET', '/positions')).body).toEqual({ positions: [] });
    expect((await request(app, 'GET', '/prices')).body).toEqual({ prices: {} });
    expect((await request(app, 'GET', '/portfolio')).body).toEqual({
      balance_usd: 10_000,
      equity_usd: 10_000,
      exposure_usd: 0,
      exposure_pct: 0,
      drawdown_pct: 0,
      open_positions: 0,
      win_rate: 0,
      closed_trades: 0,
      realized_pnl_usd: 0,
      unrealized_pnl_usd: 0,
      fees_usd: 0,
      initial_balance_usd: 10_000,
    });

    // Rounded to the instrument's tick like the execution service does, published as a manual tick.
    const set = await request(app, 'POST', '/prices/BTCUSDT', { body: { price: 50_000.004 } });
    expect(set.status).toBe(200);
    expect(set.body).toMatchObject({ symbol: 'BTCUSDT', price: 50_000, tick: { symbol: 'BTCUSDT', price: 50_000, source: 'manual' } });
    const ticks = await readPayloads(bus, TOPICS.tick, PriceTick);
    expect(ticks).toEqual([expect.objectContaining({ symbol: 'BTCUSDT', price: 50_000, source: 'manual' })]);
    await waitFor(async () => (await request<Prices>(app, 'GET', '/prices')).body.prices.BTCUSDT === 50_000, { what: 'the mark' });

    await bus.publish(TOPICS.execution, fill({ symbol: 'BTCUSDT', side: 'BUY', quantity: 0.02, fill_price: 49_000, fee_usd: 0.392 }));
    await waitForSettled(bus, GROUPS.monitor, [TOPICS.execution]);
    // (50,000 − 49,000) × 0.02 = 20
    expect((await request(app, 'GET', '/health')).body).toMatchObject({ open_positions: 1, unrealized_pnl_usd: usd(20) });
    expect((await request(app, 'GET', '/portfolio')).body).toMatchObject({ balance_usd: usd(10_000 - 0.392), equity_usd: usd(10_000 - 0.392 + 20), fees_usd: usd(0.392) });
  });

  it('refuses bad requests: 404 unknown symbol, 400 naming the field', async () => {
    const bus = await scope.openBus();
    const { app } = await scope.launch('monitor', { bus, config: testConfig({ instruments: INSTRUMENTS }) });

    const unknown = await request(app, 'POST', '/prices/SOLUSDT', { body: { price: 1 } });
    expect(unknown.status).toBe(404);
    expect(unknown.body).toEqual({ error: 'unknown_symbol', message: expect.stringContaining('SOLUSDT') });
    const badBodies: [string, unknown][] = [
      ['negative', { price: -1 }],
      ['zero', { price: 0 }],
      ['a string', { price: 'high' }],
      ['missing', {}],
      ['an extra field', { price: 1, when: 'now' }],
      ['below half a tick', { price: 0.001 }],
    ];
    for (const [what, body] of badBodies) {
      const res = await request(app, 'POST', '/prices/BTCUSDT', { body });
      expect(res.status, what).toBe(400);
      expect(res.body, what).toEqual({ error: 'bad_request', message: expect.stringMatching(/\b(price|when)\b/) });
    }
    expect((await request(app, 'POST', '/prices/BTCUSDT', { body: { price: 1, when: 'now' } })).body.message).toMatch(/^when: /);
    for (const url of ['/prices/btcusdt', '/close/btc-usdt']) {
      const res = await request(app, 'POST', url, { body: url.startsWith('/prices') ? { price: 1 } : undefined });
      expect(res.status, url).toBe(400);
      expect(res.body.message, url).toMatch(/^symbol: /);
    }
    const flat = await request(app, 'POST', '/close/BTCUSDT');
    expect(flat.status).toBe(404);
    expect(flat.body.error).toBe('no_position');
    expect(await readPayloads(bus, TOPICS.tick)).toEqual([]);
    expect(await readPayloads(bus, TOPICS.signal)).toEqual([]);
  });

  it('serves Swagger UI at /docs, the OpenAPI document with the message schemas, and Prometheus /metrics', async () => {
    const bus = await scope.openBus();
    const { app } = await scope.launch('monitor', { bus, config: testConfig({ instruments: INSTRUMENTS }) });
    await bus.publish(TOPICS.execution, fill());
    await waitForSettled(bus, GROUPS.monitor, [TOPICS.execution]);

    const docs = await request(app, 'GET', '/docs');
    expect(docs.status).toBe(200);
    expect(docs.headers['content-type']).toMatch(/text\/html/);
    expect(docs.text).toMatch(/swagger-ui/i);
    const openapi = await request<{ paths: Record<string, unknown>; components: { schemas: Record<string, unknown> } }>(app, 'GET', '/docs/json');
    expect(openapi.status).toBe(200);
    for (const name of ['PositionUpdate', 'PositionView', 'PortfolioSummary', 'ExecutionResult', 'PriceTick']) {
      expect(openapi.body.components.schemas, name).toHaveProperty(name);
    }
    expect(Object.keys(openapi.body.paths)).toEqual(
      expect.arrayContaining(['/health', '/portfolio', '/positions', '/prices', '/prices/{symbol}', '/close/{symbol}', '/metrics']),
    );

    const metrics = await request(app, 'GET', '/metrics');
    expect(metrics.status).toBe(200);
    expect(metrics.headers['content-type']).toMatch(/^text\/plain/);
    expect(metricValue(metrics.text, 'qt_messages_total', { service: 'monitor', topic: TOPICS.execution, direction: 'in' })).toBe(1);
    expect(metricValue(metrics.text, 'qt_messages_total', { topic: TOPICS.position, direction: 'out' })).toBe(1);
    expect(metricValue(metrics.text, 'qt_outcomes_total', { outcome: 'applied' })).toBe(1);
    expect(metricValue(metrics.text, 'qt_consumer_lag_entries', { topic: TOPICS.execution })).toBe(0);
  });

  it('with api_token set, refuses every POST without the bearer token (401) and accepts it with the token', async () => {
    const bus = await scope.openBus();
    const { app } = await scope.launch('monitor', { bus, config: testConfig({ instruments: INSTRUMENTS, api_token: TOKEN }) });
    for (const url of ['/prices/BTCUSDT', '/close/BTCUSDT']) {
      const body = url.startsWith('/prices') ? { price: 50_000 } : undefined;
      const none = await request(app, 'POST', url, { body });
      expect(none.status, url).toBe(401);
      expect(none.body).toEqual({ error: 'unauthorized', message: expect.stringContaining('Authorization: Bearer') });
      expect((await request(app, 'POST', url, { body, token: 'not-the-token' })).status, url).toBe(401);
    }
    // Nothing was published by the refused requests.
    expect(await readPayloads(bus, TOPICS.tick)).toEqual([]);
    expect(await readPayloads(bus, TOPICS.signal)).toEqual([]);
    expect((await request(app, 'POST', '/prices/BTCUSDT', { body: { price: 50_000 }, token: TOKEN })).status).toBe(200);
    // Past the token check: flat, so 404.
    expect((await request(app, 'POST', '/close/BTCUSDT', { token: TOKEN })).status).toBe(404);
    for (const url of ['/health', '/portfolio', '/positions', '/prices', '/metrics', '/docs/json']) {
      expect((await request(app, 'GET', url)).status, url).toBe(200);
    }
  });

  it('answers /health with 503 once its bus is closed', async () => {
    const bus: EventBus = await scope.openBus();
    const { app } = await scope.launch('monitor', { bus });
    await bus.close();
    const health = await request(app, 'GET', '/health');
    expect(health.status).toBe(503);
    expect(health.body).toMatchObject({ status: 'degraded', service: 'position-monitor', bus: { connected: false } });
  });
});
