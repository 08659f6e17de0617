import { describe, expect, it } from 'vitest';
import { createFillModels, paperFill } from '../../core/fills.js';
import { fx } from '../../core/fixed.js';
import { instrumentTable } from '../../core/instruments.js';
import type { RiskApprovedSignal, TradeSignal } from '../../core/messages.js';
import { defaultConfig } from '../../platform/config.js';
import { tickGateFor } from '../common/ticks.js';
import { RiskState } from './state.js';

const config = defaultConfig();
const instruments = instrumentTable(config.instruments);
const T0 = Date.UTC(2026, 10, 24, 12, 0, 0);

function makeState(exits = config.exits) {
  return new RiskState({
    initialBalance: 10_000,
    instruments,
    limits: config.risk,
    execution: config.execution,
    seed: 42,
    inflightTimeoutMs: 30_000,
    tickGate: tickGateFor(config),
    exits,
  });
}

let n = 0;
function signal(action: TradeSignal['action'], extra: Partial<TradeSignal> = {}): TradeSignal {
  n += 1;
  // Stamped with the latest tick's time: fresh for risk.max_signal_age_ms.
  return { schema_version: 1, signal_id: `x-${n}`, symbol: 'SOLUSDT', action, confidence: 0.85, source: 'test', ts: tickTs, ...extra };
}

let tickTs = T0;
function tick(state: RiskState, price: number, quotes: { bid?: number; ask?: number } = {}) {
  tickTs += 1;
  state.onTick({ schema_version: 1, symbol: 'SOLUSDT', price, ts: tickTs, source: 'manual', ...quotes }, tickTs);
  return state.checkExits(tickTs, 'SOLUSDT');
}

function fill(order: RiskApprovedSignal, mark: number, now: number) {
  return paperFill({ order, mark: fx(mark), instrument: instruments.get(order.symbol), seed: 42, models: createFillModels(config.execution), now });
}

/** A filled position from one entry signal at 150. */
function open(state: RiskState, extra: Partial<TradeSignal>, action: 'BUY' | 'SELL' = 'BUY'): RiskApprovedSignal {
  tick(state, 150);
  const d = state.onSignal(signal(action, extra), tickTs);
  if (d.kind !== 'approve') throw new Error(`not approved: ${JSON.stringify(d)}`);
  state.onExecution(fill(d.message, 150, tickTs));
  return d.message;
}

