/**
 * Live prices end to end (issue 13's "done when"): with `market.source` binance and
 * `market.binance.ws_url` pointing at a local server that speaks Binance's
 * combined-stream frames, the loop publishes ticks with bid and ask, fills a BUY at the
 * ask (plus at most the slippage) and a SELL at the bid, recovers by itself from a
 * dropped connection, and rejects entries STALE_PRICE when the server goes silent while
 * a CLOSE still fills; /health reports the feed and answers 503 once it has been down
 * longer than market.stale_after_ms. Run twice: the three services as processes on
 * Redis (spot frames), and `quantum up --feed binance` (USDⓈ-M frames) on Redis so the
 * test can publish signals and read the streams. Nothing sleeps: waits poll with deadlines.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { publishTradeSignal } from '../src/bus/publish.js';
import { RedisBus } from '../src/bus/redis.js';
import { TOPICS } from '../src/bus/topics.js';
import { ExecutionResult, PriceTick, RiskApprovedSignal, RiskRejection } from '../src/core/messages.js';
import { aggTrade, bookTicker, FakeBinance, fixtureFrames, type Market } from './helpers/binance-server.js';
import {
  deploymentEnv,
  ensureBuilt,
  http,
  killAll,
  newDeployment,
  removeScratch,
  runQuantum,
  serviceUrl,
  spawnQuantum,
  startServices,
  waitForHealth,
  type Deployment,
  type QuantumProcess,
} from './helpers/processes.js';
import { cleanupPrefix, redisUrl, uniquePrefix, waitFor } from './helpers/redis.js';

// Generous, so a loaded CI machine never makes a fresh price look stale between a tick and its decision.
const STALE_AFTER_MS = 5000;
const MAX_SLIPPAGE = 0.001;
const TIMEOUT_MS = 20_000;

interface Loop {
  market: Market;
  venue: FakeBinance;
  bus: RedisBus;
  deployment: Deployment;
  describe(): string;
}

function liveConfig(market: Market, venue: FakeBinance, source: 'binance' | 'simulator') {
  return {
    market: { source, stale_after_ms: STALE_AFTER_MS, min_tick_interval_ms: 0, binance: { market, ws_url: venue.url } },
    execution: { price_interval_ms: 0, max_slippage_pct: MAX_SLIPPAGE },
    monitor: { mark_interval_ms: 0 },
    // Buying at the ask and selling at the bid loses the spread: without this the close would start the cooldown.
    risk: { cooldown_minutes: 0, max_daily_entries: 1000 },
  };
}

/** The scenario both deployments must pass. */
async function liveScenario(loop: Loop): Promise<void> {
  const { market, venue, bus } = loop;
  const connections = market === 'spot' ? 1 : 2;
  const poll = async <T>(probe: () => T | Promise<T>, what: string, timeoutMs = TIMEOUT_MS): Promise<NonNullable<T>> => {
    try {
      return await waitFor(probe, { timeoutMs, intervalMs: 25, what });
    } catch (error) {
      throw new Error(`${(error as Error).message}\n${loop.describe()}`);
    }
  };
  const find = async (topic: string, match: (p: Record<string, unknown>) => boolean) => {
    for (const entry of (await bus.readLatest(topic, 500)).reverse()) {
      const payload = JSON.parse(entry.fields.payload ?? '{}') as Record<string, unknown>;
      if (match(payload)) return payload;
    }
    return undefined;
  };
  let u = 0;
  let tradeId = 0;
  /** Sends a quote and a trade the way Binance does, and waits for the tick on market.tick. */
  const quote = async (bid: string, ask: string, last: string, symbol = 'BTCUSDT'): Promise<PriceTick> => {
    u += 1;
    tradeId += 1;
    venue.send(bookTicker(market, symbol, u, bid, ask));
    venue.send(aggTrade(market, symbol, tradeId, last));
    const tick = await poll(
      () => find(TOPICS.tick, (p) => p.symbol === symbol && p.bid === Number(bid) && p.ask === Number(ask) && p.price === Number(last)),
      `the ${symbol} tick ${bid}/${ask} on market.tick`,
    );
    return PriceTick.parse(tick);
  };
  const signal = (action: string, symbol = 'BTCUSDT') => publishTradeSignal(bus, symbol, action, 0.8, 'live-test');
  const approvalOf = async (id: string) => RiskApprovedSignal.parse(await poll(() => find(TOPICS.safe, (p) => p.signal_id === id), `the approval of ${id}`));
  const rejectionOf = async (id: string) => RiskRejection.parse(await poll(() => find(TOPICS.rejected, (p) => p.signal_id === id), `the rejection of ${id}`));
  const fillOf = async (id: string) => ExecutionResult.parse(await poll(() => find(TOPICS.execution, (p) => p.signal_id === id), `the fill of ${id}`));
  const up = (x: number) => Math.ceil(x * 100 - 1e-6) / 100;
  const down = (x: number) => Math.floor(x * 100 + 1e-6) / 100;

  await venue.waitForConnections(connections, TIMEOUT_MS);

  // Quotes flow to market.tick, with the venue's time.
  const first = await quote('65000.00', '65000.50', '65000.20');
  expect(first).toMatchObject({ source: 'feed', price: 65000.2, bid: 65000, ask: 65000.5, bid_size: 1.5, ask_size: 2 });
  expect(first.exchange_ts).toEqual(expect.any(Number));

  // A BUY is sized at the ask and fills at the ask plus at most the slippage.
  const buy = await signal('BUY');
  expect(await approvalOf(buy.signal_id)).toMatchObject({ intent: 'OPEN', side: 'BUY', reference_price: 65000.5 });
  const bought = await fillOf(buy.signal_id);
  expect(bought).toMatchObject({ status: 'FILLED', side: 'BUY', quote_side: 'ask', reference_price: 65000.5 });
  expect(bought.fill_price).toBeGreaterThanOrEqual(65000.5);
  expect(bought.fill_price).toBeLessThanOrEqual(up(65000.5 * (1 + MAX_SLIPPAGE)));
  expect(bought.price_age_ms).toEqual(expect.any(Number));

  // A SELL (closing the long) fills at the bid minus at most the slippage.
  const sell = await signal('SELL');
  expect(await approvalOf(sell.signal_id)).toMatchObject({ intent: 'CLOSE', side: 'SELL', reduce_only: true, reference_price: 65000 });
  const sold = await fillOf(sell.signal_id);
  expect(sold).toMatchObject({ status: 'FILLED', side: 'SELL', quote_side: 'bid', reference_price: 65000 });
  expect(sold.fill_price).toBeLessThanOrEqual(65000);
  expect(sold.fill_price).toBeGreaterThanOrEqual(down(65000 * (1 - MAX_SLIPPAGE)));

  // The server drops the connection mid-stream: the feed reconnects by itself.
  const accepted = venue.accepted;
  venue.dropAll();
  await poll(() => venue.accepted >= accepted + connections && venue.connections.length === connections, 'the feed to reconnect');
  await quote('65100.00', '65100.50', '65100.20');
  const reopened = await signal('BUY');
  expect(await fillOf(reopened.signal_id)).toMatchObject({ status: 'FILLED', quote_side: 'ask', reference_price: 65100.5 });
  const execution = serviceUrl(loop.deployment, 'execution');
  const health = await http<{ feed: { connected: boolean; reconnects: number; last_message_age_ms: Record<string, number | null> } }>('GET', `${execution}/health`);
  expect(health.status).toBe(200);
  expect(health.body.feed).toMatchObject({ connected: true, last_message_age_ms: { BTCUSDT: expect.any(Number) } });
  expect(health.body.feed.reconnects).toBeGreaterThanOrEqual(1);

  // Silence: once the last tick is older than market.stale_after_ms, entries are refused; a CLOSE still fills.
  // (The entry is on ETHUSDT: BTCUSDT's long already takes its whole position limit.)
  const lastTick = await quote('3500.00', '3500.10', '3500.05', 'ETHUSDT');
  await poll(() => Date.now() > lastTick.ts + STALE_AFTER_MS + 100, 'the price to go stale', STALE_AFTER_MS + 5000);
  const stale = await signal('BUY', 'ETHUSDT');
  const rejection = await rejectionOf(stale.signal_id);
  expect(rejection.reasons).toEqual(['STALE_PRICE']);
  const age = rejection.checks.find((c) => c.rule === 'price_age')!;
  expect(age).toMatchObject({ passed: false, limit: STALE_AFTER_MS });
  expect(age.value as number).toBeGreaterThan(STALE_AFTER_MS);
  const close = await signal('CLOSE');
  expect(await approvalOf(close.signal_id)).toMatchObject({ intent: 'CLOSE', reduce_only: true });
  expect(await fillOf(close.signal_id)).toMatchObject({ status: 'FILLED', side: 'SELL', quote_side: 'bid', reference_price: 65100 });

  // The venue goes away: /health answers 503 once the feed has been down longer than stale_after_ms.
  await venue.close();
  const down503 = await poll(async () => {
    const reply = await http<{ feed: { connected: boolean; down_ms: number } }>('GET', `${execution}/health`);
    return reply.status === 503 ? reply : null;
  }, 'execution /health to answer 503', STALE_AFTER_MS + 10_000);
  expect(down503.body.feed.connected).toBe(false);
  expect(down503.body.feed.down_ms).toBeGreaterThan(STALE_AFTER_MS);
}

