/**
 * `quantum up`: the whole loop in one process on the embedded bus (or Redis), the
 * demo signal source, and a live one-screen summary. Ctrl-C stops cleanly.
 */
import { createWriteStream } from 'node:fs';
import { resolve } from 'node:path';
import { pino, destination as pinoDestination, type DestinationStream } from 'pino';
import type { EventBus } from '../bus/bus.js';
import { createBus } from '../bus/factory.js';
import { BusWatch, type BusStatus } from '../core/bus-watch.js';
import { describeEntryState, describeProtections, entryState } from '../core/entry-state.js';
import type { Config } from '../platform/config.js';
import { systemClock } from '../platform/clock.js';
import type { Logger } from '../platform/logger.js';
import { JournalService } from '../services/journal/service.js';
import type { JournalStore } from '../services/journal/store.js';
import { startLoop, type Loop } from '../services/loop.js';
import { describeDemoProfile } from './demo-profile.js';
import { openJournalStore } from './journal.js';
import { redactUrl, redisDisplay } from './serve.js';
import { untilSignal } from './signals.js';
import { holdServiceLeases } from '../services/common/lease.js';
import { hostname } from 'node:os';
import { renderSummary, renderSummaryLine, formatUptime, type SummaryFigures } from './summary.js';
import { FOLDED_EVENTS, FOLDED_MESSAGES, UpJournal, type ActivityTotals } from './up-journal.js';

export interface UpOptions {
  demo: boolean;
  plain: boolean;
  dashboard: boolean;
  /** The demo profile is in force (demo source on, no config file): say so on screen and in the log. */
  demoProfile?: boolean;
  /** Write the trade journal (journal.url, default sqlite:./quantum-journal.sqlite). */
  journal: boolean;
}

const TTY_REFRESH_MS = 1000;
const PLAIN_REFRESH_MS = 5000;

/** pino with the per-signal messages folded into the journal's activity lines (bounded logs). */
export function upLogger(destination: DestinationStream): Logger {
  return pino(
    {
      level: process.env.QT_LOG_LEVEL ?? 'info',
      hooks: {
        logMethod(args, method) {
          if (args.some((a) => typeof a === 'string' && FOLDED_MESSAGES.has(a))) return;
          const first: unknown = args[0];
          if (typeof first === 'object' && first !== null && FOLDED_EVENTS.has(String((first as { event?: unknown }).event))) return;
          method.apply(this, args);
        },
      },
    },
    destination,
  );
}

/** Wall-clock time of day for the screen (the operator's local time). */
export function timeOfDay(epochMs: number, seconds = false): string {
  const d = new Date(epochMs);
  const two = (n: number) => String(n).padStart(2, '0');
  return `${two(d.getHours())}:${two(d.getMinutes())}${seconds ? `:${two(d.getSeconds())}` : ''}`;
}

export function describeBus(status: BusStatus): string {
  if (!status.connected) return `DOWN since ${timeOfDay(status.down_since!, true)} (retrying; figures may be stale)`;
  if (status.back_at !== null) {
    return `connected, back since ${timeOfDay(status.back_at, true)} (was down ${formatUptime((status.last_outage_ms ?? 0) / 1000)})`;
  }
  return 'connected';
}

