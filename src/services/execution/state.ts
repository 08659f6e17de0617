/**
 * The paper Execution service's state, with no I/O: the latest price and quote per
 * symbol (held by the market simulator, which also walks them when the simulator is
 * the price source), the fill guard (each signal_id fills once) and the statistics.
 */
import { z } from 'zod';
import { ZERO, abs, fx, toDecimalString, toNumber, type Fixed } from '../../core/fixed.js';
import { createFillModels, isExpired, paperFill, paperReject, rejectCodeOf, type FillModels } from '../../core/fills.js';
import type { InstrumentTable } from '../../core/instruments.js';
import { MarketSimulator, priceTick, syntheticQuote, type Quote, type SetPriceResult } from '../../core/market.js';
import type { ExecutionResult, PriceTick, RiskApprovedSignal, TickSource } from '../../core/messages.js';
import { MembersCache, VersionedMap, jsonByParts } from '../../core/json-cache.js';
import { keyedRandom } from '../../core/random.js';
import { DuplicateGuard } from '../../core/recent-set.js';
import { TickGate, TickGateSnapshot, type TickVerdict } from '../../core/tick-rules.js';

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
  /** `execution.max_price_deviation_pct`: the furthest a fill may be from the approval's reference_price. */
  max_price_deviation_pct: number;
  /** The market-data rules every service applies (services/common/ticks.ts builds it from config). */
  tickGate: TickGate;
  /** How many filled signal ids are always remembered to drop duplicates (the count window). */
  filledCapacity?: number;
  /**
   * An order with `expires_ts` is also remembered until then plus this (market.max_clock_skew_ms):
   * after that a copy can only be rejected EXPIRED, never filled twice.
   */
  expiryGraceMs?: number;
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
  /** Best bid/ask per symbol from the latest tick (decimal strings of Fixed units); absent in older snapshots. */
  quotes: z.record(z.string(), z.object({ bid: z.string(), ask: z.string() })).optional(),
  /** The tick gate's state (null in an older snapshot: seeded from prices and price_ts). */
  tick_gate: TickGateSnapshot.nullable().default(null),
  /**
   * Net quantity per symbol from this service's own fills (decimal strings; null in an
   * older snapshot: rebuilt from trade.execution.res), so a reduce-only order never
   * increases or flips a position.
   */
  positions: z.record(z.string(), z.string()).nullable().default(null),
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

/** The snapshot's parts whose text snapshotJson keeps between batches. */
type ExecutionSnapshotPart = 'prices' | 'price_ts' | 'quotes' | 'tick_gate' | 'positions';

function quoteSnapshotOf(q: Quote): { bid: string; ask: string } {
  return { bid: q.bid.toString(), ask: q.ask.toString() };
}

export type OrderOutcome = { kind: 'duplicate' } | { kind: 'result'; result: ExecutionResult };

export class ExecutionState {
  private simulator: MarketSimulator;
  /** When each symbol's price was last set; older ticks arriving late are ignored. */
  private readonly priceTs = new VersionedMap<string, number>();
  /** The latest tick's quote per symbol; absent when that tick had none. */
  private readonly quotes = new VersionedMap<string, Quote>();
  private readonly spread: Fixed;
  private readonly filled: DuplicateGuard;
  private readonly models: FillModels;
  private stats: Stats = emptyStats();
  private stepNo = 0;
  /** Signed net quantity per symbol, folded from this service's FILLED results. */
  private readonly positions = new VersionedMap<string, Fixed>();
  /** False after restoring a snapshot that predates `positions`: the service refolds them. */
  private positionsKnown = true;
  private readonly maxPriceDeviation: Fixed;

  constructor(private readonly options: ExecutionStateOptions) {
    this.simulator = new MarketSimulator(options.instruments, { stepPct: options.price_step_pct });
    this.filled = new DuplicateGuard(options.filledCapacity ?? DEFAULT_FILLED_CAPACITY);
    this.models = createFillModels(options);
    this.spread = fx(options.spread_pct ?? 0);
    this.maxPriceDeviation = fx(options.max_price_deviation_pct);
  }

  /** The mark fills start from: the latest price, none for a live feed's symbol before its first tick. */
  mark(symbol: string): Fixed | undefined {
    if (this.options.external && !this.priceTs.has(symbol)) return undefined;
    return this.simulator.price(symbol);
  }

