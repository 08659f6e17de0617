/**
 * The Risk Safety service (SPEC §4): consumes trade.signal.v5, trade.execution.res and
 * market.tick (group `risk-safety`); the pure governor decides each signal once;
 * approvals go to trade.signal.safe, rejections to trade.signal.rejected, and each batch's
 * decisions counted per source to trade.signal.decisions (in the same transaction).
 */
import { RefusedEntry, compareIds, type Delivery, type EventBus, type Outbound, type StreamEntry } from '../../bus/bus.js';
import { GROUPS, TOPICS } from '../../bus/topics.js';
import { DecisionTally } from '../../core/decision-counts.js';
import { instrumentTable } from '../../core/instruments.js';
import type { LevelPatch } from '../../core/exits.js';
import type { ExecutionResult, ExitLevels, PriceTick, RiskApprovedSignal, RiskRejection, TradeSignal } from '../../core/messages.js';
import { staleAfterMs, type Config } from '../../platform/config.js';
import { createRiskMetrics, type RiskMetrics } from '../../platform/metrics.js';
import { realScheduler, type Cancel } from '../../platform/scheduler.js';
import { ServiceHost, decodeTopic, payloadString, type ServiceDeps } from '../common/host.js';
import { refuseIfRefused, tickGateFor } from '../common/ticks.js';
import { RISK_SNAPSHOT_OLDER_VERSIONS, RISK_SNAPSHOT_VERSION, RiskState, type RiskStateOptions } from './state.js';

/** How far back the decision streams are read at start to rebuild the duplicate guard. */
const GUARD_REBUILD_ENTRIES = 50_000;
const INFLIGHT_SWEEP_MS = 1000;
/**
 * Rejections are frequent (a model below min_confidence, a cooldown): one warning each
 * would write gigabytes a day at a few hundred signals/s, so they are logged as one count
 * by reason per interval (each is on trade.signal.rejected and in /metrics; the line per
 * signal is at debug).
 */
export const REJECTION_LOG_INTERVAL_MS = 60_000;
/** The `event` field of those lines (`quantum up` folds them into its own activity lines). */
export const REJECTIONS_EVENT = 'rejections';

/** The risk state's settings from a config (the service's, and the hot-path bench's). */
export function riskStateOptions(config: Config): RiskStateOptions {
  return {
    initialBalance: config.account.initial_balance_usd,
    instruments: instrumentTable(config.instruments),
    limits: config.risk,
    execution: config.execution,
    seed: config.seed,
    inflightTimeoutMs: config.risk.inflight_timeout_ms,
    staleAfterMs: staleAfterMs(config),
    expiryGraceMs: config.market.max_clock_skew_ms,
    tickGate: tickGateFor(config),
    exits: config.exits,
    protections: config.protections,
    maxSourceDrawdownPct: config.risk.max_source_drawdown_pct,
  };
}

export class RiskService {
  readonly state: RiskState;
  readonly metrics: RiskMetrics;
  readonly host: ServiceHost;
  private cancelSweep?: Cancel;
  private startedAt = 0;
  private checkingTimeLimits = false;
  /** Rejections since the last summary line, by reason (a signal with several reasons counts once per reason). */
  private rejectedSince = { count: 0, byReason: new Map<string, number>(), from: 0 };

  constructor(private readonly deps: ServiceDeps) {
    const { config } = deps;
    this.state = new RiskState(riskStateOptions(config));
    this.metrics = createRiskMetrics();
    this.host = new ServiceHost(deps, {
      service: 'risk',
      group: GROUPS.risk,
      // Ticks and fills first, so a batch's signals are decided on the freshest books.
      topics: [TOPICS.tick, TOPICS.execution, TOPICS.signal],
      handle: (d) => this.handle(d),
      // Each batch's (and each between-batch publication's) decisions counted per source,
      // written with them (GET /sources on the monitor).
      batchOutputs: (outputs) => decisionOutputs(outputs, this.deps.clock.now()),
      snapshot: () => this.state.toSnapshot(),
      snapshotJson: () => this.state.snapshotJson(),
      restore: (s) => this.state.restore(s),
      snapshotVersion: RISK_SNAPSHOT_VERSION,
      readsOlderVersions: RISK_SNAPSHOT_OLDER_VERSIONS,
      rebuild: () => this.rebuild(),
      metrics: this.metrics,
      readGauges: () => this.metrics.observe(this.state.metricsReading(this.deps.clock.now())),
    });
  }

