/**
 * Pure parsing of the price files' rows and the bar → ticks rule (no I/O).
 *
 * A bar becomes four ticks so protective exits see an intrabar path:
 *   open at open_time; then the extreme nearer to the open (high or low; the low on a
 *   tie) at open_time + ⌊D/3⌋; the other extreme at open_time + ⌊2D/3⌋; the close at
 *   close_time (D = close_time + 1 − open_time, 60 000 ms for a 1-minute bar).
 * Every tick lies inside the bar, in time order, so the bar's close is never known
 * before its close time.
 */

export interface Bar {
  symbol: string;
  openTime: number;
  closeTime: number;
  open: number;
  high: number;
  low: number;
  close: number;
}

/** One price in time: what the driver feeds to market.tick. */
export interface ReplayTick {
  symbol: string;
  ts: number;
  price: number;
  bid?: number;
  ask?: number;
}

/**
 * Binance timestamps: milliseconds (13 digits) until 2024, microseconds (16 digits) in
 * spot files from 2025-01-01 on. Normalised by the number of digits to epoch ms.
 */
export function normaliseTs(raw: string): number {
  const digits = raw.trim();
  if (!/^\d{1,19}$/.test(digits)) throw new Error(`not a timestamp: "${raw}"`);
  if (digits.length >= 16) return Math.floor(Number(digits) / 1000);
  return Number(digits);
}

function num(raw: string | undefined, what: string): number {
  const value = Number(raw);
  if (raw === undefined || raw.trim() === '' || !Number.isFinite(value)) throw new Error(`${what} is not a number: "${raw ?? ''}"`);
  return value;
}

/** True for a header row (some Binance futures files carry one): its first field is not a number. */
export function isHeader(line: string): boolean {
  const first = line.slice(0, line.indexOf(','));
  return first.length > 0 && !/^\d/.test(first);
}

/** A kline row: open_time, open, high, low, close, volume, close_time, … (12 columns). */
export function parseKline(line: string, symbol: string): Bar {
  const cols = line.split(',');
  if (cols.length < 7) throw new Error(`a kline row has 12 columns, this one ${cols.length}`);
  const bar: Bar = {
    symbol,
    openTime: normaliseTs(cols[0]!),
    open: num(cols[1], 'open'),
    high: num(cols[2], 'high'),
    low: num(cols[3], 'low'),
    close: num(cols[4], 'close'),
    closeTime: normaliseTs(cols[6]!),
  };
  if (bar.closeTime < bar.openTime) throw new Error(`close_time ${bar.closeTime} is before open_time ${bar.openTime}`);
  if (bar.high < Math.max(bar.open, bar.close, bar.low) || bar.low > Math.min(bar.open, bar.close)) {
    throw new Error(`high ${bar.high} / low ${bar.low} do not contain open ${bar.open} and close ${bar.close}`);
  }
  return bar;
}

/** An aggTrades row: aggId, price, qty, firstId, lastId, timestamp, isBuyerMaker[, isBestMatch]. */
export function parseAggTrade(line: string, symbol: string): ReplayTick {
  const cols = line.split(',');
  if (cols.length < 7) throw new Error(`an aggTrades row has 7 or 8 columns, this one ${cols.length}`);
  return { symbol, price: num(cols[1], 'price'), ts: normaliseTs(cols[5]!) };
}

/** A JSONL tick: {"ts","symbol","price"[,"bid","ask"]}; `symbol` may come from --symbol instead. */
export function parseJsonTick(line: string, fallbackSymbol: string | undefined): ReplayTick {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (err) {
    throw new Error(`not JSON: ${(err as Error).message}`);
  }
  if (typeof value !== 'object' || value === null) throw new Error('a tick must be a JSON object');
  const o = value as Record<string, unknown>;
  const symbol = typeof o.symbol === 'string' ? o.symbol : fallbackSymbol;
  if (symbol === undefined) throw new Error('symbol: missing (give it in the line or with --symbol)');
  if (typeof o.ts !== 'number' || !Number.isSafeInteger(o.ts) || o.ts < 0) throw new Error('ts: must be epoch milliseconds (an integer)');
  if (typeof o.price !== 'number' || !(o.price > 0)) throw new Error('price: must be a positive number');
  const tick: ReplayTick = { symbol, ts: o.ts, price: o.price };
  if (o.bid !== undefined || o.ask !== undefined) {
    if (typeof o.bid !== 'number' || typeof o.ask !== 'number') throw new Error('bid, ask: give both as numbers, or neither');
    tick.bid = o.bid;
    tick.ask = o.ask;
  }
  return tick;
}

/** The four ticks of a bar, in the documented order (see the file comment). */
export function barTicks(bar: Bar): ReplayTick[] {
  const span = bar.closeTime + 1 - bar.openTime;
  const lowFirst = bar.open - bar.low <= bar.high - bar.open;
  const first = lowFirst ? bar.low : bar.high;
  const second = lowFirst ? bar.high : bar.low;
  const { symbol } = bar;
  return [
    { symbol, ts: bar.openTime, price: bar.open },
    { symbol, ts: bar.openTime + Math.floor(span / 3), price: first },
    { symbol, ts: bar.openTime + Math.floor((2 * span) / 3), price: second },
    { symbol, ts: bar.closeTime, price: bar.close },
  ];
}

/** `BTCUSDT-1m-2024-01.zip` → BTCUSDT; undefined when the name does not start with a symbol. */
export function symbolFromFileName(name: string): string | undefined {
  const base = name.split(/[\\/]/).pop() ?? name;
  const match = /^([A-Z0-9]{2,20})-/.exec(base);
  return match?.[1];
}

export type PriceFormat = 'klines' | 'aggTrades' | 'jsonl';

/** The format from the file name: `.jsonl`/`.ndjson` ticks, `-aggTrades-` trades, otherwise klines. */
export function formatFromFileName(name: string): PriceFormat {
  const base = (name.split(/[\\/]/).pop() ?? name).toLowerCase();
  if (base.endsWith('.jsonl') || base.endsWith('.ndjson')) return 'jsonl';
  if (base.includes('-aggtrades-')) return 'aggTrades';
  return 'klines';
}

/** The end of the period a Binance file name covers (`…-2024-01.zip` → 2024-02-01), for the ETA; undefined otherwise. */
export function periodEndFromFileName(name: string): number | undefined {
  const match = /-(\d{4})-(\d{2})(?:-(\d{2}))?\.(?:zip|csv)$/i.exec(name);
  if (!match) return undefined;
  const [, y, m, d] = match;
  if (d !== undefined) return Date.UTC(Number(y), Number(m) - 1, Number(d) + 1);
  return Date.UTC(Number(y), Number(m), 1);
}
