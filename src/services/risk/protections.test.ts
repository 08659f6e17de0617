/**
 * The protections in the risk state (docs/protections.md): the pure rules fed by the
 * fills and ticks the state sees, with `now` passed in, and their state through a
 * snapshot round trip.
 */
import { describe, expect, it } from 'vitest';
import { createFillModels, paperFill } from '../../core/fills.js';
import { fx } from '../../core/fixed.js';
import { instrumentTable } from '../../core/instruments.js';
import type { ProtectionConfig } from '../../core/protections.js';
import type { RiskApprovedSignal, TradeSignal } from '../../core/messages.js';
import { defaultConfig } from '../../platform/config.js';
import { tickGateFor } from '../common/ticks.js';
import { RiskState, type RiskStateOptions } from './state.js';

// Frozen prices and no fees or slippage, so only the moves we make change equity.
const config = defaultConfig({ execution: { fee_rate: 0, max_slippage_pct: 0, price_interval_ms: 0 }, market: { simulator_spread_pct: 0 } });
const instruments = instrumentTable(config.instruments);
const T0 = Date.UTC(2026, 10, 24, 12, 0, 0);
const DAY = 86_400_000;
const BASE_LIMITS = { ...config.risk, cooldown_minutes: 0, max_daily_entries: 1000 };

function makeState(limits: Partial<typeof config.risk> = {}, extra: Partial<RiskStateOptions> = {}): RiskState {
  return new RiskState({
    initialBalance: 10_000,
    instruments,
    limits: { ...BASE_LIMITS, ...limits },
    execution: config.execution,
    seed: 42,
    inflightTimeoutMs: 30_000,
    tickGate: tickGateFor(config),
    ...extra,
  });
}

let n = 0;
function signal(symbol: string, action: TradeSignal['action'], ts: number, extra: Partial<TradeSignal> = {}): TradeSignal {
  n += 1;
  return { schema_version: 1, signal_id: `p-${n}`, symbol, action, confidence: 0.9, source: 'model-a', ts, ...extra };
}

function tick(state: RiskState, symbol: string, price: number, ts: number): void {
  expect(state.onTick({ schema_version: 1, symbol, price, ts, source: 'manual' }, ts).kind).toBe('accept');
}

function priceAll(state: RiskState, ts = T0): void {
  for (const i of config.instruments) tick(state, i.symbol, i.start_price, ts);
}

/** Approves `s` and applies its fill at `mark` (as execution would publish it), with an exit reason when given. */
function trade(state: RiskState, s: TradeSignal, mark: number, now: number, exitReason?: RiskApprovedSignal['exit_reason']): RiskApprovedSignal {
  const d = state.onSignal(s, now);
  if (d.kind !== 'approve') throw new Error(`expected an approval, got ${JSON.stringify(d)}`);
  const order = exitReason === undefined ? d.message : { ...d.message, exit_reason: exitReason };
  const fill = paperFill({ order, mark: fx(mark), instrument: instruments.get(order.symbol), seed: 42, models: createFillModels(config.execution), now: now + 1 });
  expect(state.onExecution(fill)).toBeUndefined();
  return d.message;
}

function reasonsOf(state: RiskState, s: TradeSignal, now: number): string[] {
  const d = state.onSignal(s, now);
  return d.kind === 'reject' ? d.message.reasons : d.kind === 'approve' ? [] : [d.kind];
}

function roundTrip(state: RiskState, limits: Partial<typeof config.risk> = {}, extra: Partial<RiskStateOptions> = {}): RiskState {
  const copy = makeState(limits, extra);
  copy.restore(JSON.parse(state.snapshotJson()));
  return copy;
}

