/**
 * `quantum up`: the whole loop in one process on the embedded bus (or Redis), the
 * demo signal source, and a live one-screen summary. Ctrl-C stops cleanly.
 */
import { createWriteStream } from 'node:fs';
import { resolve } from 'node:path';
import { createBus } from '../bus/factory.js';
import type { Config } from '../platform/config.js';
import { systemClock } from '../platform/clock.js';
import { createLogger, type Logger } from '../platform/logger.js';
import { startLoop, type Loop } from '../services/loop.js';
import { redactUrl } from './serve.js';
import { untilSignal } from './signals.js';
import { holdServiceLeases } from '../services/common/lease.js';
import { hostname } from 'node:os';
import { renderSummary, renderSummaryLine, type SummaryFigures } from './summary.js';

export interface UpOptions {
  demo: boolean;
  plain: boolean;
  dashboard: boolean;
}

const TTY_REFRESH_MS = 1000;
const PLAIN_REFRESH_MS = 5000;

export async function runUp(config: Config, options: UpOptions): Promise<number> {
  const live = process.stdout.isTTY === true && !options.plain;
  // On a terminal the screen belongs to the summary: logs go to a file.
  const logFile = live ? resolve('quantum-up.log') : undefined;
  const logger: Logger = logFile
    ? createLogger({ destination: createWriteStream(logFile, { flags: 'a' }) })
    : createLogger({ destination: process.stderr });

  let bus;
  try {
    bus = await createBus({ redisUrl: config.redis_url, prefix: config.stream_prefix, maxlen: config.streams.maxlen });
  } catch (err) {
    console.error(`quantum up: cannot connect to Redis at ${redactUrl(config.redis_url ?? '')}: ${(err as Error).message}`);
    return 1;
  }

  // On Redis, one active instance per service and account: all three leases or none.
  const leases = await holdServiceLeases(bus, {
    services: ['risk', 'execution', 'monitor'],
    holder: `${hostname()}/${config.host}:up`,
    ttlMs: config.lease.ttl_ms,
    logger,
  });
  if (leases && 'refused' in leases) {
    console.error(`quantum up: ${leases.refused}`);
    await bus.close();
    return 1;
  }

  let loop: Loop;
  try {
    loop = await startLoop({ bus, config, clock: systemClock, logger, listen: true, demo: options.demo });
  } catch (err) {
    console.error(`quantum up: ${(err as Error).message}`);
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
      console.error(`quantum up: dashboard not started: ${(err as Error).message}`);
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
  const busLabel = bus.kind === 'redis' ? `redis ${redactUrl(config.redis_url ?? '')}` : 'embedded';
  const draw = () => {
    const figures = collectFigures(loop, { startedAt, busLabel, urls, demo: options.demo, logFile });
    if (live) process.stdout.write(`\x1b[H\x1b[2J${renderSummary(figures)}\n`);
    else console.log(renderSummaryLine(figures));
  };
  if (!live) {
    console.log(
      `quantum up: loop running on the ${busLabel} bus; risk ${urls.risk}, execution ${urls.execution}, monitor ${urls.monitor}` +
        (urls.dashboard ? `, dashboard ${urls.dashboard}` : ''),
    );
  }
  draw();
  const timer = setInterval(draw, live ? TTY_REFRESH_MS : PLAIN_REFRESH_MS);

  const outcome = await Promise.race([untilSignal().then((signal) => ({ signal })), ...(leases ? [leases.lost.then((why) => ({ why }))] : [])]);
  clearInterval(timer);
  if (live) process.stdout.write('\n');
  if ('why' in outcome) {
    // Fenced: stop consuming before the lease can lapse in Redis.
    console.error(`quantum up: lease lost (${outcome.why}), stopping`);
    await loop.stop();
    await dashboard?.stop();
    await bus.close();
    return 1;
  }
  console.log(`quantum up: ${outcome.signal} received, stopping…`);
  await dashboard?.stop();
  await loop.stop();
  await leases?.release();
  await bus.close();
  console.log('quantum up: stopped cleanly');
  return 0;
}

function collectFigures(
  loop: Loop,
  ctx: { startedAt: number; busLabel: string; urls: SummaryFigures['urls']; demo: boolean; logFile?: string },
): SummaryFigures {
  const risk = loop.risk.service.stats();
  const execution = loop.execution.service.state.statistics();
  const portfolio = loop.monitor.service.state.portfolio();
  const reasons = Object.entries(risk.counts.rejected_by_reason) as Array<[string, number]>;
  return {
    uptimeS: (systemClock.now() - ctx.startedAt) / 1000,
    bus: ctx.busLabel,
    urls: ctx.urls,
    demo: ctx.demo,
    logFile: ctx.logFile,
    signals: {
      received: risk.counts.received,
      skipped: risk.counts.skipped,
      approved: risk.counts.approved,
      rejected: risk.counts.rejected,
      approvalRate: risk.approval_rate,
    },
    topReasons: reasons.sort((a, b) => b[1] - a[1]).slice(0, 4),
    tradingState: risk.trading_state,
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