describe('live prices: the three services as processes on Redis (spot frames)', () => {
  const prefix = uniquePrefix('live');
  let loop: Loop;
  let stopAll: () => Promise<void> = async () => undefined;

  beforeAll(async () => {
    await ensureBuilt();
    const venue = await FakeBinance.start();
    const deployment = await newDeployment(prefix, liveConfig('spot', venue, 'binance'));
    const services = await startServices(deployment);
    stopAll = () => services.stopAll();
    const bus = await RedisBus.connect({ url: redisUrl(), prefix, onError: () => undefined });
    loop = { market: 'spot', venue, bus, deployment, describe: () => services.describe() };
  }, 240_000);

  afterAll(async () => {
    await stopAll().catch(() => undefined);
    await killAll();
    await loop?.venue.close().catch(() => undefined);
    await loop?.bus.close();
    await cleanupPrefix(redisUrl(), prefix);
    removeScratch();
  }, 60_000);

  it('quotes to market.tick, BUY at the ask, SELL at the bid, reconnect, STALE_PRICE on silence while a CLOSE fills, 503 when down', async () => {
    await liveScenario(loop);
  }, 120_000);
});

describe('live prices: `quantum up --feed binance` (USDⓈ-M frames)', () => {
  const prefix = uniquePrefix('live-up');
  let loop: Loop;
  let up: QuantumProcess | undefined;

  beforeAll(async () => {
    await ensureBuilt();
    const venue = await FakeBinance.start();
    // market.source stays simulator in the file: --feed binance picks the live feed.
    const deployment = await newDeployment(prefix, liveConfig('usdm', venue, 'simulator'));
    up = spawnQuantum(['up', '--feed', 'binance', '--no-demo', '--plain', '--no-dashboard'], deploymentEnv(deployment), 'up');
    for (const key of ['risk', 'execution', 'monitor'] as const) await waitForHealth(serviceUrl(deployment, key), up);
    const bus = await RedisBus.connect({ url: redisUrl(), prefix, onError: () => undefined });
    loop = { market: 'usdm', venue, bus, deployment, describe: () => up?.describe() ?? '' };
  }, 240_000);

  afterAll(async () => {
    await up?.stop().catch(() => undefined);
    await killAll();
    await loop?.venue.close().catch(() => undefined);
    await loop?.bus.close();
    await cleanupPrefix(redisUrl(), prefix);
    removeScratch();
  }, 60_000);

  it('quotes to market.tick, BUY at the ask, SELL at the bid, reconnect, STALE_PRICE on silence while a CLOSE fills, 503 when down', async () => {
    await liveScenario(loop);
  }, 120_000);
});

