import { describe, expect, it } from 'vitest';
import { ceilToStep, floorToStep, fx, SCALE, toNumber } from './fixed.js';
import {
  createFillModels,
  orderIdFor,
  paperFill,
  rejectCodeOf,
  TakerFee,
  UniformAdverseSlippage,
  type FillModels,
  type PaperFillParams,
  type SlippageModel,
} from './fills.js';
import { instrumentTable, type InstrumentSpec } from './instruments.js';
import { ExecutionResult, ORDER_ID_PATTERN, type OrderSide, type RiskApprovedSignal } from './messages.js';
import { keyedRandom, seededRandom } from './random.js';

const table = instrumentTable([
  { symbol: 'BTCUSDT', tick_size: 0.01, step_size: 0.00001, min_notional_usd: 10, start_price: 65000 },
  { symbol: 'XRPUSDT', tick_size: 0.0001, step_size: 0.1, min_notional_usd: 10, start_price: 0.6 },
]);
const BTC = table.get('BTCUSDT')!;
const XRP = table.get('XRPUSDT')!;
const SEED = 42;
const NOW = 1_700_000_000_500;
const models = createFillModels({ fee_rate: 0.0004, max_slippage_pct: 0.001 });

function order(patch: Partial<RiskApprovedSignal> = {}): RiskApprovedSignal {
  return {
    schema_version: 1,
    signal_id: 'sig-1',
    symbol: 'BTCUSDT',
    action: 'BUY',
    confidence: 0.8,
    source: 'test',
    ts: 1_700_000_000_000,
    intent: 'OPEN',
    side: 'BUY',
    quantity: 0.01,
    notional_usd: 500,
    reference_price: 50_000,
    kelly_optimal: 0.2,
    kelly_applied: 0.05,
    risk_amount_usd: 10,
    reduce_only: false,
    approved_ts: 1_700_000_000_100,
    origin: 'signal',
    checks: [],
    sizing: null,
    ...patch,
  };
}

function fill(patch: Partial<PaperFillParams> = {}): ExecutionResult {
  return paperFill({ order: order(), mark: fx(50_000), instrument: BTC, seed: SEED, models, now: NOW, ...patch });
}

/** A slippage model that always returns the same fraction. */
function fixedSlippage(s: string): FillModels {
  const value = fx(s);
  const slippage: SlippageModel = { slippage: () => value };
  return { slippage, fee: new TakerFee(0.0004) };
}

describe('UniformAdverseSlippage', () => {
  it('draws s in [0, max) over 10,000 draws, spread over the range', () => {
    const model = new UniformAdverseSlippage(0.001);
    const rng = seededRandom(1);
    const max = fx(0.001);
    let low = max;
    let high = 0n;
    let outside = 0;
    for (let i = 0; i < 10_000; i++) {
      const s = model.slippage({ side: i % 2 ? 'SELL' : 'BUY', mark: fx(50_000), rng, instrument: BTC });
      if (s < 0n || s >= max) outside++;
      if (s < low) low = s;
      if (s > high) high = s;
    }
    expect(outside).toBe(0);
    expect(low < max / 100n).toBe(true);
    expect(high > (max * 99n) / 100n).toBe(true);
  });

  it('maps the extremes of the draw exactly', () => {
    const model = new UniformAdverseSlippage(0.001);
    expect(model.slippage({ side: 'BUY', mark: fx(1), rng: { next: () => 0 }, instrument: BTC })).toBe(0n);
    expect(model.slippage({ side: 'BUY', mark: fx(1), rng: { next: () => 0.5 }, instrument: BTC })).toBe(fx('0.0005'));
  });

  it.each([-0.1, 1, Number.NaN])('rejects max %s', (max) => {
    expect(() => new UniformAdverseSlippage(max)).toThrow(RangeError);
  });
});

describe('TakerFee', () => {
  it.each([
    // notional × 0.0004, rounded to 1e-8 half up
    { notional: '500', fee: '0.2' },
    { notional: '500.1234', fee: '0.20004936' },
    { notional: '500.12345', fee: '0.20004938' },
    { notional: '0.0000125', fee: '0.00000001' }, // exactly half a unit → up
    { notional: '0.00001249', fee: '0' }, // 0.000000004996 → down
    { notional: '0.0000375', fee: '0.00000002' }, // 1.5 units → 2
    { notional: '123456789.12345678', fee: '49382.71564938' },
  ])('fee on $notional is $fee', ({ notional, fee }) => {
    const quote = new TakerFee(0.0004).fee({ notional: fx(notional), side: 'BUY', instrument: BTC });
    expect(quote.fee).toBe(fx(fee));
    expect(quote.rate).toBe(fx('0.0004'));
  });

  it('charges nothing at rate 0', () => {
    expect(new TakerFee(0).fee({ notional: fx(1000), side: 'SELL', instrument: BTC }).fee).toBe(0n);
  });

  it.each([-0.0004, 1, Number.POSITIVE_INFINITY])('rejects rate %s', (rate) => {
    expect(() => new TakerFee(rate)).toThrow(RangeError);
  });
});

