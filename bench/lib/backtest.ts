/**
 * The backtest section of `npm run bench`: 1-minute bars for five symbols, generated in
 * Binance's kline format (12 columns, no header, one CSV per symbol and month) into a
 * temp folder, with one signal per symbol per hour (BUY on even hours, SELL on odd ones:
 * the SELL closes the BUY), through the whole loop (src/backtest/driver.ts: the same
 * three services on the embedded bus, simulated clock). Reports bars/s and seconds.
 */
import { createWriteStream, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { once } from 'node:events';
import { runBacktest } from '../../src/backtest/driver.js';
import { describePriceFiles } from '../../src/backtest/readers.js';
import type { TimedSignal } from '../../src/backtest/signals.js';
import { defaultConfig } from '../../src/platform/config.js';
import { silentLogger } from '../../src/platform/logger.js';

const SYMBOLS: [string, number][] = [['BTCUSDT', 42_000], ['ETHUSDT', 2_300], ['BNBUSDT', 310], ['SOLUSDT', 100], ['XRPUSDT', 0.6]];
const M = 60_000;
const START = Date.UTC(2024, 0, 1);

export interface BacktestBenchResult {
  days: number;
  bars: number;
  ticks: number;
  published_ticks: number;
  signals: number;
  trades: number;
  seconds: number;
  generate_seconds: number;
  bars_per_s: number;
  peak_rss_mb: number;
}

/** A seeded walk per symbol; writes monthly files; returns their paths. */
export async function generate(dir: string, days: number): Promise<string[]> {
  mkdirSync(dir, { recursive: true });
  const paths: string[] = [];
  for (const [s, [symbol, start]] of SYMBOLS.entries()) {
    let price = start;
    let seed = 12345 + s;
    const rand = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
    const decimals = start < 10 ? 4 : 2;
    let month = '';
    let out: ReturnType<typeof createWriteStream> | null = null;
    let buffer: string[] = [];
    const flush = async () => {
      if (out && buffer.length > 0 && !out.write(buffer.join(''))) await once(out, 'drain');
      buffer = [];
    };
    for (let i = 0; i < days * 1440; i += 1) {
      const t = START + i * M;
      const m = new Date(t).toISOString().slice(0, 7);
      if (m !== month) {
        await flush();
        if (out) {
          out.end();
          await once(out, 'finish');
        }
        month = m;
        const path = join(dir, `${symbol}-1m-${m}.csv`);
        paths.push(path);
        out = createWriteStream(path);
      }
      const open = price;
      const close = price * (1 + (rand() - 0.5) * 0.002);
      const high = Math.max(open, close) * (1 + rand() * 0.0008);
      const low = Math.min(open, close) * (1 - rand() * 0.0008);
      const f = (x: number) => x.toFixed(decimals);
      buffer.push(`${t},${f(open)},${f(high)},${f(low)},${f(close)},12.5,${t + M - 1},525000.1,321,6.2,260000.2,0\n`);
      price = Number(f(close));
      if (buffer.length >= 4096) await flush();
    }
    await flush();
    if (out) {
      out.end();
      await once(out, 'finish');
    }
  }
  return paths;
}

export function signals(days: number): TimedSignal[] {
  const out: TimedSignal[] = [];
  for (let h = 0; h < days * 24; h += 1) {
    for (const [symbol] of SYMBOLS) {
      out.push({ ts: START + h * 3_600_000 + 30_000, symbol, action: h % 2 === 0 ? 'BUY' : 'SELL', confidence: 0.8, source: 'bench', signal_id: `b-${symbol}-${h}` });
    }
  }
  return out;
}

export async function runBacktestBench(options: { days: number; tmpDir: string }): Promise<BacktestBenchResult> {
  const g0 = performance.now();
  const paths = await generate(join(options.tmpDir, 'klines'), options.days);
  const generateSeconds = (performance.now() - g0) / 1000;
  const list = signals(options.days);
  // Default rules, except the daily-entry limit (one entry per symbol every other hour is
  // 60 a day) and the circuit breaker (random entries lose their fees: at 15% the account
  // would halt within weeks and the rest of the year would measure an idle loop).
  const config = defaultConfig({ risk: { max_daily_entries: 1000, max_drawdown_pct: 1 } });
  let peak = 0;
  const t0 = performance.now();
  const raw = await runBacktest({
    files: describePriceFiles(paths),
    config,
    logger: silentLogger,
    signals: list,
    onProgress: () => (peak = Math.max(peak, process.memoryUsage().rss)),
    progressEvery: 100_000,
  });
  const seconds = (performance.now() - t0) / 1000;
  peak = Math.max(peak, process.memoryUsage().rss);
  return {
    days: options.days,
    bars: raw.counts.bars,
    ticks: raw.counts.ticks,
    published_ticks: raw.counts.published_ticks,
    signals: list.length,
    trades: raw.trades.length,
    seconds: Math.round(seconds * 10) / 10,
    generate_seconds: Math.round(generateSeconds * 10) / 10,
    bars_per_s: Math.round(raw.counts.bars / seconds),
    peak_rss_mb: Math.round(peak / 1e6),
  };
}

/** Standalone: `npx tsx bench/lib/backtest.ts DAYS` (what bench/run.ts runs as its backtest phase). */
if (process.argv[1]?.endsWith('backtest.ts') && process.argv[2]) {
  const { mkdtempSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const dir = mkdtempSync(join(tmpdir(), 'qt-bench-bt-'));
  try {
    console.log(JSON.stringify(await runBacktestBench({ days: Number(process.argv[2]), tmpDir: dir })));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
