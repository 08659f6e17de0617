/**
 * The paper Execution service's state, with no I/O: the latest price and quote per
 * symbol (held by the market simulator, which also walks them when the simulator is
 * the price source), the fill guard (each signal_id fills once) and the statistics.
 */
import { z } from 'zod';
import { ZERO, fx, toNumber, type Fixed } from '../../core/fixed.js';
import { createFillModels, paperFill, rejectCodeOf, type FillModels } from '../../core/fills.js';
import type { InstrumentTable } from '../../core/instruments.js';
import { MarketSimulator, priceTick, syntheticQuote, type Quote, type SetPriceResult } from '../../core/market.js';
import type { ExecutionResult, PriceTick, RiskApprovedSignal, TickSource } from '../../core/messages.js';
import { keyedRandom } from '../../core/random.js';
import { RecentSet } from '../../core/recent-set.js';

export interface ExecutionStateOptions {
  instruments: InstrumentTable;
  seed: number;
  fee_rate: number;
  max_slippage_pct: number;
  price_step_pct: number;
  /** The simulator's synthetic spread (ask − bid) / price; 0 = ticks without quotes. */
  spread_pct?: number;
  /**
   * Prices come from a live feed: a symbol has no price until its first tick arrives
   * (the configured start prices are the simulator's, not the market's).
   */
  external?: boolean;
  /** How many filled signal ids are remembered to drop duplicates. */
  filledCapacity?: number;
}

export const DEFAULT_FILLED_CAPACITY = 200_000;

interface Stats {
  orders: number;
  fills: number;
  rejects: number;
  rejects_by_reason: Record<string, number>;
  duplicates: number;
  volume: Fixed;
  fees: Fixed;
  slippageSum: number;
}

const emptyStats = (): Stats => ({
  orders: 0,
  fills: 0,
  rejects: 0,
  rejects_by_reason: {},
  duplicates: 0,
  volume: ZERO,
  fees: ZERO,
  slippageSum: 0,
});

export const ExecutionSnapshot = z.object({
  version: z.literal(1),
  prices: z.record(z.string(), z.string()),
  price_ts: z.record(z.string(), z.number()),
  /** Best bid/ask per symbol from the latest tick (decimal strings of Fixed units); absent in older snapshots. */
  quotes: z.record(z.string(), z.object({ bid: z.string(), ask: z.string() })).optional(),
  step_no: z.number().int().nonnegative(),
  stats: z.object({
    orders: z.number(),
    fills: z.number(),
    rejects: z.number(),
    rejects_by_reason: z.record(z.string(), z.number()),
    duplicates: z.number(),
    volume: z.string(),
    fees: z.string(),
    slippage_sum: z.number(),
  }),
});
export type ExecutionSnapshot = z.infer<typeof ExecutionSnapshot>;

export type OrderOutcome = { kind: 'duplicate' } | { kind: 'result'; result: ExecutionResult };

export class ExecutionState {
  private simulator: MarketSimulator;
  /** When each symbol's price was last set; older ticks arriving late are ignored. */
  private readonly priceTs = new Map<string, number>();
  /** The latest tick's quote per symbol; absent when that tick had none. */
  private readonly quotes = new Map<string, Quote>();
  private readonly spread: Fixed;
  private readonly filled: RecentSet;
  private readonly models: FillModels;
  private stats: Stats = emptyStats();
  private stepNo = 0;

  constructor(private readonly options: ExecutionStateOptions) {
    this.simulator = new MarketSimulator(options.instruments, { stepPct: options.price_step_pct });
    this.filled = new RecentSet(options.filledCapacity ?? DEFAULT_FILLED_CAPACITY);
    this.models = createFillModels(options);
    this.spread = fx(options.spread_pct ?? 0);
  }

  /** The mark fills start from: the latest price, none for a live feed's symbol before its first tick. */
  mark(symbol: string): Fixed | undefined {
    if (this.options.external && !this.priceTs.has(symbol)) return undefined;
    return this.simulator.price(symbol);
  }

  onOrder(order: RiskApprovedSignal, now: number): OrderOutcome {
    if (this.filled.has(order.signal_id)) {
      this.stats.duplicates += 1;
      return { kind: 'duplicate' };
    }
    const quote = this.quotes.get(order.symbol);
    const result = paperFill({
      order,
      mark: this.mark(order.symbol),
      bid: quote?.bid,
      ask: quote?.ask,
      priceTs: this.priceTs.get(order.symbol),
      instrument: this.options.instruments.get(order.symbol),
      seed: this.options.seed,
      models: this.models,
      now,
    });
    this.filled.add(order.signal_id);
    this.stats.orders += 1;
    if (result.status === 'FILLED') {
      this.stats.fills += 1;
      this.stats.volume += fx(result.notional_usd);
      this.stats.fees += fx(result.fee_usd);
      this.stats.slippageSum += result.slippage_pct;
    } else {
      this.stats.rejects += 1;
      const code = rejectCodeOf(result.reject_reason) ?? 'OTHER';
      this.stats.rejects_by_reason[code] = (this.stats.rejects_by_reason[code] ?? 0) + 1;
    }
    return { kind: 'result', result };
  }

  /** Remembers a fill found in trade.execution.res at start-up (duplicates guard). */
  rememberFilled(signalId: string): void {
    this.filled.add(signalId);
  }

