/**
 * The dashboard in a real browser: headless Chromium (Debian's `chromium` package)
 * driven by playwright-core, against the loop as `quantum up --no-demo` runs it
 * (in-process, embedded bus, every service listening on a free port). The test
 * publishes signals and price ticks on the bus and watches the page follow, without
 * ever reloading it. Every wait polls with a deadline; nothing sleeps.
 *
 * Without /usr/bin/chromium the file fails under CI (which installs it) and is skipped,
 * loudly, elsewhere.
 */
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EmbeddedBus } from '../src/bus/embedded.js';
import { publishTradeSignal } from '../src/bus/publish.js';
import { GROUPS, TOPICS } from '../src/bus/topics.js';
import type { Clock } from '../src/core/clock.js';
import { defaultConfig, type Config } from '../src/platform/config.js';
import { silentLogger } from '../src/platform/logger.js';
import { startDashboard, type RunningDashboard } from '../src/services/dashboard/server.js';
import { launchService, type Launched } from '../src/services/launch.js';
import { freePort } from './helpers/ports.js';
import { waitFor } from './helpers/redis.js';
import { startLoop, type Loop } from '../src/services/loop.js';

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const SCREENSHOT = resolve('test-output/dashboard.png');
const README_IMAGE = resolve('docs/images/dashboard.png');
const WAIT = { timeout: 15_000 };

const haveChromium = existsSync(CHROMIUM);
if (!haveChromium && !process.env.CI) {
  console.warn(
    `\n${'!'.repeat(78)}\n!! dashboard.browser.test.ts SKIPPED: ${CHROMIUM} is missing.\n` +
      `!! Install it with: apt-get install -y chromium   (CI installs it and fails without it)\n${'!'.repeat(78)}\n`,
  );
}

/** Wall-clock time plus an offset the test moves forward, so a minute of trading takes a second. */
class SteppedClock implements Clock {
  private offset = 0;
  now(): number {
    return Date.now() + this.offset;
  }
  advance(ms: number): void {
    this.offset += ms;
  }
}


function until<T>(probe: () => Promise<T> | T, what: string, timeoutMs = 15_000): Promise<NonNullable<T>> {
  return waitFor(probe, { what, timeoutMs });
}

function settings(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    ports: { risk: 0, execution: 0, monitor: 0, dashboard: 0 },
    execution: { price_interval_ms: 0 },
    monitor: { mark_interval_ms: 0, publish_on_tick: true },
    ...extra,
  };
}

interface Rig {
  bus: EmbeddedBus;
  clock: SteppedClock;
  loop: Loop;
  config: Config;
  dashboard: RunningDashboard;
  /** The risk service as restarted by a test (the loop's own one is stopped then). */
  risk?: Launched<'risk'>;
  stop(): Promise<void>;
}

/** The loop as `quantum up --no-demo` would run it, plus the dashboard pointed at its real ports. */
async function startRig(extra: Record<string, unknown> = {}): Promise<Rig> {
  const bus = new EmbeddedBus();
  const clock = new SteppedClock();
  const loop = await startLoop({ bus, config: defaultConfig(settings(extra)), clock, logger: silentLogger, listen: true, demo: false });
  const config = defaultConfig(
    settings({ ...extra, ports: { risk: loop.risk.port, execution: loop.execution.port, monitor: loop.monitor.port, dashboard: 0 } }),
  );
  const dashboard = await startDashboard({ bus, config, clock, logger: silentLogger, listen: true, port: await freePort() });
  const rig: Rig = {
    bus,
    clock,
    loop,
    config,
    dashboard,
    async stop() {
      await dashboard.stop();
      await rig.risk?.stop();
      await loop.stop();
      await bus.close();
    },
  };
  return rig;
}

async function tick(rig: Rig, symbol: string, price: number): Promise<void> {
  await rig.bus.publish(TOPICS.tick, { schema_version: 1, symbol, price, ts: rig.clock.now(), source: 'manual' });
}