describe('RiskState: protective exits', () => {
  it('fires one reduce-only close for a stop, however many ticks cross it, and disarms once flat', () => {
    const state = makeState();
    const entry = open(state, { stop_loss: 140 });
    expect(state.drainExitLevels().map((m) => [m.cause, m.stop_loss])).toEqual([['armed', 140]]);
    expect(tick(state, 145)).toEqual([]);
    const [close] = tick(state, 139);
    expect(close).toMatchObject({ intent: 'CLOSE', side: 'SELL', reduce_only: true, origin: 'protective_exit', exit_reason: 'stop_loss' });
    expect(close!.quantity).toBe(entry.quantity);
    expect(close!.checks!.some((c) => c.rule === 'protective_exit')).toBe(true);
    expect(tick(state, 130)).toEqual([]); // one close in flight per position
    expect(state.drainExitLevels().map((m) => m.cause)).toEqual(['triggered']);
    state.onExecution(fill(close!, 130, tickTs));
    expect(state.drainExitLevels().map((m) => m.cause)).toEqual(['cleared']);
    expect(state.stats(tickTs).exits_by_reason).toEqual({ stop_loss: 1 });
    expect(tick(state, 100)).toEqual([]);
  });

  it('fires even when HALTED (a close is never blocked)', () => {
    const state = makeState();
    open(state, { stop_loss: 140 });
    const snap = state.toSnapshot();
    state.restore({ ...snap, trading_state: 'HALTED', halted_at: T0, halt_reason: 'test' });
    expect(state.isHalted()).toBe(true);
    expect(tick(state, 139)).toHaveLength(1);
  });

  it('checks a long against the bid and a short against the ask', () => {
    const long = makeState();
    open(long, { stop_loss: 140 });
    expect(tick(long, 139, { bid: 140.5, ask: 141.5 })).toEqual([]); // the last price is below, the bid is not
    const restored = makeState();
    restored.restore(JSON.parse(long.snapshotJson()));
    expect(restored.checkExits(tickTs, 'SOLUSDT')).toEqual([]); // the quote survived the restart
    expect(tick(long, 141, { bid: 139.9, ask: 141.5 })[0]?.exit_reason).toBe('stop_loss');
    const short = makeState();
    open(short, { stop_loss: 160 }, 'SELL');
    expect(tick(short, 159, { bid: 158, ask: 159.5 })).toEqual([]);
    expect(tick(short, 159, { bid: 158, ask: 160 })[0]).toMatchObject({ side: 'BUY', exit_reason: 'stop_loss' });
  });

  it('refuses a wrong-side level in the decision record and does not arm it', () => {
    const state = makeState();
    tick(state, 150);
    const d = state.onSignal(signal('BUY', { stop_loss: 155, take_profit: 170 }), tickTs);
    expect(d.kind).toBe('approve');
    if (d.kind !== 'approve') return;
    expect(d.message.checks!.find((c) => c.rule === 'exit_stop_loss')).toMatchObject({ passed: false, value: 155 });
    expect(d.message.checks!.find((c) => c.rule === 'exit_take_profit')).toMatchObject({ passed: true });
    state.onExecution(fill(d.message, 150, tickTs));
    expect(tick(state, 149)).toEqual([]);
    expect(tick(state, 171)[0]?.exit_reason).toBe('take_profit');
  });

  it('keeps the trail, the levels and the in-flight close across a restart; a re-fire repeats the signal_id', () => {
    const state = makeState();
    open(state, { trailing_stop_pct: 0.1 });
    tick(state, 200); // the trail is at 180 now
    const restarted = makeState();
    restarted.restore(JSON.parse(state.snapshotJson()));
    expect(restarted.exitLevels(tickTs)[0]).toMatchObject({ high_water_mark: 200, trailing_stop: 180 });
    expect(tick(restarted, 181)).toEqual([]);
    const [close] = tick(restarted, 180);
    expect(close?.exit_reason).toBe('trailing_stop');
    // Killed before that batch committed: the same tick re-fires the same close (execution drops it).
    const again = makeState();
    again.restore(JSON.parse(restarted.snapshotJson()));
    expect(tick(again, 170)).toEqual([]); // the close in flight survived
    const before = makeState();
    before.restore(JSON.parse(state.snapshotJson()));
    expect(tick(before, 180)[0]?.signal_id).toBe(close!.signal_id);
  });

  it('fires a time limit on the clock and a fresh close after execution rejected one', () => {
    const state = makeState();
    open(state, { max_hold_ms: 60_000 });
    expect(state.checkExits(tickTs + 59_000)).toEqual([]);
    const [close] = state.checkExits(tickTs + 60_000);
    expect(close?.exit_reason).toBe('time_limit');
    state.onExecution({ ...fill(close!, 150, tickTs), status: 'REJECTED', reject_reason: 'NO_PRICE: test' });
    const [retry] = state.checkExits(tickTs + 61_000);
    expect(retry?.exit_reason).toBe('time_limit');
    expect(retry?.signal_id).not.toBe(close!.signal_id);
  });

  it('does not fire while another close is in flight, and a later entry replaces the levels', () => {
    const state = makeState();
    open(state, { stop_loss: 140, confidence: 0.66 }); // leaves room in the symbol for an INCREASE
    const add = state.onSignal(signal('BUY', { stop_loss: 120 }), tickTs);
    expect(add.kind === 'approve' && add.message.intent).toBe('INCREASE');
    if (add.kind === 'approve') state.onExecution(fill(add.message, 150, tickTs));
    expect(tick(state, 130)).toEqual([]); // the stop is at 120 now
    const manual = state.onSignal(signal('CLOSE', { source: 'manual_close' }), tickTs);
    expect(manual.kind === 'approve' && manual.message.exit_reason).toBe('manual');
    expect(tick(state, 110)).toEqual([]); // the manual close is in flight
  });

  it('sets and clears levels of an open position (POST /positions/{symbol}/exits)', () => {
    const state = makeState();
    expect(state.setExitLevels('SOLUSDT', { stop_loss: 1 }, T0)).toMatchObject({ ok: false, status: 404 });
    open(state, {});
    expect(state.setExitLevels('SOLUSDT', { stop_loss: 151 }, tickTs)).toMatchObject({ ok: false, status: 400, field: 'stop_loss' });
    expect(state.setExitLevels('SOLUSDT', { stop_loss: 140, take_profit: 160 }, tickTs)).toMatchObject({ ok: true, levels: { stop_loss: 140, take_profit: 160 } });
    expect(state.setExitLevels('SOLUSDT', { stop_loss: null }, tickTs)).toMatchObject({ ok: true, levels: { stop_loss: null, take_profit: 160 } });
    expect(tick(state, 130)).toEqual([]);
    expect(tick(state, 161)[0]?.exit_reason).toBe('take_profit');
  });

  it('fires only on ticks the tick gate accepts (a refused jump, sub-tick or future-dated tick moves nothing)', () => {
    const state = makeState();
    open(state, { stop_loss: 140, trailing_stop_pct: 0.05 });
    const feed = (price: number, ahead = 0) => {
      tickTs += 1;
      const verdict = state.onTick({ schema_version: 1, symbol: 'SOLUSDT', price, ts: tickTs + ahead, source: 'feed' }, tickTs);
      return { verdict: verdict.kind, closes: verdict.kind === 'accept' ? state.checkExits(tickTs, 'SOLUSDT') : [] };
    };
    state.drainExitLevels();
    expect(feed(100)).toEqual({ verdict: 'refuse', closes: [] }); // an unconfirmed 33% drop
    expect(feed(200)).toEqual({ verdict: 'refuse', closes: [] }); // nor does a refused spike move the trail
    expect(feed(0.004)).toEqual({ verdict: 'refuse', closes: [] }); // below one 0.01 tick
    expect(feed(139, 60_000)).toEqual({ verdict: 'refuse', closes: [] }); // a minute ahead of the clock
    expect(state.drainExitLevels()).toEqual([]);
    expect(state.exitLevels(tickTs)[0]).toMatchObject({ stop_loss: 140, high_water_mark: 150 });
    expect(feed(139).closes.map((c) => c.exit_reason)).toEqual(['stop_loss']);
  });

  it('gives a protective close an expiry like every approval, and fires a fresh one when it expires in flight', () => {
    const state = makeState();
    open(state, { stop_loss: 140 });
    const [close] = tick(state, 139);
    expect(close!.expires_ts).toBe(tickTs + config.risk.inflight_timeout_ms);
    expect(state.checkExits(close!.expires_ts!)).toEqual([]); // still in flight
    // Execution never answered (it was down): past the expiry risk stops counting it.
    expect(state.expireInflight(close!.expires_ts! + 1).map((o) => o.signal_id)).toEqual([close!.signal_id]);
    expect(state.exitsDueOnClock()).toBe(true);
    const [retry] = state.checkExits(close!.expires_ts! + 1);
    expect(retry).toMatchObject({ exit_reason: 'stop_loss', reduce_only: true, origin: 'protective_exit' });
    expect(retry!.signal_id).not.toBe(close!.signal_id);
    // The first one's late EXPIRED answer changes nothing: the retry stays the one in flight.
    state.onExecution({ ...fill(close!, 139, tickTs), status: 'REJECTED', reject_reason: 'EXPIRED: test' });
    expect(state.stats(tickTs).protective_closes_in_flight).toBe(1);
    expect(state.checkExits(close!.expires_ts! + 2)).toEqual([]);
  });

  it('fires again after execution rejects a close EXPIRED', () => {
    const state = makeState();
    open(state, { stop_loss: 140 });
    const [close] = tick(state, 139);
    state.onExecution({ ...fill(close!, 139, tickTs), status: 'REJECTED', reject_reason: 'EXPIRED: test' });
    const [retry] = tick(state, 138);
    expect(retry?.exit_reason).toBe('stop_loss');
    expect(retry!.signal_id).not.toBe(close!.signal_id);
  });

  it('is never STALE_SIGNAL: a close fires however old the entry signal and risk.max_signal_age_ms', () => {
    const state = new RiskState({
      initialBalance: 10_000,
      instruments,
      limits: { ...config.risk, max_signal_age_ms: 1 },
      execution: config.execution,
      seed: 42,
      inflightTimeoutMs: 30_000,
      tickGate: tickGateFor(config),
      exits: config.exits,
    });
    tick(state, 150);
    const d = state.onSignal(signal('BUY', { stop_loss: 140 }), tickTs);
    if (d.kind !== 'approve') throw new Error(`not approved: ${JSON.stringify(d)}`);
    state.onExecution(fill(d.message, 150, tickTs));
    tickTs += 3_600_000;
    const [close] = tick(state, 139);
    expect(close).toMatchObject({ intent: 'CLOSE', exit_reason: 'stop_loss' });
  });

  it('uses the config defaults for a signal without levels', () => {
    const state = makeState({ ...config.exits, stop_loss_pct: 0.1 });
    open(state, {});
    expect(tick(state, 136)).toEqual([]);
    expect(tick(state, 135)[0]?.exit_reason).toBe('stop_loss');
  });
});
