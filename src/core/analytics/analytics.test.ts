import { describe, expect, it } from 'vitest';
import { fx } from '../fixed.js';
import type { TradeFeedback } from '../messages.js';
import { MAX_SOURCES, OTHER_SOURCE, SourceBook } from './attribution.js';
import { bucketIndex, calibrationTable } from './calibration.js';
import { DriftWindow, judgeDrift } from './drift.js';
import { ksTwoSample, wilsonInterval } from './statistics.js';

function trip(source: string, confidence: number | null, net: number, extra: Partial<TradeFeedback> = {}): TradeFeedback {
  return {
    schema_version: 1,
    trade_id: 'PAPER-000000000001',
    symbol: 'BTCUSDT',
    side: 'LONG',
    source,
    confidence,
    entry_signal_id: 'e',
    exit_signal_id: 'x',
    entry_ts: 1000,
    exit_ts: 3000,
    hold_ms: 2000,
    avg_entry_price: 100,
    avg_exit_price: 100 + net,
    quantity: 1,
    gross_pnl_usd: net,
    fees_usd: 0,
    net_pnl_usd: net,
    return_pct: net / 100,
    mae_pct: 0.01,
    mfe_pct: 0.02,
    exit_reason: 'signal',
    kelly_applied: 0.1,
    ts: 3000,
    ...extra,
  };
}

const WINDOWS = { referenceTrades: 6, recentTrades: 4, ksAlpha: 0.05 };

describe('bucketIndex', () => {
  it.each([
    [0.65, 0.65, 0],
    [0.6999999, 0.65, 0],
    [0.7, 0.65, 1],
    [0.95, 0.65, 6],
    [0.99, 0.65, 6],
    [1, 0.65, 6],
    [1, 0.62, 7],
    [0.6, 0.65, -1],
    [0.15, 0, 3],
  ])('confidence %s from %s → %s', (confidence, min, expected) => {
    expect(bucketIndex(confidence, min)).toBe(expected);
  });
});

describe('calibrationTable', () => {
  it('gives the non-empty buckets in order with a Wilson interval on the realized rate', () => {
    const rows = calibrationTable(
      new Map([
        [2, { count: 4, confidence_sum: 3.2, wins: 3 }],
        [0, { count: 2, confidence_sum: 1.32, wins: 0 }],
        [1, { count: 0, confidence_sum: 0, wins: 0 }],
      ]),
      0.65,
    );
    expect(rows.map((r) => [r.from, r.to, r.count])).toEqual([
      [0.65, 0.7, 2],
      [0.75, 0.8, 4],
    ]);
    expect(rows[1]!.mean_confidence).toBeCloseTo(0.8, 12);
    expect(rows[1]!.win_rate).toBe(0.75);
    expect(rows[1]!.wilson_low).toBeCloseTo(wilsonInterval(0.75, 4).low, 12);
    expect(rows[0]!.wilson_high).toBeCloseTo(wilsonInterval(0, 2).high, 12);
  });
});

describe('judgeDrift', () => {
  const steady = (n: number, confidence = 0.7) => Array.from({ length: n }, (_, i) => ({ confidence: confidence + 0.01 * (i % 3), win: i % 4 !== 3 }));

  it.each([
    ['too few for either test', steady(3), null, null],
    ['enough for calibration, not for ks', steady(5), null, 'ok'],
    ['both windows full, nothing moved', [...steady(6), ...steady(4)], 'ok', 'ok'],
    ['confidences shifted up, still calibrated', [...steady(6), ...steady(4, 0.9)], 'drift', 'ok'],
    ['wins dried up at the same confidences', [...steady(6), ...steady(4).map((t) => ({ ...t, win: false }))], 'ok', 'drift'],
  ])('%s', (_name, trades, ks, calibration) => {
    const verdicts = judgeDrift(trades, WINDOWS);
    expect(verdicts.ks === null ? null : verdicts.ks.drift ? 'drift' : 'ok').toBe(ks);
    expect(verdicts.calibration === null ? null : verdicts.calibration.drift ? 'drift' : 'ok').toBe(calibration);
  });

  it('judges only the last reference + recent trades', () => {
    const old = steady(20, 0.9);
    const verdicts = judgeDrift([...old, ...steady(6), ...steady(4)], WINDOWS);
    expect(verdicts.ks!.drift).toBe(false);
    expect(verdicts.ks!.statistic).toBeLessThan(0.5);
  });
});

