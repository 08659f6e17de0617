/**
 * The paper Execution service (SPEC §5): consumes trade.signal.safe and market.tick
 * (group `execution`), fills each approved order once on paper, publishes results to
 * trade.execution.res, and runs the market simulator that publishes market.tick.
 */
import type { Delivery, Outbound } from '../../bus/bus.js';
import { GROUPS, TOPICS } from '../../bus/topics.js';
import { instrumentTable } from '../../core/instruments.js';
import type { ExecutionResult, PriceTick, RiskApprovedSignal } from '../../core/messages.js';
import { createServiceMetrics, type ServiceMetrics } from '../../platform/metrics.js';
import { ServiceHost, payloadString, type ServiceDeps } from '../common/host.js';
import { EXECUTION_SNAPSHOT_VERSION, ExecutionState } from './state.js';

/** How far back trade.execution.res is read at start to rebuild the duplicate guard. */
const GUARD_REBUILD_ENTRIES = 50_000;

export class ExecutionService {
  readonly state: ExecutionState;
  readonly metrics: ServiceMetrics;
  readonly host: ServiceHost;
  private priceTimer?: NodeJS.Timeout;
  private startedAt = 0;

  constructor(private readonly deps: ServiceDeps) {
    const { config } = deps;
    this.state = new ExecutionState({
      instruments: instrumentTable(config.instruments),
      seed: config.seed,
      ...config.execution,
    });
    this.metrics = createServiceMetrics('execution');
    this.host = new ServiceHost(deps, {
      service: 'execution',
      group: GROUPS.execution,
      topics: [TOPICS.tick, TOPICS.safe],
      handle: (d) => this.handle(d),
      snapshot: () => this.state.toSnapshot(),
      restore: (s) => this.state.restore(s),
      snapshotVersion: EXECUTION_SNAPSHOT_VERSION,
      rebuild: () => this.rebuild(),
      metrics: this.metrics,
    });
  }

  async start(): Promise<void> {
    const { bus, clock, config, logger } = this.deps;
    this.startedAt = clock.now();
    await this.host.start();
    for (const entry of await bus.readLatest(TOPICS.execution, GUARD_REBUILD_ENTRIES)) {
      const signalId = payloadString(entry.fields.payload, 'signal_id');
      if (signalId) this.state.rememberFilled(signalId);
    }
    // Every price at start-up, so every service has a mark before the first order.
    await bus.publishMany(this.state.currentTicks(clock.now()).map(tickOut));
    this.host.consume();
    if (config.execution.price_interval_ms > 0) {
      this.priceTimer = setInterval(() => void this.stepPrices(), config.execution.price_interval_ms);
      this.priceTimer.unref();
    }
    logger.info({ prices: this.state.prices() }, 'execution service started');
  }

  /**
   * Without a usable snapshot: the latest prices from market.tick (the fill guard comes
   * from trade.execution.res as always). Statistics restart; the simulator's step count
   * too, so later simulated prices differ from an uninterrupted run.
   */
  private async rebuild(): Promise<Record<string, number>> {
    const folded = await this.host.replayDelivered([TOPICS.tick], ({ message }) => this.state.onTick(message as PriceTick));
    return { [`entries of ${TOPICS.tick}`]: folded.get(TOPICS.tick) ?? 0 };
  }

  private handle(delivery: Delivery<unknown>): Outbound[] | void {
    if (delivery.topic === TOPICS.tick) {
      this.state.onTick(delivery.message as PriceTick);
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
      this.metrics.outcomes.inc({ outcome: 'rejected' });
      this.deps.logger.warn({ signal_id: result.signal_id, reason: result.reject_reason }, 'order rejected');
    }
  }

  private async stepPrices(): Promise<void> {
    const ticks = this.state.step(this.deps.clock.now());
    if (ticks.length === 0) return;
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

  async health() {
    const bus = await this.host.busConnected();
    return {
      status: bus ? 'ok' : 'degraded',
      service: 'execution',
      mode: 'paper',
      bus: { kind: this.deps.bus.kind, connected: bus },
      fill_rate: this.state.fillRate(),
      /** Consumer groups far behind (the stream grows until they catch up); still 200. */
      warnings: this.host.streamWarnings(),
      uptime_s: Math.round((this.deps.clock.now() - this.startedAt) / 1000),
    };
  }

  async stop(): Promise<void> {
    if (this.priceTimer) clearInterval(this.priceTimer);
    await this.host.stop();
  }
}

function tickOut(tick: PriceTick): Outbound {
  return { topic: TOPICS.tick, payload: tick };
}
