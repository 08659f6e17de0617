import { describe, expect, it } from 'vitest';
import { ConfigSchema, DEFAULT_INSTRUMENTS } from '../platform/config.js';
import { fx, toNumber, ZERO, type Fixed } from './fixed.js';
import { approx, CHECK_RULES, decide, fxNumber, num, tradingStateAfter, utcDay, type AccountView, type Decision, type RiskLimits } from './governor.js';
import { instrumentTable, type InstrumentSpec } from './instruments.js';
import { RiskApprovedSignal, RiskRejection, type CheckEntry, type RiskRejection as Rejection, type TradeSignal } from './messages.js';

// ---------------------------------------------------------------------------------
// Builders

const DAY = 86_400_000;
const MINUTE = 60_000;
/** 2024-05-01T12:00:00Z */
const NOW = Date.UTC(2024, 4, 1, 12);

/** The configured defaults (also proves the config's `risk` object satisfies RiskLimits). */
const DEFAULT_LIMITS: RiskLimits = ConfigSchema.parse({}).risk;
const INSTRUMENTS = instrumentTable(DEFAULT_INSTRUMENTS);
const BTC = INSTRUMENTS.get('BTCUSDT')!;

interface AccountSpec {
  equity: number;
  peakEquity: number;
  drawdown: number;
  halted: boolean;
  exposure: number;
  /** Net quantity per symbol, in-flight orders included. */
  positions: Record<string, number>;
  roundTrips: { count: number; sumWins: number; sumLosses: number; wins: number; losses: number };
  lastLossClosedAt: number | null;
  /** Approved entries per UTC day. */
  entries: Record<number, number>;
}

function account(over: Partial<AccountSpec> = {}): AccountView {
  const s: AccountSpec = {
    equity: 10_000,
    peakEquity: 10_000,
    drawdown: 0,
    halted: false,
    exposure: 0,
    positions: {},
    roundTrips: { count: 0, sumWins: 0, sumLosses: 0, wins: 0, losses: 0 },
    lastLossClosedAt: null,
    entries: {},
    ...over,
  };
  return {
    equity: fx(s.equity),
    peakEquity: fx(s.peakEquity),
    drawdown: fx(s.drawdown),
    halted: s.halted,
    exposure: fx(s.exposure),
    netQuantity: (symbol) => fx(s.positions[symbol] ?? 0),
    roundTrips: {
      count: s.roundTrips.count,
      sumWins: fx(s.roundTrips.sumWins),
      sumLosses: fx(s.roundTrips.sumLosses),
      wins: s.roundTrips.wins,
      losses: s.roundTrips.losses,
    },
    lastLossClosedAt: s.lastLossClosedAt,
    entriesOnDay: (day) => s.entries[day] ?? 0,
  };
}

function signal(over: Partial<TradeSignal> = {}): TradeSignal {
  return {
    schema_version: 1,
    signal_id: 'sig-1',
    symbol: 'BTCUSDT',
    action: 'BUY',
    confidence: 0.65,
    source: 'xgb',
    ts: NOW - 1_000,
    ...over,
  };
}

interface Case {
  signal?: Partial<TradeSignal>;
  account?: Partial<AccountSpec>;
  instrument?: InstrumentSpec | undefined;
  price?: Fixed | undefined;
  limits?: Partial<RiskLimits>;
  now?: number;
  priceAge?: { ageMs: number; limitMs: number };
  maxSlippagePct?: number;
  /** Protection fields of the account view (kill switch, day start, locks, ...). */
  view?: Partial<AccountView>;
}

function run(c: Case = {}): Decision {
  // A signal made a second before the decision (max_signal_age_ms is on by default).
  const sig = signal({ ts: (c.now ?? NOW) - 1_000, ...c.signal });
  const decision = decide({
    signal: sig,
    account: c.view ? { ...account(c.account), ...c.view } : account(c.account),
    instrument: 'instrument' in c ? c.instrument : INSTRUMENTS.get(sig.symbol),
    price: 'price' in c ? c.price : fx(50_000),
    limits: c.limits ? { ...DEFAULT_LIMITS, ...c.limits } : DEFAULT_LIMITS,
    now: c.now ?? NOW,
    priceAge: c.priceAge,
    maxSlippagePct: c.maxSlippagePct,
  });
  // Every published message must be valid on the wire.
  if (decision.kind === 'approve') RiskApprovedSignal.parse(decision.message);
  if (decision.kind === 'reject') RiskRejection.parse(decision.message);
  return decision;
}

function approved(c: Case = {}): RiskApprovedSignal {
  const d = run(c);
  if (d.kind !== 'approve') throw new Error(`expected an approval, got ${JSON.stringify(d)}`);
  return d.message;
}

function rejected(c: Case = {}): Rejection {
  const d = run(c);
  if (d.kind !== 'reject') throw new Error(`expected a rejection, got ${JSON.stringify(d)}`);
  return d.message;
}

/** Reasons of a decision; [] for an approval. */
function reasons(c: Case = {}): string[] {
  const d = run(c);
  return d.kind === 'reject' ? d.message.reasons : [];
}

function check(checks: CheckEntry[] | undefined, rule: string): CheckEntry {
  const entry = checks?.find((e) => e.rule === rule);
  if (!entry) throw new Error(`no check ${rule} in ${JSON.stringify(checks)}`);
  return entry;
}