describe('DriftWindow', () => {
  it('keeps its sorted windows in step: the same KS as sorting the slices, trade after trade', () => {
    const windows = { referenceTrades: 7, recentTrades: 3, ksAlpha: 0.05 };
    const window = new DriftWindow(windows);
    const trades: Array<{ confidence: number; win: boolean }> = [];
    let x = 0.123;
    for (let i = 0; i < 60; i += 1) {
      x = (x * 9301 + 0.49297) % 1; // a fixed pseudo-random walk, with repeats (ties)
      const trade = { confidence: Math.round((0.6 + 0.4 * x) * 20) / 20, win: x > 0.4 };
      trades.push(trade);
      window.push(trade);
      expect(window.list()).toEqual(trades.slice(-10));
      const verdicts = window.verdicts();
      if (trades.length < 10) {
        expect(verdicts.ks).toBeNull();
        continue;
      }
      const expected = ksTwoSample(
        trades.slice(-10, -3).map((t) => t.confidence),
        trades.slice(-3).map((t) => t.confidence),
      );
      expect(verdicts.ks).toEqual({ statistic: expected.statistic, pValue: expected.pValue, drift: expected.pValue < 0.05 });
    }
  });
});

describe('SourceBook', () => {
  it('attributes decisions and round trips per source', () => {
    const book = new SourceBook(WINDOWS);
    book.onApproved('alpha');
    book.onApproved('alpha');
    book.onRejected('alpha', ['LOW_CONFIDENCE']);
    book.onRejected('beta', ['COOLDOWN', 'DAILY_LIMIT']);
    book.onRoundTrip(trip('alpha', 0.7, 10, { hold_ms: 1000, mae_pct: 0.01, mfe_pct: 0.03 }), fx('10'), 1);
    book.onRoundTrip(trip('alpha', 0.8, -4, { hold_ms: 3000, mae_pct: 0.03, mfe_pct: 0.01 }), fx('-4'), 2);
    book.onRoundTrip(trip('alpha', 0.82, 0, { hold_ms: 2000 }), fx('0'), 3);
    book.onRoundTrip(trip('beta', null, 5), fx('5'), 4);
    const [alpha, beta] = book.report(0.65);
    expect(alpha).toMatchObject({
      source: 'alpha',
      signals: 3,
      approved: 2,
      rejected: 1,
      rejected_by_reason: { LOW_CONFIDENCE: 1 },
      trades: 3,
      wins: 1,
      losses: 1,
      net_pnl_usd: 6,
      gross_profit_usd: 10,
      gross_loss_usd: 4,
      profit_factor: 2.5,
      avg_hold_ms: 2000,
      scored_trades: 3,
    });
    expect(alpha!.win_rate).toBeCloseTo(1 / 3, 12);
    expect(alpha!.avg_mae_pct).toBeCloseTo((0.01 + 0.03 + 0.01) / 3, 12);
    expect(alpha!.brier_score).toBeCloseTo(((0.7 - 1) ** 2 + 0.8 ** 2 + 0.82 ** 2) / 3, 12);
    expect(alpha!.calibration.map((r) => [r.from, r.count, r.win_rate])).toEqual([
      [0.7, 1, 1],
      [0.8, 2, 0],
    ]);
    expect(beta).toMatchObject({ source: 'beta', signals: 1, rejected_by_reason: { COOLDOWN: 1, DAILY_LIMIT: 1 }, trades: 1, scored_trades: 0 });
    expect(beta!.brier_score).toBeNull();
    expect(beta!.profit_factor).toBeNull();
    expect(beta!.calibration).toEqual([]);
  });

  it('publishes a drift change once, and the return to ok once', () => {
    const book = new SourceBook(WINDOWS);
    const feed = (confidences: number[], win: (i: number) => boolean) =>
      confidences.flatMap((c, i) => book.onRoundTrip(trip('m', c, win(i) ? 1 : -1), fx(win(i) ? 1 : -1), 100 + i));
    const base = [0.7, 0.71, 0.72, 0.7, 0.71, 0.72];
    expect(feed(base, (i) => i % 3 !== 0)).toEqual([]);
    expect(feed([0.7, 0.71, 0.72, 0.7], (i) => i % 2 === 0)).toEqual([]);
    const shifted = feed([0.95, 0.96, 0.97, 0.98], () => true);
    const ks = shifted.filter((d) => d.test === 'ks');
    expect(ks).toHaveLength(1);
    expect(ks[0]).toMatchObject({ source: 'm', state: 'drift', alpha: 0.05, reference_trades: 6, recent_trades: 4, interval: null });
    expect(ks[0]!.statistic).toBe(1);
    expect(ks[0]!.p_value).toBeLessThan(0.05);
    expect(book.report(0.65)[0]!.drift.ks.state).toBe('drift');
    expect(book.driftCounts().ks).toBe(1);
    // Ten more at the new level: the reference catches up, the state returns to ok once.
    const back = feed(Array.from({ length: 10 }, () => 0.96), () => true).filter((d) => d.test === 'ks');
    expect(back.map((d) => d.state)).toEqual(['ok']);
  });

  it('survives its snapshot as JSON and keeps the windows bounded', () => {
    const book = new SourceBook(WINDOWS);
    for (let i = 0; i < 30; i += 1) book.onRoundTrip(trip('a', 0.7 + (i % 5) * 0.05, i % 2 ? 1 : -1), fx(i % 2 ? '1.000000000000000001' : '-1'), i);
    book.onRejected('a', ['COOLDOWN']);
    const snap = JSON.parse(JSON.stringify(book.toSnapshot()));
    expect(snap.a.window).toHaveLength(10);
    const copy = new SourceBook(WINDOWS);
    copy.restore(snap);
    expect(copy.report(0.65)).toEqual(book.report(0.65));
    expect(copy.toSnapshot().a!.net).toBe('0.000000000000000015');
  });

  it('writes its snapshot JSON exactly as JSON.stringify(toSnapshot()), through every change and a restore', () => {
    const book = new SourceBook(WINDOWS);
    const same = () => expect(book.toSnapshotJson()).toBe(JSON.stringify(book.toSnapshot()));
    same();
    const names = ['a', 'b "quoted" \\ é 😀', 'constructor', 'toString', OTHER_SOURCE, '01', '7', '__proto__', 'z'];
    for (let i = 0; i < 60; i += 1) {
      const name = names[i % names.length]!;
      if (i % 3 === 0) book.onApproved(name);
      if (i % 4 === 0) book.onRejected(name, i % 8 === 0 ? ['COOLDOWN', 'LOW_CONFIDENCE'] : ['window']);
      if (i % 2 === 0) book.onRoundTrip(trip(name, i % 5 === 0 ? null : 0.6 + (i % 7) * 0.05, i % 3 ? 1 : -1, { hold_ms: i, mae_pct: -0.1 * i, mfe_pct: 0.2 }), fx(i % 3 ? '1.5' : '-0.25'), i);
      same();
      // The cached window text must follow the window (pushes past capacity drop the oldest).
      book.onRoundTrip(trip('a', 0.7 + (i % 5) * 0.05, i % 2 ? 1 : -1), fx(1), 1000 + i);
      same();
    }
    const copy = new SourceBook(WINDOWS);
    copy.restore(JSON.parse(book.toSnapshotJson()));
    expect(copy.toSnapshotJson()).toBe(JSON.stringify(copy.toSnapshot()));
    // Only the plain names (no array index, no __proto__): the fast path itself.
    const plain = new SourceBook(WINDOWS);
    for (let i = 0; i < 40; i += 1) {
      plain.onApproved(names[i % 5]!);
      plain.onRoundTrip(trip(names[i % 5]!, 0.65 + (i % 6) * 0.05, i % 2 ? 1 : -1), fx(i % 2 ? '0.1' : '-0.1'), i);
      expect(plain.toSnapshotJson()).toBe(JSON.stringify(plain.toSnapshot()));
    }
  });

  it(`counts sources beyond ${MAX_SOURCES} under ${OTHER_SOURCE}`, () => {
    const book = new SourceBook(WINDOWS);
    for (let i = 0; i < MAX_SOURCES + 5; i += 1) book.onApproved(`s${i}`);
    const report = book.report(0.65);
    expect(report).toHaveLength(MAX_SOURCES + 1);
    expect(report.find((r) => r.source === OTHER_SOURCE)!.approved).toBe(5);
  });
});
