import { describe, expect, it } from 'vitest';
import { barTicks, formatFromFileName, normaliseTs, parseAggTrade, parseJsonTick, parseKline, periodEndFromFileName, symbolFromFileName } from './bars.js';

const ROW = '1609459200000,28923.63,28961.66,28913.12,28961.66,27.457038,1609459259999,794487.66411928,1292,16.777195,485390.29825708,0';

describe('Binance rows', () => {
  it('parses the kline row quoted in the public-data docs', () => {
    expect(parseKline(ROW, 'BTCUSDT')).toEqual({
      symbol: 'BTCUSDT', openTime: 1609459200000, closeTime: 1609459259999, open: 28923.63, high: 28961.66, low: 28913.12, close: 28961.66,
    });
  });

  it('normalises microsecond timestamps (spot files from 2025) to milliseconds', () => {
    expect(normaliseTs('1735689600000000')).toBe(1735689600000);
    expect(normaliseTs('1735689659999999')).toBe(1735689659999);
    expect(normaliseTs('1609459200000')).toBe(1609459200000);
    const micro = ROW.replace('1609459200000', '1609459200000000').replace('1609459259999', '1609459259999999');
    expect(parseKline(micro, 'BTCUSDT').closeTime).toBe(1609459259999);
  });

  it('refuses rows that are not klines, naming the problem', () => {
    expect(() => parseKline('1,2,3', 'X')).toThrow(/12 columns/);
    expect(() => parseKline(ROW.replace('28961.66', 'abc'), 'X')).toThrow(/high is not a number/);
    expect(() => parseKline('1609459200000,10,9,8,10,1,1609459259999,0,0,0,0,0', 'X')).toThrow(/do not contain/);
  });

  it('parses aggTrades and JSONL ticks', () => {
    expect(parseAggTrade('26129,0.01633102,4.70443515,27781,27781,1498793709153,true,true', 'BNBBTC')).toEqual({ symbol: 'BNBBTC', price: 0.01633102, ts: 1498793709153 });
    expect(parseJsonTick('{"ts":5,"symbol":"ETHUSDT","price":3000,"bid":2999,"ask":3001}', undefined)).toEqual({ ts: 5, symbol: 'ETHUSDT', price: 3000, bid: 2999, ask: 3001 });
    expect(() => parseJsonTick('{"ts":5,"price":3000}', undefined)).toThrow(/symbol/);
    expect(() => parseJsonTick('{"ts":5,"symbol":"ETHUSDT","price":3000,"bid":1}', undefined)).toThrow(/bid, ask/);
  });

  it('reads symbol, format and period from Binance file names', () => {
    expect(symbolFromFileName('/data/BTCUSDT-1m-2024-01.zip')).toBe('BTCUSDT');
    expect(symbolFromFileName('prices.csv')).toBeUndefined();
    expect(formatFromFileName('BTCUSDT-aggTrades-2024-01.zip')).toBe('aggTrades');
    expect(formatFromFileName('ticks.jsonl')).toBe('jsonl');
    expect(formatFromFileName('BTCUSDT-1m-2024-01.csv')).toBe('klines');
    expect(periodEndFromFileName('BTCUSDT-1m-2024-12.zip')).toBe(Date.UTC(2025, 0, 1));
    expect(periodEndFromFileName('BTCUSDT-1m-2024-01-31.zip')).toBe(Date.UTC(2024, 1, 1));
  });
});

describe('a bar becomes four ticks inside it', () => {
  const bar = { symbol: 'BTCUSDT', openTime: 0, closeTime: 59_999 };
  it.each([
    ['low nearer the open: low first', { open: 100, high: 110, low: 99, close: 105 }, [100, 99, 110, 105]],
    ['high nearer the open: high first', { open: 100, high: 101, low: 90, close: 95 }, [100, 101, 90, 95]],
    ['a tie takes the low first', { open: 100, high: 105, low: 95, close: 100 }, [100, 95, 105, 100]],
  ])('%s', (_name, prices, expected) => {
    const ticks = barTicks({ ...bar, ...prices });
    expect(ticks.map((t) => t.price)).toEqual(expected);
    expect(ticks.map((t) => t.ts)).toEqual([0, 20_000, 40_000, 59_999]);
  });
});
