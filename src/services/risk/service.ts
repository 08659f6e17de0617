/**
 * The Risk Safety service (SPEC §4): consumes trade.signal.v5, trade.execution.res and
 * market.tick (group `risk-safety`); the pure governor decides each signal once;
 * approvals go to trade.signal.safe, rejections to trade.signal.rejected.
 */
import { compareIds, type Delivery, type Outbound, type StreamEntry } from '../../bus/bus.js';
import { GROUPS, TOPICS } from '../../bus/topics.js';
import { instrumentTable } from '../../core/instruments.js';
import type { ExecutionResult, PriceTick, RiskApprovedSignal, TradeSignal } from '../../core/messages.js';
import { createServiceMetrics, type ServiceMetrics } from '../../platform/metrics.js';
import { ServiceHost, decodeTopic, payloadString, type ServiceDeps } from '../common/host.js';
import { RISK_SNAPSHOT_VERSION, RiskState } from './state.js';

/** How far back the decision streams are read at start to rebuild the duplicate guard. */
const GUARD_REBUILD_ENTRIES = 50_000;
const INFLIGHT_SWEEP_MS = 1000;

export class RiskService {
  readonly state: RiskState;
  readonly metrics: ServiceMetrics;
  readonly host: ServiceHost;
  private sweepTimer?: NodeJS.Timeout;
  private startedAt = 0;

  constructor(private readonly deps: ServiceDeps) {
    const { config } = deps;
    this.state = new RiskState({
      initialBalance: config.account.initial_balance_usd,
      instruments: instrumentTable(config.instruments),
      limits: config.risk,
      execution: config.execution,
      seed: config.seed,
      inflightTimeoutMs: config.risk.inflight_timeout_ms,
    });
    this.metrics = createServiceMetrics('risk');
    this.host = new ServiceHost(deps, {
      service: 'risk',
      group: GROUPS.risk,
      // Ticks and fills first, so a batch's signals are decided on the freshest books.
      topics: [TOPICS.tick, TOPICS.execution, TOPICS.signal],
      handle: (d) => this.handle(d),
      snapshot: () => this.state.toSnapshot(),
      snapshotJson: () => this.state.snapshotJson(),
      restore: (s) => this.state.restore(s),
      snapshotVersion: RISK_SNAPSHOT_VERSION,
      rebuild: () => this.rebuild(),
      metrics: this.metrics,
    });
  }

  async start(): Promise<void> {
    const { bus, logger } = this.deps;
    this.startedAt = this.deps.clock.now();
    await this.host.start();
    for (const topic of [TOPICS.safe, TOPICS.rejected]) {
      for (const entry of await bus.readLatest(topic, GUARD_REBUILD_ENTRIES)) {
        const signalId = payloadString(entry.fields.payload, 'signal_id');
        if (signalId) this.state.rememberDecided(signalId);
      }
    }
    // A skipped HOLD publishes nothing, so its id is found in the input stream instead:
    // every HOLD at or before the snapshot's last signal entry was already handled.
    const watermark = this.state.signalWatermark;
    if (watermark !== null) {
      for (const entry of await bus.readLatest(TOPICS.signal, GUARD_REBUILD_ENTRIES)) {
        if (compareIds(entry.id, watermark) > 0) continue;
        const holdId = heldSignalId(entry);
        if (holdId) this.state.rememberDecided(holdId);
      }
    }
    this.host.consume();
    this.sweepTimer = setInterval(() => this.sweepInflight(), INFLIGHT_SWEEP_MS);
    this.sweepTimer.unref();
    logger.info({ trading_state: this.state.state, inflight: this.state.inflightCount() }, 'risk safety service started');
  }

  /**
   * Without a usable snapshot: the confirmed books from every fill and tick the group was
   * handed, then the day's entries and the orders still in flight from trade.signal.safe.
   * Statistics restart; the peak equity is the highest seen while folding.
   */
  private async rebuild(): Promise<Record<string, number>> {
    const resolved = new Set<string>();
    const folded = await this.host.replayDelivered([TOPICS.tick, TOPICS.execution], ({ topic, message }) => {
      if (topic === TOPICS.tick) {
        this.state.onTick(message as PriceTick);
        return;
      }
      const result = message as ExecutionResult;
      resolved.add(result.signal_id);
      this.state.onExecution(result);
    });
    const now = this.deps.clock.now();
    const approvals = (await this.deps.bus.readLatest(TOPICS.safe, GUARD_REBUILD_ENTRIES)).reverse();
    for (const entry of approvals) {
      let order: RiskApprovedSignal;
      try {
        order = decodeTopic(TOPICS.safe, entry.fields, entry.id) as RiskApprovedSignal;
      } catch {
        continue;
      }
      const inFlight = !resolved.has(order.signal_id) && now - order.approved_ts < this.deps.config.risk.inflight_timeout_ms;
      this.state.noteApproval(order, inFlight);
    }
    return {
      [`entries of ${TOPICS.execution}`]: folded.get(TOPICS.execution) ?? 0,
      [`entries of ${TOPICS.tick}`]: folded.get(TOPICS.tick) ?? 0,
      'orders in flight': this.state.inflightCount(),
    };
  }