describe('createFillModels', () => {
  it('builds the default models from the execution config', () => {
    const built = createFillModels({ fee_rate: 0.001, max_slippage_pct: 0.002 });
    expect(built.slippage).toBeInstanceOf(UniformAdverseSlippage);
    expect((built.slippage as UniformAdverseSlippage).max).toBe(fx('0.002'));
    expect(built.fee).toBeInstanceOf(TakerFee);
    expect((built.fee as TakerFee).rate).toBe(fx('0.001'));
  });

  it('throws on out-of-range rates', () => {
    expect(() => createFillModels({ fee_rate: -1, max_slippage_pct: 0.001 })).toThrow(RangeError);
    expect(() => createFillModels({ fee_rate: 0.0004, max_slippage_pct: 2 })).toThrow(RangeError);
  });
});

describe('orderIdFor', () => {
  it('is PAPER- plus 12 lowercase hex digits, deterministic per (seed, signal)', () => {
    const id = orderIdFor(SEED, 'sig-1');
    expect(id).toMatch(/^PAPER-[0-9a-f]{12}$/);
    expect(id).toMatch(ORDER_ID_PATTERN);
    expect(orderIdFor(SEED, 'sig-1')).toBe(id);
    expect(orderIdFor(String(SEED), 'sig-1')).toBe(id);
    expect(orderIdFor(SEED + 1, 'sig-1')).not.toBe(id);
  });

  it('gives different signals different ids', () => {
    const ids = new Set<string>();
    for (let i = 0; i < 10_000; i++) {
      const id = orderIdFor(SEED, `sig-${i}`);
      if (!ORDER_ID_PATTERN.test(id)) throw new Error(`bad id ${id}`);
      ids.add(id);
    }
    expect(ids.size).toBe(10_000);
  });
});

