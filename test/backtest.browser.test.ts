/**
 * report.html in a real browser (headless Chromium via playwright-core, as the dashboard
 * test): the file opens from disk with every network request blocked, draws its equity,
 * drawdown and price charts (with the trades on the price) and shows its tables.
 *
 * Without /usr/bin/chromium the file fails under CI (which installs it) and is skipped,
 * loudly, elsewhere.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBacktest } from '../src/backtest/driver.js';
import { describePriceFiles } from '../src/backtest/readers.js';
import { buildReport, writeReport } from '../src/backtest/report.js';
import type { TimedSignal } from '../src/backtest/signals.js';
import { defaultConfig } from '../src/platform/config.js';
import { silentLogger } from '../src/platform/logger.js';

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium && !process.env.CI) {
  console.warn(
    `\n${'!'.repeat(78)}\n!! backtest.browser.test.ts SKIPPED: ${CHROMIUM} is missing.\n` +
      `!! Install it with: apt-get install -y chromium   (CI installs it and fails without it)\n${'!'.repeat(78)}\n`,
  );
}

describe.skipIf(!haveChromium && !process.env.CI)('report.html in a browser', () => {
  let browser: Browser;
  let dir: string;
  let html: string;
  let trades: number;

  beforeAll(async () => {
    if (!haveChromium) throw new Error(`${CHROMIUM} is missing: install Debian's chromium package (apt-get install -y chromium)`);
    dir = mkdtempSync(join(tmpdir(), 'qt-backtest-html-'));
    const t0 = Date.UTC(2024, 0, 1);
    const ticks = Array.from({ length: 600 }, (_, i) => JSON.stringify({ ts: t0 + i * 10_000, symbol: 'ETHUSDT', price: Number((2300 * (1 + 0.01 * Math.sin(i / 30))).toFixed(2)) }));
    writeFileSync(join(dir, 'eth.jsonl'), `${ticks.join('\n')}\n`);
    const signals: TimedSignal[] = [0, 1, 2, 3].flatMap((k): TimedSignal[] => [
      { ts: t0 + k * 1_200_000 + 5_000, symbol: 'ETHUSDT', action: 'BUY', confidence: 0.9, source: 'html-test', signal_id: `o${k}` },
      { ts: t0 + k * 1_200_000 + 600_000, symbol: 'ETHUSDT', action: 'CLOSE', confidence: 1, source: 'html-test', signal_id: `c${k}` },
    ]);
    signals.push({ ts: t0 + 60_000, symbol: 'ETHUSDT', action: 'BUY', confidence: 0.2, source: 'weak', signal_id: 'weak' });
    signals.sort((a, b) => a.ts - b.ts);
    const raw = await runBacktest({ files: describePriceFiles([join(dir, 'eth.jsonl')]), config: defaultConfig(), logger: silentLogger, signals });
    const report = buildReport(raw, { inputs: [] });
    trades = report.trades.length;
    html = writeReport(join(dir, 'out'), report, raw.prices).html;
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('opens offline and draws its charts and tables', async () => {
    const page = await browser.newPage();
    const requests: string[] = [];
    await page.route('**/*', (route) => {
      const url = route.request().url();
      if (url.startsWith('file:')) return route.continue();
      requests.push(url);
      return route.abort();
    });
    const errors: string[] = [];
    page.on('pageerror', (err) => errors.push(err.message));
    await page.goto(pathToFileURL(html).href);
    await page.waitForSelector('body[data-rendered="true"]', { timeout: 15_000 });
    expect(errors).toEqual([]);
    expect(requests).toEqual([]);
    const points = async (selector: string) => Number(await page.getAttribute(`${selector} svg`, 'data-points'));
    expect(await points('#equity-chart')).toBeGreaterThan(10);
    expect(await points('#drawdown-chart')).toBeGreaterThan(10);
    expect(await page.locator('#equity-chart path.series').count()).toBe(1);
    expect(trades).toBeGreaterThanOrEqual(2);
    expect(await page.locator('#price-ETHUSDT circle.marker').count()).toBe(2 * trades); // entry and exit of each
    expect(await page.locator('#trades tbody tr').count()).toBe(trades);
    expect(await page.textContent('#rejected')).toContain('LOW_CONFIDENCE');
    expect(await page.textContent('#per-source')).toContain('html-test');
    await page.close();
  }, 60_000);
});
