import { describe, expect, it } from 'vitest';
import { div, fx, mul, toDecimalString, toNumber, ZERO, type Fixed } from './fixed.js';
import { EXPOSURE_FRACTION_CAP, Ledger, type LedgerFill } from './ledger.js';
import { PortfolioSummary, PositionView } from './messages.js';
import { seededRandom } from './random.js';

type Side = 'BUY' | 'SELL';
type Dec = string | number;

let orderSeq = 0;
function fill(side: Side, quantity: Dec, price: Dec, fee: Dec = 0, ts = 1_000, symbol = 'BTCUSDT'): LedgerFill {
  orderSeq += 1;
  return {
    order_id: `PAPER-${orderSeq.toString(16).padStart(12, '0')}`,
    symbol,
    side,
    quantity: fx(quantity),
    price: fx(price),
    fee: fx(fee),
    ts,
  };
}

const opposite = (side: Side): Side => (side === 'BUY' ? 'SELL' : 'BUY');

/** Renders Fixed fields as decimal strings so failures read as numbers. */
function dec(value: Fixed): string {
  return toDecimalString(value);
}

describe('Ledger: simple round trips', () => {
  it.each([
    // name,        open,   qty,  entry, exit,  entry fee, exit fee, gross,  side
    ['long win', 'BUY', '0.5', '100', '110', '0.02', '0.022', '5', 'LONG'],
    ['long loss', 'BUY', '2', '50', '48.5', '0.04', '0.0388', '-3', 'LONG'],
    ['short win', 'SELL', '3', '20', '19', '0.024', '0.0228', '3', 'SHORT'],
    ['short loss', 'SELL', '0.1', '30000', '30150.5', '1.2', '1.20602', '-15.05', 'SHORT'],
  ] as const)('%s', (_name, openSide, qty, entry, exit, entryFee, exitFee, gross, side) => {
    const ledger = new Ledger(fx(10_000));
    const openEffect = ledger.applyFill(fill(openSide, qty, entry, entryFee, 1_000));
    expect(openEffect.opened).toBe(true);
    expect(openEffect.realizedGross).toBe(ZERO);
    expect(openEffect.position.side).toBe(side);

    const closeEffect = ledger.applyFill(fill(opposite(openSide), qty, exit, exitFee, 2_000));
    const fees = fx(entryFee) + fx(exitFee);
    const net = fx(gross) - fees;
    expect(dec(closeEffect.realizedGross)).toBe(dec(fx(gross)));
    expect(closeEffect.fee).toBe(fx(exitFee));
    expect(closeEffect.opened).toBe(false);
    expect(closeEffect.position.side).toBe('FLAT');
    expect(closeEffect.position.quantity).toBe(ZERO);
    expect(closeEffect.position.realizedPnl).toBe(net);
    expect(closeEffect.position.closeAvg).toBe(fx(exit));

    const trip = closeEffect.closedRoundTrip;
    expect(trip).not.toBeNull();
    expect(trip).toEqual({
      symbol: 'BTCUSDT',
      side,
      openedTs: 1_000,
      closedTs: 2_000,
      quantity: fx(qty),
      entryAvg: fx(entry),
      closeAvg: fx(exit),
      gross: fx(gross),
      fees,
      net,
      win: net > 0n,
      exitReason: null,
    });
    expect(dec(ledger.balance())).toBe(dec(fx(10_000) + fx(gross) - fees));
    expect(ledger.equity()).toBe(ledger.balance());
    expect(ledger.unrealized()).toBe(ZERO);
    expect(ledger.exposure()).toBe(ZERO);
    expect(ledger.openPositionCount()).toBe(0);
    const stats = ledger.roundTripStats();
    expect(stats.count).toBe(1);
    expect(stats.wins).toBe(net > 0n ? 1 : 0);
    expect(stats.losses).toBe(net < 0n ? 1 : 0);
    expect(stats.lastLossClosedAt).toBe(net < 0n ? 2_000 : null);
    expect(ledger.totals()).toEqual({
      realized_pnl_usd: Number(dec(net)),
      unrealized_pnl_usd: 0,
      fees_usd: Number(dec(fees)),
    });
  });
});

