import { describe, expect, it } from 'vitest';
import { PartsMirror } from '../../../test/helpers/parts.js';
import { instrumentTable } from '../../core/instruments.js';
import type { RiskApprovedSignal } from '../../core/messages.js';
import { keyedRandom } from '../../core/random.js';
import { defaultConfig } from '../../platform/config.js';
import { tickGateFor } from '../common/ticks.js';
import { ExecutionState } from './state.js';

const config = defaultConfig();
const T0 = Date.UTC(2026, 10, 24, 12, 0, 0);

function makeState(filledCapacity?: number) {
  const state = new ExecutionState({
    instruments: instrumentTable(config.instruments),
    seed: 42,
    ...config.execution,
    tickGate: tickGateFor(config),
    expiryGraceMs: 5000,
    filledCapacity,
  });
  state.setPrice('BTCUSDT', 50_000, T0);
  return state;
}

let n = 0;
function order(over: Partial<RiskApprovedSignal> = {}): RiskApprovedSignal {
  n += 1;
  return {
    schema_version: 1,
    signal_id: `o-${n}`,
    symbol: 'BTCUSDT',
    action: 'BUY',
    confidence: 0.8,
    source: 'test',
    ts: T0,
    intent: 'OPEN',
    side: 'BUY',
    quantity: 0.01,
    notional_usd: 500,
    reference_price: 50_000,
    kelly_optimal: 0.6,
    kelly_applied: 0.1,
    risk_amount_usd: 10,
    reduce_only: false,
    approved_ts: T0,
    expires_ts: T0 + 30_000,
    origin: 'signal',
    checks: [],
    sizing: null,
    ...over,
  };
}

const close = (over: Partial<RiskApprovedSignal> = {}) =>
  order({ action: 'CLOSE', intent: 'CLOSE', side: 'SELL', reduce_only: true, origin: 'manual_close', ...over });

function resultOf(state: ExecutionState, o: RiskApprovedSignal, now = T0 + 10) {
  const outcome = state.onOrder(o, now);
  if (outcome.kind !== 'result') throw new Error('duplicate');
  return outcome.result;
}


/** Which commits of a stored-by-parts mirror fail (seeded). */
function partsRandom(): () => number {
  const random = keyedRandom(11, 'parts');
  return () => random.next();
}

describe('ExecutionState protects itself', () => {
  it('never lets two CLOSEs take a position past zero: the second is NOT_REDUCING', () => {
    const state = makeState();
    expect(resultOf(state, order()).status).toBe('FILLED');
    expect(resultOf(state, close()).status).toBe('FILLED');
    const second = resultOf(state, close());
    expect(second.status).toBe('REJECTED');
    expect(second.reject_reason).toMatch(/^NOT_REDUCING: .* flat/);
    expect(state.netPositions()).toEqual({});
  });

  it('lets a protective close flatten: clipped to its own, smaller position, with its exit_reason', () => {
    const state = makeState();
    resultOf(state, order({ quantity: 0.01 }));
    // Risk also counted an entry that execution rejected: its close asks for more than is held.
    const stop = close({ source: 'protective_exit', origin: 'protective_exit', exit_reason: 'stop_loss', quantity: 0.02 });
    expect(resultOf(state, stop)).toMatchObject({ status: 'FILLED', quantity: 0.01, origin: 'protective_exit', exit_reason: 'stop_loss' });
    expect(state.netPositions()).toEqual({});
  });

  it('clips a reduce-only order larger than the position to the position', () => {
    const state = makeState();
    resultOf(state, order({ quantity: 0.01 }));
    const clipped = resultOf(state, close({ quantity: 0.03 }));
    expect(clipped).toMatchObject({ status: 'FILLED', quantity: 0.01, side: 'SELL' });
    expect(state.netPositions()).toEqual({});
  });

  it('refuses a reduce-only order on the side that would increase the position', () => {
    const state = makeState();
    resultOf(state, order());
    expect(resultOf(state, close({ side: 'BUY' })).reject_reason).toMatch(/^NOT_REDUCING: .* LONG 0.01/);
  });

  it('rejects EXPIRED after expires_ts (inclusive bound), by its injected clock', () => {
    const state = makeState();
    expect(resultOf(state, order(), T0 + 30_000).status).toBe('FILLED');
    const late = resultOf(state, order(), T0 + 30_001);
    expect(late.status).toBe('REJECTED');
    expect(late.reject_reason).toMatch(/^EXPIRED/);
    expect(resultOf(state, order({ expires_ts: undefined }), T0 + 1e9).status).toBe('FILLED'); // older approvals: as before
  });

  it('rejects PRICE_DEVIATION when the fill is more than 5% from the reference price (the $134M fill)', () => {
    const state = makeState();
    const far = resultOf(state, order({ reference_price: 0.004, quantity: 224_831.473 }));
    expect(far.status).toBe('REJECTED');
    expect(far.reject_reason).toMatch(/^PRICE_DEVIATION/);
    expect(resultOf(state, order({ reference_price: 47_700 })).status).toBe('FILLED'); // within 5%
    expect(resultOf(state, order({ reference_price: 47_000 })).reject_reason).toMatch(/^PRICE_DEVIATION/);
  });

  it('keeps its position fold across a snapshot and refolds it from results when the snapshot predates it', () => {
    const state = makeState();
    const fill = resultOf(state, order());
    const copy = makeState();
    copy.restore(JSON.parse(JSON.stringify(state.toSnapshot())));
    expect(copy.netPositions()).toEqual({ BTCUSDT: 0.01 });
    const old = { ...state.toSnapshot(), positions: undefined };
    const older = makeState();
    older.restore(JSON.parse(JSON.stringify(old)));
    expect(older.knowsPositions).toBe(false);
    older.refoldPositions([fill]);
    expect(older.netPositions()).toEqual({ BTCUSDT: 0.01 });
  });

  it('remembers every order until its expiry, beyond the count window', () => {
    const state = makeState(10);
    const first = order();
    resultOf(state, first);
    for (let i = 0; i < 100; i++) resultOf(state, order({ reduce_only: false, quantity: 0.0001 }));
    expect(state.onOrder(first, T0 + 34_999)).toEqual({ kind: 'duplicate' });
  });
});