  async start(): Promise<void> {
    const { bus, logger } = this.deps;
    this.startedAt = this.deps.clock.now();
    await this.host.start();
    // The duplicate guard, rebuilt whole: every decision within the time window (read by
    // stream id, which is a time), and the newest ones for the count window.
    const windowMs = this.deps.config.risk.max_signal_age_ms;
    const since = windowMs > 0 ? `${Math.max(0, this.startedAt - 2 * windowMs)}-0` : null;
    for (const topic of [TOPICS.safe, TOPICS.rejected]) {
      for (const entry of await bus.readLatest(topic, GUARD_REBUILD_ENTRIES)) {
        const signalId = payloadString(entry.fields.payload, 'signal_id');
        if (signalId) this.state.rememberDecided(signalId);
      }
      if (since === null) continue;
      await forEachEntrySince(bus, topic, since, (entry) => {
        const times = decisionTimes(topic, entry);
        if (times) this.state.rememberDecided(times.signalId, times);
      });
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
      if (since !== null) {
        await forEachEntrySince(bus, TOPICS.signal, since, (entry) => {
          if (compareIds(entry.id, watermark) > 0) return false;
          const holdId = heldSignalId(entry);
          const at = Number(entry.id.split('-')[0]);
          if (holdId) this.state.rememberDecided(holdId, { decidedAt: at, signalTs: at });
          return true;
        });
      }
    }
    this.host.consume();
    this.rejectedSince.from = this.deps.clock.now();
    this.cancelSweep = (this.deps.scheduler ?? realScheduler).every(INFLIGHT_SWEEP_MS, () => {
      this.sweepInflight();
      this.logRejections(false);
      return this.checkTimeLimits();
    });
    logger.info({ trading_state: this.state.state, inflight: this.state.inflightCount() }, 'risk safety service started');
  }

  /**
   * Without a usable snapshot: the confirmed books from every fill and tick the group was
   * handed (through the tick gate and the ledger checks, as when they were delivered: what
   * they refused was dead-lettered and is skipped), then the day's entries and the orders
   * still in flight from trade.signal.safe. Statistics restart; the peak equity is the
   * highest seen while folding. Exit levels are not in the streams: none are armed.
   */
  private async rebuild(): Promise<Record<string, number>> {
    const now = this.deps.clock.now();
    const resolved = new Set<string>();
    const folded = await this.host.replayDelivered([TOPICS.tick, TOPICS.execution], ({ topic, message }) => {
      if (topic === TOPICS.tick) {
        refuseIfRefused(this.state.onTick(message as PriceTick, now));
        return;
      }
      const result = message as ExecutionResult;
      const refused = this.state.onExecution(result);
      if (refused !== undefined) throw new RefusedEntry(refused);
      resolved.add(result.signal_id);
    });
    // Folding fills disarms nothing armed (there is nothing): no level changes to publish.
    this.state.drainExitLevels();
    this.state.drainNotices();
    this.state.restartDay();
    const approvals = (await this.deps.bus.readLatest(TOPICS.safe, GUARD_REBUILD_ENTRIES)).reverse();
    for (const entry of approvals) {
      let order: RiskApprovedSignal;
      try {
        order = decodeTopic(TOPICS.safe, entry.fields, entry.id) as RiskApprovedSignal;
      } catch {
        continue;
      }
      this.state.noteApproval(order, resolved.has(order.signal_id), now);
    }
    return {
      [`entries of ${TOPICS.execution}`]: folded.get(TOPICS.execution) ?? 0,
      [`entries of ${TOPICS.tick}`]: folded.get(TOPICS.tick) ?? 0,
      'orders in flight': this.state.inflightCount(),
    };
  }

  private handle(delivery: Delivery<unknown>): Outbound[] | void {
    const out = this.handleEntry(delivery);
    this.logNotices();
    return withExitOutputs(out, this.state.drainExitLevels());
  }

  /** Rare protection events (a lock set, a source stopped), one log line each. */
  private logNotices(): void {
    for (const notice of this.state.drainNotices()) this.deps.logger.warn({ protection: true }, notice);
  }

  private handleEntry(delivery: Delivery<unknown>): Outbound[] | void {
    switch (delivery.topic) {
      case TOPICS.tick: {
        const tick = delivery.message as PriceTick;
        const now = this.deps.clock.now();
        const verdict = this.state.onTick(tick, now);
        refuseIfRefused(verdict);
        // Only a tick the gate accepted moves a trail or fires an exit.
        if (verdict.kind !== 'accept') return;
        return this.protectiveCloses(this.state.checkExits(now, tick.symbol));
      }
      case TOPICS.execution:
      {
        const refused = this.state.onExecution(delivery.message as ExecutionResult);
        if (refused !== undefined) throw new RefusedEntry(refused);
        return;
      }
      default:
        this.state.noteSignalEntry(delivery.id);
        return this.decide(delivery.message as TradeSignal);
    }
  }