describe('kill switch', () => {
  it('halts entries with the reason, flattens every position once, and survives a snapshot', () => {
    const state = makeState();
    priceAll(state);
    trade(state, signal('BTCUSDT', 'BUY', T0), 65_000, T0);
    trade(state, signal('ETHUSDT', 'SELL', T0), 3_500, T0);
    state.halt('fed day', T0 + 10);
    const closes = state.flattenAll(T0 + 10);
    expect(closes.map((c) => [c.symbol, c.side, c.origin, c.exit_reason, c.reduce_only])).toEqual([
      ['BTCUSDT', 'SELL', 'manual_close', 'kill_switch', true],
      ['ETHUSDT', 'BUY', 'manual_close', 'kill_switch', true],
    ]);
    // The closes are in flight: a second flatten (or one while execution is slow) makes none.
    expect(state.flattenAll(T0 + 20)).toEqual([]);
    expect(reasonsOf(state, signal('SOLUSDT', 'BUY', T0 + 30), T0 + 30)).toEqual(['KILL_SWITCH']);
    const restored = roundTrip(state);
    expect(restored.flattenAll(T0 + 40)).toEqual([]);
    expect(restored.stats(T0 + 40)).toMatchObject({ trading_state: 'HALTED', halt_reason: 'KILL_SWITCH: fed day', kill_switch: { reason: 'fed day', since: T0 + 10 } });
    const d = restored.onSignal(signal('SOLUSDT', 'BUY', T0 + 50), T0 + 50);
    expect(d.kind === 'reject' && d.message.checks.find((c) => c.rule === 'kill_switch')?.note).toMatch(/fed day/);
    // A close still passes; resume lets entries through again.
    expect(restored.onSignal(signal('BNBUSDT', 'CLOSE', T0 + 60), T0 + 60).kind).toBe('reject'); // flat: NO_POSITION, not the kill switch
    restored.resume();
    expect(reasonsOf(restored, signal('SOLUSDT', 'BUY', T0 + 70), T0 + 70)).toEqual([]);
  });
});

describe('daily loss limit', () => {
  it('trips on the day loss, lets a close pass, and resets at 00:00 UTC', () => {
    const state = makeState({ max_daily_loss_pct: 0.005 });
    priceAll(state);
    trade(state, signal('BTCUSDT', 'BUY', T0), 65_000, T0); // 0.9 → 20 % Kelly capped at 10 %: 1 000 USDT
    // BTC −5 %: 0.01538 BTC lose 49.985, just below 0.5 % of 10 000: entries pass (the boundaries are in core/governor.test.ts).
    tick(state, 'BTCUSDT', 61_750, T0 + 100);
    expect(state.stats(T0 + 100).daily_loss).toMatchObject({ day_pnl_usd: -49.985, limit_reached: false });
    // BTC −7.7 %: −76.9, past the limit.
    tick(state, 'BTCUSDT', 60_000, T0 + 150);
    const r = state.onSignal(signal('ETHUSDT', 'BUY', T0 + 200), T0 + 200);
    expect(r.kind === 'reject' && r.message.reasons).toEqual(['DAILY_LOSS_LIMIT']);
    const check = r.kind === 'reject' ? r.message.checks.find((c) => c.rule === 'daily_loss') : undefined;
    expect(check).toMatchObject({ passed: false, value: 0.00769, limit: 0.005 });
    expect(check?.note).toMatch(/PnL -76.9 USDT from a starting equity of 10000 USDT/);
    expect(state.stats(T0 + 200).daily_loss).toMatchObject({ day_pnl_usd: -76.9, limit_reached: true });
    // Closes always pass.
    trade(state, signal('BTCUSDT', 'CLOSE', T0 + 300), 60_000, T0 + 300);
    expect(reasonsOf(state, signal('ETHUSDT', 'BUY', T0 + 400), T0 + 400)).toEqual(['DAILY_LOSS_LIMIT']);
    // Just before midnight still refused (after a restart too); at 00:00 UTC the day starts again.
    const midnight = (Math.floor(T0 / DAY) + 1) * DAY;
    const restored = roundTrip(state, { max_daily_loss_pct: 0.005 });
    expect(reasonsOf(restored, signal('ETHUSDT', 'BUY', midnight - 1), midnight - 1)).toEqual(['DAILY_LOSS_LIMIT']);
    expect(reasonsOf(restored, signal('ETHUSDT', 'BUY', midnight), midnight)).toEqual([]);
  });
});