// ---------------------------------------------------------------------------------

describe('steps 1–2: HOLD, unknown symbol, no price', () => {
  it('skips HOLD without a message, even for an unknown symbol or without a price', () => {
    expect(run({ signal: { action: 'HOLD' } })).toEqual({ kind: 'skip', reason: 'HOLD' });
    expect(run({ signal: { action: 'HOLD', symbol: 'DOGEUSDT' }, price: undefined })).toEqual({ kind: 'skip', reason: 'HOLD' });
  });

  it('rejects an unknown symbol with UNKNOWN_SYMBOL only', () => {
    const r = rejected({ signal: { symbol: 'DOGEUSDT' }, price: undefined });
    expect(r.reasons).toEqual(['UNKNOWN_SYMBOL']);
    expect(r.sizing).toBeNull();
    expect(check(r.checks, CHECK_RULES.knownSymbol)).toMatchObject({ passed: false, value: 'DOGEUSDT' });
  });

  it('rejects a known symbol with no price yet (entries and closes alike)', () => {
    expect(rejected({ price: undefined }).reasons).toEqual(['NO_PRICE']);
    expect(rejected({ price: ZERO }).reasons).toEqual(['NO_PRICE']);
    expect(rejected({ signal: { action: 'CLOSE' }, account: { positions: { BTCUSDT: 0.01 } }, price: undefined }).reasons).toEqual(['NO_PRICE']);
  });

  it('optional signal fields the producer left out stay out of the JSON', () => {
    const r = rejected({ signal: { confidence: 0.5 } });
    const a = approved();
    for (const message of [r, a]) {
      const json = JSON.parse(JSON.stringify(message)) as Record<string, unknown>;
      for (const key of ['price', 'stop_loss', 'take_profit', 'metadata']) expect(json).not.toHaveProperty(key);
    }
    expect(JSON.parse(JSON.stringify(approved({ signal: { stop_loss: 49_000 } })))).toHaveProperty('stop_loss', 49_000);
  });

  it('a rejection carries the signal, ts = now and signal_ts = the signal ts', () => {
    const r = rejected({ signal: { confidence: 0.5, metadata: { model: 'v3' }, price: 49_990 } });
    expect(r).toMatchObject({ signal_id: 'sig-1', symbol: 'BTCUSDT', action: 'BUY', source: 'xgb', ts: NOW, signal_ts: NOW - 1_000, metadata: { model: 'v3' }, price: 49_990 });
  });
});

describe('step 3: intent from the net position (in-flight included)', () => {
  it.each([
    ['flat BUY', 'BUY', 0, 'OPEN', 'BUY', false],
    ['flat SELL', 'SELL', 0, 'OPEN', 'SELL', false],
    ['long BUY', 'BUY', 0.005, 'INCREASE', 'BUY', false],
    ['short SELL', 'SELL', -0.005, 'INCREASE', 'SELL', false],
    ['long SELL', 'SELL', 0.005, 'CLOSE', 'SELL', true],
    ['short BUY', 'BUY', -0.005, 'CLOSE', 'BUY', true],
    ['long CLOSE', 'CLOSE', 0.005, 'CLOSE', 'SELL', true],
    ['short CLOSE', 'CLOSE', -0.005, 'CLOSE', 'BUY', true],
  ] as const)('%s → %s %s', (_name, action, net, intent, side, reduceOnly) => {
    const a = approved({ signal: { action }, account: { positions: { BTCUSDT: net }, exposure: Math.abs(net) * 50_000 } });
    expect(a).toMatchObject({ intent, side, reduce_only: reduceOnly });
  });

  it('CLOSE when flat is rejected NO_POSITION', () => {
    const r = rejected({ signal: { action: 'CLOSE' }, account: { positions: { ETHUSDT: 1 } } });
    expect(r.reasons).toEqual(['NO_POSITION']);
    expect(r.sizing).toBeNull();
    expect(check(r.checks, CHECK_RULES.openPosition).passed).toBe(false);
  });
});

describe('step 4: closes are reduce-only and always approved', () => {
  const everythingFails: Partial<AccountSpec> = {
    halted: true,
    drawdown: 0.3,
    equity: 7_000,
    lastLossClosedAt: NOW - MINUTE,
    entries: { [utcDay(NOW)]: 50 },
    exposure: 7_000,
  };

  it('an opposite signal closes the whole position even when halted, cooling down, over the daily limit and at low confidence', () => {
    const a = approved({ signal: { action: 'SELL', confidence: 0.1 }, account: { ...everythingFails, positions: { BTCUSDT: 0.14 } } });
    expect(a).toMatchObject({
      intent: 'CLOSE',
      side: 'SELL',
      quantity: 0.14,
      notional_usd: 7_000,
      reference_price: 50_000,
      reduce_only: true,
      origin: 'signal',
      approved_ts: NOW,
      ts: NOW - 1_000,
      kelly_optimal: 0,
      kelly_applied: 0,
      risk_amount_usd: 0,
      sizing: null,
    });
    expect(a.checks).toEqual([expect.objectContaining({ rule: CHECK_RULES.reduceOnlyClose, passed: true, value: 0.14 })]);
  });

  it('a halted account still rejects entries with CIRCUIT_BREAKER', () => {
    expect(reasons({ account: { halted: true } })).toEqual(['CIRCUIT_BREAKER']);
  });

  it.each([
    ['manual_close', 'manual_close'],
    ['protective_exit', 'protective_exit'],
    ['xgb', 'signal'],
  ] as const)('source %s → origin %s', (source, origin) => {
    const a = approved({ signal: { action: 'CLOSE', source, confidence: 1 }, account: { ...everythingFails, positions: { BTCUSDT: -0.02 } } });
    expect(a).toMatchObject({ intent: 'CLOSE', side: 'BUY', quantity: 0.02, origin });
  });

  it('closes the whole net position including in-flight orders, and a second close in flight finds it flat', () => {
    // 0.02 filled + 0.01 approved and in flight.
    expect(approved({ signal: { action: 'CLOSE' }, account: { positions: { BTCUSDT: 0.03 } } }).quantity).toBe(0.03);
    // After the close was approved its in-flight SELL 0.03 nets the position to zero.
    expect(rejected({ signal: { action: 'CLOSE', source: 'manual_close' }, account: { positions: { BTCUSDT: 0 } } }).reasons).toEqual(['NO_POSITION']);
  });
});

