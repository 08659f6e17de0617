/**
 * The paper Execution service (SPEC §5): consumes trade.signal.safe and market.tick
 * (group `execution`), fills each approved order once on paper, publishes results to
 * trade.execution.res, and runs the price source (`market.source`: the simulator or a
 * live feed) whose ticks it publishes to market.tick.
 */
import type { Delivery, Outbound } from '../../bus/bus.js';
import { GROUPS, TOPICS } from '../../bus/topics.js';
import { rejectCodeOf } from '../../core/fills.js';
import { instrumentTable } from '../../core/instruments.js';
import type { RunningPriceSource } from '../../core/market.js';
import { ExecutionResult as ExecutionResultSchema, type ExecutionResult, type PriceTick, type RiskApprovedSignal } from '../../core/messages.js';
import { createPriceSource } from '../../feeds/factory.js';
import { staleAfterMs } from '../../platform/config.js';
import { createExecutionMetrics, createFeedMetrics, type ExecutionMetrics } from '../../platform/metrics.js';
import { ServiceHost, payloadString, type ServiceDeps } from '../common/host.js';
import { refuseIfRefused, tickGateFor } from '../common/ticks.js';
import { EXECUTION_SNAPSHOT_VERSION, ExecutionState } from './state.js';

/** How far back trade.execution.res is read at start to rebuild the duplicate guard. */
const GUARD_REBUILD_ENTRIES = 50_000;

export class ExecutionService {
  readonly state: ExecutionState;
  readonly metrics: ExecutionMetrics;
  readonly host: ServiceHost;
  readonly source: RunningPriceSource;
  private startedAt = 0;

  constructor(private readonly deps: ServiceDeps) {
    const { config } = deps;
    this.state = new ExecutionState({
      instruments: instrumentTable(config.instruments),
      seed: config.seed,
      ...config.execution,
      spread_pct: config.market.simulator_spread_pct,
      external: config.market.source !== 'simulator',
      tickGate: tickGateFor(config),
      expiryGraceMs: config.market.max_clock_skew_ms,
    });
    this.metrics = createExecutionMetrics();
    // The simulator is the feed, and it is always connected (a live feed sets its own source).
    if (config.market.source === 'simulator') this.metrics.feedConnected.set({ source: 'simulator' }, 1);
    this.source = createPriceSource(config, {
      clock: deps.clock,
      logger: deps.logger,
      metrics: createFeedMetrics(this.metrics.registry, this.metrics.feedConnected),
      simulator: { step: (now) => this.state.step(now), price: (symbol) => this.state.mark(symbol) },
    });
    this.host = new ServiceHost(deps, {
      service: 'execution',
      group: GROUPS.execution,
      topics: [TOPICS.tick, TOPICS.safe],
      handle: (d) => this.handle(d),
      snapshot: () => this.state.toSnapshot(),
      snapshotJson: () => this.state.snapshotJson(),
      restore: (s) => this.state.restore(s),
      snapshotVersion: EXECUTION_SNAPSHOT_VERSION,
      rebuild: () => this.rebuild(),
      metrics: this.metrics,
      readGauges: () => this.metrics.observe({ priceTs: this.state.priceTimestamps(), now: this.deps.clock.now() }),
    });
  }

  async start(): Promise<void> {
    const { bus, clock, config, logger } = this.deps;
    this.startedAt = clock.now();
    const { restored } = await this.host.start();
    // A snapshot from before `positions` was restored: only the fold is missing (rebuild() folds it otherwise).
    if (restored && !this.state.knowsPositions) {
      const results = await this.foldPositions();
      logger.info({ results, positions: this.state.netPositions() }, 'net positions folded from trade.execution.res');
    }
    for (const entry of await bus.readLatest(TOPICS.execution, GUARD_REBUILD_ENTRIES)) {
      const signalId = payloadString(entry.fields.payload, 'signal_id');
      if (signalId) this.state.rememberFilled(signalId);
    }
    // And every order that could still be filled (its approval not yet expired), whatever
    // the count: an approval expires at most inflight_timeout_ms after it was made, and was
    // filled no earlier, so a result older than that (plus the clock grace) is safe to forget.
    const horizon = config.risk.inflight_timeout_ms + config.market.max_clock_skew_ms;
    const since = Math.max(0, this.startedAt - horizon);
    for (let after = `${since}-0`; ; ) {
      const page = await bus.readAfter(TOPICS.execution, after, 10_000);
      for (const entry of page) {
        const signalId = payloadString(entry.fields.payload, 'signal_id');
        if (signalId) this.state.rememberFilled(signalId, Number(entry.id.split('-')[0]) + horizon);
      }
      if (page.length < 10_000) break;
      after = page[page.length - 1]!.id;
    }
    // Every simulated price at start-up, so every service has a mark before the first
    // order. A live feed's symbols get theirs from its first ticks: no start price is
    // published (nor taken by any service's tick gate), so the venue's first price is
    // never refused as a jump from a configured start price.
    if (this.source.kind === 'simulator') await bus.publishMany(this.state.currentTicks(clock.now()).map(tickOut));
    this.host.consume();
    await this.source.start((ticks) => void this.publishTicks(ticks));
    logger.info({ prices: this.state.prices(), source: this.source.kind }, 'execution service started');
  }