/** Waits until the monitor has taken in every tick (nothing left undelivered or pending). */
async function monitorCaughtUp(rig: Rig): Promise<void> {
  await until(async () => {
    const group = (await rig.bus.info(TOPICS.tick)).groups.find((g) => g.name === GROUPS.monitor);
    return group !== undefined && group.lag === 0 && group.pending === 0;
  }, 'the monitor to take in the ticks');
}

async function openPositions(rig: Rig): Promise<string[]> {
  return rig.loop.monitor.service.positions().map((p) => p.symbol);
}

async function getJson<T>(url: string): Promise<T> {
  const response = await fetch(url);
  return (await response.json()) as T;
}

const START = { BTCUSDT: 65_000, ETHUSDT: 3500, SOLUSDT: 150 } as const;

/** A deterministic, smooth price path: a trend plus two waves (SOL trends down, so its short wins). */
function pathPrice(symbol: keyof typeof START, step: number): number {
  const phase = { BTCUSDT: 0, ETHUSDT: 1.3, SOLUSDT: 2.1 }[symbol];
  const trend = { BTCUSDT: 0.00025, ETHUSDT: -0.0001, SOLUSDT: -0.0005 }[symbol];
  const wave = 0.004 * Math.sin(step / 5 + phase) + 0.0018 * Math.sin(step / 1.7 + 2 * phase);
  return Math.round(START[symbol] * (1 + trend * step + wave) * 100) / 100;
}

/** Moves the three prices `steps` times, 20 simulated seconds apart. */
async function walk(rig: Rig, from: number, steps: number): Promise<void> {
  for (let step = from; step < from + steps; step++) {
    rig.clock.advance(20_000);
    for (const symbol of Object.keys(START) as Array<keyof typeof START>) await tick(rig, symbol, pathPrice(symbol, step));
    await monitorCaughtUp(rig);
  }
}

/** A numeric attribute of an element (NaN when missing). */
async function attribute(page: Page, selector: string, name: string): Promise<number> {
  return Number(await page.locator(selector).getAttribute(name));
}

async function figure(page: Page, id: string): Promise<{ text: string; value: number }> {
  const node = page.locator(`#${id}`);
  return { text: (await node.textContent()) ?? '', value: Number(await node.getAttribute('data-value')) };
}

