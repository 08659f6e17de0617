/**
 * The dashboard's live state. It reads the bus like any other consumer but never
 * joins a consumer group (it must not take work from the services): at start it reads
 * the tail of each stream back (`readLatest`), then polls `readAfter(lastId)` every
 * POLL_INTERVAL_MS. Every HEALTH_INTERVAL_MS it asks each service for /health and the
 * bus for stream lengths, group lag and dead-letter counts; whenever something moved
 * it fetches the figures the bus does not carry (the monitor's live /portfolio and
 * /positions, risk and execution /stats). Listeners (the SSE streams) get each change.
 */
import { compareIds, type EventBus, type StreamEntry } from '../../bus/bus.js';
import { decoderFor } from '../../bus/codec.js';
import { ALL_TOPICS, TOPICS, dlqTopic, type ServiceName } from '../../bus/topics.js';
import { BusWatch, type BusStatus } from '../../core/bus-watch.js';
import type { Clock } from '../../core/clock.js';
import { entryState, type EntryState } from '../../core/entry-state.js';
import { ExecutionResult, PositionUpdate, RiskApprovedSignal, RiskRejection } from '../../core/messages.js';
import type { Config } from '../../platform/config.js';
import type { Logger } from '../../platform/logger.js';
import {
  HISTORY_BOUNDS,
  appendEquity,
  applyPosition,
  approvalRecord,
  emptyFigures,
  equityPointOf,
  figuresFromMonitor,
  figuresFromUpdate,
  fillOf,
  positionRowOf,
  prependBounded,
  rejectionRecord,
  sortedPositions,
  summaryOf,
  type DecisionRecord,
  type DecisionSummary,
  type EquityPoint,
  type FillSummary,
  type PortfolioFigures,
  type PositionRow,
} from './model.js';
import { SERVICE_NAMES, describeFailure, type Upstream, type UpstreamResponse } from './upstream.js';

export const POLL_INTERVAL_MS = 250;
export const HEALTH_INTERVAL_MS = 2000;
/** Entries read per topic per poll; a poll that fills it skips ahead to the newest history. */
export const POLL_PAGE = 1000;
/** Shortest gap between two fetches of the services' figures. */
const REFRESH_MIN_GAP_MS = 100;

/** The four streams the dashboard tails. */
export const TAILED_TOPICS = [TOPICS.position, TOPICS.safe, TOPICS.rejected, TOPICS.execution] as const;
type Tailed = (typeof TAILED_TOPICS)[number];

/** Entries read back per topic at start (and after a flood). */
const BACKFILL: Record<Tailed, number> = {
  [TOPICS.position]: HISTORY_BOUNDS.positionBackfill,
  [TOPICS.safe]: HISTORY_BOUNDS.decisions,
  [TOPICS.rejected]: HISTORY_BOUNDS.decisions,
  [TOPICS.execution]: HISTORY_BOUNDS.fills,
};

export type ServiceStatus = 'up' | 'degraded' | 'down' | 'unknown';

export interface ServiceHealth {
  name: ServiceName;
  url: string;
  status: ServiceStatus;
  http_status: number | null;
  /** The /health body's status, or why it did not answer. */
  detail: string;
  checked_at: number | null;
  /** When the status last changed. */
  since: number | null;
}

export interface StreamHealth {
  topic: string;
  length: number;
  last_id: string | null;
  groups: Array<{ name: string; consumers: number; pending: number; lag: number | null }>;
}

/** The execution service's price source (from its /health) and the latest quotes (its /prices). */
export interface MarketPicture {
  source: string;
  connected: boolean;
  down_ms: number;
  reconnects: number;
  gaps: number;
  quotes: Record<string, { bid: number; ask: number }>;
}

