/**
 * The replay driver: runs the very same risk, execution and monitor services
 * (startLoop) on an embedded bus whose clock and timers are simulated, and feeds them
 * the data one input at a time, waiting after each for the loop to settle
 * (EmbeddedBus.whenSettled: every consumer parked, nothing unread, nothing pending), so
 * the same inputs and config give the same outputs, byte for byte.
 *
 * Order of events at one instant: timers due at or before a tick's ts fire first (each
 * at its own due time), then the tick, then the signals of that tick's symbol stamped at
 * or before it: a signal stamped t is decided and filled on the first price of its
 * symbol at or after t, never an earlier one and never a later one than that.
 *
 * Conflation (on by default; --no-conflate turns it off, and a test proves both give
 * the same report): a tick of a symbol that has no position, nothing in flight anywhere,
 * and whose path the tick gate accepts cleanly, may be held back and replaced by the
 * symbol's next tick. No rule sees the difference: a flat symbol's price moves no
 * equity, exposure, drawdown, exit or mark; every held tick is published before the
 * next signal of its symbol (the risk gate and execution then see the very latest
 * price and ts); and the services' tick gate sees a sequence whose every step is within
 * market.max_tick_jump_pct (checked on the held path), so it ends in the state the full
 * path gives. A tick the gate would refuse (a jump) is never conflated: it, and the
 * tick after it, are published as they are.
 *
 * An open position's tick may be held too, when no exit levels are armed anywhere,
 * nothing is in flight, monitor.publish_on_tick is off, and the equity after it is not
 * above the highest equity already shown to the services (risk's peak is at least that,
 * so it would not move) and stays half a point clear of the circuit breaker. That check
 * covers every state the services can be shown: the true one, and each one they pass
 * through when the held ticks are published in order (see statesSafe). With
 * risk.max_daily_loss_pct on, those states must also stay half a point clear of the day's
 * loss limit (unless it is already reached), and the first tick of each UTC day is never
 * held (the day's starting equity is the equity at its first input).
 */
import { EmbeddedBus } from '../bus/embedded.js';
import { TOPICS } from '../bus/topics.js';
import { abs, fx, mul, toNumber, type Fixed } from '../core/fixed.js';
import { instrumentTable } from '../core/instruments.js';
import { Ledger, ledgerFillOf } from '../core/ledger.js';
import type { ExecutionResult, ExitLevels, PriceTick, RiskApprovedSignal, RiskRejection, TradeSignal } from '../core/messages.js';
import { keyedRandom } from '../core/random.js';
import { dailyLoss } from '../core/protections.js';
import { TickGate } from '../core/tick-rules.js';
import type { Config, InstrumentConfig } from '../platform/config.js';
import type { Logger } from '../platform/logger.js';
import { startLoop, type Loop } from '../services/loop.js';
import type { ReplayTick } from './bars.js';
import { DrawdownTracker, Downsampler, DAY_MS } from './metrics.js';
import { InputError, openPrices, type PriceFile } from './readers.js';
import { SimClock, SimScheduler } from './sim-clock.js';
import type { Strategy, TimedSignal } from './signals.js';

export interface BacktestInput {
  files: readonly PriceFile[];
  config: Config;
  logger: Logger;
  signals?: readonly TimedSignal[];
  strategy?: Strategy;
  /** How often the strategy is asked for a signal, in replay time. */
  strategyIntervalMs?: number;
  from?: number;
  to?: number;
  conflate?: boolean;
  /** Called about every `progressEvery` ticks and at the end. */
  onProgress?: (p: Progress) => void;
  progressEvery?: number;
  /** Wall-clock bound on one wait for the loop to settle (a handler failing over and over never settles). */
  settleTimeoutMs?: number;
}

export interface Progress {
  simTs: number;
  startTs: number;
  endTs: number | undefined;
  bars: number;
  ticks: number;
  done: boolean;
}