describe('Ledger: scale-in averages', () => {
  it.each([
    ['long, exact', 'BUY', [['1', '100'], ['3', '104']], '4', '103'],
    ['short, exact', 'SELL', [['2', '10'], ['2', '11'], ['1', '13']], '-5', '11'],
    // 302 / 3 = 100.6666…, rounded half away from zero at the 18th decimal
    ['long, rounded', 'BUY', [['1', '100'], ['2', '101']], '3', '100.666666666666666667'],
    ['short, rounded', 'SELL', [['1', '1'], ['1', '1'], ['1', '2']], '-3', '1.333333333333333333'],
  ] as const)('%s', (_name, side, fills, quantity, avg) => {
    const ledger = new Ledger(fx(10_000));
    let last;
    for (const [q, p] of fills) last = ledger.applyFill(fill(side, q, p));
    expect(last?.opened).toBe(false);
    expect(dec(last?.position.quantity ?? ZERO)).toBe(quantity);
    expect(dec(last?.position.entryAvg ?? ZERO)).toBe(avg);
    expect(ledger.openPositionCount()).toBe(1);
  });
});

describe('Ledger: partial closes', () => {
  it.each([
    // entries, then reductions with the gross each realizes; the average never moves
    {
      name: 'long, exact average',
      side: 'BUY' as Side,
      entries: [['2', '100'], ['2', '101']],
      avg: '100.5',
      reductions: [['1', '103', '2.5'], ['3', '99', '-4.5']],
      tripEntry: '100.5',
      tripClose: '100',
    },
    {
      name: 'short, exact average',
      side: 'SELL' as Side,
      entries: [['1', '200']],
      avg: '200',
      reductions: [['0.25', '190', '2.5'], ['0.25', '210', '-2.5'], ['0.5', '180', '10']],
      tripEntry: '200',
      tripClose: '190',
    },
    {
      // cost 302 over 3: the first partial realizes 102 − 100.666…667 rounded at 1e-18;
      // the last takes the remaining cost exactly, so the round trip is exactly 306 − 302
      name: 'long, rounded average: the round trip stays exact',
      side: 'BUY' as Side,
      entries: [['1', '100'], ['2', '101']],
      avg: '100.666666666666666667',
      reductions: [['1', '102', '1.333333333333333333'], ['2', '102', '2.666666666666666667']],
      tripEntry: '100.666666666666666667',
      tripClose: '102',
    },
  ])('$name', ({ side, entries, avg, reductions, tripEntry, tripClose }) => {
    const ledger = new Ledger(fx(1_000));
    for (const [q, p] of entries) ledger.applyFill(fill(side, q as string, p as string));
    let gross = ZERO;
    let closeNotional = ZERO;
    let openNotional = ZERO;
    for (const [q, p] of entries) openNotional += mul(fx(q as string), fx(p as string));
    let last;
    for (const [q, p, realized] of reductions) {
      last = ledger.applyFill(fill(opposite(side), q as string, p as string));
      expect(dec(last.realizedGross)).toBe(realized);
      expect(dec(last.position.entryAvg)).toBe(avg);
      gross += last.realizedGross;
      closeNotional += mul(fx(q as string), fx(p as string));
    }
    const trip = last?.closedRoundTrip;
    expect(trip).toBeTruthy();
    // exact: gross = ±(Σ close notional − Σ open notional)
    expect(trip?.gross).toBe(side === 'BUY' ? closeNotional - openNotional : openNotional - closeNotional);
    expect(trip?.gross).toBe(gross);
    expect(dec(trip?.entryAvg ?? ZERO)).toBe(tripEntry);
    expect(dec(trip?.closeAvg ?? ZERO)).toBe(tripClose);
    expect(ledger.balance()).toBe(fx(1_000) + gross);
  });

  it('keeps the position open and reports the close average so far', () => {
    const ledger = new Ledger(fx(1_000));
    ledger.applyFill(fill('BUY', '4', '10', '0.016', 5));
    ledger.applyFill(fill('SELL', '1', '12', '0.0048', 6));
    const effect = ledger.applyFill(fill('SELL', '1', '13', '0.0052', 7));
    expect(effect.closedRoundTrip).toBeNull();
    expect(effect.position).toMatchObject({
      side: 'LONG',
      quantity: fx(2),
      entryAvg: fx(10),
      closeAvg: fx('12.5'),
      realizedGross: fx(5),
      fees: fx('0.026'),
      realizedPnl: fx('4.974'),
      openedTs: 5,
    });
  });
});

