/**
 * `quantum backtest` end to end (issue 15, "Done when"): a kline CSV and a signals JSONL
 * through the real command (bin/quantum.js as a process) write report.json, trades.csv
 * and report.html; the final balance equals the one worked out by hand below; the same
 * run twice gives byte-identical report.json. Then, in process: no look-ahead, the
 * readers (zip + .CHECKSUM, microsecond timestamps), conflation changing nothing, and
 * a strategy module.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBacktest, type BacktestInput } from '../src/backtest/driver.js';
import { describePriceFiles } from '../src/backtest/readers.js';
import { buildReport } from '../src/backtest/report.js';
import { loadStrategy, readSignals } from '../src/backtest/signals.js';
import { defaultConfig } from '../src/platform/config.js';
import { silentLogger } from '../src/platform/logger.js';
import { BIN, REPO, ensureBuilt } from './helpers/processes.js';
import { zipOneFile } from './helpers/zip.js';

const T0 = Date.UTC(2024, 0, 1);
const M = 60_000;
let dir: string;

function klines(bars: readonly (readonly [number, number, number, number])[], start = T0, micro = false): string {
  const ts = (ms: number) => (micro ? `${ms}000` : String(ms));
  return bars.map(([o, h, l, c], i) => `${ts(start + i * M)},${o},${h},${l},${c},1.0,${ts(start + i * M + M - 1)},1,1,1,1,0`).join('\n') + '\n';
}

function jsonl(rows: readonly object[]): string {
  return rows.map((r) => JSON.stringify(r)).join('\n') + '\n';
}

function runCli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, 'backtest', ...args], { cwd: dir, env: { ...process.env, QT_CONFIG: '' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'qt-backtest-'));
  await ensureBuilt();
}, 200_000);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('quantum backtest (the command, as a process)', () => {
  // Bar ticks (docs/backtest.md): open at :00, the extreme nearer the open at :20, the
  // other at :40, the close at :59.999.
  //   bar 0 00:00  39000 flat
  //   bar 1 00:01  O 40000 H 40500 L 39900 C 40200 → 40000 @00:01:00, 39900 @00:01:20, 40500 @00:01:40, 40200 @00:01:59.999
  //   bar 2 00:02  O 41000 H 41000 L 40800 C 40900 → 41000 @00:02:00, 41000 @00:02:20, 40800 @00:02:40, 40900 @00:02:59.999
  //   bars 3-5     40900 flat
  const BARS = [[39000, 39000, 39000, 39000], [40000, 40500, 39900, 40200], [41000, 41000, 40800, 40900], [40900, 40900, 40900, 40900], [40900, 40900, 40900, 40900], [40900, 40900, 40900, 40900]] as const;
  const SIGNALS = [
    { ts: T0 + M + 10_000, symbol: 'BTCUSDT', action: 'BUY', confidence: 0.9, source: 'model-a' }, // 00:01:10
    { ts: T0 + 2 * M + 30_000, symbol: 'BTCUSDT', action: 'SELL', confidence: 0.9, source: 'model-a' }, // 00:02:30
  ];
  // Worked out by hand from the SPEC (§4 sizing, §5 fills, §6 accounting), with the
  // default config except execution.max_slippage_pct 0 (slippage is uniform in
  // [0, max_slippage_pct]: 0 makes it exactly 0; kline ticks carry no bid/ask, so fills
  // take the last price):
  // BUY stamped 00:01:10 → the first price at or after it: 39900 @00:01:20 (not 40000
  //   before it, not 40500 after). Kelly: p 0.9, b 1 (no round trips, no stop/target) →
  //   0.9 − 0.1 = 0.8; × kelly_fraction 0.25 = 0.2, capped at max_position_pct 0.1 →
  //   notional 0.1 × 10,000 = 1,000; quantity ⌊1000 / 39900⌋ at step 0.00001 = 0.02506.
  //   Fee 0.02506 × 39900 × 0.0004 = 0.3999576.
  // SELL stamped 00:02:30 (opposite side: a CLOSE of the whole position, always approved)
  //   → 40800 @00:02:40. Gross (40800 − 39900) × 0.02506 = 22.554;
  //   fee 0.02506 × 40800 × 0.0004 = 0.4089792.
  // Final balance 10,000 + 22.554 − 0.3999576 − 0.4089792 = 10,021.7450632.
  const EXPECTED_BALANCE = 10_021.7450632;

  it('writes report.json, trades.csv and report.html with the hand-computed balance, twice byte-identical', async () => {
    writeFileSync(join(dir, 'BTCUSDT-1m-2024-01.csv'), klines(BARS));
    writeFileSync(join(dir, 'signals.jsonl'), jsonl(SIGNALS));
    writeFileSync(join(dir, 'cfg.json'), JSON.stringify({ execution: { max_slippage_pct: 0 } }));
    const args = ['--prices', 'BTCUSDT-1m-2024-01.csv', '--signals', 'signals.jsonl', '-c', 'cfg.json', '--plain'];
    const first = await runCli([...args, '--out', 'run1']);
    expect(first.stderr).toContain('backtest: 100.0%');
    expect(first.code).toBe(0);
    expect(first.stdout).toContain('final balance              10021.75 USD');
    const report = JSON.parse(readFileSync(join(dir, 'run1', 'report.json'), 'utf8'));
    expect(report.summary.final_balance_usd).toBe(EXPECTED_BALANCE);
    expect(report.summary.fees_usd).toBe(0.8089368);
    expect(report.trades).toEqual([
      expect.objectContaining({ side: 'LONG', entry_ts: T0 + M + 20_000, entry_price: 39900, exit_ts: T0 + 2 * M + 40_000, exit_price: 40800, quantity: 0.02506, net_pnl_usd: 21.7450632, exit_reason: 'signal', source: 'model-a' }),
    ]);
    expect(report.signals).toMatchObject({ received: 2, approved: 2, rejected: 0 });
    for (const key of ['start_ts', 'end_ts', 'initial_balance_usd', 'final_balance_usd', 'final_equity_usd', 'net_pnl_usd', 'return_pct', 'max_drawdown_pct', 'max_drawdown_duration_ms', 'sharpe', 'sortino', 'calmar', 'profit_factor', 'expectancy_usd', 'win_rate', 'trades', 'fees_usd', 'exposure_time_pct']) {
      expect(report.summary).toHaveProperty(key);
    }
    for (const key of ['equity_curve', 'per_symbol', 'per_source', 'per_exit_reason', 'monthly_returns']) expect(report).toHaveProperty(key);
    expect(readFileSync(join(dir, 'run1', 'trades.csv'), 'utf8').split('\n')[1]).toBe(
      'BTCUSDT,LONG,1704067280000,2024-01-01T00:01:20.000Z,39900,1704067360000,2024-01-01T00:02:40.000Z,40800,0.02506,22.554,0.8089368,21.7450632,signal,model-a',
    );
    expect(readFileSync(join(dir, 'run1', 'report.html'), 'utf8')).toContain('id="equity-chart"');

    const second = await runCli([...args, '--out', 'run2']);
    expect(second.code).toBe(0);
    const sha = (p: string) => createHash('sha256').update(readFileSync(join(dir, p))).digest('hex');
    expect(sha('run2/report.json')).toBe(sha('run1/report.json'));
  }, 60_000);

  it('a bad input stops with exit 2 naming the file, line and field', async () => {
    writeFileSync(join(dir, 'bad-signals.jsonl'), jsonl([{ symbol: 'BTCUSDT', action: 'BUY', confidence: 0.9, source: 'x' }]));
    const noTs = await runCli(['--prices', 'BTCUSDT-1m-2024-01.csv', '--signals', 'bad-signals.jsonl', '--out', 'bad']);
    expect(noTs.code).toBe(2);
    expect(noTs.stderr).toContain('bad-signals.jsonl:1: ts: required');
    writeFileSync(join(dir, 'ETHUSDT-1m-2024-01.csv'), '1704067200000,1,2\n');
    const badRow = await runCli(['--prices', 'ETHUSDT-1m-2024-01.csv', '--signals', 'signals.jsonl', '--out', 'bad']);
    expect(badRow.code).toBe(2);
    expect(badRow.stderr).toContain('ETHUSDT-1m-2024-01.csv:1: a kline row has 12 columns');
    const none = await runCli(['--prices', 'BTCUSDT-1m-2024-01.csv', '--out', 'bad']);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('give --signals FILE or --strategy');
    writeFileSync(join(dir, 'bad-config.json'), JSON.stringify({ risk: { min_confidence: 2 } }));
    const badConfig = await runCli(['--prices', 'BTCUSDT-1m-2024-01.csv', '--signals', 'signals.jsonl', '-c', 'bad-config.json', '--out', 'bad']);
    expect(badConfig.code).toBe(2);
    expect(badConfig.stderr).toContain('risk.min_confidence');
  }, 60_000);
});

const config = defaultConfig();
const exact = defaultConfig({ execution: { max_slippage_pct: 0 } });

async function backtest(input: Partial<BacktestInput> & { files: BacktestInput['files'] }) {
  return runBacktest({ config: exact, logger: silentLogger, ...input });
}

describe('no look-ahead', () => {
  it('a signal stamped t fills on the first price of its symbol at or after t: never earlier, never later than that one', async () => {
    // One price per second, 100, 101, 102, …: the fill price tells which tick was used.
    const ticks = Array.from({ length: 120 }, (_, i) => ({ ts: T0 + i * 1000, symbol: 'ETHUSDT', price: 100 + i }));
    writeFileSync(join(dir, 'eth.jsonl'), jsonl(ticks));
    const cases = [
      { ts: T0 + 10_000, expect: 110 }, // exactly on a tick: that tick
      { ts: T0 + 30_001, expect: 131 }, // 1 ms after a tick: the next one
      { ts: T0 + 50_999, expect: 151 }, // 1 ms before a tick: that one, never the earlier 150
    ];
    const signals = cases.flatMap((c, i) => [
      { ts: c.ts, symbol: 'ETHUSDT', action: 'BUY', confidence: 0.9, source: 's', signal_id: `open-${i}` },
      { ts: c.ts + 5000, symbol: 'ETHUSDT', action: 'CLOSE', confidence: 1, source: 's', signal_id: `close-${i}` },
    ]);
    writeFileSync(join(dir, 'eth-signals.jsonl'), jsonl(signals));
    const raw = await backtest({ files: describePriceFiles([join(dir, 'eth.jsonl')]), signals: await readSignals(join(dir, 'eth-signals.jsonl')) });
    expect(raw.trades.map((t) => [t.entry_ts, t.entry_price])).toEqual(cases.map((c) => [T0 + (c.expect - 100) * 1000, c.expect]));
    expect(raw.trades.map((t) => t.exit_price)).toEqual(cases.map((c) => Math.ceil((c.ts + 5000 - T0) / 1000) + 100));
  }, 60_000);
});

describe('readers', () => {
  it('reads a Binance .zip, verifying its .CHECKSUM, with microsecond timestamps; refuses a wrong checksum', async () => {
    const csv = Buffer.from(klines([[100, 101, 99, 100.5], [100.5, 102, 100, 101]], Date.UTC(2025, 0, 1), true));
    const zip = zipOneFile('SOLUSDT-1m-2025-01.csv', csv);
    const path = join(dir, 'SOLUSDT-1m-2025-01.zip');
    writeFileSync(path, zip);
    writeFileSync(`${path}.CHECKSUM`, `${createHash('sha256').update(zip).digest('hex')}  SOLUSDT-1m-2025-01.zip\n`);
    const raw = await backtest({ files: describePriceFiles([path]), signals: [] });
    expect(raw.startTs).toBe(Date.UTC(2025, 0, 1));
    expect(raw.endTs).toBe(Date.UTC(2025, 0, 1) + 2 * M - 1);
    expect(raw.counts).toMatchObject({ bars: 2, ticks: 8 });
    writeFileSync(`${path}.CHECKSUM`, `${'0'.repeat(64)}  SOLUSDT-1m-2025-01.zip\n`);
    await expect(backtest({ files: describePriceFiles([path]), signals: [] })).rejects.toThrow(/does not match SOLUSDT-1m-2025-01.zip.CHECKSUM/);
  }, 60_000);
});

describe('readers: aggTrades, --from and --to', () => {
  it('replays aggTrades rows as ticks and keeps only the window asked for', async () => {
    const rows = Array.from({ length: 20 }, (_, i) => `${1000 + i},${(2300 + i).toFixed(2)},0.5,${1 + i},${1 + i},${T0 + i * 1000},${i % 2 === 0 ? 'true' : 'false'},true`);
    const path = join(dir, 'ETHUSDT-aggTrades-2024-01.csv');
    writeFileSync(path, `${rows.join('\n')}\n`);
    const signals = [{ ts: T0 + 5_500, symbol: 'ETHUSDT', action: 'BUY' as const, confidence: 0.9, source: 'agg', signal_id: 'a1' }, { ts: T0 + 9_000, symbol: 'ETHUSDT', action: 'CLOSE' as const, confidence: 1, source: 'agg', signal_id: 'a2' }];
    const raw = await backtest({ files: describePriceFiles([path]), signals, from: T0 + 3_000, to: T0 + 12_000 });
    expect([raw.startTs, raw.endTs]).toEqual([T0 + 3_000, T0 + 12_000]);
    expect(raw.counts.ticks).toBe(10);
    expect(raw.trades.map((t) => [t.entry_price, t.exit_price])).toEqual([[2306, 2309]]);
  }, 60_000);
});

describe('conflation', () => {
  // Big positions and a tight breaker: the halt must come at the same tick either way.
  const tight = defaultConfig({ risk: { max_position_pct: 0.5, max_exposure_pct: 1, kelly_fraction: 1, max_drawdown_pct: 0.012 } });
  // The daily loss limit latches on the first input that shows the loss past it, a tick included.
  const daily = defaultConfig({ risk: { max_position_pct: 0.5, max_exposure_pct: 1, kelly_fraction: 1, max_daily_loss_pct: 0.002 } });
  it.each([
    ['with stop-losses armed (open positions publish every tick)', true, config],
    ['without exit levels (open positions are conflated too, within the drawdown guard)', false, config],
    ['with two large positions and the circuit breaker reached', false, tight],
    ['with large positions and the daily loss limit reached (it latches on a tick)', false, daily],
  ])('gives the same report as publishing every tick: %s', async (name, stops, runConfig) => {
    // Two symbols, a wavy walk, entries (with or without stops) and plain closes.
    const bars = (base: number, seed: number) =>
      Array.from({ length: 240 }, (_, i) => {
        const o = base * (1 + 0.01 * Math.sin((i + seed) / 9));
        const c = base * (1 + 0.01 * Math.sin((i + seed + 1) / 9));
        return [Number(o.toFixed(2)), Number((Math.max(o, c) * 1.002).toFixed(2)), Number((Math.min(o, c) * 0.998).toFixed(2)), Number(c.toFixed(2))] as const;
      });
    writeFileSync(join(dir, 'BTCUSDT-1m-2024-02.csv'), klines(bars(42_000, 0)));
    writeFileSync(join(dir, 'ETHUSDT-1m-2024-02.csv'), klines(bars(2_300, 5)));
    const signals = [];
    for (let h = 0; h < 8; h += 1) {
      for (const [symbol, price] of [['BTCUSDT', 42_000], ['ETHUSDT', 2_300]] as const) {
        const at = T0 + h * 30 * M + 7_000;
        const stop = stops ? { stop_loss: price * (h % 2 ? 1.006 : 0.994) } : {};
        signals.push({ ts: at, symbol, action: h % 2 ? 'SELL' : 'BUY', confidence: 0.7 + h / 40, source: `m${h % 3}`, ...stop });
        signals.push({ ts: at + 20 * M, symbol, action: 'CLOSE', confidence: 1, source: 'exit' });
      }
    }
    writeFileSync(join(dir, 'mixed-signals.jsonl'), jsonl(signals));
    const files = describePriceFiles([join(dir, 'BTCUSDT-1m-2024-02.csv'), join(dir, 'ETHUSDT-1m-2024-02.csv')]);
    const input = { files, signals: await readSignals(join(dir, 'mixed-signals.jsonl')), config: runConfig };
    const fast = await backtest({ ...input, conflate: true });
    const full = await backtest({ ...input, conflate: false });
    expect(fast.counts.published_ticks).toBeLessThan(full.counts.published_ticks);
    expect(fast.trades.length).toBeGreaterThan(3);
    if (stops) expect(new Set(fast.trades.map((t) => t.exit_reason)).size).toBeGreaterThan(1);
    if (name.includes('breaker')) expect(fast.signals.rejected_by_reason.CIRCUIT_BREAKER).toBeGreaterThan(0);
    if (name.includes('daily loss')) expect(fast.signals.rejected_by_reason.DAILY_LOSS_LIMIT).toBeGreaterThan(0);
    const strip = (r: typeof fast) => JSON.stringify(buildReport({ ...r, counts: { ...r.counts, published_ticks: 0 } }, { inputs: [] }));
    expect(strip(fast)).toBe(strip(full));
  }, 120_000);
});

describe('conflation and the daily loss limit', () => {
  it('an intrabar dip past the limit that recovers by the close latches it in both modes (the dip tick is never held away)', async () => {
    // ETH flat at 2300 but for one bar whose low is 1.5 % down; half the equity in ETH loses
    // 0.75 % there, past a 0.5 % limit, and is back to flat at that bar's close.
    const flatBars = (price: number, n: number, dipAt = -1) =>
      Array.from({ length: n }, (_, i): readonly [number, number, number, number] => (i === dipAt ? [price, price, price * 0.985, price] : [price, price, price, price]));
    writeFileSync(join(dir, 'ETHUSDT-1m-2024-03.csv'), klines(flatBars(2300, 30, 5)));
    writeFileSync(join(dir, 'BTCUSDT-1m-2024-03.csv'), klines(flatBars(42_000, 30)));
    const signals = [
      { ts: T0 + 10_000, symbol: 'ETHUSDT', action: 'BUY' as const, confidence: 0.9, source: 'm', signal_id: 'eth' },
      { ts: T0 + 20 * M, symbol: 'BTCUSDT', action: 'BUY' as const, confidence: 0.9, source: 'm', signal_id: 'btc' },
    ];
    const runConfig = defaultConfig({ risk: { max_position_pct: 0.5, max_exposure_pct: 1, kelly_fraction: 1, max_daily_loss_pct: 0.005 } });
    const files = describePriceFiles([join(dir, 'ETHUSDT-1m-2024-03.csv'), join(dir, 'BTCUSDT-1m-2024-03.csv')]);
    const fast = await backtest({ files, signals, config: runConfig, conflate: true });
    const full = await backtest({ files, signals, config: runConfig, conflate: false });
    expect(full.signals.rejected_by_reason).toEqual({ DAILY_LOSS_LIMIT: 1 });
    expect(fast.signals.rejected_by_reason).toEqual({ DAILY_LOSS_LIMIT: 1 });
    expect(fast.counts.published_ticks).toBeLessThan(full.counts.published_ticks);
  }, 60_000);
});

describe('strategies', () => {
  it('runs a strategy module with the demo strategy interface (and the demo strategy itself)', async () => {
    const module = join(dir, 'every-other.mjs');
    writeFileSync(
      module,
      `export function createStrategy({ symbols }) {
  let last = null, n = 0;
  return {
    onPrice(symbol, price) { last = { symbol, price }; },
    next() {
      if (!last) return null;
      n += 1;
      return { symbol: last.symbol, action: n % 2 ? 'BUY' : 'SELL', confidence: 0.8, source: 'every-other' };
    },
  };
}
`,
    );
    const files = describePriceFiles([join(dir, 'BTCUSDT-1m-2024-02.csv')]);
    const options = { symbols: ['BTCUSDT'], priceStepPct: 0.001, seed: 42 };
    const raw = await backtest({ files, strategy: await loadStrategy(module, options), strategyIntervalMs: 30 * M });
    expect(raw.signals.received).toBe(8);
    expect(raw.trades.every((t) => t.source === 'every-other')).toBe(true);
    expect(raw.trades.length).toBeGreaterThan(0);
    const demo = await backtest({ files, strategy: await loadStrategy('demo', options), strategyIntervalMs: 5 * M });
    expect(demo.signals.received).toBe(48);
    // The example module of docs/backtest.md runs as printed.
    const docs = readFileSync(join(REPO, 'docs', 'backtest.md'), 'utf8');
    const example = /```js\n(\/\/ my-strategy\.mjs[\s\S]*?)```/.exec(docs)?.[1];
    expect(example).toBeDefined();
    writeFileSync(join(dir, 'my-strategy.mjs'), example!);
    const streak = await backtest({ files, strategy: await loadStrategy(join(dir, 'my-strategy.mjs'), options) });
    expect(streak.signals.received).toBeGreaterThan(0);
  }, 60_000);
});