  private handle(delivery: Delivery<unknown>): Outbound[] | void {
    switch (delivery.topic) {
      case TOPICS.tick:
        this.state.onTick(delivery.message as PriceTick);
        return;
      case TOPICS.execution:
        this.state.onExecution(delivery.message as ExecutionResult);
        return;
      default:
        this.state.noteSignalEntry(delivery.id);
        return this.decide(delivery.message as TradeSignal);
    }
  }

  private decide(signal: TradeSignal): Outbound[] | void {
    const wasHalted = this.state.isHalted();
    const outcome = this.state.onSignal(signal, this.deps.clock.now());
    if (!wasHalted && this.state.isHalted()) {
      this.deps.logger.error({ drawdown: this.state.stats(this.deps.clock.now()).drawdown_pct }, 'circuit breaker: trading HALTED until POST /resume');
    }
    switch (outcome.kind) {
      case 'duplicate':
        this.metrics.outcomes.inc({ outcome: 'duplicate' });
        return;
      case 'skip':
        this.metrics.outcomes.inc({ outcome: 'skipped' });
        return;
      case 'reject':
        for (const reason of outcome.message.reasons) this.metrics.outcomes.inc({ outcome: `rejected:${reason}` });
        this.deps.logger.warn(
          { signal_id: signal.signal_id, symbol: signal.symbol, action: signal.action, reasons: outcome.message.reasons },
          'signal rejected',
        );
        return [{ topic: TOPICS.rejected, payload: outcome.message }];
      case 'approve':
        this.metrics.outcomes.inc({ outcome: 'approved' });
        return [{ topic: TOPICS.safe, payload: outcome.message }];
    }
  }

  /** Synchronous, so it never interleaves with a batch; persisted with the next commit. */
  private sweepInflight(): void {
    const expired = this.state.expireInflight(this.deps.clock.now());
    for (const order of expired) {
      this.deps.logger.warn(
        { signal_id: order.signal_id, symbol: order.symbol, approved_ts: order.approved_ts },
        'approved order got no execution result in time; it no longer counts as in flight',
      );
    }
  }

  async resume() {
    await this.host.mutate(() => this.state.resume());
    this.deps.logger.warn('trading resumed by operator; peak equity restarts at current equity');
    return this.stats();
  }

  async reset() {
    await this.host.mutate(() => this.state.resetStatistics());
    return this.stats();
  }

  stats() {
    return this.state.stats(this.deps.clock.now());
  }

  async health() {
    const bus = await this.host.busConnected();
    return {
      status: bus ? 'ok' : 'degraded',
      service: 'risk-safety',
      bus: { kind: this.deps.bus.kind, connected: bus },
      trading_state: this.state.state,
      approval_rate: this.state.approvalRate(),
      /** Consumer groups far behind (the stream grows until they catch up); still 200. */
      warnings: this.host.streamWarnings(),
      uptime_s: Math.round((this.deps.clock.now() - this.startedAt) / 1000),
    };
  }

  async stop(): Promise<void> {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    await this.host.stop();
  }
}

/**
 * The signal_id of a trade.signal.v5 entry holding a HOLD (as the codec would give it:
 * the producer's id, else `sig-<entry id>`); undefined for anything else.
 */
function heldSignalId(entry: StreamEntry): string | undefined {
  let payload: unknown;
  try {
    payload = JSON.parse(entry.fields.payload ?? '');
  } catch {
    return undefined;
  }
  if (typeof payload !== 'object' || payload === null || (payload as { action?: unknown }).action !== 'HOLD') return undefined;
  const id = (payload as { signal_id?: unknown }).signal_id;
  return typeof id === 'string' ? id : `sig-${entry.id}`;
}