  onOrder(order: RiskApprovedSignal, now: number): OrderOutcome {
    this.filled.evict(now);
    if (this.filled.has(order.signal_id)) {
      this.stats.duplicates += 1;
      return { kind: 'duplicate' };
    }
    // An expired order is rejected EXPIRED by paperFill whatever the position.
    const reducing = order.reduce_only && !isExpired(order, now) ? this.reduceOnly(order, now) : { order };
    const quote = this.quotes.get(order.symbol);
    const result =
      reducing.rejection ??
      paperFill({
        order: reducing.order,
        mark: this.mark(order.symbol),
        bid: quote?.bid,
        ask: quote?.ask,
        priceTs: this.priceTs.get(order.symbol),
        instrument: this.options.instruments.get(order.symbol),
        seed: this.options.seed,
        models: this.models,
        now,
        maxPriceDeviation: this.maxPriceDeviation,
      });
    this.filled.add(order.signal_id, order.expires_ts === undefined ? undefined : order.expires_ts + (this.options.expiryGraceMs ?? 0));
    this.stats.orders += 1;
    if (result.status === 'FILLED') {
      this.applyOwnFill(result);
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

  /**
   * A reduce-only order against this service's own fold of positions: clipped to the
   * position when larger, REJECTED NOT_REDUCING when flat or on the side that would
   * increase it. So no sequence of approvals (two CLOSEs, one expired in risk's eyes)
   * takes a position past zero.
   */
  private reduceOnly(order: RiskApprovedSignal, now: number): { order: RiskApprovedSignal; rejection?: ExecutionResult } {
    const net = this.positions.get(order.symbol) ?? ZERO;
    const reduces = (net > ZERO && order.side === 'SELL') || (net < ZERO && order.side === 'BUY');
    if (!reduces) {
      const held = net === ZERO ? 'flat' : `${net > ZERO ? 'LONG' : 'SHORT'} ${toDecimalString(abs(net))}`;
      const reason = `NOT_REDUCING: reduce-only ${order.side} of ${order.symbol} but the position is ${held}`;
      return { order, rejection: paperReject({ order, mark: this.mark(order.symbol), seed: this.options.seed, now }, reason) };
    }
    const quantity = fx(order.quantity);
    return quantity > abs(net) ? { order: { ...order, quantity: toNumber(abs(net)) } } : { order };
  }

  private applyOwnFill(result: ExecutionResult): void {
    const quantity = fx(result.quantity);
    const net = (this.positions.get(result.symbol) ?? ZERO) + (result.side === 'BUY' ? quantity : -quantity);
    if (net === ZERO) this.positions.delete(result.symbol);
    else this.positions.set(result.symbol, net);
  }

  /** True unless a snapshot without positions was restored (see `refoldPositions`). */
  get knowsPositions(): boolean {
    return this.positionsKnown;
  }

  /** Rebuilds the fold of positions from every result in trade.execution.res, oldest first. */
  refoldPositions(results: Iterable<ExecutionResult>): void {
    this.positions.clear();
    for (const result of results) if (result.status === 'FILLED') this.applyOwnFill(result);
    this.positionsKnown = true;
  }

  /** Net quantity per symbol from this service's fills (for /stats and tests). */
  netPositions(): Record<string, number> {
    return Object.fromEntries([...this.positions].map(([s, q]) => [s, toNumber(q)]));
  }

  /** Remembers a fill found in trade.execution.res at start-up (duplicates guard). */
  rememberFilled(signalId: string, until?: number): void {
    this.filled.add(signalId, until);
  }

  /**
   * A tick from the bus, through the tick gate (the same rules risk and the monitor apply,
   * so all three mark at the same price); an accepted tick sets the simulator's price,
   * whole: its quote replaces the last one, and a tick without bid/ask (e.g. a manual
   * price) clears it.
   */
  onTick(tick: PriceTick, now: number): TickVerdict {
    const verdict = this.options.tickGate.offer(tick, now);
    if (verdict.kind !== 'accept') return verdict;
    this.simulator.setPrice(tick.symbol, verdict.price);
    this.priceTs.set(tick.symbol, verdict.ts);
    if (verdict.quote !== undefined) this.quotes.set(tick.symbol, verdict.quote);
    else this.quotes.delete(tick.symbol);
    return verdict;
  }

  /** Sets a price by hand (POST /prices); returns the tick to publish, or the error. */
  setPrice(symbol: string, price: number, now: number, source: TickSource = 'manual'): SetPriceResult & { tick?: PriceTick } {
    const previous = this.simulator.price(symbol);
    const result = this.simulator.setPrice(symbol, price);
    if (!result.ok) return result;
    const tick = priceTick(symbol, result.price, this.options.tickGate.stampFor(symbol, now), source);
    const verdict = this.options.tickGate.offer(tick, now);
    if (verdict.kind !== 'accept') {
      if (previous !== undefined) this.simulator.setPrice(symbol, previous);
      return { ok: false, code: 'BAD_PRICE', message: verdict.kind === 'refuse' ? verdict.reason : `BAD_PRICE: a newer tick of ${symbol} exists` };
    }
    this.priceTs.set(symbol, tick.ts);
    this.quotes.delete(symbol);
    return { ...result, tick };
  }

  /**
   * One random-walk step of every price, with the synthetic quote; returns the ticks to
   * publish. Each goes through the gate first (config keeps price_step_pct below the jump
   * limit, so it passes); one the gate would not take is undone, so the simulator never
   * holds a price the others refuse.
   */
  step(now: number): PriceTick[] {
    const rng = keyedRandom(this.options.seed, `market:${this.stepNo++}`);
    const ticks: PriceTick[] = [];
    const before = this.simulator.prices();
    for (const change of this.simulator.step(rng)) {
      const quote = this.syntheticQuoteOf(change.symbol, change.price);
      const tick = priceTick(change.symbol, change.price, this.options.tickGate.stampFor(change.symbol, now), 'simulator', quote);
      const verdict = this.options.tickGate.offer(tick, now);
      if (verdict.kind !== 'accept') {
        this.simulator.setPrice(change.symbol, before.get(change.symbol)!);
        continue;
      }
      this.priceTs.set(change.symbol, tick.ts);
      this.setQuote(change.symbol, verdict.quote);
      ticks.push(tick);
    }
    return ticks;
  }

  /** The simulator's bid/ask around `price` (none with spread 0). */
  private syntheticQuoteOf(symbol: string, price: Fixed): Quote | undefined {
    const spec = this.options.instruments.get(symbol);
    return spec === undefined ? undefined : syntheticQuote(price, this.spread, spec.tickSize);
  }

  private setQuote(symbol: string, quote: Quote | undefined): void {
    if (quote) this.quotes.set(symbol, quote);
    else this.quotes.delete(symbol);
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
      const known = this.priceTs.has(symbol);
      const quote = known ? this.quotes.get(symbol) : this.syntheticQuoteOf(symbol, price);
      const tick = priceTick(symbol, price, this.priceTs.get(symbol) ?? now, 'simulator', quote);
      // The gate takes what the simulator holds (a start price the first time), as every service will.
      if (this.options.tickGate.ts(symbol) === undefined) this.options.tickGate.offer(tick, now);
      if (!known) this.setQuote(symbol, quote);
      return tick;
    });
  }

