/**
 * Does a long replay's memory level off? `node --expose-gc --import tsx
 * bench/lib/backtest-memory.ts DAYS` replays the backtest bench's data (five symbols,
 * 1-minute bars, a signal per symbol per hour) and prints the heap after a full GC and
 * the RSS every ten simulated days (docs/backtest.md, "Memory").
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runBacktest } from '../../src/backtest/driver.js';
import { describePriceFiles } from '../../src/backtest/readers.js';
import { defaultConfig } from '../../src/platform/config.js';
import { silentLogger } from '../../src/platform/logger.js';
import { generate, signals } from './backtest.js';

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc --import tsx bench/lib/backtest-memory.ts DAYS');
const days = Number(process.argv[2] ?? 60);
const DAY = 86_400_000;
const dir = mkdtempSync(join(tmpdir(), 'qt-bench-mem-'));
try {
  const paths = await generate(join(dir, 'klines'), days);
  const list = signals(days);
  const start = list[0]!.ts - 30_000;
  let printed = -10;
  await runBacktest({
    files: describePriceFiles(paths),
    config: defaultConfig({ risk: { max_daily_entries: 1000, max_drawdown_pct: 1 } }),
    logger: silentLogger,
    signals: list,
    progressEvery: 100_000,
    onProgress: (p) => {
      const day = Math.floor((p.simTs - start) / DAY);
      if (day < printed + 10 && !p.done) return;
      printed = day;
      gc();
      const m = process.memoryUsage();
      console.log(`day ${String(day).padStart(3)}  heap after GC ${(m.heapUsed / 1e6).toFixed(1)} MB  rss ${(m.rss / 1e6).toFixed(0)} MB`);
    },
  });
} finally {
  rmSync(dir, { recursive: true, force: true });
}
