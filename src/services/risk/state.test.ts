import { describe, expect, it } from 'vitest';
import { PartsMirror } from '../../../test/helpers/parts.js';
import { createFillModels, paperFill } from '../../core/fills.js';
import { fx } from '../../core/fixed.js';
import { instrumentTable } from '../../core/instruments.js';
import type { RiskApprovedSignal, TradeSignal } from '../../core/messages.js';
import { keyedRandom } from '../../core/random.js';
import { defaultConfig } from '../../platform/config.js';
import { tickGateFor } from '../common/ticks.js';
import { RiskState } from './state.js';

const config = defaultConfig();
const instruments = instrumentTable(config.instruments);
const T0 = Date.UTC(2026, 10, 24, 12, 0, 0);

function makeState(patch: Partial<typeof config.risk> = {}) {
  return new RiskState({
    initialBalance: 10_000,
    instruments,
    limits: { ...config.risk, ...patch },
    execution: config.execution,
    seed: 42,
    inflightTimeoutMs: 30_000,
    tickGate: tickGateFor(config),
  });
}

let n = 0;
function signal(symbol: string, action: TradeSignal['action'], confidence: number, extra: Partial<TradeSignal> = {}): TradeSignal {
  n += 1;
  return { schema_version: 1, signal_id: `s-${n}`, symbol, action, confidence, source: 'test', ts: T0, ...extra };
}

function priceAll(state: RiskState, ts = T0) {
  for (const i of config.instruments) state.onTick({ schema_version: 1, symbol: i.symbol, price: i.start_price, ts, source: 'manual' }, ts);
}

/** What the execution service would publish for an approval. */
function fillOf(order: RiskApprovedSignal, mark: number, now = T0 + 5) {
  return paperFill({
    order,
    mark: fx(mark),
    instrument: instruments.get(order.symbol),
    seed: 42,
    models: createFillModels(config.execution),
    now,
  });
}


/** Which commits of a stored-by-parts mirror fail (seeded). */
function partsRandom(): () => number {
  const random = keyedRandom(11, 'parts');
  return () => random.next();
}

