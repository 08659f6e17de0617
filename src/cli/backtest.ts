/** `quantum backtest`: replays price files and signals through the loop (src/backtest/). */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { destination, pino } from 'pino';
import { runBacktest } from '../backtest/driver.js';
import { progressReporter } from '../backtest/progress.js';
import { describePriceFiles, InputError } from '../backtest/readers.js';
import { buildReport, summaryTable, writeReport } from '../backtest/report.js';
import { loadStrategy, readSignals } from '../backtest/signals.js';
import type { Config } from '../platform/config.js';

export interface BacktestCliOptions {
  prices: string[];
  signals?: string;
  strategy?: string;
  strategyIntervalMs?: number;
  symbol?: string;
  from?: string;
  to?: string;
  out: string;
  conflate: boolean;
  plain: boolean;
  logLevel: string;
}

function parseTime(name: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const ms = /^\d+$/.test(text) ? Number(text) : Date.parse(text);
  if (!Number.isFinite(ms)) throw new InputError(`--${name} must be an ISO date/time (2024-01-01, 2024-01-01T12:00Z) or epoch ms, got "${text}"`);
  return ms;
}

export async function runBacktestCommand(config: Config, options: BacktestCliOptions): Promise<number> {
  try {
    if (options.signals === undefined && options.strategy === undefined) throw new InputError('give --signals FILE or --strategy demo|PATH');
    if (options.symbol !== undefined && !/^[A-Z0-9]{2,20}$/.test(options.symbol)) throw new InputError(`--symbol must be 2-20 upper-case letters or digits, got "${options.symbol}"`);
    const files = describePriceFiles(options.prices, options.symbol);
    const from = parseTime('from', options.from);
    const to = parseTime('to', options.to);
    if (from !== undefined && to !== undefined && to <= from) throw new InputError('--to must be after --from');
    const signals = options.signals === undefined ? undefined : await readSignals(options.signals);
    const strategy = options.strategy === undefined ? undefined : await loadStrategy(options.strategy, {
      symbols: config.instruments.map((i) => i.symbol),
      priceStepPct: config.execution.price_step_pct,
      seed: config.seed,
    });
    const logger = pino({ level: options.logLevel }, destination(2));
    const raw = await runBacktest({
      files,
      config,
      logger,
      signals,
      strategy,
      strategyIntervalMs: options.strategyIntervalMs,
      from,
      to,
      conflate: options.conflate,
      onProgress: progressReporter(process.stderr, process.stderr.isTTY === true && !options.plain),
      progressEvery: 200_000,
    });
    const inputs = [...options.prices, ...(options.signals ? [options.signals] : [])].map((p) => `${p} sha256:${createHash('sha256').update(readFileSync(p)).digest('hex').slice(0, 16)}`);
    const report = buildReport(raw, { inputs });
    const paths = writeReport(options.out, report, raw.prices);
    process.stdout.write(`${summaryTable(report)}\n\nwrote ${paths.json}, ${paths.csv}, ${paths.html}\n`);
    return 0;
  } catch (err) {
    if (err instanceof InputError) {
      console.error(`quantum backtest: ${err.message}`);
      return 2;
    }
    throw err;
  }
}