export interface HealthPicture {
  services: ServiceHealth[];
  /** Null until the execution service answered. */
  market: MarketPicture | null;
  /** The bus as the dashboard probes it, with when it went down and when it came back. */
  bus: { kind: string } & BusStatus;
  streams: StreamHealth[];
  dlq: Array<{ topic: string; length: number }>;
  /** The dashboard's own tail of the bus. */
  feed: {
    ok: boolean;
    error: string | null;
    last_poll_at: number | null;
    /** Polls that found more than POLL_PAGE new entries in a stream and jumped to its newest history. */
    jumps: number;
    /** Entries that failed validation (the services dead-letter them; the dashboard skips them). */
    invalid_entries: number;
  };
  checked_at: number | null;
}

export interface RiskFigures {
  trading_state: string;
  /** What blocks entries (ACTIVE, COOLDOWN, DAILY_LIMIT, HALTED), with until when and why. */
  entry_state: EntryState;
  halted_at: number | null;
  halt_reason: string | null;
  approval_rate: number | null;
  entries_today: number | null;
  max_daily_entries: number | null;
  cooldown_until: number | null;
  counts: { received: number; skipped: number; approved: number; rejected: number; rejected_by_reason: Record<string, number> } | null;
  /** The operator's kill switch (POST /halt); null when off (docs/protections.md). */
  kill_switch: { reason: string; since: number } | null;
  /** Protection locks still holding, with their end times. */
  locks: Array<{ protection: string; symbol: string | null; since: number; until: number; reason: string }>;
  /** True when the risk service did not answer the last fetch: these are the last known figures. */
  stale: boolean;
}

export interface ExecutionFigures {
  orders: number;
  fills: number;
  rejects: number;
  fill_rate: number | null;
  volume_usd: number;
  fees_usd: number;
  avg_slippage_pct: number;
  stale: boolean;
}

export interface DashboardState {
  generated_at: number;
  bounds: typeof HISTORY_BOUNDS;
  settings: {
    initial_balance_usd: number;
    max_drawdown_pct: number;
    max_exposure_pct: number;
    token_required: boolean;
    stream_prefix: string;
    bus: string;
  };
  portfolio: PortfolioFigures;
  positions: PositionRow[];
  risk: RiskFigures | null;
  execution: ExecutionFigures | null;
  equity: EquityPoint[];
  decisions: DecisionSummary[];
  fills: FillSummary[];
  health: HealthPicture;
}

/** One change, as sent on the event stream (the SSE event name and its JSON data). */
export interface HubEvent {
  event: 'equity' | 'decisions' | 'fills' | 'portfolio' | 'stats' | 'health';
  data: unknown;
}

export interface HubDeps {
  bus: EventBus;
  config: Config;
  clock: Clock;
  logger: Logger;
  upstream: Upstream;
  pollIntervalMs?: number;
  healthIntervalMs?: number;
}

const DECODE = {
  [TOPICS.position]: decoderFor(PositionUpdate),
  [TOPICS.safe]: decoderFor(RiskApprovedSignal),
  [TOPICS.rejected]: decoderFor(RiskRejection),
  [TOPICS.execution]: decoderFor(ExecutionResult),
} as const;

type Listener = (event: HubEvent) => void;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
const numOr = <T>(value: unknown, fallback: T): number | T => (typeof value === 'number' && Number.isFinite(value) ? value : fallback);

export class DashboardHub {
  private readonly lastIds = new Map<Tailed, string>();
  private equity: EquityPoint[] = [];
  private decisions: DecisionRecord[] = [];
  private fills: FillSummary[] = [];
  private busPositions = new Map<string, PositionRow>();
  private busFigures: PortfolioFigures | null = null;
  private monitorFigures: PortfolioFigures | null = null;
  private monitorPositions: PositionRow[] | null = null;
  private risk: RiskFigures | null = null;
  private execution: ExecutionFigures | null = null;
  private health: HealthPicture;
  private readonly busWatch = new BusWatch();
  private readonly listeners = new Set<Listener>();
  private readonly lastSent = new Map<string, string>();

  /** Position updates seen; a monitor answer started before the latest one is not applied. */
  private positionSeq = 0;
  private refreshing: Promise<void> | null = null;
  private refreshAgain = false;
  private lastRefreshAt = 0;
  private staleAnswers = 0;

