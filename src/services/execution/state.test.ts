import { describe, expect, it } from 'vitest';
import { instrumentTable } from '../../core/instruments.js';
import type { RiskApprovedSignal } from '../../core/messages.js';
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