  /**
   * A tick from the bus; the latest tick per symbol wins, whole: its quote replaces the
   * last one, and a tick without bid/ask (e.g. a manual price) clears it. Returns true
   * when applied.
   */
  onTick(tick: PriceTick): boolean {
    const last = this.priceTs.get(tick.symbol);
    if (last !== undefined && tick.ts <= last) return false;
    const result = this.simulator.setPrice(tick.symbol, tick.price);
    if (!result.ok) return false;
    this.priceTs.set(tick.symbol, tick.ts);
    if (tick.bid !== undefined && tick.ask !== undefined) this.quotes.set(tick.symbol, { bid: fx(tick.bid), ask: fx(tick.ask) });
    else this.quotes.delete(tick.symbol);
    return true;
  }

  /** Sets a price by hand (POST /prices); returns the tick to publish, or the error. */
  setPrice(symbol: string, price: number, now: number, source: TickSource = 'manual'): SetPriceResult & { tick?: PriceTick } {
    const result = this.simulator.setPrice(symbol, price);
    if (!result.ok) return result;
    this.priceTs.set(symbol, now);
    this.quotes.delete(symbol);
    return { ...result, tick: priceTick(symbol, result.price, now, source) };
  }

  /** One random-walk step of every price, with the synthetic quote; returns the ticks to publish. */
  step(now: number): PriceTick[] {
    const rng = keyedRandom(this.options.seed, `market:${this.stepNo++}`);
    return this.simulator.step(rng).map((change) => {
      this.priceTs.set(change.symbol, now);
      return priceTick(change.symbol, change.price, now, 'simulator', this.simulatedQuote(change.symbol, change.price));
    });
  }

  private simulatedQuote(symbol: string, price: Fixed): Quote | undefined {
    const spec = this.options.instruments.get(symbol);
    const quote = spec === undefined ? undefined : syntheticQuote(price, this.spread, spec.tickSize);
    if (quote) this.quotes.set(symbol, quote);
    else this.quotes.delete(symbol);
    return quote;
  }

  /**
   * Every current price as a tick (published at start-up), stamped with the time that
   * price was set (`now` only for a price never set): a restart re-announces what it
   * knows without overriding a newer tick already on the stream, e.g. a POST /prices
   * from the monitor that arrived while this service was down and is still pending here.
   */
  currentTicks(now: number): PriceTick[] {
    return [...this.simulator.prices()].map(([symbol, price]) => {
      // A restored price keeps the quote it had (none after a manual price); a fresh one gets the synthetic quote.
      const quote = this.priceTs.has(symbol) ? this.quotes.get(symbol) : this.simulatedQuote(symbol, price);
      return priceTick(symbol, price, this.priceTs.get(symbol) ?? now, 'simulator', quote);
    });
  }

  /** The latest quotes, for GET /prices. */
  quoteTable(): Record<string, { bid: number; ask: number }> {
    return Object.fromEntries([...this.quotes].map(([s, q]) => [s, { bid: toNumber(q.bid), ask: toNumber(q.ask) }]));
  }

  prices(): Record<string, number> {
    const known = [...this.simulator.prices()].filter(([s]) => !this.options.external || this.priceTs.has(s));
    return Object.fromEntries(known.map(([s, p]) => [s, toNumber(p)]));
  }

  hasSymbol(symbol: string): boolean {
    return this.options.instruments.has(symbol);
  }

  fillRate(): number | null {
    return this.stats.orders === 0 ? null : this.stats.fills / this.stats.orders;
  }

  statistics() {
    const s = this.stats;
    return {
      orders: s.orders,
      fills: s.fills,
      rejects: s.rejects,
      rejects_by_reason: { ...s.rejects_by_reason },
      duplicates: s.duplicates,
      fill_rate: this.fillRate(),
      volume_usd: toNumber(s.volume),
      fees_usd: toNumber(s.fees),
      avg_slippage_pct: s.fills === 0 ? 0 : s.slippageSum / s.fills,
    };
  }

  resetStatistics(): void {
    this.stats = emptyStats();
  }

  toSnapshot(): ExecutionSnapshot {
    const s = this.stats;
    return {
      version: 1,
      prices: Object.fromEntries([...this.simulator.prices()].map(([sym, p]) => [sym, p.toString()])),
      price_ts: Object.fromEntries(this.priceTs),
      quotes: Object.fromEntries([...this.quotes].map(([sym, q]) => [sym, { bid: q.bid.toString(), ask: q.ask.toString() }])),
      step_no: this.stepNo,
      stats: {
        orders: s.orders,
        fills: s.fills,
        rejects: s.rejects,
        rejects_by_reason: { ...s.rejects_by_reason },
        duplicates: s.duplicates,
        volume: s.volume.toString(),
        fees: s.fees.toString(),
        slippage_sum: s.slippageSum,
      },
    };
  }

  restore(input: unknown): void {
    const snap = ExecutionSnapshot.parse(input);
    this.simulator = new MarketSimulator(this.options.instruments, {
      stepPct: this.options.price_step_pct,
      prices: Object.entries(snap.prices).map(([s, p]) => [s, BigInt(p)] as const),
    });
    this.priceTs.clear();
    for (const [s, t] of Object.entries(snap.price_ts)) this.priceTs.set(s, t);
    this.quotes.clear();
    for (const [s, q] of Object.entries(snap.quotes ?? {})) this.quotes.set(s, { bid: BigInt(q.bid), ask: BigInt(q.ask) });
    this.stepNo = snap.step_no;
    const st = snap.stats;
    this.stats = {
      orders: st.orders,
      fills: st.fills,
      rejects: st.rejects,
      rejects_by_reason: { ...st.rejects_by_reason },
      duplicates: st.duplicates,
      volume: BigInt(st.volume),
      fees: BigInt(st.fees),
      slippageSum: st.slippage_sum,
    };
  }
}
