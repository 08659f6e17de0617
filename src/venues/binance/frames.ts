/**
 * Binance public market data frames, parsed exactly (pure: no I/O, no clock).
 *
 * A combined stream wraps each payload as {"stream": "<symbol>@<kind>", "data": {...}}.
 * We read two kinds, as Binance documents them (letters are case-sensitive):
 *
 * - `<symbol>@bookTicker`: `u` order-book update id, `s` symbol, `b`/`B` best bid
 *   price/quantity, `a`/`A` best ask price/quantity. Spot sends no event time; USDⓈ-M
 *   futures add `"e":"bookTicker"`, `E` (event time) and `T` (transaction time).
 * - `<symbol>@aggTrade`: `e` "aggTrade", `E` event time, `s`, `a` aggregate trade id
 *   (consecutive: a jump is a gap), `p`/`q` price/quantity, `f`/`l` first/last trade
 *   id, `T` trade time, `m` buyer is maker; spot adds `M` (ignore), futures add `nq`.
 *
 * Prices and quantities arrive as decimal strings; they become exact `Fixed` values
 * straight from the text (never through a binary float). Replies to a SUBSCRIBE
 * ({"result": null, "id": N}) and error objects are recognised too.
 */
import { fx, type Fixed } from '../../core/fixed.js';

export type BinanceMarket = 'spot' | 'usdm';

export interface BookTickerEvent {
  kind: 'quote';
  symbol: string;
  updateId: number;
  bid: Fixed;
  bidSize: Fixed;
  ask: Fixed;
  askSize: Fixed;
  /** `E` on futures; undefined on spot (no event time there). */
  eventTs?: number;
}

export interface AggTradeEvent {
  kind: 'trade';
  symbol: string;
  aggId: number;
  price: Fixed;
  quantity: Fixed;
  firstTradeId: number;
  lastTradeId: number;
  tradeTs: number;
  eventTs: number;
  buyerIsMaker: boolean;
}

export interface ReplyEvent {
  kind: 'reply';
  id: number | string | null;
  /** Set when the server answered with an error object ({"code", "msg"}). */
  error?: string;
}

export type BinanceEvent = BookTickerEvent | AggTradeEvent | ReplyEvent;

export type ParseResult = { ok: true; event: BinanceEvent } | { ok: false; error: string };

/** A non-negative decimal as Binance writes them ("25.35190000"); at most 18 decimals, so it is exact. */
const DECIMAL = /^\d{1,30}(\.\d{1,18})?$/;

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

class FrameError extends Error {}

function decimal(data: Json, key: string, positive: boolean): Fixed {
  const text = data[key];
  if (typeof text !== 'string' || !DECIMAL.test(text)) throw new FrameError(`field "${key}" must be a decimal string, got ${JSON.stringify(text)}`);
  const value = fx(text);
  if (positive && value <= 0n) throw new FrameError(`field "${key}" must be positive, got "${text}"`);
  return value;
}

function integer(data: Json, key: string): number {
  const value = data[key];
  if (!Number.isSafeInteger(value) || (value as number) < 0) throw new FrameError(`field "${key}" must be a non-negative integer, got ${JSON.stringify(value)}`);
  return value as number;
}

function optionalInteger(data: Json, key: string): number | undefined {
  return data[key] === undefined ? undefined : integer(data, key);
}

function symbolOf(data: Json, streamSymbol: string): string {
  const s = data.s;
  if (typeof s !== 'string' || s.length === 0) throw new FrameError('field "s" (symbol) is missing');
  if (s.toLowerCase() !== streamSymbol) throw new FrameError(`symbol "${s}" does not match stream "${streamSymbol}"`);
  return s.toUpperCase();
}

function bookTicker(data: Json, streamSymbol: string): BookTickerEvent {
  if (data.e !== undefined && data.e !== 'bookTicker') throw new FrameError(`event type "${String(data.e)}" on a bookTicker stream`);
  return {
    kind: 'quote',
    symbol: symbolOf(data, streamSymbol),
    updateId: integer(data, 'u'),
    bid: decimal(data, 'b', false),
    bidSize: decimal(data, 'B', false),
    ask: decimal(data, 'a', false),
    askSize: decimal(data, 'A', false),
    eventTs: optionalInteger(data, 'E'),
  };
}