export interface TradeRecord {
  symbol: string;
  side: 'LONG' | 'SHORT';
  entry_ts: number;
  entry_price: number;
  exit_ts: number;
  exit_price: number;
  quantity: number;
  gross_pnl_usd: number;
  fees_usd: number;
  net_pnl_usd: number;
  exit_reason: string;
  source: string;
}

export interface RawResult {
  startTs: number;
  endTs: number;
  initialBalance: number;
  finalBalance: number;
  finalEquity: number;
  fees: number;
  trades: TradeRecord[];
  equityCurve: [number, number][];
  /** Equity at the end of each UTC day (the last one: at the end), for daily returns. */
  dailyEquity: [number, number][];
  drawdown: { maxDrawdownPct: number; maxDrawdownDurationMs: number };
  exposureMs: number;
  signals: { received: number; approved: number; rejected: number; skipped: number; rejected_by_reason: Record<string, number>; skipped_by_reason: Record<string, number> };
  rejections: { ts: number; symbol: string; action: string; source: string; reasons: string[] }[];
  prices: Record<string, [number, number][]>;
  counts: { bars: number; ticks: number; published_ticks: number; timer_fires: number; refused_ticks: number };
}

const TRIM_EVERY = 5_000;
const REPLAY_MAXLEN = 1_000;
const MAX_REJECTION_SAMPLES = 200;

/** The config the services run with: the data's symbols, each starting at its first price; no simulated walk. */
export function replayConfig(config: Config, first: Map<string, { ts: number; price: number }>): Config {
  const known = new Map(config.instruments.map((i) => [i.symbol, i]));
  const instruments: InstrumentConfig[] = [];
  for (const [symbol, { price }] of [...first].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const spec = known.get(symbol);
    if (!spec) {
      throw new InputError(`${symbol} is in the price data but not a configured instrument: add it to "instruments" in the config (tick_size, step_size, min_notional_usd, start_price)`);
    }
    instruments.push({ ...spec, start_price: price });
  }
  return Object.freeze({
    ...config,
    instruments,
    execution: { ...config.execution, price_interval_ms: 0 },
    // Prices come from the files only: no live feed, no simulated walk (start prices are each symbol's first price).
    market: { ...config.market, source: 'simulator' },
  }) as Config;
}

class Settler {
  constructor(
    private readonly bus: EmbeddedBus,
    private readonly timeoutMs: number,
  ) {}

  async settle(): Promise<void> {
    if (this.bus.settled()) return;
    let timer: NodeJS.Timeout | undefined;
    const bounded = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`the loop did not settle within ${this.timeoutMs} ms of wall time (a handler failing over and over?)`)),
        this.timeoutMs,
      );
    });
    try {
      await Promise.race([this.bus.whenSettled(), bounded]);
    } finally {
      clearTimeout(timer);
    }
  }
}

