/**
 * The Binance price source against a local WebSocket server that speaks Binance's
 * combined-stream frames (spot and USDⓈ-M formats, from the documentation), and the
 * price-source contract run against both the simulator and the Binance source. No test
 * touches the internet; nothing sleeps (every wait polls with a deadline).
 */
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { fx, toDecimalString } from '../src/core/fixed.js';
import { instrumentTable } from '../src/core/instruments.js';
import type { RunningPriceSource } from '../src/core/market.js';
import { PriceTick } from '../src/core/messages.js';
import { seededRandom } from '../src/core/random.js';
import { DEFAULT_TICK_RULES, TickGate } from '../src/core/tick-rules.js';
import { SimulatorSource } from '../src/feeds/simulator.js';
import { systemClock } from '../src/platform/clock.js';
import { DEFAULT_INSTRUMENTS } from '../src/platform/config.js';
import { silentLogger, type Logger } from '../src/platform/logger.js';
import { createFeedMetrics } from '../src/platform/metrics.js';
import { ExecutionState } from '../src/services/execution/state.js';
import { BinanceSource, type BinanceSourceOptions } from '../src/venues/binance/source.js';
import { aggTrade, bookTicker, FakeBinance, fixtureFrames, type Market } from './helpers/binance-server.js';
import { waitFor } from './helpers/redis.js';

const INSTRUMENTS = instrumentTable(DEFAULT_INSTRUMENTS.filter((i) => i.symbol === 'BTCUSDT' || i.symbol === 'ETHUSDT' || i.symbol === 'BNBUSDT'));

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

