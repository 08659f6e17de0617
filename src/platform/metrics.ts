/**
 * Prometheus metrics, every name spelled here (docs/metrics.md is generated from these
 * registries by `npm run metrics-doc`). Each service owns a Registry (three services may
 * share one process under `quantum up`, and each /metrics must show its own), and a
 * service exports only the metrics that mean something there.
 *
 * Conventions: the `qt_` prefix, base units (`_seconds`, `_usd`, `_ratio` for a
 * fraction, `_entries` for stream entries), `_total` only on counters, and labels with a
 * small fixed set of values (topic, group, symbol, reason code; never a signal id).
 * Gauges that describe state are read from the service at scrape time
 * (`ServiceMetrics.refresh`), never updated per message.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { FILL_REJECT_CODES } from '../core/fills.js';

/** What GET /metrics needs: the registry, and what to bring up to date before rendering it. */
export interface MetricsEndpoint {
  registry: Registry;
}

/** The metrics every bus-consuming service (risk, execution, monitor) exports. */
export interface ServiceMetrics extends MetricsEndpoint {
  /** Messages read or written, per topic and direction (in|out|dlq). */
  messages: Counter<'topic' | 'direction'>;
  /** Domain outcomes, e.g. approved / rejected:<reason> / skipped / protective_exit:<exit_reason> / filled / applied / duplicate. */
  outcomes: Counter<'outcome'>;
  /** Entries of an input stream not yet delivered to the service's group (XINFO GROUPS lag). */
  consumerLag: Gauge<'topic' | 'group'>;
  /** Entries delivered to the group and not yet acknowledged (XINFO GROUPS pending). */
  consumerPending: Gauge<'topic' | 'group'>;
  /** Entries in `<topic>.dlq` for each input topic (XLEN). */
  deadLetters: Gauge<'topic'>;
  /** One write of a batch's outputs, acknowledgements and state snapshot (or an HTTP state change's snapshot). */
  snapshotCommitSeconds: Histogram<string>;
  /** Snapshot commits that failed (each is retried until it lands). */
  snapshotCommitFailures: Counter<string>;
  /** Entries each group has not finished (undelivered + pending) on the streams this service uses (src/bus/trim.ts). */
  streamBacklog: Gauge<'topic' | 'group'>;
}

/** Sub-millisecond to seconds: a snapshot commit is one Redis round trip, a fill a few hops. */
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

function serviceRegistry(service: string): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  return registry;
}

function gauge<L extends string>(registry: Registry, name: string, help: string, labelNames: readonly L[] = []): Gauge<L> {
  return new Gauge({ name, help, labelNames, registers: [registry] });
}

export function createServiceMetrics(service: string): ServiceMetrics {
  const registry = serviceRegistry(service);
  return {
    registry,
    messages: new Counter({
      name: 'qt_messages_total',
      help: 'Bus messages by topic and direction (in, out, dlq)',
      labelNames: ['topic', 'direction'] as const,
      registers: [registry],
    }),
    outcomes: new Counter({
      name: 'qt_outcomes_total',
      help: 'Domain outcomes (approved, rejected:<reason>, skipped, protective_exit:<exit_reason>, filled, rejected_fill, applied, duplicate)',
      labelNames: ['outcome'] as const,
      registers: [registry],
    }),
    consumerLag: gauge(registry, 'qt_consumer_lag_entries', "Entries of an input stream not yet delivered to the service's consumer group", [
      'topic',
      'group',
    ]),
    consumerPending: gauge(registry, 'qt_consumer_pending_entries', "Entries delivered to the service's consumer group and not yet acknowledged", [
      'topic',
      'group',
    ]),
    deadLetters: gauge(registry, 'qt_dead_letter_entries', 'Entries in the dead-letter stream <topic>.dlq of an input topic', ['topic']),
    snapshotCommitSeconds: new Histogram({
      name: 'qt_snapshot_commit_duration_seconds',
      help: "Time to write one batch's outputs, acknowledgements and state snapshot to the bus (one transaction)",
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    }),
    snapshotCommitFailures: new Counter({
      name: 'qt_snapshot_commit_failures_total',
      help: 'Snapshot commits that failed (each is retried until it lands)',
      registers: [registry],
    }),
    streamBacklog: gauge(
      registry,
      'qt_stream_backlog_entries',
      'Entries a consumer group (any, not only this service\'s) has not finished (not yet delivered plus pending) on a stream this service uses; the stream is not trimmed past them',
      ['topic', 'group'],
    ),
  };
}

/** A live price feed's counters (registered on the execution service's registry). */
export interface FeedMetrics {
  /** Detected gaps in the venue's trade ids. */
  gaps: Counter<'source'>;
  /** Reconnects, `kind` unplanned (drop, error) or planned (before the venue's time limit). */
  reconnects: Counter<'source' | 'kind'>;
  /** Frames that could not be parsed (skipped). */
  malformed: Counter<'source'>;
  /** 1 while every connection of the feed is open. */
  connected: Gauge<'source'>;
}