export async function runBacktest(input: BacktestInput): Promise<RawResult> {
  const prices = await openPrices(input.files);
  if (prices.symbols.length === 0) throw new InputError('--prices: the files hold no prices');
  const config = replayConfig(input.config, prices.first);
  const instruments = instrumentTable(config.instruments);
  const firstTs = Math.min(...[...prices.first.values()].map((f) => f.ts));
  const startTs = Math.max(firstTs, input.from ?? firstTs);
  const clock = new SimClock(startTs);
  const scheduler = new SimScheduler(clock);
  // Streams are read by the collector after each settle, and nothing restarts: a short tail is enough.
  const bus = new EmbeddedBus({ clock, trimIntervalMs: 0, maxlen: REPLAY_MAXLEN, onError: (e) => input.logger.warn({ err: e }, 'bus error') });
  const settler = new Settler(bus, input.settleTimeoutMs ?? 60_000);
  const loop: Loop = await startLoop({ bus, config, clock, logger: input.logger, listen: false, demo: false, scheduler, snapshots: false });
  const collector = new Collector(config.account.initial_balance_usd, startTs, prices.symbols);
  const conflate = input.conflate ?? true;
  const shadow = new TickGate(instruments, { maxClockSkewMs: config.market.max_clock_skew_ms, maxJumpPct: config.market.max_tick_jump_pct });
  const maxJump = fx(config.market.max_tick_jump_pct);
  const held = new Map<string, PriceTick>();
  /** The gate's (tick-rounded) price of each held tick, and of the last published tick per symbol. */
  const heldPrice = new Map<string, Fixed>();
  const shownMark = new Map<string, Fixed>();
  const lastSent = new Map<string, Fixed>();
  const forwardNext = new Set<string>();
  const seen = new Set<string>();
  let published = 0;
  let ticks = 0;
  let lastAppends = -1;

  const cursor = { i: 0 };
  const fileSignals = input.signals ?? [];
  const waiting = new Map<string, TimedSignal[]>();
  const skipped: Record<string, number> = {};
  const skip = (reason: string) => (skipped[reason] = (skipped[reason] ?? 0) + 1);

  const afterSettle = async (): Promise<void> => {
    await collector.read(bus);
    lastAppends = bus.appendCount;
    noteShown();
  };
  let trimmedAt = 0;
  /** Waits for the loop to settle, then collects what it published; synchronous when nothing happened (the common timer fire). */
  const settle = (): Promise<void> | undefined => {
    if (bus.appendCount === lastAppends && bus.settled()) return undefined;
    return (async () => {
      await settler.settle();
      if (bus.appendCount !== lastAppends) await afterSettle();
      // Streams stay bounded (a short tail, behind every group) however long the replay.
      if (bus.appendCount - trimmedAt >= TRIM_EVERY) {
        trimmedAt = bus.appendCount;
        await bus.trimNow();
        // trade.execution.res is never trimmed periodically (state recovery folds it); in a
        // replay nothing restarts, and at a settle every group has read and acknowledged it.
        await bus.trim(TOPICS.execution, REPLAY_MAXLEN);
      }
    })();
  };
  const publishTick = async (tick: PriceTick, rounded?: Fixed): Promise<void> => {
    if (rounded !== undefined) shownMark.set(tick.symbol, rounded);
    const own = bus.appendCount === lastAppends;
    await bus.publish(TOPICS.tick, tick);
    // Our own tick is not an output to collect: only what the services add after it is.
    if (own) lastAppends = bus.appendCount;
    published += 1;
    lastSent.set(tick.symbol, fx(tick.price));
    await settle();
    noteShown();
  };
  const flush = async (symbol: string): Promise<void> => {
    const tick = held.get(symbol);
    if (tick === undefined) return;
    held.delete(symbol);
    const price = heldPrice.get(symbol);
    heldPrice.delete(symbol);
    await publishTick(tick, price);
  };
  const publishSignal = async (signal: TradeSignal): Promise<void> => {
    await bus.publish(TOPICS.signal, signal);
    await settle();
  };
  const flat = (symbol: string): boolean => !loop.monitor.service.state.hasOpenPosition(symbol) && collector.isFlat(symbol);
  // The highest equity any published input has shown the services (risk's peak is at least this).
  let shownPeak: Fixed = fx(config.account.initial_balance_usd);
  const haltMargin = fx(Math.max(0, config.risk.max_drawdown_pct - 0.005));
  /** May this tick (already folded into the collector) be held back? See the file comment. */
  const mayHold = (symbol: string): boolean => {
    if (loop.risk.service.state.inflightCount() !== 0) return false;
    if (flat(symbol)) return true;
    return !config.monitor.publish_on_tick && collector.armed.size === 0;
  };
  /** Equity as the services see it: the true equity less the moves of the held open-position ticks. */
  const shownEquity = (): Fixed => {
    let equity = collector.ledger.equity();
    for (const [symbol, price] of heldPrice) {
      const shown = shownMark.get(symbol);
      if (shown !== undefined && !flat(symbol)) equity -= mul(collector.ledger.quantity(symbol), price - shown);
    }
    return equity;
  };
  const noteShown = (): void => {
    const equity = shownEquity();
    if (equity > shownPeak) shownPeak = equity;
  };
  const flushAll = async (): Promise<void> => {
    for (const symbol of [...held.keys()]) await flush(symbol);
  };
  /** Publishes the held ticks of open positions, in the order statesSafe checked. */
  const flushOpen = async (): Promise<void> => {
    for (const symbol of [...held.keys()]) if (!flat(symbol)) await flush(symbol);
  };
  // The daily loss limit latches on any input that shows the day's loss past it (risk state
  // noteDailyLoss), and the day's starting equity is the equity at the day's first input.
  const maxDailyLoss = config.risk.max_daily_loss_pct;
  const dailyMargin = fx(Math.max(0, maxDailyLoss - 0.005));
  /** Would a state at `equity` stay clear of the daily loss limit (or is today's already reached, so nothing changes)? */
  const dailyClear = (equity: Fixed): boolean => {
    if (maxDailyLoss === 0) return true;
    const today = loop.risk.service.state.dailyLossState(clock.now());
    if (today.reachedAt !== null) return true;
    return today.start !== null && dailyLoss(today.start, equity).lossFraction < dailyMargin;
  };
  const safe = (equity: Fixed): boolean =>
    equity <= shownPeak && shownPeak - equity < mul(haltMargin, shownPeak) && dailyClear(equity);
  /**
   * Holding `symbol` at `price` as well: is every state the services would pass through
   * when the held open-position ticks are published in order (each a prefix of them over
   * what they were last shown), and the true state now, at or below the shown peak and
   * clear of the breaker? Marks add up, so each state's equity is the shown equity plus
   * the moves (quantity × (held − shown mark)) of a prefix.
   */
  const statesSafe = (symbol: string, price: Fixed): boolean => {
    const order = [...held.keys()].filter((s) => !flat(s));
    if (!order.includes(symbol)) order.push(symbol);
    const moves = order.map((s) => {
      const latest = s === symbol ? price : heldPrice.get(s)!;
      const shown = shownMark.get(s);
      return shown === undefined ? null : mul(collector.ledger.quantity(s), latest - shown);
    });
    if (moves.includes(null)) return false;
    let equity = collector.ledger.equity();
    for (const m of moves) equity -= m!;
    for (const m of moves) {
      equity += m!;
      if (!safe(equity)) return false;
    }
    return true;
  };

  let lastDay = Number.NaN;
  let nextStrategyAt = startTs;
  const strategyEvery = input.strategyIntervalMs ?? 60_000;
  let strategyCount = 0;
  let endTs = startTs;

  try {
    await settle();
    for await (const raw of prices.ticks) {
      if (input.to !== undefined && raw.ts > input.to) break;
      if (raw.ts < startTs) continue;
      ticks += 1;
      // Signals stamped before `from`, or for symbols without data, are never decided.
      while (cursor.i < fileSignals.length && fileSignals[cursor.i]!.ts <= raw.ts) {
        const signal = fileSignals[cursor.i++]!;
        if (signal.ts < startTs) skip('BEFORE_FROM');
        else if (!prices.first.has(signal.symbol)) skip('NO_DATA');
        else {
          const list = waiting.get(signal.symbol) ?? [];
          list.push(signal);
          waiting.set(signal.symbol, list);
        }
      }
      // With a daily loss limit, a new UTC day starts from the true state: every held tick is
      // published on the old day's clock, and the new day's first tick is published as it is
      // (its starting equity is the equity before it, as without conflation).
      const day = Math.floor(raw.ts / DAY_MS);
      const newDay = maxDailyLoss > 0 && day !== lastDay;
      if (newDay) {
        lastDay = day;
        await flushAll();
      }
      await scheduler.advanceTo(raw.ts, settle);
      clock.set(raw.ts);
      endTs = raw.ts;
      const tick: PriceTick = toPriceTick(raw);
      collector.onTime(raw);
      const pending = waiting.get(raw.symbol);
      const verdict = shadow.offer(tick, raw.ts);
      const clean = verdict.kind === 'accept' && !forwardNext.has(raw.symbol);
      forwardNext.delete(raw.symbol);
      if (verdict.kind === 'refuse') forwardNext.add(raw.symbol);
      if (verdict.kind === 'accept') collector.onPrice(raw.symbol, verdict.price);
      const open = !flat(raw.symbol);
      if (conflate && clean && !newDay && seen.has(raw.symbol) && pending === undefined && mayHold(raw.symbol)) {
        const price = verdict.price;
        if (!withinBand(price, lastSent.get(raw.symbol), maxJump)) await (open ? flushOpen() : flush(raw.symbol));
        if (open && !statesSafe(raw.symbol, price)) await flushOpen();
        if (withinBand(price, lastSent.get(raw.symbol), maxJump) && (!open || statesSafe(raw.symbol, price))) {
          held.set(raw.symbol, tick);
          heldPrice.set(raw.symbol, price);
        } else {
          await publishTick(tick, price);
        }
      } else {
        // Published as it is: first every held tick it could be mixed with.
        if (open) await flushOpen();
        await flush(raw.symbol);
        await publishTick(tick, verdict.kind === 'accept' ? verdict.price : undefined);
      }
      seen.add(raw.symbol);
      if (pending !== undefined) {
        while (pending.length > 0 && pending[0]!.ts <= raw.ts) {
          const signal = pending.shift()!;
          // Every held price first: a decision sees equity and exposure at the latest marks.
          await flushAll();
          await publishSignal({ schema_version: 1, ...signal } as TradeSignal);
        }
        if (pending.length === 0) waiting.delete(raw.symbol);
      }
      if (input.strategy) {
        input.strategy.onPrice(raw.symbol, raw.price);
        if (raw.ts >= nextStrategyAt) {
          nextStrategyAt = raw.ts + strategyEvery;
          const proposal = input.strategy.next(keyedRandom(config.seed, `backtest-strategy:${strategyCount}`));
          strategyCount += 1;
          if (proposal) {
            await flushAll();
            await publishSignal({ ...proposal, schema_version: 1, signal_id: proposal.signal_id ?? `strategy-${strategyCount}`, ts: raw.ts } as TradeSignal);
          }
        }
      }
      collector.afterEvent(raw.ts);
      if (input.onProgress && ticks % (input.progressEvery ?? 50_000) === 0) {
        input.onProgress({ simTs: raw.ts, startTs, endTs: input.to ?? prices.estimatedEnd, bars: prices.counts.bars, ticks, done: false });
      }
    }
    await flushAll();
    await settle();
    // Signals left: no price of their symbol at or after their ts.
    for (const list of waiting.values()) for (let i = 0; i < list.length; i += 1) skip('NO_PRICE_AFTER');
    for (; cursor.i < fileSignals.length; cursor.i += 1) skip(input.to !== undefined && fileSignals[cursor.i]!.ts > input.to ? 'AFTER_TO' : 'NO_PRICE_AFTER');
    input.onProgress?.({ simTs: endTs, startTs, endTs, bars: prices.counts.bars, ticks, done: true });

    const stats = loop.risk.service.stats();
    const portfolio = loop.monitor.service.state.portfolio();
    const counts = stats.counts;
    const result = collector.finish(endTs);
    if (Math.abs(result.finalBalance - portfolio.balance_usd) > 1e-6) {
      throw new Error(`internal: the report's fold (${result.finalBalance}) disagrees with the monitor's balance (${portfolio.balance_usd})`);
    }
    return {
      ...result,
      startTs,
      endTs,
      finalBalance: portfolio.balance_usd,
      finalEquity: portfolio.equity_usd,
      signals: {
        received: counts.received,
        approved: counts.approved,
        rejected: counts.rejected,
        skipped: counts.skipped + Object.values(skipped).reduce((a, b) => a + b, 0),
        rejected_by_reason: sortKeys(counts.rejected_by_reason),
        skipped_by_reason: sortKeys({ ...(counts.skipped > 0 ? { HOLD: counts.skipped } : {}), ...skipped }),
      },
      counts: { bars: prices.counts.bars, ticks, published_ticks: published, timer_fires: scheduler.fired, refused_ticks: collector.refusedTicks },
    };
  } finally {
    await loop.stop();
    await bus.close();
  }
}