  // -- protective exits (docs/exits.md) ----------------------------------------------

  /** Logs each protective close (rare: one per position at most) and makes its outputs. */
  private protectiveCloses(closes: RiskApprovedSignal[]): Outbound[] | void {
    if (closes.length === 0) return;
    for (const order of closes) {
      this.metrics.outcomes.inc({ outcome: `protective_exit:${order.exit_reason}` });
      this.deps.logger.warn(
        { signal_id: order.signal_id, symbol: order.symbol, exit_reason: order.exit_reason, side: order.side, quantity: order.quantity },
        'protective exit triggered: reduce-only close published',
      );
    }
    return closes.map((payload) => ({ topic: TOPICS.safe, payload }));
  }

  /** On the sweep timer: time limits fire without a tick (checked with the injected clock). */
  private async checkTimeLimits(): Promise<void> {
    if (this.checkingTimeLimits || !this.state.exitsDueOnClock()) return;
    this.checkingTimeLimits = true;
    try {
      await this.host.emit(() => {
        const closes = this.protectiveCloses(this.state.checkExits(this.deps.clock.now())) ?? [];
        return withExitOutputs(closes, this.state.drainExitLevels()) ?? [];
      });
    } catch (err) {
      this.deps.logger.warn({ err }, 'checking exit time limits failed; retrying on the next sweep');
    } finally {
      this.checkingTimeLimits = false;
    }
  }

  /** POST /positions/{symbol}/exits: sets or clears levels, publishes the change, persists it. */
  async setExitLevels(symbol: string, patch: LevelPatch) {
    let result!: ReturnType<RiskState['setExitLevels']>;
    await this.host.emit(() => {
      result = this.state.setExitLevels(symbol, patch, this.deps.clock.now());
      return withExitOutputs([], this.state.drainExitLevels()) ?? [];
    });
    return result;
  }

  exitLevels(): ExitLevels[] {
    return this.state.exitLevels(this.deps.clock.now());
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
        this.noteRejection(outcome.message.reasons);
        this.deps.logger.debug(
          { signal_id: signal.signal_id, symbol: signal.symbol, action: signal.action, reasons: outcome.message.reasons },
          'signal rejected',
        );
        return [{ topic: TOPICS.rejected, payload: outcome.message }];
      case 'approve':
        this.metrics.outcomes.inc({ outcome: 'approved' });
        return [{ topic: TOPICS.safe, payload: outcome.message }];
    }
  }

  private noteRejection(reasons: readonly string[]): void {
    const tally = this.rejectedSince;
    tally.count += 1;
    for (const reason of reasons) tally.byReason.set(reason, (tally.byReason.get(reason) ?? 0) + 1);
  }

  /** One warning with the interval's rejections by reason, once the interval is over (or now, at stop). */
  private logRejections(final: boolean): void {
    const tally = this.rejectedSince;
    const now = this.deps.clock.now();
    if (!final && now - tally.from < REJECTION_LOG_INTERVAL_MS) return;
    if (tally.count > 0) {
      const seconds = Math.round((now - tally.from) / 1000);
      this.deps.logger.warn(
        { event: REJECTIONS_EVENT, rejected: tally.count, by_reason: Object.fromEntries(tally.byReason), interval_s: seconds },
        `${tally.count} signal${tally.count === 1 ? '' : 's'} rejected in the last ${seconds} s`,
      );
    }
    this.rejectedSince = { count: 0, byReason: new Map(), from: now };
  }

  /** Synchronous, so it never interleaves with a batch; persisted with the next commit. */
  private sweepInflight(): void {
    const expired = this.state.expireInflight(this.deps.clock.now());
    for (const order of expired) {
      this.deps.logger.warn(
        { signal_id: order.signal_id, symbol: order.symbol, approved_ts: order.approved_ts },
        'approved order expired with no execution result; execution will not fill it, so it no longer counts as in flight',
      );
    }
  }

  async resume() {
    await this.host.mutate(() => this.state.resume());
    this.deps.logger.warn('trading resumed by operator; peak equity restarts at current equity');
    return this.stats();
  }

  /**
   * POST /halt (the kill switch, docs/protections.md): entries are refused KILL_SWITCH at
   * once (saved before anything is published, so a crash after the answer keeps it); with
   * `flatten`, a reduce-only close for every open position is published and persisted.
   */
  async halt(reason: string, flatten: boolean) {
    const now = this.deps.clock.now();
    const halt = await this.host.mutate(() => this.state.halt(reason, now));
    let closes: RiskApprovedSignal[] = [];
    if (flatten) {
      await this.host.emit(() => {
        closes = this.state.flattenAll(this.deps.clock.now());
        return closes.map((payload) => ({ topic: TOPICS.safe, payload }));
      });
      if (closes.length > 0) this.metrics.outcomes.inc({ outcome: 'kill_switch_close' }, closes.length);
    }
    this.deps.logger.error(
      { reason, flatten, closes: closes.map((c) => ({ symbol: c.symbol, side: c.side, quantity: c.quantity, signal_id: c.signal_id })) },
      'kill switch: entries HALTED by the operator until POST /resume',
    );
    return {
      trading_state: 'HALTED' as const,
      kill_switch: halt,
      flatten,
      closes: closes.map((c) => ({ signal_id: c.signal_id, symbol: c.symbol, side: c.side, quantity: c.quantity, reference_price: c.reference_price })),
    };
  }

  /** POST /sources/{source}/resume: a source stopped by its drawdown trades again. */
  async resumeSource(source: string) {
    const result = await this.host.mutate(() => this.state.resumeSource(source));
    this.deps.logger.warn({ source, was_stopped: result.was_stopped }, 'source resumed by operator');
    return result;
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
      halt_reason: this.state.shownState().reason,
      kill_switch: this.state.killSwitchState(),
      approval_rate: this.state.approvalRate(),
      /** Consumer groups far behind (the stream grows until they catch up); still 200. */
      warnings: this.host.streamWarnings(),
      uptime_s: Math.round((this.deps.clock.now() - this.startedAt) / 1000),
    };
  }

  async stop(): Promise<void> {
    this.cancelSweep?.();
    await this.host.stop();
    this.logRejections(true);
  }
}

