/**
 * The Position Monitor (SPEC §6): consumes trade.execution.res, market.tick,
 * trade.exit.levels and trade.signal.decisions (group `position-monitor`), keeps the books with the accounting core, publishes a
 * PositionUpdate on every fill at once and for every open position each
 * `mark_interval_ms`, and closes positions by hand through the risk gate.
 */
import { randomUUID } from 'node:crypto';
import { RefusedEntry, type Delivery, type Outbound } from '../../bus/bus.js';
import { GROUPS, TOPICS } from '../../bus/topics.js';
import { toNumber } from '../../core/fixed.js';
import { instrumentTable, type InstrumentTable } from '../../core/instruments.js';
import { priceTick, type SetPriceResult } from '../../core/market.js';
import { checkTickPrice } from '../../core/tick-rules.js';
import type { DecisionCounts, ExecutionResult, ExitLevels, ModelDrift, PriceTick, RiskApprovedSignal, RiskRejection, TradeSignal } from '../../core/messages.js';
import { createMonitorMetrics, type MonitorMetrics } from '../../platform/metrics.js';
import { realScheduler, type Cancel } from '../../platform/scheduler.js';
import { ServiceHost, payloadString, type ServiceDeps } from '../common/host.js';
import { refuseIfRefused, tickGateFor } from '../common/ticks.js';
import { RETIRED_TOPICS, countsFromDecisions, retireDecisionGroups } from './retire.js';
import { MONITOR_SNAPSHOT_VERSION, MonitorState, type FillOutcome } from './state.js';

/**
 * The input topics, in the order a batch's entries are handled. The risk service's
 * decisions are read only to count them per source (GET /sources), as one small message
 * per risk batch.
 */
const INPUT_TOPICS = [TOPICS.tick, TOPICS.execution, TOPICS.exitLevels, TOPICS.decisions];

/** How far back trade.execution.res is read at start to rebuild the duplicate guard. */
const GUARD_REBUILD_ENTRIES = 50_000;
export const CLOSE_TIMEOUT_MS = 5000;

export type CloseResult =
  | { kind: 'filled'; fill: ExecutionResult; realized_pnl_usd: number; position: unknown }
  | { kind: 'not_open' }
  | { kind: 'rejected'; reason: string; signal_id: string }
  | { kind: 'timeout'; signal_id: string; risk_port: number; execution_port: number };

interface Waiter {
  resolve: (value: { result: ExecutionResult; outcome: FillOutcome }) => void;
}

export class MonitorService {
  readonly state: MonitorState;
  readonly metrics: MonitorMetrics;
  readonly host: ServiceHost;
  private cancelMarks?: Cancel;
  private marking = false;
  private startedAt = 0;
  private readonly waiters = new Map<string, Waiter>();
  private readonly instruments: InstrumentTable;

  constructor(private readonly deps: ServiceDeps) {
    this.instruments = instrumentTable(deps.config.instruments);
    const { config } = deps;
    this.state = new MonitorState(
      config.account.initial_balance_usd,
      undefined,
      tickGateFor(config),
      config.risk.inflight_timeout_ms + config.market.max_clock_skew_ms,
      {
        referenceTrades: config.feedback.reference_trades,
        recentTrades: config.feedback.recent_trades,
        ksAlpha: config.feedback.ks_alpha,
      },
    );
    this.metrics = createMonitorMetrics();
    this.host = new ServiceHost(deps, {
      service: 'monitor',
      group: GROUPS.monitor,
      topics: INPUT_TOPICS,
      handle: (d) => this.handle(d),
      snapshot: () => this.state.toSnapshot(),
      snapshotJson: () => this.state.snapshotJson(),
      restore: (s) => this.state.restore(s),
      snapshotVersion: MONITOR_SNAPSHOT_VERSION,
      rebuild: () => this.rebuild(),
      metrics: this.metrics,
      readGauges: () => this.metrics.observe(this.state.metricsReading()),
    });
  }

