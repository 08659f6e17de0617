/**
 * Where a replay's signals come from: a JSONL file of TradeSignalInput with a required
 * `ts` (what a Python model writes from its predictions), or a strategy (the demo
 * strategy, or a JS/TS module with the same interface) fed every replayed price.
 */
import { createReadStream } from 'node:fs';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';
import { DemoStrategy } from '../core/demo-strategy.js';
import { TradeSignalInput, describeIssues } from '../core/messages.js';
import type { Random } from '../core/random.js';
import { InputError } from './readers.js';

/** A signal with its time (required in a backtest) and an id (the file's line when absent). */
export type TimedSignal = TradeSignalInput & { ts: number; signal_id: string };

/**
 * Reads every signal (signals are few next to prices: a year of hourly signals on five
 * symbols is 44k lines) and sorts them by ts, stably (equal ts keep file order). A bad
 * line stops the run naming the line and the field: nothing is silently dropped.
 */
export async function readSignals(path: string): Promise<TimedSignal[]> {
  const signals: TimedSignal[] = [];
  const reader = createInterface({ input: createReadStream(path), crlfDelay: Infinity });
  let lineNo = 0;
  try {
    for await (const raw of reader) {
      lineNo += 1;
      const line = raw.trim();
      if (line === '') continue;
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch (err) {
        throw new InputError(`--signals ${path}:${lineNo}: not JSON (${(err as Error).message})`);
      }
      const parsed = TradeSignalInput.safeParse(value);
      if (!parsed.success) throw new InputError(`--signals ${path}:${lineNo}: ${describeIssues(parsed.error)}`);
      if (parsed.data.ts === undefined) throw new InputError(`--signals ${path}:${lineNo}: ts: required in a backtest (epoch milliseconds of the prediction)`);
      signals.push({ ...parsed.data, ts: parsed.data.ts, signal_id: parsed.data.signal_id ?? `bt-${lineNo}` });
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new InputError(`--signals ${path}: no such file`);
    throw err;
  }
  return signals.map((s, i) => ({ s, i })).sort((a, b) => a.s.ts - b.s.ts || a.i - b.i).map(({ s }) => s);
}

/** What a strategy module gives (the demo strategy's interface, src/core/demo-strategy.ts). */
export interface Strategy {
  /** Every replayed price, in time order. */
  onPrice(symbol: string, price: number): void;
  /** Asked once per strategy interval: a signal (its ts is set to the replay's time) or null. */
  next(rng: Random): TradeSignalInput | null;
}

export interface StrategyOptions {
  symbols: readonly string[];
  /** For the demo strategy: its momentum unit (execution.price_step_pct). */
  priceStepPct: number;
  seed: number;
}

/**
 * `demo`, or a path to a module exporting `createStrategy(options)` (or a default export
 * that is that function) returning a Strategy. A .ts module needs a TypeScript loader
 * (e.g. `node --import tsx`); a .js or .mjs one loads as is.
 */
export async function loadStrategy(spec: string, options: StrategyOptions): Promise<Strategy> {
  if (spec === 'demo') return new DemoStrategy({ symbols: options.symbols, priceStepPct: options.priceStepPct });
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(resolve(spec)).href)) as Record<string, unknown>;
  } catch (err) {
    throw new InputError(`--strategy ${spec}: cannot load the module (${(err as Error).message})`);
  }
  const factory = (typeof mod.createStrategy === 'function' ? mod.createStrategy : mod.default) as unknown;
  if (typeof factory !== 'function') throw new InputError(`--strategy ${spec}: the module must export createStrategy(options) (or a default function)`);
  const strategy = (await (factory as (o: StrategyOptions) => unknown)(options)) as Partial<Strategy> | null;
  if (!strategy || typeof strategy.onPrice !== 'function' || typeof strategy.next !== 'function') {
    throw new InputError(`--strategy ${spec}: createStrategy must return an object with onPrice(symbol, price) and next(rng)`);
  }
  return strategy as Strategy;
}