  /** The latest quotes, for GET /prices. */
  quoteTable(): Record<string, { bid: number; ask: number }> {
    return Object.fromEntries([...this.quotes].map(([s, q]) => [s, { bid: toNumber(q.bid), ask: toNumber(q.ask) }]));
  }

  /** When each symbol's price was last set (tick ts), for qt_price_age_seconds. */
  priceTimestamps(): ReadonlyMap<string, number> {
    return this.priceTs;
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
    return this.snapshotWith({
      prices: Object.fromEntries([...this.simulator.priceView()].map(([sym, p]) => [sym, p.toString()])),
      price_ts: Object.fromEntries(this.priceTs),
      quotes: Object.fromEntries([...this.quotes].map(([sym, q]) => [sym, quoteSnapshotOf(q)])),
      tick_gate: this.options.tickGate.toSnapshot(),
      positions: Object.fromEntries([...this.positions].map(([s, q]) => [s, q.toString()])),
    });
  }

  /**
   * Exactly JSON.stringify(this.toSnapshot()), written with every batch: the per-symbol
   * parts keep each entry's text until it changes (core/json-cache.ts), so the cost does
   * not grow with the instruments and positions beyond a join.
   */
  snapshotJson(): string {
    return jsonByParts(
      {
        prices: () => this.text.prices.object(this.simulator.priceView(), () => this.toSnapshot().prices),
        price_ts: () => this.text.priceTs.object(this.priceTs, () => this.toSnapshot().price_ts),
        quotes: () => this.text.quotes.object(this.quotes, () => this.toSnapshot().quotes),
        tick_gate: () => this.options.tickGate.toSnapshotJson(),
        positions: () => this.text.positions.object(this.positions, () => this.toSnapshot().positions),
      },
      (markers) => this.snapshotWith(markers),
      () => this.toSnapshot(),
    );
  }

  /** The snapshot text of each per-symbol map, by entry (snapshotJson). */
  private readonly text = {
    prices: new MembersCache<Fixed>((p) => JSON.stringify(p.toString())),
    priceTs: new MembersCache<number>((t) => JSON.stringify(t)),
    quotes: new MembersCache<Quote>((q) => JSON.stringify(quoteSnapshotOf(q)), (a, b) => a.bid === b.bid && a.ask === b.ask),
    positions: new MembersCache<Fixed>((q) => JSON.stringify(q.toString())),
  };

  /** The snapshot with these per-symbol parts (one list of fields for toSnapshot and snapshotJson). */
  private snapshotWith(parts: Pick<ExecutionSnapshot, ExecutionSnapshotPart>): ExecutionSnapshot {
    const s = this.stats;
    return {
      version: EXECUTION_SNAPSHOT_VERSION,
      prices: parts.prices,
      price_ts: parts.price_ts,
      quotes: parts.quotes,
      tick_gate: parts.tick_gate,
      positions: parts.positions,
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
    const gate = this.options.tickGate;
    if (snap.tick_gate !== null) {
      gate.restore(snap.tick_gate);
    } else {
      gate.restore({});
      for (const [s, p] of this.simulator.prices()) {
        const ts = this.priceTs.get(s);
        if (ts !== undefined) gate.seed(s, p, ts);
      }
    }
    this.positions.clear();
    for (const [s, q] of Object.entries(snap.positions ?? {})) this.positions.set(s, BigInt(q));
    this.positionsKnown = snap.positions !== null;
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