/** |price − reference| ≤ maxJump × reference: the tick gate's band (core/tick-rules.ts). */
function withinBand(price: Fixed, reference: Fixed | undefined, maxJump: Fixed): boolean {
  return reference !== undefined && abs(price - reference) <= mul(maxJump, reference);
}

function sortKeys<T>(record: Record<string, T>): Record<string, T> {
  return Object.fromEntries(Object.entries(record).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

function toPriceTick(raw: ReplayTick): PriceTick {
  const tick: PriceTick = { schema_version: 1, symbol: raw.symbol, price: raw.price, ts: raw.ts, source: 'feed' } as PriceTick;
  if (raw.bid !== undefined && raw.ask !== undefined) {
    tick.bid = raw.bid;
    tick.ask = raw.ask;
  }
  return tick;
}

/**
 * Folds the loop's outputs (read from its streams after each settle) into what the
 * report needs: round trips through the same accounting core the monitor uses
 * (core/ledger.ts), the equity path at every replayed price, daily equity, exposure
 * time, and the rejections.
 */
class Collector {
  readonly ledger: Ledger;
  readonly #initial: number;
  readonly #after = new Map<string, string>();
  readonly #sourceOf = new Map<string, string>();
  readonly #openedBy = new Map<string, { source: string }>();
  readonly trades: TradeRecord[] = [];
  readonly rejections: RawResult['rejections'] = [];
  readonly #curve = new Downsampler(2000);
  readonly #dd = new DrawdownTracker();
  readonly #daily: [number, number][] = [];
  readonly #prices = new Map<string, Downsampler>();
  readonly #marks = new Map<string, Fixed>();
  #day: number;
  #lastTs: number;
  #lastEquity: number;
  #exposureMs = 0;
  #open = false;
  /** A fill since the last event (equity may have moved while flat: fees, a close). */
  #changed = false;
  refusedTicks = 0;

  constructor(initial: number, startTs: number, symbols: readonly string[]) {
    this.#initial = initial;
    this.ledger = new Ledger(fx(initial));
    this.#day = Math.floor(startTs / DAY_MS);
    this.#lastTs = startTs;
    this.#lastEquity = initial;
    for (const s of symbols) this.#prices.set(s, new Downsampler(1500));
    this.#curve.add(startTs, initial);
    this.#dd.add(startTs, initial);
  }

  /** Symbols with exit levels armed on the risk side (from trade.exit.levels). */
  readonly armed = new Set<string>();

  equity(): number {
    return toNumber(this.ledger.equity());
  }

  isFlat(symbol: string): boolean {
    return this.ledger.quantity(symbol) === 0n;
  }

  /** Time moves to this tick (before its price is judged). */
  onTime(tick: ReplayTick): void {
    this.#roll(tick.ts);
    this.#prices.get(tick.symbol)?.add(tick.ts, tick.price);
  }

  /** A price the tick gate accepted (as every service's gate does): the mark of an open position. */
  onPrice(symbol: string, price: Fixed): void {
    this.#marks.set(symbol, price);
    if (!this.isFlat(symbol)) this.ledger.setMark(symbol, price);
  }

  /** Day boundaries crossed since the last event: the equity held over them. */
  #roll(ts: number): void {
    const day = Math.floor(ts / DAY_MS);
    while (this.#day < day) {
      this.#day += 1;
      this.#daily.push([this.#day * DAY_MS, this.#lastEquity]);
    }
    if (this.#open) this.#exposureMs += ts - this.#lastTs;
    this.#lastTs = ts;
  }

  afterEvent(ts: number): void {
    this.#open = this.ledger.openPositionCount() > 0;
    if (!this.#open && !this.#changed) return;
    this.#changed = false;
    const equity = toNumber(this.ledger.equity());
    if (equity !== this.#lastEquity || this.#open) {
      this.#curve.add(ts, equity);
      this.#dd.add(ts, equity);
    }
    this.#lastEquity = equity;
  }

  async read(bus: EmbeddedBus): Promise<void> {
    for (const topic of [TOPICS.safe, TOPICS.rejected, TOPICS.execution, TOPICS.exitLevels, `${TOPICS.tick}.dlq`]) {
      for (;;) {
        const entries = await bus.readAfter(topic, this.#after.get(topic) ?? '0-0', 1000);
        for (const entry of entries) this.#onEntry(topic, JSON.parse(entry.fields.payload ?? 'null') as unknown);
        if (entries.length > 0) this.#after.set(topic, entries[entries.length - 1]!.id);
        if (entries.length < 1000) break;
      }
    }
  }

  #onEntry(topic: string, payload: unknown): void {
    if (topic === TOPICS.safe) {
      const order = payload as RiskApprovedSignal;
      this.#sourceOf.set(order.signal_id, order.source);
      return;
    }
    if (topic === TOPICS.rejected) {
      const r = payload as RiskRejection;
      if (this.rejections.length < MAX_REJECTION_SAMPLES) this.rejections.push({ ts: r.ts, symbol: r.symbol, action: r.action, source: r.source, reasons: r.reasons });
      return;
    }
    if (topic === TOPICS.exitLevels) {
      const levels = payload as ExitLevels;
      if (levels.cause === 'cleared') this.armed.delete(levels.symbol);
      else this.armed.add(levels.symbol);
      return;
    }
    if (topic !== TOPICS.execution) {
      this.refusedTicks += 1;
      return;
    }
    const result = payload as ExecutionResult;
    const source = this.#sourceOf.get(result.signal_id) ?? result.origin;
    this.#sourceOf.delete(result.signal_id);
    if (result.status !== 'FILLED') return;
    const before = this.ledger.quantity(result.symbol);
    const mark = this.#marks.get(result.symbol);
    if (mark !== undefined) this.ledger.setMark(result.symbol, mark);
    const effect = this.ledger.applyFill(ledgerFillOf(result));
    this.#changed = true;
    const trip = effect.closedRoundTrip;
    if (trip) {
      const opened = this.#openedBy.get(result.symbol);
      this.trades.push({
        symbol: trip.symbol,
        side: trip.side,
        entry_ts: trip.openedTs,
        entry_price: toNumber(trip.entryAvg),
        exit_ts: trip.closedTs,
        exit_price: toNumber(trip.closeAvg),
        quantity: toNumber(trip.quantity),
        gross_pnl_usd: toNumber(trip.gross),
        fees_usd: toNumber(trip.fees),
        net_pnl_usd: toNumber(trip.net),
        exit_reason: trip.exitReason ?? 'signal',
        source: opened?.source ?? 'unknown',
      });
      this.#openedBy.delete(result.symbol);
    }
    if (effect.opened || (before === 0n && effect.position.quantity !== 0n)) this.#openedBy.set(result.symbol, { source });
  }

  finish(endTs: number): Pick<RawResult, 'initialBalance' | 'finalBalance' | 'finalEquity' | 'fees' | 'trades' | 'equityCurve' | 'dailyEquity' | 'drawdown' | 'exposureMs' | 'rejections' | 'prices'> {
    this.#roll(endTs);
    const equity = toNumber(this.ledger.equity());
    this.#curve.add(endTs, equity);
    this.#dd.add(endTs, equity);
    const daily = [...this.#daily];
    if (daily.length === 0 || daily[daily.length - 1]![0] !== endTs) daily.push([endTs, equity]);
    return {
      initialBalance: this.#initial,
      finalBalance: toNumber(this.ledger.balance()),
      finalEquity: equity,
      fees: toNumber(this.ledger.feesPaid()),
      trades: this.trades,
      equityCurve: this.#curve.finish(),
      dailyEquity: daily,
      drawdown: this.#dd.result(endTs),
      exposureMs: this.#exposureMs,
      rejections: this.rejections,
      prices: Object.fromEntries([...this.#prices].map(([s, d]) => [s, d.finish()])),
    };
  }
}
