import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { fx } from '../../core/fixed.js';
import { instrumentTable } from '../../core/instruments.js';
import { DEFAULT_INSTRUMENTS } from '../../platform/config.js';
import { BinanceBook } from './book.js';
import { parseFrame, type AggTradeEvent, type BookTickerEvent } from './frames.js';

const instruments = instrumentTable(DEFAULT_INSTRUMENTS);
const NOW = 1_700_000_000_000;

function events(name: string): Array<BookTickerEvent | AggTradeEvent> {
  return readFileSync(new URL(`../../../test/fixtures/binance/${name}.jsonl`, import.meta.url), 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .flatMap((line) => {
      const r = parseFrame(line);
      return r.ok && r.event.kind !== 'reply' ? [r.event] : [];
    });
}

const quote = (u: number, b: string, a: string): BookTickerEvent => ({ kind: 'quote', symbol: 'BTCUSDT', updateId: u, bid: fx(b), bidSize: fx('1'), ask: fx(a), askSize: fx('2') });
const trade = (id: number, p: string): AggTradeEvent => ({
  kind: 'trade', symbol: 'BTCUSDT', aggId: id, price: fx(p), quantity: fx('0.1'), firstTradeId: id, lastTradeId: id, tradeTs: NOW, eventTs: NOW + id, buyerIsMaker: false,
});

describe('BinanceBook', () => {
  it('builds ticks with bid, ask, sizes, last trade and the venue time from the spot fixture', () => {
    const book = new BinanceBook(instruments);
    for (const e of events('spot')) book.apply(e, NOW);
    expect(book.tick('BTCUSDT', NOW)).toEqual({
      schema_version: 1, symbol: 'BTCUSDT', price: 65000.12, ts: NOW, source: 'feed',
      bid: 65000.12, ask: 65000.13, bid_size: 1.5, ask_size: 0.25, exchange_ts: 1672515782150,
    });
    // BNBUSDT ticks at 0.01: the bid 25.3519 rounds down, the ask 25.3652 up.
    expect(book.tick('BNBUSDT', NOW)).toMatchObject({ price: 25.36, bid: 25.35, ask: 25.37 });
  });

  it('uses the futures event time and the mid when no trade came yet', () => {
    const book = new BinanceBook(instruments);
    book.apply(events('usdm')[0]!, NOW);
    expect(book.tick('BTCUSDT', NOW)).toMatchObject({ price: 65000.15, bid: 65000.1, ask: 65000.2, exchange_ts: 1568014460893 });
  });

  it('drops a bookTicker whose update id is not above the last one', () => {
    const book = new BinanceBook(instruments);
    expect(book.apply(quote(10, '100.00', '100.02'), NOW).kind).toBe('applied');
    expect(book.apply(quote(10, '90.00', '90.02'), NOW)).toMatchObject({ kind: 'ignored', reason: 'old_update' });
    expect(book.apply(quote(9, '90.00', '90.02'), NOW)).toMatchObject({ kind: 'ignored', reason: 'old_update' });
    expect(book.tick('BTCUSDT', NOW)).toMatchObject({ bid: 100, ask: 100.02 });
  });

  it.each([
    ['consecutive ids', [1, 2, 3], []],
    ['one missing id', [1, 2, 4], [{ after: 2, next: 4, missing: 1 }]],
    ['two gaps', [10, 15, 16, 20], [{ after: 10, next: 15, missing: 4 }, { after: 16, next: 20, missing: 3 }]],
    ['a repeated id (overlapping connections) is no gap', [1, 2, 2, 1, 3], []],
  ])('aggTrade ids: %s', (_name, ids, gaps) => {
    const book = new BinanceBook(instruments);
    const seen = ids.flatMap((id) => {
      const outcome = book.apply(trade(id, '100.00'), NOW);
      return outcome.kind === 'applied' && outcome.gap ? [{ after: outcome.gap.after, next: outcome.gap.next, missing: outcome.gap.missing }] : [];
    });
    expect(seen).toEqual(gaps);
  });

  it('ignores symbols that are not configured, and has no tick before data', () => {
    const book = new BinanceBook(instruments);
    expect(book.apply({ ...trade(1, '1.00'), symbol: 'DOGEUSDT' }, NOW)).toMatchObject({ kind: 'ignored', reason: 'unknown_symbol' });
    expect(book.tick('BTCUSDT', NOW)).toBeUndefined();
    expect(book.lastMessageAt('BTCUSDT')).toBeUndefined();
  });

  it('drops a quote with an empty side but keeps the last trade', () => {
    const book = new BinanceBook(instruments);
    book.apply(trade(1, '100.00'), NOW);
    book.apply(quote(1, '0.00000000', '100.02'), NOW);
    const tick = book.tick('BTCUSDT', NOW)!;
    expect(tick.price).toBe(100);
    expect(tick.bid).toBeUndefined();
  });
});