describe.skipIf(!haveChromium && !process.env.CI)('dashboard in a browser', () => {
  let browser: Browser;
  let page: Page;
  let rig: Rig;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    if (!haveChromium) throw new Error(`${CHROMIUM} is missing: install Debian's chromium package (apt-get install -y chromium)`);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    rig = await startRig();

    // A little history before the page opens: three entries, one rejection, prices moving,
    // a winning close, more prices. Then the page must show all of it on first paint.
    await publishTradeSignal(rig.bus, 'BTCUSDT', 'BUY', 0.82, 'xgb', {}, rig.clock);
    await publishTradeSignal(rig.bus, 'ETHUSDT', 'BUY', 0.74, 'xgb', {}, rig.clock);
    await publishTradeSignal(rig.bus, 'SOLUSDT', 'SELL', 0.8, 'xgb', {}, rig.clock);
    await publishTradeSignal(rig.bus, 'XRPUSDT', 'BUY', 0.52, 'xgb', {}, rig.clock);
    await until(async () => (await openPositions(rig)).length === 3, 'three open positions');
    await walk(rig, 1, 24);
    await publishTradeSignal(rig.bus, 'SOLUSDT', 'CLOSE', 1, 'xgb', {}, rig.clock);
    await until(async () => !(await openPositions(rig)).includes('SOLUSDT'), 'the SOL close');
    await walk(rig, 25, 24);

    page = await browser.newPage({ viewport: { width: 1440, height: 900 }, deviceScaleFactor: 1 });
    page.on('pageerror', (err) => pageErrors.push(`pageerror: ${err.message}`));
    page.on('console', (msg) => {
      // The one deliberate error: closing a position that is already closed (404).
      if (msg.type() === 'error' && !msg.location().url.includes('/api/close/')) pageErrors.push(`console: ${msg.text()} (${msg.location().url})`);
    });
    await page.goto(rig.dashboard.url);
    await page.locator('body[data-ready="true"]').waitFor(WAIT);
    await page.locator('#conn[data-state="live"]').waitFor(WAIT);
    // Marks the document: a reload would lose it.
    await page.evaluate('window.__sameDocument = true');
  });

  afterAll(async () => {
    await browser?.close();
    await rig?.stop();
  });

  it('paints the history on first load: curve with fill markers, positions, decisions, health', async () => {
    await expect.poll(() => attribute(page, '#chart', 'data-points'), WAIT).toBeGreaterThanOrEqual(40);
    // Four fills so far (three entries and the SOL close), each a marker on the curve.
    await expect.poll(() => attribute(page, '#chart', 'data-markers'), WAIT).toBe(4);
    expect(await page.locator('#positions tbody tr td.sym').allTextContents()).toEqual(['BTCUSDT', 'ETHUSDT']);
    await page.locator('#decisions li[data-symbol="XRPUSDT"][data-verdict="REJECTED"] [data-reason="LOW_CONFIDENCE"]').waitFor(WAIT);
    for (const name of ['risk', 'execution', 'monitor']) {
      await page.locator(`#services li[data-service="${name}"][data-status="up"]`).waitFor(WAIT);
    }
    expect(await page.locator('#streams tr[data-topic="trade.signal.v5"] [data-group="risk-safety"]').textContent()).toMatch(/^risk-safety 0 \/ 0$/);
    expect(await page.locator('#dlq li.bad').count()).toBe(0);
    expect(await page.locator('#trading-state').getAttribute('data-state')).toBe('ACTIVE');
  });

  it("shows the monitor's /portfolio figures and the services' rates in the header", async () => {
    const base = (name: 'risk' | 'execution' | 'monitor') => `http://127.0.0.1:${rig.config.ports[name]}`;
    const portfolio = await getJson<Record<string, number>>(`${base('monitor')}/portfolio`);
    const risk = await getJson<{ approval_rate: number }>(`${base('risk')}/stats`);
    const execution = await getJson<{ fill_rate: number }>(`${base('execution')}/stats`);
    const expected: Record<string, number> = {
      'f-equity': portfolio.equity_usd!,
      'f-balance': portfolio.balance_usd!,
      'f-unrealized': portfolio.unrealized_pnl_usd!,
      'f-realized': portfolio.realized_pnl_usd!,
      'f-drawdown': portfolio.drawdown_pct!,
      'f-exposure': portfolio.exposure_pct!,
      'f-approval': risk.approval_rate,
      'f-fillrate': execution.fill_rate,
    };
    for (const [id, value] of Object.entries(expected)) {
      await expect.poll(() => attribute(page, `#${id}`, 'data-value'), { ...WAIT, message: id }).toBeCloseTo(value, 9);
    }
    const usd = new Intl.NumberFormat('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 });
    const signed = (v: number) => `${v > 0 ? '+' : v < 0 ? '−' : ''}${usd.format(Math.abs(v))}`;
    expect((await figure(page, 'f-equity')).text).toBe(usd.format(portfolio.equity_usd!));
    expect((await figure(page, 'f-balance')).text).toBe(usd.format(portfolio.balance_usd!));
    expect((await figure(page, 'f-unrealized')).text).toBe(signed(portfolio.unrealized_pnl_usd!));
    expect((await figure(page, 'f-realized')).text).toBe(signed(portfolio.realized_pnl_usd!));
    expect((await figure(page, 'f-exposure')).text).toBe(`${usd.format(portfolio.exposure_pct! * 100)}%`);
    // The SOL short was closed at a profit: realized PnL is positive and shown green.
    expect(portfolio.realized_pnl_usd).toBeGreaterThan(0);
    expect(await page.locator('#f-realized').getAttribute('class')).toBe('pos');
  });

  it('shows a new fill live, without a reload: position row, decision, fill row and marker', async () => {
    const markersBefore = Number(await page.locator('#chart').getAttribute('data-markers'));
    await publishTradeSignal(rig.bus, 'BNBUSDT', 'BUY', 0.81, 'lstm', {}, rig.clock);
    await page.locator('#positions tbody tr[data-symbol="BNBUSDT"][data-side="LONG"]').waitFor(WAIT);
    await page.locator('#decisions li[data-symbol="BNBUSDT"][data-verdict="APPROVED"]').first().waitFor(WAIT);
    await page.locator('#fills tbody tr:first-child td.sym', { hasText: 'BNBUSDT' }).waitFor(WAIT);
    await expect.poll(() => attribute(page, '#chart', 'data-markers'), WAIT).toBe(markersBefore + 1);
    expect(await page.evaluate('window.__sameDocument')).toBe(true);
  });

  it('opens the decision record of a rejection: checks with the failed rule, and sizing', async () => {
    await page.locator('#decisions li[data-symbol="XRPUSDT"][data-verdict="REJECTED"]').click();
    await page.locator('#decision-detail #checks tbody tr').first().waitFor(WAIT);
    const failed = await page.locator('#decision-detail #checks tr.failed').count();
    expect(failed).toBeGreaterThanOrEqual(1);
    expect(await page.locator('#decision-detail .summary').textContent()).toContain('LOW_CONFIDENCE');
    const headers = await page.locator('#decision-detail #checks thead th').allTextContents();
    expect(headers).toEqual(['Rule', 'Passed', 'Value', 'Limit', 'Note']);

    await page.locator('#decisions li[data-symbol="BNBUSDT"][data-verdict="APPROVED"]').first().click();
    await page.locator('#decision-detail #sizing').waitFor(WAIT);
    const sizing = await page.locator('#decision-detail #sizing td:first-child').allTextContents();
    expect(sizing).toEqual(expect.arrayContaining(['p', 'b', 'kelly_optimal', 'kelly_applied', 'equity_usd']));
  });

  it('closes a position from its row: the row disappears and the result is shown', async () => {
    const row = page.locator('#positions tbody tr[data-symbol="BNBUSDT"]');
    await row.locator('button.close-btn').click();
    await row.locator('button.close-btn.armed', { hasText: 'Confirm' }).click();
    await page.locator('#close-result[data-outcome="closed"]').waitFor(WAIT);
    expect(await page.locator('#close-result').textContent()).toMatch(/^BNBUSDT closed: SELL [\d.,]+ @ [\d.,]+ · realized [+−]?[\d.,]+ USDT$/);
    await row.waitFor({ state: 'detached', ...WAIT });
    expect(await openPositions(rig)).toEqual(['BTCUSDT', 'ETHUSDT']);

    // Closing again: the monitor's 404 message is shown, not a crash.
    const status = await page.evaluate(async () => (await fetch('/api/close/BNBUSDT', { method: 'POST' })).status);
    expect(status).toBe(404);
  });

  it('shows a service that went down, and recovers by itself when it is back', async () => {
    const port = rig.config.ports.risk;
    // The pill names what blocks entries: the losing manual close above started a cooldown.
    const before = await page.locator('#trading-state').getAttribute('data-state');
    expect(before).toBe('COOLDOWN');
    expect(await page.locator('#cooldown').textContent()).toMatch(/^COOLDOWN until \d\d:\d\d:\d\d UTC$/);
    await rig.loop.risk.stop();
    await page.locator('#services li[data-service="risk"][data-status="down"]').waitFor(WAIT);
    await page.locator('#trading-state', { hasText: 'COOLDOWN?' }).waitFor(WAIT);

    rig.risk = await launchService('risk', { bus: rig.bus, config: rig.config, clock: rig.clock, logger: silentLogger, listen: true, port });
    await page.locator('#services li[data-service="risk"][data-status="up"]').waitFor(WAIT);
    await page.locator('#trading-state[data-state="COOLDOWN"]').waitFor(WAIT);
    expect(await page.evaluate('window.__sameDocument')).toBe(true);
  });

  it('writes a screenshot for the README, with no error in the page', async () => {
    await page.locator('#decisions li[data-symbol="XRPUSDT"]').click();
    await page.locator('#decision-detail #checks').waitFor(WAIT);
    for (const name of ['risk', 'execution', 'monitor']) {
      await page.locator(`#services li[data-service="${name}"][data-status="up"]`).waitFor(WAIT);
    }
    mkdirSync(dirname(SCREENSHOT), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    // The README's picture is refreshed on request only, so test runs leave the tree clean.
    if (process.env.UPDATE_SCREENSHOT) {
      mkdirSync(dirname(README_IMAGE), { recursive: true });
      copyFileSync(SCREENSHOT, README_IMAGE);
      expect(existsSync(README_IMAGE)).toBe(true);
    }
    expect(pageErrors).toEqual([]);
  });

  it('the kill switch asks to confirm, halts with the reason and flattens; Resume asks too', async () => {
    await page.locator('#halt-button').click();
    await page.locator('#halt-dialog:not([hidden])').waitFor(WAIT);
    await page.locator('#halt-cancel').click();
    await page.locator('#halt-dialog').waitFor({ state: 'hidden', ...WAIT });
    expect(await page.locator('#trading-state').getAttribute('data-state')).not.toBe('HALTED');

    await page.locator('#halt-button').click();
    await page.locator('#halt-reason').fill('browser test halt');
    await page.locator('#halt-flatten').check();
    await page.locator('#halt-confirm').click();
    await page.locator('#trading-state[data-state="HALTED"]').waitFor(WAIT);
    await page.locator('#halt-banner', { hasText: 'KILL_SWITCH: browser test halt' }).waitFor(WAIT);
    await until(async () => (await openPositions(rig)).length === 0, 'every position flat');
    await page.locator('#positions tbody tr[data-symbol]').first().waitFor({ state: 'detached', ...WAIT });

    await page.locator('#resume-button').click();
    await page.locator('#resume-button.armed').click();
    await page.locator('#halt-banner').waitFor({ state: 'hidden', ...WAIT });
    expect(pageErrors).toEqual([]);
  });
});