  async start(): Promise<void> {
    const { bus, clock, config, logger } = this.deps;
    this.startedAt = clock.now();
    const { restored } = await this.host.start();
    await this.retireOlderGroups(restored);
    for (const entry of await bus.readLatest(TOPICS.execution, GUARD_REBUILD_ENTRIES)) {
      const orderId = payloadString(entry.fields.payload, 'order_id');
      if (orderId) this.state.rememberApplied(orderId, entry.id);
    }
    // And every result within the time window, whatever the count (see MonitorState).
    const windowMs = config.risk.inflight_timeout_ms + config.market.max_clock_skew_ms;
    for (let after = `${Math.max(0, this.startedAt - windowMs)}-0`; ; ) {
      const page = await bus.readAfter(TOPICS.execution, after, 10_000);
      for (const entry of page) {
        const orderId = payloadString(entry.fields.payload, 'order_id');
        if (orderId) this.state.rememberApplied(orderId, entry.id, Number(entry.id.split('-')[0]) + windowMs);
      }
      if (page.length < 10_000) break;
      after = page[page.length - 1]!.id;
    }
    this.host.consume();
    if (config.monitor.mark_interval_ms > 0) {
      this.cancelMarks = (this.deps.scheduler ?? realScheduler).every(config.monitor.mark_interval_ms, () => this.publishMarks());
    }
    logger.info({ open_positions: this.state.openPositionCount() }, 'position monitor started');
  }

  /**
   * An older monitor's groups on trade.signal.safe / .rejected (it counted decisions
   * there): what they had not read is counted, then they go (./retire.ts). One log line.
   */
  private async retireOlderGroups(restored: boolean): Promise<void> {
    const result = await retireDecisionGroups(this.deps.bus, {
      includePending: restored,
      count: (topic, message) => {
        if (topic === TOPICS.safe) this.state.onApproved(message as RiskApprovedSignal);
        else this.state.onRejected(message as RiskRejection);
      },
      writeState: (write) => this.host.writeStateWith(write),
    });
    if (result === null) return;
    this.deps.logger.info(
      { retired_groups: result.retired, counted: result.counted, decisions_after: result.decisionsAfter },
      result.alreadyCounting
        ? `upgrade: removed group ${GROUPS.monitor} from ${result.retired.join(', ')} (${TOPICS.decisions} is already read)`
        : `upgrade: counted ${result.counted} decisions group ${GROUPS.monitor} had not read on ${result.retired.join(', ')}, removed it there; decisions are counted from ${TOPICS.decisions} after ${result.decisionsAfter}`,
    );
  }

  /**
   * Without a usable snapshot: the books from every fill and tick the group was handed
   * (through the tick gate and the ledger checks: what they refused was dead-lettered and
   * is skipped), each position's latest armed exit levels from trade.exit.levels, and the
   * decisions per source from trade.signal.decisions (and from trade.signal.safe /
   * .rejected, as far as an older monitor's groups there had read: see retireOlderGroups).
   */
  private async rebuild(): Promise<Record<string, number>> {
    const now = this.deps.clock.now();
    // An older monitor's decision groups, folded only while the counts are not read yet.
    const topics = (await countsFromDecisions(this.deps.bus)) ? INPUT_TOPICS : [...INPUT_TOPICS, ...RETIRED_TOPICS];
    const folded = await this.host.replayDelivered(topics, ({ topic, id, message }) => {
      if (topic === TOPICS.tick) {
        refuseIfRefused(this.state.onTick(message as PriceTick, now));
      } else if (topic === TOPICS.decisions) {
        this.state.onDecisions(message as DecisionCounts);
      } else if (topic === TOPICS.safe) {
        this.state.onApproved(message as RiskApprovedSignal);
      } else if (topic === TOPICS.rejected) {
        this.state.onRejected(message as RiskRejection);
      } else if (topic === TOPICS.exitLevels) {
        this.state.onExitLevels(message as ExitLevels);
      } else {
        const outcome = this.state.onExecution(message as ExecutionResult, id, now);
        if (outcome.kind === 'refused') throw new RefusedEntry(outcome.reason);
      }
    });
    return {
      [`entries of ${TOPICS.execution}`]: folded.get(TOPICS.execution) ?? 0,
      [`entries of ${TOPICS.tick}`]: folded.get(TOPICS.tick) ?? 0,
      [`entries of ${TOPICS.exitLevels}`]: folded.get(TOPICS.exitLevels) ?? 0,
      [`entries of ${TOPICS.decisions}`]: folded.get(TOPICS.decisions) ?? 0,
      // Non-zero only on the first start after an upgrade (an older monitor's groups).
      ...Object.fromEntries(RETIRED_TOPICS.flatMap((topic) => (folded.get(topic) ? [[`entries of ${topic}`, folded.get(topic)!]] : []))),
      'open positions': this.state.openPositionCount(),
    };
  }