describe('step 5: entry rules at their boundaries', () => {
  it.each([
    [0.65, []],
    [0.6499, ['LOW_CONFIDENCE']],
    [0.66, []],
    [0, ['LOW_CONFIDENCE', 'NEGATIVE_EDGE']],
  ])('confidence %s → %j', (confidence, expected) => {
    expect(reasons({ signal: { confidence } })).toEqual(expected);
  });

  it('confidence at a configured minimum: equal passes', () => {
    expect(reasons({ signal: { confidence: 0.7 }, limits: { min_confidence: 0.7 } })).toEqual([]);
    expect(reasons({ signal: { confidence: 0.69999 }, limits: { min_confidence: 0.7 } })).toEqual(['LOW_CONFIDENCE']);
  });

  it.each([
    [0.15, false, ['CIRCUIT_BREAKER']],
    [0.1499, false, []],
    [0.2, false, ['CIRCUIT_BREAKER']],
    [0, true, ['CIRCUIT_BREAKER']],
    [0.1499, true, ['CIRCUIT_BREAKER']],
  ])('drawdown %s halted=%s → %j', (drawdown, halted, expected) => {
    expect(reasons({ account: { drawdown, halted } })).toEqual(expected);
  });

  const loss = NOW - 2 * 60 * MINUTE;
  it.each([
    ['no losing round trip', null, NOW, []],
    ['1 ms after the loss', loss, loss + 1, ['COOLDOWN']],
    ['59:59.999 after the loss', loss, loss + 60 * MINUTE - 1, ['COOLDOWN']],
    ['exactly 60:00 after the loss', loss, loss + 60 * MINUTE, []],
    ['61 minutes after the loss', loss, loss + 61 * MINUTE, []],
  ] as const)('cooldown: %s → %j', (_name, lastLossClosedAt, now, expected) => {
    expect(reasons({ account: { lastLossClosedAt }, now })).toEqual(expected);
  });

  it('cooldown with fractional minutes is exact (0.7 min = 42 000 ms)', () => {
    const limits = { cooldown_minutes: 0.7 };
    expect(reasons({ account: { lastLossClosedAt: NOW - 41_999 }, limits })).toEqual(['COOLDOWN']);
    expect(reasons({ account: { lastLossClosedAt: NOW - 42_000 }, limits })).toEqual([]);
    expect(reasons({ account: { lastLossClosedAt: NOW }, limits: { cooldown_minutes: 0 } })).toEqual([]);
  });

  it('cooldown check explains when it ends', () => {
    const r = rejected({ account: { lastLossClosedAt: NOW - 30 * MINUTE } });
    expect(check(r.checks, CHECK_RULES.cooldown)).toMatchObject({ passed: false, value: 30, limit: 60 });
    expect(check(r.checks, CHECK_RULES.cooldown).note).toContain('2024-05-01T12:30:00.000Z');
  });

  const today = utcDay(NOW);
  it.each([
    ['the 20th entry of the day (19 before)', 19, []],
    ['the 21st entry of the day (20 before)', 20, ['DAILY_LIMIT']],
    ['far over', 35, ['DAILY_LIMIT']],
  ])('daily entries: %s → %j', (_name, before, expected) => {
    expect(reasons({ account: { entries: { [today]: before } } })).toEqual(expected);
  });

  it('the daily count is per UTC day: it restarts at 00:00 UTC', () => {
    const midnight = Date.UTC(2024, 4, 2);
    const entries = { [utcDay(midnight - 1)]: 20 };
    expect(reasons({ account: { entries }, now: midnight - 1 })).toEqual(['DAILY_LIMIT']);
    expect(reasons({ account: { entries }, now: midnight })).toEqual([]);
    expect(utcDay(midnight)).toBe(utcDay(midnight - 1) + 1);
  });

  it('max_daily_entries 0 blocks every entry but no close', () => {
    expect(reasons({ limits: { max_daily_entries: 0 } })).toEqual(['DAILY_LIMIT']);
    expect(approved({ signal: { action: 'CLOSE' }, account: { positions: { BTCUSDT: 0.01 } }, limits: { max_daily_entries: 0 } }).intent).toBe('CLOSE');
  });

  it.each([
    ['exactly max_signal_age_ms old', 60_000, []],
    ['1 ms older', 60_001, ['STALE_SIGNAL']],
    ['stamped 60 s in the future', -60_000, []],
    ['stamped more than 60 s in the future', -60_001, ['STALE_SIGNAL']],
  ] as const)('signal age: %s → %j', (_name, age, expected) => {
    expect(reasons({ signal: { ts: NOW - age } })).toEqual(expected);
    expect(reasons({ signal: { ts: NOW - age }, limits: { max_signal_age_ms: 0 } })).toEqual([]); // 0 = off
  });

  it('a stale CLOSE still closes (it only lowers risk)', () => {
    const close = approved({ signal: { action: 'CLOSE', ts: NOW - 3_600_000 }, account: { positions: { BTCUSDT: 0.01 } } });
    expect(close).toMatchObject({ intent: 'CLOSE', reduce_only: true });
  });

  it('collects every failing reason, in rule order', () => {
    const r = rejected({
      signal: { confidence: 0.5, ts: NOW - 60_001 },
      account: { halted: true, drawdown: 0.2, lastLossClosedAt: NOW - MINUTE, entries: { [today]: 20 }, exposure: 4_995 },
    });
    expect(r.reasons).toEqual(['STALE_SIGNAL', 'LOW_CONFIDENCE', 'CIRCUIT_BREAKER', 'COOLDOWN', 'DAILY_LIMIT', 'NEGATIVE_EDGE', 'EXPOSURE_LIMIT']);
    expect(r.sizing).not.toBeNull();
    expect(r.checks.map((c) => c.rule)).toEqual([
      CHECK_RULES.signalAge,
      CHECK_RULES.confidence,
      CHECK_RULES.circuitBreaker,
      CHECK_RULES.cooldown,
      CHECK_RULES.dailyEntries,
      CHECK_RULES.edge,
      CHECK_RULES.position,
      CHECK_RULES.exposure,
      CHECK_RULES.minNotional,
    ]);
    expect(r.checks.filter((c) => !c.passed).map((c) => c.rule)).toEqual([
      CHECK_RULES.signalAge,
      CHECK_RULES.confidence,
      CHECK_RULES.circuitBreaker,
      CHECK_RULES.cooldown,
      CHECK_RULES.dailyEntries,
      CHECK_RULES.edge,
      CHECK_RULES.exposure,
      CHECK_RULES.minNotional,
    ]);
  });
});

