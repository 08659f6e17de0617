import { describe, expect, it } from 'vitest';
import { fx, SCALE, toDecimalString, toNumber, type Fixed } from './fixed.js';
import { instrumentTable, type InstrumentSpecInput } from './instruments.js';
import { MarketSimulator, priceTick, syntheticQuote, type PriceSource } from './market.js';
import { PriceTick } from './messages.js';
import { keyedRandom, seededRandom, type Random } from './random.js';

const INSTRUMENTS: InstrumentSpecInput[] = [
  { symbol: 'BTCUSDT', tick_size: 0.01, step_size: 0.00001, min_notional_usd: 10, start_price: 65000 },
  { symbol: 'ETHUSDT', tick_size: 0.01, step_size: 0.0001, min_notional_usd: 10, start_price: 3500 },
  { symbol: 'BNBUSDT', tick_size: 0.01, step_size: 0.001, min_notional_usd: 10, start_price: 600 },
  { symbol: 'SOLUSDT', tick_size: 0.01, step_size: 0.01, min_notional_usd: 10, start_price: 150 },
  { symbol: 'XRPUSDT', tick_size: 0.0001, step_size: 0.1, min_notional_usd: 10, start_price: 0.6 },
];
const table = instrumentTable(INSTRUMENTS);

/** A Random that replays fixed draws (cycling). */
function scripted(...draws: number[]): Random {
  let i = 0;
  return { next: () => draws[i++ % draws.length]! };
}

describe('MarketSimulator construction', () => {
  it('starts every instrument at its start price', () => {
    const sim = new MarketSimulator(table);
    expect(sim.prices()).toEqual(new Map(INSTRUMENTS.map((i) => [i.symbol, fx(i.start_price)])));
    expect(sim.price('BTCUSDT')).toBe(fx(65000));
    expect(sim.price('DOGEUSDT')).toBeUndefined();
  });

  it('rounds start prices to the tick and never below one tick', () => {
    const sim = new MarketSimulator(
      instrumentTable([
        { symbol: 'AAA', tick_size: 0.01, step_size: 1, min_notional_usd: 0, start_price: 100.005 },
        { symbol: 'BBB', tick_size: 0.01, step_size: 1, min_notional_usd: 0, start_price: 0.001 },
      ]),
    );
    expect(sim.price('AAA')).toBe(fx('100.01'));
    expect(sim.price('BBB')).toBe(fx('0.01'));
  });

  it('restores given prices, rounded to the tick, ignoring unknown symbols', () => {
    const sim = new MarketSimulator(table, {
      prices: new Map<string, Fixed>([
        ['BTCUSDT', fx('64000.123')],
        ['ETHUSDT', fx('3600')],
        ['GONEUSDT', fx('1')],
      ]),
    });
    expect(sim.price('BTCUSDT')).toBe(fx('64000.12'));
    expect(sim.price('ETHUSDT')).toBe(fx(3600));
    expect(sim.price('SOLUSDT')).toBe(fx(150));
    expect(sim.price('GONEUSDT')).toBeUndefined();
  });

  it('throws on an unusable restored price (a bug in the caller)', () => {
    expect(() => new MarketSimulator(table, { prices: [['BTCUSDT', 0n]] })).toThrow(RangeError);
  });

  it.each([-0.001, 1, 1.5, Number.NaN, Number.POSITIVE_INFINITY])('rejects stepPct %s', (stepPct) => {
    expect(() => new MarketSimulator(table, { stepPct })).toThrow(RangeError);
  });

  it('is a PriceSource', () => {
    const source: PriceSource = new MarketSimulator(table);
    expect(source.price('ETHUSDT')).toBe(fx(3500));
  });

  it('prices() is a snapshot, not a live view', () => {
    const sim = new MarketSimulator(table);
    const before = sim.prices();
    sim.setPrice('BTCUSDT', 70000);
    expect(before.get('BTCUSDT')).toBe(fx(65000));
    expect(sim.prices().get('BTCUSDT')).toBe(fx(70000));
  });
});