  private handle(delivery: Delivery<unknown>): Outbound[] | void {
    const now = this.deps.clock.now();
    if (delivery.topic === TOPICS.tick) {
      const tick = delivery.message as PriceTick;
      const verdict = this.state.onTick(tick, now);
      refuseIfRefused(verdict);
      if (verdict.kind === 'accept' && this.deps.config.monitor.publish_on_tick && this.state.hasOpenPosition(tick.symbol)) {
        return [{ topic: TOPICS.position, payload: this.state.update(tick.symbol, 'mark', now) }];
      }
      return;
    }
    if (delivery.topic === TOPICS.decisions) {
      this.state.onDecisions(delivery.message as DecisionCounts);
      return;
    }
    if (delivery.topic === TOPICS.exitLevels) {
      // Shown on the position at once (dashboards read trade.position.update).
      const levels = delivery.message as ExitLevels;
      this.state.onExitLevels(levels);
      if (!this.state.hasOpenPosition(levels.symbol)) return;
      return [{ topic: TOPICS.position, payload: this.state.update(levels.symbol, 'mark', now) }];
    }
    const result = delivery.message as ExecutionResult;
    const outcome = this.state.onExecution(result, delivery.id, now);
    if (outcome.kind === 'refused') throw new RefusedEntry(outcome.reason);
    this.waiters.get(result.signal_id)?.resolve({ result, outcome });
    if (outcome.kind === 'duplicate') {
      this.metrics.outcomes.inc({ outcome: 'duplicate' });
      return;
    }
    if (outcome.kind === 'rejected') {
      this.metrics.outcomes.inc({ outcome: 'rejected_fill' });
      return;
    }
    this.metrics.outcomes.inc({ outcome: 'applied' });
    const out: Outbound[] = [{ topic: TOPICS.position, payload: outcome.update }];
    // Written in the batch's transaction with the snapshot that records the close: once per round trip.
    if (outcome.feedback !== null) {
      out.push({ topic: TOPICS.feedback, payload: outcome.feedback });
      this.metrics.feedbackMessages.inc();
    }
    for (const change of outcome.drift) {
      out.push({ topic: TOPICS.drift, payload: change });
      this.reportDrift(change);
    }
    return out;
  }

  /** One warning per drift state change (they are rare: at most one per source, test and trade). */
  private reportDrift(change: ModelDrift): void {
    this.metrics.driftChanges.inc({ test: change.test, state: change.state });
    const figures =
      change.test === 'ks'
        ? { statistic: change.statistic, p_value: change.p_value, alpha: change.alpha }
        : { realized_win_rate: change.statistic, predicted: change.predicted, interval: change.interval };
    const message =
      change.state === 'drift'
        ? `model drift: source ${change.source} fails the ${change.test} test`
        : `model drift over: source ${change.source} passes the ${change.test} test again`;
    this.deps.logger.warn({ source: change.source, test: change.test, state: change.state, ...figures, reference_trades: change.reference_trades, recent_trades: change.recent_trades }, message);
  }

  /** GET /sources. */
  sources() {
    const { feedback, risk } = this.deps.config;
    return {
      sources: this.state.sourceReports(risk.min_confidence),
      calibration_bucket_width: 0.05,
      min_confidence: risk.min_confidence,
      drift_windows: { reference_trades: feedback.reference_trades, recent_trades: feedback.recent_trades, ks_alpha: feedback.ks_alpha },
    };
  }

  /**
   * Mark-to-market: one update per open position, with the portfolio. Made and
   * published between batches, so in trade.position.update it can never land after
   * the update of a fill it predates (a closed position would reappear to readers).
   * Skipped while the previous round is still being published, and while the bus does
   * not answer (a publish queued for a reconnect would hold up the batches, and stop()).
   */
  async publishMarks(): Promise<number> {
    if (this.marking) return 0;
    this.marking = true;
    try {
      return await this.host.exclusive(async () => {
        const updates = this.state.markUpdates(this.deps.clock.now());
        if (updates.length === 0 || !(await this.deps.bus.ping())) return 0;
        await this.deps.bus.publishMany(updates.map((payload) => ({ topic: TOPICS.position, payload })));
        return updates.length;
      });
    } catch (err) {
      this.deps.logger.warn({ err }, 'publishing mark-to-market updates failed');
      return 0;
    } finally {
      this.marking = false;
    }
  }