describe('Ledger: flips through zero', () => {
  it.each([
    {
      name: 'long to short',
      first: fill('BUY', '1', '100', '0.04', 10),
      flip: fill('SELL', '3', '110', '0.132', 20),
      gross: '10',
      closeFee: '0.044',
      openFee: '0.088',
      newSide: 'SHORT',
      newQty: '-2',
    },
    {
      name: 'short to long',
      first: fill('SELL', '2', '50', '0.04', 10),
      flip: fill('BUY', '5', '45', '0.09', 20),
      gross: '10',
      closeFee: '0.036',
      openFee: '0.054',
      newSide: 'LONG',
      newQty: '3',
    },
    {
      // 0.1 × 1/3 rounds; the opening share is the rest, so the two add up to the fee
      name: 'long to short, fee split rounded',
      first: fill('BUY', '1', '10', '0', 10),
      flip: fill('SELL', '3', '9', '0.1', 20),
      gross: '-1',
      closeFee: '0.033333333333333333',
      openFee: '0.066666666666666667',
      newSide: 'SHORT',
      newQty: '-2',
    },
  ])('$name', ({ first, flip, gross, closeFee, openFee, newSide, newQty }) => {
    const ledger = new Ledger(fx(10_000));
    ledger.applyFill(first);
    const effect = ledger.applyFill(flip);
    expect(effect.opened).toBe(true);
    expect(effect.fee).toBe(flip.fee);
    expect(dec(effect.realizedGross)).toBe(gross);

    const trip = effect.closedRoundTrip;
    const tripFees = first.fee + fx(closeFee);
    expect(trip).toMatchObject({ closedTs: 20, closeAvg: flip.price, entryAvg: first.price, quantity: first.quantity });
    expect(dec(trip?.fees ?? ZERO)).toBe(dec(tripFees));
    expect(dec(trip?.net ?? ZERO)).toBe(dec(fx(gross) - tripFees));

    // the remainder opens at the fill price, carrying the opening share of the fee
    const pos = effect.position;
    expect(pos.side).toBe(newSide);
    expect(dec(pos.quantity)).toBe(newQty);
    expect(pos.entryAvg).toBe(flip.price);
    expect(dec(pos.fees)).toBe(openFee);
    expect(dec(pos.realizedPnl)).toBe(dec(-fx(openFee)));
    expect(pos.realizedGross).toBe(ZERO);
    expect(pos.closeAvg).toBe(ZERO);
    expect(pos.openedTs).toBe(20);
    expect(fx(closeFee) + fx(openFee)).toBe(flip.fee);

    expect(ledger.openPositionCount()).toBe(1);
    expect(ledger.balance()).toBe(fx(10_000) + fx(gross) - first.fee - flip.fee);
    expect(ledger.feesPaid()).toBe(first.fee + flip.fee);
    expect(ledger.roundTripStats().count).toBe(1);
  });

  it('closing the flipped position books a round trip with only its own share of the flip fee', () => {
    const ledger = new Ledger(fx(10_000));
    ledger.applyFill(fill('BUY', '1', '100', '0.04', 10));
    ledger.applyFill(fill('SELL', '3', '110', '0.132', 20));
    const effect = ledger.applyFill(fill('BUY', '2', '105', '0.084', 30));
    expect(effect.closedRoundTrip).toEqual({
      symbol: 'BTCUSDT',
      side: 'SHORT',
      openedTs: 20,
      closedTs: 30,
      quantity: fx(2),
      entryAvg: fx(110),
      closeAvg: fx(105),
      gross: fx(10),
      fees: fx('0.172'),
      net: fx('9.828'),
      win: true,
      exitReason: null,
    });
    expect(ledger.balance()).toBe(fx(10_000) + fx(20) - fx('0.256'));
  });
});