function aggTrade(data: Json, streamSymbol: string): AggTradeEvent {
  if (data.e !== 'aggTrade') throw new FrameError(`event type ${JSON.stringify(data.e)} on an aggTrade stream`);
  if (typeof data.m !== 'boolean') throw new FrameError('field "m" must be a boolean');
  return {
    kind: 'trade',
    symbol: symbolOf(data, streamSymbol),
    aggId: integer(data, 'a'),
    price: decimal(data, 'p', true),
    quantity: decimal(data, 'q', false),
    firstTradeId: integer(data, 'f'),
    lastTradeId: integer(data, 'l'),
    tradeTs: integer(data, 'T'),
    eventTs: integer(data, 'E'),
    buyerIsMaker: data.m,
  };
}

/** Parses one text frame of a combined stream. Never throws: a bad frame is `{ok: false, error}`. */
export function parseFrame(text: string): ParseResult {
  let frame: unknown;
  try {
    frame = JSON.parse(text);
  } catch {
    return { ok: false, error: `not JSON: ${text.slice(0, 80)}` };
  }
  if (!isObject(frame)) return { ok: false, error: 'frame is not a JSON object' };
  try {
    if ('result' in frame && 'id' in frame) {
      const id = frame.id;
      return { ok: true, event: { kind: 'reply', id: typeof id === 'number' || typeof id === 'string' ? id : null } };
    }
    if ('code' in frame && 'msg' in frame) {
      return { ok: true, event: { kind: 'reply', id: (frame.id as number | undefined) ?? null, error: `${String(frame.code)}: ${String(frame.msg)}` } };
    }
    const { stream, data } = frame;
    if (typeof stream !== 'string' || !isObject(data)) return { ok: false, error: 'not a combined-stream frame {"stream", "data"}' };
    const at = stream.indexOf('@');
    const streamSymbol = at > 0 ? stream.slice(0, at) : '';
    const kind = at > 0 ? stream.slice(at + 1) : '';
    if (kind === 'bookTicker') return { ok: true, event: bookTicker(data, streamSymbol) };
    if (kind === 'aggTrade') return { ok: true, event: aggTrade(data, streamSymbol) };
    return { ok: false, error: `unexpected stream "${stream}"` };
  } catch (error) {
    if (error instanceof FrameError) return { ok: false, error: error.message };
    throw error;
  }
}

// ---------------------------------------------------------------------------------
// Endpoints

export const DEFAULT_BASE_URLS: Record<BinanceMarket, string> = {
  spot: 'wss://stream.binance.com:9443',
  usdm: 'wss://fstream.binance.com',
};

/** One connection of the feed: its URL and the streams it carries. */
export interface StreamRoute {
  name: string;
  url: string;
  streams: string[];
}

/** The most streams Binance allows on one connection. */
export const MAX_STREAMS_PER_CONNECTION: Record<BinanceMarket, number> = { spot: 1024, usdm: 200 };

/**
 * The combined-stream connections for `symbols`: spot carries both kinds on one
 * connection (`/stream?streams=…`); USDⓈ-M futures route by path, bookTicker on
 * `/public` and aggTrade on `/market`, so it takes one connection per route. A route
 * with more streams than Binance allows on one connection is split (`…#2`, …).
 * `baseUrl` replaces Binance's host (tests, proxies).
 */
export function streamRoutes(market: BinanceMarket, symbols: readonly string[], baseUrl?: string): StreamRoute[] {
  const base = (baseUrl ?? DEFAULT_BASE_URLS[market]).replace(/\/+$/, '');
  const names = (kind: string) => symbols.map((s) => `${s.toLowerCase()}@${kind}`);
  const max = MAX_STREAMS_PER_CONNECTION[market];
  const routes = (name: string, path: string, streams: string[]): StreamRoute[] => {
    const out: StreamRoute[] = [];
    for (let i = 0; i < streams.length; i += max) {
      const part = streams.slice(i, i + max);
      out.push({ name: i === 0 ? name : `${name}#${i / max + 1}`, url: `${base}${path}?streams=${part.join('/')}`, streams: part });
    }
    return out;
  };
  if (market === 'spot') return routes('spot', '/stream', [...names('bookTicker'), ...names('aggTrade')]);
  return [...routes('usdm-public', '/public/stream', names('bookTicker')), ...routes('usdm-market', '/market/stream', names('aggTrade'))];
}