describe('daily loss limit: once reached, it holds for the rest of the UTC day', () => {
  it('a dip past the limit that recovers still refuses entries until 00:00 UTC (a test that fails without the latch)', () => {
    const state = makeState({ max_daily_loss_pct: 0.005 });
    priceAll(state);
    trade(state, signal('BTCUSDT', 'BUY', T0), 65_000, T0);
    tick(state, 'BTCUSDT', 60_000, T0 + 100); // −76.9: past 0.5 %
    tick(state, 'BTCUSDT', 65_000, T0 + 200); // back to flat PnL
    expect(state.stats(T0 + 250).daily_loss).toMatchObject({ day_pnl_usd: 0, limit_reached: true, reached_at: T0 + 100 });
    const r = state.onSignal(signal('ETHUSDT', 'BUY', T0 + 300), T0 + 300);
    expect(r.kind === 'reject' && r.message.reasons).toEqual(['DAILY_LOSS_LIMIT']);
    const check = r.kind === 'reject' ? r.message.checks.find((c) => c.rule === 'daily_loss') : undefined;
    expect(check).toMatchObject({ passed: false, value: 0, limit: 0.005 });
    expect(check?.note).toMatch(/the limit was reached at .*entries refused until/);
    // The latch is in the snapshot; the next UTC day starts clear.
    const midnight = (Math.floor(T0 / DAY) + 1) * DAY;
    const restored = roundTrip(state, { max_daily_loss_pct: 0.005 });
    expect(reasonsOf(restored, signal('ETHUSDT', 'BUY', midnight - 1), midnight - 1)).toEqual(['DAILY_LOSS_LIMIT']);
    expect(reasonsOf(restored, signal('ETHUSDT', 'BUY', midnight), midnight)).toEqual([]);
    expect(restored.stats(midnight).daily_loss).toMatchObject({ limit_reached: false, reached_at: null });
  });
});

describe('max drawdown seen (quantum accounts)', () => {
  it('keeps the largest drawdown from peak through a recovery, a snapshot and a resume', () => {
    const state = makeState({});
    priceAll(state);
    trade(state, signal('BTCUSDT', 'BUY', T0), 65_000, T0);
    tick(state, 'BTCUSDT', 60_000, T0 + 100); // −76.9 on 10 000
    tick(state, 'BTCUSDT', 66_000, T0 + 200); // a new peak
    const stats = state.stats(T0 + 300);
    expect(stats.drawdown_pct).toBe(0);
    expect(stats.max_drawdown_pct).toBeCloseTo(76.9 / 10_000, 6);
    const restored = roundTrip(state);
    restored.resume();
    expect(restored.stats(T0 + 400).max_drawdown_pct).toBe(stats.max_drawdown_pct);
  });
});

describe('rate limits', () => {
  it('a burst of 50 entries with max_orders_per_second 5 approves 5, and the next second 5 more', () => {
    const state = makeState({ max_orders_per_second: 5, kelly_fraction: 0.01, max_exposure_pct: 1 });
    priceAll(state);
    const symbols = config.instruments.map((i) => i.symbol);
    const decide = (now: number) => Array.from({ length: 50 }, (_, i) => state.onSignal(signal(symbols[i % 5]!, 'BUY', now), now));
    expect(decide(T0).filter((d) => d.kind === 'approve')).toHaveLength(5);
    expect(decide(T0 + 999).filter((d) => d.kind === 'approve')).toHaveLength(0);
    const restored = roundTrip(state, { max_orders_per_second: 5, kelly_fraction: 0.01, max_exposure_pct: 1 });
    const third = Array.from({ length: 10 }, (_, i) => restored.onSignal(signal(symbols[i % 5]!, 'BUY', T0 + 1000), T0 + 1000));
    expect(third.filter((d) => d.kind === 'approve')).toHaveLength(5);
    const rejected = third.find((d) => d.kind === 'reject');
    expect(rejected?.kind === 'reject' && rejected.message.checks.find((c) => c.rule === 'rate_limit')).toMatchObject({ value: 5, limit: 5 });
  });
});