export async function runUp(config: Config, options: UpOptions): Promise<number> {
  const live = process.stdout.isTTY === true && !options.plain;
  // On a terminal the screen belongs to the summary: logs go to a file.
  const logFile = live ? resolve('quantum-up.log') : undefined;
  const logger = upLogger(logFile ? createWriteStream(logFile, { flags: 'a' }) : pinoDestination(2));

  let bus: EventBus;
  try {
    bus = await createBus({ redisUrl: config.redis_url, clusterNodes: config.redis_cluster_nodes, prefix: config.stream_prefix, maxlen: config.streams.maxlen });
  } catch (err) {
    console.error(`quantum up: cannot connect to Redis at ${redactUrl(config.redis_url ?? '')}: ${(err as Error).message}`);
    logger.error({ err: (err as Error).message }, 'quantum up: cannot connect to Redis');
    return 1;
  }

  // On Redis, one active instance per service and account: all its leases (the journal's too) or none.
  const leases = await holdServiceLeases(bus, {
    services: options.journal ? ['risk', 'execution', 'monitor', 'journal'] : ['risk', 'execution', 'monitor'],
    holder: `${hostname()}/${config.host}:up`,
    ttlMs: config.lease.ttl_ms,
    logger,
  });
  if (leases && 'refused' in leases) {
    console.error(`quantum up: ${leases.refused}`);
    await bus.close();
    return 1;
  }

  // The trade journal first: its group then exists before the first message is published.
  let tradeJournal: { service: JournalService; store: JournalStore } | undefined;
  if (options.journal) {
    try {
      tradeJournal = await startJournal(bus, config, logger);
    } catch (err) {
      console.error(`quantum up: journal not started: ${(err as Error).message} (journal.url; --no-journal to run without it)`);
      logger.error({ err: (err as Error).message }, 'quantum up: journal not started');
      await leases?.release();
      await bus.close();
      return 1;
    }
  }

  let loop: Loop;
  try {
    loop = await startLoop({ bus, config, clock: systemClock, logger, listen: true, demo: options.demo });
  } catch (err) {
    console.error(`quantum up: ${(err as Error).message}`);
    logger.error({ err: (err as Error).message }, 'quantum up: not started');
    await stopJournal(tradeJournal);
    await leases?.release();
    await bus.close();
    return 1;
  }

  let dashboard: { url: string; stop(): Promise<void> } | undefined;
  if (options.dashboard) {
    try {
      const { startDashboard } = await import('../services/dashboard/server.js');
      dashboard = await startDashboard({ bus, config, clock: systemClock, logger, listen: true });
    } catch (err) {
      // Like any other taken port: stop, so the URL never shows another instance's dashboard.
      console.error(`quantum up: ${(err as Error).message}; or run with --no-dashboard`);
      logger.error({ err: (err as Error).message }, 'quantum up: not started');
      await loop.stop();
      await stopJournal(tradeJournal);
      await leases?.release();
      await bus.close();
      return 1;
    }
  }

  const startedAt = systemClock.now();
  const host = config.host === '0.0.0.0' ? '127.0.0.1' : config.host;
  const urls = {
    risk: `http://${host}:${loop.risk.port}`,
    execution: `http://${host}:${loop.execution.port}`,
    monitor: `http://${host}:${loop.monitor.port}`,
    dashboard: dashboard?.url,
  };
  const busLabel = bus.kind === 'redis' ? `redis ${redisDisplay(config)}` : 'embedded';
  const profile = options.demoProfile ? describeDemoProfile() : undefined;
  const journal = new UpJournal(logger);
  journal.started(startedAt, { bus: busLabel, urls, demo: options.demo, profile, seed: config.seed }, activityTotals(loop));

  const busWatch = new BusWatch();
  let drawing = false;
  const draw = async () => {
    if (drawing) return;
    drawing = true;
    try {
      const now = systemClock.now();
      const change = busWatch.observe(await bus.ping().catch(() => false), now);
      const figures = collectFigures(loop, { now, startedAt, busLabel, urls, demo: options.demo, logFile, profile, bus: busWatch.status });
      journal.observe(now, activityTotals(loop), figures.tradingState, { change, label: figures.busState });
      if (live) process.stdout.write(`\x1b[H\x1b[2J${renderSummary(figures)}\n`);
      else console.log(renderSummaryLine(figures));
    } finally {
      drawing = false;
    }
  };
  // Listen for Ctrl-C/SIGTERM before saying we run: a stop right after must stop cleanly.
  const stopSignal = untilSignal();
  if (!live) {
    console.log(
      `quantum up: loop running on the ${busLabel} bus; risk ${urls.risk}, execution ${urls.execution}, monitor ${urls.monitor}` +
        (urls.dashboard ? `, dashboard ${urls.dashboard}` : '') +
        (tradeJournal ? `; journal ${tradeJournal.store.label}` : ''),
    );
    if (profile) console.log(`quantum up: ${profile}`);
  }
  await draw();
  const timer = setInterval(() => void draw(), live ? TTY_REFRESH_MS : PLAIN_REFRESH_MS);

  const outcome = await Promise.race([stopSignal.then((signal) => ({ signal })), ...(leases ? [leases.lost.then((why) => ({ why }))] : [])]);
  clearInterval(timer);
  if (live) process.stdout.write('\n');
  if ('why' in outcome) {
    // Fenced: stop consuming before the lease can lapse in Redis.
    console.error(`quantum up: lease lost (${outcome.why}), stopping`);
    logger.error({ why: outcome.why }, 'quantum up: lease lost, stopping');
    await loop.stop();
    await dashboard?.stop();
    await stopJournal(tradeJournal);
    await bus.close();
    logger.flush?.();
    return 1;
  }
  console.log(`quantum up: ${outcome.signal} received, stopping…`);
  await dashboard?.stop();
  await loop.stop();
  await stopJournal(tradeJournal);
  journal.stopped(systemClock.now(), activityTotals(loop), outcome.signal);
  await leases?.release();
  await bus.close();
  console.log('quantum up: stopped cleanly');
  logger.flush?.();
  return 0;
}