describe('Ledger: fees and per-position realized PnL', () => {
  it.each([
    ['BUY', 'LONG'],
    ['SELL', 'SHORT'],
  ] as const)('%s opening: realized = −entry fee, balance charged at once', (side, posSide) => {
    const ledger = new Ledger(fx(500));
    const effect = ledger.applyFill(fill(side, '0.003', '100.01', '0.000120012'));
    expect(effect.position).toMatchObject({
      side: posSide,
      realizedPnl: -fx('0.000120012'),
      realizedGross: ZERO,
      fees: fx('0.000120012'),
      unrealizedPnl: ZERO,
    });
    expect(ledger.balance()).toBe(fx(500) - fx('0.000120012'));
    expect(ledger.positionView('BTCUSDT', 'fill', 1).realized_pnl_usd).toBe(-0.000120012);
  });

  it('charges every fill and accumulates the position fees until flat', () => {
    const ledger = new Ledger(fx(500));
    const fees = ['0.1', '0.2', '0.3'];
    ledger.applyFill(fill('BUY', 1, 10, fees[0]));
    ledger.applyFill(fill('BUY', 1, 10, fees[1]));
    const closing = ledger.applyFill(fill('SELL', 2, 10, fees[2]));
    expect(closing.closedRoundTrip).toMatchObject({ gross: ZERO, fees: fx('0.6'), net: fx('-0.6'), win: false });
    expect(ledger.balance()).toBe(fx('499.4'));
  });

  it('reopening after a close starts a fresh position', () => {
    const ledger = new Ledger(fx(500));
    ledger.applyFill(fill('BUY', 1, 10, '0.1', 1));
    ledger.applyFill(fill('SELL', 1, 11, '0.1', 2));
    const effect = ledger.applyFill(fill('BUY', 2, 12, '0.05', 3));
    expect(effect.opened).toBe(true);
    expect(effect.position).toMatchObject({ quantity: fx(2), entryAvg: fx(12), fees: fx('0.05'), realizedPnl: fx('-0.05'), closeAvg: ZERO, openedTs: 3 });
  });
});

