import { describe, expect, it } from 'vitest';
import { PartsMirror } from '../../../test/helpers/parts.js';
import { instrumentTable } from '../../core/instruments.js';
import type { ExecutionResult } from '../../core/messages.js';
import { keyedRandom } from '../../core/random.js';
import { TickGate } from '../../core/tick-rules.js';
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


/** Which commits of a stored-by-parts mirror fail (seeded). */
function partsRandom(): () => number {
  const random = keyedRandom(11, 'parts');
  return () => random.next();
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

describe('MonitorState: rl.feedback', () => {
  const tickAt = (price: number, ts: number) => ({ schema_version: 1, symbol: 'BTCUSDT', price, ts, source: 'manual' as const });
  const applied = (outcome: ReturnType<MonitorState['onExecution']>) => {
    if (outcome.kind !== 'applied') throw new Error(`expected applied, got ${outcome.kind}`);
    return outcome;
  };

  it('attributes a scale-in to its first entry, tracks MAE/MFE from the marks, and reports the round trip once', () => {
    const state = new MonitorState(100_000);
    const first = fill('BUY', 0.01, 50_000, 0.2, { source: 'xgb', confidence: 0.7, kelly_applied: 0.05, ts: 1000 });
    expect(applied(state.onExecution(first, '1-0', 1000)).feedback).toBeNull();
    state.onTick(tickAt(49_000, 1100), 1100); // −2% adverse
    const more = fill('BUY', 0.01, 49_000, 0.196, { source: 'lstm', confidence: 0.95, kelly_applied: 0.09, ts: 1200 });
    expect(applied(state.onExecution(more, '2-0', 1200)).feedback).toBeNull();
    state.onTick(tickAt(50_985, 1300), 1300); // avg entry 49,500: +3% favourable
    const close = fill('SELL', 0.02, 50_490, 0.4, { source: 'manual_close', confidence: 1, exit_reason: 'manual', ts: 5000 });
    const outcome = applied(state.onExecution(close, '3-0', 5001));
    expect(outcome.feedback).toMatchObject({
      trade_id: first.order_id,
      symbol: 'BTCUSDT',
      side: 'LONG',
      source: 'xgb',
      confidence: 0.7,
      kelly_applied: 0.05,
      entry_signal_id: first.signal_id,
      exit_signal_id: close.signal_id,
      entry_ts: 1000,
      exit_ts: 5000,
      hold_ms: 4000,
      avg_entry_price: 49_500,
      avg_exit_price: 50_490,
      quantity: 0.02,
      gross_pnl_usd: 19.8,
      fees_usd: 0.796,
      net_pnl_usd: 19.004,
      exit_reason: 'manual',
      ts: 5001,
    });
    expect(outcome.feedback!.return_pct).toBeCloseTo(19.004 / 990, 12);
    // MAE: the 49,000 mark against the 50,000 entry of the time (2%); MFE: 50,985 against 49,500 (3%).
    expect(outcome.feedback!.mae_pct).toBeCloseTo(0.02, 12);
    expect(outcome.feedback!.mfe_pct).toBeCloseTo(0.03, 12);
    const [xgb] = state.sourceReports(0.65);
    expect(xgb).toMatchObject({ source: 'xgb', trades: 1, wins: 1 });
    expect(state.sourceReports(0.65).map((s) => s.source)).toEqual(['xgb']);
    // A redelivered copy is a duplicate: no second message.
    expect(state.onExecution(close, '3-0', 6000).kind).toBe('duplicate');
  });

  it('a flip closes one round trip and opens the next with the flipping fill as its entry', () => {
    const state = new MonitorState(100_000);
    state.onExecution(fill('BUY', 0.01, 50_000, 0, { source: 'a', confidence: 0.8, ts: 10 }), '1-0', 10);
    const flip = fill('SELL', 0.03, 49_500, 0, { source: 'b', confidence: 0.9, ts: 20 });
    const outcome = applied(state.onExecution(flip, '2-0', 20));
    expect(outcome.feedback).toMatchObject({ source: 'a', side: 'LONG', quantity: 0.01, net_pnl_usd: -5, mae_pct: 0.01, mfe_pct: 0 });
    const back = applied(state.onExecution(fill('BUY', 0.02, 49_000, 0, { ts: 30 }), '3-0', 30));
    expect(back.feedback).toMatchObject({ trade_id: flip.order_id, source: 'b', confidence: 0.9, side: 'SHORT', quantity: 0.02, net_pnl_usd: 10 });
  });

  it('attributes a position opened by a result without source to "unknown", with no confidence', () => {
    const state = new MonitorState(100_000);
    state.onExecution(fill('BUY', 0.01, 50_000, 0), '1-0', 10);
    const outcome = applied(state.onExecution(fill('SELL', 0.01, 50_000, 0), '2-0', 20));
    expect(outcome.feedback).toMatchObject({ source: 'unknown', confidence: null, kelly_applied: null });
    expect(state.sourceReports(0.65)[0]).toMatchObject({ source: 'unknown', trades: 1, scored_trades: 0 });
  });

  it('keeps the open trade and the per-source book in its snapshot', () => {
    const a = new MonitorState(100_000);
    a.onApproved({ source: 'xgb' } as never);
    a.onRejected({ source: 'xgb', reasons: ['COOLDOWN'] } as never);
    a.onExecution(fill('BUY', 0.01, 50_000, 0, { source: 'xgb', confidence: 0.7, ts: 10 }), '1-0', 10);
    a.onTick(tickAt(49_500, 11), 11);
    const b = new MonitorState(100_000);
    b.restore(JSON.parse(JSON.stringify(a.toSnapshot())));
    const close = fill('SELL', 0.01, 50_500, 0, { ts: 20 });
    const fromA = applied(a.onExecution(close, '2-0', 20)).feedback;
    const fromB = applied(b.onExecution(close, '2-0', 20)).feedback;
    expect(fromB).toEqual(fromA);
    expect(fromB).toMatchObject({ source: 'xgb', mae_pct: 0.01, mfe_pct: 0.01 });
    expect(b.sourceReports(0.65)).toEqual(a.sourceReports(0.65));
    expect(b.sourceReports(0.65)[0]).toMatchObject({ signals: 2, approved: 1, rejected_by_reason: { COOLDOWN: 1 }, trades: 1 });
  });

  it('writes its snapshot JSON exactly as JSON.stringify(toSnapshot()), through fills, decisions and a restore', () => {
    const state = new MonitorState(10_000);
    const parts = new PartsMirror(partsRandom());
    const same = () => {
      expect(state.snapshotJson()).toBe(JSON.stringify(state.toSnapshot()));
      parts.commit(() => state.snapshotJson());
    };
    same();
    let id = 100;
    for (let i = 0; i < 12; i += 1) {
      state.onApproved({ source: i % 2 ? 'model-a' : 'model-b' } as never);
      if (i % 3 === 0) state.onRejected({ source: 'model-a', reasons: ['LOW_CONFIDENCE'] } as never);
      state.onExecution(fill('BUY', 0.01, 50_000 + i, 0.2, { source: 'model-a', confidence: 0.8 } as never), `${(id += 1)}-0`, id);
      same();
      state.onExecution(fill('SELL', 0.01, 50_000 + 2 * i, 0.2, { source: 'model-a', confidence: 0.8 } as never), `${(id += 1)}-0`, id);
      same();
    }
    const copy = new MonitorState(10_000);
    copy.restore(JSON.parse(state.snapshotJson()));
    expect(copy.snapshotJson()).toBe(state.snapshotJson());
  });
});

describe('MonitorState.snapshotJson with many symbols (the per-symbol text kept between batches)', () => {
  it('is exactly JSON.stringify(toSnapshot()) through fills, ticks, exit levels and restores, odd symbols included', () => {
    const symbols = ['BTCUSDT', 'ETHUSDT', 'H0001USDT', 'H0002USDT', '1000'];
    const list = symbols.map((symbol) => ({ symbol, tick_size: 0.01, step_size: 0.001, min_notional_usd: 10, start_price: 100 }));
    const gate = () => new TickGate(instrumentTable(list), { maxClockSkewMs: 5000, maxJumpPct: 0.2 });
    for (const used of [symbols.slice(0, 4), symbols]) {
      let state = new MonitorState(100_000, undefined, gate());
      const parts = new PartsMirror(partsRandom());
    const same = () => {
      expect(state.snapshotJson()).toBe(JSON.stringify(state.toSnapshot()));
      parts.commit(() => state.snapshotJson());
    };
      const rng = keyedRandom(5, used.join());
      const pick = () => used[Math.floor(rng.next() * used.length)] as string;
      let id = 1;
      same();
      for (let i = 0; i < 1200; i++) {
        const symbol = pick();
        const price = 100 + Math.floor(rng.next() * 10);
        const r = rng.next();
        if (r < 0.3) state.onTick({ schema_version: 1, symbol, price, ts: 1000 + i, source: 'manual' }, 1000 + i);
        else if (r < 0.4) {
          state.onExitLevels({
            schema_version: 1, symbol, entry_signal_id: `e-${i}`, stop_loss: rng.next() < 0.5 ? null : price - 5, take_profit: null,
            trailing_stop: null, trailing_stop_pct: null, high_water_mark: null, expires_ts: null, cause: rng.next() < 0.2 ? 'cleared' : 'armed', ts: i,
          });
        } else {
          const side = rng.next() < 0.5 ? 'BUY' : 'SELL';
          state.onExecution(fill(side, 1 + Math.floor(rng.next() * 2), price, 0.01, { symbol, source: `m${i % 3}`, confidence: 0.8, ts: 1000 + i }), `${(id += 1)}-0`, 1000 + i);
        }
        same();
        if (i % 200 === 199) {
          const copy = new MonitorState(100_000, undefined, gate());
          copy.restore(JSON.parse(state.snapshotJson()));
          expect(copy.snapshotJson()).toBe(state.snapshotJson());
          if (rng.next() < 0.5) state = copy;
        }
      }
      const snap = state.toSnapshot();
      expect(snap.ledger.positions.length).toBe(used.length);
      expect(Object.keys(snap.trades).length).toBeGreaterThan(0);
      expect(Object.keys(snap.exit_levels).length).toBeGreaterThan(0);
    }
  });
});