describe('`quantum feed`', () => {
  afterAll(() => removeScratch());

  it('prints the quotes of the configured instruments for a few seconds and exits 0', async () => {
    await ensureBuilt();
    const venue = await FakeBinance.start();
    try {
      // Binance pushes as soon as a connection is open; so does the stand-in.
      venue.onConnect = (conn) => {
        for (const frame of fixtureFrames('spot')) conn.socket.send(frame);
      };
      const deployment = await newDeployment(uniquePrefix('feed'), { market: { binance: { market: 'spot', ws_url: venue.url } } });
      const run = await runQuantum(['feed', '--seconds', '1.5'], deploymentEnv(deployment));
      expect(run.code, run.stderr).toBe(0);
      expect(run.stdout).toMatch(/BTCUSDT +bid 65000\.12 x 1\.5 +ask 65000\.13 x 0\.25 +last 65000\.12/);
      expect(run.stdout).toMatch(/BNBUSDT +bid 25\.35/);
      expect(run.stdout).toMatch(/quote\(s\) in 1\.5 s; reconnects 0, gaps 0, malformed 0/);
    } finally {
      await venue.close();
    }
  }, 60_000);

  it('exits 1 with the reason when the venue cannot be reached', async () => {
    await ensureBuilt();
    const venue = await FakeBinance.start();
    const url = venue.url;
    await venue.close();
    const deployment = await newDeployment(uniquePrefix('feed'), { market: { binance: { ws_url: url } } });
    const run = await runQuantum(['feed', '--seconds', '1'], deploymentEnv(deployment));
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/quantum feed: no quotes within 1 s from ws:\/\/127\.0\.0\.1:\d+\/stream\?streams=.*ECONNREFUSED/);
  }, 60_000);
});