/**
 * trade.signal.decisions for `outputs`: their approvals and rejections counted per source,
 * in one message (none when there are none). Counted from what is written, so the counts
 * match the decision streams exactly.
 */
function decisionOutputs(outputs: readonly Outbound[], now: number): Outbound[] {
  let tally: DecisionTally | null = null;
  for (const { topic, payload } of outputs) {
    if (topic === TOPICS.safe) {
      (tally ??= new DecisionTally()).approved((payload as RiskApprovedSignal).source);
    } else if (topic === TOPICS.rejected) {
      const rejection = payload as RiskRejection;
      (tally ??= new DecisionTally()).rejected(rejection.source, rejection.reasons);
    }
  }
  return tally === null ? [] : tally.drain(now).map((payload) => ({ topic: TOPICS.decisions, payload }));
}

/** A handler's outputs plus the exit-level changes it queued (published after them). */
function withExitOutputs(out: Outbound[] | void, levels: readonly ExitLevels[]): Outbound[] | void {
  if (levels.length === 0) return out;
  return [...(out ?? []), ...levels.map((payload) => ({ topic: TOPICS.exitLevels, payload }))];
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

/** Calls `visit` on every entry of `topic` after `since`, oldest first; stops when it returns false. */
async function forEachEntrySince(bus: EventBus, topic: string, since: string, visit: (entry: StreamEntry) => boolean | void): Promise<void> {
  const PAGE = 10_000;
  let after = since;
  for (;;) {
    const page = await bus.readAfter(topic, after, PAGE);
    for (const entry of page) if (visit(entry) === false) return;
    if (page.length < PAGE) return;
    after = page[page.length - 1]!.id;
  }
}

/** The signal id and the decision and signal times of an approval or rejection entry. */
function decisionTimes(topic: string, entry: StreamEntry): { signalId: string; decidedAt: number; signalTs: number } | undefined {
  let payload: Record<string, unknown>;
  try {
    payload = JSON.parse(entry.fields.payload ?? '') as Record<string, unknown>;
  } catch {
    return undefined;
  }
  const signalId = payload.signal_id;
  const approval = topic === TOPICS.safe;
  const decidedAt = approval ? payload.approved_ts : payload.ts;
  const signalTs = approval ? payload.ts : payload.signal_ts;
  if (typeof signalId !== 'string' || typeof decidedAt !== 'number' || typeof signalTs !== 'number') return undefined;
  return { signalId, decidedAt, signalTs };
}