describe('step 6: sizing', () => {
  it('p=0.65, b=1 → kelly 0.30, applied 0.075, 750 USDT on 10 000 equity', () => {
    const a = approved({ signal: { confidence: 0.65 } });
    expect(a).toMatchObject({
      intent: 'OPEN',
      side: 'BUY',
      kelly_optimal: 0.3,
      kelly_applied: 0.075,
      notional_usd: 750,
      quantity: 0.015,
      reference_price: 50_000,
      risk_amount_usd: 15, // 750 × default 2% stop
      reduce_only: false,
      origin: 'signal',
      approved_ts: NOW,
      ts: NOW - 1_000,
    });
    expect(a.sizing).toEqual({
      p: 0.65,
      b: 1,
      b_source: 'default',
      kelly_fraction: 0.25,
      kelly_optimal: 0.3,
      kelly_applied: 0.075,
      equity_usd: 10_000,
      symbol_room_usd: 1_000,
      exposure_room_usd: 5_000,
      target_notional_usd: 750,
      reference_price: 50_000,
      step_size: 0.00001,
      stop_distance_pct: 0.02,
    });
  });

  it('p=0.85 → applied capped at max position 0.10 → 1 000 USDT', () => {
    expect(approved({ signal: { confidence: 0.85 } })).toMatchObject({ kelly_optimal: 0.7, kelly_applied: 0.1, notional_usd: 1_000, quantity: 0.02 });
  });

  it('p=0.5, b=1 → kelly 0 → NEGATIVE_EDGE', () => {
    const r = rejected({ signal: { confidence: 0.5 }, limits: { min_confidence: 0.5 } });
    expect(r.reasons).toEqual(['NEGATIVE_EDGE']);
    expect(check(r.checks, CHECK_RULES.edge)).toMatchObject({ passed: false, value: 0, limit: 0 });
  });

  const rt = (count: number) => ({ count, sumWins: 300, wins: 6, sumLosses: 25 * (count - 6), losses: count - 6 });
  it('b comes from the round trips once there are 10 (avg win 50 / avg loss 25 = 2), not 9', () => {
    const limits = { min_confidence: 0.5 };
    const ten = approved({ signal: { confidence: 0.55 }, account: { roundTrips: rt(10) }, limits });
    expect(ten.sizing).toMatchObject({ b: 2, b_source: 'round_trips' });
    expect(ten).toMatchObject({ kelly_optimal: 0.325, kelly_applied: 0.08125, notional_usd: 812.5 });
    const nine = approved({ signal: { confidence: 0.55 }, account: { roundTrips: rt(9) }, limits });
    expect(nine.sizing).toMatchObject({ b: 1, b_source: 'default' });
    expect(nine).toMatchObject({ kelly_optimal: 0.1, kelly_applied: 0.025, notional_usd: 250 });
  });

  it.each([
    ['10 round trips, 0 wins → b = 0 from them → NEGATIVE_EDGE', 10, ['NEGATIVE_EDGE']],
    ['9 round trips, 0 wins → default b = 1 → approved', 9, []],
  ] as const)('%s', (_name, count, expected) => {
    const lossesOnly = { count, sumWins: 0, wins: 0, sumLosses: 10 * count, losses: count };
    const d = run({ signal: { confidence: 0.8 }, account: { roundTrips: lossesOnly } });
    expect(d.kind === 'reject' ? d.message.reasons : []).toEqual(expected);
    if (count === 10 && d.kind === 'reject') {
      expect(d.message.sizing).toMatchObject({ b: 0, b_source: 'round_trips' });
      expect(check(d.message.checks, CHECK_RULES.edge).passed).toBe(false);
    }
  });

  it('b from take-profit / stop-loss distances; risk from the stop distance', () => {
    const a = approved({ signal: { confidence: 0.55, take_profit: 52_000, stop_loss: 49_000 }, limits: { min_confidence: 0.5 } });
    expect(a.sizing).toMatchObject({ b: 2, b_source: 'take_profit_stop_loss', stop_distance_pct: 0.02 });
    expect(a).toMatchObject({ kelly_optimal: 0.325, notional_usd: 812.5, risk_amount_usd: 16.25 });
    const tighter = approved({ signal: { confidence: 0.65, stop_loss: 49_500 } });
    expect(tighter).toMatchObject({ notional_usd: 750, risk_amount_usd: 7.5 });
    expect(tighter.sizing).toMatchObject({ b_source: 'default', stop_distance_pct: 0.01 });
  });

  it('quantity is rounded DOWN to the step size', () => {
    const a = approved({ signal: { symbol: 'XRPUSDT' }, price: fx(0.7) });
    expect(a).toMatchObject({ quantity: 1071.4, notional_usd: 749.98, reference_price: 0.7 });
    expect(a.sizing).toMatchObject({ target_notional_usd: 750, step_size: 0.1 });
  });

  it('a SELL entry is sized the same way', () => {
    expect(approved({ signal: { action: 'SELL' } })).toMatchObject({ intent: 'OPEN', side: 'SELL', quantity: 0.015, notional_usd: 750 });
  });
});

