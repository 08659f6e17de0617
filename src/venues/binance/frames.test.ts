import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { fx, toDecimalString } from '../../core/fixed.js';
import { parseFrame, streamRoutes, type BinanceEvent } from './frames.js';

const fixture = (name: string): string[] =>
  readFileSync(new URL(`../../../test/fixtures/binance/${name}.jsonl`, import.meta.url), 'utf8').split('\n').filter((l) => l.trim() !== '');

function parsed(line: string): BinanceEvent {
  const result = parseFrame(line);
  if (!result.ok) throw new Error(result.error);
  return result.event;
}

describe('parseFrame on the documented frames', () => {
  it('reads spot bookTicker (no event time) and aggTrade exactly, digits kept', () => {
    const [quote, trade, , , , reply] = fixture('spot').map(parsed);
    expect(quote).toEqual({
      kind: 'quote', symbol: 'BNBUSDT', updateId: 400900217,
      bid: fx('25.3519'), bidSize: fx('31.21'), ask: fx('25.3652'), askSize: fx('40.66'), eventTs: undefined,
    });
    expect(trade).toEqual({
      kind: 'trade', symbol: 'BNBUSDT', aggId: 12345, price: fx('25.36'), quantity: fx('100'),
      firstTradeId: 100, lastTradeId: 105, tradeTs: 1672515782136, eventTs: 1672515782136, buyerIsMaker: true,
    });
    expect(reply).toEqual({ kind: 'reply', id: 1 });
  });

  it('reads USDⓈ-M bookTicker (e, E, T) and aggTrade (nq, no M)', () => {
    const [quote, trade] = fixture('usdm').map(parsed);
    expect(quote).toMatchObject({ kind: 'quote', symbol: 'BTCUSDT', updateId: 400900217, bid: fx('65000.1'), ask: fx('65000.2'), eventTs: 1568014460893 });
    expect(trade).toMatchObject({ kind: 'trade', symbol: 'BTCUSDT', aggId: 5933014, price: fx('65000.2'), quantity: fx('0.1'), eventTs: 1568014460900 });
  });

  it('parses prices from the text, never through a float', () => {
    // 0.1 + 0.2 style digits, and more digits than a double holds.
    const frame = '{"stream":"btcusdt@bookTicker","data":{"u":1,"s":"BTCUSDT","b":"90071992547409.93000001","B":"0.30000000","a":"0.10000000","A":"0.20000000"}}';
    const event = parsed(frame);
    expect(event.kind === 'quote' && toDecimalString(event.bid)).toBe('90071992547409.93000001');
  });

  it.each([
    ['not JSON', 'hello', /not JSON/],
    ['an array', '[1,2]', /not a JSON object/],
    ['no wrapper', '{"u":1,"s":"BTCUSDT","b":"1","B":"1","a":"1","A":"1"}', /combined-stream/],
    ['an unknown stream', '{"stream":"btcusdt@depth","data":{}}', /unexpected stream/],
    ['a numeric price', '{"stream":"btcusdt@bookTicker","data":{"u":1,"s":"BTCUSDT","b":65000.1,"B":"1","a":"2","A":"1"}}', /"b" must be a decimal string/],
    ['an exponent', '{"stream":"btcusdt@bookTicker","data":{"u":1,"s":"BTCUSDT","b":"6.5e4","B":"1","a":"2","A":"1"}}', /"b" must be a decimal string/],
    ['a negative price', '{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E":1,"s":"BTCUSDT","a":1,"p":"-1","q":"1","f":1,"l":1,"T":1,"m":true}}', /"p" must be a decimal/],
    ['a zero trade price', '{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E":1,"s":"BTCUSDT","a":1,"p":"0.000","q":"1","f":1,"l":1,"T":1,"m":true}}', /"p" must be positive/],
    ['a missing update id', '{"stream":"btcusdt@bookTicker","data":{"s":"BTCUSDT","b":"1","B":"1","a":"2","A":"1"}}', /"u" must be a non-negative integer/],
    ['a symbol other than the stream', '{"stream":"ethusdt@bookTicker","data":{"u":1,"s":"BTCUSDT","b":"1","B":"1","a":"2","A":"1"}}', /does not match stream/],
    ['a trade without m', '{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E":1,"s":"BTCUSDT","a":1,"p":"1","q":"1","f":1,"l":1,"T":1}}', /"m" must be a boolean/],
    ['a wrong event type', '{"stream":"btcusdt@aggTrade","data":{"e":"trade","E":1,"s":"BTCUSDT","a":1,"p":"1","q":"1","f":1,"l":1,"T":1,"m":true}}', /event type/],
  ])('rejects %s with a reason', (_name, frame, reason) => {
    const result = parseFrame(frame);
    expect(result.ok).toBe(false);
    expect(!result.ok && result.error).toMatch(reason);
  });

  it('reads an error reply', () => {
    expect(parsed('{"code":2,"msg":"Invalid request","id":3}')).toEqual({ kind: 'reply', id: 3, error: '2: Invalid request' });
  });
});

describe('streamRoutes', () => {
  it('spot: one combined connection with both streams per symbol', () => {
    expect(streamRoutes('spot', ['BTCUSDT', 'ETHUSDT'])).toEqual([
      {
        name: 'spot',
        url: 'wss://stream.binance.com:9443/stream?streams=btcusdt@bookTicker/ethusdt@bookTicker/btcusdt@aggTrade/ethusdt@aggTrade',
        streams: ['btcusdt@bookTicker', 'ethusdt@bookTicker', 'btcusdt@aggTrade', 'ethusdt@aggTrade'],
      },
    ]);
  });

  it('usdm: bookTicker on /public, aggTrade on /market; a base URL override keeps the paths', () => {
    const routes = streamRoutes('usdm', ['BTCUSDT'], 'ws://127.0.0.1:9000/');
    expect(routes.map((r) => r.url)).toEqual([
      'ws://127.0.0.1:9000/public/stream?streams=btcusdt@bookTicker',
      'ws://127.0.0.1:9000/market/stream?streams=btcusdt@aggTrade',
    ]);
    expect(streamRoutes('usdm', ['BTCUSDT'])[0]!.url).toBe('wss://fstream.binance.com/public/stream?streams=btcusdt@bookTicker');
  });

  it.each([
    ['spot', 512, [1024]],
    ['spot', 513, [1024, 2]],
    ['usdm', 200, [200, 200]],
    ['usdm', 201, [200, 1, 200, 1]],
  ] as const)('%s with %d symbols: streams per connection %j (Binance caps a connection at 1024 / 200 streams)', (market, count, sizes) => {
    const symbols = Array.from({ length: count }, (_, i) => `S${i}USDT`);
    const routes = streamRoutes(market, symbols);
    expect(routes.map((r) => r.streams.length)).toEqual(sizes);
    expect(new Set(routes.flatMap((r) => r.streams)).size).toBe(2 * count);
  });
});