describe('paperFill: prices, slippage and fees', () => {
  it('BUY 0.01 BTC at 50,000: fill in [50,000, 50,050], fee = fill notional × 0.0004 exactly', () => {
    for (let i = 0; i < 500; i++) {
      const result = fill({ order: order({ signal_id: `buy-${i}` }) });
      expect(result.status).toBe('FILLED');
      expect(result.fill_price).toBeGreaterThanOrEqual(50_000);
      expect(result.fill_price).toBeLessThanOrEqual(50_050);
      const price = fx(result.fill_price);
      expect(price % BTC.tickSize).toBe(0n);
      const notional = (price * fx('0.01')) / SCALE;
      expect(result.notional_usd).toBe(toNumber(notional));
      // notional has at most 4 decimals here, so × 0.0004 has at most 8: no rounding at all
      expect(fx(result.fee_usd)).toBe((notional * fx('0.0004')) / SCALE);
      expect(result.fee_rate).toBe(0.0004);
      expect(result.quantity).toBe(0.01);
      expect(result.reference_price).toBe(50_000);
    }
  });

  it.each([
    { side: 'BUY' as OrderSide, mark: '100', s: '0', price: '100' },
    { side: 'SELL' as OrderSide, mark: '100', s: '0', price: '100' },
    { side: 'BUY' as OrderSide, mark: '100', s: '0.00001', price: '100.01' }, // 100.001 → up
    { side: 'SELL' as OrderSide, mark: '100', s: '0.00001', price: '99.99' }, // 99.999 → down
    { side: 'BUY' as OrderSide, mark: '100', s: '0.0001', price: '100.01' }, // exactly on a tick
    { side: 'SELL' as OrderSide, mark: '100', s: '0.0001', price: '99.99' },
    { side: 'BUY' as OrderSide, mark: '100.005', s: '0', price: '100.01' }, // off-grid mark (a feed)
    { side: 'SELL' as OrderSide, mark: '100.005', s: '0', price: '100' },
    { side: 'BUY' as OrderSide, mark: '50000', s: '0.000999999', price: '50050' }, // 50049.99995 → up
    { side: 'SELL' as OrderSide, mark: '50000', s: '0.000999999', price: '49950' }, // 49950.00005 → down
  ])('$side at mark $mark with s=$s fills at $price (rounded against the trader)', ({ side, mark, s, price }) => {
    const result = fill({ order: order({ side, quantity: 1 }), mark: fx(mark), models: fixedSlippage(s) });
    expect(result.status).toBe('FILLED');
    expect(fx(result.fill_price)).toBe(fx(price));
    const markFx = fx(mark);
    const expectedSlip = fx(price) > markFx ? fx(price) - markFx : markFx - fx(price);
    expect(result.slippage_pct).toBe(toNumber((expectedSlip * SCALE + markFx / 2n) / markFx));
  });

  it('is always adverse and within max slippage (plus one tick of rounding) over 10,000 fills per side', () => {
    const problems: string[] = [];
    for (const [instrument, markText] of [
      [BTC, '65000.37'],
      [XRP, '0.6123'],
    ] as Array<[InstrumentSpec, string]>) {
      const mark = fx(markText);
      const max = fx('0.001');
      const buyCeiling = ceilToStep(mark + (mark * max) / SCALE, instrument.tickSize);
      const sellFloor = floorToStep(mark - (mark * max) / SCALE, instrument.tickSize);
      const tolerance = toNumber((instrument.tickSize * SCALE) / mark) + 1e-15;
      for (const side of ['BUY', 'SELL'] as const) {
        for (let i = 0; i < 10_000; i++) {
          const result = paperFill({
            order: order({ signal_id: `${side}-${i}`, symbol: instrument.symbol, side, quantity: 1000, reduce_only: true }),
            mark,
            instrument,
            seed: SEED,
            models,
            now: NOW,
          });
          const price = fx(result.fill_price);
          const where = `${instrument.symbol} ${side} #${i} fill ${result.fill_price}`;
          if (result.status !== 'FILLED') problems.push(`${where}: ${result.reject_reason}`);
          if (price % instrument.tickSize !== 0n) problems.push(`${where}: off the tick grid`);
          if (side === 'BUY' && (price < mark || price > buyCeiling)) problems.push(`${where}: outside [mark, ceiling]`);
          if (side === 'SELL' && (price > mark || price < sellFloor)) problems.push(`${where}: outside [floor, mark]`);
          if (result.slippage_pct < 0 || result.slippage_pct > 0.001 + tolerance) problems.push(`${where}: slippage ${result.slippage_pct}`);
        }
      }
    }
    expect(problems).toEqual([]);
  });

  it('rounds a quantity off the step size down to the step', () => {
    const result = fill({ order: order({ quantity: 0.012345 }) });
    expect(result.status).toBe('FILLED');
    expect(result.quantity).toBe(0.01234);
    expect(fx(result.notional_usd)).toBe((fx(result.fill_price) * fx('0.01234')) / SCALE);
  });

  it('echoes the order and carries signal_ts, ts and the mark', () => {
    const o = order({ signal_id: 'echo', side: 'SELL', reduce_only: true, origin: 'manual_close', intent: 'CLOSE' });
    const result = fill({ order: o, mark: fx('50123.45') });
    expect(result).toMatchObject({
      schema_version: 1,
      order_id: orderIdFor(SEED, 'echo'),
      signal_id: 'echo',
      symbol: 'BTCUSDT',
      side: 'SELL',
      quantity: 0.01,
      reference_price: 50123.45,
      status: 'FILLED',
      signal_ts: o.ts,
      ts: NOW,
      reduce_only: true,
      origin: 'manual_close',
    });
    expect(result).not.toHaveProperty('reject_reason');
    expect(ExecutionResult.parse(result)).toEqual(result);
  });

  it('gives the same signal the same fill whatever was filled before', () => {
    const alone = fill({ order: order({ signal_id: 'target' }) });
    for (let i = 0; i < 50; i++) fill({ order: order({ signal_id: `other-${i}` }) });
    fill({ order: order({ signal_id: 'target', quantity: 5 }) });
    const after = fill({ order: order({ signal_id: 'target' }) });
    expect(after).toEqual(alone);
  });

  it('gives different signals different fills and ids', () => {
    const a = fill({ order: order({ signal_id: 'a' }) });
    const b = fill({ order: order({ signal_id: 'b' }) });
    expect(a.order_id).not.toBe(b.order_id);
    expect(a.fill_price).not.toBe(b.fill_price);
  });

  it('reports numbers equal to the exact decimals', () => {
    for (let i = 0; i < 200; i++) {
      const result = fill({ order: order({ signal_id: `n-${i}`, quantity: 0.12345 }), mark: fx('65012.37') });
      const price = fx(result.fill_price);
      const qty = fx('0.12345');
      const notional = (price * qty) / SCALE;
      expect(result.fill_price).toBe(toNumber(price));
      expect(result.slippage_pct).toBe(toNumber(((price - fx('65012.37')) * SCALE + fx('65012.37') / 2n) / fx('65012.37')));
      expect(result.notional_usd).toBe(toNumber(notional));
      expect(result.fee_usd).toBe(toNumber(((notional * fx('0.0004') + 5n * 10n ** 27n) / 10n ** 28n) * 10n ** 10n));
    }
  });
});