describe('step 5–6: position and exposure room', () => {
  it.each([
    ['room 250: capped to the room', 0.015, 250, []],
    ['room exactly the min notional (10) passes', 0.0198, 10, []],
    ['room 5 < min notional → POSITION_LIMIT', 0.0199, null, ['POSITION_LIMIT']],
    ['at the limit → POSITION_LIMIT', 0.02, null, ['POSITION_LIMIT']],
    ['over the limit → POSITION_LIMIT', -0.03, null, ['POSITION_LIMIT']],
  ] as const)('symbol %s', (_name, net, notional, expected) => {
    const side = net < 0 ? 'SELL' : 'BUY';
    const d = run({ signal: { action: side, confidence: 0.85 }, account: { positions: { BTCUSDT: net }, exposure: Math.abs(net) * 50_000 } });
    if (expected.length === 0) {
      expect(d.kind).toBe('approve');
      if (d.kind === 'approve') expect(d.message).toMatchObject({ intent: 'INCREASE', notional_usd: notional });
    } else {
      expect(d.kind === 'reject' && d.message.reasons).toEqual(expected);
    }
  });

  it.each([
    ['room 300: capped to the room', 4_700, 300, []],
    ['room exactly 10 passes', 4_990, 10, []],
    ['room 5 → EXPOSURE_LIMIT', 4_995, null, ['EXPOSURE_LIMIT']],
    ['over → EXPOSURE_LIMIT', 6_000, null, ['EXPOSURE_LIMIT']],
  ] as const)('exposure %s', (_name, exposure, notional, expected) => {
    const d = run({ account: { exposure } });
    if (expected.length === 0) {
      expect(d.kind === 'approve' && d.message.notional_usd).toBe(notional);
    } else {
      expect(d.kind === 'reject' && d.message.reasons).toEqual(expected);
    }
  });

  it('room above the min notional that still sizes below it because of the step → the binding room is blamed', () => {
    // One step (0.1) at 150 is 15 USDT: a 14 USDT room leaves no whole step.
    const coarse: InstrumentSpec = { symbol: 'BTCUSDT', tickSize: fx(0.01), stepSize: fx(0.1), minNotional: fx(10), startPrice: fx(150) };
    const price = fx(150);
    const symbolRoom = rejected({ instrument: coarse, price, account: { positions: { BTCUSDT: 6.576 }, exposure: 986.4 } });
    expect(symbolRoom.reasons).toEqual(['POSITION_LIMIT']);
    expect(check(symbolRoom.checks, CHECK_RULES.minNotional)).toMatchObject({ passed: false, value: 0, limit: 10 });
    const exposureRoom = rejected({ instrument: coarse, price, account: { exposure: 4_986 } });
    expect(exposureRoom.reasons).toEqual(['EXPOSURE_LIMIT']);
    expect(check(exposureRoom.checks, CHECK_RULES.position).passed).toBe(true);
  });

  it('the larger of the instrument and config minimum notional applies', () => {
    const bigMin: InstrumentSpec = { ...BTC, minNotional: fx(300) };
    expect(reasons({ instrument: bigMin, account: { exposure: 4_750 } })).toEqual(['EXPOSURE_LIMIT']);
    expect(reasons({ instrument: bigMin, account: { exposure: 4_700 } })).toEqual([]);
    expect(reasons({ account: { exposure: 4_750 }, limits: { min_order_notional_usd: 300 } })).toEqual(['EXPOSURE_LIMIT']);
  });

  it('a Kelly target too small for one minimum order is rejected BELOW_MIN_ORDER, explained in min_notional', () => {
    // One step of 1 BTC at 50 000 is far above the 750 USDT target, with every room open.
    const whole: InstrumentSpec = { ...BTC, stepSize: fx(1) };
    const r = rejected({ instrument: whole });
    expect(r.reasons).toEqual(['BELOW_MIN_ORDER']);
    expect(check(r.checks, CHECK_RULES.minNotional).note).toMatch(/Kelly target 750 USDT/);
    expect(check(r.checks, CHECK_RULES.position).passed).toBe(true);
    // Same with a tiny edge: p=0.5001 → applied 0.000050 → 0.5 USDT.
    expect(reasons({ signal: { confidence: 0.5001 }, limits: { min_confidence: 0.5 } })).toEqual(['BELOW_MIN_ORDER']);
  });

  // p = 0.75, b = 1: Kelly 0.5 × 0.1 = 0.05 of equity; at 50 000 and step 0.00001 the
  // order is the target rounded down to 0.5 USDT steps; the minimum order is 10 USDT.
  it.each([
    ['target exactly one minimum order', 200, []],
    ['target just below one minimum order', 199.99, ['BELOW_MIN_ORDER']],
    ['target far below, rooms still open', 150, ['BELOW_MIN_ORDER']],
    ['target below, and the symbol room too: the room is the reason', 50, ['POSITION_LIMIT']],
  ] as const)('Kelly target at the minimum: %s (equity %s) → %j', (_name, equity, expected) => {
    expect(reasons({ signal: { confidence: 0.75 }, account: { equity, peakEquity: equity }, limits: { kelly_fraction: 0.1 } })).toEqual(expected);
  });

  // Exposure room of exactly 10 USDT: 0.0002 BTC at 50 000. A BUY fills at or above the
  // mark; a SELL as low as 50 000 × (1 − s) rounded down, below the minimum once s > 0.
  it.each([
    ['BUY', 0.001, []],
    ['SELL', 0, []],
    ['SELL', 0.001, ['EXPOSURE_LIMIT']],
  ] as const)('the minimum is checked at the worst fill: %s with max slippage %s → %j', (action, maxSlippagePct, expected) => {
    expect(reasons({ signal: { action }, account: { exposure: 4_990 }, maxSlippagePct })).toEqual(expected);
  });

  it('checks show the value seen and the limit as numbers (exposure 0.47 vs 0.5)', () => {
    const a = approved({ account: { exposure: 4_700, positions: { BTCUSDT: 0.005 } } });
    expect(check(a.checks, CHECK_RULES.exposure)).toMatchObject({ passed: true, value: 0.47, limit: 0.5 });
    expect(check(a.checks, CHECK_RULES.position)).toMatchObject({ passed: true, value: 0.025, limit: 0.1 });
    expect(check(a.checks, CHECK_RULES.confidence)).toEqual({ rule: 'confidence', passed: true, value: 0.65, limit: 0.65 });
    expect(check(a.checks, CHECK_RULES.circuitBreaker)).toMatchObject({ passed: true, value: 0, limit: 0.15 });
    expect(check(a.checks, CHECK_RULES.dailyEntries)).toMatchObject({ passed: true, value: 0, limit: 20 });
    expect(check(a.checks, CHECK_RULES.edge)).toMatchObject({ passed: true, value: 0.3, limit: 0 });
    expect(check(a.checks, CHECK_RULES.minNotional)).toMatchObject({ passed: true, value: 300, limit: 10 });
    expect(a.sizing).toMatchObject({ symbol_room_usd: 750, exposure_room_usd: 300, target_notional_usd: 300 });
  });

  it('a non-positive equity rejects entries without throwing', () => {
    const r = rejected({ account: { equity: 0, drawdown: 1 } });
    expect(r.reasons).toEqual(['CIRCUIT_BREAKER', 'POSITION_LIMIT', 'EXPOSURE_LIMIT']);
    expect(check(r.checks, CHECK_RULES.exposure).value).toBeNull();
  });
});