describe.skipIf(!haveChromium && !process.env.CI)('dashboard in a browser, with an api_token', () => {
  it('asks for the token once, then loads and streams with it', async () => {
    if (!haveChromium) throw new Error(`${CHROMIUM} is missing: install Debian's chromium package (apt-get install -y chromium)`);
    const token = 'browser-token-42';
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    const rig = await startRig({ api_token: token });
    try {
      const page = await browser.newPage();
      await page.goto(rig.dashboard.url);
      await page.locator('#token-dialog:not([hidden])').waitFor(WAIT);
      await page.locator('#token-input').fill('wrong-token-0');
      await page.locator('#token-form button').click();
      await page.locator('#token-error', { hasText: 'not accepted' }).waitFor(WAIT);
      await page.locator('#token-input').fill(token);
      await page.locator('#token-form button').click();
      await page.locator('body[data-ready="true"]').waitFor(WAIT);
      await page.locator('#conn[data-state="live"]').waitFor(WAIT);
      expect(await page.evaluate("sessionStorage.getItem('quantum-trader.api_token')")).toBe(token);

      await publishTradeSignal(rig.bus, 'ETHUSDT', 'BUY', 0.8, 'xgb', {}, rig.clock);
      await page.locator('#positions tbody tr[data-symbol="ETHUSDT"]').waitFor(WAIT);
      const row = page.locator('#positions tbody tr[data-symbol="ETHUSDT"]');
      await row.locator('button.close-btn').click();
      await row.locator('button.close-btn.armed').click();
      await page.locator('#close-result[data-outcome="closed"]').waitFor(WAIT);
      await row.waitFor({ state: 'detached', ...WAIT });
    } finally {
      await browser.close();
      await rig.stop();
    }
  });
});

