/**
 * Protective exits end to end (issue 14's "Done when"): `quantum risk`, `quantum execution`
 * and `quantum monitor` as three processes on Redis. An entry carries a level, a price
 * set with POST /prices crosses it, and exactly one closing fill with origin
 * protective_exit and its exit_reason takes the position flat. Then a kill -9 of the risk
 * service between the trigger and the fill still gives one close.
 *
 * Each test trades its own symbol, so the tests do not see each other's positions.
 */
import { describe, expect, it } from 'vitest';
import { GROUPS, TOPICS } from '../src/bus/topics.js';
import { ExecutionResult, RiskApprovedSignal, type PositionView, type TradeSignalInput } from '../src/core/messages.js';
import { getJson, http, postJson, servicesOnRedis } from './helpers/processes.js';
import { isSettled } from './helpers/services.js';

const TIMEOUT_MS = 20_000;

describe('protective exits with the three services as processes on Redis', () => {
  const loop = servicesOnRedis('exits-e2e', {
    execution: { price_interval_ms: 0 },
    monitor: { mark_interval_ms: 0 },
    risk: { cooldown_minutes: 0, max_daily_entries: 1000 },
  }, { timeoutMs: TIMEOUT_MS, intervalMs: 25 });
  const poll = loop.poll;
  const url = (key: 'risk' | 'execution' | 'monitor', path: string) => `${loop.services.url(key)}${path}`;

  async function results(symbol: string): Promise<ExecutionResult[]> {
    const entries = (await loop.bus.readLatest(TOPICS.execution, 1000)).reverse(); // oldest first
    return entries.map((e) => ExecutionResult.parse(JSON.parse(e.fields.payload ?? '{}'))).filter((r) => r.symbol === symbol);
  }

  async function protectiveApprovals(symbol: string): Promise<RiskApprovedSignal[]> {
    const entries = (await loop.bus.readLatest(TOPICS.safe, 1000)).reverse(); // oldest first
    return entries
      .map((e) => RiskApprovedSignal.parse(JSON.parse(e.fields.payload ?? '{}')))
      .filter((a) => a.symbol === symbol && a.origin === 'protective_exit');
  }

  async function position(symbol: string): Promise<PositionView | undefined> {
    const { positions } = await getJson<{ positions: PositionView[] }>(url('monitor', '/positions'));
    return positions.find((p) => p.symbol === symbol);
  }

  async function setPrice(symbol: string, price: number): Promise<void> {
    await postJson(url('monitor', `/prices/${symbol}`), { price });
  }

  /**
   * Opens a long with `levels` at `price` and waits until the monitor shows it with its armed
   * levels and risk has applied the fill too (the monitor may see it first).
   */
  async function openLong(symbol: string, price: number, levels: Partial<TradeSignalInput>, shows: (p: PositionView) => boolean): Promise<PositionView> {
    await setPrice(symbol, price);
    await poll(async () => (await getJson<{ prices: Record<string, number> }>(url('execution', '/prices'))).prices[symbol] === price, `${symbol} at ${price}`);
    // Risk must hold the price too before it decides (it reads the same tick).
    await poll(() => isSettled(loop.bus, GROUPS.risk, [TOPICS.tick]), 'risk to read the tick');
    const signalId = `exit-e2e-${symbol}-${Date.now()}`;
    await loop.bus.publish(TOPICS.signal, { signal_id: signalId, symbol, action: 'BUY', confidence: 0.85, source: 'e2e', ...levels });
    const opened = await poll(async () => {
      const p = await position(symbol);
      return p && p.side === 'LONG' && shows(p) ? p : null;
    }, `a ${symbol} long with its levels on /positions`);
    await poll(() => isSettled(loop.bus, GROUPS.risk, [TOPICS.execution]), 'risk to apply the fill');
    return opened;
  }

  /** Exactly one closing fill, protective, for `reason`; the position is flat on the monitor. */
  async function expectOneProtectiveClose(symbol: string, reason: string): Promise<ExecutionResult> {
    const closing = await poll(async () => {
      const closes = (await results(symbol)).filter((r) => r.reduce_only && r.status === 'FILLED');
      return closes.length > 0 ? closes : null;
    }, `a closing fill of ${symbol}`);
    await poll(async () => ((await position(symbol)) === undefined ? true : null), `${symbol} flat on the monitor`);
    await poll(
      async () =>
        (await isSettled(loop.bus, GROUPS.risk, [TOPICS.tick, TOPICS.execution])) && (await isSettled(loop.bus, GROUPS.execution, [TOPICS.safe])) ? true : null,
      'risk and execution to settle',
    );
    const closes = (await results(symbol)).filter((r) => r.reduce_only);
    expect(closes).toHaveLength(1);
    expect(closes[0]).toMatchObject({ status: 'FILLED', origin: 'protective_exit', exit_reason: reason, side: 'SELL' });
    expect(closing[0]?.signal_id).toBe(closes[0]?.signal_id);
    return closes[0]!;
  }

  it('stop_loss: a price below the stop closes the long once, at the next price (a gap fills below the stop)', async () => {
    const p = await openLong('BTCUSDT', 60_000, { stop_loss: 58_000 }, (x) => x.stop_loss === 58_000);
    expect(p.stop_loss).toBe(58_000);
    await setPrice('BTCUSDT', 57_000); // gaps through the stop
    const close = await expectOneProtectiveClose('BTCUSDT', 'stop_loss');
    expect(close.fill_price).toBeLessThan(58_000);
    expect(close.reference_price).toBe(57_000);
    const stats = await getJson<{ exits_by_reason: Record<string, number> }>(url('risk', '/stats'));
    expect(stats.exits_by_reason.stop_loss).toBe(1);
  });

  it('take_profit: a price above the target closes the long once', async () => {
    await openLong('ETHUSDT', 3500, { take_profit: 3600 }, (x) => x.take_profit === 3600);
    await setPrice('ETHUSDT', 3550);
    await setPrice('ETHUSDT', 3601);
    await expectOneProtectiveClose('ETHUSDT', 'take_profit');
  });

  it('trailing_stop_pct: after a rise and a fall the trail closes the long once', async () => {
    await openLong('BNBUSDT', 600, { trailing_stop_pct: 0.05 }, (x) => x.trailing_stop === 570);
    await setPrice('BNBUSDT', 700); // the trail follows up to 665
    await poll(async () => ((await position('BNBUSDT'))?.trailing_stop === 665 ? true : null), 'the trail at 665 on /positions');
    await setPrice('BNBUSDT', 680); // above the trail: holds
    await setPrice('BNBUSDT', 660); // below 665: fires
    const close = await expectOneProtectiveClose('BNBUSDT', 'trailing_stop');
    expect(close.reference_price).toBe(660);
  });

  it('max_hold_ms: the time limit closes the long once without a price change', async () => {
    const p = await openLong('SOLUSDT', 150, { max_hold_ms: 4000 }, (x) => x.expires_ts !== undefined);
    expect(p.expires_ts).toBeGreaterThan(0);
    await expectOneProtectiveClose('SOLUSDT', 'time_limit');
  });

  it('POST /positions/{symbol}/exits: 404 when flat, 400 naming a wrong-side field, then the new stop fires', async () => {
    const flat = await http('POST', url('risk', '/positions/XRPUSDT/exits'), { stop_loss: 0.5 });
    expect(flat.status).toBe(404);
    await openLong('XRPUSDT', 0.6, {}, () => true);
    const wrong = await http<{ message: string }>('POST', url('risk', '/positions/XRPUSDT/exits'), { stop_loss: 0.7 });
    expect(wrong.status).toBe(400);
    expect(wrong.body.message).toMatch(/stop_loss/);
    const set = await http<{ exits: { stop_loss: number } }>('POST', url('risk', '/positions/XRPUSDT/exits'), { stop_loss: 0.55 });
    expect(set.status).toBe(200);
    expect(set.body.exits.stop_loss).toBe(0.55);
    await poll(async () => ((await position('XRPUSDT'))?.stop_loss === 0.55 ? true : null), 'the new stop on /positions');
    await setPrice('XRPUSDT', 0.5);
    await expectOneProtectiveClose('XRPUSDT', 'stop_loss');
  });

  it('kill -9 of risk between the trigger and the fill: still exactly one close', async () => {
    await openLong('BTCUSDT', 60_000, { stop_loss: 59_000 }, (x) => x.stop_loss === 59_000);
    const before = (await results('BTCUSDT')).length;
    await loop.services.procs.execution.stop();
    await setPrice('BTCUSDT', 58_500);
    const [approval] = await poll(async () => {
      const found = (await protectiveApprovals('BTCUSDT')).filter((a) => a.exit_reason === 'stop_loss');
      return found.length >= 2 ? found.slice(1) : null; // the first test's close is the first one
    }, 'the protective close on trade.signal.safe');
    await loop.services.procs.risk.kill();
    await loop.services.restart('risk');
    await loop.services.restart('execution');
    await poll(async () => ((await position('BTCUSDT')) === undefined ? true : null), 'BTCUSDT flat after the restarts');
    await poll(
      async () =>
        (await isSettled(loop.bus, GROUPS.risk, [TOPICS.tick, TOPICS.execution])) && (await isSettled(loop.bus, GROUPS.execution, [TOPICS.safe])) ? true : null,
      'risk and execution to settle',
    );
    const closes = (await results('BTCUSDT')).slice(before).filter((r) => r.reduce_only);
    expect(closes).toHaveLength(1);
    expect(closes[0]?.signal_id).toBe(approval!.signal_id);
    expect(closes[0]).toMatchObject({ status: 'FILLED', origin: 'protective_exit', exit_reason: 'stop_loss' });
  });
});