  /**
   * Without a usable snapshot: the latest prices from market.tick (through the tick gate;
   * what it refused was dead-lettered and is skipped) and the fold of positions from
   * trade.execution.res (the fill guard comes from it as always). Statistics restart; the
   * simulator's step count too, so later simulated prices differ from an uninterrupted run.
   */
  private async rebuild(): Promise<Record<string, number>> {
    const now = this.deps.clock.now();
    const folded = await this.host.replayDelivered([TOPICS.tick], ({ message }) => refuseIfRefused(this.state.onTick(message as PriceTick, now)));
    const results = await this.foldPositions();
    return {
      [`entries of ${TOPICS.tick}`]: folded.get(TOPICS.tick) ?? 0,
      [`results of ${TOPICS.execution}`]: results,
      'open positions': Object.keys(this.state.netPositions()).length,
    };
  }

  /** This service's own fold of positions, from every result in trade.execution.res; returns how many. */
  private async foldPositions(): Promise<number> {
    const results = await this.readAllResults();
    this.state.refoldPositions(results);
    return results.length;
  }

  /** Every valid result in trade.execution.res, oldest first (it is never trimmed ahead of a snapshot). */
  private async readAllResults(): Promise<ExecutionResult[]> {
    const results: ExecutionResult[] = [];
    let after = '0';
    for (;;) {
      const page = await this.deps.bus.readAfter(TOPICS.execution, after, 10_000);
      for (const entry of page) {
        try {
          const parsed = ExecutionResultSchema.safeParse(JSON.parse(entry.fields.payload ?? ''));
          if (parsed.success) results.push(parsed.data);
        } catch {
          // not a result: it was dead-lettered when it was read
        }
      }
      if (page.length < 10_000) return results;
      after = page[page.length - 1]!.id;
    }
  }

  private handle(delivery: Delivery<unknown>): Outbound[] | void {
    if (delivery.topic === TOPICS.tick) {
      refuseIfRefused(this.state.onTick(delivery.message as PriceTick, this.deps.clock.now()));
      return;
    }
    const order = delivery.message as RiskApprovedSignal;
    const now = this.deps.clock.now();
    const outcome = this.state.onOrder(order, now);
    if (outcome.kind === 'duplicate') {
      this.metrics.outcomes.inc({ outcome: 'duplicate' });
      this.deps.logger.info({ signal_id: order.signal_id }, 'duplicate order ignored (already filled)');
      return;
    }
    this.observe(outcome.result);
    return [{ topic: TOPICS.execution, payload: outcome.result }];
  }

  private observe(result: ExecutionResult): void {
    if (result.status === 'FILLED') {
      this.metrics.outcomes.inc({ outcome: 'filled' });
      this.metrics.signalToFill.observe(Math.max(0, result.ts - result.signal_ts) / 1000);
    } else {
      this.metrics.outcomes.inc({ outcome: `rejected:${rejectCodeOf(result.reject_reason) ?? 'OTHER'}` });
      this.deps.logger.warn({ signal_id: result.signal_id, reason: result.reject_reason }, 'order rejected');
    }
  }

  private async publishTicks(ticks: PriceTick[]): Promise<void> {
    try {
      await this.deps.bus.publishMany(ticks.map(tickOut));
    } catch (err) {
      this.deps.logger.warn({ err }, 'publishing price ticks failed');
    }
  }

  /** POST /prices/{symbol}: sets the price and publishes the tick. */
  async setPrice(symbol: string, price: number) {
    const result = await this.host.mutate(() => this.state.setPrice(symbol, price, this.deps.clock.now()));
    if (result.ok && result.tick) await this.deps.bus.publish(TOPICS.tick, result.tick);
    return result;
  }

  async reset(): Promise<void> {
    await this.host.mutate(() => this.state.resetStatistics());
  }

  /**
   * Status, bus and feed. Unhealthy (503) when the bus is unreachable, or when the live
   * feed has been down longer than market.stale_after_ms (entries are refused
   * STALE_PRICE by then anyway).
   */
  async health() {
    const bus = await this.host.busConnected();
    const now = this.deps.clock.now();
    const feed = this.source.status(now);
    const limit = staleAfterMs(this.deps.config);
    const feedDown = !feed.connected && limit > 0 && feed.down_ms > limit;
    return {
      status: bus && !feedDown ? 'ok' : 'degraded',
      healthy: bus && !feedDown,
      service: 'execution',
      mode: 'paper',
      bus: { kind: this.deps.bus.kind, connected: bus },
      feed: { ...feed, stale_after_ms: limit },
      fill_rate: this.state.fillRate(),
      /** Consumer groups far behind (the stream grows until they catch up); still 200. */
      warnings: this.host.streamWarnings(),
      uptime_s: Math.round((now - this.startedAt) / 1000),
    };
  }

  async stop(): Promise<void> {
    await this.source.stop();
    await this.host.stop();
  }
}

function tickOut(tick: PriceTick): Outbound {
  return { topic: TOPICS.tick, payload: tick };
}