/** A logger whose JSON lines a test can read. */
function captureLogger(): { logger: Logger; lines: () => Array<Record<string, unknown>> } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(...chunk.toString().split('\n').filter(Boolean));
      done();
    },
  });
  return { logger: pino({ level: 'info' }, stream), lines: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

async function startVenue(): Promise<FakeBinance> {
  const venue = await FakeBinance.start();
  cleanups.push(() => venue.close());
  return venue;
}

interface Started {
  source: BinanceSource;
  ticks: PriceTick[];
  registry: Registry;
}

async function startBinance(venue: FakeBinance, market: Market, options: Partial<BinanceSourceOptions> = {}): Promise<Started> {
  const registry = new Registry();
  const source = new BinanceSource({
    market,
    baseUrl: venue.url,
    instruments: INSTRUMENTS,
    clock: systemClock,
    logger: silentLogger,
    rng: seededRandom(1),
    minTickIntervalMs: 0,
    metrics: createFeedMetrics(registry),
    backoff: { baseMs: 20, maxMs: 200 },
    ...options,
  });
  const ticks: PriceTick[] = [];
  await source.start((batch) => ticks.push(...batch));
  cleanups.push(() => source.stop());
  await venue.waitForConnections(market === 'spot' ? 1 : 2);
  return { source, ticks, registry };
}

async function metric(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const m = (await registry.getMetricsAsJSON()).find((x) => x.name === name);
  const value = m?.values.find((v) => Object.entries(labels).every(([k, want]) => v.labels[k] === want));
  return value?.value ?? 0;
}

const lastTick = (ticks: PriceTick[], symbol: string) => [...ticks].reverse().find((t) => t.symbol === symbol);

// ---------------------------------------------------------------------------------
// The contract every price source keeps

interface ContractSubject {
  name: string;
  /** Starts the source and makes it produce ticks for its symbols; returns what it emitted. */
  start(): Promise<{ source: RunningPriceSource; ticks: PriceTick[]; produce(): void }>;
}

const SUBJECTS: ContractSubject[] = [
  {
    name: 'simulator',
    async start() {
      const state = new ExecutionState({
        instruments: INSTRUMENTS,
        seed: 3,
        fee_rate: 0.0004,
        max_slippage_pct: 0.001,
        price_step_pct: 0.01,
        max_price_deviation_pct: 0.05,
        spread_pct: 0.0002,
        tickGate: new TickGate(INSTRUMENTS, DEFAULT_TICK_RULES),
      });
      const source = new SimulatorSource({ intervalMs: 20, clock: systemClock, step: (now) => state.step(now), price: (s) => state.mark(s), symbols: [...INSTRUMENTS.keys()] });
      const ticks: PriceTick[] = [];
      await source.start((batch) => ticks.push(...batch));
      cleanups.push(() => source.stop());
      return { source, ticks, produce: () => undefined };
    },
  },
  ...(['spot', 'usdm'] as const).map(
    (market): ContractSubject => ({
      name: `binance ${market}`,
      async start() {
        const venue = await startVenue();
        const { source, ticks } = await startBinance(venue, market);
        let n = 0;
        return {
          source,
          ticks,
          produce() {
            n += 1;
            for (const symbol of INSTRUMENTS.keys()) {
              const base = symbol === 'BTCUSDT' ? 65000 : symbol === 'ETHUSDT' ? 3500 : 600;
              venue.send(bookTicker(market, symbol, n, `${base + n}.10000000`, `${base + n}.20000000`));
              venue.send(aggTrade(market, symbol, n, `${base + n}.15000000`));
            }
          },
        };
      },
    }),
  ),
];

describe.each(SUBJECTS)('price source contract: $name', (subject) => {
  it('emits valid ticks for its symbols, on the tick grid, with bid <= ask, and price() follows the last tick', async () => {
    const { source, ticks, produce } = await subject.start();
    await waitFor(
      () => {
        produce();
        return new Set(ticks.map((t) => t.symbol)).size === INSTRUMENTS.size && ticks.length >= 2 * INSTRUMENTS.size;
      },
      { timeoutMs: 10_000, intervalMs: 30, what: `${subject.name} to emit ticks for every symbol` },
    );
    for (const tick of ticks) {
      expect(PriceTick.parse(tick)).toEqual(tick);
      const spec = INSTRUMENTS.get(tick.symbol)!;
      for (const value of [tick.price, tick.bid, tick.ask]) {
        if (value === undefined) continue;
        expect(fx(value) % spec.tickSize, `${tick.symbol} ${value} on the ${toDecimalString(spec.tickSize)} grid`).toBe(0n);
      }
      expect(tick.bid !== undefined && tick.ask !== undefined, 'ticks carry quotes').toBe(true);
      expect(tick.bid!).toBeLessThanOrEqual(tick.ask!);
    }
    for (const symbol of INSTRUMENTS.keys()) expect(source.price(symbol)).toBe(fx(lastTick(ticks, symbol)!.price));
    const status = source.status(Date.now());
    expect(status).toMatchObject({ source: source.kind, connected: true, down_since: null });
    expect(Object.keys(status.last_message_age_ms).sort()).toEqual([...INSTRUMENTS.keys()].sort());
  });

  it('emits nothing after stop()', async () => {
    const { source, ticks, produce } = await subject.start();
    await waitFor(() => (produce(), ticks.length > 0), { timeoutMs: 10_000, intervalMs: 30, what: 'a first tick' });
    await source.stop();
    const count = ticks.length;
    produce();
    // The simulator's interval and the socket are both gone: a fresh round trip through the venue proves no frame is pending.
    await new Promise((resolve) => setImmediate(resolve));
    expect(ticks.length).toBe(count);
  });
});

// ---------------------------------------------------------------------------------
// Binance specifics

describe.each(['spot', 'usdm'] as const)('Binance %s feed on a local server', (market) => {
  it('turns the documented frames into ticks with bid, ask, sizes and exact prices', async () => {
    const venue = await startVenue();
    const { ticks } = await startBinance(venue, market);
    for (const frame of fixtureFrames(market)) venue.send(frame);
    const symbol = 'BTCUSDT';
    await waitFor(() => ticks.filter((t) => t.symbol === symbol).length >= (market === 'spot' ? 3 : 2), { what: 'the fixture ticks' });
    const last = lastTick(ticks, symbol)!;
    if (market === 'spot') {
      expect(last).toMatchObject({ symbol, source: 'feed', price: 65000.12, bid: 65000.12, ask: 65000.13, bid_size: 1.5, ask_size: 0.25, exchange_ts: 1672515782150 });
    } else {
      expect(last).toMatchObject({ symbol, source: 'feed', price: 65000.2, bid: 65000.1, ask: 65000.2, bid_size: 31.21, ask_size: 40.66, exchange_ts: 1568014460900 });
    }
  });

  it('reconnects by itself after the server drops the connection, and counts it', async () => {
    const venue = await startVenue();
    const { source, ticks, registry } = await startBinance(venue, market);
    venue.send(bookTicker(market, 'BTCUSDT', 1, '65000.00', '65000.01'));
    await waitFor(() => ticks.length >= 1, { what: 'a tick before the drop' });
    const before = venue.accepted;
    venue.dropAll();
    await waitFor(() => venue.accepted >= before + (market === 'spot' ? 1 : 2) && venue.connections.length === (market === 'spot' ? 1 : 2), {
      what: 'the feed to reconnect',
    });
    await waitFor(() => source.status(Date.now()).connected, { what: 'the feed to report connected' });
    venue.send(bookTicker(market, 'BTCUSDT', 2, '65100.00', '65100.01'));
    await waitFor(() => lastTick(ticks, 'BTCUSDT')?.bid === 65100, { what: 'a tick after the reconnect' });
    expect(source.status(Date.now()).reconnects).toBeGreaterThanOrEqual(market === 'spot' ? 1 : 2);
    expect(await metric(registry, 'qt_feed_reconnects_total', { kind: 'unplanned' })).toBeGreaterThanOrEqual(1);
  });

  it('counts an aggTrade id gap (metric and warning) and keeps going', async () => {
    const venue = await startVenue();
    const capture = captureLogger();
    const { source, ticks, registry } = await startBinance(venue, market, { logger: capture.logger });
    for (const id of [100, 101, 105]) venue.send(aggTrade(market, 'ETHUSDT', id, `${3400 + id}.10`));
    await waitFor(() => lastTick(ticks, 'ETHUSDT')?.price === 3505.1, { what: 'the trade after the gap' });
    expect(source.status(Date.now()).gaps).toBe(1);
    expect(await metric(registry, 'qt_feed_gaps_total')).toBe(1);
    expect(capture.lines().find((l) => String(l.msg).includes('aggTrade id gap'))).toMatchObject({ symbol: 'ETHUSDT', after: 101, next: 105, missing: 3, level: 40 });
  });

  it('logs and skips a malformed frame; the next good frame still becomes a tick', async () => {
    const venue = await startVenue();
    const capture = captureLogger();
    const { source, ticks, registry } = await startBinance(venue, market, { logger: capture.logger });
    venue.sendRaw('{"stream":"btcusdt@bookTicker","data":{"u":1,"s":"BTCUSDT","b":65000.1,"B":"1","a":"65000.2","A":"1"}}');
    venue.sendRaw('not json at all');
    venue.send(bookTicker(market, 'BTCUSDT', 7, '65000.30', '65000.40'));
    await waitFor(() => ticks.length >= 1, { what: 'the good frame' });
    expect(ticks).toHaveLength(1);
    expect(ticks[0]).toMatchObject({ bid: 65000.3, ask: 65000.4 });
    // sendRaw reaches every connection: one on spot, two on USDⓈ-M (/public and /market).
    const connections = market === 'spot' ? 1 : 2;
    expect(source.status(Date.now()).malformed).toBe(2 * connections);
    expect(await metric(registry, 'qt_feed_malformed_frames_total')).toBe(2 * connections);
    const warnings = capture.lines().filter((l) => String(l.msg).includes('malformed frame'));
    expect(warnings.filter((w) => /"b" must be a decimal string/.test(String(w.error)))).toHaveLength(connections);
    expect(warnings.filter((w) => /not JSON/.test(String(w.error)))).toHaveLength(connections);
  });
});

describe('Binance feed connection handling', () => {
  it('answers the server\'s pings with pongs (ws autoPong)', async () => {
    const venue = await startVenue();
    await startBinance(venue, 'spot');
    venue.ping('binance-ping');
    await waitFor(() => venue.connections[0]!.pongs >= 1, { what: 'a pong' });
  });

  it('conflates a burst: fewer ticks than updates, at least the interval apart, and the last quote always arrives', async () => {
    const venue = await startVenue();
    const { ticks } = await startBinance(venue, 'spot', { minTickIntervalMs: 100 });
    for (let u = 1; u <= 200; u++) venue.send(bookTicker('spot', 'BTCUSDT', u, `${65000 + u}.00`, `${65000 + u}.01`));
    await waitFor(() => lastTick(ticks, 'BTCUSDT')?.bid === 65200, { what: 'the last quote of the burst (trailing flush)' });
    expect(ticks.length).toBeLessThan(200);
    for (let i = 1; i < ticks.length; i++) expect(ticks[i]!.ts - ticks[i - 1]!.ts).toBeGreaterThanOrEqual(100);
  });

  it('makes a planned reconnect before the connection limit: the new connection opens before the old one closes, nothing is lost', async () => {
    const venue = await startVenue();
    const { source, ticks, registry } = await startBinance(venue, 'spot', { maxConnectionMs: 300 });
    await waitFor(() => source.status(Date.now()).planned_reconnects >= 1, { what: 'a planned reconnect' });
    await waitFor(() => venue.connections.length === 1, { what: 'the old connection to close' });
    expect(source.status(Date.now())).toMatchObject({ reconnects: 0, connected: true });
    expect(await metric(registry, 'qt_feed_reconnects_total', { kind: 'planned' })).toBeGreaterThanOrEqual(1);
    venue.send(bookTicker('spot', 'BTCUSDT', 9, '65009.00', '65009.01'));
    await waitFor(() => lastTick(ticks, 'BTCUSDT')?.bid === 65009, { what: 'a tick on the new connection' });
  });

  it('reports down time while it cannot connect, and retries with backoff', async () => {
    const venue = await startVenue();
    const url = venue.url;
    await venue.close();
    const registry = new Registry();
    const source = new BinanceSource({
      market: 'spot', baseUrl: url, instruments: INSTRUMENTS, clock: systemClock, logger: silentLogger,
      rng: seededRandom(2), minTickIntervalMs: 0, metrics: createFeedMetrics(registry), backoff: { baseMs: 20, maxMs: 100 },
    });
    await source.start(() => undefined);
    cleanups.push(() => source.stop());
    await waitFor(() => source.status(Date.now()).reconnects >= 3, { what: 'repeated reconnect attempts' });
    const status = source.status(Date.now());
    expect(status.connected).toBe(false);
    expect(status.down_since).not.toBeNull();
  });
});