describe('tradingStateAfter and utcDay', () => {
  it.each([
    ['ACTIVE', 0.1499, 'ACTIVE'],
    ['ACTIVE', 0.15, 'HALTED'],
    ['ACTIVE', 0.2, 'HALTED'],
    ['HALTED', 0, 'HALTED'],
  ] as const)('%s at drawdown %s → %s', (current, drawdown, next) => {
    expect(tradingStateAfter(current, fx(drawdown), fx(0.15))).toBe(next);
  });

  it('utcDay', () => {
    expect(utcDay(0)).toBe(0);
    expect(utcDay(DAY - 1)).toBe(0);
    expect(utcDay(DAY)).toBe(1);
    expect(utcDay(NOW)).toBe(19_844);
  });
});

describe('fast conversions', () => {
  // A deterministic generator (the core never uses Math.random).
  let state = 12345;
  const next = (): number => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    return state / 2 ** 32;
  };
  const samples: number[] = [0, 1, -1, 0.65, 0.6499, 0.1 + 0.2, 0.7, 1e-9, 123.456789012, 9_999_999.99999999, 1e7, 65_000.01, 1 / 3, 2 ** -30, 5e-324, 1e21];
  for (let i = 0; i < 2_000; i++) {
    samples.push(next(), Math.round(next() * 1e8) / 1e8, Math.round(next() * 1e12) / 1e4, (next() - 0.5) * 1e6);
  }

  it('fxNumber equals fx for every sample', () => {
    for (const x of samples) expect(fxNumber(x), String(x)).toBe(fx(x));
  });

  it('num equals toNumber; approx is within one ulp of it', () => {
    for (const x of samples) {
      const v = fx(x) / 7n; // 18 significant decimals most of the time
      expect(num(fx(x))).toBe(toNumber(fx(x)));
      expect(num(v)).toBe(toNumber(v));
      const exact = toNumber(v);
      expect(Math.abs(approx(v) - exact)).toBeLessThanOrEqual(Math.abs(exact) * 2 ** -52);
    }
  });
});