describe('paperFill: rejections', () => {
  const cases: Array<{ name: string; params: Partial<PaperFillParams>; code: string; text: string; quantity: number; reference: number }> = [
    { name: 'unknown symbol', params: { order: order({ symbol: 'DOGEUSDT' }), instrument: undefined }, code: 'UNKNOWN_SYMBOL', text: 'DOGEUSDT', quantity: 0.01, reference: 50_000 },
    { name: 'no price yet', params: { mark: undefined }, code: 'NO_PRICE', text: 'no price for BTCUSDT yet', quantity: 0.01, reference: 0 },
    { name: 'zero price', params: { mark: 0n }, code: 'NO_PRICE', text: 'BTCUSDT', quantity: 0.01, reference: 0 },
    { name: 'negative price', params: { mark: -fx(5) }, code: 'NO_PRICE', text: 'BTCUSDT', quantity: 0.01, reference: 0 },
    {
      name: 'price too small to sell',
      params: { order: order({ side: 'SELL', reduce_only: true }), mark: fx('0.005'), models: fixedSlippage('0.0005') },
      code: 'NO_PRICE',
      text: 'too small',
      quantity: 0.01,
      reference: 0.005,
    },
    { name: 'zero quantity', params: { order: order({ quantity: 0 }) }, code: 'BAD_QUANTITY', text: 'got 0', quantity: 0, reference: 50_000 },
    { name: 'negative quantity', params: { order: order({ quantity: -1 }) }, code: 'BAD_QUANTITY', text: 'got -1', quantity: 0, reference: 50_000 },
    { name: 'NaN quantity', params: { order: order({ quantity: Number.NaN }) }, code: 'BAD_QUANTITY', text: 'got NaN', quantity: 0, reference: 50_000 },
    { name: 'infinite quantity', params: { order: order({ quantity: Number.POSITIVE_INFINITY }) }, code: 'BAD_QUANTITY', text: 'got Infinity', quantity: 0, reference: 50_000 },
    {
      name: 'quantity below one step',
      params: { order: order({ quantity: 0.000009 }) },
      code: 'BAD_QUANTITY',
      text: 'rounds down to 0 at step size 0.00001',
      quantity: 0.000009,
      reference: 50_000,
    },
    {
      name: 'notional below the minimum',
      params: { order: order({ quantity: 0.0001 }) }, // ~5 USD
      code: 'MIN_NOTIONAL',
      text: 'below the minimum 10 USD for BTCUSDT',
      quantity: 0.0001,
      reference: 50_000,
    },
  ];

  it.each(cases)('$name → $code', ({ params, code, text, quantity, reference }) => {
    let result: ExecutionResult | undefined;
    expect(() => (result = fill(params))).not.toThrow();
    expect(result).toBeDefined();
    const r = result!;
    expect(r.status).toBe('REJECTED');
    expect(r.reject_reason!.startsWith(`${code}: `)).toBe(true);
    expect(r.reject_reason).toContain(text);
    expect(rejectCodeOf(r.reject_reason)).toBe(code);
    expect(r).toMatchObject({
      fill_price: 0,
      fee_usd: 0,
      fee_rate: 0,
      notional_usd: 0,
      slippage_pct: 0,
      quantity,
      reference_price: reference,
      ts: NOW,
      signal_ts: 1_700_000_000_000,
    });
    expect(r.order_id).toBe(orderIdFor(SEED, r.signal_id));
    expect(ExecutionResult.parse(r)).toEqual(r);
  });

  it('fills a reduce-only order below the min notional (a close is never trapped)', () => {
    const result = fill({ order: order({ quantity: 0.0001, side: 'SELL', reduce_only: true, intent: 'CLOSE' }) });
    expect(result.status).toBe('FILLED');
    expect(result.notional_usd).toBeLessThan(10);
  });

  it('checks the min notional on the fill notional', () => {
    // 0.0002 BTC at 50,000 = exactly 10 USD before slippage: BUY slips up (fills),
    // SELL slips down below 10 (rejected).
    const buy = fill({ order: order({ quantity: 0.0002 }), models: fixedSlippage('0.0005') });
    const sell = fill({ order: order({ quantity: 0.0002, side: 'SELL' }), models: fixedSlippage('0.0005') });
    expect(buy.status).toBe('FILLED');
    expect(sell.status).toBe('REJECTED');
    expect(rejectCodeOf(sell.reject_reason)).toBe('MIN_NOTIONAL');
  });
});

