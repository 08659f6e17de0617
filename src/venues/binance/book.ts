/**
 * The latest top of book and last trade per symbol, folded from Binance events (pure:
 * time is passed in). It drops what Binance says to drop (a bookTicker whose update id
 * `u` is not above the last one; an aggTrade id already seen, e.g. while two
 * connections overlap during a planned reconnect), detects aggTrade id gaps, and builds
 * the `market.tick` of a symbol on the instrument's tick grid.
 */
import { ceilToStep, floorToStep, roundToStep, type Fixed } from '../../core/fixed.js';
import type { InstrumentTable } from '../../core/instruments.js';
import { priceTick, type Quote } from '../../core/market.js';
import type { PriceTick } from '../../core/messages.js';
import type { AggTradeEvent, BookTickerEvent } from './frames.js';

interface SymbolState {
  updateId?: number;
  quote?: Quote;
  last?: Fixed;
  lastAggId?: number;
  exchangeTs?: number;
  lastMessageAt?: number;
}

export interface TradeGap {
  symbol: string;
  /** The last aggregate trade id seen before the gap, and the first after it. */
  after: number;
  next: number;
  missing: number;
}

export type ApplyOutcome =
  | { kind: 'applied'; symbol: string; gap?: TradeGap }
  | { kind: 'ignored'; symbol: string; reason: 'unknown_symbol' | 'old_update' | 'seen_trade' };

export class BinanceBook {
  private readonly books = new Map<string, SymbolState>();

  constructor(private readonly instruments: InstrumentTable) {
    for (const symbol of instruments.keys()) this.books.set(symbol, {});
  }

  apply(event: BookTickerEvent | AggTradeEvent, now: number): ApplyOutcome {
    const book = this.books.get(event.symbol);
    if (book === undefined) return { kind: 'ignored', symbol: event.symbol, reason: 'unknown_symbol' };
    book.lastMessageAt = now;
    if (event.kind === 'quote') {
      if (book.updateId !== undefined && event.updateId <= book.updateId) return { kind: 'ignored', symbol: event.symbol, reason: 'old_update' };
      book.updateId = event.updateId;
      book.quote = { bid: event.bid, ask: event.ask, bidSize: event.bidSize, askSize: event.askSize };
      if (event.eventTs !== undefined) book.exchangeTs = event.eventTs;
      return { kind: 'applied', symbol: event.symbol };
    }
    const previous = book.lastAggId;
    if (previous !== undefined && event.aggId <= previous) return { kind: 'ignored', symbol: event.symbol, reason: 'seen_trade' };
    book.lastAggId = event.aggId;
    book.last = event.price;
    book.exchangeTs = event.eventTs;
    if (previous !== undefined && event.aggId > previous + 1) {
      return { kind: 'applied', symbol: event.symbol, gap: { symbol: event.symbol, after: previous, next: event.aggId, missing: event.aggId - previous - 1 } };
    }
    return { kind: 'applied', symbol: event.symbol };
  }

  /**
   * The symbol's tick, or undefined before anything usable arrived. On the tick grid:
   * the bid rounded down and the ask up (a rounded quote is never better than the
   * venue's), `price` the last trade (else the mid) to the nearest tick. An empty side
   * (price 0) drops the quote; the sizes go along when positive.
   */
  tick(symbol: string, now: number): PriceTick | undefined {
    const book = this.books.get(symbol);
    const spec = this.instruments.get(symbol);
    if (book === undefined || spec === undefined) return undefined;
    const tickSize = spec.tickSize;
    let quote: Quote | undefined;
    if (book.quote !== undefined) {
      const bid = floorToStep(book.quote.bid, tickSize);
      const ask = ceilToStep(book.quote.ask, tickSize);
      if (bid > 0n && ask >= bid) quote = { bid, ask, bidSize: book.quote.bidSize, askSize: book.quote.askSize };
    }
    let price = book.last === undefined ? undefined : roundToStep(book.last, tickSize);
    if ((price === undefined || price <= 0n) && quote !== undefined) price = roundToStep((quote.bid + quote.ask) / 2n, tickSize);
    if (price === undefined || price <= 0n) return undefined;
    return priceTick(symbol, price, now, 'feed', quote, book.exchangeTs);
  }

  /** When a message for the symbol last arrived (epoch ms); undefined before the first. */
  lastMessageAt(symbol: string): number | undefined {
    return this.books.get(symbol)?.lastMessageAt;
  }

  symbols(): string[] {
    return [...this.books.keys()];
  }
}