describe('Ledger: marks, equity, exposure, peak and drawdown', () => {
  // 1,000 USD; long 2 BTCUSDT @ 100 and short 1 ETHUSDT @ 50, no fees
  type Step = [string, (l: Ledger) => void, { unrealized: Dec; equity: Dec; exposure: Dec; peak: Dec; exposurePct: string; drawdownPct: string }];
  const steps: Step[] = [
    ['after the fills (fill price is the mark)', () => {}, { unrealized: 0, equity: 1000, exposure: 250, peak: 1000, exposurePct: '0.25', drawdownPct: '0' }],
    ['BTC up to 110', (l) => l.setMark('BTCUSDT', fx(110)), { unrealized: 20, equity: 1020, exposure: 270, peak: 1020, exposurePct: '0.264705882352941176', drawdownPct: '0' }],
    ['ETH down to 40', (l) => l.setMark('ETHUSDT', fx(40)), { unrealized: 30, equity: 1030, exposure: 260, peak: 1030, exposurePct: '0.252427184466019417', drawdownPct: '0' }],
    ['BTC down to 90', (l) => l.setMark('BTCUSDT', fx(90)), { unrealized: -10, equity: 990, exposure: 220, peak: 1030, exposurePct: '0.222222222222222222', drawdownPct: '0.038834951456310680' }],
    ['a mark for an untraded symbol changes nothing', (l) => l.setMark('SOLUSDT', fx(150)), { unrealized: -10, equity: 990, exposure: 220, peak: 1030, exposurePct: '0.222222222222222222', drawdownPct: '0.038834951456310680' }],
    ['resume: peak restarts at equity', (l) => l.resetPeak(), { unrealized: -10, equity: 990, exposure: 220, peak: 990, exposurePct: '0.222222222222222222', drawdownPct: '0' }],
    ['closing BTC at 95 realizes −10', (l) => l.applyFill(fill('SELL', 2, 95, 0, 5)), { unrealized: 10, equity: 1000, exposure: 40, peak: 1000, exposurePct: '0.04', drawdownPct: '0' }],
  ];

  const ledger = new Ledger(fx(1_000));
  ledger.applyFill(fill('BUY', 2, 100, 0, 1, 'BTCUSDT'));
  ledger.applyFill(fill('SELL', 1, 50, 0, 1, 'ETHUSDT'));

  it.each(steps)('%s', (_name, act, want) => {
    act(ledger);
    expect(dec(ledger.unrealized())).toBe(dec(fx(want.unrealized)));
    expect(dec(ledger.equity())).toBe(dec(fx(want.equity)));
    expect(dec(ledger.exposure())).toBe(dec(fx(want.exposure)));
    expect(dec(ledger.peakEquity())).toBe(dec(fx(want.peak)));
    expect(dec(ledger.exposureFraction())).toBe(dec(fx(want.exposurePct)));
    expect(dec(ledger.drawdownFraction())).toBe(dec(fx(want.drawdownPct)));
    // the incremental totals equal a recomputation over the open positions
    const open = ledger.openPositions();
    expect(ledger.unrealized()).toBe(open.reduce((s, p) => s + p.unrealizedPnl, ZERO));
    expect(ledger.equity()).toBe(ledger.balance() + ledger.unrealized());
  });

  it('a fill keeps an existing mark; only the first fill of a symbol sets it', () => {
    const l = new Ledger(fx(1_000));
    l.setMark('BTCUSDT', fx(105));
    const effect = l.applyFill(fill('BUY', 1, 100));
    expect(l.mark('BTCUSDT')).toBe(fx(105));
    expect(effect.position.unrealizedPnl).toBe(fx(5));
    expect(l.peakEquity()).toBe(fx(1_005));
    l.applyFill(fill('BUY', 1, 100, 0, 1, 'ETHUSDT'));
    expect(l.mark('ETHUSDT')).toBe(fx(100));
    expect(l.mark('XRPUSDT')).toBeUndefined();
  });

  it('caps the exposure fraction when equity is gone', () => {
    const l = new Ledger(fx(100));
    l.applyFill(fill('BUY', 10, 100));
    l.setMark('BTCUSDT', fx(90));
    expect(l.equity()).toBe(ZERO);
    expect(l.exposureFraction()).toBe(EXPOSURE_FRACTION_CAP);
    expect(l.drawdownFraction()).toBe(fx(1));
    l.setMark('BTCUSDT', fx(80));
    expect(l.drawdownFraction()).toBe(fx(2));
    l.resetPeak(); // peak −100
    expect(l.drawdownFraction()).toBe(ZERO);
    l.setMark('BTCUSDT', fx(79));
    expect(l.drawdownFraction()).toBe(fx(1));
  });

  it('incremental totals match a recomputation over a random walk of fills and marks', () => {
    const rng = seededRandom('ledger-walk');
    const symbols = ['BTCUSDT', 'ETHUSDT', 'SOLUSDT'];
    const l = new Ledger(fx(100_000));
    let peak = fx(100_000);
    for (let i = 0; i < 3_000; i++) {
      const symbol = symbols[Math.floor(rng.next() * symbols.length)] ?? 'BTCUSDT';
      const price = fx((50 + Math.floor(rng.next() * 10_000) / 100).toFixed(2));
      if (rng.next() < 0.4) {
        l.setMark(symbol, price);
      } else {
        const qty = fx((1 + Math.floor(rng.next() * 500)) / 1000);
        l.applyFill({ order_id: `o${i}`, symbol, side: rng.next() < 0.5 ? 'BUY' : 'SELL', quantity: qty, price, fee: mul(mul(qty, price), fx('0.0004')), ts: i });
      }
      const open = l.openPositions();
      let unrealized = ZERO;
      let exposure = ZERO;
      for (const p of open) {
        const mark = l.mark(p.symbol) ?? ZERO;
        unrealized += p.unrealizedPnl;
        exposure += mul(mark, p.quantity < 0n ? -p.quantity : p.quantity);
        // unrealized at the mark against the average entry, within the 1e-18 rounding of the average
        const diff = p.unrealizedPnl - mul(mark - p.entryAvg, p.quantity);
        expect(diff <= 10n ** 6n && diff >= -(10n ** 6n)).toBe(true);
      }
      expect(l.unrealized()).toBe(unrealized);
      expect(l.exposure()).toBe(exposure);
      expect(l.openPositionCount()).toBe(open.length);
      expect(l.balance()).toBe(fx(100_000) + l.realizedGross() - l.feesPaid());
      const equity = l.balance() + unrealized;
      if (equity > peak) peak = equity;
      expect(l.peakEquity()).toBe(peak);
    }
  });
});