describe('STALE_PRICE: entries need a fresh price, closes never', () => {
  it.each([
    ['fresh', 1_000, 15_000, true],
    ['exactly at the limit', 15_000, 15_000, true],
    ['one ms over', 15_001, 15_000, false],
  ])('%s: age %d ms vs limit %d ms', (_name, ageMs, limitMs, passes) => {
    const d = run({ priceAge: { ageMs, limitMs } });
    const checks = d.kind === 'skip' ? [] : d.message.checks;
    expect(check(checks, 'price_age')).toMatchObject({ passed: passes, value: ageMs, limit: limitMs });
    expect(d.kind === 'reject' ? d.message.reasons : []).toEqual(passes ? [] : ['STALE_PRICE']);
  });

  it('explains a stale price in the decision record', () => {
    const note = check(rejected({ priceAge: { ageMs: 20_000, limitMs: 15_000 } }).checks, 'price_age').note;
    expect(note).toMatch(/20000 ms old .*15000/);
  });

  it('is off with limit 0 or without an age: no check at all', () => {
    expect((approved({ priceAge: { ageMs: 10 ** 9, limitMs: 0 } }).checks ?? []).some((c) => c.rule === 'price_age')).toBe(false);
    expect((approved().checks ?? []).some((c) => c.rule === 'price_age')).toBe(false);
  });

  it('never blocks a close', () => {
    const close = approved({ signal: { action: 'CLOSE' }, account: { positions: { BTCUSDT: 0.01 }, exposure: 500 }, priceAge: { ageMs: 10 ** 9, limitMs: 15_000 } });
    expect(close).toMatchObject({ intent: 'CLOSE', reduce_only: true });
  });
});

// ---------------------------------------------------------------------------------
// Protections (docs/protections.md): each rule at its boundaries, off by default.

describe('protections: every rule off by default leaves the decision as it was', () => {
  it('no protection check appears with the defaults, even with the view fields present', () => {
    const plain = approved();
    const withView = approved({
      view: { killSwitch: null, dayStartEquity: fx(20_000), recentEntryTimes: [NOW, NOW, NOW], openPositions: 50, lockFor: () => null, sourceStop: () => null },
    });
    expect(withView.checks).toEqual(plain.checks);
    expect((withView.checks ?? []).map((c) => c.rule)).not.toContain(CHECK_RULES.dailyLoss);
  });
});

describe('KILL_SWITCH: every entry refused with the operator reason; closes pass', () => {
  it('an entry is refused naming the reason', () => {
    const r = rejected({ view: { killSwitch: { reason: 'news at 14:00', since: NOW - 5_000 } } });
    expect(r.reasons).toEqual(['KILL_SWITCH']);
    expect(check(r.checks, CHECK_RULES.killSwitch).note).toMatch(/news at 14:00/);
  });
  it('a close passes', () => {
    const d = run({ signal: { action: 'CLOSE' }, account: { positions: { BTCUSDT: 0.01 } }, view: { killSwitch: { reason: 'x', since: NOW } } });
    expect(d.kind).toBe('approve');
  });
});

describe('DAILY_LOSS_LIMIT: the UTC day loss vs its starting equity', () => {
  // Day start 10 000, limit 3 %: a loss of exactly 300 trips it.
  it.each([
    [9_700.01, []],
    [9_700, ['DAILY_LOSS_LIMIT']],
    [9_699.99, ['DAILY_LOSS_LIMIT']],
    [10_500, []],
  ])('equity %s → %j', (equity, expected) => {
    const c: Case = { account: { equity, peakEquity: Math.max(equity, 10_000) }, view: { dayStartEquity: fx(10_000) }, limits: { max_daily_loss_pct: 0.03 } };
    expect(reasons(c)).toEqual(expected);
  });
  it('the decision record has the day PnL and the limit', () => {
    const r = rejected({ account: { equity: 9_600 }, view: { dayStartEquity: fx(10_000) }, limits: { max_daily_loss_pct: 0.03 } });
    const entry = check(r.checks, CHECK_RULES.dailyLoss);
    expect(entry).toMatchObject({ passed: false, value: 0.04, limit: 0.03 });
    expect(entry.note).toMatch(/PnL -400 USDT/);
  });
  it('a close passes past the limit', () => {
    const d = run({ signal: { action: 'CLOSE' }, account: { equity: 5_000, positions: { BTCUSDT: 0.01 } }, view: { dayStartEquity: fx(10_000) }, limits: { max_daily_loss_pct: 0.03 } });
    expect(d.kind).toBe('approve');
  });
});