function makeQuoteState(extra: { spread_pct?: number; external?: boolean } = {}) {
  return new ExecutionState({ instruments: instrumentTable(config.instruments), seed: 42, ...config.execution, tickGate: tickGateFor(config), ...extra });
}

function quoteOrder(side: 'BUY' | 'SELL', patch: Partial<RiskApprovedSignal> = {}): RiskApprovedSignal {
  return order({ action: side, side, notional_usd: 650, reference_price: 65_000, expires_ts: undefined, ...patch });
}

describe('ExecutionState quotes', () => {
  it('the simulator announces and walks prices with the synthetic spread, and fills from it', () => {
    const state = makeQuoteState({ spread_pct: 0.0002 });
    const btc = state.currentTicks(T0).find((t) => t.symbol === 'BTCUSDT')!;
    expect(btc).toMatchObject({ price: 65_000, bid: 64_993.5, ask: 65_006.5, source: 'simulator' });
    expect(resultOf(state, quoteOrder('BUY'))).toMatchObject({ reference_price: 65_006.5, quote_side: 'ask' });
    for (const tick of state.step(T0 + 5000)) expect(tick.bid! < tick.price && tick.price < tick.ask!).toBe(true);
  });

  it('takes quotes from bus ticks, uses them for fills with the price age, and a tick without quotes clears them', () => {
    const state = makeQuoteState();
    expect(state.onTick({ schema_version: 1, symbol: 'BTCUSDT', price: 65_000.2, ts: T0, source: 'feed', bid: 65_000.1, ask: 65_000.3 }, T0).kind).toBe('accept');
    expect(resultOf(state, quoteOrder('SELL'), T0 + 40)).toMatchObject({ reference_price: 65_000.1, quote_side: 'bid', price_age_ms: 40 });
    expect(state.quoteTable().BTCUSDT).toEqual({ bid: 65_000.1, ask: 65_000.3 });
    state.onTick({ schema_version: 1, symbol: 'BTCUSDT', price: 65_100, ts: T0 + 1, source: 'manual' }, T0 + 1);
    expect(resultOf(state, quoteOrder('BUY'))).toMatchObject({ reference_price: 65_100, quote_side: 'last' });
  });

  it('with a live feed, a symbol has no price (NO_PRICE) until its first tick', () => {
    const state = makeQuoteState({ external: true });
    expect(state.prices()).toEqual({});
    expect(resultOf(state, quoteOrder('BUY'))).toMatchObject({ status: 'REJECTED', reject_reason: expect.stringMatching(/^NO_PRICE/) });
    state.onTick({ schema_version: 1, symbol: 'BTCUSDT', price: 65_000.2, ts: T0, source: 'feed', bid: 65_000.1, ask: 65_000.3 }, T0);
    expect(resultOf(state, quoteOrder('BUY'))).toMatchObject({ status: 'FILLED', quote_side: 'ask' });
  });

  it('keeps the quotes across a snapshot and restore, and restores an older snapshot without them', () => {
    const state = makeQuoteState();
    state.onTick({ schema_version: 1, symbol: 'BTCUSDT', price: 65_000.2, ts: T0, source: 'feed', bid: 65_000.1, ask: 65_000.3 }, T0);
    const snapshot = JSON.parse(JSON.stringify(state.toSnapshot())) as Record<string, unknown>;
    const restored = makeQuoteState();
    restored.restore(snapshot);
    expect(restored.quoteTable()).toEqual(state.quoteTable());
    const older = makeQuoteState();
    delete snapshot.quotes;
    older.restore(snapshot);
    expect(older.quoteTable()).toEqual({});
  });
});

