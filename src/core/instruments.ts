/** Instrument specs in exact decimals, built once from config. */
import { fx, type Fixed } from './fixed.js';

export interface InstrumentSpec {
  symbol: string;
  tickSize: Fixed;
  stepSize: Fixed;
  minNotional: Fixed;
  startPrice: Fixed;
}

export interface InstrumentSpecInput {
  symbol: string;
  tick_size: number;
  step_size: number;
  min_notional_usd: number;
  start_price: number;
}

export type InstrumentTable = ReadonlyMap<string, InstrumentSpec>;

export function instrumentTable(list: readonly InstrumentSpecInput[]): InstrumentTable {
  const table = new Map<string, InstrumentSpec>();
  for (const item of list) {
    table.set(item.symbol, {
      symbol: item.symbol,
      tickSize: fx(item.tick_size),
      stepSize: fx(item.step_size),
      minNotional: fx(item.min_notional_usd),
      startPrice: fx(item.start_price),
    });
  }
  return table;
}