describe.skipIf(!haveChromium && !process.env.CI)('dashboard in a browser: protective exits', () => {
  it('shows a position\'s armed levels, then the stop\'s reason on its closing fill', async () => {
    if (!haveChromium) throw new Error(`${CHROMIUM} is missing: install Debian's chromium package (apt-get install -y chromium)`);
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    const rig = await startRig();
    try {
      const page = await browser.newPage();
      await page.goto(rig.dashboard.url);
      await page.locator('body[data-ready="true"]').waitFor(WAIT);
      await publishTradeSignal(rig.bus, 'XRPUSDT', 'BUY', 0.85, 'xgb', { stop_loss: 0.55, take_profit: 0.7 }, rig.clock);
      const row = page.locator('#positions tbody tr[data-symbol="XRPUSDT"]');
      await row.locator('td.exits', { hasText: 'SL 0.55' }).waitFor(WAIT);
      expect(await row.locator('td.exits').textContent()).toContain('TP 0.70');
      rig.clock.advance(1000);
      await tick(rig, 'XRPUSDT', 0.5);
      await row.waitFor({ state: 'detached', ...WAIT });
      await page.locator('#fills tbody tr:first-child td', { hasText: 'CLOSE stop_loss' }).waitFor(WAIT);
    } finally {
      await browser.close();
      await rig.stop();
    }
  });
});