describe('Ledger: round-trip statistics', () => {
  it.each([
    { name: 'none', trips: [] as [Side, Dec, Dec, Dec][], winRate: '0', wins: 0, losses: 0, sumWins: '0', sumLosses: '0', lastLoss: null },
    { name: 'one win', trips: [['BUY', 10, 12, 0]] as [Side, Dec, Dec, Dec][], winRate: '1', wins: 1, losses: 0, sumWins: '2', sumLosses: '0', lastLoss: null },
    {
      name: 'two wins, one loss (by fees), one break-even',
      trips: [['BUY', 10, 12, 0], ['SELL', 10, 9, '0.5'], ['BUY', 10, '10.1', '0.2'], ['SELL', 10, 10, 0]] as [Side, Dec, Dec, Dec][],
      winRate: '0.5',
      wins: 2,
      losses: 1,
      sumWins: '2.5',
      sumLosses: '0.1',
      lastLoss: 3,
    },
    {
      name: 'one win, two losses',
      trips: [['BUY', 10, 9, 0], ['SELL', 10, 9, 0], ['SELL', 10, 11, 0]] as [Side, Dec, Dec, Dec][],
      winRate: '0.333333333333333333',
      wins: 1,
      losses: 2,
      sumWins: '1',
      sumLosses: '2',
      lastLoss: 3,
    },
  ])('$name', ({ trips, winRate, wins, losses, sumWins, sumLosses, lastLoss }) => {
    const l = new Ledger(fx(1_000));
    trips.forEach(([side, entry, exit, fee], i) => {
      l.applyFill(fill(side, 1, entry, fee, i + 1));
      l.applyFill(fill(opposite(side), 1, exit, 0, i + 1));
    });
    const stats = l.roundTripStats();
    expect(dec(l.winRate())).toBe(winRate);
    expect(stats).toMatchObject({ count: trips.length, wins, losses, sumWins: fx(sumWins), sumLosses: fx(sumLosses), lastLossClosedAt: lastLoss });
    expect(l.summary().win_rate).toBe(Number(winRate));
    expect(l.summary().closed_trades).toBe(trips.length);
    if (trips.length > 0) expect(stats.last?.closedTs).toBe(trips.length);
  });
});

describe('Ledger: wire views', () => {
  function sample(): Ledger {
    const l = new Ledger(fx(10_000));
    l.applyFill(fill('BUY', '0.5', '50000', '10', 100, 'BTCUSDT'));
    l.applyFill(fill('SELL', '2', '3000', '2.4', 200, 'ETHUSDT'));
    l.setMark('BTCUSDT', fx('50200'));
    l.setMark('ETHUSDT', fx('2990.5'));
    return l;
  }

  it('positionView matches the PositionView schema and values', () => {
    const view = sample().positionView('BTCUSDT', 'fill', 300, 'PAPER-0000000000aa');
    expect(PositionView.parse(view)).toEqual(view);
    expect(view).toEqual({
      schema_version: 1,
      symbol: 'BTCUSDT',
      side: 'LONG',
      quantity: 0.5,
      avg_entry_price: 50000,
      mark_price: 50200,
      unrealized_pnl_usd: 100,
      realized_pnl_usd: -10,
      fees_usd: 10,
      cause: 'fill',
      order_id: 'PAPER-0000000000aa',
      ts: 300,
    });
    const short = sample().positionView('ETHUSDT', 'mark', 400);
    expect(short).toMatchObject({ side: 'SHORT', quantity: 2, unrealized_pnl_usd: 19, realized_pnl_usd: -2.4 });
    expect('order_id' in short).toBe(false);
  });

  it('a closed position gives a FLAT close view with the round trip result; an untraded one gives zeros', () => {
    const l = sample();
    l.applyFill(fill('SELL', '0.5', '50400', '10.08', 500, 'BTCUSDT'));
    const view = l.positionView('BTCUSDT', 'close', 500, 'PAPER-0000000000bb');
    expect(PositionView.parse(view)).toEqual(view);
    expect(view).toMatchObject({ side: 'FLAT', quantity: 0, unrealized_pnl_usd: 0, realized_pnl_usd: 179.92, fees_usd: 20.08, avg_entry_price: 50000 });
    expect(l.positionView('SOLUSDT', 'mark', 1)).toMatchObject({ side: 'FLAT', quantity: 0, mark_price: 0, realized_pnl_usd: 0 });
    expect(l.openPositionViews(600).map((v) => v.symbol)).toEqual(['ETHUSDT']);
  });

  it('summary and totals', () => {
    const l = sample();
    const summary = l.summary();
    expect(PortfolioSummary.parse(summary)).toEqual(summary);
    // balance 10000 − 12.4; unrealized 100 + 19; exposure 25100 + 5981
    expect(summary).toEqual({
      balance_usd: 9987.6,
      equity_usd: 10106.6,
      exposure_usd: 31081,
      exposure_pct: toNumber(div(fx(31081), fx('10106.6'))),
      drawdown_pct: 0,
      open_positions: 2,
      win_rate: 0,
      closed_trades: 0,
    });
    expect(l.totals()).toEqual({ realized_pnl_usd: -12.4, unrealized_pnl_usd: 119, fees_usd: 12.4 });
    expect(l.openPositionViews(700)).toHaveLength(2);
    for (const v of l.openPositionViews(700)) expect(v.cause).toBe('mark');
  });
});