describe('RiskState', () => {
  it('sizes a 0.85 BUY on a flat 10,000 account at 1,000 USDT and a 0.65 BUY at 750', () => {
    const state = makeState();
    priceAll(state);
    const a = state.onSignal(signal('BTCUSDT', 'BUY', 0.85), T0);
    expect(a.kind).toBe('approve');
    if (a.kind !== 'approve') return;
    expect(a.message.notional_usd).toBeCloseTo(1000, 0);
    expect(a.message.notional_usd).toBeLessThanOrEqual(1000);
    const b = state.onSignal(signal('ETHUSDT', 'BUY', 0.65), T0);
    expect(b.kind === 'approve' && b.message.notional_usd).toBeCloseTo(750, 0);
  });

  it('decides once per signal_id', () => {
    const state = makeState();
    priceAll(state);
    const s = signal('BTCUSDT', 'BUY', 0.9);
    expect(state.onSignal(s, T0).kind).toBe('approve');
    expect(state.onSignal(s, T0).kind).toBe('duplicate');
    expect(state.stats(T0).counts).toMatchObject({ received: 1, approved: 1, duplicates: 1 });
  });

  it('never lets a burst of 200 BUYs pass 10% per symbol or 50% in total before any fill', () => {
    const state = makeState({ max_daily_entries: 1000 });
    priceAll(state);
    const symbols = config.instruments.map((i) => i.symbol);
    const perSymbol = new Map<string, number>();
    let total = 0;
    for (let i = 0; i < 200; i++) {
      const d = state.onSignal(signal(symbols[i % symbols.length]!, 'BUY', 0.9), T0);
      if (d.kind !== 'approve') continue;
      perSymbol.set(d.message.symbol, (perSymbol.get(d.message.symbol) ?? 0) + d.message.notional_usd);
      total += d.message.notional_usd;
    }
    for (const value of perSymbol.values()) expect(value).toBeLessThanOrEqual(1000 + 1e-6);
    expect(total).toBeLessThanOrEqual(5000 + 1e-6);
    expect(total).toBeGreaterThan(4900);
    expect(state.inflightCount()).toBeGreaterThan(0);
  });

  it('closes the whole position, in flight included, and never twice', () => {
    const state = makeState();
    priceAll(state);
    const open = state.onSignal(signal('SOLUSDT', 'BUY', 0.9), T0);
    expect(open.kind).toBe('approve');
    const close = state.onSignal(signal('SOLUSDT', 'SELL', 0.9), T0);
    expect(close.kind === 'approve' && close.message).toMatchObject({ intent: 'CLOSE', reduce_only: true, side: 'SELL' });
    if (open.kind === 'approve' && close.kind === 'approve') expect(close.message.quantity).toBe(open.message.quantity);
    const again = state.onSignal(signal('SOLUSDT', 'CLOSE', 0.9, { source: 'manual_close' }), T0);
    expect(again.kind === 'reject' && again.message.reasons).toEqual(['NO_POSITION']);
  });

  it('keeps the view still when the real fill equals its projection, and folds it into the confirmed books', () => {
    const state = makeState();
    priceAll(state);
    const d = state.onSignal(signal('BTCUSDT', 'BUY', 0.9), T0);
    if (d.kind !== 'approve') throw new Error('expected approval');
    const before = state.stats(T0);
    state.onExecution(fillOf(d.message, config.instruments[0]!.start_price));
    const after = state.stats(T0);
    expect(after.equity_usd).toBe(before.equity_usd);
    expect(after.inflight_orders).toBe(0);
    expect(after.confirmed_balance_usd).toBe(after.balance_usd);
  });

  it('halts at 15% drawdown, rejects entries CIRCUIT_BREAKER, still closes, and resumes', () => {
    const state = makeState({ max_position_pct: 1, max_exposure_pct: 1, kelly_fraction: 1 });
    priceAll(state);
    const buy = state.onSignal(signal('BTCUSDT', 'BUY', 0.99), T0);
    if (buy.kind !== 'approve') throw new Error('expected approval');
    state.onExecution(fillOf(buy.message, 65_000));
    // A 20% fall on a ~100% position is well past 15% drawdown.
    state.onTick({ schema_version: 1, symbol: 'BTCUSDT', price: 52_000, ts: T0 + 10, source: 'manual' }, T0 + 10);
    expect(state.state).toBe('HALTED');
    const entry = state.onSignal(signal('ETHUSDT', 'BUY', 0.99), T0 + 20);
    expect(entry.kind === 'reject' && entry.message.reasons).toContain('CIRCUIT_BREAKER');
    const exit = state.onSignal(signal('BTCUSDT', 'SELL', 0.5), T0 + 20);
    expect(exit.kind === 'approve' && exit.message.intent).toBe('CLOSE');
    // Recovering prices does not re-arm; only resume does.
    state.onTick({ schema_version: 1, symbol: 'BTCUSDT', price: 65_000, ts: T0 + 30, source: 'manual' }, T0 + 30);
    expect(state.state).toBe('HALTED');
    state.resume();
    expect(state.state).toBe('ACTIVE');
    expect(state.stats(T0).drawdown_pct).toBe(0);
  });

  it('expires in-flight orders after the timeout and frees their room', () => {
    const state = makeState();
    priceAll(state);
    state.onSignal(signal('BTCUSDT', 'BUY', 0.9), T0);
    expect(state.stats(T0).exposure_usd).toBeGreaterThan(900);
    // Execution may fill up to expires_ts (approval + inflight_timeout_ms) inclusive.
    expect(state.expireInflight(T0 + 30_000)).toHaveLength(0);
    expect(state.expireInflight(T0 + 30_001)).toHaveLength(1);
    expect(state.stats(T0).exposure_usd).toBe(0);
  });

  it('stamps approvals with expires_ts and keeps them in flight until then plus the clock grace', () => {
    const state = new RiskState({
      initialBalance: 10_000,
      instruments,
      limits: config.risk,
      execution: config.execution,
      seed: 42,
      inflightTimeoutMs: 30_000,
      expiryGraceMs: 5000,
      tickGate: tickGateFor(config),
    });
    priceAll(state);
    const decision = state.onSignal(signal('BTCUSDT', 'BUY', 0.9), T0);
    if (decision.kind !== 'approve') throw new Error('expected approval');
    expect(decision.message.expires_ts).toBe(T0 + 30_000);
    expect(state.expireInflight(T0 + 35_000)).toHaveLength(0);
    expect(state.expireInflight(T0 + 35_001)).toHaveLength(1);
  });

  it('times a losing round trip by its closing fill, before and after a restart (cooldown never flips)', () => {
    const MIN = 60_000;
    const a = makeState();
    priceAll(a);
    const open = a.onSignal(signal('BTCUSDT', 'BUY', 0.85), T0);
    if (open.kind !== 'approve') throw new Error('expected approval');
    a.onExecution(fillOf(open.message, 65_000, T0 + 5));
    const close = a.onSignal(signal('BTCUSDT', 'CLOSE', 1, { ts: T0 + MIN }), T0 + MIN);
    if (close.kind !== 'approve') throw new Error('expected approval');
    // Execution fills the close (at a loss: the fees) 20 s after risk approved it.
    a.onExecution(fillOf(close.message, 65_000, T0 + MIN + 20_000));
    const b = makeState();
    b.restore(JSON.parse(JSON.stringify(a.toSnapshot())));
    // 60 minutes 10 s after the approval, 10 s before the cooldown from the fill ends.
    const at = T0 + 61 * MIN + 10_000;
    for (const state of [a, b]) {
      const d = state.onSignal(signal('ETHUSDT', 'BUY', 0.85, { signal_id: 'same-entry', ts: at }), at);
      expect(d.kind === 'reject' && d.message.reasons, JSON.stringify(d)).toEqual(['COOLDOWN']);
    }
  });

  it('decides a signal once per id by time: after 200,000 other decisions an old signal is not decided again', () => {
    const state = makeState();
    priceAll(state);
    const old = signal('BTCUSDT', 'BUY', 0.85);
    expect(state.onSignal(old, T0).kind).toBe('approve');
    // More decisions than the count window holds, within a minute (cheap rejections: no such instrument).
    for (let i = 0; i < 200_001; i++) state.onSignal(signal('DOGEUSDT', 'BUY', 0.9, { ts: T0 + 1 }), T0 + 1 + Math.floor(i / 4000));
    expect(state.onSignal(old, T0 + 59_000)).toEqual({ kind: 'duplicate' });
    // Past the window the id is forgotten, and the copy is too old to trade.
    const late = state.onSignal(old, T0 + 60_001);
    expect(late.kind === 'reject' && late.message.reasons).toContain('STALE_SIGNAL');
  });

  it('restores from a snapshot to the same decisions', () => {
    const a = makeState();
    priceAll(a);
    const first = a.onSignal(signal('BTCUSDT', 'BUY', 0.9), T0);
    if (first.kind !== 'approve') throw new Error('expected approval');
    a.onSignal(signal('ETHUSDT', 'BUY', 0.8), T0);
    a.onExecution(fillOf(first.message, 65_000));
    const b = makeState();
    b.restore(JSON.parse(JSON.stringify(a.toSnapshot())));
    expect(b.stats(T0)).toEqual(a.stats(T0));
    const next = signal('SOLUSDT', 'BUY', 0.75);
    expect(b.onSignal(next, T0 + 1)).toEqual(a.onSignal(next, T0 + 1));
  });

  it('writes snapshotJson() exactly as JSON.stringify(toSnapshot()), as orders come and go', () => {
    const state = makeState();
    expect(state.snapshotJson()).toBe(JSON.stringify(state.toSnapshot()));
    priceAll(state);
    const approvals = [];
    for (const [symbol, confidence] of [['BTCUSDT', 0.9], ['ETHUSDT', 0.8], ['SOLUSDT', 0.75]] as const) {
      const decision = state.onSignal(signal(symbol, 'BUY', confidence), T0);
      if (decision.kind === 'approve') approvals.push(decision.message);
      expect(state.snapshotJson()).toBe(JSON.stringify(state.toSnapshot()));
    }
    expect(approvals).toHaveLength(3);
    state.onExecution(fillOf(approvals[1]!, 3500));
    expect(state.snapshotJson()).toBe(JSON.stringify(state.toSnapshot()));
    state.expireInflight(T0 + 60_000);
    expect(state.snapshotJson()).toBe(JSON.stringify(state.toSnapshot()));
  });
});