describe('RATE_LIMIT: sliding windows over entries approved', () => {
  const times = (n: number, at: number) => Array.from({ length: n }, () => at);
  it.each([
    // [approvals, at, limit per second, expected]
    [4, NOW - 500, 5, []],
    [5, NOW - 500, 5, ['RATE_LIMIT']],
    [5, NOW - 999, 5, ['RATE_LIMIT']],
    [5, NOW - 1000, 5, []], // 1000 ms ago: outside the window (now − 1000, now]
    [6, NOW - 1, 5, ['RATE_LIMIT']],
  ])('%s approvals at now−%s with max_orders_per_second %s → %j', (n, at, limit, expected) => {
    expect(reasons({ view: { recentEntryTimes: times(n, at) }, limits: { max_orders_per_second: limit } })).toEqual(expected);
  });
  it.each([
    [9, NOW - 30_000, []],
    [10, NOW - 30_000, ['RATE_LIMIT']],
    [10, NOW - 60_000, []],
  ])('%s approvals at now−%s with max_orders_per_minute 10 → %j', (n, at, expected) => {
    expect(reasons({ view: { recentEntryTimes: times(n, at) }, limits: { max_orders_per_minute: 10 } })).toEqual(expected);
  });
  it('the record has the count and the limit', () => {
    const r = rejected({ view: { recentEntryTimes: times(5, NOW) }, limits: { max_orders_per_second: 5 } });
    expect(check(r.checks, CHECK_RULES.rateLimit)).toMatchObject({ passed: false, value: 5, limit: 5 });
  });
});

describe('MAX_OPEN_POSITIONS: a new position when the maximum is open', () => {
  it.each([
    [2, {}, []],
    [3, {}, ['MAX_OPEN_POSITIONS']],
    [4, {}, ['MAX_OPEN_POSITIONS']],
    [3, { BTCUSDT: 0.001 }, []], // an INCREASE of an open position passes
  ])('%s open, positions %j, max 3 → %j', (open, positions, expected) => {
    const r = reasons({ account: { positions, exposure: 0 }, view: { openPositions: open }, limits: { max_open_positions: 3 } });
    expect(r).toEqual(expected);
  });
  it('the record has the count and the limit', () => {
    const r = rejected({ view: { openPositions: 3 }, limits: { max_open_positions: 3 } });
    expect(check(r.checks, CHECK_RULES.openPositions)).toMatchObject({ passed: false, value: 3, limit: 3 });
  });
});

describe('ORDER_NOTIONAL_LIMIT: the sized order against the per-order cap', () => {
  // Default sizing: p 0.65, b 1 → Kelly 0.3 × 0.25 = 7.5 % of 10 000 = 750 USDT (0.015 BTC at 50 000).
  it.each([
    [750.01, []],
    [750, []],
    [749.99, ['ORDER_NOTIONAL_LIMIT']],
  ])('cap %s → %j', (cap, expected) => {
    expect(reasons({ limits: { max_notional_per_order_usd: cap } })).toEqual(expected);
  });
  it('the record has the notional and the cap', () => {
    const r = rejected({ limits: { max_notional_per_order_usd: 500 } });
    expect(check(r.checks, CHECK_RULES.orderNotional)).toMatchObject({ passed: false, value: 750, limit: 500 });
  });
});

describe('LOCKED and SOURCE_DRAWDOWN', () => {
  const lock = { protection: 'stoploss_guard#0', symbol: 'BTCUSDT', since: NOW - 60_000, until: NOW + 1, reason: '2 stop-loss exits' };
  it('an entry under a lock is refused naming the protection and its end', () => {
    const r = rejected({ view: { lockFor: () => lock } });
    expect(r.reasons).toEqual(['LOCKED']);
    expect(check(r.checks, CHECK_RULES.lock)).toMatchObject({ passed: false, value: 'stoploss_guard#0', limit: NOW + 1 });
  });
  it('a stopped source is refused; a close from it passes', () => {
    const view: Partial<AccountView> = { sourceStop: (s) => (s === 'xgb' ? { since: NOW - 1, reason: 'drawdown 12%' } : null) };
    expect(reasons({ view })).toEqual(['SOURCE_DRAWDOWN']);
    expect(reasons({ view, signal: { source: 'other' } })).toEqual([]);
    expect(run({ view, signal: { action: 'CLOSE' }, account: { positions: { BTCUSDT: 0.01 } } }).kind).toBe('approve');
  });
  it('new reasons come in rule order after the existing ones they sit between', () => {
    const r = rejected({
      signal: { confidence: 0.5 },
      view: { killSwitch: { reason: 'x', since: NOW }, dayStartEquity: fx(20_000), lockFor: () => lock, openPositions: 9 },
      limits: { max_daily_loss_pct: 0.01, max_open_positions: 1 },
    });
    expect(r.reasons).toEqual(['KILL_SWITCH', 'LOW_CONFIDENCE', 'DAILY_LOSS_LIMIT', 'LOCKED', 'MAX_OPEN_POSITIONS', 'NEGATIVE_EDGE']);
  });
});