describe.skipIf(!haveChromium && !process.env.CI)('dashboard in a browser: per-source panel', () => {
  it('shows each source\'s attribution, a drift badge and the calibration chart with its diagonal', async () => {
    if (!haveChromium) throw new Error(`${CHROMIUM} is missing: install Debian's chromium package (apt-get install -y chromium)`);
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    // Windows of two: lstm's two trades at ~0.7 then two at ~0.95 fail the KS test (p = 2/6 < 0.5).
    const rig = await startRig({ risk: { cooldown_minutes: 0 }, feedback: { reference_trades: 2, recent_trades: 2, ks_alpha: 0.5 } });
    try {
      let price = 65_000;
      const roundTrip = async (source: string, confidence: number, win: boolean) => {
        await publishTradeSignal(rig.bus, 'BTCUSDT', 'BUY', confidence, source, {}, rig.clock);
        await until(async () => ((await openPositions(rig)).includes('BTCUSDT') ? true : null), `a ${source} long`);
        price = Math.round(price * (win ? 1.01 : 0.995) * 100) / 100;
        rig.clock.advance(1000);
        await tick(rig, 'BTCUSDT', price);
        await monitorCaughtUp(rig);
        await publishTradeSignal(rig.bus, 'BTCUSDT', 'CLOSE', 1, source, {}, rig.clock);
        await until(async () => (!(await openPositions(rig)).includes('BTCUSDT') ? true : null), `the ${source} close`);
      };
      await roundTrip('xgb', 0.7, true);
      await roundTrip('xgb', 0.72, false);
      await roundTrip('lstm', 0.7, true);
      await roundTrip('lstm', 0.71, true);
      await roundTrip('lstm', 0.95, true);
      await roundTrip('lstm', 0.96, true);
      const { sources } = await getJson<{ sources: Array<{ source: string; trades: number; win_rate: number; net_pnl_usd: number }> }>(
        `http://127.0.0.1:${rig.config.ports.monitor}/sources`,
      );
      const xgb = sources.find((s) => s.source === 'xgb')!;
      expect(xgb.trades).toBe(2);

      const page = await browser.newPage({ viewport: { width: 1440, height: 1200 } });
      const errors: string[] = [];
      page.on('pageerror', (err) => errors.push(err.message));
      await page.goto(rig.dashboard.url);
      await page.locator('#sources-panel[data-loaded="true"]').waitFor(WAIT);
      const xgbRow = page.locator('#sources-table tbody tr[data-source="xgb"][data-trades="2"]');
      await xgbRow.waitFor(WAIT);
      expect(Number(await xgbRow.locator('td.win-rate').getAttribute('data-value'))).toBe(xgb.win_rate);
      expect(Number(await xgbRow.locator('td.net').getAttribute('data-value'))).toBeCloseTo(xgb.net_pnl_usd, 9);
      expect(await xgbRow.locator('.drift-badge[data-test="ks"]').getAttribute('data-state')).toBe('ok');
      await page.locator('#sources-table tr[data-source="lstm"][data-trades="4"] .drift-badge[data-test="ks"][data-state="drift"]').waitFor(WAIT);

      // The chart: the diagonal, and one point per non-empty bucket of the selected source.
      await page.locator('#sources-table tr[data-source="lstm"]').click();
      await page.locator('#calibration-chart[data-source="lstm"]').waitFor(WAIT);
      expect(await page.locator('#calibration-chart line.diagonal').count()).toBe(1);
      const points = page.locator('#calibration-chart circle.bucket');
      expect(await points.count()).toBe(2); // [0.70, 0.75) and [0.95, 1]
      expect(await points.evaluateAll((nodes) => nodes.map((n) => [(n as unknown as { dataset: Record<string, string> }).dataset.from, (n as unknown as { dataset: Record<string, string> }).dataset.realized]))).toEqual([
        ['0.7', '1'],
        ['0.95', '1'],
      ]);
      expect(await page.locator('#calibration-chart line.wilson').count()).toBe(2);
      expect(errors).toEqual([]);
    } finally {
      await browser.close();
      await rig.stop();
    }
  });
});

