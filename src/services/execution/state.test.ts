import { describe, expect, it } from 'vitest';
import { instrumentTable } from '../../core/instruments.js';
import type { RiskApprovedSignal } from '../../core/messages.js';
import { defaultConfig } from '../../platform/config.js';
import { ExecutionState } from './state.js';

const config = defaultConfig();
const instruments = instrumentTable(config.instruments);
const T0 = Date.UTC(2026, 11, 1, 12);

function makeState(extra: { spread_pct?: number; external?: boolean } = {}) {
  return new ExecutionState({ instruments, seed: 42, ...config.execution, ...extra });
}

let n = 0;
function order(side: 'BUY' | 'SELL', patch: Partial<RiskApprovedSignal> = {}): RiskApprovedSignal {
  n += 1;
  return {
    schema_version: 1, signal_id: `o-${n}`, symbol: 'BTCUSDT', action: side, confidence: 0.8, source: 't', ts: T0, intent: 'OPEN', side,
    quantity: 0.01, notional_usd: 650, reference_price: 65_000, kelly_optimal: 0.2, kelly_applied: 0.05, risk_amount_usd: 13,
    reduce_only: false, approved_ts: T0, origin: 'signal', checks: [], sizing: null, ...patch,
  };
}

const resultOf = (state: ExecutionState, o: RiskApprovedSignal, now = T0 + 100) => {
  const outcome = state.onOrder(o, now);
  if (outcome.kind !== 'result') throw new Error('duplicate');
  return outcome.result;
};

describe('ExecutionState quotes', () => {
  it('the simulator announces and walks prices with the synthetic spread, and fills from it', () => {
    const state = makeState({ spread_pct: 0.0002 });
    const btc = state.currentTicks(T0).find((t) => t.symbol === 'BTCUSDT')!;
    expect(btc).toMatchObject({ price: 65_000, bid: 64_993.5, ask: 65_006.5, source: 'simulator' });
    expect(resultOf(state, order('BUY'))).toMatchObject({ reference_price: 65_006.5, quote_side: 'ask' });
    for (const tick of state.step(T0 + 5000)) expect(tick.bid! < tick.price && tick.price < tick.ask!).toBe(true);
  });

  it('takes quotes from bus ticks, uses them for fills with the price age, and a tick without quotes clears them', () => {
    const state = makeState();
    expect(state.onTick({ schema_version: 1, symbol: 'BTCUSDT', price: 65_000.2, ts: T0, source: 'feed', bid: 65_000.1, ask: 65_000.3 })).toBe(true);
    expect(resultOf(state, order('SELL'), T0 + 40)).toMatchObject({ reference_price: 65_000.1, quote_side: 'bid', price_age_ms: 40 });
    expect(state.quoteTable().BTCUSDT).toEqual({ bid: 65_000.1, ask: 65_000.3 });
    state.onTick({ schema_version: 1, symbol: 'BTCUSDT', price: 65_100, ts: T0 + 1, source: 'manual' });
    expect(resultOf(state, order('BUY'))).toMatchObject({ reference_price: 65_100, quote_side: 'last' });
  });

  it('with a live feed, a symbol has no price (NO_PRICE) until its first tick', () => {
    const state = makeState({ external: true });
    expect(state.prices()).toEqual({});
    expect(resultOf(state, order('BUY'))).toMatchObject({ status: 'REJECTED', reject_reason: expect.stringMatching(/^NO_PRICE/) });
    state.onTick({ schema_version: 1, symbol: 'BTCUSDT', price: 65_000.2, ts: T0, source: 'feed', bid: 65_000.1, ask: 65_000.3 });
    expect(resultOf(state, order('BUY'))).toMatchObject({ status: 'FILLED', quote_side: 'ask' });
  });

  it('keeps the quotes across a snapshot and restore, and restores an older snapshot without them', () => {
    const state = makeState();
    state.onTick({ schema_version: 1, symbol: 'BTCUSDT', price: 65_000.2, ts: T0, source: 'feed', bid: 65_000.1, ask: 65_000.3 });
    const snapshot = JSON.parse(JSON.stringify(state.toSnapshot())) as Record<string, unknown>;
    const restored = makeState();
    restored.restore(snapshot);
    expect(restored.quoteTable()).toEqual(state.quoteTable());
    const older = makeState();
    delete snapshot.quotes;
    older.restore(snapshot);
    expect(older.quoteTable()).toEqual({});
  });
});