/**
 * `connected`: the execution service's qt_feed_connected gauge when it has one (one
 * series per source on one registry), else a new one.
 */
export function createFeedMetrics(registry: Registry, connected?: Gauge<'source'>): FeedMetrics {
  return {
    gaps: new Counter({ name: 'qt_feed_gaps_total', help: 'Gaps detected in a live feed (aggTrade ids not consecutive)', labelNames: ['source'] as const, registers: [registry] }),
    reconnects: new Counter({
      name: 'qt_feed_reconnects_total',
      help: 'Live feed reconnects (kind: unplanned after a drop or error, planned before the venue connection limit)',
      labelNames: ['source', 'kind'] as const,
      registers: [registry],
    }),
    malformed: new Counter({ name: 'qt_feed_malformed_frames_total', help: 'Live feed frames that could not be parsed (logged, skipped)', labelNames: ['source'] as const, registers: [registry] }),
    connected:
      connected ?? new Gauge({ name: 'qt_feed_connected', help: '1 while every connection of the live feed is open', labelNames: ['source'] as const, registers: [registry] }),
  };
}

/** Seconds since each symbol's newest tick (tick ts), as seen by one service. */
function setPriceAges(target: Gauge<'symbol'>, priceTs: ReadonlyMap<string, number>, now: number): void {
  target.reset();
  for (const [symbol, ts] of priceTs) target.set({ symbol }, Math.max(0, now - ts) / 1000);
}

const PRICE_AGE_HELP = "Seconds since the newest price tick of a symbol (the tick's ts) seen by this service";

export interface RiskReading {
  halted: boolean;
  /** The halt's reason code (e.g. CIRCUIT_BREAKER), when halted. */
  haltReason: string | null;
  equityUsd: number;
  peakEquityUsd: number;
  drawdownRatio: number;
  drawdownLimitRatio: number;
  inflightOrders: number;
  priceTs: ReadonlyMap<string, number>;
  now: number;
  // Protections (docs/protections.md); absent = 0.
  /** The operator's kill switch (POST /halt) is on. */
  killSwitch?: boolean;
  /** The UTC day's loss as a fraction of its starting equity (0 when not losing). */
  dailyLossRatio?: number;
  /** Entry locks set by config `protections` still holding. */
  activeLocks?: number;
  /** Sources stopped by risk.max_source_drawdown_pct. */
  sourcesStopped?: number;
}

export interface RiskMetrics extends ServiceMetrics {
  /** Brings the state gauges up to date from one reading (called before each scrape). */
  observe(reading: RiskReading): void;
}

export function createRiskMetrics(): RiskMetrics {
  const base = createServiceMetrics('risk');
  const { registry } = base;
  const halted = gauge(registry, 'qt_trading_halted', '1 while the circuit breaker or the kill switch holds trading HALTED (label reason: its code), else 0', ['reason']);
  const equity = gauge(registry, 'qt_equity_usd', "Account equity in USD in the risk gate's view (in-flight orders included)");
  const peak = gauge(registry, 'qt_peak_equity_usd', 'Peak equity in USD the drawdown is measured from');
  const drawdown = gauge(registry, 'qt_drawdown_ratio', 'Drawdown from peak equity as a fraction (0.1 = 10%)');
  const limit = gauge(registry, 'qt_drawdown_limit_ratio', 'The drawdown at which the circuit breaker halts trading (risk.max_drawdown_pct)');
  const inflight = gauge(registry, 'qt_inflight_orders', 'Approved orders with no execution result yet');
  const priceAge = gauge(registry, 'qt_price_age_seconds', PRICE_AGE_HELP, ['symbol']);
  const killSwitch = gauge(registry, 'qt_kill_switch', "1 while the operator's kill switch (POST /halt) holds entries, else 0");
  const dailyLoss = gauge(registry, 'qt_daily_loss_ratio', "The UTC day's loss (realized + unrealized) as a fraction of the day's starting equity; 0 when not losing");
  const locks = gauge(registry, 'qt_protection_locks', 'Entry locks set by config protections that still hold');
  const sourcesStopped = gauge(registry, 'qt_sources_stopped', 'Signal sources refused SOURCE_DRAWDOWN until POST /sources/{source}/resume');
  // Pre-set so the approval-collapse alert sees a 0 rate, not an absent series, when nothing is approved.
  base.outcomes.inc({ outcome: 'approved' }, 0);
  return {
    ...base,
    observe(r) {
      halted.reset();
      if (r.halted) halted.set({ reason: r.haltReason ?? 'UNKNOWN' }, 1);
      else halted.set(0);
      equity.set(r.equityUsd);
      peak.set(r.peakEquityUsd);
      drawdown.set(r.drawdownRatio);
      limit.set(r.drawdownLimitRatio);
      inflight.set(r.inflightOrders);
      setPriceAges(priceAge, r.priceTs, r.now);
      killSwitch.set(r.killSwitch ? 1 : 0);
      dailyLoss.set(r.dailyLossRatio ?? 0);
      locks.set(r.activeLocks ?? 0);
      sourcesStopped.set(r.sourcesStopped ?? 0);
    },
  };
}