describe.skipIf(!haveChromium && !process.env.CI)('dashboard in a browser: accounts view', () => {
  it('compares two accounts side by side from their services, a rejection in the stricter one', async () => {
    if (!haveChromium) throw new Error(`${CHROMIUM} is missing: install Debian's chromium package (apt-get install -y chromium)`);
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    // Two accounts as `quantum up` with accounts runs them: each its own loop and ports.
    const live = await startRig();
    const shadow = await startRig({ risk: { min_confidence: 0.9 }, account: { initial_balance_usd: 5000 } });
    const portsOf = (rig: Rig) => ({ risk: rig.loop.risk.port, execution: rig.loop.execution.port, monitor: rig.loop.monitor.port });
    const accountsConfig = defaultConfig({
      accounts: [
        { name: 'live', stream_prefix: 'live:', ports: portsOf(live) },
        { name: 'strict', stream_prefix: 'strict:', shadow: true, ports: portsOf(shadow), risk: { min_confidence: 0.9 } },
      ],
    });
    const dashboard = await startDashboard({ bus: live.bus, config: live.config, accountsConfig, clock: live.clock, logger: silentLogger, listen: true, port: await freePort() });
    try {
      await publishTradeSignal(shadow.bus, 'BTCUSDT', 'BUY', 0.8, 'xgb', {}, shadow.clock);
      await until(async () => (await getJson<{ counts: { rejected: number } }>(`http://127.0.0.1:${shadow.loop.risk.port}/stats`)).counts.rejected === 1, 'the strict account to refuse it');
      const page = await browser.newPage({ viewport: { width: 1200, height: 800 } });
      const errors: string[] = [];
      page.on('pageerror', (err) => errors.push(err.message));
      await page.goto(`${dashboard.url.replace(/\/$/, '')}/accounts`);
      const heads = page.locator('#accounts-head th');
      await until(async () => ((await heads.count()) === 3 ? true : null), 'a column per account');
      expect(await heads.allTextContents()).toEqual(['account', 'live', 'strict (shadow)']);
      const row = async (label: string) => {
        const tr = page.locator('#accounts-body tr').filter({ has: page.locator('th', { hasText: new RegExp(`^${label}$`) }) });
        await tr.waitFor(WAIT);
        return tr.locator('td').allTextContents();
      };
      expect(await row('equity USD')).toEqual(['10000.00', '5000.00']);
      expect(await row('signals')).toEqual(['0', '1']);
      expect(await row('rejected LOW_CONFIDENCE')).toEqual(['0', '1']);
      expect(await row('max drawdown')).toEqual(['0.00%', '0.00%']);
      expect(errors).toEqual([]);
    } finally {
      await browser.close();
      await dashboard.stop();
      await shadow.stop();
      await live.stop();
    }
  });
});