describe('RiskState on quotes', () => {
  const quoted = (symbol: string, bid: number, ask: number, ts: number) => ({ schema_version: 1, symbol, price: (bid + ask) / 2, ts, source: 'feed' as const, bid, ask });

  it('sizes a BUY at the ask and a SELL (close) at the bid; the projection is the fill execution makes from the same quote', () => {
    const state = makeState({ cooldown_minutes: 0 });
    state.onTick(quoted('BTCUSDT', 64_999.9, 65_000.1, T0), T0);
    const buy = state.onSignal(signal('BTCUSDT', 'BUY', 0.85), T0);
    expect(buy.kind === 'approve' && buy.message.reference_price).toBe(65_000.1);
    if (buy.kind !== 'approve') return;
    const fill = paperFill({ order: buy.message, mark: fx(65_000), bid: fx('64999.9'), ask: fx('65000.1'), instrument: instruments.get('BTCUSDT'), seed: 42, models: createFillModels(config.execution), now: T0 + 5 });
    expect(fill.quote_side).toBe('ask');
    state.onExecution(fill);
    const close = state.onSignal(signal('BTCUSDT', 'CLOSE', 0.5), T0 + 10);
    expect(close.kind === 'approve' && close.message).toMatchObject({ intent: 'CLOSE', side: 'SELL', reference_price: 64_999.9 });
  });

  it('refuses entries STALE_PRICE on a tick older than the limit, never a close; the limit survives a restart', () => {
    const state = new RiskState({ initialBalance: 10_000, instruments, limits: config.risk, execution: config.execution, seed: 42, inflightTimeoutMs: 30_000, staleAfterMs: 15_000, tickGate: tickGateFor(config) });
    state.onTick(quoted('BTCUSDT', 64_999.9, 65_000.1, T0), T0);
    const fresh = state.onSignal(signal('BTCUSDT', 'BUY', 0.85), T0 + 15_000);
    expect(fresh.kind).toBe('approve');
    const stale = state.onSignal(signal('ETHUSDT', 'BUY', 0.85), T0 + 15_001);
    expect(stale.kind === 'reject' && stale.message.reasons).toEqual(['NO_PRICE']);
    state.onTick(quoted('ETHUSDT', 3499.9, 3500.1, T0), T0);
    const restored = new RiskState({ initialBalance: 10_000, instruments, limits: config.risk, execution: config.execution, seed: 42, inflightTimeoutMs: 30_000, staleAfterMs: 15_000, tickGate: tickGateFor(config) });
    restored.restore(JSON.parse(JSON.stringify(state.toSnapshot())));
    const late = restored.onSignal(signal('ETHUSDT', 'BUY', 0.85), T0 + 15_001);
    expect(late.kind === 'reject' && late.message.reasons).toEqual(['STALE_PRICE']);
    expect(late.kind === 'reject' && late.message.checks.find((c) => c.rule === 'price_age')).toMatchObject({ passed: false, value: 15_001, limit: 15_000 });
    const close = restored.onSignal(signal('BTCUSDT', 'CLOSE', 0.5), T0 + 60_000);
    expect(close.kind === 'approve' && close.message).toMatchObject({ intent: 'CLOSE', reference_price: 64_999.9 });
  });
});