async function startJournal(bus: EventBus, config: Config, logger: Logger) {
  const store = await openJournalStore(config);
  // The embedded bus starts empty and the loop's books start flat: so does the round-trip fold.
  const service = new JournalService({ bus, config, clock: systemClock, logger: logger.child({ service: 'journal' }), store }, {
    freshBooks: bus.kind === 'embedded',
  });
  try {
    await service.start();
  } catch (err) {
    await store.close();
    throw err;
  }
  return { service, store };
}

/** The embedded bus keeps nothing after exit: the journal writes everything published before it stops. */
async function stopJournal(journal: { service: JournalService; store: JournalStore } | undefined): Promise<void> {
  if (!journal) return;
  const drained = await journal.service.drain(JOURNAL_DRAIN_MS);
  if (!drained) console.error(`quantum up: the journal did not catch up within ${JOURNAL_DRAIN_MS / 1000} s; the rest stays in the streams`);
  await journal.service.stop();
  await journal.store.close();
}

const JOURNAL_DRAIN_MS = 15_000;

function activityTotals(loop: Loop): ActivityTotals {
  const risk = loop.risk.service.stats();
  const execution = loop.execution.service.state.statistics();
  return {
    received: risk.counts.received,
    skipped: risk.counts.skipped,
    approved: risk.counts.approved,
    rejected: risk.counts.rejected,
    rejectedByReason: { ...risk.counts.rejected_by_reason } as Record<string, number>,
    fills: execution.fills,
    orderRejects: execution.rejects,
    closes: risk.closed_trades,
  };
}

function collectFigures(
  loop: Loop,
  ctx: {
    now: number;
    startedAt: number;
    busLabel: string;
    urls: SummaryFigures['urls'];
    demo: boolean;
    logFile?: string;
    profile?: string;
    bus: BusStatus;
  },
): SummaryFigures {
  const risk = loop.risk.service.stats();
  const execution = loop.execution.service.state.statistics();
  const portfolio = loop.monitor.service.state.portfolio();
  const feed = loop.execution.service.source.status(ctx.now);
  const reasons = Object.entries(risk.counts.rejected_by_reason) as Array<[string, number]>;
  return {
    uptimeS: (ctx.now - ctx.startedAt) / 1000,
    bus: ctx.busLabel,
    urls: ctx.urls,
    demo: ctx.demo,
    logFile: ctx.logFile,
    prices:
      feed.source === 'simulator'
        ? 'simulator'
        : `${feed.source} ${feed.connected ? 'connected' : `DOWN ${Math.round(feed.down_ms / 1000)} s`} · reconnects ${feed.reconnects} · gaps ${feed.gaps}`,
    profile: ctx.profile,
    signals: {
      received: risk.counts.received,
      skipped: risk.counts.skipped,
      approved: risk.counts.approved,
      rejected: risk.counts.rejected,
      approvalRate: risk.approval_rate,
    },
    topReasons: reasons.sort((a, b) => b[1] - a[1]).slice(0, 4),
    tradingState: describeEntryState(entryState(risk, ctx.now), (ms) => timeOfDay(ms)),
    protections: describeProtections(risk, ctx.now, (ms) => timeOfDay(ms)) ?? undefined,
    busState: describeBus(ctx.bus),
    fills: {
      orders: execution.orders,
      fills: execution.fills,
      rejects: execution.rejects,
      fillRate: execution.fill_rate,
      avgSlippagePct: execution.avg_slippage_pct,
    },
    portfolio: {
      equity: portfolio.equity_usd,
      balance: portfolio.balance_usd,
      realized: portfolio.realized_pnl_usd,
      unrealized: portfolio.unrealized_pnl_usd,
      fees: portfolio.fees_usd,
      drawdownPct: portfolio.drawdown_pct,
      exposurePct: portfolio.exposure_pct,
      winRate: portfolio.win_rate,
      closedTrades: portfolio.closed_trades,
    },
    positions: loop.monitor.service.positions().map((p) => ({
      symbol: p.symbol,
      side: p.side,
      quantity: p.quantity,
      avgEntry: p.avg_entry_price,
      mark: p.mark_price,
      unrealized: p.unrealized_pnl_usd,
    })),
  };
}