describe('Ledger: snapshot and clone', () => {
  function busy(): Ledger {
    const l = new Ledger(fx('25000.5'));
    l.applyFill(fill('BUY', 1, 100, '0.04', 1));
    l.applyFill(fill('BUY', 2, 101, '0.0808', 2));
    l.applyFill(fill('SELL', 1, 103, '0.0412', 3));
    l.applyFill(fill('SELL', '0.3', '2000', '0.24', 4, 'ETHUSDT'));
    l.applyFill(fill('BUY', 1, '1900', '0.76', 5, 'ETHUSDT')); // flip to long 0.7
    l.applyFill(fill('BUY', 3, 10, 0, 6, 'SOLUSDT'));
    l.applyFill(fill('SELL', 3, 9, 0, 7, 'SOLUSDT')); // a loss, SOL flat
    l.setMark('BTCUSDT', fx('99.5'));
    l.setMark('XRPUSDT', fx('0.5123'));
    return l;
  }

  it('round-trips through JSON exactly and behaves identically afterwards', () => {
    const original = busy();
    const json = JSON.stringify(original.toSnapshot());
    const restored = Ledger.fromSnapshot(JSON.parse(json));
    expect(restored.toSnapshot()).toEqual(original.toSnapshot());
    expect(JSON.stringify(restored.toSnapshot())).toBe(json);
    expect(restored.summary()).toEqual(original.summary());
    expect(restored.totals()).toEqual(original.totals());
    expect(restored.roundTripStats()).toEqual(original.roundTripStats());
    expect(restored.positionView('BTCUSDT', 'mark', 9)).toEqual(original.positionView('BTCUSDT', 'mark', 9));
    expect(restored.peakEquity()).toBe(original.peakEquity());
    for (const l of [original, restored]) {
      l.applyFill(fill('SELL', 2, '98.75', '0.079', 10));
      l.setMark('ETHUSDT', fx('1950.25'));
      l.applyFill(fill('SELL', 1, '1950', '0.78', 11, 'ETHUSDT'));
    }
    expect(restored.toSnapshot()).toEqual(original.toSnapshot());
    expect(restored.equity()).toBe(original.equity());
  });

  it('clone is independent', () => {
    const original = busy();
    const before = original.toSnapshot();
    const copy = original.clone();
    expect(copy.toSnapshot()).toEqual(before);
    copy.applyFill(fill('SELL', 2, 50, 1, 12));
    copy.setMark('ETHUSDT', fx(1));
    copy.resetPeak();
    expect(original.toSnapshot()).toEqual(before);
    expect(copy.toSnapshot()).not.toEqual(before);
  });

  it.each([
    ['not an object', 42, /invalid ledger snapshot/],
    ['a float amount', { ...busy().toSnapshot(), balance: 1.5 }, /balance/],
    ['an inconsistent balance', { ...busy().toSnapshot(), balance: '1' }, /balance is not/],
    ['a position without a mark', { ...busy().toSnapshot(), marks: {} }, /no mark/],
  ])('rejects %s', (_name, input, message) => {
    expect(() => Ledger.fromSnapshot(input)).toThrow(message);
  });
});

describe('Ledger: input errors', () => {
  it.each([
    ['zero quantity', fill('BUY', 0, 1)],
    ['negative price', fill('BUY', 1, -1)],
    ['negative fee', fill('BUY', 1, 1, '-0.1')],
  ])('rejects a fill with %s', (_name, bad) => {
    const l = new Ledger(fx(100));
    expect(() => l.applyFill(bad)).toThrow(RangeError);
    expect(l.balance()).toBe(fx(100));
  });

  it('rejects a non-positive mark or initial balance', () => {
    expect(() => new Ledger(ZERO)).toThrow(RangeError);
    expect(() => new Ledger(fx(1)).setMark('BTCUSDT', ZERO)).toThrow(RangeError);
  });
});