describe('RiskState.snapshotJson with many symbols (the per-symbol text kept between batches)', () => {
  /** Ticks with and without quotes, entries with exit levels, fills, rejections, expiries and exits, in a seeded order. */
  function drive(symbols: readonly string[], steps: number, seed: string) {
    const list = symbols.map((symbol, i) => ({ symbol, tick_size: 0.01, step_size: 0.001, min_notional_usd: 10, start_price: 100 + i }));
    const cfg = defaultConfig({ instruments: list });
    const table = instrumentTable(cfg.instruments);
    const models = createFillModels(cfg.execution);
    const make = () =>
      new RiskState({
        initialBalance: 1_000_000,
        instruments: table,
        limits: { ...cfg.risk, max_daily_entries: 1_000_000, cooldown_minutes: 0, max_position_pct: 0.01, max_exposure_pct: 0.9 },
        execution: cfg.execution,
        seed: 42,
        inflightTimeoutMs: 30_000,
        tickGate: tickGateFor(cfg),
        exits: { ...cfg.exits, trailing_stop_pct: 0.05 },
      });
    let state = make();
    const parts = new PartsMirror(partsRandom());
    const same = () => {
      expect(state.snapshotJson()).toBe(JSON.stringify(state.toSnapshot()));
      parts.commit(() => state.snapshotJson());
    };
    const rng = keyedRandom(9, seed);
    const pick = () => symbols[Math.floor(rng.next() * symbols.length)] as string;
    const pending: RiskApprovedSignal[] = [];
    let now = T0;
    let restores = 0;
    same();
    for (let i = 0; i < steps; i++) {
      now += 10;
      const r = rng.next();
      if (r < 0.35) {
        const symbol = pick();
        const price = 100 + Math.floor(rng.next() * 10);
        const quotes = rng.next() < 0.5 ? { bid: price - 0.01, ask: price + 0.01 } : {};
        state.onTick({ schema_version: 1, symbol, price, ts: now, source: 'manual', ...quotes }, now);
        state.checkExits(now, symbol);
      } else if (r < 0.7) {
        const action = (['BUY', 'SELL', 'CLOSE', 'HOLD'] as const)[Math.floor(rng.next() * 4)]!;
        const d = state.onSignal(signal(pick(), action, 0.8, { ts: now }), now);
        if (d.kind === 'approve') pending.push(d.message);
      } else if (r < 0.95 && pending.length > 0) {
        const order = pending.splice(Math.floor(rng.next() * pending.length), 1)[0]!;
        const result = paperFill({ order, mark: fx(order.reference_price), instrument: table.get(order.symbol), seed: 42, models, now });
        state.onExecution(rng.next() < 0.1 ? { ...result, status: 'REJECTED', reject_reason: 'TEST: refused' } : result);
      } else {
        state.expireInflight(now + 40_000);
        pending.length = 0;
      }
      same();
      if (i % 150 === 149) {
        const copy = make();
        copy.restore(JSON.parse(state.snapshotJson()));
        expect(copy.snapshotJson()).toBe(state.snapshotJson());
        restores += 1;
        if (rng.next() < 0.5) state = copy; // go on from the restored state: its caches start empty
      }
    }
    return { snapshot: state.toSnapshot(), restores };
  }

  it('is exactly JSON.stringify(toSnapshot()) after every input and after restores', () => {
    const symbols = Array.from({ length: 12 }, (_, i) => `H${String(i).padStart(4, '0')}USDT`);
    const { snapshot, restores } = drive(symbols, 1500, 'many');
    expect(restores).toBe(10);
    // The run reached what the caches keep: open positions, quotes, armed exit levels.
    expect(snapshot.confirmed.positions.length).toBeGreaterThan(5);
    expect(Object.keys(snapshot.quotes ?? {}).length).toBeGreaterThan(0);
    expect(Object.keys(snapshot.exits.levels).length).toBeGreaterThan(0);
  });

  it('stays exact with symbols a plain object reorders (array indices)', () => {
    drive(['BTCUSDT', '1000', '42', 'ETHUSDT'], 400, 'odd');
  });
});