describe('locks and source stops from round trips', () => {
  const guard: ProtectionConfig = { kind: 'stoploss_guard', lookback_minutes: 60, trade_limit: 2, stop_minutes: 30, only_per_symbol: true };

  it('two stop-loss exits with stoploss_guard trade_limit 2 lock the symbol until the end time', () => {
    const state = makeState({}, { protections: [guard] });
    priceAll(state);
    for (const [i, at] of [T0, T0 + 60_000].entries()) {
      trade(state, signal('BTCUSDT', 'BUY', at), 65_000, at);
      trade(state, signal('BTCUSDT', 'CLOSE', at + 10, { source: 'protective_exit' }), 65_000, at + 10, 'stop_loss');
      expect(state.stats(at + 20).locks).toHaveLength(i);
    }
    const until = T0 + 60_000 + 11 + 30 * 60_000;
    expect(state.stats(T0 + 70_000).locks).toEqual([expect.objectContaining({ protection: 'stoploss_guard#0', symbol: 'BTCUSDT', until })]);
    const restored = roundTrip(state, {}, { protections: [guard] });
    const r = restored.onSignal(signal('BTCUSDT', 'BUY', T0 + 70_000), T0 + 70_000);
    expect(r.kind === 'reject' && r.message.reasons).toEqual(['LOCKED']);
    expect(r.kind === 'reject' && r.message.checks.find((c) => c.rule === 'lock')).toMatchObject({ value: 'stoploss_guard#0', limit: until });
    expect(reasonsOf(restored, signal('ETHUSDT', 'BUY', T0 + 70_000), T0 + 70_000)).toEqual([]);
    expect(reasonsOf(restored, signal('BTCUSDT', 'BUY', until), until)).toEqual([]);
  });

  it('a source past max_source_drawdown_pct is refused until resumed; other sources trade on', () => {
    const state = makeState({}, { maxSourceDrawdownPct: 0.001 });
    priceAll(state);
    trade(state, signal('BTCUSDT', 'BUY', T0), 65_000, T0);
    tick(state, 'BTCUSDT', 63_700, T0 + 5); // −2 % on 1 000: −20 = 0.2 % of 10 000
    trade(state, signal('BTCUSDT', 'CLOSE', T0 + 10), 63_700, T0 + 10);
    expect(reasonsOf(state, signal('ETHUSDT', 'BUY', T0 + 20), T0 + 20)).toEqual(['SOURCE_DRAWDOWN']);
    expect(reasonsOf(state, signal('ETHUSDT', 'BUY', T0 + 20, { source: 'model-b' }), T0 + 20)).toEqual([]);
    const restored = roundTrip(state, {}, { maxSourceDrawdownPct: 0.001 });
    expect(reasonsOf(restored, signal('SOLUSDT', 'BUY', T0 + 30), T0 + 30)).toEqual(['SOURCE_DRAWDOWN']);
    expect(restored.resumeSource('model-a')).toEqual({ source: 'model-a', was_stopped: true });
    expect(reasonsOf(restored, signal('SOLUSDT', 'BUY', T0 + 40), T0 + 40)).toEqual([]);
  });
});

describe('snapshots', () => {
  it('a version-1 snapshot (before the protections) still restores, HALTED kept', () => {
    const state = makeState({ max_drawdown_pct: 0.001 });
    priceAll(state);
    trade(state, signal('BTCUSDT', 'BUY', T0), 65_000, T0);
    tick(state, 'BTCUSDT', 60_000, T0 + 5);
    expect(state.stats(T0 + 5).trading_state).toBe('HALTED');
    const v1 = JSON.parse(state.snapshotJson()) as Record<string, unknown>;
    v1.version = 1;
    for (const key of ['kill_switch', 'day_start', 'entry_times', 'locks', 'closed_trades', 'position_sources', 'sources']) delete v1[key];
    const restored = makeState();
    restored.restore(v1);
    expect(restored.stats(T0 + 6)).toMatchObject({ trading_state: 'HALTED', kill_switch: null, locks: [] });
    expect(restored.toSnapshot().version).toBe(2);
  });
});