describe('Ledger: exactness over a million fills', () => {
  it('500k round trips end at the closed-form balance exactly (JS floats drift)', () => {
    // Round trip i buys 0.003 at 100.01 + 0.01·(i mod 10) and sells it at +0.20 (even i)
    // or −0.02 (odd i); fees are notional × 0.0004. Per 10-trip cycle:
    //   gross = 5 × 0.0006 − 5 × 0.00006 = 0.0027
    //   fees  = 0.0000012 × Σ(buy + sell) = 0.0000012 × (1000.55 + 1001.45) = 0.0024024
    //   net   = 0.0002976, and 50,000 cycles give +14.88 on 10,000.
    const qty = fx('0.003');
    const rate = fx('0.0004');
    const legs = Array.from({ length: 10 }, (_, j) => {
      const buy = fx('100.01') + fx('0.01') * BigInt(j);
      const sell = buy + (j % 2 === 0 ? fx('0.2') : -fx('0.02'));
      const buyFee = mul(mul(buy, qty), rate);
      const sellFee = mul(mul(sell, qty), rate);
      const float = (v: Fixed): number => Number(toDecimalString(v));
      return { buy, sell, buyFee, sellFee, floatNet: (float(sell) - float(buy)) * 0.003 - float(buyFee) - float(sellFee) };
    });
    expect(toDecimalString(legs[0]?.buyFee ?? ZERO)).toBe('0.000120012');

    const ledger = new Ledger(fx(10_000));
    const buyFill: LedgerFill = { order_id: 'b', symbol: 'BTCUSDT', side: 'BUY', quantity: qty, price: ZERO, fee: ZERO, ts: 0 };
    const sellFill: LedgerFill = { ...buyFill, order_id: 's', side: 'SELL' };
    const started = performance.now();
    for (let i = 0; i < 500_000; i++) {
      const leg = legs[i % 10];
      if (leg === undefined) throw new Error('unreachable');
      buyFill.price = leg.buy;
      buyFill.fee = leg.buyFee;
      buyFill.ts = 2 * i;
      ledger.applyFill(buyFill);
      sellFill.price = leg.sell;
      sellFill.fee = leg.sellFee;
      sellFill.ts = 2 * i + 1;
      ledger.applyFill(sellFill);
    }
    const elapsed = performance.now() - started;
    let floatBalance = 10_000;
    for (let i = 0; i < 500_000; i++) floatBalance += legs[i % 10]?.floatNet ?? 0;

    expect(ledger.balance()).toBe(fx('10014.88'));
    expect(ledger.realizedGross()).toBe(fx('135'));
    expect(ledger.feesPaid()).toBe(fx('120.12'));
    expect(ledger.roundTripStats()).toMatchObject({ count: 500_000, wins: 250_000, losses: 250_000 });
    expect(ledger.openPositionCount()).toBe(0);
    expect(ledger.summary().balance_usd).toBe(10014.88);
    // the same sums in binary floats do not land on the exact result
    expect(floatBalance).not.toBe(10014.88);
    console.info(`1,000,000 fills: ${elapsed.toFixed(0)} ms (float balance ${floatBalance})`);
  });
});

describe('Ledger: exit reasons', () => {
  it('records the exit_reason of the fill that closed a round trip, and keeps it through a snapshot', () => {
    const ledger = new Ledger(fx(10_000));
    ledger.applyFill({ order_id: 'PAPER-000000000001', symbol: 'BTCUSDT', side: 'BUY', quantity: fx(1), price: fx(100), fee: ZERO, ts: 1 });
    const effect = ledger.applyFill({
      order_id: 'PAPER-000000000002', symbol: 'BTCUSDT', side: 'SELL', quantity: fx(1), price: fx(90), fee: ZERO, ts: 2, exitReason: 'stop_loss',
    });
    expect(effect.closedRoundTrip?.exitReason).toBe('stop_loss');
    expect(Ledger.fromSnapshot(JSON.parse(JSON.stringify(ledger.toSnapshot()))).roundTripStats().last?.exitReason).toBe('stop_loss');
  });
});