describe('MarketSimulator.setPrice', () => {
  it.each([
    { symbol: 'BTCUSDT', input: 70000 as number | Fixed, stored: '70000' },
    { symbol: 'BTCUSDT', input: 70000.004, stored: '70000' },
    { symbol: 'BTCUSDT', input: 70000.005, stored: '70000.01' },
    { symbol: 'BTCUSDT', input: fx('70000.129999'), stored: '70000.13' },
    { symbol: 'XRPUSDT', input: 0.61234, stored: '0.6123' },
    { symbol: 'XRPUSDT', input: 0.00005, stored: '0.0001' },
  ])('$symbol $input → $stored', ({ symbol, input, stored }) => {
    const sim = new MarketSimulator(table);
    const result = sim.setPrice(symbol, input);
    expect(result).toEqual({ ok: true, symbol, price: fx(stored) });
    expect(sim.price(symbol)).toBe(fx(stored));
  });

  it.each([
    { symbol: 'DOGEUSDT', input: 1 as number | Fixed, code: 'UNKNOWN_SYMBOL' },
    { symbol: 'btcusdt', input: 1, code: 'UNKNOWN_SYMBOL' },
    { symbol: 'BTCUSDT', input: 0, code: 'BAD_PRICE' },
    { symbol: 'BTCUSDT', input: -5, code: 'BAD_PRICE' },
    { symbol: 'BTCUSDT', input: -5n * SCALE, code: 'BAD_PRICE' },
    { symbol: 'BTCUSDT', input: 0n, code: 'BAD_PRICE' },
    { symbol: 'BTCUSDT', input: Number.NaN, code: 'BAD_PRICE' },
    { symbol: 'BTCUSDT', input: Number.POSITIVE_INFINITY, code: 'BAD_PRICE' },
    { symbol: 'BTCUSDT', input: 0.004, code: 'BAD_PRICE' }, // below half a tick
    { symbol: 'XRPUSDT', input: 0.00004, code: 'BAD_PRICE' },
  ])('rejects $symbol $input with $code and keeps the old price', ({ symbol, input, code }) => {
    const sim = new MarketSimulator(table);
    const before = sim.prices();
    const result = sim.setPrice(symbol, input);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.code).toBe(code);
    expect(result.message.startsWith(`${code}: `)).toBe(true);
    expect(result.message).toContain(symbol);
    expect(sim.prices()).toEqual(before);
  });
});

describe('MarketSimulator.step', () => {
  it('moves each price within ±stepPct of the old price, on the tick grid, over 10,000 steps', () => {
    const stepPct = 0.001;
    const sim = new MarketSimulator(table, { stepPct });
    const rng = seededRandom(7);
    const bound = fx(stepPct);
    let ups = 0;
    let downs = 0;
    const problems: string[] = [];
    for (let n = 0; n < 10_000; n++) {
      const before = sim.prices();
      const changes = sim.step(rng);
      const changed = new Map(changes.map((c) => [c.symbol, c.price]));
      for (const [symbol, old] of before) {
        const spec = table.get(symbol)!;
        const now = sim.price(symbol)!;
        const move = now > old ? now - old : old - now;
        // |new − old| <= stepPct × old, exactly
        if (move * SCALE > bound * old) problems.push(`${n} ${symbol}: ${old} → ${now} moves too far`);
        if (now % spec.tickSize !== 0n) problems.push(`${n} ${symbol}: ${now} off the tick grid`);
        if (now < spec.tickSize) problems.push(`${n} ${symbol}: ${now} below one tick`);
        if (changed.has(symbol) !== (now !== old)) problems.push(`${n} ${symbol}: change list wrong`);
        if (changed.has(symbol) && changed.get(symbol) !== now) problems.push(`${n} ${symbol}: change price wrong`);
        if (now > old) ups++;
        if (now < old) downs++;
      }
    }
    expect(problems).toEqual([]);
    // Symmetric: both directions happen about equally often.
    expect(ups).toBeGreaterThan(20_000);
    expect(downs).toBeGreaterThan(20_000);
    expect(Math.abs(ups - downs) / (ups + downs)).toBeLessThan(0.05);
  });

  it('reaches the edges of the range and rounds toward the old price', () => {
    // One instrument: 100.00, tick 0.01, step 0.1% → at most ±0.10.
    const one = instrumentTable([{ symbol: 'AAA', tick_size: 0.01, step_size: 1, min_notional_usd: 0, start_price: 100 }]);
    const cases: Array<{ draw: number; expected: string }> = [
      { draw: 0, expected: '99.9' }, // r = −0.001 exactly
      { draw: 0.5, expected: '100' }, // r = 0
      { draw: 0.99999, expected: '100.09' }, // r just under +0.001 → +0.0999… → truncated to 0.09
      { draw: 0.52, expected: '100' }, // +0.004 → less than a tick → no move
      { draw: 0.45, expected: '99.99' }, // −0.01 exactly → one tick down
      { draw: 0.44, expected: '99.99' }, // −0.012 → toward old price: −0.01
    ];
    for (const { draw, expected } of cases) {
      const sim = new MarketSimulator(one, { stepPct: 0.001 });
      const changes = sim.step(scripted(draw));
      expect(sim.price('AAA'), `draw ${draw}`).toBe(fx(expected));
      expect(changes).toEqual(expected === '100' ? [] : [{ symbol: 'AAA', price: fx(expected) }]);
    }
  });

  it('never goes below one tick, even with large steps from a tiny price', () => {
    const tiny = instrumentTable([{ symbol: 'AAA', tick_size: 1, step_size: 1, min_notional_usd: 0, start_price: 2 }]);
    const sim = new MarketSimulator(tiny, { stepPct: 0.9 });
    const rng = seededRandom(3);
    let lowest = sim.price('AAA')!;
    for (let n = 0; n < 10_000; n++) {
      sim.step(rng);
      if (sim.price('AAA')! < lowest) lowest = sim.price('AAA')!;
    }
    expect(lowest).toBe(SCALE);
  });

  it('is deterministic for a given seed and differs across seeds', () => {
    const walk = (seed: number): string[] => {
      const sim = new MarketSimulator(table);
      const rng = keyedRandom(seed, 'market');
      const out: string[] = [];
      for (let n = 0; n < 200; n++) {
        for (const c of sim.step(rng)) out.push(`${n}:${c.symbol}:${c.price}`);
      }
      return out;
    };
    expect(walk(42)).toEqual(walk(42));
    expect(walk(42)).not.toEqual(walk(43));
  });

  it('takes exactly one draw per instrument', () => {
    let draws = 0;
    const sim = new MarketSimulator(table);
    sim.step({ next: () => (draws++, 0.5) });
    expect(draws).toBe(INSTRUMENTS.length);
  });

  it('does not move when stepPct is 0', () => {
    const sim = new MarketSimulator(table, { stepPct: 0 });
    const rng = seededRandom(1);
    for (let n = 0; n < 100; n++) expect(sim.step(rng)).toEqual([]);
    expect(sim.price('BTCUSDT')).toBe(fx(65000));
  });
});