  /**
   * POST /close/{symbol}: a CLOSE signal through the risk gate (which makes it a
   * reduce-only close), then waits for its fill.
   */
  async close(symbol: string, timeoutMs = CLOSE_TIMEOUT_MS): Promise<CloseResult> {
    if (!this.state.hasOpenPosition(symbol)) return { kind: 'not_open' };
    const { bus, clock } = this.deps;
    const signal: TradeSignal = {
      schema_version: 1,
      signal_id: `close-${randomUUID()}`,
      symbol,
      action: 'CLOSE',
      confidence: 1,
      source: 'manual_close',
      ts: clock.now(),
    };
    const filled = new Promise<{ result: ExecutionResult; outcome: FillOutcome } | null>((resolve) => {
      const timer = setTimeout(() => resolve(null), timeoutMs);
      this.waiters.set(signal.signal_id, {
        resolve: (value) => {
          clearTimeout(timer);
          resolve(value);
        },
      });
    });
    try {
      await bus.publish(TOPICS.signal, signal);
      const outcome = await filled;
      if (!outcome) {
        const rejection = await this.findRejection(signal.signal_id);
        return rejection
          ? { kind: 'rejected', reason: rejection.reasons.join(', '), signal_id: signal.signal_id }
          : { kind: 'timeout', signal_id: signal.signal_id, risk_port: this.deps.config.ports.risk, execution_port: this.deps.config.ports.execution };
      }
      const { result, outcome: applied } = outcome;
      if (result.status !== 'FILLED') return { kind: 'rejected', reason: result.reject_reason ?? 'REJECTED', signal_id: signal.signal_id };
      const roundTrip = applied.kind === 'applied' ? applied.effect.closedRoundTrip : null;
      return {
        kind: 'filled',
        fill: result,
        realized_pnl_usd: roundTrip ? toNumber(roundTrip.net) : 0,
        position: applied.kind === 'applied' ? applied.update : null,
      };
    } finally {
      this.waiters.delete(signal.signal_id);
    }
  }

  private async findRejection(signalId: string): Promise<RiskRejection | undefined> {
    for (const entry of await this.deps.bus.readLatest(TOPICS.rejected, 500)) {
      try {
        const value = JSON.parse(entry.fields.payload ?? '') as RiskRejection;
        if (value.signal_id === signalId) return value;
      } catch {
        // not ours to judge
      }
    }
    return undefined;
  }

  /**
   * POST /prices/{symbol} on the monitor: publishes a manual tick (applied when it comes
   * back). Rounded to the tick and checked exactly as the execution service's POST /prices
   * does, so every service marks at the same price.
   */
  async publishPrice(symbol: string, price: number): Promise<{ ok: true; tick: PriceTick } | Extract<SetPriceResult, { ok: false }>> {
    const result = checkTickPrice(this.instruments, symbol, price);
    if (!result.ok) return { ok: false, code: result.code, message: result.reason };
    const now = this.deps.clock.now();
    const tick = priceTick(symbol, result.price, this.state.tickGate.stampFor(symbol, now), 'manual');
    await this.deps.bus.publish(TOPICS.tick, tick);
    return { ok: true, tick };
  }

  positions() {
    return this.state.positions(this.deps.clock.now());
  }

  async health() {
    const bus = await this.host.busConnected();
    return {
      status: bus ? 'ok' : 'degraded',
      service: 'position-monitor',
      bus: { kind: this.deps.bus.kind, connected: bus },
      open_positions: this.state.openPositionCount(),
      unrealized_pnl_usd: this.state.unrealizedPnl(),
      /** Consumer groups far behind (the stream grows until they catch up); still 200. */
      warnings: this.host.streamWarnings(),
      uptime_s: Math.round((this.deps.clock.now() - this.startedAt) / 1000),
    };
  }

  async stop(): Promise<void> {
    this.cancelMarks?.();
    await this.host.stop();
  }
}