describe('ExecutionState: the tick gate and the price checks on quotes', () => {
  const feedTick = (price: number, bid: number, ask: number, ts = T0) => ({ schema_version: 1, symbol: 'BTCUSDT', price, ts, source: 'feed' as const, bid, ask });

  it("with a live feed, takes the venue's first tick far from the configured start price (no start price is published)", () => {
    const state = makeQuoteState({ external: true });
    expect(state.onTick(feedTick(97_000, 96_999.9, 97_000.1), T0)).toMatchObject({ kind: 'accept' });
    expect(state.prices()).toEqual({ BTCUSDT: 97_000 });
  });

  it('dead-letters a crossed quote and keeps the last good one', () => {
    const state = makeQuoteState();
    state.onTick(feedTick(65_000, 64_999.9, 65_000.1), T0);
    expect(state.onTick(feedTick(65_000, 65_000.5, 64_999.5, T0 + 1), T0 + 1)).toMatchObject({ kind: 'refuse', code: 'BAD_QUOTE' });
    expect(state.quoteTable().BTCUSDT).toEqual({ bid: 64_999.9, ask: 65_000.1 });
  });

  it('PRICE_DEVIATION compares the price a fill uses (the ask of a BUY, the bid of a SELL) with the reference price', () => {
    // A wide book: ask 6% above the last price, bid 6% below; risk sized at the side each pays.
    const state = makeQuoteState();
    state.onTick(feedTick(65_000, 61_100, 68_900), T0);
    expect(resultOf(state, quoteOrder('BUY', { reference_price: 68_900 }))).toMatchObject({ status: 'FILLED', quote_side: 'ask' });
    expect(resultOf(state, quoteOrder('SELL', { reference_price: 61_100 }))).toMatchObject({ status: 'FILLED', quote_side: 'bid' });
    // Sized at the last price, the ask is 6% away: more than max_price_deviation_pct 5%.
    expect(resultOf(state, quoteOrder('BUY', { reference_price: 65_000 })).reject_reason).toMatch(/^PRICE_DEVIATION: fill price 689\d\d/);
  });
});

describe('ExecutionState.snapshotJson (the per-symbol text kept between batches)', () => {
  it('is exactly JSON.stringify(toSnapshot()) through orders, ticks with and without quotes, steps, manual prices and restores', () => {
    const symbols = ['BTCUSDT', 'ETHUSDT', 'H0001USDT', '1000'];
    for (const used of [symbols.slice(0, 3), symbols]) {
      const list = used.map((symbol) => ({ symbol, tick_size: 0.01, step_size: 0.001, min_notional_usd: 10, start_price: 100 }));
      const cfg = defaultConfig({ instruments: list, market: { simulator_spread_pct: 0.001 } });
      const make = () =>
        new ExecutionState({ instruments: instrumentTable(cfg.instruments), seed: 42, ...cfg.execution, spread_pct: 0.001, tickGate: tickGateFor(cfg) });
      let state = make();
      const parts = new PartsMirror(partsRandom());
    const same = () => {
      expect(state.snapshotJson()).toBe(JSON.stringify(state.toSnapshot()));
      parts.commit(() => state.snapshotJson());
    };
      const rng = keyedRandom(11, used.join());
      const pick = () => used[Math.floor(rng.next() * used.length)] as string;
      let now = T0;
      state.currentTicks(now);
      same();
      for (let i = 0; i < 1000; i++) {
        now += 10;
        const symbol = pick();
        const r = rng.next();
        if (r < 0.2) state.onTick({ schema_version: 1, symbol, price: 100 + Math.floor(rng.next() * 5), ts: now, source: 'manual', ...(rng.next() < 0.5 ? { bid: 99.9, ask: 100.1 } : {}) }, now);
        else if (r < 0.3) state.step(now);
        else if (r < 0.35) state.setPrice(symbol, 100 + Math.floor(rng.next() * 5), now);
        else {
          const side = rng.next() < 0.5 ? 'BUY' : 'SELL';
          const price = state.prices()[symbol] ?? 100;
          const reduce = rng.next() < 0.2;
          resultOf(state, order({ symbol, side, action: side, quantity: 0.5, reference_price: price, approved_ts: now, expires_ts: now + 30_000, ...(reduce ? { reduce_only: true, intent: 'CLOSE', action: 'CLOSE' } : {}) }), now);
        }
        same();
        if (i % 200 === 199) {
          const copy = make();
          copy.restore(JSON.parse(state.snapshotJson()));
          expect(copy.snapshotJson()).toBe(state.snapshotJson());
          if (rng.next() < 0.5) state = copy;
        }
      }
      const snap = state.toSnapshot();
      expect(Object.keys(snap.positions ?? {}).length).toBeGreaterThan(0);
      expect(Object.keys(snap.quotes ?? {}).length).toBeGreaterThan(0);
    }
  });
});