describe('priceTick', () => {
  it.each([
    { symbol: 'BTCUSDT', price: fx('65000.01'), source: 'simulator' as const, number: 65000.01 },
    { symbol: 'XRPUSDT', price: fx('0.6123'), source: 'manual' as const, number: 0.6123 },
    { symbol: 'ETHUSDT', price: fx(3500), source: 'feed' as const, number: 3500 },
  ])('builds a valid market.tick for $symbol', ({ symbol, price, source, number }) => {
    const tick = priceTick(symbol, price, 1_700_000_000_000, source);
    expect(tick).toEqual({ schema_version: 1, symbol, price: number, ts: 1_700_000_000_000, source });
    expect(PriceTick.parse(tick)).toEqual(tick);
    expect(tick.price).toBe(toNumber(price));
  });
});

describe('syntheticQuote', () => {
  it.each([
    // price, spread, tick → bid, ask (half the spread each side, at least one tick)
    ['65000', '0.0002', '0.01', '64993.5', '65006.5'],
    ['0.6', '0.0002', '0.0001', '0.5999', '0.6001'],
    ['65000.01', '0.0002', '0.01', '64993.5', '65006.52'],
    ['100', '0.001', '0.01', '99.95', '100.05'],
  ])('%s at spread %s, tick %s → %s / %s', (price, spread, tick, bid, ask) => {
    const q = syntheticQuote(fx(price), fx(spread), fx(tick))!;
    expect([toDecimalString(q.bid), toDecimalString(q.ask)]).toEqual([bid, ask]);
  });

  it('no quote at spread 0, or when the bid would not be positive', () => {
    expect(syntheticQuote(fx(100), 0n, fx('0.01'))).toBeUndefined();
    expect(syntheticQuote(fx('0.01'), fx('0.0002'), fx('0.01'))).toBeUndefined();
  });

  it('priceTick carries the quote and the venue time', () => {
    const tick = priceTick('BTCUSDT', fx(65000), 5, 'feed', { bid: fx('64999.99'), ask: fx('65000.01'), bidSize: fx('1.5'), askSize: 0n }, 4);
    expect(tick).toEqual({ schema_version: 1, symbol: 'BTCUSDT', price: 65000, ts: 5, source: 'feed', bid: 64999.99, ask: 65000.01, bid_size: 1.5, exchange_ts: 4 });
  });
});