export interface ExecutionReading {
  priceTs: ReadonlyMap<string, number>;
  now: number;
}

export interface ExecutionMetrics extends ServiceMetrics {
  /** Signal creation (signal ts) to its fill (execution ts), seconds; observed at the fill. */
  signalToFill: Histogram<string>;
  /**
   * 1 while the price feed is connected, per source (simulator, binance). The simulator
   * is always connected; a live feed sets it on connect and disconnect.
   */
  feedConnected: Gauge<'source'>;
  observe(reading: ExecutionReading): void;
}

export function createExecutionMetrics(): ExecutionMetrics {
  const base = createServiceMetrics('execution');
  const { registry } = base;
  const priceAge = gauge(registry, 'qt_price_age_seconds', PRICE_AGE_HELP, ['symbol']);
  // Pre-set so fill and reject rates are 0, not absent, before the first of each
  // (a rejection counts under its code: EXPIRED, PRICE_DEVIATION, NOT_REDUCING, ...).
  for (const outcome of ['filled', ...[...FILL_REJECT_CODES, 'OTHER'].map((code) => `rejected:${code}`)]) base.outcomes.inc({ outcome }, 0);
  return {
    ...base,
    signalToFill: new Histogram({
      name: 'qt_signal_to_fill_seconds',
      help: 'Time from signal creation (signal ts) to its fill (execution ts)',
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    }),
    feedConnected: gauge(registry, 'qt_feed_connected', '1 while the price feed is connected (label source: simulator, binance), else 0', ['source']),
    observe(r) {
      setPriceAges(priceAge, r.priceTs, r.now);
    },
  };
}

export interface MonitorReading {
  realizedPnlUsd: number;
  unrealizedPnlUsd: number;
  feesUsd: number;
  openPositions: number;
  /** Sources in drift now, per drift test (docs/feedback.md). */
  driftSources?: Record<string, number>;
}

export interface MonitorMetrics extends ServiceMetrics {
  observe(reading: MonitorReading): void;
  /** model.drift state changes published, by test and new state. */
  driftChanges: Counter<'test' | 'state'>;
  /** rl.feedback messages published (one per closed round trip). */
  feedbackMessages: Counter;
}

export function createMonitorMetrics(): MonitorMetrics {
  const base = createServiceMetrics('monitor');
  const { registry } = base;
  const realized = gauge(registry, 'qt_realized_pnl_usd', 'Realized PnL in USD of the closed trades, net of fees');
  const unrealized = gauge(registry, 'qt_unrealized_pnl_usd', 'Unrealized PnL in USD of the open positions at the latest marks');
  const fees = gauge(registry, 'qt_fees_usd', 'Fees paid in USD since the books started');
  const open = gauge(registry, 'qt_open_positions', 'Open positions (symbols with a non-zero quantity)');
  const drifting = gauge(registry, 'qt_model_drift_sources', 'Signal sources whose drift state is drift now, per test (ks, calibration)', ['test'] as const);
  const driftChanges = new Counter({
    name: 'qt_model_drift_changes_total',
    help: 'model.drift state changes published, by test (ks, calibration) and new state (drift, ok)',
    labelNames: ['test', 'state'] as const,
    registers: [registry],
  });
  const feedbackMessages = new Counter({
    name: 'qt_feedback_messages_total',
    help: 'rl.feedback messages published (one per closed round trip)',
    registers: [registry],
  });
  for (const test of ['ks', 'calibration']) {
    drifting.set({ test }, 0);
    for (const state of ['drift', 'ok']) driftChanges.inc({ test, state }, 0);
  }
  return {
    ...base,
    driftChanges,
    feedbackMessages,
    observe(r) {
      realized.set(r.realizedPnlUsd);
      unrealized.set(r.unrealizedPnlUsd);
      fees.set(r.feesUsd);
      open.set(r.openPositions);
      for (const [test, count] of Object.entries(r.driftSources ?? {})) drifting.set({ test }, count);
    },
  };
}

export interface DashboardReading {
  sseClients: number;
  /** Whether the dashboard's last read of the streams succeeded. */
  streamsReadable: boolean;
}

export interface DashboardMetrics extends MetricsEndpoint {
  observe(reading: DashboardReading): void;
}

export function createDashboardMetrics(): DashboardMetrics {
  const registry = serviceRegistry('dashboard');
  const clients = gauge(registry, 'qt_dashboard_clients', 'Browsers connected to the live event stream (/api/events)');
  const readable = gauge(registry, 'qt_dashboard_streams_readable', "1 while the dashboard's tail of the streams succeeds, else 0");
  return {
    registry,
    observe(r) {
      clients.set(r.sseClients);
      readable.set(r.streamsReadable ? 1 : 0);
    },
  };
}
