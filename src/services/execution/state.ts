/**
 * The paper Execution service's state, with no I/O: the market simulator (the
 * price source), the fill guard (each signal_id fills once) and the statistics.
 */
import { z } from 'zod';
import { ZERO, fx, toNumber, type Fixed } from '../../core/fixed.js';
import { createFillModels, paperFill, rejectCodeOf, type FillModels } from '../../core/fills.js';
import type { InstrumentTable } from '../../core/instruments.js';
import { MarketSimulator, priceTick, type SetPriceResult } from '../../core/market.js';
import type { ExecutionResult, PriceTick, RiskApprovedSignal, TickSource } from '../../core/messages.js';
import { keyedRandom } from '../../core/random.js';
import { RecentSet } from '../../core/recent-set.js';

export interface ExecutionStateOptions {
  instruments: InstrumentTable;
  seed: number;
  fee_rate: number;
  max_slippage_pct: number;
  price_step_pct: number;
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

/** Bumped whenever the snapshot's shape changes: a snapshot of another version is rebuilt from the streams. */
export const EXECUTION_SNAPSHOT_VERSION = 1;

export const ExecutionSnapshot = z.object({
  version: z.literal(EXECUTION_SNAPSHOT_VERSION),
  prices: z.record(z.string(), z.string()),
  price_ts: z.record(z.string(), z.number()),
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
  private readonly filled: RecentSet;
  private readonly models: FillModels;
  private stats: Stats = emptyStats();
  private stepNo = 0;

  constructor(private readonly options: ExecutionStateOptions) {
    this.simulator = new MarketSimulator(options.instruments, { stepPct: options.price_step_pct });
    this.filled = new RecentSet(options.filledCapacity ?? DEFAULT_FILLED_CAPACITY);
    this.models = createFillModels(options);
  }

  onOrder(order: RiskApprovedSignal, now: number): OrderOutcome {
    if (this.filled.has(order.signal_id)) {
      this.stats.duplicates += 1;
      return { kind: 'duplicate' };
    }
    const result = paperFill({
      order,
      mark: this.simulator.price(order.symbol),
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

  /** A tick from the bus; the latest tick per symbol wins. Returns true when applied. */
  onTick(tick: PriceTick): boolean {
    const last = this.priceTs.get(tick.symbol);
    if (last !== undefined && tick.ts <= last) return false;
    const result = this.simulator.setPrice(tick.symbol, tick.price);
    if (!result.ok) return false;
    this.priceTs.set(tick.symbol, tick.ts);
    return true;
  }

  /** Sets a price by hand (POST /prices); returns the tick to publish, or the error. */
  setPrice(symbol: string, price: number, now: number, source: TickSource = 'manual'): SetPriceResult & { tick?: PriceTick } {
    const result = this.simulator.setPrice(symbol, price);
    if (!result.ok) return result;
    this.priceTs.set(symbol, now);
    return { ...result, tick: priceTick(symbol, result.price, now, source) };
  }

  /** One random-walk step of every price; returns the ticks to publish. */
  step(now: number): PriceTick[] {
    const rng = keyedRandom(this.options.seed, `market:${this.stepNo++}`);
    return this.simulator.step(rng).map((change) => {
      this.priceTs.set(change.symbol, now);
      return priceTick(change.symbol, change.price, now, 'simulator');
    });
  }

  /**
   * Every current price as a tick (published at start-up), stamped with the time that
   * price was set (`now` only for a price never set): a restart re-announces what it
   * knows without overriding a newer tick already on the stream, e.g. a POST /prices
   * from the monitor that arrived while this service was down and is still pending here.
   */
  currentTicks(now: number): PriceTick[] {
    return [...this.simulator.prices()].map(([symbol, price]) =>
      priceTick(symbol, price, this.priceTs.get(symbol) ?? now, 'simulator'),
    );
  }

  prices(): Record<string, number> {
    return Object.fromEntries([...this.simulator.prices()].map(([s, p]) => [s, toNumber(p)]));
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
      version: EXECUTION_SNAPSHOT_VERSION,
      prices: Object.fromEntries([...this.simulator.prices()].map(([sym, p]) => [sym, p.toString()])),
      price_ts: Object.fromEntries(this.priceTs),
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