describe('paperFill: model contract', () => {
  it('throws when a slippage model returns a favourable (negative) fraction', () => {
    expect(() => fill({ models: fixedSlippage('-0.001') })).toThrow(RangeError);
  });

  it('throws when a fee model returns a negative fee', () => {
    const broken: FillModels = {
      slippage: new UniformAdverseSlippage(0.001),
      fee: { fee: () => ({ fee: -1n, rate: 0n }) },
    };
    expect(() => fill({ models: broken })).toThrow(RangeError);
  });

  it('passes each model its parameter object, with an rng keyed to the signal', () => {
    const seen: unknown[] = [];
    const first: number[] = [];
    const spy: FillModels = {
      slippage: {
        slippage: (p) => {
          seen.push({ side: p.side, mark: p.mark, instrument: p.instrument.symbol });
          first.push(p.rng.next());
          return 0n;
        },
      },
      fee: {
        fee: (p) => {
          seen.push({ side: p.side, notional: p.notional, instrument: p.instrument.symbol });
          return { fee: 0n, rate: 0n };
        },
      },
    };
    fill({ models: spy, order: order({ side: 'SELL', signal_id: 'keyed' }) });
    expect(seen).toEqual([
      { side: 'SELL', mark: fx(50_000), instrument: 'BTCUSDT' },
      { side: 'SELL', notional: fx(500), instrument: 'BTCUSDT' },
    ]);
    expect(first[0]).toBe(keyedRandom(SEED, 'keyed').next());
  });
});

describe('rejectCodeOf', () => {
  it.each([
    { reason: 'NO_PRICE: no price for BTCUSDT yet', code: 'NO_PRICE' },
    { reason: 'MIN_NOTIONAL: x', code: 'MIN_NOTIONAL' },
    { reason: 'SOMETHING: else', code: undefined },
    { reason: undefined, code: undefined },
  ])('$reason → $code', ({ reason, code }) => {
    expect(rejectCodeOf(reason)).toBe(code);
  });
});

describe('quote-based fills', () => {
  const quotes = { mark: fx(50_000), bid: fx('49999.5'), ask: fx('50000.5'), priceTs: NOW - 250 };

  it('a BUY fills at the ask plus at most the slippage, rounded up; the result names the ask and the price age', () => {
    const r = fill({ ...quotes });
    expect(r).toMatchObject({ status: 'FILLED', reference_price: 50000.5, quote_side: 'ask', price_age_ms: 250 });
    expect(r.fill_price).toBeGreaterThanOrEqual(50000.5);
    expect(r.fill_price).toBeLessThanOrEqual(50000.5 * 1.001 + 0.01);
    expect(r.slippage_pct).toBeCloseTo((r.fill_price - 50000.5) / 50000.5, 12);
  });

  it('a SELL fills at the bid minus at most the slippage, rounded down', () => {
    const r = fill({ ...quotes, order: order({ side: 'SELL', action: 'SELL' }) });
    expect(r).toMatchObject({ status: 'FILLED', reference_price: 49999.5, quote_side: 'bid' });
    expect(r.fill_price).toBeLessThanOrEqual(49999.5);
    expect(r.fill_price).toBeGreaterThanOrEqual(49999.5 * 0.999 - 0.01);
  });

  it('exactly at the quote with zero slippage', () => {
    const none = fixedSlippage('0');
    expect(fill({ ...quotes, models: none }).fill_price).toBe(50000.5);
    expect(fill({ ...quotes, models: none, order: order({ side: 'SELL', action: 'SELL' }) }).fill_price).toBe(49999.5);
  });

  it('without quotes: today\'s rule on the last price, quote_side last', () => {
    const r = fill({ priceTs: NOW });
    expect(r).toMatchObject({ reference_price: 50_000, quote_side: 'last', price_age_ms: 0 });
    // Only the side the order takes matters: a BUY with a bid but no ask uses the last price.
    expect(fill({ bid: fx('49999.5') })).toMatchObject({ reference_price: 50_000, quote_side: 'last' });
  });

  it('is the same fill for the same signal (keyed randomness), quotes or not', () => {
    expect(fill({ ...quotes })).toEqual(fill({ ...quotes }));
  });
});