  private started = false;
  private stopped = false;
  private pollTimer?: NodeJS.Timeout;
  private healthTimer?: NodeJS.Timeout;
  private refreshTimer?: NodeJS.Timeout;
  private polling: Promise<unknown> | null = null;
  private checking: Promise<void> | null = null;
  private feedErrorLogged = false;

  constructor(private readonly deps: HubDeps) {
    this.health = {
      services: SERVICE_NAMES.map((name) => ({
        name,
        url: deps.upstream.baseUrl(name),
        status: 'unknown',
        http_status: null,
        detail: 'not checked yet',
        checked_at: null,
        since: null,
      })),
      market: null,
      bus: { kind: deps.bus.kind, ...this.busWatch.status },
      streams: [],
      dlq: [],
      feed: { ok: true, error: null, last_poll_at: null, jumps: 0, invalid_entries: 0 },
      checked_at: null,
    };
  }

  // -- lifecycle --------------------------------------------------------------------

  /** Reads the history back, checks the services once, then keeps polling. */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    await this.backfill();
    await Promise.all([this.checkHealth(), this.refresh()]);
    this.schedulePoll();
    this.scheduleHealth();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.pollTimer);
    clearTimeout(this.healthTimer);
    clearTimeout(this.refreshTimer);
    await Promise.allSettled([this.polling, this.checking, this.refreshing]);
    this.listeners.clear();
  }

  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  get listenerCount(): number {
    return this.listeners.size;
  }

  // -- what the routes serve ----------------------------------------------------------

  state(): DashboardState {
    const { config, bus, clock } = this.deps;
    return {
      generated_at: clock.now(),
      bounds: HISTORY_BOUNDS,
      settings: {
        initial_balance_usd: config.account.initial_balance_usd,
        max_drawdown_pct: config.risk.max_drawdown_pct,
        max_exposure_pct: config.risk.max_exposure_pct,
        token_required: Boolean(config.api_token),
        stream_prefix: config.stream_prefix,
        bus: bus.kind,
      },
      portfolio: this.figures(),
      positions: this.positions(),
      risk: this.risk,
      execution: this.execution,
      equity: this.equity,
      decisions: this.decisions.map(summaryOf),
      fills: this.fills,
      health: this.health,
    };
  }

  decision(key: string): DecisionRecord | undefined {
    return this.decisions.find((d) => d.key === key);
  }

  /** The monitor's figures when it answered last, else the latest PositionUpdate's. */
  figures(): PortfolioFigures {
    return this.monitorFigures ?? this.busFigures ?? emptyFigures(this.deps.config.account.initial_balance_usd);
  }

  positions(): PositionRow[] {
    return this.monitorPositions ?? sortedPositions(this.busPositions);
  }

  // -- the bus tail -------------------------------------------------------------------

  private async backfill(): Promise<void> {
    const { bus } = this.deps;
    try {
      for (const topic of TAILED_TOPICS) {
        const newestFirst = await bus.readLatest(topic, BACKFILL[topic]);
        this.lastIds.set(topic, newestFirst[0]?.id ?? '0');
        this.apply(topic, newestFirst.reverse());
      }
      this.health.feed.ok = true;
    } catch (err) {
      // The poll starts from whatever was read; a bus that is down now is retried there.
      this.feedFailed(err);
    }
    for (const topic of TAILED_TOPICS) if (!this.lastIds.has(topic)) this.lastIds.set(topic, '0');
  }

  /** One poll of the four streams (after any poll in flight); public so tests can drive it. */
  pollOnce(): Promise<boolean> {
    const run = (this.polling ?? Promise.resolve()).then(() => this.doPoll());
    const tracked = run.then(
      () => undefined,
      () => undefined,
    );
    this.polling = tracked;
    void tracked.finally(() => {
      if (this.polling === tracked) this.polling = null;
    });
    return run;
  }

  private async doPoll(): Promise<boolean> {
    const { bus, clock } = this.deps;
    let moved = false;
    let positionsMoved = false;
    const before = { decisions: this.decisions[0]?.key, fills: this.fills[0]?.order_id };
    const changedPoints: EquityPoint[] = [];
    try {
      for (const topic of TAILED_TOPICS) {
        const after = this.lastIds.get(topic) ?? '0';
        let entries = await bus.readAfter(topic, after, POLL_PAGE);
        if (entries.length === POLL_PAGE) {
          // A flood: the history is bounded anyway, so jump to its newest entries.
          const newest = (await bus.readLatest(topic, BACKFILL[topic])).reverse();
          entries = newest.filter((e) => compareIds(e.id, after) > 0);
          this.health.feed.jumps += 1;
        }
        if (entries.length === 0) continue;
        this.lastIds.set(topic, entries[entries.length - 1]!.id);
        moved = true;
        const result = this.apply(topic, entries);
        if (topic === TOPICS.position) {
          positionsMoved = true;
          changedPoints.push(...result.changedPoints);
        }
      }
      this.health.feed.ok = true;
      this.health.feed.error = null;
      this.health.feed.last_poll_at = clock.now();
      this.feedErrorLogged = false;
    } catch (err) {
      this.feedFailed(err);
    }
    if (!moved) return false;
    if (changedPoints.length > 0) this.emit({ event: 'equity', data: { points: changedPoints } });
    if (this.decisions[0]?.key !== before.decisions) this.emit({ event: 'decisions', data: { items: this.decisions.map(summaryOf) } });
    if (this.fills[0]?.order_id !== before.fills) this.emit({ event: 'fills', data: { items: this.fills } });
    if (positionsMoved) this.emitPortfolio();
    this.requestRefresh();
    return true;
  }

  private feedFailed(err: unknown): void {
    this.health.feed.ok = false;
    this.health.feed.error = describeFailure(err);
    if (!this.feedErrorLogged) {
      this.deps.logger.warn({ err }, 'dashboard: reading the bus failed; retrying');
      this.feedErrorLogged = true;
    }
  }

  /** Folds entries (oldest first) of one topic into the histories. */
  private apply(topic: Tailed, entries: StreamEntry[]): { changedPoints: EquityPoint[] } {
    const initial = this.deps.config.account.initial_balance_usd;
    if (topic === TOPICS.position) {
      const points: EquityPoint[] = [];
      let latest: PositionUpdate | undefined;
      for (const entry of entries) {
        const update = this.decode(topic, entry) as PositionUpdate | undefined;
        if (!update) continue;
        this.busPositions = applyPosition(this.busPositions, update);
        points.push(equityPointOf(update));
        latest = update;
        this.positionSeq += 1;
      }
      if (latest) this.busFigures = figuresFromUpdate(latest.portfolio, latest.ts, initial);
      const { curve, changed } = appendEquity(this.equity, points);
      this.equity = curve;
      return { changedPoints: changed };
    }
    if (topic === TOPICS.execution) {
      const fresh: FillSummary[] = [];
      for (const entry of entries) {
        const result = this.decode(topic, entry) as ExecutionResult | undefined;
        if (result) fresh.push(fillOf(result));
      }
      this.fills = prependBounded(this.fills, fresh.reverse(), HISTORY_BOUNDS.fills);
      return { changedPoints: [] };
    }
    const fresh: DecisionRecord[] = [];
    for (const entry of entries) {
      const message = this.decode(topic, entry);
      if (!message) continue;
      fresh.push(
        topic === TOPICS.safe
          ? approvalRecord(entry.id, message as RiskApprovedSignal)
          : rejectionRecord(entry.id, message as RiskRejection),
      );
    }
    // Approvals and rejections come from two streams: merge by decision time, newest first.
    this.decisions = [...fresh, ...this.decisions]
      .sort((a, b) => b.ts - a.ts || (a.key < b.key ? 1 : a.key > b.key ? -1 : 0))
      .slice(0, HISTORY_BOUNDS.decisions);
    return { changedPoints: [] };
  }

  private decode(topic: Tailed, entry: StreamEntry): unknown {
    try {
      return DECODE[topic](entry.fields, entry.id);
    } catch {
      // Invalid entries are the services' to dead-letter; the dashboard just skips them.
      this.health.feed.invalid_entries += 1;
      return undefined;
    }
  }

  // -- the services' figures --------------------------------------------------------

  /** Fetches the services' figures soon (coalesced: one fetch in flight, then at most one more). */
  requestRefresh(): void {
    if (this.stopped) return;
    if (this.refreshing) {
      this.refreshAgain = true;
      return;
    }
    if (this.refreshTimer) return;
    const wait = Math.max(0, this.lastRefreshAt + REFRESH_MIN_GAP_MS - performance.now());
    this.refreshTimer = setTimeout(() => {
      this.refreshTimer = undefined;
      void this.refresh();
    }, wait);
  }

  /** Fetches the monitor's /portfolio and /positions and the risk and execution /stats now. */
  refresh(): Promise<void> {
    if (this.refreshing) {
      this.refreshAgain = true;
      return this.refreshing;
    }
    this.refreshing = this.doRefresh().finally(() => {
      this.refreshing = null;
      this.lastRefreshAt = performance.now();
      if (this.refreshAgain && !this.stopped) {
        this.refreshAgain = false;
        this.requestRefresh();
      }
    });
    return this.refreshing;
  }

  private async doRefresh(): Promise<void> {
    const { upstream, clock, config } = this.deps;
    const seq = this.positionSeq;
    const [portfolio, positions, risk, execution] = await Promise.allSettled([
      upstream.get('monitor', '/portfolio'),
      upstream.get('monitor', '/positions'),
      upstream.get('risk', '/stats'),
      upstream.get('execution', '/stats'),
    ]);
    const now = clock.now();

    if (
      portfolio.status === 'fulfilled' &&
      positions.status === 'fulfilled' &&
      portfolio.value.status === 200 &&
      positions.value.status === 200 &&
      isRecord(portfolio.value.body) &&
      isRecord(positions.value.body) &&
      Array.isArray(positions.value.body.positions)
    ) {
      // A position update that arrived while asking may be newer than this answer: ask
      // again, but after a few misses in a row (a stream of updates) take the answer.
      if (seq === this.positionSeq || this.staleAnswers >= 3) {
        this.staleAnswers = 0;
        this.monitorFigures = figuresFromMonitor(portfolio.value.body, now, config.account.initial_balance_usd);
        this.monitorPositions = (positions.value.body.positions as PositionUpdate[])
          .filter((p) => p.side !== 'FLAT' && p.quantity > 0)
          .map(positionRowOf)
          .sort((a, b) => (a.symbol < b.symbol ? -1 : a.symbol > b.symbol ? 1 : 0));
      } else {
        this.staleAnswers += 1;
        this.refreshAgain = true;
      }
    } else {
      this.monitorFigures = null;
      this.monitorPositions = null;
    }
    this.emitPortfolio();

    if (risk.status === 'fulfilled' && risk.value.status === 200 && isRecord(risk.value.body)) {
      this.risk = this.riskFigures(risk.value.body);
    } else if (this.risk) {
      this.risk = { ...this.risk, stale: true };
    }
    if (execution.status === 'fulfilled' && execution.value.status === 200 && isRecord(execution.value.body)) {
      const b = execution.value.body;
      this.execution = {
        orders: numOr(b.orders, 0),
        fills: numOr(b.fills, 0),
        rejects: numOr(b.rejects, 0),
        fill_rate: numOr(b.fill_rate, null),
        volume_usd: numOr(b.volume_usd, 0),
        fees_usd: numOr(b.fees_usd, 0),
        avg_slippage_pct: numOr(b.avg_slippage_pct, 0),
        stale: false,
      };
    } else if (this.execution) {
      this.execution = { ...this.execution, stale: true };
    }
    this.emit({ event: 'stats', data: { risk: this.risk, execution: this.execution } });
  }

  private noteBus(connected: boolean, now: number): void {
    const change = this.busWatch.observe(connected, now);
    if (change === 'down') this.deps.logger.warn('dashboard: the bus is unreachable');
    if (change === 'up') this.deps.logger.info('dashboard: the bus is back');
    this.health.bus = { kind: this.deps.bus.kind, ...this.busWatch.status };
  }

  private riskFigures(b: Record<string, unknown>): RiskFigures {
    const state = typeof b.trading_state === 'string' ? b.trading_state : 'UNKNOWN';
    const haltedAt = numOr(b.halted_at, null);
    let haltReason: string | null = null;
    if (state === 'HALTED') {
      const pct = (this.deps.config.risk.max_drawdown_pct * 100).toFixed(1);
      haltReason =
        typeof b.halt_reason === 'string'
          ? b.halt_reason
          : `CIRCUIT_BREAKER: drawdown reached the ${pct}% limit; entries are refused until POST /resume on the risk service`;
    }
    const counts = isRecord(b.counts)
      ? {
          received: numOr(b.counts.received, 0),
          skipped: numOr(b.counts.skipped, 0),
          approved: numOr(b.counts.approved, 0),
          rejected: numOr(b.counts.rejected, 0),
          rejected_by_reason: (isRecord(b.counts.rejected_by_reason) ? b.counts.rejected_by_reason : {}) as Record<string, number>,
        }
      : null;
    const entriesToday = numOr(b.entries_today, null);
    const maxDaily = numOr(b.max_daily_entries, null);
    const cooldownUntil = numOr(b.cooldown_until, null);
    const ks = isRecord(b.kill_switch) && typeof b.kill_switch.reason === 'string' ? { reason: b.kill_switch.reason, since: numOr(b.kill_switch.since, 0) } : null;
    const locks = (Array.isArray(b.locks) ? b.locks : []).filter(isRecord).map((l) => ({
      protection: String(l.protection ?? ''),
      symbol: typeof l.symbol === 'string' ? l.symbol : null,
      since: numOr(l.since, 0),
      until: numOr(l.until, 0),
      reason: String(l.reason ?? ''),
    }));
    const dailyLoss = isRecord(b.daily_loss)
      ? { limit_reached: b.daily_loss.limit_reached === true, resets_at: numOr(b.daily_loss.resets_at, 0) }
      : null;
    return {
      trading_state: state,
      entry_state: entryState(
        {
          trading_state: state,
          halt_reason: haltReason,
          cooldown_until: cooldownUntil,
          entries_today: entriesToday ?? 0,
          max_daily_entries: maxDaily ?? Number.POSITIVE_INFINITY,
          kill_switch: ks,
          daily_loss: dailyLoss,
          locks,
        },
        this.deps.clock.now(),
      ),
      halted_at: haltedAt,
      halt_reason: haltReason,
      approval_rate: numOr(b.approval_rate, null),
      entries_today: numOr(b.entries_today, null),
      max_daily_entries: numOr(b.max_daily_entries, null),
      cooldown_until: numOr(b.cooldown_until, null),
      counts,
      kill_switch: ks,
      locks,
      stale: false,
    };
  }

  private emitPortfolio(): void {
    this.emit({ event: 'portfolio', data: { portfolio: this.figures(), positions: this.positions() } });
  }

  // -- health -------------------------------------------------------------------------

  /** Asks every service for /health and the bus for lengths, lag and DLQ counts. */
  checkHealth(): Promise<void> {
    this.checking ??= this.doCheckHealth().finally(() => {
      this.checking = null;
    });
    return this.checking;
  }

  /** The feed state from execution's /health answer, and the quotes from its /prices. */
  private async checkMarket(answer: PromiseSettledResult<UpstreamResponse> | undefined): Promise<void> {
    const body = answer?.status === 'fulfilled' && isRecord(answer.value.body) ? answer.value.body : undefined;
    const feed = body && isRecord(body.feed) ? body.feed : undefined;
    if (!feed) return;
    let quotes: MarketPicture['quotes'] = {};
    try {
      const prices = await this.deps.upstream.get('execution', '/prices');
      if (isRecord(prices.body) && isRecord(prices.body.quotes)) quotes = prices.body.quotes as MarketPicture['quotes'];
    } catch {
      // the service's status above already says why
    }
    const num = (v: unknown) => (typeof v === 'number' ? v : 0);
    this.health.market = {
      source: String(feed.source),
      connected: feed.connected === true,
      down_ms: num(feed.down_ms),
      reconnects: num(feed.reconnects),
      gaps: num(feed.gaps),
      quotes,
    };
  }

  private async doCheckHealth(): Promise<void> {
    const { upstream, bus, clock } = this.deps;
    const answers = await Promise.allSettled(SERVICE_NAMES.map((name) => upstream.get(name, '/health')));
    const now = clock.now();
    this.health.services = SERVICE_NAMES.map((name, i) => {
      const previous = this.health.services.find((s) => s.name === name);
      const answer = answers[i]!;
      let status: ServiceStatus;
      let httpStatus: number | null = null;
      let detail: string;
      if (answer.status === 'fulfilled') {
        httpStatus = answer.value.status;
        const body = isRecord(answer.value.body) ? answer.value.body : {};
        status = httpStatus === 200 ? 'up' : httpStatus === 503 ? 'degraded' : 'down';
        const busUp = isRecord(body.bus) ? body.bus.connected !== false : true;
        detail =
          typeof body.status === 'string'
            ? `${body.status}${busUp ? '' : ' (bus unreachable)'}`
            : `HTTP ${httpStatus}`;
      } else {
        status = 'down';
        detail = describeFailure(answer.reason);
      }
      const since = previous && previous.status === status ? previous.since : now;
      return { name, url: upstream.baseUrl(name), status, http_status: httpStatus, detail, checked_at: now, since };
    });
    await this.checkMarket(answers[SERVICE_NAMES.indexOf('execution')]);

    try {
      const connected = await bus.ping().catch(() => false);
      this.noteBus(connected, now);
      if (connected) {
        const streams: StreamHealth[] = [];
        for (const topic of ALL_TOPICS) {
          const info = await bus.info(topic);
          streams.push({
            topic,
            length: info.length,
            last_id: info.last_id,
            groups: info.groups.map((g) => ({ name: g.name, consumers: g.consumers, pending: g.pending, lag: g.lag })),
          });
        }
        const dlq: HealthPicture['dlq'] = [];
        for (const topic of ALL_TOPICS) dlq.push({ topic: dlqTopic(topic), length: await bus.length(dlqTopic(topic)) });
        this.health.streams = streams;
        this.health.dlq = dlq;
      }
    } catch (err) {
      this.noteBus(false, now);
      this.deps.logger.debug({ err }, 'dashboard: stream info failed');
    }
    this.health.checked_at = now;
    this.emit({ event: 'health', data: this.health });
  }

  // -- timers and listeners -----------------------------------------------------------

  private schedulePoll(): void {
    if (this.stopped) return;
    this.pollTimer = setTimeout(() => {
      void this.pollOnce()
        .catch((err: unknown) => this.feedFailed(err))
        .finally(() => this.schedulePoll());
    }, this.deps.pollIntervalMs ?? POLL_INTERVAL_MS);
  }

  private scheduleHealth(): void {
    if (this.stopped) return;
    this.healthTimer = setTimeout(() => {
      void Promise.all([this.checkHealth(), this.refresh()]).finally(() => this.scheduleHealth());
    }, this.deps.healthIntervalMs ?? HEALTH_INTERVAL_MS);
  }

  /** Sends an event to every listener, unless it is identical to the last one of its kind. */
  private emit(event: HubEvent): void {
    if (this.stopped) return;
    const json = JSON.stringify(event.data);
    if (event.event !== 'equity' && this.lastSent.get(event.event) === json) return;
    this.lastSent.set(event.event, json);
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch (err) {
        this.deps.logger.warn({ err }, 'dashboard: an event listener failed');
      }
    }
  }
}
